"""The scheduler's records: the lease, firings claimed once per (workflow, trigger, instant), trigger cursors.

Only the lease holder fires. The lease is a row with an expiry and a fencing
token that grows on every takeover; every firing claim is an INSERT that only
succeeds while the claimant still holds the token, and the UNIQUE key on
(workflow, trigger_id, instant) makes a second claim of the same instant a
no-op. Together they give at most one run per instant even when a stalled
scheduler wakes up after a standby took over.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from taskloom.storage.heartbeat import host_id, process_alive
from taskloom.storage.db import write_txn

__all__ = ["Lease", "acquire_lease", "renew_lease", "release_lease", "lease_info", "claim_firing",
           "TriggerState", "trigger_state", "save_trigger_state", "active_runs", "webhook_token",
           "ensure_webhook_tokens", "queued_firings", "set_firing", "list_firings", "wake_scheduler",
           "scheduler_running", "record_api_address", "api_address", "holds_lease", "settle_claimed_firing",
           "mark_firing_started", "claimed_firings", "requested_runs", "claim_requested_run", "crashed_runs"]

LEASE = "scheduler"


@dataclass(frozen=True)
class Lease:
    holder: str
    token: int
    expires: float


def acquire_lease(db: sqlite_utils.Database, holder: str, *, ttl: float, version: str, now: float | None = None) -> Lease | None:
    """Take the lease when it is free, expired or already ours; None when another live scheduler holds it."""
    now = time.time() if now is None else now
    with write_txn(db):
        row = db.execute("SELECT holder, token, expires FROM scheduler_lease WHERE name = ?", [LEASE]).fetchone()
        if row is None:
            token = 1
            db.execute(
                "INSERT INTO scheduler_lease (name, holder, token, expires, pid, host, version, acquired, renewed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [LEASE, holder, token, now + ttl, os.getpid(), host_id(), version, now, now],
            )
            return Lease(holder, token, now + ttl)
        current, token, expires = row
        if current != holder and expires > now:
            return None
        token = token if current == holder else token + 1
        db.execute(
            "UPDATE scheduler_lease SET holder = ?, token = ?, expires = ?, pid = ?, host = ?, version = ?,"
            " acquired = CASE WHEN holder = ? THEN acquired ELSE ? END, renewed = ? WHERE name = ?",
            [holder, token, now + ttl, os.getpid(), host_id(), version, holder, now, now, LEASE],
        )
        return Lease(holder, token, now + ttl)


def renew_lease(db: sqlite_utils.Database, lease: Lease, *, ttl: float, now: float | None = None) -> Lease | None:
    """Extend our lease; None when it was taken over (then we must stop firing)."""
    now = time.time() if now is None else now
    with write_txn(db):
        changed = db.execute(
            "UPDATE scheduler_lease SET expires = ?, renewed = ? WHERE name = ? AND holder = ? AND token = ?",
            [now + ttl, now, LEASE, lease.holder, lease.token],
        ).rowcount
    return Lease(lease.holder, lease.token, now + ttl) if changed else None


def release_lease(db: sqlite_utils.Database, lease: Lease) -> None:
    """Let a standby take over at once (a clean stop)."""
    with write_txn(db):
        db.execute(
            "UPDATE scheduler_lease SET expires = 0 WHERE name = ? AND holder = ? AND token = ?",
            [LEASE, lease.holder, lease.token],
        )


def lease_info(db: sqlite_utils.Database) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT holder, token, expires, pid, host, version, acquired, renewed FROM scheduler_lease WHERE name = ?",
        [LEASE],
    ).fetchone()
    if row is None:
        return None
    keys = ("holder", "token", "expires", "pid", "host", "version", "acquired", "renewed")
    return dict(zip(keys, row))


def claim_firing(
    db: sqlite_utils.Database,
    lease: Lease,
    workflow: str,
    trigger_id: str,
    instant: float,
    *,
    status: str,
    reason: str | None = None,
    payload: Any = None,
) -> int | None:
    """Record a firing once; its id, or None when the instant was already claimed or our lease is gone."""
    with write_txn(db):
        cursor = db.execute(
            "INSERT INTO firings (workflow, trigger_id, instant, status, reason, payload, claimed_by, created)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM scheduler_lease"
            " WHERE name = ? AND holder = ? AND token = ?) ON CONFLICT DO NOTHING RETURNING id",
            [workflow, trigger_id, instant, status, reason, None if payload is None else json.dumps(payload),
             lease.holder, time.time(), LEASE, lease.holder, lease.token],
        )
        rows = cursor.fetchall()
        return int(rows[0][0]) if rows else None


def set_firing(db: sqlite_utils.Database, firing_id: int, *, status: str, run_id: int | None = None,
               reason: str | None = None) -> None:
    with write_txn(db):
        db.execute(
            "UPDATE firings SET status = ?, run_id = COALESCE(?, run_id), reason = COALESCE(?, reason) WHERE id = ?",
            [status, run_id, reason, firing_id],
        )


def queued_firings(db: sqlite_utils.Database) -> list[tuple[int, str, str, float, Any]]:
    """Firings held back by overlap 'queue', oldest first: (id, workflow, trigger, instant, payload)."""
    return [
        (r[0], r[1], r[2], r[3], None if r[4] is None else json.loads(r[4]))
        for r in db.execute(
            "SELECT id, workflow, trigger_id, instant, payload FROM firings WHERE status = 'queued' ORDER BY instant, id"
        )
    ]


@dataclass
class TriggerState:
    last_instant: float | None
    cursor: Any
    next_poll: float | None


def trigger_state(db: sqlite_utils.Database, workflow: str, trigger_id: str) -> TriggerState | None:
    row = db.execute(
        "SELECT last_instant, cursor, next_poll FROM trigger_state WHERE workflow = ? AND trigger_id = ?",
        [workflow, trigger_id],
    ).fetchone()
    if row is None:
        return None
    return TriggerState(row[0], None if row[1] is None else json.loads(row[1]), row[2])


def save_trigger_state(db: sqlite_utils.Database, workflow: str, trigger_id: str, state: TriggerState) -> None:
    with write_txn(db):
        db.execute(
            "INSERT INTO trigger_state (workflow, trigger_id, last_instant, cursor, next_poll, updated)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow, trigger_id) DO UPDATE SET"
            " last_instant = excluded.last_instant, cursor = excluded.cursor, next_poll = excluded.next_poll,"
            " updated = excluded.updated",
            [workflow, trigger_id, state.last_instant,
             None if state.cursor is None else json.dumps(state.cursor), state.next_poll, time.time()],
        )


def active_runs(db: sqlite_utils.Database, workflow: str) -> list[int]:
    return [r[0] for r in db.execute(
        "SELECT id FROM runs WHERE workflow = ? AND status IN ('queued', 'running') ORDER BY id", [workflow]
    )]


def webhook_token(db: sqlite_utils.Database, workflow: str, trigger_id: str) -> str | None:
    row = db.execute(
        "SELECT token FROM webhook_tokens WHERE workflow = ? AND trigger_id = ?", [workflow, trigger_id]
    ).fetchone()
    return row[0] if row else None


def ensure_webhook_tokens(db: sqlite_utils.Database, doc: dict[str, Any]) -> None:
    """Generate a token for each webhook trigger that has none (and no token_secret)."""
    with write_txn(db):
        for trigger in doc.get("triggers", []):
            if trigger.get("type") == "webhook" and "token_secret" not in trigger:
                db.execute(
                    "INSERT INTO webhook_tokens (workflow, trigger_id, token, created) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    [doc["name"], trigger["id"], secrets.token_urlsafe(32), time.time()],
                )


def list_firings(
    db: sqlite_utils.Database, workflow: str | None = None, *, statuses: tuple[str, ...] = ("missed", "skipped_overlap", "queued"),
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Firings that did not start a run (missed, skipped for overlap, still queued), newest first."""
    marks = ",".join("?" * len(statuses))
    sql = f"SELECT workflow, trigger_id, instant, status, reason, created FROM firings WHERE status IN ({marks})"
    args: list[Any] = list(statuses)
    if workflow is not None:
        sql += " AND workflow = ?"
        args.append(workflow)
    rows = db.execute(sql + " ORDER BY instant DESC LIMIT ?", [*args, limit]).fetchall()
    keys = ("workflow", "trigger_id", "instant", "status", "reason", "created")
    return [dict(zip(keys, r)) for r in rows]


