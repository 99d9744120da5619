"""The store: SQLite through sqlite-utils. Workflows and versions, runs, attempts, logs, secrets,
configuration and scheduler state; the only place SQL is written.

It implements the core's :class:`taskloom.core.journal.Journal` protocol
(:mod:`taskloom.storage.journal`); :class:`taskloom.storage.store.Workspace` is the
store's face to the CLI, the API and the web pages. It records requests (a queued
run, a cancel) and never runs a task or sends a signal.

May import: core. Never runtime, api or ui.
"""

from taskloom.storage.db import StorageError, connect, sqlite_version_note, write_txn
from taskloom.storage.home import database_path, resolve_home
from taskloom.storage.journal import SqliteJournal
from taskloom.storage.runs import create_run, get_run, iter_logs, list_runs
from taskloom.storage.workflows import NotFound, get_document, get_workflow, list_versions, list_workflows, save_version

__all__ = [
    "StorageError", "NotFound", "connect", "write_txn", "sqlite_version_note", "resolve_home",
    "database_path", "SqliteJournal", "create_run", "get_run", "iter_logs", "list_runs",
    "get_document", "get_workflow", "list_versions", "list_workflows", "save_version",
]
