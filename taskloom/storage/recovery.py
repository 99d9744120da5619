"""Crash recovery: finding runs whose runner died, and taking them over.

A run is an orphan when it is queued or running and its owner is gone: the
owner's heartbeat row is missing or older than the TTL, or the owner was a
process on this host that no longer exists (then there is no need to wait
for the TTL). Taking an orphan over is a compare-and-set on ``runs.owner``
inside ``BEGIN IMMEDIATE``, so two recovering processes never both win.

Recovery marks the dead runner's running attempts ``crashed`` (the
infrastructure died, not the task), schedules a retry for each such task that
has retries left (at the instant its retry policy gives) and ends the others
``crashed``, and marks the run ``crashed``. Each of these changes goes
through the transition table (:mod:`taskloom.storage.transitions`), from the
states the rows were read or claimed in within the same transaction. What is left of the attempts'
process groups is returned as :class:`Leftover` records: killing them is
runtime's (:mod:`taskloom.runtime.execution`), never the store's. The run is
then ready for the runner with its snapshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlite_utils

from taskloom.core.model import Workflow
from taskloom.core.retry import retry_delay
from taskloom.core.states import FAILURE_STATES, RunState, TaskState

from taskloom.storage.db import write_txn
from taskloom.storage.heartbeat import DEFAULT_TTL, host_id, process_alive
from taskloom.storage.transitions import change_attempt, change_attempts, change_run, change_task, change_tasks
from taskloom.storage.workflows import document_by_hash

__all__ = ["Orphan", "Recovered", "Leftover", "find_orphans", "take_over", "cancel_orphan"]

#: The runs recovery takes over: a dead owner's queued (claimed, not started) or running runs.
_ORPHANED = (RunState.QUEUED, RunState.RUNNING)
#: The runs a cancel ends without a runner: nobody's queued run, a dead owner's, a crashed one.
_CANCELLABLE = (RunState.QUEUED, RunState.RUNNING, RunState.CRASHED)
#: The tasks a cancel ends: those that have not ended.
_UNENDED = (TaskState.PENDING, TaskState.RUNNING)


@dataclass(frozen=True)
class Orphan:
    run_id: int
    workflow: str
    owner: str | None
    reason: str


@dataclass(frozen=True)
class Leftover:
    """A process group a dead runner's attempt may have left running."""

    attempt_id: int
    pid: int

    @property
    def marker(self) -> str:
        """The environment entry every process of the attempt carries (so a reused pid is never killed)."""
        return f"TASKLOOM_ATTEMPT_ID={self.attempt_id}"


@dataclass
class Recovered:
    run_id: int
    reason: str
    crashed_attempts: list[tuple[str, int]] = field(default_factory=list)  # (task, attempt)
    #: process groups to end, for runtime to kill
    leftovers: list[Leftover] = field(default_factory=list)
    #: the groups runtime killed (filled in by runtime)
    killed_groups: list[int] = field(default_factory=list)


def _orphan_reason(row: tuple, now: float, ttl: float, host: str) -> str | None:
    _, _, status, owner, runner_id, pid, pid_start, runner_host, heartbeat = row
    if owner is None:
        # a queued run nobody owns is a request waiting for a scheduler, not an orphan
        return None if status == "queued" else "it has no owner"
    if runner_id is None:
        return f"its runner {owner[:8]} is gone"
    if runner_host == host and not process_alive(pid, pid_start):
        return f"its runner (pid {pid} on {runner_host}) is no longer running"
    if heartbeat < now - ttl:
        return f"its runner's last heartbeat (pid {pid} on {runner_host}) is {now - heartbeat:.0f} s old"
    return None


def find_orphans(
    db: sqlite_utils.Database, *, now: float | None = None, ttl: float = DEFAULT_TTL, run_id: int | None = None
) -> list[Orphan]:
    """Queued or running runs whose owner is dead."""
    now = time.time() if now is None else now
    sql = (
        "SELECT r.id, r.workflow, r.status, r.owner, n.id, n.pid, n.pid_start, n.host, n.heartbeat FROM runs r"
        " LEFT JOIN runners n ON n.id = r.owner WHERE r.status IN ('queued', 'running')"
    )
    args: list = []
    if run_id is not None:
        sql += " AND r.id = ?"
        args.append(run_id)
    host = host_id()
    orphans = []
    for row in db.execute(sql + " ORDER BY r.id", args).fetchall():
        reason = _orphan_reason(row, now, ttl, host)
        if reason is not None:
            orphans.append(Orphan(row[0], row[1], row[3], reason))
    return orphans


