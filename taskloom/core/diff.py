"""What changed between two versions of a workflow document, as structured data.

:func:`diff_documents` compares two ``taskloom/v1`` documents object by object,
not line by line: tasks, triggers and params are matched by their id or name,
edges by their ``(from, to)`` pair (validation allows one edge per pair), and
for everything that exists on both sides the differing fields are listed as
:class:`FieldChange` (``path``, ``old``, ``new``), descending into nested
objects (``params.args.port``). Lists are compared as whole values.

Decisions:

* **A renamed task** (a new ``id``) is a removed task plus an added one:
  nothing identifies it across versions but its id.
* **Positions** (the editor's ``position`` of a task) never change behaviour,
  so they are not field changes; tasks whose position changed are listed in
  :attr:`WorkflowDiff.tasks_moved` and shown compactly ("3 tasks moved").
* **Task order** (the order of ``tasks`` in the file) is reported as one flag.
* An edge without ``on`` means ``on: "success"``; a change between the two
  spellings is not a change. Every other absent field is :data:`ABSENT`
  (shown as "(not set)"), so "retries: (not set) → 0" is a change even
  though 0 is the default: the documents differ.
* Values are compared as JSON: ``1`` and ``true`` differ, and so do ``10``
  and ``10.0`` (they serialize differently). Key order inside objects is not
  a change.

Pure: dicts in, dataclasses out; no I/O.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "ABSENT",
    "FieldChange",
    "Item",
    "ItemChange",
    "EdgeRef",
    "EdgeChange",
    "WorkflowDiff",
    "diff_documents",
    "diff_values",
    "format_value",
    "text_diff",
]


class _Absent:
    """The value of a field that is not in the document."""

    _instance: "_Absent | None" = None

    def __new__(cls) -> "_Absent":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


#: The old value of an added field, or the new value of a removed one.
ABSENT: Any = _Absent()

_TOP_LEVEL_FIELDS = ("format", "name", "title", "description")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: ``path`` is dotted (``params.args.port``; odd keys as ``["a.b"]``)."""

    path: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        if self.old is ABSENT:
            return "added"
        if self.new is ABSENT:
            return "removed"
        return "changed"


@dataclass(frozen=True)
class Item:
    """A task, trigger or param that exists on one side only; ``value`` is its JSON."""

    key: str
    value: Any


@dataclass(frozen=True)
class ItemChange:
    """A task, trigger or param on both sides whose fields differ."""

    key: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class EdgeRef:
    source: str
    target: str
    on: str = "success"

    def __str__(self) -> str:
        return f"{self.source} → {self.target} (on {self.on})"


@dataclass(frozen=True)
class EdgeChange:
    """An edge between the same two tasks whose ``on`` changed."""

    source: str
    target: str
    old_on: str
    new_on: str


