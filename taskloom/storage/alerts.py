"""The alerts journal (table ``alerts``, m011), and the facts an alert is made of.

Each alert is claimed per channel *before* it is sent: the row goes in with
status ``sending`` under the unique (``dedupe``, ``channel``) key
(:func:`taskloom.core.alerts.dedupe_key`), and only the process whose insert
went in sends it; it then records ``sent`` or ``failed`` with the error. So
two schedulers, two hosts on one PostgreSQL store, or a check repeated after
a restart never send an alert twice. The price is at most once: a process
that dies between the claim and the send leaves a ``sending`` row and the
alert is not sent again.
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from taskloom.core.lateness import FiringFacts
from taskloom.storage.db import write_txn

__all__ = ["claim_alert", "settle_alert", "list_alerts", "previous_ended_status", "failed_task", "last_log_lines",
           "trigger_firings", "owner_email"]

#: Task states that make a task "the failed task" of a run.
_FAILED_TASK_STATES = ("failed", "timed_out", "crashed")


def claim_alert(db: sqlite_utils.Database, *, dedupe: str, workflow: str, kind: str, channel: str,
                run_id: int | None = None, trigger_id: str | None = None, instant: float | None = None,
                at: float | None = None) -> int | None:
    """Claim one alert on one channel; its row id, or None when it was claimed before (by anyone)."""
    with write_txn(db):
        rows = db.execute(
            "INSERT INTO alerts (dedupe, workflow, run_id, trigger_id, instant, kind, channel, status, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'sending', ?) ON CONFLICT DO NOTHING RETURNING id",
            [dedupe, workflow, run_id, trigger_id, instant, kind, channel, time.time() if at is None else at],
        ).fetchall()
    return int(rows[0][0]) if rows else None


def settle_alert(db: sqlite_utils.Database, alert_id: int, *, status: str, error: str | None = None,
                 at: float | None = None) -> None:
    """Record how the delivery of a claimed alert ended: ``sent``, or ``failed`` with the error."""
    if status not in ("sent", "failed"):
        raise ValueError(f"an alert is 'sent' or 'failed', not {status!r}")
    with write_txn(db):
        db.execute("UPDATE alerts SET status = ?, error = ?, sent = ? WHERE id = ?",
                   [status, error, time.time() if at is None else at, alert_id])


def list_alerts(db: sqlite_utils.Database, workflow: str | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
    """The journal, newest first: one dict per alert and channel."""
    where, args = ("WHERE workflow = ?", [workflow]) if workflow is not None else ("", [])
    rows = db.execute(
        "SELECT id, workflow, run_id, trigger_id, instant, kind, channel, status, error, created, sent"
        f" FROM alerts {where} ORDER BY id DESC LIMIT ?", [*args, limit],
    ).fetchall()
    keys = ("id", "workflow", "run_id", "trigger_id", "instant", "kind", "channel", "status", "error", "created",
            "sent")
    return [dict(zip(keys, row)) for row in rows]


def previous_ended_status(db: sqlite_utils.Database, workflow: str, run_id: int) -> str | None:
    """How the workflow's run that ended last before ``run_id`` ended (succeeded or failed; cancelled and
    interrupted runs do not count), or None when there is none."""
    row = db.execute(
        "SELECT r.status FROM runs r, runs me WHERE me.id = ? AND r.workflow = ? AND r.id <> me.id"
        " AND r.status IN ('succeeded', 'failed') AND r.ended IS NOT NULL"
        " AND (me.ended IS NULL OR r.ended <= me.ended) ORDER BY r.ended DESC, r.id DESC LIMIT 1",
        [run_id, workflow],
    ).fetchone()
    return None if row is None else str(row[0])


def failed_task(db: sqlite_utils.Database, run_id: int) -> tuple[str, str | None] | None:
    """The run's first task (in end order) that failed, timed out or crashed: ``(task id, its error)``."""
    row = db.execute(
        "SELECT task_id, error FROM task_states WHERE run_id = ? AND status IN (?, ?, ?)"
        " ORDER BY updated, position LIMIT 1", [run_id, *_FAILED_TASK_STATES],
    ).fetchone()
    return None if row is None else (str(row[0]), row[1])


def last_log_lines(db: sqlite_utils.Database, run_id: int, task_id: str, count: int) -> list[str]:
    """The last ``count`` log lines of a task of a run (all its attempts), oldest first, as stored (masked)."""
    rows = db.execute(
        "SELECT attempt, stream, line FROM logs WHERE run_id = ? AND task_id = ? ORDER BY id DESC LIMIT ?",
        [run_id, task_id, count],
    ).fetchall()
    return [f"[{stream} #{attempt}] {line}" for attempt, stream, line in reversed(rows)]


def owner_email(db: sqlite_utils.Database, workflow: str) -> str | None:
    """The email address of the account that owns ``workflow``, or None (no owner, no account, no address)."""
    row = db.execute("SELECT u.email FROM workflows w JOIN users u ON u.name = w.owner WHERE w.name = ?",
                     [workflow]).fetchone()
    return str(row[0]) if row is not None and row[0] else None


def trigger_firings(db: sqlite_utils.Database, workflow: str, trigger_id: str, since: float, *,
                    limit: int = 500) -> list[FiringFacts]:
    """The latest ``limit`` firings of one trigger at or after ``since``, with their runs' times: what a late
    check looks at. Firings skipped for overlap are left out (never late themselves), so a run that hangs
    behind thousands of them is still among the ones read."""
    rows = db.execute(
        "SELECT f.instant, f.status, f.reason, f.run_id, r.status, r.started, r.ended FROM firings f"
        " LEFT JOIN runs r ON r.id = f.run_id WHERE f.workflow = ? AND f.trigger_id = ? AND f.instant >= ?"
        " AND f.status <> 'skipped_overlap' ORDER BY f.instant DESC LIMIT ?", [workflow, trigger_id, since, limit],
    ).fetchall()
    return [FiringFacts(workflow, trigger_id, *row) for row in reversed(rows)]
