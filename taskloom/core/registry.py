"""The task-type registry: what each task type is called, what it takes, where it runs.

A :class:`TaskType` is pure data: its parameter JSON Schema (used by
validation and, later, by the editor's forms), palette metadata, and
``entry``, the ``"module:function"`` that executes it. The entry is imported
only by the runner, so this module, like the rest of the core, never touches
a process or a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

__all__ = ["TaskType", "Registry", "default_registry", "STRING_MAP"]


@dataclass(frozen=True)
class TaskType:
    """Declaration of one task type."""

    name: str
    title: str
    description: str
    category: str
    icon: str
    params_schema: Mapping[str, Any]
    entry: str
    #: in-process types run on the runner's thread; the others get a child process
    inline: bool = False
    #: parameters that are expressions, not templates to render
    expression_params: tuple[str, ...] = field(default_factory=tuple)
    #: parameters rendered later, once per item, where templates may also use ``item`` and ``index``
    item_params: tuple[str, ...] = field(default_factory=tuple)
    #: a parameter holding a nested task definition ``{"type", "params"}`` that validation checks too
    nested_task_param: str | None = None
    #: ``"module:function"`` giving the instant the task may start, ``f(params, now) -> float``;
    #: the task waits until then without holding a slot (``delay``), and the wait survives restarts
    start_at: str | None = None
    #: a stand-in for something an importer could not convert: validation always reports it (with what
    #: to replace it by), its params are never rendered, and the designer's palette does not offer it
    placeholder: bool = False


class Registry:
    """A mapping of type name to :class:`TaskType`, extensible by plugins."""

    def __init__(self, types: tuple[TaskType, ...] = ()) -> None:
        self._types: dict[str, TaskType] = {}
        for t in types:
            self.register(t)

    def register(self, task_type: TaskType) -> None:
        """Add a type; a name can be registered once."""
        if task_type.name in self._types:
            raise ValueError(f"task type {task_type.name!r} is already registered")
        self._types[task_type.name] = task_type

    def get(self, name: str) -> TaskType | None:
        return self._types.get(name)

    def __getitem__(self, name: str) -> TaskType:
        return self._types[name]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[TaskType]:
        return iter(self._types.values())

    def names(self) -> list[str]:
        return sorted(self._types)


def default_registry() -> Registry:
    """A fresh registry holding the built-in types (plugins: :func:`taskloom.storage.plugins.load_registry`)."""
    from taskloom.core.specs import BUILTIN_TYPES

    return Registry(BUILTIN_TYPES)


STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
