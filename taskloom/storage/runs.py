"""Runs, their per-task states, attempts and log lines: creating and reading them.

The runner writes progress through :class:`taskloom.storage.journal.SqliteJournal`;
this module creates a run (with a row per task, all pending, in one
transaction) and answers the questions the CLI and UI ask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import sqlite_utils

from taskloom.core.states import RunState, TaskState

from taskloom.storage.db import write_txn
from taskloom.storage.journal import dump_json
from taskloom.storage.transitions import change_run, change_task
from taskloom.storage.workflows import NotFound, put_document

__all__ = ["RunRecord", "TaskRecord", "AttemptRecord", "create_run", "queued_run", "get_run", "list_runs", "mark_cancel_requested",
           "iter_logs", "iso", "like_escape", "search_runs", "search_firings", "LogPage", "log_page", "LogPageQuery",
           "log_page_query", "request_resume", "run_triggers", "RunOwnership", "run_ownership", "link_parent_run",
           "subworkflow_depth", "reuse_results", "last_run_end", "runs_ended_after", "reused_from", "attempt_numbers",
           "run_workflow_names"]


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
    #: the folder the run's relative paths resolve against (its version's, or its file's), or None
    folder: str | None = None
    #: who started it: a user's name (``local`` without accounts), ``schedule`` for a time trigger, or
    #: ``webhook``; None for runs recorded before accounts existed
    started_by: str | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stable ``run --json`` shape, also the REST API's run body (keys are only ever added)."""
        summary = self.summary()
        return {
            "run_id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "started": summary["started"],
            "ended": summary["ended"],
            "tasks": {
                tid: {**task.to_dict(), "attempt_list": [a.to_dict() for a in task.attempt_list]}
                for tid, task in self.tasks.items()
            },
        }

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
            "started_by": self.started_by,
        }


_RUN_COLUMNS = (
    "id, workflow, version, document, status, trigger, trigger_payload, params, logical_time,"
    " created, started, ended, error, parent_run_id, source, folder, started_by"
)


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        id=row[0], workflow=row[1], version=row[2], document=row[3], status=row[4],
        trigger=row[5], trigger_payload=_loads(row[6]), params=_loads(row[7]) or {},
        logical_time=row[8], created=row[9], started=row[10], ended=row[11], error=row[12],
        parent_run_id=row[13], source=row[14], folder=row[15], started_by=row[16],
    )


def queued_run(
    db: sqlite_utils.Database,
    doc: Mapping[str, Any],
    *,
    at: float,
    params: Mapping[str, Any],
    version: int | None = None,
    trigger: str = "manual",
    trigger_id: str | None = None,
    trigger_payload: Any = None,
    logical_time: float | None = None,
    parent_run_id: int | None = None,
    source: str = "store",
    owner: str | None = None,
    folder: str | None = None,
    started_by: str | None = None,
    digest: str | None = None,
) -> RunRecord:
    """Record a queued run of ``doc`` with every task pending; return its record, as :func:`get_run` would read it.

    ``digest`` is the hash of ``doc`` when it is stored already (a stored
    version's document): the run references that row, and the document is not
    serialized and hashed again. Stored documents are never deleted.
    """
    with write_txn(db):
        if digest is None:
            digest = put_document(db, doc, at=at)
        cursor = db.execute(
            "INSERT INTO runs (workflow, version, document, status, trigger, trigger_id, trigger_payload, params,"
            " logical_time, created, parent_run_id, source, owner, folder, started_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                doc["name"], version, digest, RunState.QUEUED.value, trigger, trigger_id,
                None if trigger_payload is None else dump_json(trigger_payload),
                dump_json(dict(params)), at if logical_time is None else logical_time,
                at, parent_run_id, source, owner, folder, started_by,
            ],
        )
        run_id = int(cursor.fetchall()[0][0])
        db.conn.executemany(
            "INSERT INTO task_states (run_id, task_id, status, attempts, updated, position) VALUES (?, ?, ?, 0, ?, ?)",
            [(run_id, t["id"], TaskState.PENDING.value, at, index) for index, t in enumerate(doc["tasks"])],
        )
    pending = TaskState.PENDING.value
    return RunRecord(
        id=run_id, workflow=doc["name"], version=version, document=digest, status=RunState.QUEUED.value,
        trigger=trigger, trigger_payload=trigger_payload, params=dict(params),
        logical_time=at if logical_time is None else logical_time, created=at, started=None, ended=None, error=None,
        parent_run_id=parent_run_id, source=source, folder=folder, started_by=started_by,
        tasks={t["id"]: TaskRecord(t["id"], pending, 0, None, None, None, None) for t in doc["tasks"]},
    )


def create_run(db: sqlite_utils.Database, doc: Mapping[str, Any], **options: Any) -> int:
    """Record a queued run of ``doc`` (:func:`queued_run`); return its id."""
    return queued_run(db, doc, **options).id


