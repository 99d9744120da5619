"""Checks of triggers beyond their structure: ids, cron expressions, time zones, start/end.

The schema already checked keys and types; this module checks meaning:
trigger ids are unique, a cron expression has exactly five fields and parses
with croniter, a time zone exists in the IANA database (``zoneinfo``), and
``start`` is an ISO 8601 date-time no later than ``end``.
"""

from __future__ import annotations

import difflib
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter

from taskloom.core.issues import Issue, pointer

__all__ = ["check_triggers", "CRON_ALIASES"]

#: croniter's @-shortcuts and the five fields each stands for.
CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_CRON_FIELDS = "minute hour day-of-month month day-of-week"


def check_triggers(triggers: list[Any]) -> list[Issue]:
    """Issues of the ``triggers`` list whose items the schema already checked."""
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for i, trigger in enumerate(triggers):
        if not isinstance(trigger, dict):
            continue
        trigger_id = trigger.get("id")
        if isinstance(trigger_id, str):
            if trigger_id in seen:
                issues.append(
                    Issue(
                        pointer("triggers", i, "id"),
                        f"duplicate trigger id '{trigger_id}' (also {pointer('triggers', seen[trigger_id])})",
                        "trigger ids must be unique; rename this one",
                    )
                )
            else:
                seen[trigger_id] = i
        issues += _check_one(i, trigger)
    return issues


def _check_one(i: int, trigger: Mapping[str, Any]) -> list[Issue]:
    if trigger.get("type") not in ("cron", "interval"):
        return []
    issues: list[Issue] = []
    expression = trigger.get("cron")
    if trigger.get("type") == "cron" and isinstance(expression, str) and expression.strip():
        issue = _cron_issue(expression)
        if issue is not None:
            issues.append(Issue(pointer("triggers", i, "cron"), *issue))
    zone: tzinfo | None = ZoneInfo("UTC")
    name = trigger.get("timezone", "UTC")
    if isinstance(name, str):
        zone, issue = _zone(name)
        if issue is not None:
            issues.append(Issue(pointer("triggers", i, "timezone"), *issue))
    issues += _window_issues(i, trigger, zone)
    return issues


def _cron_issue(expression: str) -> tuple[str, str] | None:
    """``(message, hint)`` when ``expression`` is not a valid five-field cron expression."""
    fields = expression.split()
    if len(fields) == 1 and fields[0].lower() in CRON_ALIASES:
        return (
            f"cron expression '{expression}' is a shortcut; exactly 5 fields are required",
            f"write '{CRON_ALIASES[fields[0].lower()]}' instead",
        )
    if len(fields) != 5:
        extra = " (taskloom has no seconds or year field)" if len(fields) in (6, 7) else ""
        return (
            f"cron expression '{expression}' has {len(fields)} field{'s' if len(fields) != 1 else ''}; "
            f"exactly 5 are required{extra}",
            f"{_CRON_FIELDS}, e.g. '0 * * * *' for every hour",
        )
    try:
        croniter(expression)
    except Exception as exc:  # croniter raises several types for bad input
        return (
            f"cron expression '{expression}' does not parse: {exc}",
            f"{_CRON_FIELDS}, e.g. '*/15 9-17 * * 1-5' for every 15 minutes in office hours",
        )
    return None


@lru_cache(maxsize=256)
def _zone(name: str) -> tuple[tzinfo | None, tuple[str, str] | None]:
    """The zone, or None with ``(message, hint)`` when ``name`` is not an IANA time zone."""
    try:
        return ZoneInfo(name), None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    return None, (f"unknown time zone '{name}'", _zone_hint(name))


def _zone_hint(name: str) -> str:
    zones = available_timezones()
    by_lower = {z.lower(): z for z in zones}
    if name.lower() in by_lower:
        return f"did you mean '{by_lower[name.lower()]}'?"
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{by_lower[close[0]]}'?"
    return "use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"


def _window_issues(i: int, trigger: Mapping[str, Any], zone: tzinfo | None) -> list[Issue]:
    """``start`` and ``end`` must be date-times, and ``start`` no later than ``end``."""
    issues: list[Issue] = []
    moments: dict[str, datetime] = {}
    for key in ("start", "end"):
        value = trigger.get(key)
        if not isinstance(value, str):
            continue
        moment = _datetime(value)
        if moment is None:
            issues.append(
                Issue(
                    pointer("triggers", i, key),
                    f"'{key}' {value!r} is not an ISO 8601 date-time",
                    "write it like '2025-01-31T09:00:00', optionally with an offset such as '+01:00'",
                )
            )
        else:
            moments[key] = moment if moment.tzinfo else moment.replace(tzinfo=zone or ZoneInfo("UTC"))
    if len(moments) == 2 and moments["start"] > moments["end"]:
        issues.append(
            Issue(
                pointer("triggers", i, "start"),
                f"start {trigger['start']} is after end {trigger['end']}",
                "swap them, or move 'end' later",
            )
        )
    return issues


def _datetime(value: str) -> datetime | None:
    if len(value) < 16 or value[10] not in "Tt ":  # a date alone is not a date-time
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
