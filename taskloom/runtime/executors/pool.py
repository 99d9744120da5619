"""A pool of pre-started Python worker processes for ``python`` tasks.

Starting an interpreter costs tens of milliseconds, and importing a task's
libraries (pandas, a model) often much more. A :class:`PythonPool` keeps
warm workers (``taskloom/runtime/tasks/pychild.py --serve``) and hands each attempt to
an idle one. Each worker is the leader of its own process group, exactly as
a one-shot child would be, so a timeout or a cancel kills the worker and
everything the task started; the pool then starts a replacement. A worker
that dies under a task (an out-of-memory kill) makes that attempt
``crashed``, with the signal recorded.

Per job the worker swaps in the attempt's environment and working
directory and restores its own afterwards, and ends the processes the task
left behind. Imported modules stay warm between jobs, the task's own ones
included; those of the task's folder are forgotten when a job runs in
another folder or one of their files changed, so edited code is picked up
by the next run. A worker retires after ``max_jobs`` jobs.

Lines the task prints are read while it runs and delivered like a one-shot
child's (same line splitting, the per-line cap of the attempt's log); an end marker written by the worker
after each job tells the pool that a job's output is complete.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from taskloom.core.logtext import line_cap
from taskloom.runtime.process import LineSplitter, ProcessResult, kill_process_group
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, result_from_process

__all__ = ["PythonPool"]

_WORKER = str(Path(__file__).resolve().parent.parent / "tasks" / "pychild.py")
_END = b"\x00\x1etaskloom-end\x1e\x00"  # keep in step with pychild.END_MARKER
_CHUNK = 64 * 1024
_POLL = 0.05
#: How long to wait for a job's output after its reply, before giving up on the rest.
_TAIL_WAIT = 2.0


class _Worker:
    """One warm interpreter and its pipes."""

    def __init__(self, env: dict[str, str]) -> None:
        jobs_r, self.jobs_w = os.pipe()
        self.replies_r, replies_w = os.pipe()
        lifeline_r, self.lifeline_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-u", _WORKER, "--serve", str(jobs_r), str(replies_w), str(lifeline_r)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(jobs_r, replies_w, lifeline_r),
                env=env,
                cwd="/",
                start_new_session=True,
            )
        except BaseException:
            for fd in (self.jobs_w, self.replies_r, self.lifeline_w):
                os.close(fd)
            raise
        finally:
            for fd in (jobs_r, replies_w, lifeline_r):
                os.close(fd)
        self.pid = self.proc.pid
        self.jobs = 0
        self._closed = False

    def alive(self) -> bool:
        return not self._closed and self.proc.poll() is None

    def send(self, job: dict[str, Any]) -> None:
        data = json.dumps(job).encode() + b"\n"
        view = memoryview(data)
        while view:
            written = os.write(self.jobs_w, view)
            view = view[written:]

    def kill(self, grace: float) -> None:
        """End the worker's process group (SIGTERM, then SIGKILL after ``grace``) and reap it."""
        if self.proc.poll() is None:
            try:
                kill_process_group(self.pid, grace=grace)
            except ValueError:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # leftovers of the group, even after the leader died
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def close(self, grace: float = 1.0) -> None:
        """Retire the worker: close its job pipe (it exits), kill it if it lingers."""
        if self._closed:
            return
        self._closed = True
        for fd in (self.jobs_w, self.lifeline_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill(grace=0)
        os.close(self.replies_r)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class PythonPool:
    """Warm worker processes for ``python`` attempts; thread-safe.

    ``size`` workers are kept idle once started; when all are busy another
    is started rather than making an attempt wait, and retired after its job.
    """

    def __init__(self, size: int | None = None, *, max_jobs: int = 500, env: dict[str, str] | None = None) -> None:
        self.size = max(1, size if size is not None else (os.cpu_count() or 2))
        self.max_jobs = max_jobs
        self._env = dict(env) if env is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.started = 0  # workers started so far (tests and benchmarks read it)

    def prestart(self) -> None:
        """Start the idle workers now rather than at the first attempt."""
        with self._lock:
            missing = self.size - len(self._idle)
        for _ in range(missing):
            self._release(self._start())

    def run(self, ctx: AttemptContext, job: dict[str, Any]) -> AttemptResult:
        """Run one attempt: ``job`` holds ``callable`` or ``code``, ``args``, ``cwd`` and ``env``."""
        # The worker's pid is not recorded with the attempt (ctx.on_process): recovery kills a dead
        # runner's leftovers by pid, and a warm worker ends itself when its pool's process dies.
        worker = self._acquire()
        try:
            worker.send({**job, "id": worker.jobs})
        except OSError:  # it died while idle: take a fresh one, once
            worker.close(grace=0)
            worker = self._start()
            worker.send({**job, "id": worker.jobs})
        worker.jobs += 1
        job_run = _JobRun(worker, ctx)
        result = job_run.wait()
        if job_run.reusable and worker.jobs < self.max_jobs:
            self._release(worker)
        else:
            worker.close(grace=0)
            self._refill()
        return result

    def close(self) -> None:
        """Retire every idle worker (busy ones retire when their attempt ends)."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for worker in idle:
            worker.close()

    # -- workers ---------------------------------------------------------------

    def _start(self) -> _Worker:
        self.started += 1
        return _Worker(self._env)

    def _acquire(self) -> _Worker:
        while True:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                return self._start()
            if worker.alive():
                return worker
            worker.close(grace=0)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            keep = not self._closed and len(self._idle) < self.size
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.close()

    def _refill(self) -> None:
        """Replace a killed or retired worker in the background, so the next attempt finds one warm."""
        with self._lock:
            if self._closed or len(self._idle) >= self.size:
                return
        threading.Thread(target=lambda: self._release(self._start()), daemon=True).start()


class _JobRun:
    """Pumps one job's output and reply, enforcing its timeout and cancel."""

    def __init__(self, worker: _Worker, ctx: AttemptContext) -> None:
        self.worker = worker
        self.ctx = ctx
        self.reusable = False
        self._reply: dict[str, Any] | None = None
        self._reply_buf = b""
        self._replies_open = True
        self._streams: dict[int, _Stream] = {}
        self._sel = selectors.DefaultSelector()
        for name, pipe in (("stdout", worker.proc.stdout), ("stderr", worker.proc.stderr)):
            assert pipe is not None
            stream = _Stream(name, ctx.log)
            self._streams[pipe.fileno()] = stream
            self._sel.register(pipe.fileno(), selectors.EVENT_READ, stream)
        self._sel.register(worker.replies_r, selectors.EVENT_READ, None)

    def wait(self) -> AttemptResult:
        try:
            return self._wait()
        finally:
            self._sel.close()

    def _wait(self) -> AttemptResult:
        deadline = time.monotonic() + self.ctx.timeout
        while self._reply is None and self._replies_open:
            if self.ctx.cancel.is_set():
                return self._kill(cancelled=True)
            now = time.monotonic()
            if now >= deadline:
                return self._kill(timed_out=True)
            self._pump(min(_POLL, deadline - now))
        if self._reply is None:  # the worker died under the task
            return self._died()
        tail_deadline = time.monotonic() + _TAIL_WAIT
        while not all(s.ended for s in self._streams.values()) and time.monotonic() < tail_deadline:
            self._pump(_POLL)
        self.reusable = all(s.ended for s in self._streams.values())
        reply = self._reply
        if reply.get("ok"):
            return AttemptResult(TaskState.SUCCEEDED, output=reply.get("output"), exit_code=0)
        return AttemptResult(TaskState.FAILED, error=reply.get("error"), exit_code=1,
                             retriable=reply.get("retriable", True))

    def _pump(self, timeout: float) -> None:
        for key, _ in self._sel.select(max(timeout, 0.0)):
            try:
                data = os.read(key.fd, _CHUNK)
            except OSError:
                data = b""
            if key.data is None:
                self._on_reply_data(data)
            elif data:
                key.data.feed(data)
            else:
                self._sel.unregister(key.fd)
                key.data.finish()

    def _on_reply_data(self, data: bytes) -> None:
        if not data:
            self._sel.unregister(self.worker.replies_r)
            self._replies_open = False
            return
        self._reply_buf += data
        if b"\n" in self._reply_buf:
            line = self._reply_buf.split(b"\n", 1)[0]
            try:
                self._reply = json.loads(line)
            except ValueError:
                self._reply = {"ok": False, "error": "the worker sent an unreadable reply"}

    def _drain(self, seconds: float) -> None:
        """Read what a dead worker's pipes still hold (its last lines)."""
        deadline = time.monotonic() + seconds
        while any(not s.ended for s in self._streams.values()) and time.monotonic() < deadline:
            if not self._sel.get_map():
                break
            self._pump(_POLL)
        for stream in self._streams.values():
            stream.finish()

    def _kill(self, *, cancelled: bool = False, timed_out: bool = False) -> AttemptResult:
        self.worker.kill(self.ctx.grace)
        self._drain(0.5)
        return self._ended(cancelled=cancelled, timed_out=timed_out)

    def _died(self) -> AttemptResult:
        self.worker.proc.wait()
        self._drain(0.5)
        self.worker.kill(grace=0)  # whatever the task started goes too
        return self._ended()

    def _ended(self, *, cancelled: bool = False, timed_out: bool = False) -> AttemptResult:
        """The attempt's result once its worker is gone, worded as for a one-shot child process."""
        code = self.worker.proc.returncode
        ended = ProcessResult(
            returncode=code if code >= 0 else None, signal=-code if code < 0 else None,
            timed_out=timed_out, cancelled=cancelled, duration=0.0, start_error=None,
        )
        return result_from_process(ended, self.ctx.timeout) or AttemptResult(
            TaskState.FAILED, error="the task process exited without a result", exit_code=0
        )


class _Stream:
    """One of a worker's output pipes during one job: lines until the end marker."""

    def __init__(self, name: str, on_line: Callable[[str, str], None]) -> None:
        self._splitter = LineSplitter(name, on_line, line_cap(on_line))
        self._held = b""
        self.ended = False

    def feed(self, data: bytes) -> None:
        if self.ended:
            return  # output after the job's end marker belongs to no attempt
        data = self._held + data
        at = data.find(_END)
        if at >= 0:
            self._splitter.feed(data[:at])
            self.finish()
            return
        # Hold back a tail that might be the start of the marker, nothing more, so lines arrive at once.
        hold = data.rfind(b"\x00", max(0, len(data) - len(_END) + 1))
        if hold >= 0 and _END.startswith(data[hold:]):
            self._held, data = data[hold:], data[:hold]
        else:
            self._held = b""
        self._splitter.feed(data)

    def finish(self) -> None:
        if not self.ended:
            self.ended = True
            self._splitter.feed(self._held)
            self._held = b""
            self._splitter.finish()
