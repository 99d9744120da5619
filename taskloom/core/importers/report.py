"""The import report: what each part of an imported file became, and what to check or replace.

Every converter appends one :class:`ReportItem` per step it looked at, in
the order of the source file. ``path`` says where in the source the step is:
a JSON pointer into the imported JSON (``/definition/actions/Get_rows``) or
``line N`` of a crontab. ``kind`` is one of

``mapped``       converted to its Taskloom equivalent; nothing to do
``flagged``      converted, but not exactly, or an expression was kept verbatim: review it
``placeholder``  not converted: a ``placeholder`` task keeps the original; replace it

Input that cannot be read at all raises :class:`ConversionError` instead,
whose ``issues`` name the place and how to fix it; nothing is converted then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from taskloom.core.issues import DocumentError, Issue

__all__ = ["KINDS", "ReportItem", "Report", "ConversionError"]

KINDS = ("mapped", "flagged", "placeholder")


@dataclass(frozen=True)
class ReportItem:
    """One line of the import report."""

    #: where in the source: a JSON pointer, or "line N" for a crontab
    path: str
    #: "mapped", "flagged" or "placeholder"
    kind: str
    #: what happened, naming the source step and what it became
    message: str
    #: what to do about it ("" when nothing)
    hint: str = ""
    #: the task it concerns, when there is one
    task: str | None = None
    #: the workflow it concerns (a crontab gives several)
    workflow: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The item as JSON (``taskloom import --json`` prints these)."""
        return {
            "path": self.path, "kind": self.kind, "message": self.message, "hint": self.hint,
            "task": self.task, "workflow": self.workflow,
        }

    def __str__(self) -> str:
        text = f"{self.kind}: {self.path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class Report:
    """Collects report items while a converter works."""

    def __init__(self, workflow: str | None = None) -> None:
        self.items: list[ReportItem] = []
        self.workflow = workflow

    def mapped(self, path: str, message: str, *, task: str | None = None) -> None:
        """A step converted to its equivalent."""
        self.items.append(ReportItem(path, "mapped", message, "", task, self.workflow))

    def flagged(self, path: str, message: str, hint: str = "", *, task: str | None = None) -> None:
        """A step converted approximately, or an expression kept verbatim: ``hint`` says what to check."""
        self.items.append(ReportItem(path, "flagged", message, hint, task, self.workflow))

    def placeholder(self, path: str, message: str, hint: str, *, task: str | None = None) -> None:
        """A step kept as a placeholder task: ``hint`` says what to replace it with."""
        self.items.append(ReportItem(path, "placeholder", message, hint, task, self.workflow))

    def extend(self, items: Iterable[ReportItem]) -> None:
        """Add items made elsewhere."""
        self.items.extend(items)


class ConversionError(DocumentError):
    """A file that cannot be converted at all; ``issues`` says where and why (nothing is converted)."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        super().__init__(issues)

    @classmethod
    def at(cls, path: str, message: str, hint: str = "") -> "ConversionError":
        """An error with one issue."""
        return cls([Issue(path, message, hint)])
