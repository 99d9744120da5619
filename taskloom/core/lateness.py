"""Lateness: whether a time trigger's instant is late, the dead-man arithmetic of ``alerts.late``.

For each instant of a cron or interval trigger, its run must have *started*
within ``start_within`` seconds of the instant, and *ended* within
``finish_within`` seconds of its start (of the instant while it has not
started). An instant with no run at all (missed while the scheduler was
down, queued, failed to start) is late too; one skipped for overlap is not
(the run still active then is). The scheduler gathers the firings
(:func:`taskloom.storage.alerts.trigger_firings`) and asks here; time is an
argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = ["LATE_LOOKBACK", "MAX_LATE_PER_CHECK", "FiringFacts", "LateFinding", "late_finding", "late_findings",
           "next_late_deadline"]

#: How far back, beyond the late seconds, the scheduler looks for late instants (seconds).
LATE_LOOKBACK = 3600.0
#: At most this many late instants of one trigger are alerted by one check: the most recent ones
#: (a scheduler that was down for a day does not send a thousand alerts on its return).
MAX_LATE_PER_CHECK = 3


@dataclass(frozen=True)
class FiringFacts:
    """One instant of a time trigger as the ledger knows it, with its run when it has one."""

    workflow: str
    trigger_id: str
    instant: float
    status: str  # the firing's: started, missed, skipped_overlap, queued, claimed, failed_to_start
    reason: str | None = None
    run_id: int | None = None
    run_status: str | None = None
    run_started: float | None = None
    run_ended: float | None = None


@dataclass(frozen=True)
class LateFinding:
    """A late instant: what was late and why, for the alert's text."""

    firing: FiringFacts
    what: str  # "start" | "finish"
    detail: str


def late_finding(firing: FiringFacts, *, start_within: float | None, finish_within: float | None,
                 now: float) -> LateFinding | None:
    """Whether ``firing`` is late at ``now``: its run did not start within ``start_within`` seconds of the
    instant, or did not end within ``finish_within`` seconds of its start (of the instant before it starts).

    >>> f = FiringFacts("w", "t", 1000.0, "missed", "the scheduler was not running")
    >>> late_finding(f, start_within=60, finish_within=None, now=1059.0) is None
    True
    >>> late_finding(f, start_within=60, finish_within=None, now=1060.0).what
    'start'
    """
    if firing.status == "skipped_overlap":
        return None  # the run still active then is the late one, and its own instant says so
    started, ended = firing.run_started, firing.run_ended
    if start_within is not None:
        deadline = firing.instant + start_within
        if started is None and now >= deadline:
            return LateFinding(firing, "start", f"no run started within {start_within:g} s of its instant"
                               + _why_no_run(firing))
        if started is not None and started > deadline:
            return LateFinding(firing, "start", f"its run {firing.run_id} started {started - firing.instant:.0f} s"
                               f" after its instant (start_within is {start_within:g} s)")
    if finish_within is not None:
        begin = firing.instant if started is None else started
        deadline = begin + finish_within
        if ended is None and now >= deadline:
            if started is None:
                return LateFinding(firing, "finish", f"no run finished within {finish_within:g} s of its instant"
                                   + _why_no_run(firing))
            return LateFinding(firing, "finish", f"its run {firing.run_id} has not finished {now - started:.0f} s"
                               f" after it started (finish_within is {finish_within:g} s)")
        if ended is not None and ended > deadline:
            return LateFinding(firing, "finish", f"its run {firing.run_id} took {ended - begin:.0f} s"
                               f" (finish_within is {finish_within:g} s)")
    return None


def _why_no_run(firing: FiringFacts) -> str:
    if firing.run_id is not None:
        return f" (run {firing.run_id} is {firing.run_status})"
    reason = f": {firing.reason}" if firing.reason else ""
    return f" (the firing is {firing.status}{reason})"


def late_findings(firings: Iterable[FiringFacts], *, start_within: float | None, finish_within: float | None,
                  now: float, limit: int = MAX_LATE_PER_CHECK) -> list[LateFinding]:
    """The late ones among one trigger's firings, the most recent first, at most ``limit`` of them."""
    found = []
    for firing in sorted(firings, key=lambda f: f.instant, reverse=True):
        finding = late_finding(firing, start_within=start_within, finish_within=finish_within, now=now)
        if finding is not None:
            found.append(finding)
            if len(found) >= limit:
                break
    return found


def next_late_deadline(firings: Iterable[FiringFacts], upcoming: Iterable[float], *, start_within: float | None,
                       finish_within: float | None, now: float) -> float | None:
    """The next instant after ``now`` at which one of these firings (or an ``upcoming`` instant) may become late,
    for the scheduler to look then; None when none can.

    >>> next_late_deadline([], [2000.0], start_within=30, finish_within=600, now=1000.0)
    2030.0
    """
    deadlines: list[float] = []
    for firing in firings:
        if firing.status == "skipped_overlap":
            continue
        if firing.run_started is None and start_within is not None:
            deadlines.append(firing.instant + start_within)
        if firing.run_ended is None and finish_within is not None:
            deadlines.append((firing.instant if firing.run_started is None else firing.run_started) + finish_within)
    for instant in upcoming:
        deadlines += [instant + s for s in (start_within, finish_within) if s is not None]
    later = [d for d in deadlines if d > now]
    return min(later) if later else None
