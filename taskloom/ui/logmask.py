"""Mask secrets in everything a Taskloom process writes to its own stderr and stdout.

Task logs are masked by the runner, but the service's own log is written by
libraries too: an HTTP client logs each request's URL (an API key in a query
string), an exception names the URL it failed on, uvicorn reports a bad
request line. Rather than trust every logger to stay quiet, the process's
streams are wrapped: each complete line passes :data:`taskloom.core.masking.KNOWN_SECRETS`
(every secret value this process has decrypted) before it reaches the real
stream. Lines are held until their newline so a secret split across two
writes is still masked.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from typing import Any, Callable, TextIO

from taskloom.core.masking import KNOWN_SECRETS, Masker

__all__ = ["MaskedStream", "mask_process_output", "QUIET_LOGGERS"]

#: Libraries whose lines are noise in a service log, and the least level of theirs it keeps: per-request INFO
#: lines of HTTP clients (which may name secret URLs), and the connection pool's warning for every reconnect
#: attempt while the database server is out of reach (the scheduler says that once, then once a minute).
QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "urllib3": logging.WARNING,
                 "hpack": logging.WARNING, "psycopg.pool": logging.ERROR}

#: A partial line longer than this is written out (masked) without waiting for its newline.
_MAX_PENDING = 64 * 1024


class MaskedStream(io.TextIOBase):
    """A text stream that masks secrets, line by line, on its way to ``stream``."""

    def __init__(self, stream: TextIO, masker: Callable[[], Masker] = KNOWN_SECRETS.masker) -> None:
        super().__init__()
        self._stream = stream
        self._masker = masker
        self._pending = ""
        self._lock = threading.RLock()

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            data = self._pending + text
            head, newline, tail = data.rpartition("\n")
            if newline:
                self._stream.write(self._masker().mask(head + newline))
            self._pending = tail
            if len(self._pending) > _MAX_PENDING:
                self._write_pending()
        return len(text)

    def flush(self) -> None:
        # A prompt or progress text without a newline must still appear when flushed.
        with self._lock:
            self._write_pending()
            self._stream.flush()

    def _write_pending(self) -> None:
        if self._pending:
            self._stream.write(self._masker().mask_tail(self._pending))
            self._pending = ""

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_process_output(*, stdout: bool = False) -> None:
    """Wrap ``sys.stderr`` (and ``sys.stdout`` with ``stdout``) in a :class:`MaskedStream`, once.

    Logging handlers already writing to the unwrapped stream (a library that
    configured logging first) are pointed at the wrapper too. Also quiets the
    noisy lines of the libraries in :data:`QUIET_LOGGERS`.
    """
    swapped: dict[int, MaskedStream] = {}
    if not isinstance(sys.stderr, MaskedStream) and sys.stderr is not None:
        swapped[id(sys.stderr)] = sys.stderr = MaskedStream(sys.stderr)
    if stdout and not isinstance(sys.stdout, MaskedStream) and sys.stdout is not None:
        swapped[id(sys.stdout)] = sys.stdout = MaskedStream(sys.stdout)
    if swapped:
        for handler in _stream_handlers():
            wrapper = swapped.get(id(handler.stream))
            if wrapper is not None:
                handler.setStream(wrapper)  # type: ignore[arg-type]
    for name, level in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


def _stream_handlers() -> list[logging.StreamHandler]:  # type: ignore[type-arg]
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    return [h for lg in loggers for h in lg.handlers if isinstance(h, logging.StreamHandler)]
