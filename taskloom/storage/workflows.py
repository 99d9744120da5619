"""Workflows and their immutable versions.

Each save or import of a document is a new version; a version's document is
stored once, content-addressed by its SHA-256, in ``documents`` (runs of
unsaved files point there too).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

import sqlite_utils

from taskloom.core.errors import UserMistake
from taskloom.core.model import canonical_json

from taskloom.storage.db import write_txn

__all__ = ["WorkflowInfo", "VersionInfo", "NotFound", "put_document", "save_version",
           "get_document", "get_version", "list_workflows", "list_versions", "get_workflow", "document_by_hash",
           "delete_workflow", "set_paused", "is_paused"]


class NotFound(UserMistake, LookupError):
    """A workflow, version or run that does not exist; the message says which."""


@dataclass(frozen=True)
class WorkflowInfo:
    name: str
    title: str
    version: int
    paused: bool
    created: float
    updated: float
    #: who saved its first version (None for workflows stored before accounts existed)
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "version": self.version,
            "paused": self.paused,
            "created": self.created,
            "updated": self.updated,
            "owner": self.owner,
        }


@dataclass(frozen=True)
class VersionInfo:
    workflow: str
    version: int
    document: str
    message: str
    created: float
    #: where this version came from: ``file:PATH``, ``crontab:PATH``, ``designer``, ``api`` (``""`` when unknown)
    origin: str = ""
    #: the absolute folder its relative paths resolve against, or None (then the Taskloom home)
    folder: str | None = None


_VERSION_COLUMNS = "workflow, version, document, message, created, origin, folder"


def put_document(db: sqlite_utils.Database, doc: Mapping[str, Any], *, at: float) -> str:
    """Store a document's canonical JSON once; return its hash."""
    body = canonical_json(doc)
    digest = hashlib.sha256(body.encode()).hexdigest()
    with write_txn(db):
        db.execute(
            "INSERT INTO documents (sha256, body, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [digest, body, at],
        )
    return digest


def save_version(
    db: sqlite_utils.Database, doc: Mapping[str, Any], *, at: float, message: str = "",
    origin: str = "", folder: str | None = None, owner: str | None = None,
) -> VersionInfo:
    """Store ``doc`` (already validated) as the next version of the workflow it names.

    ``owner`` becomes the workflow's owner when this is its first version (later saves keep the owner).

    Saving a document identical to the current version creates no new version;
    when it comes from another folder, the current version's folder moves
    there (the folder is where the file lives, not part of the document; runs
    keep the folder they ran in). ``folder`` None keeps the previous version's
    folder, so a version saved in the designer resolves paths where the
    imported one did.
    """
    name = doc["name"]
    with write_txn(db):
        digest = put_document(db, doc, at=at)
        row = db.execute(
            "SELECT current_version FROM workflows WHERE name = ?", [name]
        ).fetchone()
        if row is not None:
            current = _version(db, name, row[0])
            folder = current.folder if folder is None else folder
            if current.document == digest:
                if current.folder != folder:
                    db.execute("UPDATE workflow_versions SET folder = ? WHERE workflow = ? AND version = ?",
                               [folder, name, current.version])
                return _version(db, name, current.version)
            version = row[0] + 1
            db.execute(
                "UPDATE workflows SET current_version = ?, title = ?, updated = ? WHERE name = ?",
                [version, doc.get("title", ""), at, name],
            )
        else:
            version = 1
            db.execute(
                "INSERT INTO workflows (name, title, current_version, paused, created, updated, owner)"
                " VALUES (?, ?, 1, 0, ?, ?, ?)",
                [name, doc.get("title", ""), at, at, owner],
            )
        db.execute(
            "INSERT INTO workflow_versions (workflow, version, document, message, created, origin, folder)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [name, version, digest, message, at, origin, folder],
        )
    return VersionInfo(name, version, digest, message, at, origin, folder)


