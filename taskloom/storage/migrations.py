"""Schema changes, written once for both backends and applied in order.

:data:`SCHEMA` lists every change with its SQL in SQLite's words; the few
differences of PostgreSQL's (identity columns, ``DOUBLE PRECISION``,
``BYTEA``) are made by :func:`taskloom.storage.dialect.postgres_ddl`, so the
two schemas cannot drift apart (``tests/test_schema_dialects.py`` compares
them on a real server of each).

On SQLite the changes are recorded by sqlite-utils' ``Migrations`` under
their names; all pending ones run inside one ``BEGIN IMMEDIATE`` so two
processes opening a fresh database at once cannot both apply them. Add a
change at the end for every schema change; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils
from sqlite_utils.migrations import Migrations

__all__ = ["SCHEMA", "SchemaChange", "MIGRATIONS", "migrate", "statements", "postgres_changes"]


@dataclass(frozen=True)
class SchemaChange:
    """One shipped change of the schema: its recorded name, why it was made, its DDL (SQLite's words)."""

    name: str
    why: str
    sql: str
    #: statements only a SQLite file needs, to fill the change's new columns in rows written before it (in
    #: SQLite's words; no PostgreSQL store held rows before the change that needs one, m008)
    sqlite_backfill: str = ""


SCHEMA: tuple[SchemaChange, ...] = (
    SchemaChange(
        "m001_core",
        "Documents by hash, workflows and their versions, runs, task states, attempts and log lines.",
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
        
        """,
    ),
    SchemaChange(
        "m002_recovery_and_secrets",
        'Heartbeats of runner processes, run ownership, cancel requests, reused tasks, secrets.',
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
    ),
    SchemaChange(
        "m003_config_and_task_memory",
        'Configuration values, and what a task of a workflow keeps between runs (watermarks).',
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
    ),
    SchemaChange(
        "m004_scheduler",
        'Firings keyed by (workflow, trigger, instant), the scheduler lease, trigger cursors, webhook tokens.',
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
    ),
    SchemaChange(
        "m005_log_pages",
        'Log pages of a task across attempts, in order, without sorting all its lines.',
        """
CREATE INDEX logs_task ON logs(run_id, task_id, id)
        """,
    ),
    SchemaChange(
        "m006_origin_and_folder",
        'Where each version came from, and the folder its relative paths resolve against.  ``origin`` is ``KIND:DETAIL`` (``file:/abs/x.json``, ``crontab:/abs/crontab``, ``designer``, ``api``); ``folder`` is an absolute path or NULL. A run keeps the folder of the version (or file) it ran, so a later import elsewhere does not move the paths of a run being resumed.',
        """
        ALTER TABLE workflow_versions ADD COLUMN origin TEXT NOT NULL DEFAULT '';
        ALTER TABLE workflow_versions ADD COLUMN folder TEXT;
        ALTER TABLE runs ADD COLUMN folder TEXT
        
        """,
    ),
    SchemaChange(
        "m007_scheduler_api",
        'Where each scheduler process serves its REST API, so ``taskloom webhooks`` prints the real address.  One row per scheduler process (host, pid), written when it starts, with ``url`` NULL when it serves no API; the lease says which one is active.',
        """
        CREATE TABLE scheduler_api (
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            url TEXT,
            started REAL NOT NULL,
            PRIMARY KEY (host, pid)
        )
        
        """,
    ),
    SchemaChange(
        "m008_task_order",
        "A task's place in its workflow, so that a run's tasks are listed in the workflow's order on PostgreSQL"
        " too, where no rowid remembers the order rows were written in.",
        """
        ALTER TABLE task_states ADD COLUMN position INTEGER
        """,
        sqlite_backfill="UPDATE task_states SET position = rowid WHERE position IS NULL",
    ),
    SchemaChange(
        "m009_output_blobs",
        "Large outputs inside the database, for a PostgreSQL store whose hosts share no folder (a SQLite home"
        " keeps writing them to files under outputs/).",
        """
        CREATE TABLE output_blobs (
            path TEXT PRIMARY KEY,
            bytes INTEGER NOT NULL,
            data TEXT NOT NULL
        )
        """,
    ),
    SchemaChange(
        "m010_accounts",
        "People: accounts with a role (and an argon2 hash of their password), their API tokens (SHA-256 of each),"
        " recent failed logins for rate limiting, and the append-only audit trail of who did what. A workflow"
        " records its owner and a run who started it.",
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            password_hash TEXT,
            email TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_name TEXT NOT NULL REFERENCES users(name),
            label TEXT NOT NULL DEFAULT '',
            digest TEXT NOT NULL UNIQUE,
            created REAL NOT NULL,
            expires REAL,
            last_used REAL,
            revoked REAL
        );
        CREATE INDEX api_tokens_user ON api_tokens(user_name);
        CREATE TABLE login_failures (
            user_name TEXT NOT NULL,
            at REAL NOT NULL,
            source TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX login_failures_user ON login_failures(user_name, at);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            via TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            workflow TEXT,
            version INTEGER,
            result TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_at ON audit(at);
        CREATE INDEX audit_actor ON audit(actor, at);
        CREATE INDEX audit_workflow ON audit(workflow, at) WHERE workflow IS NOT NULL;
        ALTER TABLE workflows ADD COLUMN owner TEXT;
        ALTER TABLE runs ADD COLUMN started_by TEXT
        """,
    ),
    SchemaChange(
        "m011_alerts",
        "The journal of alerts (failure, recovery, late) a workflow's alerts section sent, one row per alert and"
        " channel. ``dedupe`` is ``run:ID:KIND``, or ``instant:WORKFLOW:TRIGGER:INSTANT:KIND`` for a late"
        " instant without a run; unique with the channel, so two schedulers, hosts or re-checks send once.",
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            dedupe TEXT NOT NULL,
            workflow TEXT NOT NULL,
            run_id INTEGER,
            trigger_id TEXT,
            instant REAL,
            kind TEXT NOT NULL,
            channel TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            created REAL NOT NULL,
            sent REAL,
            UNIQUE (dedupe, channel)
        );
        CREATE INDEX alerts_workflow ON alerts(workflow, created)
        """,
    ),
    SchemaChange(
        "m012_run_log_order",
        "A run's log lines in id order, so a page of the whole run (no task chosen, or only a search or an"
        " attempt) reads from the cursor on instead of sorting every line of the run: 284 ms for the first page"
        " of a 1,000,000-line run before, under 1 ms after. Both older indexes stay: logs_task (run_id, task_id, id)"
        " serves a task's pages in order, which this one cannot without reading the other tasks' lines, and"
        " logs_run (run_id, task_id, attempt, id) an attempt's, which logs_task could only by reading the task's"
        " other attempts. Building it reads the table once under the write lock, which holds log writes back"
        " meanwhile (about 0.4 s per million lines on SQLite); once recorded it is never built again. IF NOT"
        " EXISTS: on a big PostgreSQL store an operator may build it beforehand without blocking writes (CREATE"
        " INDEX CONCURRENTLY logs_run_order ON logs(run_id, id)), and the change then only records itself.",
        """
        CREATE INDEX IF NOT EXISTS logs_run_order ON logs(run_id, id)
        """,
    ),
)


def statements(sql: str) -> list[str]:
    """The statements of a change's DDL, one by one (none of them holds a ``;`` in a literal)."""
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def postgres_changes() -> list[tuple[str, list[str]]]:
    """Every change as ``(name, its statements in PostgreSQL's words)``, in order: the same schema, the
    same names, for a store on PostgreSQL to apply and record."""
    from taskloom.storage.dialect import postgres_ddl

    return [(change.name, [postgres_ddl(s) for s in statements(change.sql)]) for change in SCHEMA]


MIGRATIONS = Migrations("taskloom")


def _register(change: SchemaChange) -> None:
    @MIGRATIONS(name=change.name)
    def apply(db: sqlite_utils.Database) -> None:
        # Not executescript(): it would COMMIT the surrounding BEGIN IMMEDIATE.
        for statement in statements(change.sql) + statements(change.sqlite_backfill):
            db.execute(statement)


for _change in SCHEMA:
    _register(_change)


def migrate(db: sqlite_utils.Database) -> None:
    """Apply pending migrations under the write lock."""
    if db["_sqlite_migrations"].exists() and not MIGRATIONS.pending(db):
        return
    from taskloom.storage.db import write_txn

    with write_txn(db):
        MIGRATIONS.apply(db)