@dataclass(frozen=True)
class WorkflowDiff:
    """Everything that differs between two documents (``old`` → ``new``)."""

    document: tuple[FieldChange, ...] = ()  # format, name, title, description
    tasks_added: tuple[Item, ...] = ()
    tasks_removed: tuple[Item, ...] = ()
    tasks_changed: tuple[ItemChange, ...] = ()
    tasks_moved: tuple[str, ...] = ()
    task_order_changed: bool = False
    edges_added: tuple[EdgeRef, ...] = ()
    edges_removed: tuple[EdgeRef, ...] = ()
    edges_changed: tuple[EdgeChange, ...] = ()
    triggers_added: tuple[Item, ...] = ()
    triggers_removed: tuple[Item, ...] = ()
    triggers_changed: tuple[ItemChange, ...] = ()
    params_added: tuple[Item, ...] = ()
    params_removed: tuple[Item, ...] = ()
    params_changed: tuple[ItemChange, ...] = ()
    settings: tuple[FieldChange, ...] = ()
    other: tuple[FieldChange, ...] = field(default=())  # top-level keys this module does not know

    @property
    def is_empty(self) -> bool:
        """True when the documents are the same (moves and task order count as differences)."""
        return not (
            self.document or self.tasks_added or self.tasks_removed or self.tasks_changed or self.tasks_moved
            or self.task_order_changed or self.edges_added or self.edges_removed or self.edges_changed
            or self.triggers_added or self.triggers_removed or self.triggers_changed or self.params_added
            or self.params_removed or self.params_changed or self.settings or self.other
        )

    @property
    def layout_only(self) -> bool:
        """True when only positions or task order differ: nothing that changes how it runs."""
        return not self.is_empty and WorkflowDiff(
            document=self.document, tasks_added=self.tasks_added, tasks_removed=self.tasks_removed,
            tasks_changed=self.tasks_changed, edges_added=self.edges_added, edges_removed=self.edges_removed,
            edges_changed=self.edges_changed, triggers_added=self.triggers_added,
            triggers_removed=self.triggers_removed, triggers_changed=self.triggers_changed,
            params_added=self.params_added, params_removed=self.params_removed,
            params_changed=self.params_changed, settings=self.settings, other=self.other,
        ).is_empty

    def summary(self) -> str:
        """One line: ``"1 task added, 2 tasks changed, 3 tasks moved, 1 edge removed"``, or ``"no changes"``."""
        parts = []
        for count, noun, verb in (
            (len(self.document), "workflow field", "changed"),
            (len(self.tasks_added), "task", "added"),
            (len(self.tasks_removed), "task", "removed"),
            (len(self.tasks_changed), "task", "changed"),
            (len(self.tasks_moved), "task", "moved"),
            (len(self.edges_added), "edge", "added"),
            (len(self.edges_removed), "edge", "removed"),
            (len(self.edges_changed), "edge", "changed"),
            (len(self.triggers_added), "trigger", "added"),
            (len(self.triggers_removed), "trigger", "removed"),
            (len(self.triggers_changed), "trigger", "changed"),
            (len(self.params_added), "param", "added"),
            (len(self.params_removed), "param", "removed"),
            (len(self.params_changed), "param", "changed"),
            (len(self.settings), "setting", "changed"),
            (len(self.other), "other field", "changed"),
        ):
            if count:
                parts.append(f"{count} {noun}{'' if count == 1 else 's'} {verb}")
        if self.task_order_changed:
            parts.append("task order changed")
        return ", ".join(parts) if parts else "no changes"


# -- comparing ---------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return json.dumps(a, sort_keys=True, ensure_ascii=False) == json.dumps(b, sort_keys=True, ensure_ascii=False)


def _join(prefix: str, key: Any) -> str:
    key = str(key)
    part = key if _IDENT.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"
    if not prefix:
        return part
    return f"{prefix}{part}" if part.startswith("[") else f"{prefix}.{part}"


def diff_values(old: Any, new: Any, path: str = "", *, skip: frozenset[str] = frozenset()) -> list[FieldChange]:
    """The fields that differ between two JSON values, descending into objects (not lists).

    ``skip`` names top-level keys to leave out (when ``old`` and ``new`` are objects).
    """
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        keys = list(old) + [k for k in new if k not in old]
        for key in keys:
            if not path and key in skip:
                continue
            changes.extend(diff_values(old.get(key, ABSENT), new.get(key, ABSENT), _join(path, key)))
        return changes
    if _same(old, new):
        return []
    return [FieldChange(path, old, new)]


def _keyed(items: Any, key: str) -> dict[str, dict[str, Any]]:
    """List items by their id; items without one (invalid documents) are left out."""
    out: dict[str, dict[str, Any]] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get(key), str):
                out.setdefault(item[key], item)
    return out


def _compare(old: Mapping[str, Any], new: Mapping[str, Any], *, skip: frozenset[str] = frozenset()) -> tuple[
    tuple[Item, ...], tuple[Item, ...], tuple[ItemChange, ...]
]:
    added = tuple(Item(k, v) for k, v in new.items() if k not in old)
    removed = tuple(Item(k, v) for k, v in old.items() if k not in new)
    changed = []
    for k, before in old.items():
        if k in new:
            fields = diff_values(before, new[k], skip=skip)
            if fields:
                changed.append(ItemChange(k, tuple(fields)))
    return added, removed, tuple(changed)


