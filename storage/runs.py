"""Runs, their per-task states, attempts and log lines: creating and reading them.

The runner writes progress through :class:`storage.journal.SqliteJournal`;
this module creates a run (with a row per task, all pending, in one
transaction) and answers the questions the CLI and UI ask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Sequence

import sqlite_utils

from engine.states import RunState, TaskState

from .db import write_txn
from .journal import dump_json
from .workflows import NotFound, put_document

__all__ = ["RunRecord", "TaskRecord", "AttemptRecord", "create_run", "get_run", "list_runs",
           "iter_logs", "iso"]


def iso(ts: float | None) -> str | None:
    """An epoch instant as ISO 8601 in UTC (``2026-11-28T10:41:21.123456+00:00``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class AttemptRecord:
    id: int
    number: int
    status: str
    started: float
    ended: float | None
    pid: int | None
    exit_code: int | None
    signal: int | None
    error: str | None
    output: Any
    params: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": self.status,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "error": self.error,
            "output": self.output,
        }


@dataclass
class TaskRecord:
    task_id: str
    status: str
    attempts: int
    next_attempt_at: float | None
    skip_reason: str | None
    output: Any
    error: str | None
    attempt_list: list[AttemptRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "output": self.output,
            "error": self.error,
            "skip_reason": self.skip_reason,
        }


@dataclass
class RunRecord:
    id: int
    workflow: str
    version: int | None
    document: str
    status: str
    trigger: str
    trigger_payload: Any
    params: dict[str, Any]
    logical_time: float
    created: float
    started: float | None
    ended: float | None
    error: str | None
    parent_run_id: int | None
    source: str
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The stable ``runs --json`` shape."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "status": self.status,
            "trigger": self.trigger,
            "logical_time": iso(self.logical_time),
            "started": iso(self.started),
            "ended": iso(self.ended),
            "duration": None if self.started is None or self.ended is None else round(self.ended - self.started, 3),
            "params": self.params,
            "error": self.error,
            "parent_run_id": self.parent_run_id,
        }


_RUN_COLUMNS = (
    "id, workflow, version, document, status, trigger, trigger_payload, params, logical_time,"
    " created, started, ended, error, parent_run_id, source"
)


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        id=row[0], workflow=row[1], version=row[2], document=row[3], status=row[4],
        trigger=row[5], trigger_payload=_loads(row[6]), params=_loads(row[7]) or {},
        logical_time=row[8], created=row[9], started=row[10], ended=row[11], error=row[12],
        parent_run_id=row[13], source=row[14],
    )


def create_run(
    db: sqlite_utils.Database,
    doc: Mapping[str, Any],
    *,
    at: float,
    params: Mapping[str, Any],
    version: int | None = None,
    trigger: str = "manual",
    trigger_payload: Any = None,
    logical_time: float | None = None,
    parent_run_id: int | None = None,
    source: str = "store",
    owner: str | None = None,
) -> int:
    """Record a queued run of ``doc`` with every task pending; return its id."""
    with write_txn(db):
        digest = put_document(db, doc, at=at)
        cursor = db.execute(
            "INSERT INTO runs (workflow, version, document, status, trigger, trigger_payload, params,"
            " logical_time, created, parent_run_id, source, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                doc["name"], version, digest, RunState.QUEUED.value, trigger,
                None if trigger_payload is None else dump_json(trigger_payload),
                dump_json(dict(params)), at if logical_time is None else logical_time,
                at, parent_run_id, source, owner,
            ],
        )
        run_id = int(cursor.lastrowid)
        db.conn.executemany(
            "INSERT INTO task_states (run_id, task_id, status, attempts, updated) VALUES (?, ?, ?, 0, ?)",
            [(run_id, t["id"], TaskState.PENDING.value, at) for t in doc["tasks"]],
        )
    return run_id


def get_run(db: sqlite_utils.Database, run_id: int, *, with_attempts: bool = False) -> RunRecord:
    """A run with its tasks (and their attempts when asked)."""
    row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise NotFound(f"no run with id {run_id}; list runs with 'taskloom runs'")
    run = _run(row)
    for r in db.execute(
        "SELECT task_id, status, attempts, next_attempt_at, skip_reason, output, error"
        " FROM task_states WHERE run_id = ? ORDER BY rowid",
        [run_id],
    ):
        run.tasks[r[0]] = TaskRecord(r[0], r[1], r[2], r[3], r[4], _loads(r[5]), r[6])
    if with_attempts:
        for r in db.execute(
            "SELECT id, task_id, number, status, started, ended, pid, exit_code, signal, error, output,"
            " params FROM attempts WHERE run_id = ? ORDER BY task_id, number",
            [run_id],
        ):
            run.tasks[r[1]].attempt_list.append(
                AttemptRecord(r[0], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], _loads(r[10]), _loads(r[11]))
            )
    return run


def list_runs(
    db: sqlite_utils.Database, workflow: str | None = None, *, limit: int = 50, status: str | None = None
) -> list[RunRecord]:
    """Runs, newest first."""
    where, args = [], []
    if workflow is not None:
        where.append("workflow = ?")
        args.append(workflow)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY id DESC LIMIT ?", [*args, limit]
    ).fetchall()
    return [_run(r) for r in rows]


def iter_logs(
    db: sqlite_utils.Database, run_id: int, *, task_id: str | None = None, after_id: int = 0
) -> Iterator[dict[str, Any]]:
    """Log lines of a run in the order they were captured (per task, per attempt)."""
    sql = "SELECT id, task_id, attempt, ts, stream, line FROM logs WHERE run_id = ? AND id > ?"
    args: list[Any] = [run_id, after_id]
    if task_id is not None:
        sql += " AND task_id = ?"
        args.append(task_id)
    for r in db.execute(sql + " ORDER BY id", args):
        yield {"id": r[0], "task": r[1], "attempt": r[2], "ts": r[3], "stream": r[4], "line": r[5]}
