"""What a task implementation receives and returns for one attempt."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from taskloom.core.states import TaskState

__all__ = [
    "AttemptContext", "AttemptResult", "TaskFunction", "TaskServices", "NoServices", "load_entry",
    "result_from_process",
]


class TaskServices(Protocol):
    """What a task may ask of the process that runs it (storage, configuration, secrets).

    The runner passes the implementation it was given (``taskloom.runtime.services``
    provides the real one); tasks never import storage themselves.
    """

    def secret(self, name: str) -> str:
        """A secret's value; raises LookupError with a message saying how to set it."""

    def config(self, key: str, default: Any = None) -> Any:
        """A configuration value (``smtp.host``, ``file_roots``...), see ``taskloom config``."""

    def file_roots(self) -> list[str]:
        """Folders file tasks may touch: the working directory plus configured roots (real paths)."""

    def home(self) -> str | None:
        """The Taskloom home folder of the store behind this runner (absolute), or None without one.

        Templates see it as ``{{ run.home }}``: a per-user place for a workflow's own files.
        """

    def memory_get(self, task_id: str, key: str, default: Any = None) -> Any:
        """A value task ``task_id`` of this workflow kept between runs (a watermark)."""

    def memory_set(self, task_id: str, key: str, value: Any) -> None:
        """Keep ``value`` for the next runs of task ``task_id`` of this workflow."""

    def run_workflow(
        self, name: str, params: Mapping[str, Any], *, cancel: threading.Event, parent_run_id: int
    ) -> tuple[str, dict[str, Any], int]:
        """Run stored workflow ``name`` to its end; return its status, each task's output, its run id."""


class NoServices:
    """Services for a runner without storage: every request says what is missing."""

    def __init__(self, cwd: str = ".") -> None:
        self.cwd = cwd

    def secret(self, name: str) -> str:
        raise LookupError(f"secret {name!r} is not available: this runner has no secret store")

    def config(self, key: str, default: Any = None) -> Any:
        return default

    def file_roots(self) -> list[str]:
        import os

        return [os.path.realpath(self.cwd)]

    def home(self) -> str | None:
        return None

    def memory_get(self, task_id: str, key: str, default: Any = None) -> Any:
        return default

    def memory_set(self, task_id: str, key: str, value: Any) -> None:
        raise LookupError("this runner has no storage to keep values between runs")

    def run_workflow(self, name, params, *, cancel, parent_run_id):  # type: ignore[no-untyped-def]
        raise LookupError(f"cannot run workflow {name!r}: this runner has no workflow store")


@dataclass
class AttemptContext:
    """Everything one attempt of one task needs; built by the runner."""

    run_id: int
    task_id: str
    attempt: int
    params: Mapping[str, Any]  # rendered
    timeout: float
    cancel: threading.Event
    log: Callable[[str, str], None]  # log(stream, line)
    on_process: Callable[[int], None]  # the pid of a started child process
    env: Mapping[str, str]  # the minimal environment, before the task's own ``env``
    cwd: str
    template_context: Mapping[str, Any] = field(default_factory=dict)
    grace: float = 5.0
    services: TaskServices = field(default_factory=NoServices)  # type: ignore[assignment]
    workflow: str = ""
    registry: Any = None  # the runner's taskloom.core.registry.Registry, for tasks that run other types (foreach)
    #: warm interpreters for ``python`` tasks (an taskloom.runtime.executors.pool.PythonPool), or None for a fresh one
    python_pool: Any = None


@dataclass
class AttemptResult:
    """How an attempt ended."""

    status: TaskState
    output: Any = None
    error: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    #: False when trying again cannot help (HTTP 404, a bad SQL statement): no retry is spent
    retriable: bool = True


TaskFunction = Callable[[AttemptContext], AttemptResult]


def load_entry(entry: str) -> TaskFunction:
    """Import ``"module:function"``."""
    module_name, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def result_from_process(result: Any, timeout: float) -> AttemptResult | None:
    """The attempt result for a process that did not exit 0, or None when it did.

    ``result`` is an :class:`taskloom.runtime.process.ProcessResult`.
    """
    import signal as _signal

    if result.start_error:
        return AttemptResult(TaskState.FAILED, error=result.start_error)
    if result.cancelled:
        return AttemptResult(TaskState.CANCELLED, error="cancelled", signal=result.signal)
    if result.timed_out:
        return AttemptResult(
            TaskState.TIMED_OUT,
            error=f"timed out after {timeout:g} s; its process group was killed",
            signal=result.signal,
        )
    if result.signal is not None:
        try:
            name = _signal.Signals(result.signal).name
        except ValueError:  # a real-time or unnamed signal
            name = str(result.signal)
        return AttemptResult(
            TaskState.CRASHED,
            error=f"killed by signal {name}",
            signal=result.signal,
        )
    if result.returncode != 0:
        return AttemptResult(
            TaskState.FAILED, error=f"exited with status {result.returncode}", exit_code=result.returncode
        )
    return None
