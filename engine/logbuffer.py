"""Batching captured log lines into the journal.

Task threads append lines; a flusher thread writes them in one transaction
every ``interval`` seconds or as soon as ``batch_size`` lines wait. A task
that prints faster than the disk can take is slowed down (the append blocks
once ``max_pending`` lines wait) rather than losing lines or memory.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from .journal import LogLine

__all__ = ["LogBuffer"]


class LogBuffer:
    """A thread-safe buffer of :class:`LogLine` flushed in batches by its own thread."""

    def __init__(
        self,
        write: Callable[[Sequence[LogLine]], None],
        *,
        interval: float = 0.2,
        batch_size: int = 5_000,
        max_pending: int = 100_000,
    ) -> None:
        self._write = write
        self._interval = interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._lines: list[LogLine] = []
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="taskloom-logs", daemon=True)
        self._thread.start()

    def append(self, line: LogLine) -> None:
        with self._cond:
            while len(self._lines) >= self._max_pending and not self._closed:
                self._cond.notify_all()
                self._cond.wait(0.5)
            self._lines.append(line)
            if len(self._lines) >= self._batch_size:
                self._cond.notify_all()

    def flush(self) -> None:
        """Write every line appended so far before returning."""
        with self._write_lock:
            with self._cond:
                lines, self._lines = self._lines, []
                self._cond.notify_all()
            if lines:
                self._write(lines)

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
