"""A Taskloom home opened for work: the database plus the operations the CLI and UI share.

It turns user input (a file path or a stored name, ``key=value`` params) into
validated documents, versions and runs, and executes runs with the engine's
runner journaling into this database. Errors are :class:`UserError` with a
message fit to print.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import sqlite_utils

from engine.model import Workflow
from engine.params import ParamError, resolve_params
from engine.registry import Registry, default_registry
from engine.runner import RunEvent, Runner
from engine.states import RunState
from engine.validation import DocumentError, Issue, parse_document, validate_document

from .db import StorageError, connect
from .home import database_path, resolve_home
from .journal import SqliteJournal
from .runs import RunRecord, create_run, get_run
from .workflows import NotFound, VersionInfo, get_document, save_version

__all__ = ["Workspace", "UserError", "Target"]


class UserError(Exception):
    """A mistake the user can fix; ``issues`` holds validation issues when there are any."""

    def __init__(self, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


@dataclass(frozen=True)
class Target:
    """What ``taskloom run`` was pointed at, resolved."""

    document: dict[str, Any]
    workflow: Workflow
    version: int | None  # None for a file that is not stored
    source: str  # "store" | "file"


class Workspace:
    """The home folder and its database."""

    def __init__(self, home: str | os.PathLike[str] | None = None, *, registry: Registry | None = None) -> None:
        self.home = resolve_home(home)
        self.registry = registry or default_registry()
        try:
            self.db: sqlite_utils.Database = connect(database_path(self.home))
        except StorageError as exc:
            raise UserError(str(exc)) from None

    def close(self) -> None:
        self.db.conn.close()

    # -- documents ----------------------------------------------------------

    def read_file(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read and validate a workflow file; raise :class:`UserError` with every issue."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        return self.check_document(raw, source=str(path))

    def check_document(self, raw: str | bytes, *, source: str = "<input>") -> dict[str, Any]:
        doc, issues = parse_document(raw)
        if not issues:
            issues = validate_document(doc, self.registry)
        if issues:
            raise UserError(f"{source} is not a valid workflow ({len(issues)} problem(s))", issues)
        return doc

    def import_file(self, path: str | os.PathLike[str], *, message: str = "") -> tuple[VersionInfo, bool]:
        """Store a file as a new version; return the version and whether it is new."""
        doc = self.read_file(path)
        return self.save(doc, message=message)

    def save(self, doc: Mapping[str, Any], *, message: str = "") -> tuple[VersionInfo, bool]:
        issues = validate_document(doc, self.registry)
        if issues:
            raise UserError(f"workflow {doc.get('name')!r} is not valid", issues)
        try:
            before = get_document(self.db, doc["name"])[0].version
        except NotFound:
            before = 0
        info = save_version(self.db, doc, at=time.time(), message=message)
        return info, info.version != before

    def export(self, name: str, version: int | None = None) -> dict[str, Any]:
        try:
            return get_document(self.db, name, version)[1]
        except NotFound as exc:
            raise UserError(str(exc)) from None

    def target(self, name_or_file: str) -> Target:
        """Resolve ``taskloom run``'s argument: an existing file, else a stored workflow's name."""
        path = Path(name_or_file)
        if path.is_file() or name_or_file.endswith(".json"):
            doc = self.read_file(path)
            return Target(doc, Workflow.from_document(doc), None, "file")
        try:
            info, doc = get_document(self.db, name_or_file)
        except NotFound as exc:
            raise UserError(str(exc)) from None
        return Target(doc, Workflow.from_document(doc), info.version, "store")

    # -- runs ---------------------------------------------------------------

    def start_run(
        self,
        target: Target,
        params: Mapping[str, Any],
        *,
        from_text: bool = True,
        trigger: str = "manual",
        trigger_payload: Any = None,
        logical_time: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Check params and record a queued run; return its id and the resolved params."""
        try:
            resolved = resolve_params(target.workflow, params, from_text=from_text)
        except ParamError as exc:
            raise UserError(str(exc)) from None
        now = time.time()
        run_id = create_run(
            self.db, target.document, at=now, params=resolved, version=target.version,
            trigger=trigger, trigger_payload=trigger_payload, logical_time=logical_time,
            source=target.source,
        )
        return run_id, resolved

    def execute(
        self,
        run_id: int,
        target: Target,
        *,
        on_event: Callable[[RunEvent], None] | None = None,
        on_runner: Callable[[Runner], None] | None = None,
        cwd: str | None = None,
    ) -> RunState:
        """Run a queued run in this process until it ends."""
        run = get_run(self.db, run_id)
        runner = Runner(
            target.workflow, SqliteJournal(self.db), registry=self.registry, on_event=on_event, cwd=cwd
        )
        if on_runner is not None:
            on_runner(runner)
        return runner.run(
            run_id, params=run.params, logical_time=run.logical_time, trigger_payload=run.trigger_payload
        )

    def run(self, run_id: int, *, attempts: bool = False) -> RunRecord:
        try:
            return get_run(self.db, run_id, with_attempts=attempts)
        except NotFound as exc:
            raise UserError(str(exc)) from None
