"""Task, run and attempt states, and the one table of transitions between them.

States are ``str`` enums so they serialize as plain strings in JSON and SQLite.
The tables below are the single authority on how a state may change, and each
allowed transition says why the product needs it. Nothing writes a status
column without asking them: :mod:`taskloom.storage.transitions` checks every
change (the runner's, through the journal, and recovery's, cancel's, resume's
and re-run's) and refuses one the table does not allow with
:class:`InvalidTransition` instead of writing it, so an impossible history (a
succeeded task going back to running) is never recorded.

A row's first state is not a transition: a run is created ``queued`` with
every task ``pending``; an attempt is created ``running``.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping, TypeVar

from taskloom.core.errors import InternalError

__all__ = [
    "TaskState",
    "RunState",
    "TASK_TRANSITIONS",
    "RUN_TRANSITIONS",
    "FINAL_RUN_STATES",
    "ATTEMPT_TRANSITIONS",
    "TERMINAL_TASK_STATES",
    "FAILURE_STATES",
    "TERMINAL_RUN_STATES",
    "InvalidTransition",
    "check_task_transition",
    "check_run_transition",
    "check_attempt_transition",
    "task_sources",
    "run_sources",
]


class TaskState(str, Enum):
    """The state of one task within one run (an attempt's state uses the same values)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the task itself failed: non-zero exit, an exception
    TIMED_OUT = "timed_out"  # the attempt outlived its timeout and was killed
    CRASHED = "crashed"  # the infrastructure died, not the task (signal, lost runner)
    SKIPPED = "skipped"  # its join could no longer be satisfied
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class RunState(str, Enum):
    """The state of one run of a workflow."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"

    def __str__(self) -> str:
        return self.value


#: Ways an attempt can fail; each counts as a failure for edges and retries.
FAILURE_STATES = frozenset({TaskState.FAILED, TaskState.TIMED_OUT, TaskState.CRASHED})

TERMINAL_TASK_STATES = frozenset(
    {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.TIMED_OUT,
        TaskState.CRASHED,
        TaskState.SKIPPED,
        TaskState.CANCELLED,
    }
)

TERMINAL_RUN_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED}
)

#: old -> {new: why}. A task's row is its summary: an attempt that fails and is
#: retried ends in its own row (:data:`ATTEMPT_TRANSITIONS`) while the task goes
#: from running straight back to pending. A terminal task never changes again:
#: a resumed run keeps it, a re-run is a new run.
TASK_TRANSITIONS: dict[TaskState, dict[TaskState, str]] = {
    TaskState.PENDING: {
        TaskState.RUNNING: "an attempt starts: the first, a retry that is due, or one of a resumed run",
        TaskState.PENDING: "a task that waits before it starts (delay) records when it will start",
        TaskState.SKIPPED: "its join can no longer be satisfied, or the run timed out before it started;"
                           " also a skip a re-run reuses from its parent run",
        TaskState.CANCELLED: "the run is cancelled before the task started (or while it waited for a retry)",
        TaskState.SUCCEEDED: "a re-run reuses the result of its parent run (the runner never does this)",
    },
    TaskState.RUNNING: {
        TaskState.SUCCEEDED: "its attempt succeeded",
        TaskState.FAILED: "its attempt failed and no retry is left",
        TaskState.TIMED_OUT: "its attempt outlived its timeout, or the run's, and no retry is left",
        TaskState.CRASHED: "its attempt's implementation raised, or its runner died (recovery), no retry left",
        TaskState.CANCELLED: "the run was cancelled while the attempt ran",
        TaskState.PENDING: "a retry is due later (a failure, or a crash found by recovery), or the run was"
                           " interrupted (stop, SIGTERM) and the task runs again when it resumes",
    },
    TaskState.SUCCEEDED: {},
    TaskState.FAILED: {},
    TaskState.TIMED_OUT: {},
    TaskState.CRASHED: {},
    TaskState.SKIPPED: {},
    TaskState.CANCELLED: {},
}

#: old -> {new: why}. A run is ``crashed`` when it stopped before its end and can
#: be resumed; the other terminal states are final (a re-run is a new run).
RUN_TRANSITIONS: dict[RunState, dict[RunState, str]] = {
    RunState.QUEUED: {
        RunState.RUNNING: "a runner starts it",
        RunState.CANCELLED: "cancelled before a runner took it (or after its claimer died)",
        RunState.CRASHED: "recovery: the scheduler that claimed it died before it started",
    },
    RunState.RUNNING: {
        RunState.SUCCEEDED: "every task ended and nothing unhandled failed",
        RunState.FAILED: "a task failed with nothing to handle it, or the run outlived settings.timeout",
        RunState.CANCELLED: "cancelled: by its runner, or by whoever cancels it after its runner died",
        RunState.CRASHED: "interrupted (stop, SIGTERM), or recovery found its runner dead; it can resume",
    },
    RunState.CRASHED: {
        RunState.RUNNING: "resumed in place: taskloom resume, or a scheduler taking up a crashed run",
        RunState.QUEUED: "resume requested (the web's resume button): queued for the scheduler",
        RunState.CANCELLED: "a crashed run is cancelled instead of resumed",
    },
    RunState.SUCCEEDED: {},
    RunState.FAILED: {},
    RunState.CANCELLED: {},
}

#: The run states nothing follows (a crashed run can still resume): derived from the table.
FINAL_RUN_STATES = frozenset(state for state, moves in RUN_TRANSITIONS.items() if not moves)

#: old -> {new: why}. An attempt is created running and ends once.
ATTEMPT_TRANSITIONS: dict[TaskState, dict[TaskState, str]] = {
    TaskState.RUNNING: {
        TaskState.SUCCEEDED: "the task's work succeeded",
        TaskState.FAILED: "the task failed (non-zero exit, an error), or its parameters did not render",
        TaskState.TIMED_OUT: "it outlived its timeout, or the run's, and was killed",
        TaskState.CRASHED: "its implementation raised, or recovery found its runner dead",
        TaskState.CANCELLED: "killed by a cancel or an interrupt, or cancelled with its orphaned run",
    },
    **{state: {} for state in TERMINAL_TASK_STATES - {TaskState.SKIPPED}},
}

_S = TypeVar("_S", TaskState, RunState)


def _sources(table: Mapping[_S, Mapping[_S, str]]) -> dict[_S, frozenset[_S]]:
    """The table turned around: new -> every old it may come from."""
    found: dict[_S, set[_S]] = {}
    for old, news in table.items():
        for new in news:
            found.setdefault(new, set()).add(old)
    return {new: frozenset(olds) for new, olds in found.items()}


_TASK_SOURCES = _sources(TASK_TRANSITIONS)
_RUN_SOURCES = _sources(RUN_TRANSITIONS)


def task_sources(new: TaskState) -> frozenset[TaskState]:
    """Every state a task may go to ``new`` from."""
    return _TASK_SOURCES.get(TaskState(new), frozenset())


def run_sources(new: RunState) -> frozenset[RunState]:
    """Every state a run may go to ``new`` from."""
    return _RUN_SOURCES.get(RunState(new), frozenset())


class InvalidTransition(InternalError, ValueError):
    """A state change that the transition table does not allow: a bug in whoever asked for it.

    It is raised instead of writing the change. ``kind`` is ``"task"``,
    ``"run"`` or ``"attempt"``; ``from_state`` is the state the row is in
    (or was believed to be in), ``to_state`` the one refused; ``run_id``,
    ``task_id`` and ``attempt_id`` say which row, as far as they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        from_state: TaskState | RunState,
        to_state: TaskState | RunState,
        run_id: object = None,
        task_id: str | None = None,
        attempt_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.from_state = from_state
        self.to_state = to_state
        self.run_id = run_id
        self.task_id = task_id
        self.attempt_id = attempt_id


def _of_run(run_id: object) -> str:
    return "" if run_id is None else f" of run {run_id}"


def check_task_transition(task_id: str, old: TaskState, new: TaskState, *, run_id: object = None) -> None:
    """Raise :class:`InvalidTransition` unless ``old -> new`` is allowed for a task."""
    old, new = TaskState(old), TaskState(new)
    if new not in TASK_TRANSITIONS[old]:
        raise InvalidTransition(
            f"task {task_id!r}{_of_run(run_id)} cannot go from {old} to {new}",
            kind="task", from_state=old, to_state=new, run_id=run_id, task_id=task_id,
        )


def check_run_transition(run_id: object, old: RunState, new: RunState) -> None:
    """Raise :class:`InvalidTransition` unless ``old -> new`` is allowed for a run."""
    old, new = RunState(old), RunState(new)
    if new not in RUN_TRANSITIONS[old]:
        raise InvalidTransition(
            f"run {run_id} cannot go from {old} to {new}", kind="run", from_state=old, to_state=new, run_id=run_id
        )


def check_attempt_transition(
    attempt_id: int | None, old: TaskState, new: TaskState, *, run_id: object = None, task_id: str | None = None
) -> None:
    """Raise :class:`InvalidTransition` unless an attempt may go from ``old`` to ``new``."""
    old, new = TaskState(old), TaskState(new)
    if new not in ATTEMPT_TRANSITIONS.get(old, {}):
        of_task = "" if task_id is None else f" of task {task_id!r}"
        raise InvalidTransition(
            f"attempt {attempt_id}{of_task}{_of_run(run_id)} cannot go from {old} to {new}",
            kind="attempt", from_state=old, to_state=new, run_id=run_id, task_id=task_id, attempt_id=attempt_id,
        )
