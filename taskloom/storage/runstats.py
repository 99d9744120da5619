"""Counts and summaries of runs for the Dashboard: bounded queries, fast with 100,000 runs.

Per-day counts are one GROUP BY, per-workflow counts one GROUP BY (on the
``runs(workflow, id)`` index), durations read at most ``limit`` ended runs of
one workflow, and the newest runs of a status walk the ``runs(status, id)``
index newest first with a LIMIT.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

__all__ = ["RUN_SUMMARY_COLUMNS", "runs_per_day_and_status", "run_counts_by_workflow", "recent_durations",
           "newest_runs"]

#: The keys of the rows :func:`newest_runs` returns.
RUN_SUMMARY_COLUMNS = ("id", "workflow", "version", "status", "trigger", "created", "started", "ended", "error")


def runs_per_day_and_status(db: sqlite_utils.Database, since: float, until: float) -> list[tuple[str, str, int]]:
    """Runs created in ``[since, until]`` per UTC day and status: ``(YYYY-MM-DD, status, runs)``, oldest first.

    Days without runs have no rows.
    """
    return [(r[0], r[1], r[2]) for r in db.execute(
        "SELECT date(created, 'unixepoch') AS day, status, COUNT(*) FROM runs"
        " WHERE created >= ? AND created <= ? GROUP BY day, status ORDER BY day, status",
        [since, until],
    ).fetchall()]


def run_counts_by_workflow(db: sqlite_utils.Database) -> list[tuple[str, int, int, int, int, int]]:
    """Per workflow (by name): ``(workflow, runs, succeeded, failed or crashed, cancelled, queued or running)``."""
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in db.execute(
        "SELECT workflow, COUNT(*),"
        " COUNT(*) FILTER (WHERE status = 'succeeded'), COUNT(*) FILTER (WHERE status IN ('failed', 'crashed')),"
        " COUNT(*) FILTER (WHERE status = 'cancelled'), COUNT(*) FILTER (WHERE status IN ('running', 'queued'))"
        " FROM runs GROUP BY workflow ORDER BY workflow"
    ).fetchall()]


def recent_durations(db: sqlite_utils.Database, workflow: str, limit: int) -> list[float]:
    """Seconds from start to end of the newest ``limit`` runs of ``workflow`` that started and ended, newest first."""
    return [r[0] for r in db.execute(
        "SELECT ended - started FROM runs WHERE workflow = ? AND ended IS NOT NULL"
        " AND started IS NOT NULL ORDER BY id DESC LIMIT ?",
        [workflow, limit],
    )]


def newest_runs(db: sqlite_utils.Database, status: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` runs in ``status``, newest first, as dicts of :data:`RUN_SUMMARY_COLUMNS`."""
    rows = db.execute(
        "SELECT id, workflow, version, status, trigger, created, started, ended, error FROM runs"
        " WHERE status = ? ORDER BY id DESC LIMIT ?",
        [status, limit],
    ).fetchall()
    return [dict(zip(RUN_SUMMARY_COLUMNS, r)) for r in rows]
