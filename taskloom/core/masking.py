"""Hiding secret values in text a task prints and in values it outputs.

A :class:`Masker` is built from the decrypted secret values of a run and
replaces every occurrence of any of them with ``***`` before a log line or
output is stored or shown. It is pure (stdlib only, no I/O) so the runner,
the CLI and tests share one definition of what "masked" means.

What is masked, for each secret value:

* the value itself;
* each line of a multi-line value (a PEM key), because logs are stored one
  line at a time and a printed key never arrives whole;
* the forms a task is likely to print it in: ``repr()`` (escaped quotes,
  backslashes, newlines), JSON string escaping and URL encoding.

Values shorter than ``min_length`` (default :data:`MIN_LENGTH`, 4) are *not*
masked: replacing every ``a`` or ``on`` in a log would mangle ordinary text
and, worse, reveal the secret by where the stars appear. Airflow documents
the same hazard (a password of ``a`` would star every letter a in its logs)
and skips short values too (its ``[logging] min_length_masked_secret``,
default 5). Keep secrets long: a three-character password is not protected
by masking, or by much else.

Masking is best effort: a task that prints a secret transformed in some other
way (base64, reversed, one character per line) defeats it.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_LENGTH", "Masker", "KnownSecrets", "KNOWN_SECRETS"]

MASK = "***"

#: The default shortest value that is masked.
MIN_LENGTH = 4


class Masker:
    """Replaces every occurrence of any secret value (and its common encodings) with :data:`MASK`."""

    def __init__(self, secrets: Iterable[str], *, min_length: int = MIN_LENGTH) -> None:
        if min_length < 1:
            raise ValueError(f"min_length must be at least 1, not {min_length}")
        self.min_length = min_length
        needles = _needles(secrets, min_length)
        self._needles = sorted(needles, key=len, reverse=True)
        # Longest first: the regex tries alternatives in order, so at any
        # position a secret that contains another one is replaced whole.
        ordered = sorted(needles, key=lambda s: (-len(s), s))
        self._pattern: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``; ``text`` itself when there is nothing to mask."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_tail(self, text: str) -> str:
        """:meth:`mask`, and also a start of a secret that ends ``text`` (a line cut in the middle of one).

        Only a start of at least :attr:`min_length` characters counts (a shorter
        one reveals next to nothing and would mask ordinary endings).
        """
        text = self.mask(text)
        if self._pattern is None:
            return text
        for needle in self._needles:
            for size in range(min(len(needle) - 1, len(text)), self.min_length - 1, -1):
                if text.endswith(needle[:size]):
                    return text[: len(text) - size] + MASK
        return text

    def mask_value(self, value: Any) -> Any:
        """A copy of a JSON value with every string masked: dict keys and values, list items, recursively.

        Non-string scalars are returned unchanged. Two keys that mask to the
        same text collapse into one (the later one wins).
        """
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {
                (self.mask(k) if isinstance(k, str) else k): self.mask_value(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.mask_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.mask_value(v) for v in value)
        return value


def _needles(secrets: Iterable[str], min_length: int) -> set[str]:
    """Every text to replace: each long-enough value, its lines, and their encodings."""
    needles: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < min_length:
            continue
        parts = [secret]
        lines = secret.splitlines()
        if len(lines) > 1:
            parts += [line for line in lines if len(line) >= min_length]
        for part in parts:
            needles.update(_encodings(part))
    return needles


def _encodings(value: str) -> set[str]:
    """``value`` and the forms a task may print it in (each never shorter than ``value``)."""
    return {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),  # a URL path keeps its slashes
        quote_plus(value),  # a query string or form body: spaces become "+"
    }


class KnownSecrets:
    """Every secret value this process has seen, for masking what the process itself prints.

    Task logs are masked with the run's secrets, but the service's own log
    (an HTTP client's request line, an exception naming a URL) would print
    them in plain text. The store reports each value it decrypts here, and the
    service's stderr is masked with :meth:`masker`, so a secret can reach that
    log only after it has been remembered. One instance per process
    (:data:`KNOWN_SECRETS`); thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._masker = Masker(())

    def remember(self, values: Iterable[str]) -> None:
        """Add ``values`` to the ones masked (values once remembered stay masked for the process's life)."""
        new = {v for v in values if isinstance(v, str)}
        with self._lock:
            if new <= self._values:
                return
            self._values = self._values | new
            self._masker = Masker(self._values)

    def masker(self) -> Masker:
        """A masker for every value remembered so far."""
        return self._masker


#: The process's secrets (see :class:`KnownSecrets`).
KNOWN_SECRETS = KnownSecrets()
