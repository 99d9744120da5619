"""Batching an attempt's log lines into the journal.

Each line has already passed :class:`taskloom.core.attemptlog.AttemptLog`
(masked, escaped, capped), the pure ``ctx.log`` of one attempt, re-exported
here.

:class:`LogBuffer` takes the lines from task threads; a flusher thread
writes them in one transaction every ``interval`` seconds or as soon as
``batch_size`` lines wait. A task that prints faster than the disk can take
is slowed down (the append blocks once ``max_pending`` lines or
``max_pending_chars`` characters wait) rather than losing lines or memory.

The flusher never hogs the database's write lock. A flush is written in
transactions of at most ``chunk_lines`` lines or ``chunk_chars`` characters,
and after ``burst`` seconds of writing back to back, or after one write
longer than ``pause`` (one that ran SQLite's automatic checkpoint), it
leaves the lock free for ``pause`` seconds. Other connections wait for the
lock in SQLite's busy handler, which sleeps between tries (at most 100 ms);
without the pause a flood of output starved them, and a heartbeat written on
its own connection was seen 4.5 s old (a 1 s period).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from taskloom.core.journal import LogLine
from taskloom.core.attemptlog import AttemptLog

__all__ = ["LogBuffer", "AttemptLog"]


class LogBuffer:
    """A thread-safe buffer of :class:`LogLine` flushed in batches by its own thread.

    The thread starts with the first line: a run whose steps log nothing
    (in-process transforms behind a webhook) costs no thread start and join.
    """

    def __init__(
        self,
        write: Callable[[Sequence[LogLine]], None],
        *,
        interval: float = 0.2,
        batch_size: int = 5_000,
        max_pending: int = 100_000,
        max_pending_chars: int = 32 * 1024 * 1024,
        chunk_lines: int = 10_000,
        chunk_chars: int = 8 * 1024 * 1024,
        burst: float = 0.5,
        pause: float = 0.12,
    ) -> None:
        self._write = write
        self._interval = interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._max_pending_chars = max_pending_chars
        self._lines: list[LogLine] = []
        self._chars = 0  # characters of the lines waiting: long lines bound memory before many lines do
        self._chunk_lines, self._chunk_chars = chunk_lines, chunk_chars
        self._burst, self._pause = burst, pause
        self._burst_start: float | None = None  # when the current run of back-to-back writes began
        self._last_end = 0.0  # when the last write ended
        self._quiet_until = 0.0  # no write starts before this (monotonic)
        self._cond = threading.Condition()
        self._write_lock = threading.RLock()  # held across a flush, or by the runner's open transaction
        self._closed = False
        self._writing = False  # a flush is writing lines it took from the buffer (set under _write_lock)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None  # started by the first line: most runs of in-process steps log none

    def _start_flusher(self) -> None:
        """Start the flusher thread (under ``_cond``, on the first line appended)."""
        self._thread = threading.Thread(target=self._loop, name="taskloom-logs", daemon=True)
        self._thread.start()

    def append(self, line: LogLine) -> None:
        """Queue ``line``; block while the buffer is full (the flusher empties it)."""
        with self._cond:
            if self._thread is None and not self._closed:
                self._start_flusher()
            while (
                len(self._lines) >= self._max_pending or (self._lines and self._chars >= self._max_pending_chars)
            ) and not self._closed:
                self._cond.notify_all()
                self._cond.wait(0.5)
            self._lines.append(line)
            self._chars += len(line.line)
            if len(self._lines) >= self._batch_size:
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Be the only writer of lines until the block ends: the flusher waits, and :meth:`flush` writes on this thread.

        The runner holds it while its journal transaction is open, so the flusher never waits for the
        store's lock while holding lines taken from the buffer (lines stay in order, and no one deadlocks).
        """
        with self._write_lock:
            yield

    def flush(self) -> None:
        """Write every line appended so far before returning.

        Once a write has failed, raise that error at once: the run stops on it, and a caller does not wait
        for a database that just failed (a server out of reach makes each try wait for a connection).
        """
        if self._error is not None:
            raise self._error
        with self._cond:
            if not self._lines and not self._writing:
                return  # nothing to write, and no other thread is writing lines taken before this call
        with self._write_lock:
            with self._cond:
                lines, self._lines, self._chars = self._lines, [], 0
                self._writing = bool(lines)
                self._cond.notify_all()
            try:
                for chunk in self._chunks(lines):
                    wait = self._quiet_until - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    started = time.monotonic()
                    self._write(chunk)
                    self._wrote(started, time.monotonic())
            finally:
                with self._cond:
                    self._writing = False

    def _chunks(self, lines: list[LogLine]) -> Iterator[list[LogLine]]:
        """``lines`` in pieces of at most chunk_lines lines and (unless one line is longer) chunk_chars characters."""
        start, chars = 0, 0
        for at, line in enumerate(lines):
            size = len(line.line)
            if at > start and (at - start >= self._chunk_lines or chars + size > self._chunk_chars):
                yield lines[start:at]
                start, chars = at, 0
            chars += size
        if start < len(lines):
            yield lines[start:]

    def _wrote(self, started: float, ended: float) -> None:
        """Note a write; after ``burst`` seconds of back-to-back writes, or one long write, keep the lock free for ``pause``.

        A long write is usually one that ran SQLite's automatic checkpoint (fsyncs): whoever queued
        behind it goes first.
        """
        if self._burst_start is None or started - self._last_end >= self._pause:
            self._burst_start = started
        self._last_end = ended
        if ended - self._burst_start >= self._burst or ended - started >= self._pause:
            self._quiet_until = ended + self._pause
            self._burst_start = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._lines) < self._batch_size:
                    self._cond.wait(self._interval)
                closed = self._closed
            try:
                self.flush()
            except BaseException as exc:  # keep the first error for flush() and close() to raise
                self._error = self._error or exc
                return
            if closed:
                return

    def close(self) -> None:
        """Flush what is left and stop the thread; raise a write error if one happened."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.flush()
