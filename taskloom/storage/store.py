"""The store's face: a Taskloom home opened for work, with the operations the CLI, the API and the web share.

It turns user input (a file path or a stored name, ``key=value`` params) into
validated documents, versions and runs, and records requests: a queued run,
a re-run, a cancel. It never runs anything: :mod:`taskloom.runtime.execution`
builds the runner that executes a queued run, and only runtime kills
processes. Errors are :class:`UserError` with a message fit to print.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, MutableMapping, TypeVar

import sqlite_utils

from taskloom.core.access import Principal, Role

from taskloom.core.errors import UserMistake
from taskloom.core.logtext import LogLimits
from taskloom.core.model import Workflow
from taskloom.core.params import ParamError, resolve_params
from taskloom.core.plan import tasks_to_rerun
from taskloom.storage.plugins import load_registry
from taskloom.core.registry import Registry
from taskloom.core.states import FINAL_RUN_STATES, RunState, TaskState
from taskloom.core.validation import Issue, parse_document, validate_document

from taskloom.storage.config import Config, log_limits
from taskloom.storage.db import StorageError, check_writable, connect, write_txn
from taskloom.storage.audit import record
from taskloom.storage.heartbeat import Heartbeat
from taskloom.storage.home import resolve_database, resolve_home
from taskloom.storage.recovery import Orphan, cancel_orphan, find_orphans
from taskloom.storage.runs import RunRecord, create_run, get_run, mark_cancel_requested, queued_run, reuse_results
from taskloom.storage.scheduling import ensure_webhook_tokens
from taskloom.storage.secrets import SecretError, SecretStore
from taskloom.storage.workflows import (
    NotFound, VersionInfo, document_by_hash, get_document, get_version, save_version,
)

__all__ = ["Workspace", "UserError", "Target", "Checked", "storage_as_user_error"]

log = logging.getLogger("taskloom.storage")

_F = TypeVar("_F", bound=Callable[..., Any])


class UserError(UserMistake):
    """A mistake the user can fix, as the Workspace reports it; ``issues`` holds validation issues when there are any.

    One of the user mistakes (:mod:`taskloom.core.errors`); ``except UserError`` catches what the Workspace
    raises, not the rest of that family.
    """

    def __init__(self, message: str, issues: list[Issue] | None = None, *, storage: StorageError | None = None,
                 place: str = "", hint: str = "") -> None:
        super().__init__(message, issues=issues, place=place, hint=hint)
        #: the database error behind this one, when the database could not be opened or written
        self.storage = storage


def storage_as_user_error(method: _F) -> _F:
    """A database that cannot be written (full, read-only, locked too long) is reported like a user mistake:
    the commands print the message, which names the path and the fix, and exit 1 without a traceback."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except StorageError as exc:
            raise UserError(str(exc), storage=exc) from None

    return wrapper  # type: ignore[return-value]


#: what only this module's checks hold: a :class:`Checked` made anywhere else is refused
_VALIDATED = object()


@dataclass(frozen=True, eq=False)
class Checked:
    """A document that passed validation against a store's task types: what :meth:`Workspace.save` stores
    without validating it again.

    Only the store's checks make one (:meth:`Workspace.check`,
    :meth:`Workspace.check_parsed`, :meth:`Workspace.validate`), so holding one
    proves the document was validated; ``save`` validates again only a
    document checked against another registry. Its :attr:`workflow` is built
    the first time it is asked for. Do not change ``document`` afterwards:
    the change would not be validated.
    """

    document: dict[str, Any]
    registry: Registry = field(repr=False)
    _proof: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._proof is not _VALIDATED:
            raise TypeError("a Checked document comes from Workspace.check, check_parsed or validate, which"
                            " validate it")

    @functools.cached_property
    def workflow(self) -> Workflow:
        """The model of the document, built once."""
        return Workflow.from_document(self.document)


@dataclass(frozen=True)
class Target:
    """What ``taskloom run`` was pointed at, resolved."""

    document: dict[str, Any]
    workflow: Workflow
    version: int | None  # None for a file that is not stored
    source: str  # "store" | "file"
    #: the folder relative paths resolve against: the file's, or the stored version's (None: the home)
    folder: str | None = None
    #: the hash of the stored document (a stored version's): a run of it references that row as it is,
    #: without serializing and hashing the document again (None: a file's, stored with its first run)
    digest: str | None = None


