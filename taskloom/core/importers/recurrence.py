"""Logic Apps ``recurrence`` objects to Taskloom ``cron`` and ``interval`` triggers.

==========================================================  ==================================
Logic Apps                                                  Taskloom
==========================================================  ==================================
Second / Minute / Hour, every N                             interval, every N seconds/minutes/hours
Hour with ``schedule.minutes``                              cron ``M * * * *`` (every N hours: ``M */N``)
Day, every day, ``schedule.hours/minutes``                  cron ``M H * * *``
Day, every N days                                           interval every N days at HH:MM (one per time)
Week, every week, ``schedule.weekDays/hours/minutes``       cron ``M H * * DOW``
Week, every N weeks                                         interval every N weeks, weekday at HH:MM
Month, ``schedule.monthDays``                               cron ``M H D * *`` (every N months: ``*/N``)
``timeZone`` (a Windows name)                               ``timezone`` (IANA, :mod:`.windows_tz`)
``startTime``, ``endTime``                                  ``start``, ``end`` (with the zone's offset)
==========================================================  ==================================

Without ``schedule``, the time of day (and weekday, day of month) comes
from ``startTime``, as in Logic Apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from taskloom.core.importers.windows_tz import iana_zone

__all__ = ["RecurrenceResult", "recurrence_triggers", "WEEKDAYS"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CRON_DOW = {"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}
_UNITS = {"second": "seconds", "minute": "minutes", "hour": "hours"}
_MAX_TRIGGERS = 24


@dataclass
class RecurrenceResult:
    """The triggers (without ids), how they were made, and what is not exact."""

    triggers: list[dict[str, Any]]
    summary: str
    notes: list[str]


def _moment(text: Any, zone: str) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(ZoneInfo(zone))


def _ints(values: Any, low: int, high: int) -> list[int] | None:
    if values is None:
        return None
    items = values if isinstance(values, list) else [values]
    out = []
    for item in items:
        try:
            number = int(item)
        except (TypeError, ValueError):
            return None
        if not low <= number <= high:
            return None
        out.append(number)
    return sorted(set(out)) or None


def _days(values: Any) -> list[str] | None:
    if values is None:
        return None
    items = values if isinstance(values, list) else [values]
    days = [str(d).strip().lower() for d in items]
    if not days or any(d not in _CRON_DOW for d in days):
        return None
    return sorted(set(days), key=WEEKDAYS.index)


def _join(numbers: list[int]) -> str:
    return ",".join(str(n) for n in numbers)


def recurrence_triggers(recurrence: Any) -> RecurrenceResult:
    """Triggers that fire when ``recurrence`` does; ``notes`` says where they differ.

    An unreadable recurrence gives no trigger and a note saying why.
    """
    if not isinstance(recurrence, dict):
        return RecurrenceResult([], "", ["the recurrence is not an object; the workflow has no schedule"])
    notes: list[str] = []
    frequency = str(recurrence.get("frequency", "")).strip().lower()
    try:
        every = max(1, int(recurrence.get("interval", 1)))
    except (TypeError, ValueError):
        every = 1
        notes.append(f"interval {recurrence.get('interval')!r} is not a number; every 1 is used")
    zone_name = recurrence.get("timeZone")
    zone = "UTC"
    if isinstance(zone_name, str) and zone_name.strip():
        found = iana_zone(zone_name)
        if found is None:
            notes.append(f"time zone {zone_name!r} is unknown; UTC is used: set the trigger's timezone")
        else:
            zone = found
    start = _moment(recurrence.get("startTime"), zone)
    end = _moment(recurrence.get("endTime"), zone)
    if recurrence.get("startTime") is not None and start is None:
        notes.append(f"startTime {recurrence.get('startTime')!r} is not an ISO 8601 date-time; it is ignored")
    schedule = recurrence.get("schedule") if isinstance(recurrence.get("schedule"), dict) else {}
    base: dict[str, Any] = {}
    if zone != "UTC":
        base["timezone"] = zone
    if start is not None:
        base["start"] = start.isoformat()
    if end is not None:
        base["end"] = end.isoformat()
    triggers = _by_frequency(frequency, every, schedule, start, base, notes)
    if triggers is None:
        return RecurrenceResult([], "", notes + [f"frequency {recurrence.get('frequency')!r} is not supported;"
                                                 " the workflow has no schedule"])
    if len(triggers) > _MAX_TRIGGERS:
        notes.append(f"{len(triggers)} times of day every {every} {frequency}s; only the first {_MAX_TRIGGERS}"
                     " became triggers")
        triggers = triggers[:_MAX_TRIGGERS]
    summary = "; ".join(_describe(t) for t in triggers[:3]) + (" ..." if len(triggers) > 3 else "")
    return RecurrenceResult(triggers, summary, notes)


def _describe(trigger: dict[str, Any]) -> str:
    zone = f" ({trigger['timezone']})" if "timezone" in trigger else ""
    if trigger["type"] == "cron":
        return f"cron '{trigger['cron']}'{zone}"
    extra = "".join(f" {k} {trigger[k]}" for k in ("weekday", "at") if k in trigger)
    return f"every {trigger['every']} {trigger['unit']}{extra}{zone}"


def _by_frequency(  # noqa: C901 (one branch per frequency, as the table in the module docstring)
    frequency: str, every: int, schedule: dict[str, Any], start: datetime | None, base: dict[str, Any],
    notes: list[str],
) -> list[dict[str, Any]] | None:
    hours = _ints(schedule.get("hours"), 0, 23)
    minutes = _ints(schedule.get("minutes"), 0, 59)
    for key, parsed in (("hours", hours), ("minutes", minutes)):
        if schedule.get(key) is not None and parsed is None:
            notes.append(f"schedule.{key} {schedule.get(key)!r} is not a list of valid numbers; it is ignored")
    if frequency in _UNITS:
        if frequency == "hour" and minutes:
            if every == 1:
                return [{"type": "cron", "cron": f"{_join(minutes)} * * * *", **base}]
            if 24 % every == 0:
                notes.append(f"every {every} hours counts from midnight here, not from startTime")
                return [{"type": "cron", "cron": f"{_join(minutes)} */{every} * * *", **base}]
            notes.append(f"schedule.minutes with every {every} hours cannot be expressed; the minutes are ignored")
        if hours or (minutes and frequency != "hour"):
            notes.append(f"schedule hours/minutes are not used with frequency {frequency!r}; they are ignored")
        return [{"type": "interval", "every": every, "unit": _UNITS[frequency], **base}]
    default_h = [start.hour] if start else [0]
    default_m = [start.minute] if start else [0]
    if (frequency in ("day", "week", "month")) and start is None and hours is None:
        notes.append("no startTime and no schedule.hours: the time of day is unknown; 00:00 is used")
    hours, minutes = hours or default_h, minutes or default_m
    if frequency == "day":
        if every == 1:
            return [{"type": "cron", "cron": f"{_join(minutes)} {_join(hours)} * * *", **base}]
        return [{"type": "interval", "every": every, "unit": "days", "at": f"{h:02d}:{m:02d}", **base}
                for h in hours for m in minutes]
    if frequency == "week":
        days = _days(schedule.get("weekDays"))
        if schedule.get("weekDays") is not None and days is None:
            notes.append(f"schedule.weekDays {schedule.get('weekDays')!r} are not weekday names; they are ignored")
        if days is None:
            days = [WEEKDAYS[start.weekday()]] if start else ["monday"]
            if start is None:
                notes.append("no startTime and no schedule.weekDays: the weekday is unknown; Monday is used")
        if every == 1:
            dow = _join(sorted(_CRON_DOW[d] for d in days))
            return [{"type": "cron", "cron": f"{_join(minutes)} {_join(hours)} * * {dow}", **base}]
        return [{"type": "interval", "every": every, "unit": "weeks", "weekday": d, "at": f"{h:02d}:{m:02d}", **base}
                for d in days for h in hours for m in minutes]
    if frequency == "month":
        month_days = _ints(schedule.get("monthDays"), -1, 31)
        if schedule.get("monthlyOccurrences"):
            notes.append("schedule.monthlyOccurrences (e.g. the first Monday) is not converted; the day of the"
                         " month of startTime is used: edit the cron expression")
        days_text = (",".join("L" if d == -1 else str(d) for d in month_days if d != 0) if month_days
                     else str(start.day if start else 1))
        months = "*" if every == 1 else f"*/{every}"
        if every > 1:
            notes.append(f"every {every} months counts from January here, not from startTime")
        return [{"type": "cron", "cron": f"{_join(minutes)} {_join(hours)} {days_text} {months} *", **base}]
    return None
