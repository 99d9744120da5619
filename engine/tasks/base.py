"""What a task implementation receives and returns for one attempt."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..states import TaskState

__all__ = ["AttemptContext", "AttemptResult", "TaskFunction", "load_entry", "result_from_process"]


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


@dataclass
class AttemptResult:
    """How an attempt ended."""

    status: TaskState
    output: Any = None
    error: str | None = None
    exit_code: int | None = None
    signal: int | None = None


TaskFunction = Callable[[AttemptContext], AttemptResult]


def load_entry(entry: str) -> TaskFunction:
    """Import ``"module:function"``."""
    module_name, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def result_from_process(result: Any, timeout: float) -> AttemptResult | None:
    """The attempt result for a process that did not exit 0, or None when it did.

    ``result`` is an :class:`engine.process.ProcessResult`.
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
        name = _signal.Signals(result.signal).name if result.signal in _signal.Signals._value2member_map_ else str(result.signal)
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
