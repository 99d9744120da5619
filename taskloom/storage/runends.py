"""Waiting for a run to end without a thread or a poll per waiter: what a ``respond: run`` webhook waits on.

A waiter asks :meth:`RunEnds.expect` for a future before the run can end,
and awaits it (``asyncio.wrap_future``: no thread is held while it waits).
Two things resolve it:

* the scheduler of this process, when a run it executed ends
  (:meth:`RunEnds.ended`, with the outputs the runner holds: nothing is read
  back), at once;
* for a run another process or host executes, one watcher thread per
  process: it waits on the store's change notice (SQLite's change counter,
  PostgreSQL's ``LISTEN``, :func:`taskloom.storage.db.watch_changes`) and then
  reads the status of every awaited run in one query, and the outputs of the
  ones that ended. It runs only while such a wait exists.

A run that stops crashed is not over: its waiter keeps waiting until the run
is resumed and ends, or until its own timeout.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from taskloom.storage.db import StorageError, watch_changes
from taskloom.storage.store import UserError, Workspace

__all__ = ["RunEnds", "Answer", "answer_of", "FINAL"]

log = logging.getLogger("taskloom.runends")

#: What a waiter gets: ``{"run_id", "status", "error", "outputs": {task: output}}``.
Answer = dict[str, Any]

#: The run states a waiter is answered in (crashed is not one: the run resumes).
FINAL = frozenset({"succeeded", "failed", "cancelled"})


def answer_of(ws: Workspace, run_id: int) -> Answer:
    """The answer for a run that ended, read from the store (for runs executed elsewhere)."""
    run = ws.run(run_id)
    return {"run_id": run_id, "status": run.status, "error": run.error,
            "outputs": {t: r.output for t, r in run.tasks.items()}}


class RunEnds:
    """The runs this process's requests wait on, and the futures that answer them."""

    #: Seconds between two looks at the change notice (SQLite's counter is read that often; PostgreSQL's
    #: notice ends the wait at once): one cheap read per process, whatever the number of waiters.
    LOOK_EVERY = 0.1

    def __init__(self, home: str | Path, database: str | Path | None = None, *,
                 executing_here: Callable[[int], bool] = lambda run_id: False) -> None:
        self.home = home
        self.database = database
        #: whether this process executes a run now (its end arrives by :meth:`ended`, not by the watcher)
        self.executing_here = executing_here
        self._lock = threading.Lock()
        self._waiting: dict[int, list[Future[Answer]]] = {}
        self._watcher: threading.Thread | None = None
        self._wake = threading.Event()

    def expect(self, run_id: int) -> Future[Answer]:
        """A future answered when run ``run_id`` ends; ask before the run can end."""
        future: Future[Answer] = Future()
        with self._lock:
            self._waiting.setdefault(run_id, []).append(future)
        return future

    def forget(self, run_id: int, future: Future[Answer]) -> None:
        """Stop waiting with ``future`` (its request timed out or went away)."""
        with self._lock:
            futures = self._waiting.get(run_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(run_id, None)

    def awaited(self, run_id: int) -> bool:
        with self._lock:
            return run_id in self._waiting

    def ended(self, run_id: int, answer: Answer) -> None:
        """Run ``run_id`` ended (in a final state): answer everyone waiting for it."""
        with self._lock:
            futures = self._waiting.pop(run_id, [])
        for future in futures:
            if not future.done():
                future.set_result(answer)

    def watch_elsewhere(self, run_id: int) -> None:
        """Run ``run_id`` may be executed by another process: make sure the watcher looks for its end."""
        with self._lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="taskloom-run-ends", daemon=True)
                self._watcher.start()
        self._wake.set()

    def _watch(self) -> None:
        """Answer the waits for runs executed elsewhere; return once there are none."""
        ws: Workspace | None = None
        watch = None
        try:
            ws = Workspace(self.home, database=self.database)
            watch = watch_changes(ws.database)
            while True:
                with self._lock:  # under the lock watch_elsewhere takes: a new wait either sees us or starts another
                    ids = [r for r in self._waiting if not self.executing_here(r)]
                    if not ids:
                        self._watcher = None
                        return
                self._settle(ws, ids)
                if self._wake.is_set():
                    self._wake.clear()
                    continue
                watch.wait(self.LOOK_EVERY)
        except (StorageError, UserError) as exc:
            log.warning("cannot watch for the end of runs executed elsewhere (%s); their requests time out", exc)
            with self._lock:
                self._watcher = None
        finally:
            if watch is not None:
                watch.close()
            if ws is not None:
                ws.close()

    def _settle(self, ws: Workspace, ids: list[int]) -> None:
        marks = ", ".join("?" * len(ids))
        rows = ws.db.execute(f"SELECT id, status FROM runs WHERE id IN ({marks})", ids).fetchall()
        for run_id, status in rows:
            if status in FINAL:
                self.ended(run_id, answer_of(ws, run_id))
