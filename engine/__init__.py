"""The engine: the workflow model and format, validation, planning, the runner and task types.

The pure core (everything here except ``runner``, ``process``, ``logbuffer``
and ``tasks``) does no I/O; ``tests/test_purity.py`` keeps it so.
"""
