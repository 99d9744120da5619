"""Built-in task types: git.

``git`` clones a repository into a working copy, or brings an existing
working copy up to date, and reports the commit it now holds and whether it
changed since the task's last successful run. The working copy must lie
inside the folders file tasks may use; the repository is only read. Its
implementation is :mod:`taskloom.runtime.tasks.git`.
"""

from __future__ import annotations

from taskloom.core.registry import TaskType

__all__ = ["TYPES", "GIT"]

_ONE_REF = "Give either 'branch' or 'commit', not both; without either the repository's default branch is used."

GIT = TaskType(
    name="git",
    title="Git checkout",
    description="Clone a repository or update a working copy to a branch or commit; the output says "
    "which commit it is and whether it changed since the last run.",
    category="Code",
    icon="git-commit",
    entry="taskloom.runtime.tasks.git:run",
    params_schema={
        "type": "object",
        "required": ["repo", "path"],
        "additionalProperties": False,
        "properties": {
            "repo": {
                "type": "string",
                "minLength": 1,
                "title": "Repository",
                "description": "URL (https://..., ssh://..., git@host:owner/name.git) or local path of the "
                "repository to clone; it is only read, so it may be anywhere.",
            },
            "path": {
                "type": "string",
                "minLength": 1,
                "title": "Working copy",
                "description": "Folder to clone into or update, relative to the working directory; it must lie "
                "inside the allowed folders (file_roots). Local changes in it are discarded.",
            },
            "branch": {
                "type": "string",
                "title": "Branch",
                "description": "Branch to check out. " + _ONE_REF,
                "default": "",
            },
            "commit": {
                "type": "string",
                "title": "Commit",
                "description": "Commit sha (or tag) to check out, detached. " + _ONE_REF,
                "default": "",
            },
        },
        "allOf": [
            {
                # a literal branch (a template may render empty; the task checks that at run time)
                "if": {"required": ["branch"], "properties": {"branch": {"pattern": r"^[^{]+$"}}},
                "then": {"properties": {"commit": {"const": "", "description": _ONE_REF}}},
            }
        ],
    },
)

TYPES: tuple[TaskType, ...] = (GIT,)
