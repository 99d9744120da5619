"""Task types from other packages, through the ``taskloom.tasks`` entry-point group.

A plugin package declares, in its ``pyproject.toml``::

    [project.entry-points."taskloom.tasks"]
    my_type = "my_package.taskloom:TASK_TYPE"

The object named is an :class:`taskloom.core.registry.TaskType` (or a list of
them), built exactly like the built-ins: a params JSON Schema, palette
metadata, and ``entry``, the ``"module:function"`` that runs an attempt
(``function(ctx: AttemptContext) -> AttemptResult``). A plugin that fails to
load, or that reuses a taken name, is reported and skipped, never fatal.
"""

from __future__ import annotations

import functools
import warnings
from importlib.metadata import entry_points

from taskloom.core.registry import Registry, TaskType, default_registry

__all__ = ["ENTRY_POINT_GROUP", "load_registry", "PluginWarning"]

ENTRY_POINT_GROUP = "taskloom.tasks"


class PluginWarning(UserWarning):
    """A plugin that could not be loaded."""


@functools.cache
def load_registry() -> Registry:
    """The built-in task types plus every installed plugin's, discovered once per process."""
    registry = default_registry()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            types = loaded if isinstance(loaded, (list, tuple)) else [loaded]
            for task_type in types:
                if not isinstance(task_type, TaskType):
                    raise TypeError(f"{ep.value} is a {type(task_type).__name__}, not a TaskType")
                registry.register(task_type)
        except Exception as exc:  # a broken plugin must not stop the product
            warnings.warn(f"task plugin {ep.name!r} ({ep.value}) was skipped: {exc}", PluginWarning, stacklevel=2)
    return registry
