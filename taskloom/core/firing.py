"""When time triggers fire: the exact instants of ``cron`` and ``interval`` triggers.

Pure: time comes in as arguments (UTC epoch seconds) and goes out the same
way; nothing here reads the clock, the host's time zone or the environment.
Every instant is computed in UTC with :mod:`zoneinfo`, so results are the
same on every host whatever its ``TZ``.

Rules (``docs/scheduling.md`` has them as a table):

* **cron**: the five-field expression is evaluated by :mod:`croniter` on the
  *wall clock* of the trigger's ``timezone`` (naive local date-times), and each
  wall time is then mapped to UTC:

  - a wall time that does not exist (clocks jump forward) fires once, at the
    same instant as "that wall time + the gap" (02:30 → 03:30 CEST);
  - a wall time that happens twice (clocks fall back) fires once, at its
    first occurrence (``fold=0``);
  - a shifted time that equals a regular firing fires once (duplicates are
    dropped), and the result is strictly increasing.

  :attr:`Firing.moved` says why a firing is not plainly at its wall time.
* **interval** in ``seconds``/``minutes``/``hours``: absolute time, DST does
  not matter. The instants are ``anchor + k * every * unit`` with the anchor
  the trigger's ``start``, else the Unix epoch, so "every 5 minutes" fires at
  :00, :05, … UTC, the same after every restart (the scheduler keys its
  exactly-once record on the instant).
* **interval** in ``days``: the wall time ``at`` (default ``00:00``) in the
  zone on every Nth day counted from the anchor date (the local date of
  ``start``, else 1970-01-01); DST as for cron.
* **interval** in ``weeks``: ``weekday`` (default ``monday``) at ``at`` in
  every Nth week counted from the anchor's week (weeks start on Monday; the
  week of ``start``, else the week of 1970-01-01); DST as for cron.
* ``start`` / ``end`` (ISO 8601; without an offset they mean UTC) bound the
  firings: ``start <= instant <= end``. ``enabled: false`` never fires.
* Other trigger types (manual, webhook, file, git, workflow) have no firings.

The ``schedule`` library supplies the vocabulary and the validation of
``interval`` triggers: :func:`_check_with_schedule` builds the equivalent job
(``schedule.every(n).days.at("02:30")``, ``.wednesday`` …) on a private
``Scheduler`` so that bad ``at``/``unit``/``weekday`` combinations fail with
schedule's own message (raised here as :class:`FiringError`). The job is
never run and its ``next_run`` is never asked for: schedule computes that
from ``datetime.now()`` in the host's zone, which would make the result
depend on the clock and the host. Two deliberate departures: the time zone is
not passed to ``.at()`` (schedule needs ``pytz`` for that; :mod:`zoneinfo`
checks the zone instead), and ``every(N).weeks`` with a weekday and N > 1 is
accepted (schedule refuses it because it cannot anchor the weeks; taskloom
anchors them to ``start``), its weekday and ``at`` being checked on a
one-week job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import schedule
from croniter import croniter
from croniter.croniter import CroniterBadDateError

from taskloom.core.errors import UserMistake
from taskloom.core.model import Trigger
from taskloom.core.schema import INTERVAL_UNITS, WEEKDAYS

__all__ = [
    "Firing",
    "FiringError",
    "TIME_TRIGGER_TYPES",
    "next_firings",
    "firings_between",
    "parse_instant",
]

#: Trigger types that fire at computed instants.
TIME_TRIGGER_TYPES = ("cron", "interval")

# croniter gives up after 50 years without a match; so does the day-by-day walk.
_CRON_MAX_IDLE_DAYS = 50 * 366
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}
_EPOCH = datetime(1970, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)
_UTC = timezone.utc
# Instants outside years 2..9998 are out of reach (datetime stops at year 9999).
_FIRST = -62104060800.0  # 0002-01-01T00:00:00Z
_LAST = 253370678400.0  # 9998-12-31T00:00:00Z


@dataclass(frozen=True)
class Firing:
    """One instant a time trigger fires at."""

    instant: float  # UTC epoch seconds: the key the scheduler stores, unique per (trigger, instant)
    wall: str  # ISO 8601 wall time in the trigger's zone, with offset: "2026-03-29T03:30:00+02:00"
    moved: str | None = None  # why DST moved it, or None


class FiringError(UserMistake, ValueError):
    """A trigger that cannot fire (bad config); the message names the field (``place``: the trigger's id)."""

    def __init__(self, message: str, *, trigger: str = "", field: str = "") -> None:
        super().__init__(f"trigger '{trigger}': {message}" if trigger else message, place=trigger)
        self.trigger = trigger
        self.field = field


# -- public API -------------------------------------------------------------


def next_firings(trigger: Trigger, after: float, count: int = 1) -> list[Firing]:
    """The next ``count`` firings strictly after ``after`` (UTC epoch seconds), in order.

    Fewer when the trigger ends; ``[]`` for a disabled or non-time trigger.
    Raises :class:`FiringError` when the trigger's config cannot fire.
    """
    if count <= 0:
        return []
    result = []
    for firing in _firings(trigger, float(after), math.inf):
        result.append(firing)
        if len(result) >= count:
            break
    return result


def firings_between(trigger: Trigger, start: float, end: float, limit: int = 10_000) -> list[Firing]:
    """The firings with ``start < instant <= end``, in order, at most ``limit`` of them."""
    if limit <= 0 or end <= start:
        return []
    result = []
    for firing in _firings(trigger, float(start), float(end)):
        result.append(firing)
        if len(result) >= limit:
            break
    return result


def parse_instant(value: str) -> float:
    """An ISO 8601 date-time as UTC epoch seconds; without an offset it is UTC.

    Raises ``ValueError`` for anything else, a date alone included.
    """
    moment = _datetime(value)
    if moment is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time (like 2026-03-29T12:00:00Z)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return moment.timestamp()


# -- plans: a validated trigger config --------------------------------------


@dataclass(frozen=True)
class _CronFields:
    """A plain cron expression (numbers, ranges, steps, names) expanded by croniter."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int] | None  # None: '*'
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # cron numbering: 0 = Sunday

    def matches(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        by_day = self.days is None or day.day in self.days
        by_weekday = self.weekdays is None or (day.weekday() + 1) % 7 in self.weekdays
        if self.days is not None and self.weekdays is not None:
            return by_day or by_weekday  # cron: both restricted means either
        return by_day and by_weekday


@dataclass(frozen=True)
class _Plan:
    kind: str  # "cron" | "absolute" | "days" | "weeks"
    zone: tzinfo
    start: float  # -inf when unbounded
    end: float  # +inf when unbounded
    cron: str = ""
    fields: _CronFields | None = None  # cron without L, W or #: walked day by day (fast)
    step: float = 0.0  # absolute: seconds between instants
    anchor: float = 0.0  # absolute: first instant
    at: time = time(0, 0)
    days: int = 1  # days/weeks: days between two firings
    first_day: date = _EPOCH_DATE  # days/weeks: a day that fires (k = 0)


def _firings(trigger: Trigger, after: float, end: float) -> Iterator[Firing]:
    """Firings with ``after < instant <= end`` in increasing order."""
    if trigger.type not in TIME_TRIGGER_TYPES:
        return iter(())
    plan = _plan_of(trigger)
    if plan is None:
        return iter(())
    end = min(end, plan.end, _LAST)
    after = max(after, _FIRST)
    if after >= end or plan.start > end:
        return iter(())
    if plan.kind == "absolute":  # its anchor is start: no instant before it
        return _absolute(plan, after, end)
    origin = _origin(max(after, plan.start), plan.zone)
    return _on_wall_clock(plan, _walls(plan, origin), after, end)


def _plan_of(trigger: Trigger) -> _Plan | None:
    config = trigger.config
    try:
        key = (trigger.id, trigger.type, tuple(sorted(config.items())))
        hash(key)
    except TypeError:  # an unhashable value: a bad config, reported by _plan
        return _plan(trigger.id, trigger.type, config)
    return _cached_plan(key)


@lru_cache(maxsize=1024)
def _cached_plan(key: tuple[str, str, tuple[tuple[str, Any], ...]]) -> _Plan | None:
    trigger_id, kind, items = key
    return _plan(trigger_id, kind, dict(items))


def _plan(trigger_id: str, kind: str, config: Mapping[str, Any]) -> _Plan | None:
    """The validated plan of a time trigger, or None when it is disabled."""

    def fail(field: str, message: str) -> FiringError:
        return FiringError(message, trigger=trigger_id, field=field)

    enabled = config.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"'enabled' must be true or false, not {enabled!r}")
    zone = _zone(config.get("timezone", "UTC"), fail)
    bounds = {}
    for field in ("start", "end"):
        value = config.get(field)
        if value is None:
            continue
        try:
            bounds[field] = parse_instant(value) if isinstance(value, str) else None
        except ValueError:
            bounds[field] = None
        if bounds[field] is None:
            raise fail(field, f"'{field}' {value!r} is not an ISO 8601 date-time (like 2026-01-31T09:00:00Z)")
    start, end = bounds.get("start", -math.inf), bounds.get("end", math.inf)
    if start > end:
        raise fail("start", f"start {config['start']} is after end {config['end']}")
    if not enabled:
        return None
    if kind == "cron":
        expression = _cron(config.get("cron"), fail)
        return _Plan("cron", zone, start, end, cron=expression, fields=_cron_fields(expression))
    return _interval_plan(config, zone, start, end, fail)


def _zone(name: Any, fail) -> tzinfo:
    if not isinstance(name, str) or not name:
        raise fail("timezone", f"'timezone' must be an IANA time zone name, not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise fail("timezone", f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None


def _cron(expression: Any, fail) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise fail("cron", "'cron' must be a five-field cron expression such as '0 * * * *'")
    fields = expression.split()
    if len(fields) != 5:
        raise fail("cron", f"cron expression {expression!r} has {len(fields)} field(s); exactly 5 are required")
    expression = " ".join(fields)
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise fail("cron", f"cron expression {expression!r} never matches a date") from None
    except Exception as exc:  # croniter raises several types for bad input
        raise fail("cron", f"cron expression {expression!r} does not parse: {exc}") from None
    return expression


def _cron_fields(expression: str) -> _CronFields | None:
    """The expanded fields when the day-by-day walk gives croniter's answer, else None."""
    parsed = croniter(expression, datetime(2000, 1, 1))  # a start: croniter would read the clock
    minutes, hours, days, months, weekdays = parsed.expanded
    if parsed.nth_weekday_of_month or parsed.nearest_weekday:
        return None
    if not all(isinstance(v, int) or v == "*" for field in parsed.expanded for v in field):
        return None  # 'L' (last day) and the like

    def values(field: list[Any], every: range) -> tuple[int, ...]:
        return tuple(every) if field[0] == "*" else tuple(sorted(set(field)))

    def subset(field: list[Any]) -> frozenset[int] | None:
        return None if field[0] == "*" else frozenset(field)

    return _CronFields(
        values(minutes, range(60)), values(hours, range(24)), subset(days), subset(months), subset(weekdays)
    )


def _interval_plan(config: Mapping[str, Any], zone: tzinfo, start: float, end: float, fail) -> _Plan:
    every, unit = config.get("every"), config.get("unit")
    at, weekday = config.get("at"), config.get("weekday")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise fail("every", f"'every' must be a whole number of at least 1, not {every!r}")
    if unit not in INTERVAL_UNITS:
        # schedule's own wording (it only checks the unit when computing a next run)
        raise fail(
            "unit",
            f"unit {unit!r}: Invalid unit (valid units are `seconds`, `minutes`, `hours`, `days`, and `weeks`)",
        )
    if at is not None and unit not in ("days", "weeks"):
        raise fail("at", "'at' is only used with unit 'days' or 'weeks'")
    if weekday is not None:
        if unit != "weeks":
            raise fail("weekday", "'weekday' is only used with unit 'weeks'")
        if weekday not in WEEKDAYS:
            raise fail("weekday", f"weekday {weekday!r} is not one of {', '.join(WEEKDAYS)}")
    at_time = _check_with_schedule(every, unit, at, weekday, fail)
    if unit in _UNIT_SECONDS:
        anchor = start if start > -math.inf else 0.0
        return _Plan("absolute", zone, start, end, step=float(every * _UNIT_SECONDS[unit]), anchor=anchor)
    anchor_date = datetime.fromtimestamp(start, zone).date() if start > -math.inf else _EPOCH_DATE
    if unit == "days":
        return _Plan("days", zone, start, end, at=at_time, days=every, first_day=anchor_date)
    monday = anchor_date - timedelta(days=anchor_date.weekday())
    first_day = monday + timedelta(days=WEEKDAYS.index(weekday or "monday"))
    return _Plan("weeks", zone, start, end, at=at_time, days=7 * every, first_day=first_day)


def _check_with_schedule(every: int, unit: str, at: str | None, weekday: str | None, fail) -> time:
    """Build the equivalent ``schedule`` job so its validation speaks; return the time of day.

    The job lives on a private Scheduler and is never run (see the module docstring).
    """
    field = "unit"
    try:
        job = schedule.Scheduler().every(every)
        if unit == "weeks":
            # schedule allows a weekday only on every(1); N-week triggers anchor to 'start' instead
            day_job = job if every == 1 else schedule.Scheduler().every(1)
            field = "weekday"
            day_job = getattr(day_job, weekday or "monday")
            if every == 1:
                job = day_job
            else:
                job = job.weeks
        else:
            job = getattr(job, unit)
            day_job = job
        if at is not None:
            field = "at"
            day_job.at(at)
    except (schedule.ScheduleError, TypeError) as exc:
        message = str(exc)
        if field == "at" and isinstance(at, str) and "{}" in message:  # schedule forgets to format the hour
            message = message.replace("{}", at.split(":")[0])
        shown = {"at": at, "weekday": weekday, "unit": unit}[field]
        raise fail(field, f"{field} {shown!r}: {message}") from None
    return day_job.at_time if day_job.at_time is not None else time(0, 0)


# -- absolute intervals -----------------------------------------------------


def _absolute(plan: _Plan, low: float, end: float) -> Iterator[Firing]:
    step, anchor = plan.step, plan.anchor
    k = max(0, math.floor((low - anchor) / step) + 1)
    while k > 0 and anchor + (k - 1) * step > low:  # float guard
        k -= 1
    while True:
        instant = anchor + k * step
        if instant > end:
            return
        if instant > low:
            yield Firing(instant, datetime.fromtimestamp(instant, plan.zone).isoformat(), None)
        k += 1


# -- wall-clock triggers ----------------------------------------------------


def _origin(low: float, zone: tzinfo) -> datetime:
    """A naive wall time before every wall time that could map to an instant after ``low``.

    A wall time in a DST gap maps to "itself + the gap", so it can map after
    ``low`` while lying before ``low``'s own wall time: start early by the
    difference of the offsets over the day before ``low``.
    """
    base = math.floor(low)
    offsets = [datetime.fromtimestamp(t, zone).utcoffset() for t in (base, base - 86400)]
    return _EPOCH + timedelta(seconds=base) + min(offsets) - timedelta(seconds=1)


def _walls(plan: _Plan, origin: datetime) -> Iterator[datetime]:
    """Naive wall times strictly after ``origin`` on which the trigger fires, ascending."""
    if plan.fields is not None:
        yield from _cron_walk(plan.fields, origin)
        return
    if plan.kind == "cron":
        it = croniter(plan.cron, origin)
        while True:
            try:
                yield it.get_next(datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                return
    step = plan.days
    k = max(0, (origin.date() - plan.first_day).days // step)
    try:
        while True:
            wall = datetime.combine(plan.first_day + timedelta(days=k * step), plan.at)
            if wall > origin:
                yield wall
            k += 1
    except OverflowError:
        return


def _cron_walk(fields: _CronFields, origin: datetime) -> Iterator[datetime]:
    """The wall times matching ``fields`` strictly after ``origin``, walking day by day."""
    day, idle = origin.date(), 0
    times = [time(h, m) for h in fields.hours for m in fields.minutes]
    first = [t for t in times if t > origin.time()]
    try:
        while idle < _CRON_MAX_IDLE_DAYS:
            if fields.matches(day):
                idle = 0
                for moment in first if day == origin.date() else times:
                    yield datetime.combine(day, moment)
            else:
                idle += 1
            day += timedelta(days=1)
    except OverflowError:  # past year 9999
        return


def _on_wall_clock(plan: _Plan, walls: Iterable[datetime], after: float, end: float) -> Iterator[Firing]:
    """Map ascending wall times to UTC firings: gap → shifted once, repeated → first, no duplicates.

    Wall order is UTC order except for shifted gap times, which land among
    the wall times just after the gap. So each firing waits in ``pending``
    until a later wall time proves nothing can come before it: a regular wall
    time ``w`` proves it for instants ``<= utc(w)``; a gap time proves it for
    instants before the transition (``<= w`` read with the later offset).
    """
    zone = plan.zone
    pending: dict[float, Firing] = {}
    for wall in walls:
        first = wall.replace(tzinfo=zone)
        instant = first.timestamp()
        moved = None
        proven = instant
        second = wall.replace(tzinfo=zone, fold=1)
        if first.utcoffset() != second.utcoffset():
            actual = datetime.fromtimestamp(instant, zone)
            if actual.replace(tzinfo=None) == wall:
                moved = f"{_clock(wall)} happens twice on {wall.date()} (clocks fall back); fired at the first"
            else:
                shown = _clock(actual) if actual.date() == wall.date() else f"{actual.date()} {_clock(actual)}"
                moved = f"{_clock(wall)} does not exist on {wall.date()} (clocks jump forward); fired at {shown}"
                proven = second.timestamp()
        if after < instant <= end and instant >= plan.start:
            firing = Firing(instant, datetime.fromtimestamp(instant, zone).isoformat(), moved)
            other = pending.get(instant)
            if other is not None:  # a shifted gap time met a regular firing: fire once
                firing = _merged(other, firing)
            pending[instant] = firing
        if pending:
            ready = sorted(t for t in pending if t <= proven)
            for t in ready:
                yield pending.pop(t)
        if proven >= end:
            return
    for t in sorted(pending):
        yield pending[t]


def _merged(a: Firing, b: Firing) -> Firing:
    gap, regular = (a, b) if a.moved and "does not exist" in a.moved else (b, a)
    if regular.moved and "does not exist" in regular.moved:  # two gap times: cannot happen, keep one
        return a
    wall = datetime.fromisoformat(regular.wall)
    return Firing(a.instant, a.wall, f"{gap.moved} (once, together with the regular {_clock(wall)} firing)")


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M" if moment.second == 0 and moment.microsecond == 0 else "%H:%M:%S")


def _datetime(value: Any) -> datetime | None:
    """A date-time (not a date alone) from ISO 8601 text, or None."""
    if not isinstance(value, str) or len(value) < 16 or value[10] not in "Tt ":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
