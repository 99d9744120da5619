"""What runs: the runner, child processes, executors, task implementations and the scheduler loop.

:mod:`taskloom.runtime.execution` is the one composition root: it builds a runner from
a store, an executor, services and configuration. Killing process groups and sending
signals belong here alone.

May import: core and storage. Never api or ui.
"""
