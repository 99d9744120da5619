"""Validation issues: what is wrong, where (a JSON pointer), and how to fix it.

Shared by :mod:`taskloom.core.validation` (which re-exports :class:`Issue` and
:class:`DocumentError`) and the check modules it calls, so that they need
not import each other.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

from taskloom.core.errors import UserMistake

__all__ = ["Issue", "DocumentError", "pointer", "did_you_mean", "json_type"]


@dataclass(frozen=True)
class Issue:
    """One problem in a document."""

    #: JSON pointer: "" for the document itself, "/tasks/2/params/url"
    path: str
    #: what is wrong, naming the bad value
    message: str
    #: how to fix it, e.g. "did you mean 'shell'?"
    hint: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        text = f"{self.path or '(document)'}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class DocumentError(UserMistake, ValueError):
    """A document that cannot be loaded; ``issues`` says every reason (``place`` is the first one's path)."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        listed = list(issues)
        super().__init__("\n".join(str(i) for i in listed), issues=listed, place=listed[0].path if listed else "")
        self.issues: list[Issue] = listed


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer(*parts: Any) -> str:
    """The JSON pointer of ``parts``: ``pointer("tasks", 2, "id") == "/tasks/2/id"``."""
    return "".join("/" + _escape(p) for p in parts)


def did_you_mean(word: Any, candidates: Iterable[str], *, listing: str = "") -> str:
    """``"did you mean 'x'?"`` for a close candidate; else ``listing`` followed by the candidates."""
    names = sorted(set(candidates))
    if isinstance(word, str):
        close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
        if close:
            return f"did you mean '{close[0]}'?"
    if not listing or not names:
        return ""
    shown = ", ".join(f"'{n}'" for n in names[:20])
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return f"{listing} {shown}{more}"


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
