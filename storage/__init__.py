"""Storage: SQLite through sqlite-utils. Workflows and versions, runs, attempts, logs.

The engine never imports this package; storage implements the engine's
:class:`engine.journal.Journal` protocol and the UI and CLI wire them together.
"""

from .db import StorageError, connect, sqlite_version_note, write_txn
from .home import database_path, resolve_home
from .journal import SqliteJournal
from .runs import create_run, get_run, iter_logs, list_runs
from .workflows import NotFound, get_document, get_workflow, list_versions, list_workflows, save_version

__all__ = [
    "StorageError", "NotFound", "connect", "write_txn", "sqlite_version_note", "resolve_home",
    "database_path", "SqliteJournal", "create_run", "get_run", "iter_logs", "list_runs",
    "get_document", "get_workflow", "list_versions", "list_workflows", "save_version",
]
