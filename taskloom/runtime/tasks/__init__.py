"""Implementations of the built-in task types (they do I/O; the declarations live in ``taskloom.core.registry``)."""
