"""Taskloom: workflows for data and ML people who have outgrown cron.

One package whose folders are its layers; each arrow points inward, and
``tests/test_layers.py`` fails on any that does not (``docs/architecture.md``):

* :mod:`taskloom.core`: the model, the ``taskloom/v1`` format and its validation, planning,
  state transitions, retry and firing arithmetic, templates, importers. No I/O, no clock.
* :mod:`taskloom.storage`: the store (SQLite); the only place SQL is written. Imports core.
* :mod:`taskloom.runtime`: the runner, processes, executors, task types, the scheduler loop and
  the one composition root (:mod:`taskloom.runtime.execution`). Imports core and storage.
* :mod:`taskloom.api`: the REST API and webhooks. Imports core and storage.
* :mod:`taskloom.ui`: the command line (``ui.cli``, which may run workflows in the foreground
  through runtime) and the web app (``ui.web``: core and storage only).
"""
