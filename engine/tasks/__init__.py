"""Implementations of the built-in task types (they do I/O; the declarations live in ``engine.registry``)."""