def get_run(db: sqlite_utils.Database, run_id: int, *, with_attempts: bool = False) -> RunRecord:
    """A run with its tasks (and their attempts when asked)."""
    row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise NotFound(f"no run with id {run_id}; list runs with 'taskloom runs'")
    run = _run(row)
    for r in db.execute(
        "SELECT task_id, status, attempts, next_attempt_at, skip_reason, output, error"
        " FROM task_states WHERE run_id = ? ORDER BY position",
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


# -- the run-log viewer's queries (keyset-paginated, never a full scan of runs or logs) -------------------


def like_escape(text: str) -> str:
    """``text`` as a literal inside a ``LIKE ... ESCAPE '\\'`` pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_runs(
    db: sqlite_utils.Database,
    *,
    workflow: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    since: float | None = None,
    until: float | None = None,
    text: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    """Runs matching the filters, newest first, at most ``limit``, with ids below ``before_id`` (keyset paging).

    ``since``/``until`` bound the creation time (``since <= created < until``).
    ``text`` matches a run id exactly, or appears (case-insensitively) in the
    workflow name, the run's error or one of its tasks' errors.
    """
    where, args = [], []
    for column, value in (("workflow", workflow), ("status", status), ("trigger", trigger)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    _bounds(where, args, "created", since, until, before_id)
    text = (text or "").strip()
    if text:
        pattern = f"%{like_escape(text)}%"
        parts = [
            "workflow LIKE ? ESCAPE '\\'",
            "error LIKE ? ESCAPE '\\'",
            "EXISTS (SELECT 1 FROM task_states t WHERE t.run_id = runs.id AND t.error LIKE ? ESCAPE '\\')",
        ]
        part_args: list[Any] = [pattern, pattern, pattern]
        number = text.lstrip("#")
        if number.isdigit():
            parts.insert(0, "id = ?")
            part_args.insert(0, int(number))
        where.append(f"({' OR '.join(parts)})")
        args.extend(part_args)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY id DESC LIMIT ?", [*args, int(limit)]
    ).fetchall()
    return [_run(r) for r in rows]


def _bounds(
    where: list[str], args: list[Any], column: str, since: float | None, until: float | None, before_id: int | None
) -> None:
    """Add a ``since <= column < until`` time range and the keyset cursor ``id < before_id``."""
    for clause, value in ((f"{column} >= ?", since), (f"{column} < ?", until), ("id < ?", before_id)):
        if value is not None:
            where.append(clause)
            args.append(value)


def run_triggers(db: sqlite_utils.Database) -> list[str]:
    """The trigger kinds runs have (``manual``, ``rerun``, ``cron``...)."""
    return [r[0] for r in db.execute("SELECT DISTINCT trigger FROM runs ORDER BY trigger")]


def search_firings(
    db: sqlite_utils.Database,
    *,
    workflow: str | None = None,
    statuses: Sequence[str] = ("missed", "skipped_overlap"),
    since: float | None = None,
    until: float | None = None,
    text: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Firings that started no run, newest (by id) first; ``since``/``until`` bound the firing instant."""
    if not statuses:
        return []
    where = [f"status IN ({','.join('?' * len(statuses))})"]
    args: list[Any] = list(statuses)
    if workflow is not None:
        where.append("workflow = ?")
        args.append(workflow)
    _bounds(where, args, "instant", since, until, before_id)
    text = (text or "").strip()
    if text:
        pattern = f"%{like_escape(text)}%"
        where.append("(workflow LIKE ? ESCAPE '\\' OR reason LIKE ? ESCAPE '\\' OR trigger_id LIKE ? ESCAPE '\\')")
        args.extend([pattern, pattern, pattern])
    rows = db.execute(
        "SELECT id, workflow, trigger_id, instant, status, reason, created FROM firings"
        f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*args, int(limit)],
    ).fetchall()
    keys = ("id", "workflow", "trigger_id", "instant", "status", "reason", "created")
    return [dict(zip(keys, r)) for r in rows]


@dataclass
class LogPage:
    """One page of log lines in capture order, and whether there are lines before and after it."""

    lines: list[dict[str, Any]]
    has_older: bool
    has_newer: bool

    @property
    def first_id(self) -> int | None:
        return self.lines[0]["id"] if self.lines else None

    @property
    def last_id(self) -> int | None:
        return self.lines[-1]["id"] if self.lines else None


