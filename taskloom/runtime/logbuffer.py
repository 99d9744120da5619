"""Capturing an attempt's log lines safely and batching them into the journal.

:class:`AttemptLog` is the ``ctx.log`` of one attempt: it masks secrets,
escapes control characters and applies the caps of :class:`taskloom.core.logtext.LogLimits`
to every line, whatever path the line took (a child process, a warm worker,
a Dask worker, a task implementation's own notes):

* a line over ``max_line_bytes`` is stored cut, ending with ``… [cut N bytes]``;
* once an attempt has stored ``max_lines_per_attempt`` lines or
  ``max_bytes_per_attempt`` bytes, a ``system`` line says so and its further
  lines are counted and dropped; the task is neither slowed nor failed, and
  when the attempt ends a ``system`` line says how many lines and bytes were
  not stored.

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
from typing import Callable, Iterator, Sequence

from taskloom.core.journal import LogLine
from taskloom.core.logtext import LogLimits, cap_line, escape_line, utf8_len

__all__ = ["LogBuffer", "AttemptLog"]


class LogBuffer:
    """A thread-safe buffer of :class:`LogLine` flushed in batches by its own thread."""

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
        self._write_lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="taskloom-logs", daemon=True)
        self._thread.start()

    def append(self, line: LogLine) -> None:
        """Queue ``line``; block while the buffer is full (the flusher empties it)."""
        with self._cond:
            while (
                len(self._lines) >= self._max_pending or (self._lines and self._chars >= self._max_pending_chars)
            ) and not self._closed:
                self._cond.notify_all()
                self._cond.wait(0.5)
            self._lines.append(line)
            self._chars += len(line.line)
            if len(self._lines) >= self._batch_size:
                self._cond.notify_all()

    def flush(self) -> None:
        """Write every line appended so far before returning."""
        with self._write_lock:
            with self._cond:
                lines, self._lines, self._chars = self._lines, [], 0
                self._cond.notify_all()
            for chunk in self._chunks(lines):
                wait = self._quiet_until - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                started = time.monotonic()
                self._write(chunk)
                self._wrote(started, time.monotonic())

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
            except BaseException as exc:  # keep the first error for close() to raise
                self._error = self._error or exc
            if closed:
                return

    def close(self) -> None:
        """Flush what is left and stop the thread; raise a write error if one happened."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self.flush()
        if self._error is not None:
            raise self._error


class AttemptLog:
    """The ``log(stream, line)`` of one attempt: masks, escapes and caps each line, then appends it.

    ``max_line_bytes`` is public: output readers (:func:`taskloom.core.logtext.line_cap`)
    cut long lines to it as they read, so a huge line is never held whole.
    Thread-safe: a task may log from several threads.
    """

    def __init__(
        self,
        append: Callable[[LogLine], None],
        run_id: int,
        task_id: str,
        attempt: int,
        *,
        clock: Callable[[], float],
        limits: LogLimits,
        mask: Callable[[str], str] | None = None,
    ) -> None:
        self.limits = limits
        self.stored_lines = 0
        self.stored_bytes = 0
        self.dropped_lines = 0  # lines not stored because a per-attempt cap was reached
        self.dropped_bytes = 0
        self._append, self._run_id, self._task_id, self._attempt = append, run_id, task_id, attempt
        self._clock = clock
        self._mask = mask
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, stream: str, line: str) -> None:
        with self._lock:
            if self.dropped_lines:
                self.dropped_lines += 1
                self.dropped_bytes += utf8_len(line)
                return
            text = cap_line(escape_line(line if self._mask is None else self._mask(line)), self.max_line_bytes)
            size = utf8_len(text)
            limits = self.limits
            full = self.stored_lines >= limits.max_lines_per_attempt
            if full or self.stored_bytes + size > limits.max_bytes_per_attempt:
                self.dropped_lines, self.dropped_bytes = 1, utf8_len(line)
                self._system(
                    f"log cap reached: {self.stored_lines:,} lines ({self.stored_bytes:,} bytes) stored,"
                    f" {self._which_cap()}; the task goes on, its further lines are counted, not stored"
                )
                return
            self.stored_lines += 1
            self.stored_bytes += size
            self._append(LogLine(self._run_id, self._task_id, self._attempt, self._clock(), stream, text))

    @property
    def max_line_bytes(self) -> int:
        """The per-line cap, which output readers apply as they read."""
        return self.limits.max_line_bytes

    def close(self) -> None:
        """The attempt ended: say how much output the per-attempt caps kept out, if any (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.dropped_lines:
                self._system(
                    f"{self.dropped_lines:,} lines ({self.dropped_bytes:,} bytes) of this attempt were not stored:"
                    f" the log cap was reached after {self.stored_lines:,} lines ({self.stored_bytes:,} bytes);"
                    " raise logs.max_lines_per_attempt or logs.max_bytes_per_attempt to keep more"
                )

    def _which_cap(self) -> str:
        """The per-attempt cap that stopped storing, in words."""
        if self.stored_lines >= self.limits.max_lines_per_attempt:
            return f"logs.max_lines_per_attempt is {self.limits.max_lines_per_attempt:,}"
        return f"logs.max_bytes_per_attempt is {self.limits.max_bytes_per_attempt:,}"

    def _system(self, message: str) -> None:
        self._append(LogLine(self._run_id, self._task_id, self._attempt, self._clock(), "system", message))