def _edges(doc: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    edges = doc.get("edges", [])
    if isinstance(edges, list):
        for e in edges:
            if isinstance(e, dict) and isinstance(e.get("from"), str) and isinstance(e.get("to"), str):
                out.setdefault((e["from"], e["to"]), str(e.get("on", "success")))
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> WorkflowDiff:
    """What changed from ``old`` to ``new`` (two workflow documents)."""
    old_tasks, new_tasks = _keyed(old.get("tasks"), "id"), _keyed(new.get("tasks"), "id")
    tasks_added, tasks_removed, tasks_changed = _compare(old_tasks, new_tasks, skip=frozenset({"position"}))
    moved = tuple(
        tid for tid in old_tasks
        if tid in new_tasks and not _same(old_tasks[tid].get("position", ABSENT), new_tasks[tid].get("position", ABSENT))
    )
    common_old = [t for t in old_tasks if t in new_tasks]
    common_new = [t for t in new_tasks if t in old_tasks]

    old_edges, new_edges = _edges(old), _edges(new)
    edges_added = tuple(EdgeRef(s, t, on) for (s, t), on in new_edges.items() if (s, t) not in old_edges)
    edges_removed = tuple(EdgeRef(s, t, on) for (s, t), on in old_edges.items() if (s, t) not in new_edges)
    edges_changed = tuple(
        EdgeChange(s, t, on, new_edges[(s, t)])
        for (s, t), on in old_edges.items()
        if (s, t) in new_edges and new_edges[(s, t)] != on
    )

    triggers_added, triggers_removed, triggers_changed = _compare(
        _keyed(old.get("triggers"), "id"), _keyed(new.get("triggers"), "id")
    )
    params_added, params_removed, params_changed = _compare(_dict(old.get("params")), _dict(new.get("params")))

    known = {*_TOP_LEVEL_FIELDS, "params", "triggers", "tasks", "edges", "settings"}
    return WorkflowDiff(
        document=tuple(
            c for key in _TOP_LEVEL_FIELDS for c in diff_values(old.get(key, ABSENT), new.get(key, ABSENT), key)
        ),
        tasks_added=tasks_added,
        tasks_removed=tasks_removed,
        tasks_changed=tasks_changed,
        tasks_moved=moved,
        task_order_changed=common_old != common_new,
        edges_added=edges_added,
        edges_removed=edges_removed,
        edges_changed=edges_changed,
        triggers_added=triggers_added,
        triggers_removed=triggers_removed,
        triggers_changed=triggers_changed,
        params_added=params_added,
        params_removed=params_removed,
        params_changed=params_changed,
        settings=tuple(diff_values(_dict(old.get("settings")), _dict(new.get("settings")), "")),
        other=tuple(
            c for key in sorted({*old, *new} - known)
            for c in diff_values(old.get(key, ABSENT), new.get(key, ABSENT), key)
        ),
    )


# -- presenting --------------------------------------------------------------


def format_value(value: Any, width: int = 80) -> str:
    """A short one-line rendering of a value: JSON, ``(not set)`` when absent, cut at ``width``."""
    if value is ABSENT:
        return "(not set)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def text_diff(change: FieldChange, context: int = 2) -> list[str] | None:
    """A line diff of a long or multi-line text field (code, queries), else None."""
    old, new = change.old, change.new
    texts = [v for v in (old, new) if v is not ABSENT]
    if not texts or not all(isinstance(v, str) for v in texts):
        return None
    if not any("\n" in v or len(v) > 80 for v in texts):
        return None
    a = old.splitlines() if isinstance(old, str) else []
    b = new.splitlines() if isinstance(new, str) else []
    return list(difflib.unified_diff(a, b, "old", "new", n=context, lineterm=""))
