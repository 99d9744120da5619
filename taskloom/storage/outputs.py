"""Task outputs in storage: JSON in the database, or a file when it is large.

An output over ``max_bytes`` (default 1 MiB) is written to
``$TASKLOOM_HOME/outputs/<run>/<task>.<attempt>.json`` and the database holds
a reference with a preview, so a task returning a big table neither bloats
the database nor fails; :func:`decode_output` gives the whole value back to
downstream tasks and to a resumed run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["SPILL_KEY", "DEFAULT_MAX_OUTPUT_BYTES", "OutputCodec", "is_spilled"]

SPILL_KEY = "$taskloom_spilled"
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
PREVIEW_CHARS = 2000


def is_spilled(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and SPILL_KEY in value


class OutputCodec:
    """Encodes outputs for the database, spilling large ones to files under ``home``."""

    def __init__(self, home: Path | None, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self.home = home
        self.max_bytes = max_bytes

    def encode(self, value: Any, *, run_id: int, task_id: str, attempt: int) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if self.home is None or len(text.encode()) <= self.max_bytes:
            return text
        relative = Path("outputs") / str(run_id) / f"{task_id}.{attempt}.json"
        path = self.home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = text.encode()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a reader never sees half a file
        ref = {
            "path": relative.as_posix(),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "preview": text[:PREVIEW_CHARS],
        }
        return json.dumps({SPILL_KEY: ref}, ensure_ascii=False, separators=(",", ":"))

    def decode(self, text: str | None, *, resolve: bool = True) -> Any:
        """The stored value; with ``resolve``, a spilled output is read back whole."""
        if text is None:
            return None
        value = json.loads(text)
        if not resolve or not is_spilled(value):
            return value
        if self.home is None:
            raise FileNotFoundError("a spilled output needs the Taskloom home folder to be read")
        path = self.home / value[SPILL_KEY]["path"]
        return json.loads(path.read_text(encoding="utf-8"))
