"""The Dask executor: attempts of portable task types run on a ``dask.distributed`` cluster.

The runner still owns the run: it decides what starts, journals every
attempt before it is submitted, and alone writes the database. Each attempt
becomes one Dask task (:func:`taskloom.runtime.executors.dask_work.run_attempt`) with
its own key; the runner's ``max_parallel_tasks`` bounds how many are
submitted at once. Log lines stream back while the task runs, through
``log_event`` on a topic private to this executor, and the reply follows
them on the same topic; it carries the lines not yet sent and the number
of batches, so every line is stored before the attempt's end.

Only ``shell`` and ``python`` attempts go to the cluster: the other built-in
types read the scheduler's storage (secrets, watermarks, sub-workflows) or
are cheap I/O, and run in this process as with the local executor.

Failure semantics:

* a worker that dies mid-task makes the attempt ``crashed`` (Dask would
  silently run the task again elsewhere; the claim in ``dask_work`` stops
  that), and the runner retries it per the task's policy;
* a cancel cancels the future; the worker sees its task dropped and kills
  the task's process group, and the executor waits up to the grace period
  for that to be confirmed;
* timeouts are enforced on the worker; should the worker never answer, the
  executor gives up ``timeout + grace + 30`` seconds after submitting.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from taskloom.core.registry import TaskType
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskFunction
from taskloom.runtime.executors import ExecutorError
from taskloom.runtime.executors.dask_work import CLAIM_PREFIX, LOST_WORKER, run_attempt

__all__ = ["DaskExecutor", "PORTABLE_TYPES"]

#: Task types whose attempts run on the cluster's workers.
PORTABLE_TYPES = frozenset({"shell", "python"})
_POLL = 0.1
_BACKSTOP = 30.0  # seconds past timeout + grace before the executor stops waiting for a silent worker
_LATE_LOGS = 5.0  # how long the result waits for log batches still in flight


@dataclass
class _Remote:
    """Client-side state of one submitted attempt."""

    ctx: AttemptContext
    received: int = 0  # log batches delivered
    pending: dict[int, list] = field(default_factory=dict)  # batches that arrived out of order
    changed: threading.Condition = field(default_factory=threading.Condition)
    reply: dict | None = None  # the worker's reply, when it came as an event
    wake: threading.Event | None = None  # set when the reply or the future's end arrives


class DaskExecutor:
    """Submits attempts to the Dask scheduler at ``address``; shared by every run of a process."""

    name = "dask"

    def __init__(self, address: str, *, connect_timeout: float = 10.0, local: Any = None) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError(
                "the dask executor needs dask.distributed: pip install 'taskloom[dask]'"
            ) from None
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"cannot reach the Dask scheduler at {address}: {exc}"
                " (is it running? try one on this machine with: taskloom dask-demo)"
            ) from None
        self.address = address
        self.topic = f"taskloom-{uuid.uuid4().hex}"
        self._remotes: dict[str, _Remote] = {}
        self._lock = threading.Lock()
        self.client.subscribe_topic(self.topic, self._on_event)
        self._claims: queue.Queue[str | None] = queue.Queue()
        self._cleaner = threading.Thread(target=self._clear_claims, name="taskloom-dask-claims", daemon=True)
        self._cleaner.start()
        if local is None:
            from taskloom.runtime.executors.local import LocalExecutor

            local = LocalExecutor()
        self.local = local

    def execute(self, task_type: TaskType, function: TaskFunction, ctx: AttemptContext) -> AttemptResult:
        if task_type.name not in PORTABLE_TYPES:
            return self.local.execute(task_type, function, ctx)
        token = uuid.uuid4().hex
        remote = _Remote(ctx)
        with self._lock:
            self._remotes[token] = remote
        try:
            return self._execute(task_type, ctx, token, remote)
        finally:
            with self._lock:
                self._remotes.pop(token, None)
            self._claims.put(token)  # cleared in the background: the attempt need not wait for it

    def close(self) -> None:
        self._claims.put(None)
        self._cleaner.join(timeout=10)
        try:
            self.client.unsubscribe_topic(self.topic)
        except Exception:  # the cluster may already be gone
            pass
        self.client.close()
        self.local.close()

    # -- one attempt -----------------------------------------------------------

    def _execute(self, task_type: TaskType, ctx: AttemptContext, token: str, remote: _Remote) -> AttemptResult:
        payload = {
            "token": token, "topic": self.topic, "type": task_type.name, "run_id": ctx.run_id,
            "task_id": ctx.task_id, "attempt": ctx.attempt, "params": dict(ctx.params), "timeout": ctx.timeout,
            "env": dict(ctx.env), "cwd": ctx.cwd, "grace": ctx.grace, "workflow": ctx.workflow,
        }
        key = f"taskloom-{ctx.run_id}-{ctx.task_id}-{ctx.attempt}-{token[:8]}"
        future = self.client.submit(run_attempt, task_type.entry, payload, key=key, pure=False, retries=0)
        finished = threading.Event()
        future.add_done_callback(lambda _: finished.set())
        remote.wake = finished
        give_up = time.monotonic() + ctx.timeout + ctx.grace + _BACKSTOP
        while remote.reply is None and not finished.wait(_POLL):
            if ctx.cancel.is_set():
                return self._cancel(future, finished, ctx)
            if time.monotonic() >= give_up:
                future.cancel()
                return AttemptResult(
                    TaskState.TIMED_OUT,
                    error=f"timed out: the Dask worker did not answer within {ctx.timeout:g} s (+ grace)",
                )
        return self._result(future, remote)

    def _cancel(self, future: Any, finished: threading.Event, ctx: AttemptContext) -> AttemptResult:
        """Cancel the future; the worker kills the task's processes. Wait up to the grace period for it."""
        future.cancel()
        finished.wait(ctx.grace + 2)
        return AttemptResult(TaskState.CANCELLED, error="cancelled")

    def _result(self, future: Any, remote: _Remote) -> AttemptResult:
        from distributed.scheduler import KilledWorker

        reply = remote.reply
        if reply is None:
            try:
                reply = future.result()
            except KilledWorker:
                return AttemptResult(TaskState.CRASHED, error=LOST_WORKER)
            except Exception as exc:  # the cluster lost or refused the task
                return AttemptResult(
                    TaskState.CRASHED, error=f"the Dask cluster failed the attempt: {type(exc).__name__}: {exc}"
                )
            finally:
                future.release()
            if reply.get("sent"):  # the reply event is still on its way
                with remote.changed:
                    remote.changed.wait_for(lambda: remote.reply is not None, timeout=_LATE_LOGS)
                reply = remote.reply or {"status": TaskState.CRASHED.value,
                                         "error": "the attempt's result did not arrive from the Dask worker"}
        else:
            future.release()
        self._await_batches(remote, reply.get("batches", 0))
        for _, stream, line in reply.get("tail") or []:
            remote.ctx.log(stream, line)
        return AttemptResult(
            TaskState(reply["status"]), output=reply.get("output"), error=reply.get("error"),
            exit_code=reply.get("exit_code"), signal=reply.get("signal"), retriable=reply.get("retriable", True),
        )

    def _await_batches(self, remote: _Remote, batches: int) -> None:
        """Wait (briefly) for log batches still in flight, so lines are stored before the end state."""
        with remote.changed:
            remote.changed.wait_for(lambda: remote.received >= batches, timeout=_LATE_LOGS)
            missing = batches - remote.received
        if missing > 0:
            remote.ctx.log("system", f"{missing} batch(es) of log lines did not arrive from the Dask worker")

    def _clear_claims(self) -> None:
        """Drop the claims of ended attempts from the Dask scheduler, so they do not pile up there."""
        from distributed import Event

        while (token := self._claims.get()) is not None:
            try:
                Event(CLAIM_PREFIX + token, client=self.client).clear()
            except Exception:  # best effort: a claim left behind only costs the scheduler a few bytes
                pass

    # -- log lines -------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """A batch of log lines from a worker (called on the client's event loop)."""
        _, message = event
        with self._lock:
            remote = self._remotes.get(message.get("token"))
        if remote is None:
            return
        with remote.changed:
            if "end" in message:
                remote.reply = message["end"]
                if remote.wake is not None:
                    remote.wake.set()
            else:
                remote.pending[message["seq"]] = message["lines"]
                while remote.received + 1 in remote.pending:
                    remote.received += 1
                    for _, stream, line in remote.pending.pop(remote.received):
                        remote.ctx.log(stream, line)
            remote.changed.notify_all()
