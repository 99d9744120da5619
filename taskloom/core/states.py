"""Task and run states, and the one table of transitions between them.

States are ``str`` enums so they serialize as plain strings in JSON and SQLite.
The transition table is the single authority: the runner asks
:func:`check_task_transition` before it records a change, so an impossible
history (a succeeded task going back to running) can never be journaled.
"""

from __future__ import annotations

from enum import Enum

from taskloom.core.errors import InternalError

__all__ = [
    "TaskState",
    "RunState",
    "TASK_TRANSITIONS",
    "RUN_TRANSITIONS",
    "TERMINAL_TASK_STATES",
    "FAILURE_STATES",
    "TERMINAL_RUN_STATES",
    "InvalidTransition",
    "check_task_transition",
    "check_run_transition",
]


class TaskState(str, Enum):
    """The state of one task within one run."""

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

# A failed/timed-out/crashed task may go back to pending when a retry is due
# (the attempt keeps its own terminal state; the task's summary state moves on).
# A crashed run may be resumed, so it may go back to running.
TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset(
        {TaskState.RUNNING, TaskState.SKIPPED, TaskState.CANCELLED}
    ),
    TaskState.RUNNING: frozenset(
        {
            TaskState.SUCCEEDED,
            TaskState.FAILED,
            TaskState.TIMED_OUT,
            TaskState.CRASHED,
            TaskState.CANCELLED,
        }
    ),
    TaskState.FAILED: frozenset({TaskState.PENDING}),
    TaskState.TIMED_OUT: frozenset({TaskState.PENDING}),
    TaskState.CRASHED: frozenset({TaskState.PENDING}),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.SKIPPED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.CANCELLED}),
    RunState.RUNNING: frozenset(
        {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED}
    ),
    RunState.CRASHED: frozenset({RunState.RUNNING, RunState.CANCELLED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}


class InvalidTransition(InternalError, ValueError):
    """A state change that the transition table does not allow: a bug in whoever asked for it."""


def check_task_transition(task_id: str, old: TaskState, new: TaskState) -> None:
    """Raise :class:`InvalidTransition` unless ``old -> new`` is allowed for a task."""
    if new not in TASK_TRANSITIONS[TaskState(old)]:
        raise InvalidTransition(f"task {task_id!r} cannot go from {old} to {new}")


def check_run_transition(run_id: object, old: RunState, new: RunState) -> None:
    """Raise :class:`InvalidTransition` unless ``old -> new`` is allowed for a run."""
    if new not in RUN_TRANSITIONS[RunState(old)]:
        raise InvalidTransition(f"run {run_id} cannot go from {old} to {new}")
