"""The runner's journal on SQLite (implements :class:`taskloom.core.journal.Journal`).

A journal instance belongs to one process (its ``owner`` id, the runner
heartbeat's). Every batch first checks that the runs it writes are still
owned by it: when another process has taken a run over (its heartbeat
expired), the old owner gets :class:`taskloom.core.journal.Fenced` and writes nothing.

Every status it writes goes through :mod:`taskloom.storage.transitions`: a
change the transition table forbids, or one from a state the row is not in,
raises :class:`taskloom.core.states.InvalidTransition` and is not written.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import sqlite_utils

from taskloom.core.journal import UNSET, Fenced, LogLine, RunSnapshot, TaskSnapshot
from taskloom.core.states import FAILURE_STATES, RunState, TaskState

from taskloom.storage.db import write_txn
from taskloom.storage.outputs import DEFAULT_MAX_OUTPUT_BYTES, SPILL_KEY, OutputCodec
from taskloom.storage.transitions import change_attempt, change_run, change_task

__all__ = ["SqliteJournal", "dump_json"]


def dump_json(value: Any) -> str:
    """Compact JSON for a stored value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class SqliteJournal:
    """Writes run, task, attempt and log records; safe to share between threads."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        *,
        owner: str | None = None,
        home: Path | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> None:
        self.db = db
        self.owner = owner
        self.outputs = OutputCodec.for_store(db, home, max_output_bytes)
        self._claimed: set[int] = set()
        # The stored form of the last output of each task, so the task row reuses
        # the attempt's spilled file instead of writing it twice.
        self._encoded: dict[tuple[int, str], tuple[int, str]] = {}
        # What attempt_ended needs of an attempt this journal started: (run, task, number), not read back.
        self._attempts: dict[int, tuple[int, str, int]] = {}

    @contextmanager
    def batch(self, *, durable: bool = True) -> Iterator[None]:
        # Under BEGIN IMMEDIATE nobody else can take the run over, so the fence is checked once per transaction.
        with write_txn(self.db, durable=durable, on_begin=self._check_fence):
            yield

    def _check_fence(self) -> None:
        for run_id in self._claimed:
            row = self.db.execute("SELECT owner FROM runs WHERE id = ?", [run_id]).fetchone()
            if row is None or row[0] != self.owner:
                raise Fenced(f"run {run_id} is now owned by another process ({row and row[0]})")

    def run_started(self, run_id: int, *, at: float) -> None:
        with write_txn(self.db):
            if self.owner is not None:
                self.db.execute("UPDATE runs SET owner = ? WHERE id = ?", [self.owner, run_id])
                self._claimed.add(run_id)
            # queued (a new run) or crashed (a resumed one), whichever the table allows
            change_run(self.db, run_id, RunState.RUNNING, assign="started = COALESCE(started, ?), ended = NULL,"
                       " error = NULL", args=[at])

    def run_ended(self, run_id: int, status: RunState, *, at: float, error: str | None = None) -> None:
        with self.batch():
            change_run(self.db, run_id, status, was=RunState.RUNNING, assign="ended = ?, error = ?,"
                       " cancel_requested = NULL", args=[at, error])

    def _encode(self, value: Any, run_id: int, task_id: str, attempt: int) -> str:
        cached = self._encoded.get((run_id, task_id))
        if cached is not None and cached[0] == id(value):
            return cached[1]
        text = self.outputs.encode(value, run_id=run_id, task_id=task_id, attempt=attempt)
        self._encoded[(run_id, task_id)] = (id(value), text)
        return text

    def task_changed(
        self,
        run_id: int,
        task_id: str,
        status: TaskState,
        *,
        at: float,
        was: TaskState | None = None,
        attempts: Any = UNSET,
        next_attempt_at: Any = UNSET,
        skip_reason: Any = UNSET,
        output: Any = UNSET,
        error: Any = UNSET,
    ) -> None:
        columns = {"updated": at}
        for name, value in (
            ("attempts", attempts),
            ("next_attempt_at", next_attempt_at),
            ("skip_reason", skip_reason),
            ("error", error),
        ):
            if value is not UNSET:
                columns[name] = value
        if output is not UNSET:
            columns["output"] = None if output is None else self._encode(output, run_id, task_id, 0)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.batch():
            change_task(self.db, run_id, task_id, status, was=was, assign=assignments, args=list(columns.values()))

    def attempt_started(self, run_id: int, task_id: str, number: int, *, at: float, params: Any) -> int:
        with self.batch():
            cursor = self.db.execute(
                "INSERT INTO attempts (run_id, task_id, number, status, started, params)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [run_id, task_id, number, TaskState.RUNNING.value, at, self._bounded(params, run_id, task_id, number)],
            )
            attempt_id = int(cursor.fetchall()[0][0])
        self._attempts[attempt_id] = (run_id, task_id, number)
        return attempt_id

    def _bounded(self, params: Any, run_id: int, task_id: str, number: int) -> str:
        """The stored form of an attempt's rendered parameters, never much larger than the spill threshold.

        Parameters are kept for the attempt viewer only (a resumed attempt renders
        them again). A value that is an upstream output kept apart (``{{
        tasks.make.output }}`` of a 3 MB output) is stored as that output's
        reference and preview, not copied; any other value over the threshold is
        kept apart like an output, under ``TASK.params``.
        """
        text = dump_json(params)
        if len(text) <= self.outputs.max_bytes // 4 or len(text.encode()) <= self.outputs.max_bytes:
            return text
        spilled = {kept: json.loads(stored) for (run, _), (kept, stored) in list(self._encoded.items())
                   if run == run_id and stored.startswith('{"' + SPILL_KEY)}

        def bound(value: Any) -> Any:
            if id(value) in spilled:
                return spilled[id(value)]
            if isinstance(value, dict):
                return {key: bound(item) for key, item in value.items()}
            if isinstance(value, list):
                return [bound(item) for item in value]
            if isinstance(value, str) and len(value.encode()) <= self.outputs.max_bytes:
                return value
            if not isinstance(value, str) and len(dump_json(value).encode()) <= self.outputs.max_bytes:
                return value
            return json.loads(self.outputs.encode(value, run_id=run_id, task_id=f"{task_id}.params", attempt=number))

        return dump_json(bound(params))

    def attempt_process(self, attempt_id: int, pid: int) -> None:
        # Only needed to kill leftovers after this process dies; after a power loss none are left.
        with self.batch(durable=False):
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
        known = self._attempts.pop(attempt_id, None)
        with self.batch():
            stored = None
            if output is not None:
                run_id, task_id, number = known or self.db.execute(
                    "SELECT run_id, task_id, number FROM attempts WHERE id = ?", [attempt_id]
                ).fetchone()
                stored = self._encode(output, run_id, task_id, number)
            change_attempt(self.db, attempt_id, status, assign="ended = ?, exit_code = ?, signal = ?, error = ?,"
                           " output = ?", args=[at, exit_code, signal, error, stored])

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        # The attempt's end is committed durably after its lines, and that fsync carries them too.
        with write_txn(self.db, durable=False):
            self.db.conn.executemany(
                "INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                [(l.run_id, l.task_id, l.attempt, l.ts, l.stream, l.line) for l in lines],
            )

    def cancel_requested(self, run_id: int) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM runs WHERE id = ?", [run_id]).fetchone()
        return bool(row and row[0] is not None)

    def load_run(self, run_id: int) -> RunSnapshot:
        """The journaled state of a run, with spilled outputs read back."""
        row = self.db.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise LookupError(f"no run with id {run_id}")
        failures: dict[str, int] = {}
        for task_id, count in self.db.execute(
            "SELECT task_id, count(*) FROM attempts WHERE run_id = ? AND status IN (?, ?, ?) GROUP BY task_id",
            [run_id, *(s.value for s in FAILURE_STATES)],
        ):
            failures[task_id] = count
        tasks = {}
        for task_id, status, attempts, next_at, skip_reason, output in self.db.execute(
            "SELECT task_id, status, attempts, next_attempt_at, skip_reason, output FROM task_states"
            " WHERE run_id = ? ORDER BY position",
            [run_id],
        ):
            tasks[task_id] = TaskSnapshot(
                status=TaskState(status),
                attempts=attempts,
                failures=failures.get(task_id, 0),
                next_attempt_at=next_at,
                output=self.outputs.decode(output) if status == TaskState.SUCCEEDED.value else None,
                skip_reason=skip_reason,
            )
        return RunSnapshot(run_id, RunState(row[0]), tasks)
