"""What runs on a Dask worker for one attempt (imported there; the workers need Taskloom installed).

:func:`run_attempt` is the function :class:`taskloom.runtime.executors.on_dask.DaskExecutor`
submits. On the worker it:

1. claims the attempt with a cluster-wide :class:`distributed.Event`: when
   Dask reschedules a task because the worker running it died, the second
   execution finds the claim taken and reports the attempt ``crashed``
   instead of running the task a second time behind the runner's back (the
   runner then retries it per the task's policy, as a new attempt);
2. runs the task's own implementation exactly as the local executor would
   (``python`` tasks in this worker machine's pool of warm interpreters),
   with its timeout enforced here;
3. streams log lines back as they come, in batches sent with
   ``log_event`` on the executor's topic (every 0.2 s, or sooner when a
   batch reaches 64 KiB); the reply (status, output, the lines not yet sent)
   follows on the same topic, so it arrives after them and needs no fetch
   from the worker (a reply over 64 KiB is returned as the task's result);
4. watches its own task in the worker's state: when the runner cancels the
   future (a cancel, a timeout, the runner gone) the task's process group is
   killed.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from taskloom.core.registry import TaskType
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, NoServices, load_entry

__all__ = ["run_attempt", "CLAIM_PREFIX", "LOST_WORKER"]

CLAIM_PREFIX = "taskloom-claim-"
LOST_WORKER = (
    "the Dask worker running this attempt was lost (killed or disconnected); Dask would have run it again on"
    " another worker, which Taskloom refuses, so the attempt counts as crashed"
)
_FLUSH_SECONDS = 0.2
_BATCH_BYTES = 64 * 1024
_WATCH_SECONDS = 0.1
#: Replies up to this size travel as an event (no fetch from the worker); bigger ones as the task's result.
_INLINE_REPLY_BYTES = 64 * 1024
#: Worker task states that mean the scheduler no longer wants the result.
_UNWANTED = {"cancelled", "released", "forgotten"}


def run_attempt(entry: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt on this worker; return its result and the log lines not yet streamed."""
    from distributed import Event, get_worker

    worker = get_worker()
    claim = Event(CLAIM_PREFIX + payload["token"])
    if claim.is_set():
        return {"status": TaskState.CRASHED.value, "error": LOST_WORKER, "batches": 0, "tail": []}
    claim.set()
    key = worker.get_current_task()
    cancel = threading.Event()
    stream = _LogStream(worker, payload["topic"], payload["token"])
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(worker, key, cancel, done), daemon=True)
    watcher.start()
    try:
        result = _run(entry, payload, cancel, stream.add)
    finally:
        done.set()
        tail, batches = stream.close()
    reply = {
        "status": result.status.value, "output": result.output, "error": result.error,
        "exit_code": result.exit_code, "signal": result.signal, "retriable": result.retriable,
        "batches": batches, "tail": tail, "worker": worker.address,
    }
    try:
        small = len(json.dumps(reply)) <= _INLINE_REPLY_BYTES
    except (TypeError, ValueError):
        small = False
    if small:
        # On the event stream, behind the log batches: the runner needs no extra round trip to fetch it.
        worker.log_event(payload["topic"], {"token": payload["token"], "end": reply})
        return {"sent": True}
    return reply


def _run(entry: str, payload: dict[str, Any], cancel: threading.Event, log: Any) -> AttemptResult:
    from taskloom.runtime.executors.local import shared_local_executor

    ctx = AttemptContext(
        run_id=payload["run_id"], task_id=payload["task_id"], attempt=payload["attempt"], params=payload["params"],
        timeout=payload["timeout"], cancel=cancel, log=log, on_process=lambda pid: None, env=payload["env"],
        cwd=payload["cwd"], grace=payload["grace"], services=NoServices(payload["cwd"]), workflow=payload["workflow"],
    )
    task_type = TaskType(name=payload["type"], title="", description="", category="", icon="", params_schema={},
                         entry=entry)
    try:
        return shared_local_executor().execute(task_type, load_entry(entry), ctx)
    except Exception as exc:  # a bug in a task implementation: report it like the local runner does
        return AttemptResult(TaskState.CRASHED, error=f"task implementation failed: {type(exc).__name__}: {exc}")


def _watch(worker: Any, key: Any, cancel: threading.Event, done: threading.Event) -> None:
    """Set ``cancel`` when the scheduler stops wanting this task (the runner cancelled the future)."""
    while not done.wait(_WATCH_SECONDS):
        state = worker.state.tasks.get(key)
        if state is None or state.state in _UNWANTED:
            cancel.set()
            return


class _LogStream:
    """Batches an attempt's log lines and sends them to the runner while the task runs."""

    def __init__(self, worker: Any, topic: str, token: str) -> None:
        self._worker, self._topic, self._token = worker, topic, token
        self._lines: list[list[Any]] = []
        self._size = 0
        self._sent = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._flush_loop, daemon=True)
        self._thread.start()

    def add(self, stream: str, line: str) -> None:
        with self._lock:
            self._lines.append([time.time(), stream, line])
            self._size += len(line) + 32
            full = self._size >= _BATCH_BYTES
        if full:
            self._flush()

    def close(self) -> tuple[list[list[Any]], int]:
        """Stop streaming; return the lines never sent and how many batches were."""
        self._closed.set()
        self._thread.join()
        with self._lock:
            tail, self._lines, self._size = self._lines, [], 0
            return tail, self._sent

    def _flush_loop(self) -> None:
        while not self._closed.wait(_FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            if not self._lines or self._closed.is_set():
                return
            lines, self._lines, self._size = self._lines, [], 0
            self._sent += 1
            seq = self._sent
            # Sent under the lock so batches leave in order.
            self._worker.log_event(self._topic, {"token": self._token, "seq": seq, "lines": lines})
