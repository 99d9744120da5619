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

__all__ = ["TaskType", "Registry", "default_registry", "BUILTIN_TYPES"]


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


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

SHELL = TaskType(
    name="shell",
    title="Shell command",
    description="Run a command with /bin/sh in its own process group; non-zero exit fails the task.",
    category="Run code",
    icon="terminal",
    entry="engine.tasks.shell:run",
    params_schema={
        "type": "object",
        "required": ["command"],
        "additionalProperties": False,
        "properties": {
            "command": {
                "type": "string",
                "minLength": 1,
                "title": "Command",
                "description": "Shell command line, run with /bin/sh -c.",
                "format": "code",
            },
            "cwd": {
                "type": "string",
                "title": "Working directory",
                "description": "Defaults to the directory the runner was started in.",
            },
            "env": {
                **_STRING_MAP,
                "title": "Environment",
                "description": "Variables added to the minimal environment (PATH, HOME, LANG, TZ).",
            },
        },
    },
)

PYTHON = TaskType(
    name="python",
    title="Python function",
    description="Call a Python function in a child process; its JSON return value is the output.",
    category="Run code",
    icon="python",
    entry="engine.tasks.python:run",
    params_schema={
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["callable"]}, {"required": ["code"]}],
        "properties": {
            "callable": {
                "type": "string",
                "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                "title": "Callable",
                "description": "module:function, importable from the working directory.",
            },
            "code": {
                "type": "string",
                "minLength": 1,
                "title": "Code",
                "description": "Inline Python source that defines main(**args).",
                "format": "code",
            },
            "args": {
                "type": "object",
                "title": "Arguments",
                "description": "Keyword arguments passed to the function.",
            },
            "cwd": {"type": "string", "title": "Working directory"},
            "env": {**_STRING_MAP, "title": "Environment"},
        },
    },
)

CONDITION = TaskType(
    name="condition",
    title="Condition",
    description="Evaluate an expression; its true/false output chooses the 'true' or 'false' edges.",
    category="Control flow",
    icon="git-branch",
    entry="engine.tasks.inline:condition",
    inline=True,
    expression_params=("expression",),
    params_schema={
        "type": "object",
        "required": ["expression"],
        "additionalProperties": False,
        "properties": {
            "expression": {
                "type": "string",
                "minLength": 1,
                "title": "Expression",
                "description": "A Jinja expression, e.g. tasks.score.output.max > params.threshold",
            }
        },
    },
)

NOOP = TaskType(
    name="noop",
    title="No-op",
    description="Do nothing; useful to join branches or as a placeholder.",
    category="Control flow",
    icon="circle",
    entry="engine.tasks.inline:noop",
    inline=True,
    params_schema={"type": "object", "additionalProperties": False, "properties": {}},
)

BUILTIN_TYPES: tuple[TaskType, ...] = (SHELL, PYTHON, CONDITION, NOOP)


def default_registry() -> Registry:
    """A fresh registry holding the built-in types."""
    return Registry(BUILTIN_TYPES)
