"""What the converters share: names and ids, literal text in templates, durations, placeholders, layout.

Pure functions over plain values; each converter builds a ``taskloom/v1``
document with them and finishes it with :func:`finish`.
"""

from __future__ import annotations

import json
import keyword
import re
from pathlib import PurePath
from typing import Any, Iterable

from taskloom.core.layout import freeze_positions
from taskloom.core.model import FORMAT

__all__ = [
    "Ids",
    "slug",
    "name_from_file",
    "literal",
    "has_template_syntax",
    "iso_duration",
    "placeholder_task",
    "short_json",
    "finish",
    "pointer_join",
    "for_task",
    "as_dict",
    "as_list",
]

_SLUG_BAD = re.compile(r"[^a-z0-9_-]+")
_ID_BAD = re.compile(r"\W+", re.ASCII)
#: names a task id must not be: attribute access (tasks.if) would not parse in a template
_RESERVED = frozenset(keyword.kwlist) | {"true", "false", "none", "True", "False", "None"}


def slug(text: str, fallback: str = "imported") -> str:
    """A workflow name (``^[a-z0-9][a-z0-9_-]{0,63}$``) made from ``text``: ``"My Flow!"`` -> ``"my-flow"``."""
    value = _SLUG_BAD.sub("-", text.strip().lower()).strip("-_")[:64].strip("-_")
    return value or fallback


def name_from_file(filename: str, fallback: str = "imported") -> str:
    """The workflow name a file suggests: its stem, or its folder for Logic Apps' ``workflow.json``."""
    if not filename:
        return fallback
    path = PurePath(filename)
    stem = path.stem
    if stem.lower() == "workflow" and path.parent.name:
        stem = path.parent.name
    return slug(stem, fallback)


class Ids:
    """Hands out unique identifiers (task, trigger or param ids) made from source names."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken: set[str] = set(taken)

    def take(self, raw: str, fallback: str = "task") -> str:
        """A fresh identifier close to ``raw``: ``"Get rows"`` -> ``Get_rows``, ``if`` -> ``if_``, ``1st`` -> ``_1st``."""
        base = _ID_BAD.sub("_", raw).strip("_") or fallback
        if base[0].isdigit():
            base = "_" + base
        if base in _RESERVED:
            base += "_"
        base = base[:60]
        candidate, n = base, 2
        while candidate in self.taken:
            candidate = f"{base}_{n}"
            n += 1
        self.taken.add(candidate)
        return candidate


_TEMPLATE_SYNTAX = ("{{", "{%", "{#")


def has_template_syntax(text: str) -> bool:
    """Whether ``text`` would be read as a template (or a template comment)."""
    return any(mark in text for mark in _TEMPLATE_SYNTAX)


def literal(text: str) -> str:
    """``text`` so that rendering gives it back unchanged: template syntax is wrapped in ``{% raw %}``."""
    if not has_template_syntax(text):
        return text
    # "{% endraw %}" inside the text would end the raw block early: emit that marker from a string
    parts = text.split("{% endraw %}")
    return "{{ '{% endraw %}' }}".join(f"{{% raw %}}{p}{{% endraw %}}" if p else "" for p in parts)


_DURATION = re.compile(
    r"^P(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?(?:(?P<weeks>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_SECONDS = {"years": 365 * 86400, "months": 30 * 86400, "weeks": 7 * 86400, "days": 86400,
            "hours": 3600, "minutes": 60, "seconds": 1}


def iso_duration(text: Any) -> int | float | None:
    """Seconds in an ISO 8601 duration (``PT7S``, ``PT1H30M``, ``P1D``); None when it is not one.

    Months count 30 days and years 365 (only for durations that say so).
    """
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text.strip())
    if not match or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
        return None
    total = sum(float(v) * _SECONDS[k] for k, v in match.groupdict().items() if v)
    return int(total) if total.is_integer() else total


def placeholder_task(
    task_id: str, *, source: str, what: str, reason: str, todo: str, original: Any, title: str | None = None
) -> dict[str, Any]:
    """A ``placeholder`` task that keeps ``original`` and says what to replace it with."""
    task: dict[str, Any] = {"id": task_id, "type": "placeholder"}
    if title:
        task["title"] = title
    task["params"] = {"source": source, "what": what, "reason": reason, "todo": todo, "original": original}
    return task


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else ``{}``: converters read hand-edited files defensively."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else ``[]``."""
    return value if isinstance(value, list) else []


def for_task(todo: str, task_id: str) -> str:
    """``"replace it with X"`` -> ``"replace task 'T' with X"``: a placeholder's hint naming its task."""
    if todo.startswith("replace it with"):
        return f"replace task '{task_id}' with" + todo.removeprefix("replace it with")
    return f"task '{task_id}': {todo}"


def short_json(value: Any, limit: int = 80) -> str:
    """``value`` as compact JSON for a message, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":")) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pointer_join(base: str, *parts: Any) -> str:
    """``pointer_join("/definition", "actions", "a/b") == "/definition/actions/a~1b"``."""
    return base + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def finish(
    name: str,
    *,
    title: str = "",
    description: str = "",
    params: dict[str, Any] | None = None,
    triggers: list[dict[str, Any]] | None = None,
    tasks: list[dict[str, Any]],
    edges: list[dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``taskloom/v1`` document with empty sections left out and every task given a position.

    Tasks that came with a position (n8n's) keep it; the others are laid out
    left to right (all of them when none had one).
    """
    doc: dict[str, Any] = {"format": FORMAT, "name": name}
    if title:
        doc["title"] = title
    if description:
        doc["description"] = description
    if params:
        doc["params"] = params
    if triggers:
        doc["triggers"] = triggers
    doc["tasks"] = tasks
    if edges:
        doc["edges"] = edges
    if settings:
        doc["settings"] = settings
    return freeze_positions(doc)
