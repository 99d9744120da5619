"""The audit trail: who did what, to what, when, from where, and how it ended.

One append-only table (``audit``). Nothing in Taskloom updates or deletes its
rows; a row is written in the same transaction as the change it records where
the change is a write of the store (so a change is never without its row),
and on its own for what changes nothing (a login, a refused request).

``actor`` is the user's name (or ``local`` where a home has no accounts, or
the OS user for the command line), ``via`` how they proved it (``password``,
``token``, ``sso``, ``service-token``, ``cli``, ``local``), ``source`` where
the request came from (``cli``, ``api 10.0.0.7``, ``web``), ``result`` is
``ok``, ``refused`` (not allowed, or a bad login) or ``failed`` (allowed but
it did not work: an invalid document, say).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from taskloom.core.access import Principal
from taskloom.storage.db import write_txn

__all__ = ["AuditEntry", "record", "entries", "RESULTS"]

RESULTS = ("ok", "refused", "failed")
_MAX_DETAIL = 2000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    via: str
    action: str
    target: str
    workflow: str | None
    version: int | None
    result: str
    source: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        from taskloom.storage.runs import iso

        return {"id": self.id, "at": iso(self.at), "actor": self.actor, "via": self.via, "action": self.action,
                "target": self.target, "workflow": self.workflow, "version": self.version, "result": self.result,
                "source": self.source, "detail": self.detail}


def record(db: sqlite_utils.Database, actor: Principal | str, action: str, target: str = "", *,
           workflow: str | None = None, version: int | None = None, result: str = "ok", source: str = "",
           detail: str = "", at: float | None = None) -> None:
    """Append one row (joining the caller's write transaction when there is one)."""
    if result not in RESULTS:
        raise ValueError(f"audit result {result!r} is not one of {RESULTS}")
    name, via = (actor.name, actor.via) if isinstance(actor, Principal) else (actor, "")
    with write_txn(db):
        db.execute("INSERT INTO audit (at, actor, via, action, target, workflow, version, result, source, detail)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [time.time() if at is None else at, name, via, action, target, workflow, version, result, source,
                    detail[:_MAX_DETAIL]])


def entries(db: sqlite_utils.Database, *, user: str | None = None, workflow: str | None = None,
            action: str | None = None, since: float | None = None, before_id: int | None = None,
            limit: int = 100) -> list[AuditEntry]:
    """Rows newest first, filtered; page with ``before_id`` (the smallest id of the last page)."""
    where, args = [], []
    for column, value in (("actor", user), ("workflow", workflow), ("action", action)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    sql = ("SELECT id, at, actor, via, action, target, workflow, version, result, source, detail FROM audit"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
    return [AuditEntry(*row) for row in db.execute(sql, [*args, limit]).fetchall()]
