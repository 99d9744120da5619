"""The journal: where the runner records every state change, as a protocol.

The runner depends on this protocol, not on storage; ``taskloom.storage.journal``
implements it on SQLite. Keeping the arrow pointing inward lets the engine be
tested and reused without a database, and lets storage change without the
runner noticing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ContextManager, Protocol, Sequence

from taskloom.core.errors import Fenced
from taskloom.core.states import RunState, TaskState

__all__ = ["Journal", "LogLine", "RunEvent", "UNSET", "Fenced", "TaskSnapshot", "RunSnapshot"]



@dataclass(frozen=True)
class RunEvent:
    """A progress notice the runner gives displays (the CLI's live view): a task's or the run's new state."""

    kind: str  # "task" | "run"
    task_id: str | None
    status: str
    attempt: int = 0
    detail: str = ""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks "leave this column as it is".
UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class LogLine:
    """One captured line of a task attempt's output."""

    run_id: int
    task_id: str
    attempt: int
    ts: float
    stream: str  # "stdout" | "stderr" | "system"
    line: str


@dataclass
class TaskSnapshot:
    """A task's journaled state, for resuming a run."""

    status: TaskState
    attempts: int = 0  # the highest attempt number so far
    failures: int = 0  # attempts that failed, timed out or crashed (they use up retries)
    next_attempt_at: float | None = None
    output: Any = None
    skip_reason: str | None = None


@dataclass
class RunSnapshot:
    """A run's journaled state, for resuming it."""

    run_id: int
    status: RunState
    tasks: dict[str, TaskSnapshot]


class Journal(Protocol):
    """Durable record of one run's progress.

    Every method commits before it returns, except inside :meth:`batch`,
    which groups the calls made within it into a single transaction.

    Every state change is held against the transition table
    (:mod:`taskloom.core.states`): one it forbids, or one from a state the
    record is not in, raises :class:`taskloom.core.states.InvalidTransition`
    and is not recorded. ``task_changed``'s ``was`` is the state the caller
    knows the task is in (None: any state the table allows ``status`` from).
    """

    def batch(self) -> ContextManager[None]: ...

    def run_started(self, run_id: int, *, at: float) -> None: ...

    def run_ended(
        self, run_id: int, status: RunState, *, at: float, error: str | None = None
    ) -> None: ...

    def task_changed(
        self,
        run_id: int,
        task_id: str,
        status: TaskState,
        *,
        at: float,
        was: TaskState | None = None,
        attempts: int | Any = UNSET,
        next_attempt_at: float | None | Any = UNSET,
        skip_reason: str | None | Any = UNSET,
        output: Any = UNSET,
        error: str | None | Any = UNSET,
    ) -> None: ...

    def attempt_started(
        self, run_id: int, task_id: str, number: int, *, at: float, params: Any
    ) -> int: ...

    def attempt_process(self, attempt_id: int, pid: int) -> None: ...

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
    ) -> None: ...

    def append_logs(self, lines: Sequence[LogLine]) -> None: ...

    def load_run(self, run_id: int) -> RunSnapshot: ...

    def cancel_requested(self, run_id: int) -> bool: ...