def take_over(
    db: sqlite_utils.Database, orphan: Orphan, *, owner: str, now: float | None = None
) -> Recovered | None:
    """Claim an orphaned run for ``owner`` and record its crash; None if another process claimed it first."""
    now = time.time() if now is None else now
    message = f"the runner died ({orphan.reason}); detected at recovery"
    result = Recovered(orphan.run_id, orphan.reason)
    with write_txn(db):
        # the claim is the crash's record: won by one process, from a state the table lets crash
        if not change_run(db, orphan.run_id, RunState.CRASHED, was=_ORPHANED, assign="owner = ?, error = ?, ended = ?",
                          args=[owner, message, now], also="owner IS NOT DISTINCT FROM ?", also_args=[orphan.owner], strict=False):
            return None
        workflow = _workflow_of(db, orphan.run_id)
        running = db.execute(
            "SELECT id, task_id, number, pid FROM attempts WHERE run_id = ? AND status = ?",
            [orphan.run_id, TaskState.RUNNING.value],
        ).fetchall()
        for attempt_id, task_id, number, _ in running:
            change_attempt(db, attempt_id, TaskState.CRASHED, assign="ended = ?, error = ?", args=[now, message])
            _after_crash(db, workflow, orphan.run_id, task_id, now, message)
            result.crashed_attempts.append((task_id, number))
    result.leftovers = _leftovers(running)
    return result


def cancel_orphan(db: sqlite_utils.Database, orphan: Orphan, *, owner: str) -> list[Leftover] | None:
    """Cancel a run nobody runs any more: everything not ended is cancelled.

    Returns the process groups its running attempts may have left (for runtime
    to kill), or None when another process took the run first.
    """
    now = time.time()
    with write_txn(db):
        if not change_run(db, orphan.run_id, RunState.CANCELLED, was=_CANCELLABLE,
                          assign="owner = ?, ended = ?, error = 'cancelled', cancel_requested = NULL",
                          args=[owner, now], also="owner IS NOT DISTINCT FROM ?", also_args=[orphan.owner], strict=False):
            return None
        running = db.execute(
            "SELECT id, task_id, number, pid FROM attempts WHERE run_id = ? AND status = ?",
            [orphan.run_id, TaskState.RUNNING.value],
        ).fetchall()
        change_attempts(db, orphan.run_id, TaskState.CANCELLED, assign="ended = ?, error = 'cancelled'", args=[now])
        change_tasks(db, orphan.run_id, TaskState.CANCELLED, was=_UNENDED, assign="updated = ?, next_attempt_at = NULL",
                     args=[now])
    return _leftovers(running)


def _workflow_of(db: sqlite_utils.Database, run_id: int) -> Workflow:
    digest = db.execute("SELECT document FROM runs WHERE id = ?", [run_id]).fetchone()[0]
    return Workflow.from_document(document_by_hash(db, digest))


def _after_crash(
    db: sqlite_utils.Database, workflow: Workflow, run_id: int, task_id: str, now: float, message: str
) -> None:
    """A crashed attempt uses up a retry like any failure: retry later, or end the task crashed.

    The task was running: its attempt was, and the runner journals both in one transaction.
    """
    failures = db.execute(
        "SELECT count(*) FROM attempts WHERE run_id = ? AND task_id = ? AND status IN (?, ?, ?)",
        [run_id, task_id, *(s.value for s in FAILURE_STATES)],
    ).fetchone()[0]
    delay = retry_delay(workflow.tasks[task_id], failures)
    status, next_at = (TaskState.CRASHED, None) if delay is None else (TaskState.PENDING, now + delay)
    change_task(db, run_id, task_id, status, was=TaskState.RUNNING,
                assign="error = ?, updated = ?, next_attempt_at = ?", args=[message, now, next_at])


def _leftovers(attempts: list[tuple]) -> list[Leftover]:
    return [Leftover(attempt_id, pid) for attempt_id, _, _, pid in attempts if pid]
