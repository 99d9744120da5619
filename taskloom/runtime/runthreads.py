"""The scheduler's run threads: kept for the next run with their store connection open.

A run used to get a new thread and a new connection (with its migration
check) each time: about 1 ms before its first statement, as much as the whole
of a short in-process run. A thread that finished a run now waits up to
:attr:`RunThreads.IDLE_SECONDS` for the next one; there is no limit on how many
run at once (``max_runs`` is the scheduler's to enforce), and an idle thread
costs nothing but its stack.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from taskloom.storage.store import Workspace

__all__ = ["RunThreads", "Slot", "Job"]


class Slot:
    """A run thread's store connection: opened when first asked for, kept between runs."""

    def __init__(self, home: str | Path) -> None:
        self.home = home
        self._ws: Workspace | None = None

    def get(self) -> Workspace:
        if self._ws is None:
            self._ws = Workspace(self.home)
        ws = self._ws
        ws.storage_failure = None
        ws.actor, ws.source = None, "cli"  # a run acts as its trigger; nothing of the last run carries over
        return ws

    def discard(self) -> None:
        """Close the connection (after a storage error it may be broken); the next run opens a new one."""
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # closing a connection the server dropped
                pass
            self._ws = None


class Job:
    """One run's work on a run thread; :meth:`join` waits for it like ``Thread.join``."""

    def __init__(self, work: Callable[[Slot], None], name: str) -> None:
        self.work = work
        self.name = name
        self._done = threading.Event()

    def run(self, slot: Slot) -> None:
        """Do the work on this thread (it reports its own errors); then it is done."""
        try:
            self.work(slot)
        finally:
            self._done.set()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()


class _Worker:
    def __init__(self, pool: "RunThreads", job: Job) -> None:
        self.pool = pool
        self.job: Job | None = job
        self.wake = threading.Condition(pool._lock)
        self.thread = threading.Thread(target=self._loop, name=job.name, daemon=True)

    def _loop(self) -> None:
        slot = Slot(self.pool.home)
        try:
            while self.job is not None:
                job = self.job
                threading.current_thread().name = job.name
                try:
                    job.run(slot)
                except Exception:  # the work reports its own errors; its connection may be broken
                    slot.discard()
                self.job = self.pool._next(self)
        finally:
            slot.discard()


class RunThreads:
    """Threads for runs, reused: :meth:`submit` hands a job to an idle one or starts one."""

    #: How long a thread with no run waits for the next one before it ends (seconds).
    IDLE_SECONDS = 60.0

    def __init__(self, home: str | Path) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._closed = False

    def submit(self, job: Job) -> Job:
        """Run ``job.work(slot)`` on a run thread; ``slot.get()`` is the thread's open workspace."""
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.wake.notify()
                return job
        worker = _Worker(self, job)
        worker.thread.start()
        return job

    def _next(self, worker: _Worker) -> Job | None:
        """Wait as an idle thread for the next job; None when there is none in time (the thread then ends)."""
        with self._lock:
            if self._closed:
                return None
            worker.job = None
            self._idle.append(worker)
            worker.wake.wait_for(lambda: worker.job is not None or self._closed, timeout=self.IDLE_SECONDS)
            if worker.job is None and worker in self._idle:
                self._idle.remove(worker)
            return worker.job

    def close(self) -> None:
        """Let idle threads end (a thread with a run finishes it first)."""
        with self._lock:
            self._closed = True
            for worker in self._idle:
                worker.wake.notify()
            self._idle.clear()