def _version(db: sqlite_utils.Database, name: str, version: int) -> VersionInfo:
    row = db.execute(
        f"SELECT {_VERSION_COLUMNS} FROM workflow_versions"
        " WHERE workflow = ? AND version = ?",
        [name, version],
    ).fetchone()
    if row is None:
        raise NotFound(f"workflow {name!r} has no version {version}")
    return VersionInfo(*row)


def document_by_hash(db: sqlite_utils.Database, digest: str) -> dict[str, Any]:
    row = db.execute("SELECT body FROM documents WHERE sha256 = ?", [digest]).fetchone()
    if row is None:
        raise NotFound(f"no stored document {digest}")
    return json.loads(row[0])


def get_workflow(db: sqlite_utils.Database, name: str) -> WorkflowInfo:
    row = db.execute(
        "SELECT name, title, current_version, paused, created, updated, owner FROM workflows WHERE name = ?",
        [name],
    ).fetchone()
    if row is None:
        known = [r[0] for r in db.execute("SELECT name FROM workflows ORDER BY name")]
        hint = f"; stored workflows: {', '.join(known)}" if known else "; import one with 'taskloom import FILE'"
        raise NotFound(f"no workflow named {name!r}{hint}")
    return WorkflowInfo(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6])


def get_version(db: sqlite_utils.Database, name: str, version: int | None = None) -> VersionInfo:
    """A stored workflow's version (its current one unless ``version`` is given), without reading its document."""
    return _version(db, name, get_workflow(db, name).version if version is None else version)


def get_document(
    db: sqlite_utils.Database, name: str, version: int | None = None
) -> tuple[VersionInfo, dict[str, Any]]:
    """A stored workflow's document, at its current version unless ``version`` is given."""
    v = get_version(db, name, version)
    return v, document_by_hash(db, v.document)


def list_workflows(db: sqlite_utils.Database) -> list[WorkflowInfo]:
    return [
        WorkflowInfo(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6])
        for r in db.execute(
            "SELECT name, title, current_version, paused, created, updated, owner FROM workflows ORDER BY name"
        )
    ]


def list_versions(db: sqlite_utils.Database, name: str) -> list[VersionInfo]:
    get_workflow(db, name)
    return [
        VersionInfo(*r)
        for r in db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM workflow_versions"
            " WHERE workflow = ? ORDER BY version",
            [name],
        )
    ]


def set_paused(db: sqlite_utils.Database, name: str, paused: bool) -> None:
    """Stop (or resume) firing a stored workflow's triggers; :class:`NotFound` if there is none."""
    with write_txn(db):
        changed = db.execute("UPDATE workflows SET paused = ? WHERE name = ?", [int(paused), name]).rowcount
        if not changed:
            get_workflow(db, name)  # raises NotFound naming the stored ones


def is_paused(db: sqlite_utils.Database, name: str) -> bool:
    """Whether the stored workflow ``name`` is paused now (False when there is none)."""
    row = db.execute("SELECT paused FROM workflows WHERE name = ?", [name]).fetchone()
    return bool(row and row[0])


def delete_workflow(db: sqlite_utils.Database, name: str) -> int:
    """Remove a stored workflow and all its versions; return how many versions went.

    Runs are history and stay: they name their document by hash, and
    ``documents`` keeps every body, so a deleted workflow's runs can still be
    read, re-run and resumed. The workflow's scheduler cursors
    (``trigger_state``), webhook tokens and task memory (watermarks) go, so a
    new workflow of the same name starts fresh. Firings stay as history; one
    still queued ends as ``failed_to_start`` ("no workflow named ...").
    """
    with write_txn(db):
        get_workflow(db, name)  # NotFound naming the stored ones
        removed = db.execute("DELETE FROM workflow_versions WHERE workflow = ?", [name]).rowcount
        db.execute("DELETE FROM workflows WHERE name = ?", [name])
        for table in ("trigger_state", "webhook_tokens", "task_memory"):
            db.execute(f"DELETE FROM {table} WHERE workflow = ?", [name])
    return removed