class LogPageQuery(NamedTuple):
    """The statements :func:`log_page` issues for one shape of page, and their fixed arguments.

    ``span`` reads the run's first and last line ids (arguments: the run id,
    twice); ``page`` reads the lines (``args``, the lowest and highest ids it
    may read, the limit); ``older`` asks whether a line lies between the
    run's first id and a page's (``args``, those two ids). Every walk is of an
    index of ``logs`` in id order, from the cursor, stopping after the limit,
    so none sorts (``tests/test_log_pages.py`` reads their plans on both
    backends): ``(run_id, id)`` for a whole run, alone or with a search or an
    attempt (m012); ``(run_id, task_id, id)`` for a task; ``(run_id, task_id,
    attempt, id)`` for a task's attempt.
    """

    span: str
    page: str
    older: str
    args: tuple[Any, ...]


#: A search, as a CASE whose selectivity PostgreSQL cannot estimate (it takes nearly every row to match).
#: Estimating the LIKE itself (0.5 % of rows for a generic plan, fewer for a rare word) it would read every
#: matching line of the run and sort them rather than walk in order and stop after a page: fast when the
#: estimate is right, a sort of most of the run when the word is common. SQLite evaluates it as the LIKE.
_SEARCH = "CASE WHEN line LIKE ? ESCAPE '\\' THEN 1 ELSE 0 END <> 0"


def log_page_query(
    run_id: int,
    *,
    task_id: str | None = None,
    attempt: int | None = None,
    search: str | None = None,
    backward: bool = False,
) -> LogPageQuery:
    """The statements of one :func:`log_page` call; ``backward`` for the older page (``before_id``)."""
    where, args = ["run_id = ?"], [run_id]
    if task_id is not None:
        where.append("task_id = ?")
        args.append(task_id)
    if attempt is not None:
        where.append("attempt = ?")
        args.append(attempt)
    if search:
        where.append(_SEARCH)
        args.append(f"%{like_escape(search)}%")
    base = " AND ".join(where)
    span = "SELECT (SELECT min(id) FROM logs WHERE run_id = ?), (SELECT max(id) FROM logs WHERE run_id = ?)"
    columns = "SELECT id, task_id, attempt, ts, stream, line FROM logs"
    # The walk starts at the cursor end of its bounds (the ORDER BY's direction) and goes no further than the
    # run's other end.
    page = (f"{columns} WHERE {base} AND id >= ? AND id < ? ORDER BY id DESC LIMIT ?" if backward else
            f"{columns} WHERE {base} AND id > ? AND id <= ? ORDER BY id LIMIT ?")
    older = f"SELECT 1 FROM logs WHERE {base} AND id >= ? AND id < ? ORDER BY id DESC LIMIT 1"
    return LogPageQuery(span, page, older, tuple(args))


def log_page(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    task_id: str | None = None,
    attempt: int | None = None,
    search: str | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int = 200,
) -> LogPage:
    """At most ``limit`` log lines of a run (of a task, an attempt), in capture order.

    Without a cursor: the first lines. ``after_id``: the lines after it (the
    newer page); ``before_id``: the lines just before it (the older page).
    ``search`` keeps lines containing it (``LIKE``, case-insensitive for ASCII,
    ``%``/``_`` taken literally).

    Every walk stays within the run's first and last line ids, read first:
    PostgreSQL may walk the table's primary key rather than ``(run_id, id)``
    for a run holding much of the table, and unbounded that walk would read
    every earlier run's lines before a first page (or every later run's after
    the last match of a search). Each read stops after ``limit + 1`` lines
    (:func:`log_page_query`).
    """
    query = log_page_query(run_id, task_id=task_id, attempt=attempt, search=search, backward=before_id is not None)
    first, last = db.execute(query.span, [run_id, run_id]).fetchone()
    if first is None:  # no lines at all
        rows: list[Any] = []
    elif before_id is not None:
        rows = db.execute(query.page, [*query.args, first, min(before_id, last + 1), limit + 1]).fetchall()
    else:
        rows = db.execute(query.page, [*query.args, max(after_id or 0, first - 1), last, limit + 1]).fetchall()
    if before_id is not None:
        has_older = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_newer = True
    else:
        has_newer = len(rows) > limit
        rows = rows[:limit]
        if rows and after_id:
            has_older = db.execute(query.older, [*query.args, first, rows[0][0]]).fetchone() is not None
        else:
            has_older = bool(after_id) and not rows
    lines = [{"id": r[0], "task": r[1], "attempt": r[2], "ts": r[3], "stream": r[4], "line": r[5]} for r in rows]
    return LogPage(lines, has_older, has_newer)


def request_resume(db: sqlite_utils.Database, run_id: int) -> bool:
    """Put a crashed run back in the queue, owned by nobody, so the scheduler takes it up; whether it was."""
    with write_txn(db):
        return change_run(db, run_id, RunState.QUEUED, was=RunState.CRASHED, assign="owner = NULL", strict=False)


