"""Every exception Taskloom raises, as one tree.

``TaskloomError`` is the base of all of them; five families sit under it, and
every exception class defined in ``taskloom/`` belongs to one
(``tests/test_errors.py`` walks the package and holds each class, and this
tree, to that). Where a class also had a built-in base (``ValueError``,
``LookupError``, ``RuntimeError``) it keeps it, so an ``except ValueError``
written before the tree existed still catches what it caught.

Public classes, by family (``[module]`` is where each is defined, under ``taskloom.``)::

    TaskloomError [core.errors]
    ├── UserMistake [core.errors] - the user can fix it: what was wrong (the message), where (place), how (hint)
    │   ├── UserError [storage.store] - what the Workspace raises; storage: the StorageError behind it, if any
    │   ├── DocumentError [core.issues] - a document that cannot be loaded; issues: every reason, by JSON pointer
    │   │   └── ConversionError [core.importers.report] - a file no importer can convert at all
    │   ├── ParamError [core.params] - bad run parameters; problems: each one
    │   ├── TemplateError [core.templates] - a template that does not parse or render
    │   ├── FiringError [core.firing] - a trigger that cannot fire; trigger and field say where
    │   ├── Untranslatable [core.importers.wdl] - an imported expression with no Taskloom equivalent
    │   ├── NotFound [storage.workflows] - no such workflow, version or run
    │   ├── ConfigError [storage.config] - an unknown configuration key or a wrong value
    │   ├── SecretError [storage.secrets] - a secret that cannot be stored or read
    │   ├── DatabaseUrlError [storage.schema_state] - a database that cannot be used: a wrong URL, no server, no driver
    │   │   └── CopyRefused [storage.copy] - db copy into a database that already holds rows
    │   ├── ExecutorError [runtime.executors] - an executor that cannot be set up
    │   ├── MailSettingsError [core.mail] - smtp.* settings that cannot send mail
    │   ├── AccessError [core.access] - a bad user name, role or credential for the accounts; nothing changed
    │   ├── Forbidden [core.access] - a role that may not do the action; needed: the least role that may
    │   ├── LoginRefused [storage.accounts] - a wrong password or token, or failed logins that must wait first
    │   ├── PollError [runtime.pollers] - a file, git or workflow trigger that cannot poll
    │   └── ApiError [api.app] - a client's mistake, with its HTTP status
    ├── StorageError [core.errors] - the database cannot be opened or written; kind, path, reason, fix
    ├── Fenced [core.errors] - lost ownership: another process holds the run or the scheduler lease now
    ├── TaskFailure [core.errors] - an attempt's failure raised inside a task type; retriable
    │   ├── TaskProblem [runtime.tasks.files] - a files or git attempt that cannot go on
    │   │   └── PathRefused [runtime.tasks.files] - a path outside the allowed roots
    │   ├── SqlFailure [runtime.tasks.sql] - a sql attempt that ends with a status
    │   └── SpecError [runtime.tasks.http] - http or notify parameters that cannot make a request
    └── InternalError [core.errors] - a bug in Taskloom, never the user's doing
        ├── InvalidTransition [core.states] - a state change the transition table does not allow
        ├── Unsupported [core.fastschema] - a schema keyword the fast predicate lacks (always caught)
        └── DialectError [storage.dialect] - a schema statement with no PostgreSQL translation

Private classes join the family of what they signal: ``_LineError`` (a crontab
line), ``_ConstantError`` (``NaN`` in a document) and the web designer's
``_Unreadable`` are user mistakes, the task types' ``_Stop`` and ``_Stopped``
task failures, and the command line's ``_Fail`` (its click form) a user mistake.

Each boundary turns the tree into its own form in one place: the command line
in :func:`taskloom.ui.cli.common.print_error` (``error: message`` with the
issues and the hint, exit 1, no traceback; user mistakes and storage errors),
the REST API in ``taskloom.api.app``'s exception handlers (a user mistake is a
4xx: ``ApiError`` its status, ``NotFound`` 404, any other 422; every other
family is the server's, 500), the web pages in
:func:`taskloom.ui.web.state.show_error`.

Families are caught by the code that knows what to do about them: the
scheduler loop logs a :class:`StorageError` (or a user error made of one,
:func:`storage_failure`) and keeps running; a runner that meets
:class:`Fenced` stops writing at once; the runner records a
:class:`TaskFailure` as the attempt's result. An :class:`InternalError` is
for a developer: nothing catches it to hide it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "TaskloomError", "UserMistake", "StorageError", "Fenced", "TaskFailure", "InternalError", "storage_failure",
]


class TaskloomError(Exception):
    """The base of every exception Taskloom defines."""


class UserMistake(TaskloomError):
    """A mistake the user can fix: the message says what was wrong; ``place`` says where, ``hint`` how to fix it.

    ``place`` is what the user would look at: a JSON pointer into a document
    (``/tasks/2/timeout``), a task or trigger id, a file; ``hint`` is the fix
    in a few words (``""`` when the message already says it). ``issues`` holds
    the validation issues (:class:`taskloom.core.issues.Issue`) when there are
    several. Positional arguments are the exception's ``args``, as for any
    exception (a subclass may read ``args[1]``).
    """

    place: str = ""
    hint: str = ""

    def __init__(self, *args: Any, place: str = "", hint: str = "", issues: Sequence[Any] | None = None) -> None:
        super().__init__(*args)
        self.place = place
        self.hint = hint
        self.issues: list[Any] = list(issues or [])


class StorageError(TaskloomError, RuntimeError):
    """The database cannot be opened or written; the message names the path and how to fix it.

    ``path`` is the database file; ``kind`` is one of ``"full"`` (no space
    left), ``"readonly"`` (read-only file or file system), ``"locked"``
    (another process held the write lock past ``TASKLOOM_LOCK_TIMEOUT``),
    ``"io"`` (an I/O error), ``"corrupt"`` or ``"open"`` (any other reason
    it cannot be opened); ``reason`` is the short cause without the advice,
    ``fix`` the advice alone (``""`` when only the message has it).
    :mod:`taskloom.storage.db` makes them from SQLite's errors.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, kind: str = "open", reason: str = "",
                 fix: str = "") -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.kind = kind
        self.reason = reason or message
        self.fix = fix


class Fenced(TaskloomError, RuntimeError):
    """Lost ownership: another process took this run over, or the scheduler lease, so this one must stop writing.

    The journal raises it when a run's owner is no longer this process (the
    runner kills what it runs and writes nothing more); the scheduler when
    its lease moved on while it was starting a firing (the new holder starts it).
    """


class TaskFailure(TaskloomError):
    """An attempt's failure, raised inside a task type and turned into the attempt's result there.

    ``retriable`` says whether another attempt could help.
    """

    retriable: bool = False


class InternalError(TaskloomError):
    """A bug in Taskloom (an illegal state transition, a broken invariant), never the user's doing."""


def storage_failure(exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` ``exc`` is, or carries as ``storage`` (a user error made of one); else None."""
    if isinstance(exc, StorageError):
        return exc
    cause = getattr(exc, "storage", None)
    return cause if isinstance(cause, StorageError) else None
