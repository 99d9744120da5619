"""Built-in task types of the core: shell, python, condition, noop."""

from __future__ import annotations

from taskloom.core.registry import STRING_MAP, TaskType

__all__ = ["TYPES", "SHELL", "PYTHON", "CONDITION", "NOOP"]


SHELL = TaskType(
    name="shell",
    title="Shell command",
    description="Run a command with /bin/sh in its own process group; non-zero exit fails the task.",
    category="Run code",
    icon="terminal",
    entry="taskloom.runtime.tasks.shell:run",
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
                **STRING_MAP,
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
    entry="taskloom.runtime.tasks.python:run",
    params_schema={
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["callable"]}, {"required": ["code"]}],
        "properties": {
            "callable": {
                "type": "string",
                "pattern": r"^(?:[A-Za-z_][\w.]*|[^:]+\.py):[A-Za-z_]\w*$",
                "title": "Callable",
                "description": "module:function importable from the working directory, or path/to/file.py:function"
                " relative to it.",
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
            "cwd": {
                "type": "string",
                "title": "Working directory",
                "description": "Defaults to the directory the runner was started in; first on sys.path.",
            },
            "env": {
                **STRING_MAP,
                "title": "Environment",
                "description": "Variables added to the minimal environment (PATH, HOME, LANG, TZ).",
            },
        },
    },
)

CONDITION = TaskType(
    name="condition",
    title="Condition",
    description="Evaluate an expression; its true/false output chooses the 'true' or 'false' edges.",
    category="Control flow",
    icon="git-branch",
    entry="taskloom.runtime.tasks.inline:condition",
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
    entry="taskloom.runtime.tasks.inline:noop",
    inline=True,
    params_schema={"type": "object", "additionalProperties": False, "properties": {}},
)

TYPES: tuple[TaskType, ...] = (SHELL, PYTHON, CONDITION, NOOP)