def reuse_results(db: sqlite_utils.Database, run_id: int, parent_run_id: int, task_ids: Sequence[str]) -> None:
    """Give the tasks ``task_ids`` of the new run ``run_id`` (still pending) the results of its parent's.

    A re-run's reused task goes from pending to the state it ended in
    (succeeded or skipped), with its output and skip reason, and remembers
    where they came from (``reused_from``).
    """
    if not task_ids:
        return
    with write_txn(db):
        wanted = set(task_ids)
        for task_id, status, output, skip_reason in db.execute(
            "SELECT task_id, status, output, skip_reason FROM task_states WHERE run_id = ?", [parent_run_id]
        ).fetchall():
            if task_id in wanted:
                change_task(db, run_id, task_id, TaskState(status), was=TaskState.PENDING,
                            assign="output = ?, skip_reason = ?, reused_from = ?",
                            args=[output, skip_reason, parent_run_id])


def mark_cancel_requested(db: sqlite_utils.Database, run_id: int, *, at: float) -> bool:
    """Record a request to cancel ``run_id`` (kept if one is pending); whether it was new."""
    with write_txn(db):
        return bool(db.execute(
            "UPDATE runs SET cancel_requested = ? WHERE id = ? AND cancel_requested IS NULL", [at, run_id],
        ).rowcount)


# -- what the scheduler, the runner's services and the pollers ask of one run ---------------------------


class RunOwnership(NamedTuple):
    """A run's state, the scheduler session that owns it (None: nobody) and its workflow."""

    status: str
    owner: str | None
    workflow: str


def run_ownership(db: sqlite_utils.Database, run_id: int) -> RunOwnership | None:
    """Who owns ``run_id`` and in which state it is; None when there is no such run."""
    row = db.execute("SELECT status, owner, workflow FROM runs WHERE id = ?", [run_id]).fetchone()
    return None if row is None else RunOwnership(row[0], row[1], row[2])


def link_parent_run(db: sqlite_utils.Database, run_id: int, parent_run_id: int) -> None:
    """Record that ``run_id`` runs as a sub-workflow of (a task of) ``parent_run_id``."""
    with write_txn(db):
        db.execute("UPDATE runs SET parent_run_id = ? WHERE id = ?", [parent_run_id, run_id])


def subworkflow_depth(db: sqlite_utils.Database, run_id: int) -> int:
    """How many sub-workflow runs lead up to ``run_id`` (0 for a run nothing started as a sub-workflow).

    The walk follows ``parent_run_id`` while the run was started by a ``subworkflow``
    trigger: a re-run also names its parent, and ends the chain.
    """
    depth = 0
    row = db.execute("SELECT trigger, parent_run_id FROM runs WHERE id = ?", [run_id]).fetchone()
    while row and row[0] == "subworkflow" and row[1] is not None:
        depth += 1
        row = db.execute("SELECT trigger, parent_run_id FROM runs WHERE id = ?", [row[1]]).fetchone()
    return depth


def last_run_end(db: sqlite_utils.Database, workflow: str) -> float | None:
    """When the last run of ``workflow`` that ended did so; None when none has."""
    row = db.execute("SELECT max(ended) FROM runs WHERE workflow = ?", [workflow]).fetchone()
    return row[0]


def runs_ended_after(
    db: sqlite_utils.Database, workflow: str, statuses: Sequence[str], after: float
) -> list[tuple[int, str, float]]:
    """Runs of ``workflow`` that ended in one of ``statuses`` after ``after``, in the order they ended.

    Rows ``(id, status, ended)``; runs that ended at the same instant come in id order.
    """
    marks = ",".join("?" * len(statuses))
    rows = db.execute(
        f"SELECT id, status, ended FROM runs WHERE workflow = ? AND status IN ({marks}) AND ended > ?"
        " ORDER BY ended, id",
        [workflow, *statuses, after],
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def reused_from(db: sqlite_utils.Database, run_id: int, task_id: str) -> int | None:
    """The run whose result a task of ``run_id`` reused instead of running (a re-run), or None."""
    row = db.execute(
        "SELECT reused_from FROM task_states WHERE run_id = ? AND task_id = ?", [run_id, task_id]
    ).fetchone()
    return None if row is None else row[0]


def attempt_numbers(db: sqlite_utils.Database, run_id: int, task_id: str) -> list[int]:
    """The numbers of a task's attempts in ``run_id``, in order (1, 2, ...); empty before its first."""
    return [r[0] for r in db.execute(
        "SELECT number FROM attempts WHERE run_id = ? AND task_id = ? ORDER BY number", [run_id, task_id]
    )]


def run_workflow_names(db: sqlite_utils.Database) -> list[str]:
    """Every name a run may carry: the stored workflows (by name), then those of runs of files, each once."""
    names = [r[0] for r in db.execute("SELECT name FROM workflows ORDER BY name")]
    names += [r[0] for r in db.execute("SELECT DISTINCT workflow FROM runs WHERE source != 'store'")
              if r[0] not in names]
    return names
