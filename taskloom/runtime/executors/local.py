"""The local executor: attempts run on this machine, ``python`` ones in warm workers."""

from __future__ import annotations

import atexit
import threading
from dataclasses import replace

from taskloom.core.registry import TaskType
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskFunction
from taskloom.runtime.executors.pool import PythonPool

__all__ = ["LocalExecutor", "shared_local_executor"]


class LocalExecutor:
    """Runs each attempt's implementation here; ``python`` tasks use a :class:`PythonPool`."""

    name = "local"

    def __init__(self, pool_size: int | None = None, *, prestart: bool = False) -> None:
        self.pool = PythonPool(pool_size)
        if prestart:
            self.pool.prestart()

    def execute(self, task_type: TaskType, function: TaskFunction, ctx: AttemptContext) -> AttemptResult:
        return function(replace(ctx, python_pool=self.pool))

    def close(self) -> None:
        self.pool.close()


_shared: LocalExecutor | None = None
_shared_lock = threading.Lock()


def shared_local_executor() -> LocalExecutor:
    """One local executor per process, for runners not given one; its workers end at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LocalExecutor()
            atexit.register(_shared.close)
        return _shared
