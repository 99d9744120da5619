"""Built-in task types: files.

``file`` copies, moves, deletes or lists the files of a folder that match a
glob pattern, only inside the folders file tasks may use (the working
directory and the configured ``file_roots``). Its implementation is
:mod:`taskloom.runtime.tasks.files`; the parameter names are part of the public format.
"""

from __future__ import annotations

from taskloom.core.registry import TaskType

__all__ = ["TYPES", "FILE", "FILE_ACTIONS"]

#: What a ``file`` task can do with the matched files.
FILE_ACTIONS = ("copy", "move", "delete", "list")

_NEEDS_DESTINATION = ("copy", "move")
_DESTINATION_HELP = (
    "Folder the files are copied or moved into (needed for copy and move), relative to the working "
    "directory or absolute; subfolders matched by '**' are re-created below it."
)

FILE = TaskType(
    name="file",
    title="Files",
    description="Copy, move, delete or list the files of a folder that match a pattern, "
    "only inside the allowed folders; optionally only the files new since the last run.",
    category="Files",
    icon="folder",
    entry="taskloom.runtime.tasks.files:run",
    params_schema={
        "type": "object",
        "required": ["action", "source"],
        "additionalProperties": False,
        "properties": {
            "action": {
                "type": "string",
                "enum": list(FILE_ACTIONS),
                "title": "Action",
                "description": "copy, move or delete the matched files, or only list them.",
                "default": "copy",
            },
            "source": {
                "type": "string",
                "minLength": 1,
                "title": "Source folder",
                "description": "Folder whose files are matched, relative to the working directory or absolute; "
                "it must lie inside the allowed folders (file_roots).",
            },
            "pattern": {
                "type": "string",
                "minLength": 1,
                "title": "Pattern",
                "description": "Glob pattern relative to the source folder: '*.csv', or '**/*.csv' to include "
                "subfolders. Only files are acted on, never folders.",
                "default": "*",
            },
            "destination": {
                "type": "string",
                "minLength": 1,
                "title": "Destination folder",
                "description": _DESTINATION_HELP,
            },
            "overwrite": {
                "type": "boolean",
                "title": "Overwrite",
                "description": "Replace files that already exist in the destination; when off, an existing "
                "file fails the task before anything is copied or moved.",
                "default": False,
            },
            "only_new": {
                "type": "boolean",
                "title": "Only new files",
                "description": "Act only on files modified after the newest file a successful earlier run "
                "acted on (a watermark kept between runs, like a job bookmark).",
                "default": False,
            },
        },
        "allOf": [
            {
                "if": {"properties": {"action": {"enum": list(_NEEDS_DESTINATION)}}, "required": ["action"]},
                "then": {
                    "required": ["destination"],
                    "properties": {"destination": {"description": _DESTINATION_HELP}},
                },
            }
        ],
    },
)

TYPES: tuple[TaskType, ...] = (FILE,)
