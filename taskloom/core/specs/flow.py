"""Built-in task types for shaping data and control flow: transform, delay, subworkflow, foreach."""

from __future__ import annotations

from taskloom.core.registry import TaskType

__all__ = ["TYPES", "TRANSFORM", "DELAY", "SUBWORKFLOW", "FOREACH"]

TRANSFORM = TaskType(
    name="transform",
    title="Transform",
    description="Build a JSON value from templates (like Logic Apps' Compose), optionally filtered with JMESPath.",
    category="Data",
    icon="shuffle",
    entry="taskloom.runtime.tasks.flow:transform",
    inline=True,
    params_schema={
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {
            "value": {
                "title": "Value",
                "description": "Any JSON; strings may hold templates such as {{ tasks.fetch.output.json }}.",
            },
            "query": {
                "type": "string",
                "minLength": 1,
                "title": "JMESPath query",
                "description": "Optional filter applied to the value, e.g. items[?score > `0.9`].name",
            },
        },
    },
)

DELAY = TaskType(
    name="delay",
    title="Delay",
    description="Wait a number of seconds or until an instant, without holding a slot; the wait survives restarts.",
    category="Control flow",
    icon="clock",
    entry="taskloom.runtime.tasks.flow:delay",
    inline=True,
    start_at="taskloom.runtime.tasks.flow:delay_start_at",
    params_schema={
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["seconds"]}, {"required": ["until"]}],
        "properties": {
            "seconds": {
                "type": ["number", "string"],
                "minimum": 0,
                "title": "Seconds",
                "description": "How long to wait (a number, or a template giving one).",
            },
            "until": {
                "type": "string",
                "minLength": 1,
                "title": "Until",
                "description": "An ISO 8601 instant, e.g. 2026-12-01T08:00:00+01:00 (UTC when no offset is given).",
            },
        },
    },
)

SUBWORKFLOW = TaskType(
    name="subworkflow",
    title="Sub-workflow",
    description="Run another stored workflow with params; its tasks' outputs are the output, its failure fails the task.",
    category="Control flow",
    icon="layers",
    entry="taskloom.runtime.tasks.flow:subworkflow",
    params_schema={
        "type": "object",
        "required": ["workflow"],
        "additionalProperties": False,
        "properties": {
            "workflow": {
                "type": "string",
                "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
                "title": "Workflow",
                "description": "Name of a stored workflow.",
            },
            "params": {"type": "object", "title": "Params", "description": "Params of the sub-workflow's run."},
        },
    },
)

FOREACH = TaskType(
    name="foreach",
    title="For each",
    description="Run an inner task once per item of a list, a few at a time; the output is the list of results.",
    category="Control flow",
    icon="repeat",
    entry="taskloom.runtime.tasks.flow:foreach",
    item_params=("task",),
    nested_task_param="task",
    params_schema={
        "type": "object",
        "required": ["items", "task"],
        "additionalProperties": False,
        "properties": {
            "items": {
                "type": ["array", "string"],
                "title": "Items",
                "description": "A list, or a template giving one, e.g. {{ tasks.list_files.output.files }}.",
            },
            "task": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "title": "Inner task",
                "description": "The task to run per item: its type and params; templates may use item and index.",
                "properties": {
                    "type": {"type": "string", "title": "Type"},
                    "params": {"type": "object", "title": "Params"},
                },
            },
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "maximum": 64,
                "default": 4,
                "title": "Concurrency",
                "description": "How many items run at the same time.",
            },
            "continue_on_error": {
                "type": "boolean",
                "default": False,
                "title": "Continue on error",
                "description": "When false (the default), one failed item fails the task.",
            },
        },
    },
)

TYPES: tuple[TaskType, ...] = (TRANSFORM, DELAY, SUBWORKFLOW, FOREACH)