def wake_scheduler(db: sqlite_utils.Database) -> bool:
    """Whether a running scheduler will see what this process just recorded; no signal is sent.

    Requests are rows (a queued run, a cancel, a pause). The active scheduler
    watches the database's change counter (``PRAGMA data_version``, see
    :func:`taskloom.storage.db.data_version`) and looks at the store within a
    fraction of a second of any commit by another connection, so the store
    never needs to know its pid, nor the right to signal it.
    """
    return scheduler_running(db)


def scheduler_running(db: sqlite_utils.Database, *, now: float | None = None) -> bool:
    """Whether a scheduler holds a live lease (it fires and starts queued runs), on any host."""
    info = lease_info(db)
    return info is not None and info["expires"] > (time.time() if now is None else now)


def record_api_address(db: sqlite_utils.Database, url: str | None, *, now: float | None = None) -> None:
    """Note where this scheduler process serves its REST API (``http://HOST:PORT``; None: it serves none).

    Written once when the process starts, before it can take the lease, so
    the row of whichever process holds the lease is its own, never one left
    by an earlier process with the same pid. Rows of processes of this host
    that are gone are removed on the way.
    """
    now = time.time() if now is None else now
    host, pid = host_id(), os.getpid()
    with write_txn(db):
        for (other,) in db.execute("SELECT pid FROM scheduler_api WHERE host = ? AND pid != ?", [host, pid]).fetchall():
            if not _pid_exists(other):
                db.execute("DELETE FROM scheduler_api WHERE host = ? AND pid = ?", [host, other])
        db.execute(
            "INSERT INTO scheduler_api (host, pid, url, started) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (host, pid) DO UPDATE SET url = excluded.url, started = excluded.started",
            [host, pid, url, now],
        )


