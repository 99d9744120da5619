"""This machine's time zone, for reading a crontab's schedules as cron did (in local time)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["local_zone"]

_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"}


def local_zone() -> str | None:
    """The IANA name of this machine's time zone (``TZ``, ``/etc/timezone``, ``/etc/localtime``), or None."""
    from zoneinfo import ZoneInfo

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name in _UTC_NAMES:
            return "UTC"
        if "/" in name:
            try:
                ZoneInfo(name)
            except Exception:  # not a zone name: try the next source
                continue
            return name
    return None
