"""The runner's journal on SQLite (implements :class:`engine.journal.Journal`)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import sqlite_utils

from engine.journal import UNSET, LogLine
from engine.states import RunState, TaskState

from .db import write_txn

__all__ = ["SqliteJournal", "dump_json"]


def dump_json(value: Any) -> str:
    """JSON for a stored value; non-finite floats are refused upstream."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class SqliteJournal:
    """Writes run, task, attempt and log records; safe to share between threads."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    @contextmanager
    def batch(self) -> Iterator[None]:
        with write_txn(self.db):
            yield

    def run_started(self, run_id: int, *, at: float) -> None:
        with write_txn(self.db):
            self.db.execute(
                "UPDATE runs SET status = ?, started = COALESCE(started, ?), ended = NULL, error = NULL"
                " WHERE id = ?",
                [RunState.RUNNING.value, at, run_id],
            )

    def run_ended(self, run_id: int, status: RunState, *, at: float, error: str | None = None) -> None:
        with write_txn(self.db):
            self.db.execute(
                "UPDATE runs SET status = ?, ended = ?, error = ? WHERE id = ?",
                [RunState(status).value, at, error, run_id],
            )

    def task_changed(
        self,
        run_id: int,
        task_id: str,
        status: TaskState,
        *,
        at: float,
        attempts: Any = UNSET,
        next_attempt_at: Any = UNSET,
        skip_reason: Any = UNSET,
        output: Any = UNSET,
        error: Any = UNSET,
    ) -> None:
        columns = {"status": TaskState(status).value, "updated": at}
        for name, value in (
            ("attempts", attempts),
            ("next_attempt_at", next_attempt_at),
            ("skip_reason", skip_reason),
            ("error", error),
        ):
            if value is not UNSET:
                columns[name] = value
        if output is not UNSET:
            columns["output"] = None if output is None else dump_json(output)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with write_txn(self.db):
            self.db.execute(
                f"UPDATE task_states SET {assignments} WHERE run_id = ? AND task_id = ?",
                [*columns.values(), run_id, task_id],
            )

    def attempt_started(self, run_id: int, task_id: str, number: int, *, at: float, params: Any) -> int:
        with write_txn(self.db):
            cursor = self.db.execute(
                "INSERT INTO attempts (run_id, task_id, number, status, started, params)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, task_id, number, TaskState.RUNNING.value, at, dump_json(params)],
            )
            return int(cursor.lastrowid)

    def attempt_process(self, attempt_id: int, pid: int) -> None:
        with write_txn(self.db):
            self.db.execute("UPDATE attempts SET pid = ? WHERE id = ?", [pid, attempt_id])

    def attempt_ended(
        self,
        attempt_id: int,
        status: TaskState,
        *,
        at: float,
        exit_code: int | None = None,
        signal: int | None = None,
        error: str | None = None,
        output: Any = None,
    ) -> None:
        with write_txn(self.db):
            self.db.execute(
                "UPDATE attempts SET status = ?, ended = ?, exit_code = ?, signal = ?, error = ?,"
                " output = ? WHERE id = ?",
                [
                    TaskState(status).value,
                    at,
                    exit_code,
                    signal,
                    error,
                    None if output is None else dump_json(output),
                    attempt_id,
                ],
            )

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        with write_txn(self.db):
            self.db.conn.executemany(
                "INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                [(l.run_id, l.task_id, l.attempt, l.ts, l.stream, l.line) for l in lines],
            )
