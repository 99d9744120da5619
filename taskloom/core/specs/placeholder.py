"""Built-in task type ``placeholder``: what an importer could not convert, kept until someone replaces it.

``taskloom import --from logicapps|n8n|crontab`` turns each action, node or
trigger it has no mapping for (a managed connector, an unknown node type)
into a placeholder task. The task keeps the original JSON in ``original`` and
says in ``todo`` what to replace it with; it stays in the graph with its
edges, so the converted workflow keeps its shape. A document holding a
placeholder never validates (:mod:`taskloom.core.validation` reports each one with
its ``todo`` as the hint), so it can be edited in the designer or written to
a file, but never stored or run.
"""

from __future__ import annotations

from typing import Any

from taskloom.core.registry import TaskType

__all__ = ["TYPES", "PLACEHOLDER", "refuse"]

PLACEHOLDER = TaskType(
    name="placeholder",
    title="Placeholder",
    description="Something an import could not convert, with its original definition; replace it with a real task.",
    category="Imported",
    icon="alert-triangle",
    entry="taskloom.core.specs.placeholder:refuse",
    inline=True,
    placeholder=True,
    params_schema={
        "type": "object",
        "required": ["source", "what", "todo"],
        "additionalProperties": False,
        "properties": {
            "source": {
                "enum": ["logicapps", "n8n", "crontab"],
                "title": "Imported from",
                "description": "The format the workflow was converted from.",
            },
            "what": {
                "type": "string",
                "minLength": 1,
                "title": "What it was",
                "description": "The original step, e.g. \"Logic Apps action 'Send_an_email' (ApiConnection)\".",
            },
            "reason": {
                "type": "string",
                "title": "Why it was not converted",
                "description": "What Taskloom has no equivalent for.",
            },
            "todo": {
                "type": "string",
                "minLength": 1,
                "title": "What to do",
                "description": "What to replace it with, e.g. 'a notify task with channel email'.",
            },
            "original": {
                "title": "Original definition",
                "description": "The step's JSON as it was in the imported file, kept for reference.",
            },
        },
    },
)


def refuse(ctx: Any) -> Any:
    """Never reached: validation refuses every document with a placeholder, so none is stored or run."""
    raise RuntimeError("a placeholder task cannot run; replace it with a real task (see its params.todo)")


TYPES: tuple[TaskType, ...] = (PLACEHOLDER,)
