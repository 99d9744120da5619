"""Executors: where a run's task attempts execute.

The runner decides *what* runs and journals it; an executor decides *where*.
Every executor has the same small interface, :class:`Executor`:

* :class:`taskloom.runtime.executors.local.LocalExecutor` (the default) runs attempts
  on this machine: in-process types on the runner's thread, ``python`` tasks
  in a pool of warm worker processes, ``shell`` and the rest as before.
* :class:`taskloom.runtime.executors.on_dask.DaskExecutor` sends the attempts of
  portable types (``shell``, ``python``) to a ``dask.distributed`` cluster;
  results, errors and log lines come back to the runner, which alone writes
  the database.

:func:`create_executor` picks one by name, as ``--executor local|dask`` and
``TASKLOOM_DASK_ADDRESS`` ask.
"""

from __future__ import annotations

import os
from typing import Mapping, Protocol

from taskloom.core.errors import UserMistake
from taskloom.core.registry import TaskType
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskFunction

__all__ = ["Executor", "ExecutorError", "create_executor", "EXECUTORS", "DASK_ADDRESS_ENV"]

EXECUTORS = ("local", "dask")
DASK_ADDRESS_ENV = "TASKLOOM_DASK_ADDRESS"


class ExecutorError(UserMistake):
    """An executor cannot be set up (no Dask installed, cluster unreachable); the message says why."""


class Executor(Protocol):
    """Runs task attempts somewhere. Shared by many runs and threads at once."""

    name: str

    def execute(self, task_type: TaskType, function: TaskFunction, ctx: AttemptContext) -> AttemptResult:
        """Run one attempt of a non-inline type to its end (called on a thread of its own)."""

    def close(self) -> None:
        """Release workers and connections."""


def create_executor(
    name: str | None = None, *, dask_address: str | None = None, environ: Mapping[str, str] | None = None
) -> Executor:
    """The executor ``name`` ("local" or "dask"; by default "dask" when a Dask address is set).

    The Dask address comes from ``dask_address``, else ``TASKLOOM_DASK_ADDRESS``.
    """
    environ = os.environ if environ is None else environ
    address = dask_address or environ.get(DASK_ADDRESS_ENV) or None
    if name is None:
        name = "dask" if address else "local"
    if name == "local":
        from taskloom.runtime.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "dask":
        if not address:
            raise ExecutorError(
                "the dask executor needs the address of a Dask scheduler: pass --dask-address tcp://HOST:8786"
                f" or set {DASK_ADDRESS_ENV} (try one on this machine with: taskloom dask-demo)"
            )
        from taskloom.runtime.executors.on_dask import DaskExecutor

        return DaskExecutor(address)
    raise ExecutorError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
