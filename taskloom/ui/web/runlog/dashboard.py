"""The Dashboard's data: plain functions of a database and ``now`` (UTC epoch seconds), all bounded queries.

Every query (:mod:`taskloom.storage.runstats`) stays fast with 100,000 runs:
per-day counts are one GROUP BY, per-workflow counts one GROUP BY (on the
``runs(workflow, id)`` index), medians read at most :data:`MEDIAN_WINDOW`
ended runs per workflow, and the running runs and recent failures walk the
``runs(status, id)`` index newest first with a LIMIT per status.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from taskloom.core.firing import TIME_TRIGGER_TYPES, FiringError, next_firings
from taskloom.core.model import Workflow
from taskloom.storage.runstats import newest_runs, recent_durations, run_counts_by_workflow, runs_per_day_and_status
from taskloom.storage.workflows import get_document, list_workflows

__all__ = [
    "DAYS", "MEDIAN_WINDOW", "ACTIVE_STATUSES", "FAILED_STATUSES",
    "runs_per_day", "workflow_stats", "upcoming_firings", "active_runs", "recent_failures", "iso_utc",
]

DAYS = 30
MEDIAN_WINDOW = 500
ACTIVE_STATUSES = ("running", "queued")
FAILED_STATUSES = ("failed", "crashed")


def iso_utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def runs_per_day(db: sqlite_utils.Database, now: float, days: int = DAYS) -> list[dict[str, Any]]:
    """Runs created per UTC day and status over the last ``days`` days (today included), oldest first.

    Rows ``{"day": "YYYY-MM-DD", "status", "runs"}``; days without runs have no rows.
    """
    today = datetime.fromtimestamp(now, tz=timezone.utc).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()
    return [{"day": day, "status": status, "runs": n} for day, status, n in runs_per_day_and_status(db, since, now)]


def workflow_stats(db: sqlite_utils.Database, window: int = MEDIAN_WINDOW) -> list[dict[str, Any]]:
    """Per workflow: run counts, success rate of finished runs, median duration of the last ``window`` ended runs.

    ``success_rate`` is succeeded / (succeeded + failed + crashed + cancelled), None with no finished runs;
    ``median_seconds`` is None when no run has both started and ended.
    """
    result = []
    for workflow, total, ok, bad, cancelled, active in run_counts_by_workflow(db):
        finished = ok + bad + cancelled
        durations = recent_durations(db, workflow, window)
        result.append({
            "workflow": workflow,
            "runs": total,
            "succeeded": ok,
            "failed": bad,
            "cancelled": cancelled,
            "active": active,
            "success_rate": round(ok / finished, 4) if finished else None,
            "median_seconds": round(statistics.median(durations), 3) if durations else None,
        })
    return result


def upcoming_firings(db: sqlite_utils.Database, now: float, count: int = 10) -> list[dict[str, Any]]:
    """The next ``count`` firings after ``now`` across the time triggers of all stored, unpaused workflows.

    Rows ``{"instant", "when" (UTC text), "wall" (the trigger zone's wall time), "workflow", "trigger",
    "type", "moved" (why DST moved it, or None), "dst_moved" (bool)}``, soonest first. A trigger whose
    config cannot fire is left out.
    """
    merged: list[dict[str, Any]] = []
    for info in list_workflows(db):
        if info.paused:
            continue
        try:
            _, doc = get_document(db, info.name)
            workflow = Workflow.from_document(doc)
        except Exception:  # noqa: BLE001 - a document the model refuses cannot fire either
            continue
        for trigger in workflow.triggers:
            if trigger.type not in TIME_TRIGGER_TYPES:
                continue
            try:
                firings = next_firings(trigger, now, count)
            except FiringError:
                continue
            for f in firings:
                merged.append({
                    "instant": f.instant, "when": iso_utc(f.instant), "wall": f.wall, "workflow": info.name,
                    "trigger": trigger.id, "type": trigger.type, "moved": f.moved, "dst_moved": f.moved is not None,
                })
    merged.sort(key=lambda r: (r["instant"], r["workflow"], r["trigger"]))
    return merged[:count]


def _newest(db: sqlite_utils.Database, statuses: tuple[str, ...], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` runs with one of ``statuses``: one index walk per status, merged."""
    rows: list[dict[str, Any]] = []
    for status in statuses:
        rows += newest_runs(db, status, limit)
    rows.sort(key=lambda r: r["id"], reverse=True)
    return rows[:limit]


def active_runs(db: sqlite_utils.Database, now: float, limit: int = 50) -> list[dict[str, Any]]:
    """Runs queued or running (newest first), with how long they have been at it."""
    runs = _newest(db, ACTIVE_STATUSES, limit)
    for r in runs:
        since = r["started"] if r["started"] is not None else r["created"]
        r["seconds"] = round(max(0.0, now - since), 1)
    return runs


def recent_failures(db: sqlite_utils.Database, limit: int = 10) -> list[dict[str, Any]]:
    """The last ``limit`` failed or crashed runs, newest first, with their error."""
    return _newest(db, FAILED_STATUSES, limit)
