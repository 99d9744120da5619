"""Writing a status column: every change of a run's, a task's or an attempt's state goes through here.

Each change is held against the transition table (:mod:`taskloom.core.states`)
and written as a compare-and-set. The caller says which state the row is in
(``was``: the state it knows, or several when a state is one of a few, or
``None`` for every state the table allows the new one from); each
``was -> new`` is checked before anything is written, and the ``UPDATE`` only
touches a row that is still in one of those states. A row in another state
means a bug (the runner's memory and the database disagree, or something asked
for a change the table forbids): :class:`InvalidTransition` is raised, naming
the state the row really is in, and nothing is written (the transaction it
was part of rolls back with it). Only then is the row read, so the runner's
hot path costs no extra read.

``strict=False`` is for a compare-and-set meant to lose sometimes (a run that
is not resumable, a race with another process): a row in another state is
left as it is and ``False`` is returned. The many-row forms
(:func:`change_tasks`, :func:`change_attempts`) change the rows of a run that
are in one of the ``was`` states and leave the others, which is what a cancel
means (ended tasks keep their state).

``assign`` is more of the ``SET`` clause (``"ended = ?, error = ?"``) with its
``args``, for the columns that change with the status.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Sequence, TypeVar

import sqlite_utils

from taskloom.core.states import (
    InvalidTransition,
    RunState,
    TaskState,
    check_attempt_transition,
    check_run_transition,
    check_task_transition,
    run_sources,
    task_sources,
)

__all__ = ["change_run", "change_task", "change_attempt", "change_tasks", "change_attempts"]

_S = TypeVar("_S", TaskState, RunState)


def _states(kind: type[_S], was: _S | Collection[_S] | None, default: Callable[[], Collection[_S]]) -> list[_S]:
    if was is None:
        return sorted(default(), key=lambda s: s.value)
    if isinstance(was, (TaskState, RunState)):
        return [kind(was)]
    return [kind(s) for s in was]


def _update(
    db: sqlite_utils.Database, table: str, key: str, key_args: Sequence[Any], new: TaskState | RunState,
    sources: Sequence[TaskState | RunState], assign: str, args: Sequence[Any],
) -> int:
    sets = "status = ?" + (f", {assign}" if assign else "")
    marks = ", ".join("?" * len(sources))
    return db.execute(
        f"UPDATE {table} SET {sets} WHERE {key} AND status IN ({marks})",
        [new.value, *args, *key_args, *(s.value for s in sources)],
    ).rowcount


def _believed(sources: Sequence[TaskState | RunState]) -> str:
    return " or ".join(s.value for s in sources)


def change_run(
    db: sqlite_utils.Database, run_id: int, new: RunState, *, was: RunState | Collection[RunState] | None = None,
    assign: str = "", args: Sequence[Any] = (), also: str = "", also_args: Sequence[Any] = (), strict: bool = True,
) -> bool:
    """Move run ``run_id`` to ``new`` from ``was``; whether it moved (always True when ``strict``).

    ``also`` is more of the ``WHERE`` clause (``"owner IS NOT DISTINCT FROM ?"``), for a claim
    that must also win a race; only with ``strict=False``.
    """
    new = RunState(new)
    sources = _states(RunState, was, lambda: run_sources(new))
    for old in sources:
        check_run_transition(run_id, old, new)
    key = "id = ?" + (f" AND {also}" if also else "")
    if _update(db, "runs", key, [run_id, *also_args], new, sources, assign, args):
        return True
    if not strict:
        return False
    row = db.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise LookupError(f"no run with id {run_id}")
    actual = RunState(row[0])
    check_run_transition(run_id, actual, new)
    raise InvalidTransition(
        f"run {run_id} is {actual}, not {_believed(sources)} as its writer believed; refused {actual} -> {new}",
        kind="run", from_state=actual, to_state=new, run_id=run_id,
    )


def change_task(
    db: sqlite_utils.Database, run_id: int, task_id: str, new: TaskState, *,
    was: TaskState | Collection[TaskState] | None = None, assign: str = "", args: Sequence[Any] = (),
) -> None:
    """Move task ``task_id`` of run ``run_id`` to ``new`` from ``was``."""
    new = TaskState(new)
    sources = _states(TaskState, was, lambda: task_sources(new))
    for old in sources:
        check_task_transition(task_id, old, new, run_id=run_id)
    if _update(db, "task_states", "run_id = ? AND task_id = ?", [run_id, task_id], new, sources, assign, args):
        return
    row = db.execute("SELECT status FROM task_states WHERE run_id = ? AND task_id = ?", [run_id, task_id]).fetchone()
    if row is None:
        raise LookupError(f"run {run_id} has no task {task_id!r}")
    actual = TaskState(row[0])
    check_task_transition(task_id, actual, new, run_id=run_id)
    raise InvalidTransition(
        f"task {task_id!r} of run {run_id} is {actual}, not {_believed(sources)} as its writer believed;"
        f" refused {actual} -> {new}",
        kind="task", from_state=actual, to_state=new, run_id=run_id, task_id=task_id,
    )


def change_attempt(
    db: sqlite_utils.Database, attempt_id: int, new: TaskState, *, was: TaskState = TaskState.RUNNING,
    assign: str = "", args: Sequence[Any] = (),
) -> None:
    """End attempt ``attempt_id`` as ``new`` (an attempt is only ever ended, once)."""
    new, was = TaskState(new), TaskState(was)
    check_attempt_transition(attempt_id, was, new)
    if _update(db, "attempts", "id = ?", [attempt_id], new, [was], assign, args):
        return
    row = db.execute("SELECT status, run_id, task_id FROM attempts WHERE id = ?", [attempt_id]).fetchone()
    if row is None:
        raise LookupError(f"no attempt with id {attempt_id}")
    actual = TaskState(row[0])
    check_attempt_transition(attempt_id, actual, new, run_id=row[1], task_id=row[2])
    raise InvalidTransition(
        f"attempt {attempt_id} of task {row[2]!r} of run {row[1]} is {actual}, not {was}; refused {actual} -> {new}",
        kind="attempt", from_state=actual, to_state=new, run_id=row[1], task_id=row[2], attempt_id=attempt_id,
    )


def change_tasks(
    db: sqlite_utils.Database, run_id: int, new: TaskState, *, was: Collection[TaskState],
    assign: str = "", args: Sequence[Any] = (),
) -> int:
    """Move every task of run ``run_id`` that is in one of ``was`` to ``new``; how many moved."""
    new = TaskState(new)
    sources = _states(TaskState, was, lambda: ())
    for old in sources:
        check_task_transition("*", old, new, run_id=run_id)
    return _update(db, "task_states", "run_id = ?", [run_id], new, sources, assign, args)


def change_attempts(
    db: sqlite_utils.Database, run_id: int, new: TaskState, *, assign: str = "", args: Sequence[Any] = (),
) -> int:
    """End every attempt of run ``run_id`` still running as ``new``; how many ended."""
    new = TaskState(new)
    check_attempt_transition(None, TaskState.RUNNING, new, run_id=run_id)
    return _update(db, "attempts", "run_id = ?", [run_id], new, [TaskState.RUNNING], assign, args)
