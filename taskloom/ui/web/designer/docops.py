"""Edits of a ``taskloom/v1`` document, as pure functions that return a new document.

Only the keys a user changes are written, so a document loaded and saved
without edits keeps its canonical JSON (positions, titles, descriptions and
keys the designer does not know survive).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterable, Mapping

from taskloom.core.model import FORMAT
from taskloom.core.registry import Registry, TaskType
from taskloom.core.schema import EDGE_CONDITIONS, IDENTIFIER_PATTERN, SLUG_PATTERN
from taskloom.core.validation import Issue

__all__ = [
    "DEFAULT_NAME",
    "new_document",
    "default_name",
    "editable_problems",
    "fresh_task_id",
    "default_params",
    "add_task",
    "rename_task",
    "delete_task",
    "task_index_of",
    "edge_key",
    "edge_keys",
    "edge_conditions",
    "set_edge_condition",
    "delete_edge",
    "set_task_field",
    "is_identifier",
]

DEFAULT_NAME = "new-workflow"

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)


def is_identifier(text: Any) -> bool:
    return isinstance(text, str) and bool(_IDENTIFIER.match(text))


def new_document(name: str = DEFAULT_NAME) -> dict[str, Any]:
    """An empty workflow (invalid until it has a task: validation says so)."""
    return {"format": FORMAT, "name": name, "tasks": [], "edges": []}


def default_name(taken: Iterable[str]) -> str:
    """``new-workflow``, or ``new-workflow-2``... when that name is stored already."""
    taken = set(taken)
    if DEFAULT_NAME not in taken:
        return DEFAULT_NAME
    n = 2
    while f"{DEFAULT_NAME}-{n}" in taken:
        n += 1
    return f"{DEFAULT_NAME}-{n}"


def editable_problems(doc: Any) -> list[Issue]:
    """Why the designer cannot show ``doc`` as a graph; ``[]`` when it can (it may still be invalid).

    The designer needs an object whose tasks are objects with string ids and
    types, edges objects with string ends, triggers objects with string ids and
    types; everything else is left to validation and can be fixed in the page.
    """
    if not isinstance(doc, dict):
        return [Issue("", "a workflow must be a JSON object", 'start from {"format": "taskloom/v1", ...}')]
    issues: list[Issue] = []
    for section, keys in (("tasks", ("id", "type")), ("edges", ("from", "to")), ("triggers", ("id", "type"))):
        items = doc.get(section, [])
        if not isinstance(items, list):
            issues.append(Issue(f"/{section}", f"'{section}' must be a list", ""))
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                issues.append(Issue(f"/{section}/{i}", f"{section} entries must be objects", ""))
                continue
            for key in keys:
                if not isinstance(item.get(key), str):
                    issues.append(Issue(f"/{section}/{i}/{key}", f"'{key}' must be a string", ""))
    for section in ("params", "settings"):
        if section in doc and not isinstance(doc[section], dict):
            issues.append(Issue(f"/{section}", f"'{section}' must be an object", ""))
    if not isinstance(doc.get("name", ""), str):
        issues.append(Issue("/name", "'name' must be a string", ""))
    return issues


# -- tasks ---------------------------------------------------------------------


def fresh_task_id(doc: Mapping[str, Any], type_name: str) -> str:
    """``http_1``, ``http_2``...: the first ``{type}_{n}`` not taken."""
    base = re.sub(r"\W", "_", type_name) or "task"
    if not base[0].isalpha() and base[0] != "_":
        base = "t_" + base
    taken = {t.get("id") for t in doc.get("tasks", [])}
    n = 1
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def _types(schema: Mapping[str, Any]) -> list[str]:
    value = schema.get("type")
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, list) else []


def default_params(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Initial params of a new task: the required properties only.

    A required property takes its schema default, else an empty value of its
    type (``""``, ``{}``, ``[]``) that validation then flags at its path. Optional
    properties stay absent: the form shows their defaults, the runtime applies them.
    """
    params: dict[str, Any] = {}
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        prop = props.get(name, {})
        if "default" in prop:
            params[name] = copy.deepcopy(prop["default"])
            continue
        types = _types(prop)
        if "string" in types:
            params[name] = ""
        elif types[:1] == ["object"]:
            params[name] = default_params(prop)
        elif types[:1] == ["array"]:
            params[name] = []
    return params


