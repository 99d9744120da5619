"""Schema migrations, applied in order and recorded by sqlite-utils' ``Migrations``.

Add a new function at the end for every schema change; never edit one that
has shipped. All of them run inside one ``BEGIN IMMEDIATE`` so two processes
opening a fresh database at once cannot both apply them.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS = Migrations("taskloom")


@MIGRATIONS()
def m001_core(db: sqlite_utils.Database) -> None:
    _script(
        db,
        """
        CREATE TABLE documents (
            sha256 TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            created REAL NOT NULL
        );
        CREATE TABLE workflows (
            name TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            current_version INTEGER NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE workflow_versions (
            workflow TEXT NOT NULL REFERENCES workflows(name),
            version INTEGER NOT NULL,
            document TEXT NOT NULL REFERENCES documents(sha256),
            message TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            PRIMARY KEY (workflow, version)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workflow TEXT NOT NULL,
            version INTEGER,
            document TEXT NOT NULL REFERENCES documents(sha256),
            status TEXT NOT NULL,
            trigger TEXT NOT NULL DEFAULT 'manual',
            trigger_id TEXT,
            trigger_payload TEXT,
            params TEXT NOT NULL DEFAULT '{}',
            logical_time REAL NOT NULL,
            created REAL NOT NULL,
            started REAL,
            ended REAL,
            error TEXT,
            parent_run_id INTEGER REFERENCES runs(id),
            source TEXT NOT NULL DEFAULT 'store'
        );
        CREATE INDEX runs_workflow ON runs(workflow, id);
        CREATE INDEX runs_status ON runs(status, id);
        CREATE TABLE task_states (
            run_id INTEGER NOT NULL REFERENCES runs(id),
            task_id TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            skip_reason TEXT,
            output TEXT,
            error TEXT,
            updated REAL NOT NULL,
            PRIMARY KEY (run_id, task_id)
        );
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            task_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            status TEXT NOT NULL,
            started REAL NOT NULL,
            ended REAL,
            pid INTEGER,
            exit_code INTEGER,
            signal INTEGER,
            error TEXT,
            output TEXT,
            params TEXT,
            UNIQUE (run_id, task_id, number)
        );
        CREATE TABLE logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL,
            task_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            ts REAL NOT NULL,
            stream TEXT NOT NULL,
            line TEXT NOT NULL
        );
        CREATE INDEX logs_run ON logs(run_id, task_id, attempt, id);
        """
    )


@MIGRATIONS()
def m002_recovery_and_secrets(db: sqlite_utils.Database) -> None:
    """Heartbeats of runner processes, run ownership, cancel requests, reused tasks, secrets."""
    _script(
        db,
        """
        CREATE TABLE runners (
            id TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            pid_start TEXT,
            host TEXT NOT NULL,
            started REAL NOT NULL,
            heartbeat REAL NOT NULL
        );
        ALTER TABLE runs ADD COLUMN owner TEXT;
        ALTER TABLE runs ADD COLUMN cancel_requested REAL;
        CREATE INDEX runs_owner ON runs(owner) WHERE owner IS NOT NULL;
        ALTER TABLE task_states ADD COLUMN reused_from INTEGER;
        CREATE TABLE secrets (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        )
        """,
    )


@MIGRATIONS()
def m003_config_and_task_memory(db: sqlite_utils.Database) -> None:
    """Configuration values, and what a task of a workflow keeps between runs (watermarks)."""
    _script(
        db,
        """
        CREATE TABLE config (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE task_memory (
            workflow TEXT NOT NULL,
            task_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (workflow, task_id, key)
        )
        """,
    )


@MIGRATIONS()
def m004_scheduler(db: sqlite_utils.Database) -> None:
    """Firings keyed by (workflow, trigger, instant), the scheduler lease, trigger cursors, webhook tokens."""
    _script(
        db,
        """
        CREATE TABLE firings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workflow TEXT NOT NULL,
            trigger_id TEXT NOT NULL,
            instant REAL NOT NULL,
            status TEXT NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            reason TEXT,
            payload TEXT,
            claimed_by TEXT NOT NULL,
            created REAL NOT NULL,
            UNIQUE (workflow, trigger_id, instant)
        );
        CREATE INDEX firings_status ON firings(status, workflow);
        CREATE TABLE scheduler_lease (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            token INTEGER NOT NULL,
            expires REAL NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            version TEXT NOT NULL,
            acquired REAL NOT NULL,
            renewed REAL NOT NULL
        );
        CREATE TABLE trigger_state (
            workflow TEXT NOT NULL,
            trigger_id TEXT NOT NULL,
            last_instant REAL,
            cursor TEXT,
            next_poll REAL,
            updated REAL NOT NULL,
            PRIMARY KEY (workflow, trigger_id)
        );
        CREATE TABLE webhook_tokens (
            workflow TEXT NOT NULL,
            trigger_id TEXT NOT NULL,
            token TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (workflow, trigger_id)
        );
        CREATE INDEX runs_active ON runs(workflow, status) WHERE status IN ('queued', 'running')
        """,
    )


@MIGRATIONS()
def m005_log_pages(db: sqlite_utils.Database) -> None:
    """Log pages of a task across attempts, in order, without sorting all its lines."""
    _script(db, "CREATE INDEX logs_task ON logs(run_id, task_id, id)")


@MIGRATIONS()
def m006_origin_and_folder(db: sqlite_utils.Database) -> None:
    """Where each version came from, and the folder its relative paths resolve against.

    ``origin`` is ``KIND:DETAIL`` (``file:/abs/x.json``, ``crontab:/abs/crontab``,
    ``designer``, ``api``); ``folder`` is an absolute path or NULL. A run keeps
    the folder of the version (or file) it ran, so a later import elsewhere does
    not move the paths of a run being resumed.
    """
    _script(
        db,
        """
        ALTER TABLE workflow_versions ADD COLUMN origin TEXT NOT NULL DEFAULT '';
        ALTER TABLE workflow_versions ADD COLUMN folder TEXT;
        ALTER TABLE runs ADD COLUMN folder TEXT
        """,
    )


@MIGRATIONS()
def m007_scheduler_api(db: sqlite_utils.Database) -> None:
    """Where each scheduler process serves its REST API, so ``taskloom webhooks`` prints the real address.

    One row per scheduler process (host, pid), written when it starts, with
    ``url`` NULL when it serves no API; the lease says which one is active.
    """
    _script(
        db,
        """
        CREATE TABLE scheduler_api (
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            url TEXT,
            started REAL NOT NULL,
            PRIMARY KEY (host, pid)
        )
        """,
    )


def _script(db: sqlite_utils.Database, sql: str) -> None:
    # Not executescript(): it would COMMIT the surrounding BEGIN IMMEDIATE.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def migrate(db: sqlite_utils.Database) -> None:
    """Apply pending migrations under the write lock."""
    if db["_sqlite_migrations"].exists() and not MIGRATIONS.pending(db):
        return
    from taskloom.storage.db import write_txn

    with write_txn(db):
        MIGRATIONS.apply(db)