def api_address(db: sqlite_utils.Database, *, now: float | None = None) -> str | None:
    """The base URL of the active scheduler's REST API; None when no scheduler is running or it serves no API."""
    now = time.time() if now is None else now
    row = db.execute(
        "SELECT api.url FROM scheduler_lease AS lease JOIN scheduler_api AS api"
        " ON api.host = lease.host AND api.pid = lease.pid WHERE lease.name = ? AND lease.expires > ?",
        [LEASE, now],
    ).fetchone()
    return None if row is None else row[0]


def _pid_exists(pid: int) -> bool:
    return process_alive(pid, None)


# -- what the scheduler's loop asks and records (fenced by its lease) ---------------------------------


def holds_lease(db: sqlite_utils.Database, lease: Lease) -> bool:
    """Whether ``lease`` (its holder and token) is still the scheduler lease.

    Read it as the first statement of a write transaction (``with write_txn(db)``)
    and the answer holds until that transaction ends: ``BEGIN IMMEDIATE`` keeps
    any other scheduler from taking the lease over meanwhile.
    """
    return db.execute(
        "SELECT 1 FROM scheduler_lease WHERE name = ? AND holder = ? AND token = ?",
        [LEASE, lease.holder, lease.token],
    ).fetchone() is not None


def settle_claimed_firing(db: sqlite_utils.Database, firing_id: int, *, status: str, reason: str) -> bool:
    """Record what became of a firing still ``claimed`` (skipped for overlap, queued); whether it was still claimed.

    A compare-and-set in the store's write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock):
    of several schedulers, on any hosts, asking at once, exactly one takes the run. It needs no lease: every
    scheduler executes requested runs. Joins the caller's transaction when there is one.
    """
    with write_txn(db):
        return bool(db.execute(
            "UPDATE firings SET status = ?, reason = ? WHERE id = ? AND status = 'claimed'",
            [status, reason, firing_id],
        ).rowcount)


def mark_firing_started(db: sqlite_utils.Database, firing_id: int, run_id: int, lease: Lease) -> bool:
    """Link a claimed or queued firing to the run it started, if ``lease`` still holds; whether it did.

    Call it in the transaction that created the run: False means the lease was
    taken over (or the firing started already), and the caller must roll the
    run back by raising, so that a stalled former holder never starts a firing twice.
    """
    with write_txn(db):
        return bool(db.execute(
            "UPDATE firings SET status = 'started', run_id = ? WHERE id = ? AND status IN ('claimed', 'queued')"
            " AND EXISTS (SELECT 1 FROM scheduler_lease WHERE holder = ? AND token = ?)",
            [run_id, firing_id, lease.holder, lease.token],
        ).rowcount)


def claimed_firings(db: sqlite_utils.Database) -> list[tuple[int, str, str, float, Any]]:
    """Firings claimed but never started (their scheduler died in between), oldest instant first.

    Rows ``(id, workflow, trigger_id, instant, payload)``, the payload decoded from JSON, as :func:`queued_firings`.
    """
    rows = db.execute(
        "SELECT f.id, f.workflow, f.trigger_id, f.instant, f.payload FROM firings f"
        " WHERE f.status = 'claimed' AND f.run_id IS NULL ORDER BY f.instant"
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], None if r[4] is None else json.loads(r[4])) for r in rows]


def requested_runs(db: sqlite_utils.Database) -> list[int]:
    """Queued runs nobody owns (from the API, ``taskloom trigger``, a re-run, a resume), oldest first."""
    return [r[0] for r in db.execute(
        "SELECT id FROM runs WHERE status = 'queued' AND owner IS NULL ORDER BY id"
    ).fetchall()]


def claim_requested_run(db: sqlite_utils.Database, run_id: int, owner: str) -> bool:
    """Make ``owner`` the owner of a queued run nobody owns; whether it did (False: someone else took it).

    A compare-and-set in the store's write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory lock):
    of several schedulers, on any hosts, asking at once, exactly one takes the run. It needs no lease: every
    scheduler executes requested runs. Joins the caller's transaction when there is one.
    """
    with write_txn(db):
        return bool(db.execute(
            "UPDATE runs SET owner = ? WHERE id = ? AND owner IS NULL AND status = 'queued'",
            [owner, run_id],
        ).rowcount)


def crashed_runs(db: sqlite_utils.Database) -> list[int]:
    """Ids of the runs recorded crashed, oldest first: an active scheduler resumes them."""
    return [r[0] for r in db.execute("SELECT id FROM runs WHERE status = 'crashed' ORDER BY id").fetchall()]
