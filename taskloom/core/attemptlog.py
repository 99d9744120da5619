"""One attempt's ``ctx.log``: masking, escaping and the caps of every line, before it reaches the journal.

Pure (no I/O, no clock): the lines go to a sink it is given, which in the
runner is :class:`taskloom.runtime.logbuffer.LogBuffer`. Every path a line
takes (a child process, a warm worker, a Dask worker, a task implementation's
own notes) passes here, so the rules hold whatever the executor:

* a line over ``max_line_bytes`` is stored cut, ending with ``… [cut N bytes]``;
* once an attempt has stored ``max_lines_per_attempt`` lines or
  ``max_bytes_per_attempt`` bytes, a ``system`` line says so and its further
  lines are counted and dropped; the task is neither slowed nor failed, and
  when the attempt ends a ``system`` line says how many lines and bytes were
  not stored.
"""

from __future__ import annotations

import threading
from typing import Callable

from taskloom.core.journal import LogLine
from taskloom.core.logtext import LogLimits, cap_line, escape_line, utf8_len

__all__ = ["AttemptLog"]


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
