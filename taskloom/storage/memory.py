"""Task memory: small JSON values a task of a workflow keeps from one run to the next (watermarks, cursors).

Keyed by (workflow, task id, key), so every run of the workflow sees what the
last one kept, whichever version it runs; deleting the workflow forgets it
(:func:`taskloom.storage.workflows.delete_workflow`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from taskloom.storage.db import write_txn

__all__ = ["recall", "remember"]


def recall(db: sqlite_utils.Database, workflow: str, task_id: str, key: str, default: Any = None) -> Any:
    """The value a task kept under ``key``, or ``default`` when it kept none."""
    row = db.execute(
        "SELECT value FROM task_memory WHERE workflow = ? AND task_id = ? AND key = ?",
        [workflow, task_id, key],
    ).fetchone()
    return default if row is None else json.loads(row[0])


def remember(db: sqlite_utils.Database, workflow: str, task_id: str, key: str, value: Any) -> None:
    """Keep ``value`` (anything JSON can hold) under ``key`` for the task's next runs, replacing what was there."""
    with write_txn(db):
        db.execute(
            "INSERT INTO task_memory (workflow, task_id, key, value, updated) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (workflow, task_id, key) DO UPDATE SET value = excluded.value,"
            " updated = excluded.updated",
            [workflow, task_id, key, json.dumps(value), time.time()],
        )
