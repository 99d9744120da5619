"""Declarations of the built-in task types, one module per area (pure data, no I/O).

Each module exports ``TYPES``; their implementations live in ``taskloom.runtime.tasks``.
"""

from __future__ import annotations

from taskloom.core.registry import TaskType
from taskloom.core.specs import core, files, flow, git, http, notify, placeholder, sql

__all__ = ["BUILTIN_TYPES"]

BUILTIN_TYPES: tuple[TaskType, ...] = (
    *core.TYPES, *http.TYPES, *sql.TYPES, *files.TYPES, *notify.TYPES, *flow.TYPES, *git.TYPES,
    *placeholder.TYPES,
)
