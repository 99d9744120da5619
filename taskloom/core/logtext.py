"""What a stored log line may contain: escaping of control characters and the caps on size.

Pure (``re`` and ``dataclasses`` only), so the runner, the process reader,
the CLI and the web app share one definition of a safe log line.

A task's output is untrusted text. Before a line is stored:

* invalid UTF-8 is already written as ``\\xNN`` by the reader
  (``backslashreplace``);
* :func:`escape_line` writes every control character as a visible escape:
  ``\\n``, ``\\r``, ``\\xNN`` for the other C0 controls (NUL is ``\\x00``, ESC
  ``\\x1b``) and DEL, ``\\uNNNN`` for C1 controls, the Unicode line and
  paragraph separators and the bidirectional overrides. A tab stays a tab.
  So an ANSI colour sequence is stored as the text ``\\x1b[31m``: no terminal,
  log viewer or tool that stops at NUL can be driven by a task's output, and
  ``a\\rb`` from a progress bar keeps both parts instead of hiding ``a``;
* :func:`cap_line` keeps at most ``max_line_bytes`` bytes (UTF-8) and ends a
  cut line with :func:`cut_marker`, ``… [cut 4,194,304 bytes]``.

Backslashes are not doubled: a task printing the four characters ``\\x00``
and one printing a NUL byte store the same text. Logs are for reading, and
doubling every backslash of every Windows path would make them worse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MAX_LINE_BYTES", "DEFAULT_MAX_LINES_PER_ATTEMPT", "DEFAULT_MAX_BYTES_PER_ATTEMPT", "LogLimits",
    "escape_line", "escape_text", "cap_line", "cut_marker", "cut_bytes", "line_cap", "utf8_len",
]

#: The default per-line cap. A ``shell`` task's output is its last stdout line, so this is also the
#: largest JSON a shell step can hand downstream; 1 MB keeps what worked before the cap existed.
DEFAULT_MAX_LINE_BYTES = 1_000_000
#: The default per-attempt line cap: an ordinary chatty job (10,000 lines a second for a minute
#: and a half) loses nothing.
DEFAULT_MAX_LINES_PER_ATTEMPT = 1_000_000
#: The default per-attempt byte cap (256 MiB): a million lines of 268 bytes on average.
DEFAULT_MAX_BYTES_PER_ATTEMPT = 256 * 1024 * 1024


@dataclass(frozen=True)
class LogLimits:
    """How much of one attempt's output is stored (the ``logs.*`` configuration keys).

    >>> LogLimits(max_lines_per_attempt=1000).max_line_bytes
    1000000
    >>> LogLimits(max_line_bytes=0)
    Traceback (most recent call last):
    ...
    ValueError: max_line_bytes must be at least 1, not 0

    Raises
    ------
    ValueError
        When a cap is below 1.
    """

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_lines_per_attempt: int = DEFAULT_MAX_LINES_PER_ATTEMPT
    max_bytes_per_attempt: int = DEFAULT_MAX_BYTES_PER_ATTEMPT

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_lines_per_attempt", "max_bytes_per_attempt"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be at least 1, not {value!r}")


def _escapes() -> dict[int, str]:
    table = {c: f"\\x{c:02x}" for c in range(0x20) if c != 0x09}
    table[0x0A], table[0x0D], table[0x7F] = "\\n", "\\r", "\\x7f"
    unicode = [*range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    table.update({c: f"\\u{c:04x}" for c in unicode})
    return table


_ESCAPES = _escapes()
_UNSAFE = re.compile("[" + "".join(re.escape(chr(c)) for c in _ESCAPES) + "]")
_TEXT_ESCAPES = {c: e for c, e in _ESCAPES.items() if c != 0x0A}
_TEXT_UNSAFE = re.compile("[" + "".join(re.escape(chr(c)) for c in _TEXT_ESCAPES) + "]")
_CUT_TAIL = re.compile(r"… \[cut ([0-9][0-9,]*) bytes\]\Z")


def escape_line(text: str) -> str:
    """``text`` with every control character written as a visible escape (a tab stays a tab).

    Idempotent: an escaped line holds no control character, so escaping it again changes nothing.

    >>> escape_line("\\x1b[31mred\\x1b[0m a\\rb nul\\x00 tab\\tok")
    '\\\\x1b[31mred\\\\x1b[0m a\\\\rb nul\\\\x00 tab\\tok'
    >>> escape_line("plain [red]x[/]")
    'plain [red]x[/]'
    """
    if _UNSAFE.search(text) is None:
        return text
    return text.translate(_ESCAPES)


def escape_text(text: str) -> str:
    """Like :func:`escape_line` but keeping newlines: for multi-line messages (a traceback in an error).

    >>> escape_text("line 1\\n\\x1b[2Jline 2")
    'line 1\\n\\\\x1b[2Jline 2'
    """
    if _TEXT_UNSAFE.search(text) is None:
        return text
    return text.translate(_TEXT_ESCAPES)


def utf8_len(text: str) -> int:
    """The size of ``text`` in UTF-8 bytes (lone surrogates count 3 bytes each).

    >>> utf8_len("abc"), utf8_len("€")
    (3, 3)
    """
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def cut_marker(cut: int) -> str:
    """The text that ends a line whose last ``cut`` bytes were not stored.

    >>> cut_marker(4194304)
    '… [cut 4,194,304 bytes]'
    """
    return f"… [cut {cut:,} bytes]"


def cut_bytes(line: str) -> int:
    """How many bytes :func:`cut_marker` says were cut from a stored line; 0 for an uncut line.

    >>> cut_bytes("xxx… [cut 1,234 bytes]"), cut_bytes("xxx")
    (1234, 0)
    """
    match = _CUT_TAIL.search(line)
    return int(match.group(1).replace(",", "")) if match else 0


def cap_line(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes plus a marker saying how many bytes were cut.

    A line already cut upstream (it ends with a marker) is cut again only when
    what precedes its marker is still too long, and then one marker gives the
    sum. The cut never splits a UTF-8 character.

    >>> cap_line("x" * 10, 4)
    'xxxx… [cut 6 bytes]'
    >>> cap_line("xxxx… [cut 6 bytes]", 2)
    'xx… [cut 8 bytes]'
    >>> cap_line("€€", 4)
    '€… [cut 3 bytes]'
    """
    if len(text) * 4 <= max_bytes or utf8_len(text) <= max_bytes:
        return text
    earlier = 0
    match = _CUT_TAIL.search(text)
    if match is not None:
        earlier = int(match.group(1).replace(",", ""))
        if utf8_len(text[: match.start()]) <= max_bytes:
            return text
        text = text[: match.start()]
    data = text.encode("utf-8", "surrogatepass")
    at = utf8_boundary(data, max_bytes)
    head = data[:at].decode("utf-8", "surrogatepass")
    return head + cut_marker(len(data) - at + earlier)


def utf8_boundary(data: bytes, limit: int) -> int:
    """An index <= ``limit`` to cut ``data`` (longer than ``limit``) at, not inside a UTF-8 character if avoidable.

    >>> utf8_boundary("a€".encode(), 2)
    1
    """
    for back in range(4):  # a UTF-8 character has at most 3 continuation bytes
        cut = limit - back
        if cut > 0 and data[cut] & 0xC0 != 0x80:
            return cut
    return limit


def line_cap(log: Any) -> int:
    """The per-line cap a task's ``ctx.log`` asks output readers to apply (the runner's attempt log has one).

    >>> line_cap(print)
    1000000
    """
    cap = getattr(log, "max_line_bytes", None)
    return cap if isinstance(cap, int) and cap >= 1 else DEFAULT_MAX_LINE_BYTES
