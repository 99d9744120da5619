"""Built-in task types: flow."""

from __future__ import annotations

from ..registry import TaskType

__all__ = ["TYPES"]

TYPES: tuple[TaskType, ...] = ()