def add_task(
    doc: Mapping[str, Any], type_name: str, registry: Registry, position: tuple[float, float] | None = None
) -> tuple[dict[str, Any], str]:
    """A copy of ``doc`` with a new task of ``type_name``; returns (document, task id)."""
    task_type: TaskType | None = registry.get(type_name)
    if task_type is None:
        raise ValueError(f"unknown task type {type_name!r}")
    out = copy.deepcopy(dict(doc))
    task_id = fresh_task_id(out, type_name)
    task: dict[str, Any] = {"id": task_id, "type": type_name, "params": default_params(task_type.params_schema)}
    if position is not None:
        task["position"] = {"x": _num(position[0]), "y": _num(position[1])}
    out.setdefault("tasks", []).append(task)
    return out, task_id


def _num(value: float) -> int | float:
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


def task_index_of(doc: Mapping[str, Any], task_id: str) -> int | None:
    for i, task in enumerate(doc.get("tasks", [])):
        if task.get("id") == task_id:
            return i
    return None


def rename_task(doc: Mapping[str, Any], old: str, new: str) -> dict[str, Any]:
    """Rename a task and the edges that name it; :class:`ValueError` with a message when ``new`` is unusable.

    Templates that read ``tasks.OLD...`` are not rewritten: validation flags them.
    """
    if new == old:
        return copy.deepcopy(dict(doc))
    if not is_identifier(new):
        raise ValueError(f"'{new}' is not a valid task id: use letters, digits and '_', not starting with a digit")
    if any(t.get("id") == new for t in doc.get("tasks", [])):
        raise ValueError(f"there is already a task '{new}'")
    index = task_index_of(doc, old)
    if index is None:
        raise ValueError(f"no task '{old}'")
    out = copy.deepcopy(dict(doc))
    out["tasks"][index]["id"] = new
    for edge in out.get("edges", []):
        if edge.get("from") == old:
            edge["from"] = new
        if edge.get("to") == old:
            edge["to"] = new
    return out


def delete_task(doc: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """Remove a task and every edge that touches it."""
    out = copy.deepcopy(dict(doc))
    out["tasks"] = [t for t in out.get("tasks", []) if t.get("id") != task_id]
    if "edges" in out:
        out["edges"] = [e for e in out["edges"] if task_id not in (e.get("from"), e.get("to"))]
    return out


def set_task_field(
    doc: Mapping[str, Any], task_id: str, key: str, value: Any, *, remove: bool = False
) -> dict[str, Any]:
    """Set (or remove) a top-level key of one task (title, retries, join...)."""
    out = copy.deepcopy(dict(doc))
    index = task_index_of(out, task_id)
    if index is None:
        return out
    task = out["tasks"][index]
    if remove:
        task.pop(key, None)
    else:
        task[key] = value
    return out


# -- edges ---------------------------------------------------------------------


def edge_key(edge: Mapping[str, Any]) -> str:
    return f"{edge.get('from')}->{edge.get('to')}"


def edge_keys(doc: Mapping[str, Any]) -> list[str]:
    """A unique id per edge, in document order: ``from->to`` (``from->to~N`` for a duplicate)."""
    seen: dict[str, int] = {}
    keys = []
    for edge in doc.get("edges", []):
        key = edge_key(edge)
        count = seen.get(key, 0)
        seen[key] = count + 1
        keys.append(key if count == 0 else f"{key}~{count}")
    return keys


def edge_conditions(doc: Mapping[str, Any], source_id: str) -> list[str]:
    """The conditions an edge leaving ``source_id`` may have (true/false only from a condition task)."""
    index = task_index_of(doc, source_id)
    is_condition = index is not None and doc["tasks"][index].get("type") == "condition"
    return [c for c in EDGE_CONDITIONS if is_condition or c not in ("true", "false")]


def set_edge_condition(doc: Mapping[str, Any], key: str, on: str) -> dict[str, Any]:
    """Set ``on`` of the edge with id ``key`` (see :func:`edge_keys`)."""
    if on not in EDGE_CONDITIONS:
        raise ValueError(f"unknown edge condition {on!r}")
    out = copy.deepcopy(dict(doc))
    for edge, k in zip(out.get("edges", []), edge_keys(out)):
        if k == key:
            if edge.get("on", "success") != on:
                edge["on"] = on
            return out
    raise ValueError(f"no edge {key}")


def delete_edge(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(doc))
    keys = edge_keys(out)
    out["edges"] = [e for e, k in zip(out.get("edges", []), keys) if k != key]
    return out


def is_slug(text: Any) -> bool:
    return isinstance(text, str) and bool(_SLUG.match(text))