def cli_actor() -> str:
    """Who acts from this machine's command line: ``$TASKLOOM_USER``, else the operating system's user name.

    The command line works on the store directly, as anyone who can open the database file (or connect to the
    server) can; it records who that was, and roles are for the web app and the REST API.
    """
    import getpass

    given = os.environ.get("TASKLOOM_USER", "").strip()
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


#: Triggers that are a person asking (then the workspace's actor started the run).
_ASKED = ("manual", "api", "rerun")


def started_by_trigger(trigger: str) -> str:
    """Who started a run no person asked for by name: ``schedule``, ``webhook``, ``workflow`` (a sub-workflow's
    parent), ``api`` (the service token), and the command line's user for a manual run (:func:`cli_actor`)."""
    named = {"webhook": "webhook", "subworkflow": "workflow", "api": "api"}
    if trigger in named:
        return named[trigger]
    return cli_actor() if trigger in ("manual", "rerun") else "schedule"


class Workspace:
    """The home folder and its database."""

    #: the storage error that stopped the last run executed on this store, if one did
    #: (:func:`taskloom.runtime.execution.execute` sets it)
    storage_failure: StorageError | None = None
    #: who acts through this workspace, and from where: what :meth:`audit` records. The command line's user by
    #: default; the REST API and the web app set the signed-in user and ``api ADDRESS`` or ``web``.
    actor: Principal | None = None
    source: str = "cli"

    def __init__(self, home: str | os.PathLike[str] | None = None, *, registry: Registry | None = None,
                 database: str | os.PathLike[str] | None = None) -> None:
        self.home = resolve_home(home)
        try:
            #: the store: ``HOME/taskloom.db``, another SQLite file, or a ``postgresql://`` URL
            #: (``database``, else ``$TASKLOOM_DATABASE_URL``)
            self.db_path = resolve_database(self.home, database)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self.registry = registry or load_registry()
        try:
            self.db: sqlite_utils.Database = connect(self.db_path)
        except StorageError as exc:
            raise UserError(str(exc), storage=exc) from None
        except UserMistake as exc:  # a postgresql:// URL without the driver installed
            raise UserError(str(exc)) from None

    @property
    def database(self) -> str | Path:
        """Where the store is (what :func:`taskloom.storage.db.connect` opens): a file path or a URL."""
        return self.db_path

    def close(self) -> None:
        self.db.conn.close()

    def acting(self) -> Principal:
        """Who acts (:attr:`actor`, else the command line's user, who may do anything the store allows)."""
        return self.actor or Principal(cli_actor(), Role.ADMIN, "cli")

    def audit(self, action: str, target: str = "", *, workflow: str | None = None, version: int | None = None,
              result: str = "ok", detail: str = "") -> None:
        """Append a row to the audit trail for :meth:`acting` (inside the caller's write transaction, if any)."""
        record(self.db, self.acting(), action, target, workflow=workflow, version=version, result=result,
               source=self.source, detail=detail)

    @storage_as_user_error
    def check_writable(self) -> None:
        """Raise :class:`UserError` naming the database when it cannot be written (read-only, full, locked)."""
        check_writable(self.db)

    # -- documents ----------------------------------------------------------
    #
    # Each document is read, parsed and validated once: what travels from one
    # step to the next is the parse (document, issues) and then a Checked
    # document, never the text again.

    @staticmethod
    def _read(path: str | os.PathLike[str]) -> bytes:
        path = Path(path)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None

    def read_file(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read and validate a workflow file; raise :class:`UserError` with every issue."""
        return self.check(self._read(path), source=str(Path(path))).document

    def check_document(self, raw: str | bytes, *, source: str = "<input>") -> dict[str, Any]:
        """Parse and validate ``raw``; the document, or :class:`UserError` with every issue."""
        return self.check(raw, source=source).document

    def check(self, raw: str | bytes, *, source: str = "<input>") -> Checked:
        """Parse and validate ``raw`` once; the :class:`Checked` document, or :class:`UserError` with every issue."""
        doc, issues = parse_document(raw)
        return self.check_parsed(doc, issues, source=source)

    def check_parsed(self, doc: Any, issues: list[Issue], *, source: str = "<input>") -> Checked:
        """Validate what :func:`~taskloom.core.validation.parse_document` made of ``source`` (``issues``: its
        parse issues), without parsing it again; the :class:`Checked` document, or :class:`UserError`."""
        checked = None
        if not issues:
            checked, issues = self.validate(doc)
        if checked is None:
            raise UserError(f"{source} is not a valid workflow ({len(issues)} problem(s))", issues)
        return checked

    def validate(self, doc: Any) -> tuple[Checked | None, list[Issue]]:
        """Validate a document against this store's task types: ``(Checked, [])``, or ``(None, every issue)``."""
        issues = validate_document(doc, self.registry)
        return (None, issues) if issues else (Checked(doc, self.registry, _VALIDATED), [])

    def import_file(
        self, path: str | os.PathLike[str], *, message: str = "", raw: bytes | None = None,
        parsed: tuple[Any, list[Issue]] | None = None,
    ) -> tuple[VersionInfo, bool]:
        """Store a file as a new version; return the version and whether it is new.

        ``raw`` is the file's content when the caller has read it already, and
        ``parsed`` what :func:`~taskloom.core.validation.parse_document` made of
        it: the file is then not read (or parsed) again. The file's folder is
        recorded: the workflow's relative paths (python modules, databases,
        files, checkouts) resolve against it, wherever the scheduler runs.
        """
        if parsed is None:
            parsed = parse_document(self._read(path) if raw is None else raw)
        checked = self.check_parsed(*parsed, source=str(Path(path)))
        folder = os.path.dirname(os.path.abspath(path))
        return self.save(checked, message=message, origin=f"file:{os.path.abspath(path)}", folder=folder)

    @storage_as_user_error
    def save(
        self, doc: Checked | Mapping[str, Any], *, message: str = "", origin: str = "", folder: str | None = None,
        actor: str | None = None,
    ) -> tuple[VersionInfo, bool]:
        """Store ``doc`` as the next version; return the version and whether it is new.

        A :class:`Checked` document is stored as it is; any other is validated
        first (:class:`UserError` with every issue). ``origin`` says where it
        came from (``file:PATH``, ``designer``...); ``folder`` None keeps the
        previous version's folder. ``actor`` (a user's name; the command line's user by default) owns the
        workflow if this is its first version.
        """
        if isinstance(doc, Checked) and doc.registry is self.registry:
            doc = doc.document
        else:
            doc = doc.document if isinstance(doc, Checked) else doc
            issues = validate_document(doc, self.registry)
            if issues:
                raise UserError(f"workflow {doc.get('name')!r} is not valid", issues)
        try:
            before = get_version(self.db, doc["name"]).version
        except NotFound:
            before = 0
        info = save_version(self.db, doc, at=time.time(), message=message, origin=origin, folder=folder,
                            owner=actor or self.acting().name)
        ensure_webhook_tokens(self.db, dict(doc))
        return info, info.version != before

    def export(self, name: str, version: int | None = None) -> dict[str, Any]:
        try:
            return get_document(self.db, name, version)[1]
        except NotFound as exc:
            raise UserError(str(exc)) from None

    def target(
        self, name_or_file: str, *, parsed: MutableMapping[tuple[str, int], Workflow] | None = None
    ) -> Target:
        """Resolve ``taskloom run``'s argument: an existing file, else a stored workflow's name.

        ``parsed`` holds stored workflows already built, by (name, version)
        (the scheduler's): the current version found there is neither read
        nor parsed again, and one that is not is added.
        """
        path = Path(name_or_file)
        if path.is_file() or name_or_file.endswith(".json"):
            checked = self.check(self._read(path), source=str(path))
            return Target(checked.document, checked.workflow, None, "file", os.path.dirname(os.path.abspath(path)))
        try:
            return self.stored_target(name_or_file, parsed=parsed)
        except NotFound as exc:
            raise UserError(str(exc)) from None

    def stored_target(
        self, name: str, *, parsed: MutableMapping[tuple[str, int], Workflow] | None = None
    ) -> Target:
        """The stored workflow ``name`` at its current version (never a file of that name); :class:`NotFound` if none.

        ``parsed`` holds workflows already built, by (name, version): a
        version found there is neither read nor parsed again, one that is not
        is added (past 1000 entries the cache starts again). The scheduler and
        the webhooks keep one, since they start the same versions again and again.
        """
        info = get_version(self.db, name)
        workflow = None if parsed is None else parsed.get((info.workflow, info.version))
        if workflow is None:
            workflow = Workflow.from_document(document_by_hash(self.db, info.document))
            if parsed is not None:
                if len(parsed) >= 1000:
                    parsed.clear()
                parsed[(info.workflow, info.version)] = workflow
        return Target(dict(workflow.document), workflow, info.version, "store", info.folder, info.document)

    # -- runs ---------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Heartbeat]:
        """This process's heartbeat, held while it runs workflows.

        Removing the heartbeat row on the way out is best effort: when the
        database cannot be written then (a full disk), the row stays and other
        processes see from the dead pid that this process is gone.
        """
        heartbeat = Heartbeat(self.db_path)
        try:
            heartbeat.start()
        except StorageError:
            self._stop_heartbeat(heartbeat)
            raise
        try:
            yield heartbeat
        finally:
            self._stop_heartbeat(heartbeat)

    @staticmethod
    def _stop_heartbeat(heartbeat: Heartbeat) -> None:
        try:
            heartbeat.stop()
        except StorageError as exc:
            log.warning("could not remove this process's heartbeat row: %s", exc)

    def start_run(self, target: Target, params: Mapping[str, Any], **options: Any) -> tuple[int, dict[str, Any]]:
        """Check params and record a queued run; return its id and the resolved params (see :meth:`new_run`)."""
        run = self.new_run(target, params, **options)
        return run.id, run.params

    @storage_as_user_error
    def new_run(
        self,
        target: Target,
        params: Mapping[str, Any],
        *,
        owner: str | None = None,
        from_text: bool = True,
        trigger: str = "manual",
        trigger_id: str | None = None,
        trigger_payload: Any = None,
        logical_time: float | None = None,
        started_by: str | None = None,
    ) -> RunRecord:
        """Check params and record a queued run; return its record, as reading it back would give.

        The process that runs it next needs no read (:func:`taskloom.runtime.execution.execute`'s ``created``).
        ``started_by`` is who asked (a user's name); without one the trigger says it (:func:`started_by_trigger`).
        """
        try:
            resolved = resolve_params(target.workflow, params, from_text=from_text)
        except ParamError as exc:
            raise UserError(str(exc)) from None
        who = started_by or (self.actor.name if self.actor is not None and trigger in _ASKED
                             else started_by_trigger(trigger))
        return queued_run(
            self.db, target.document, at=time.time(), params=resolved, version=target.version, digest=target.digest,
            trigger=trigger, trigger_id=trigger_id, trigger_payload=trigger_payload, logical_time=logical_time,
            source=target.source, owner=owner, folder=target.folder, started_by=who,
        )

    def workflow_of(self, run: RunRecord) -> Workflow:
        return Workflow.from_document(document_by_hash(self.db, run.document))

    def secret_values(self) -> dict[str, str]:
        try:
            return SecretStore(self.db, self.home).values()
        except SecretError as exc:
            raise UserError(str(exc)) from None

    def run_folder(self, run: RunRecord, *, default: str | None = None) -> str:
        """The folder a run's relative paths resolve against: its version's or file's, else ``default``,
        else the Taskloom home. Never the working directory of whichever process happens to run it."""
        return run.folder or default or str(self.home)

    def log_limits(self) -> LogLimits:
        """The caps on stored log lines (``taskloom config set logs.max_line_bytes ...``)."""
        try:
            return log_limits(Config(self.db))
        except ValueError as exc:  # a value stored around `taskloom config set`, which checks it
            raise UserError(f"bad log cap in the configuration: {exc}; fix it with taskloom config set") from None

    @storage_as_user_error
    def claim_crashed(self, run_id: int, owner: str) -> RunRecord:
        """Make ``owner`` the owner of a crashed run so it can resume it; explain when it cannot."""
        run = self.run(run_id)
        if run.status in (RunState.QUEUED.value, RunState.RUNNING.value):
            raise UserError(f"run {run_id} is {run.status} in another process that is still alive; nothing to resume")
        if run.status != RunState.CRASHED.value:
            raise UserError(
                f"run {run_id} already {run.status}; only crashed or interrupted runs resume"
                f" (start it again with: taskloom rerun {run_id})"
            )
        with write_txn(self.db):
            claimed = self.db.execute(
                "UPDATE runs SET owner = ? WHERE id = ? AND status = 'crashed' AND owner IS NOT DISTINCT FROM ?",
                [owner, run_id, self.db.execute("SELECT owner FROM runs WHERE id = ?", [run_id]).fetchone()[0]],
            ).rowcount
        if not claimed:
            raise UserError(f"run {run_id} was just taken up by another process")
        return run

    @storage_as_user_error
    def rerun(self, run_id: int, *, owner: str | None, from_task: str | None = None, failed: bool = False,
              started_by: str | None = None) -> int:
        """A new run of the same version, params and payload, reusing the results outside the re-run part."""
        parent = self.run(run_id)
        workflow = self.workflow_of(parent)
        states = {t: TaskState(r.status) for t, r in parent.tasks.items()}
        if from_task is not None and from_task not in workflow.tasks:
            raise UserError(f"run {run_id} has no task {from_task!r}; its tasks: {', '.join(workflow.tasks)}")
        if failed and not any(s.value in ("failed", "timed_out", "crashed", "cancelled") for s in states.values()):
            raise UserError(f"run {run_id} has no failed task to re-run")
        again = tasks_to_rerun(workflow, states, from_task=from_task, failed=failed)
        doc = document_by_hash(self.db, parent.document)
        with write_txn(self.db):
            new_id = create_run(
                self.db, doc, at=time.time(), params=parent.params, version=parent.version,
                trigger="rerun", trigger_payload=parent.trigger_payload, logical_time=parent.logical_time,
                parent_run_id=parent.id, source=parent.source, owner=owner, folder=parent.folder,
                started_by=started_by or self.acting().name,
            )
            reuse_results(self.db, new_id, parent.id, [t for t in workflow.tasks if t not in again])
        return new_id

    @storage_as_user_error
    def request_cancel(self, run_id: int, *, owner: str) -> str:
        """Ask for a run to be cancelled, from any process; the store kills nothing.

        A run nobody has taken yet (queued, no owner) or one whose runner is
        known dead and already recovered (crashed) runs no process: it is
        cancelled here, ``"cancelled"``. Any other run gets a cancel request
        that its runner, or the scheduler that recovers it, carries out:
        ``"requested"``. ``"ended"`` when it had already ended.
        :func:`taskloom.runtime.execution.cancel` also stops the tasks of a
        runner that died, at once.
        """
        run = self.run(run_id)
        if RunState(run.status) in FINAL_RUN_STATES:
            return "ended"
        holder = self.owner_of(run_id)
        if run.status == RunState.CRASHED.value or (run.status == RunState.QUEUED.value and holder is None):
            # nothing runs it: cancel it here, unless another process takes it first
            if cancel_orphan(self.db, Orphan(run_id, run.workflow, holder, run.status), owner=owner) is not None:
                return "cancelled"
            if RunState(self.run(run_id).status) in FINAL_RUN_STATES:
                return "ended"
        mark_cancel_requested(self.db, run_id, at=time.time())
        return "requested"

    def owner_of(self, run_id: int) -> str | None:
        """The id of the process that owns ``run_id`` (runs it, or last did), or None."""
        row = self.db.execute("SELECT owner FROM runs WHERE id = ?", [run_id]).fetchone()
        return row[0] if row else None

    def run(self, run_id: int, *, attempts: bool = False) -> RunRecord:
        try:
            return get_run(self.db, run_id, with_attempts=attempts)
        except NotFound as exc:
            raise UserError(str(exc)) from None
