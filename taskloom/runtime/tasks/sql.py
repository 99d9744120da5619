"""The ``sql`` and ``sql_copy`` task types: one SQL statement, or a query's rows copied into a table.

SQLite files go through the standard library's :mod:`sqlite3`, and so the
SQLite Python links, as SQLAlchemy's ``sqlite://`` URLs do: they are the
user's files, shared with the user's own tools, and the engine does not
import taskloom.storage, whose ``taskloom.storage.sqlite`` picks the bundled SQLite for
Taskloom's own database only. Any other database goes through SQLAlchemy,
imported only when a task gives a ``url``, since it is the optional extra
``taskloom[sql]``. Both sit behind :class:`Database`, so the two tasks read
the same whichever is used.

Values reach the database only as bound parameters (``:name`` placeholders),
never pasted into the SQL, so a value such as ``1; DROP TABLE t`` stays data.

A task runs on a thread of its own and must honour its timeout and cancel
itself: SQLite's progress handler aborts a running statement, other drivers
are cancelled from a watcher thread when they can be (``connection.cancel()``,
as psycopg and oracledb offer), and ``sql_copy`` also checks between batches.

Errors name the database, what was being done and the database's own message,
with a hint. "Locked"/"busy" and connection errors are retriable; mistakes in
the SQL (syntax, missing tables, constraint violations) are not, so no retry
is spent on them.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import importlib
import json
import math
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

from taskloom.core.errors import TaskFailure
from taskloom.core.specs.sql import DEFAULT_BATCH_SIZE, DEFAULT_MAX_ROWS
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult

__all__ = [
    "run",
    "run_copy",
    "SqlFailure",
    "Watch",
    "Database",
    "SqliteDatabase",
    "AlchemyDatabase",
    "connect",
    "json_value",
    "bind_parameters",
    "unique_names",
    "quote_identifier",
    "hide_password",
    "install_command",
]

#: Longest wait for another connection's lock, in seconds (never past the attempt's deadline).
MAX_BUSY_SECONDS = 30.0
#: SQLite virtual-machine steps between two looks at cancel and the deadline.
PROGRESS_STEPS = 1000
#: Rows fetched at a time while reading a result for the output.
FETCH_SIZE = 500
#: Characters of a query quoted in an error message.
QUERY_SHOWN = 200
#: How often the watcher of a SQLAlchemy connection looks at cancel and the deadline, in seconds.
WATCH_SECONDS = 0.1

INSTALL = "pip install 'taskloom[sql]'"


# -- how an attempt ends early -------------------------------------------------


class SqlFailure(TaskFailure):
    """Ends an attempt with ``status`` and a message; ``retriable`` says whether another attempt may help."""

    def __init__(self, message: str, *, retriable: bool = False, status: TaskState = TaskState.FAILED) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status = status

    def result(self) -> AttemptResult:
        return AttemptResult(self.status, error=str(self), retriable=self.retriable)


class Watch:
    """The attempt's cancel event and deadline; remembers which of them stopped a statement."""

    def __init__(self, cancel: threading.Event, timeout: float) -> None:
        self.cancel = cancel
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.reason: TaskState | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def stopped(self) -> bool:
        """True once the attempt is cancelled or past its deadline (and the reason is recorded)."""
        if self.reason is None:
            if self.cancel.is_set():
                self.reason = TaskState.CANCELLED
            elif time.monotonic() >= self.deadline:
                self.reason = TaskState.TIMED_OUT
        return self.reason is not None

    def progress(self) -> int:
        """SQLite's progress handler: a non-zero answer interrupts the running statement."""
        return 1 if self.stopped() else 0

    def failure(self, where: str) -> SqlFailure:
        """The attempt's end after a statement on ``where`` was interrupted (or between two batches)."""
        if self.reason is TaskState.CANCELLED:
            return SqlFailure(f"cancelled; the work on {where} was interrupted and rolled back",
                              status=TaskState.CANCELLED, retriable=True)
        return SqlFailure(
            f"timed out after {self.timeout:g} s; the work on {where} was interrupted and rolled back."
            " Raise the task's 'timeout', or make the query cheaper (an index, a narrower WHERE)",
            status=TaskState.TIMED_OUT,
            retriable=True,
        )


# -- values ----------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: bytes as base64 text, dates in ISO 8601, Decimal and the rest as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)  # Decimal (exact), UUID, intervals...


def bind_parameters(parameters: Any) -> dict[str, Any]:
    """The values to bind: JSON objects and arrays become JSON text, everything else is bound as it is."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise SqlFailure(
            f"'parameters' must be an object of named values, got {type(parameters).__name__}"
            f" {str(parameters)[:80]!r}; write e.g. {{\"min_id\": \"{{{{ params.min_id }}}}\"}}"
        )
    return {
        str(name): json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        for name, value in parameters.items()
    }


def _sqlite_value(value: Any) -> Any:
    """A value another driver returned, as sqlite3 can bind it."""
    if value is None or isinstance(value, (int, float, str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(json_value(value), ensure_ascii=False)
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    return str(value)


def _alchemy_value(value: Any) -> Any:
    """A value for a SQLAlchemy target: JSON objects and arrays travel as JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(json_value(value), ensure_ascii=False)
    return value


def unique_names(names: Sequence[str]) -> list[str]:
    """Column names made unique (case-insensitively): a second ``id`` becomes ``id_2``."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def quote_identifier(name: str) -> str:
    """``name`` as a SQLite identifier: in double quotes, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def _split_table(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def _qualified(table: str) -> str:
    schema, name = _split_table(table)
    return (f"{quote_identifier(schema)}." if schema else "") + quote_identifier(name)


def _shorten(text: str, limit: int = QUERY_SHOWN) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# -- URLs ------------------------------------------------------------------------------

_PASSWORD_IN_URL = re.compile(r"(?P<head>//[^:/@?#]*:)[^@/?#]*@")
_PASSWORD_IN_QUERY = re.compile(r"(?i)(?P<head>[?&]password=)[^&#]*")

#: What SQLAlchemy (2.1) loads for a URL without ``+driver``; 2.0 loads psycopg2 for postgresql.
_DEFAULT_DRIVERS = {
    "postgresql": "psycopg", "postgres": "psycopg", "mysql": "mysqldb", "mariadb": "mysqldb",
    "oracle": "oracledb", "mssql": "pyodbc",
}
#: The package that installs a driver, by the driver's name in a URL or its module's name.
_DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary", "mysqldb": "mysqlclient", "mysqlconnector": "mysql-connector-python",
    "mysql": "mysql-connector-python", "mariadbconnector": "mariadb", "cx_oracle": "cx_Oracle",
}
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def hide_password(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for messages and logs."""
    return _PASSWORD_IN_QUERY.sub(r"\g<head>***", _PASSWORD_IN_URL.sub(r"\g<head>***@", url))


def _scheme(url: str) -> tuple[str, str | None]:
    """The dialect and driver of a SQLAlchemy URL (``postgresql+psycopg://`` gives both)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    dialect, _, driver = scheme.partition("+")
    return dialect, driver or None


def install_command(url: str, module: str | None = None) -> str:
    """What to install for ``url``: the ``sql`` extra plus its driver (``module``, when known, names it)."""
    dialect, driver = _scheme(url)
    driver = (module or driver or _DEFAULT_DRIVERS.get(dialect) or "").split(".")[0].lower()
    if not driver or dialect == "sqlite":
        return INSTALL
    return f"{INSTALL} {_DRIVER_PACKAGES.get(driver, driver)}"


# -- databases ----------------------------------------------------------------------------


class Rows:
    """The result of one statement: its columns (None when it returns no rows) and its rows, fetched in batches."""

    def __init__(
        self, db: "Database", doing: str, query: str, columns: list[str] | None, rowcount: int,
        fetch: Callable[[int], list[tuple[Any, ...]]], close: Callable[[], None],
    ) -> None:
        self.db, self.doing, self.query = db, doing, query
        self.columns, self.rowcount = columns, rowcount
        self._fetch, self._close = fetch, close

    def fetch(self, size: int) -> list[tuple[Any, ...]]:
        """Up to ``size`` more rows; ``[]`` at the end."""
        with self.db.errors(self.doing, self.query):
            return self._fetch(size)

    def close(self) -> None:
        with self.db.errors(self.doing, self.query):
            self._close()


class Database:
    """One open connection, as the tasks use it; :class:`SqliteDatabase` or :class:`AlchemyDatabase`.

    A context manager: leaving it rolls back whatever was not committed and closes the connection.
    """

    label: str
    watch: Watch

    # -- what the subclasses provide

    def execute(self, query: str, parameters: Mapping[str, Any], doing: str) -> Rows:
        raise NotImplementedError

    def begin(self) -> None:
        """Start the transaction the next statements belong to."""

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def table_columns(self, table: str) -> list[str] | None:
        """The columns of ``table``, None when it does not exist."""
        raise NotImplementedError

    def create_table(self, table: str, columns: Sequence[str], sample: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def delete_rows(self, table: str) -> None:
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def describe(self, exc: BaseException) -> tuple[str, bool, str]:
        """The database's message for ``exc``, whether a retry may help, and a hint."""
        raise NotImplementedError

    # -- shared

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.rollback()
        except Exception:  # the connection may be gone; closing is all that is left
            pass
        finally:
            self.close()

    def failure(self, exc: BaseException, doing: str, query: str | None = None) -> SqlFailure:
        """The attempt's end for ``exc``, raised while ``doing`` something on this database."""
        if isinstance(exc, SqlFailure):
            return exc
        if self.watch.reason is not None:
            return self.watch.failure(self.label)
        message, retriable, hint = self.describe(exc)
        text = f"{self.label}: {doing} failed: {message}"
        if query is not None:
            text += f"; the query was: {_shorten(query)}"
        if hint:
            text += f". {hint[0].upper()}{hint[1:]}"
        return SqlFailure(text, retriable=retriable)

    @contextmanager
    def errors(self, doing: str, query: str | None = None) -> Iterator[None]:
        """Turn whatever the database raises inside into a :class:`SqlFailure` that says what was done."""
        try:
            yield
        except SqlFailure:
            raise
        except Exception as exc:
            raise self.failure(exc, doing, query) from None


# -- SQLite ---------------------------------------------------------------------------------

_SQLITE_RETRIABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PROTOCOL")
_MISSING_BIND = re.compile(r"binding parameter :(\w+)")
_NEEDS_NAMES = ("has no name", "Incorrect number of bindings")


def _sqlite_hint(message: str, code: str) -> str:
    """How to fix what SQLite said."""
    missing = _MISSING_BIND.search(message)
    if missing:
        return f"add \"{missing[1]}\" to 'parameters' (every :name in the query needs a value there)"
    if any(text in message for text in _NEEDS_NAMES):
        return "use named :name placeholders and give their values in 'parameters'; ? placeholders are not supported"
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return ("another connection holds a lock on the database; the task is tried again when it has"
                " 'retries' left")
    if code.startswith("SQLITE_CANTOPEN"):
        return "check the path: its folder must exist and be writable"
    if code.startswith("SQLITE_CONSTRAINT"):
        return "the data breaks a constraint of the table (UNIQUE, NOT NULL, CHECK or FOREIGN KEY); nothing was written"
    if code.startswith("SQLITE_READONLY"):
        return "the database cannot be written (a read-only file or folder, or the source of a copy)"
    if "syntax error" in message or "incomplete input" in message:
        return "fix the SQL; it runs exactly as written, with values passed separately as :name placeholders"
    return ""


def describe_sqlite(exc: BaseException) -> tuple[str, bool, str]:
    """SQLite's message for ``exc``, whether it is worth a retry, and a hint."""
    message = str(exc)
    if "one statement at a time" in message:
        return ("the query holds more than one statement", False,
                "give one statement per sql task: put the others in tasks of their own, joined by edges")
    code = getattr(exc, "sqlite_errorname", "") or ""
    return message, code.startswith(_SQLITE_RETRIABLE), _sqlite_hint(message, code)


class SqliteDatabase(Database):
    """A SQLite file through :mod:`sqlite3`, in autocommit mode: each statement is atomic on its own,
    and :meth:`begin` opens an explicit transaction (``BEGIN IMMEDIATE``) for copies."""

    def __init__(self, path: str, watch: Watch, *, read_only: bool = False) -> None:
        self.path, self.watch = path, watch
        self.label = f"SQLite database {path}"
        self.adapt_values = False  # set when the rows come from another driver
        busy = min(MAX_BUSY_SECONDS, max(0.05, watch.remaining()))
        target = f"file:{urllib.parse.quote(path)}?mode=ro" if read_only else path
        with self.errors("opening it"):
            self.conn = sqlite3.connect(target, timeout=busy, isolation_level=None, uri=read_only)
        self.conn.set_progress_handler(watch.progress, PROGRESS_STEPS)

    def execute(self, query: str, parameters: Mapping[str, Any], doing: str) -> Rows:
        with self.errors(doing, query):
            cursor = self.conn.execute(query, parameters)
        columns = None if cursor.description is None else [d[0] for d in cursor.description]
        return Rows(self, doing, query, columns, cursor.rowcount, cursor.fetchmany, cursor.close)

    def begin(self) -> None:
        with self.errors("starting a transaction"):
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        with self.errors("committing"):
            self.conn.commit()

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()

    def describe(self, exc: BaseException) -> tuple[str, bool, str]:
        message, retriable, hint = describe_sqlite(exc)
        if "no such table" in message:
            hint = self._tables_hint()
        return message, retriable, hint

    def _tables_hint(self) -> str:
        try:
            names = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")]
        except sqlite3.Error:
            return "check the table's name"
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return f"check the table's name; this database has: {shown}" if names else \
            "this database has no tables yet: create them first (or check the path)"

    def table_columns(self, table: str) -> list[str] | None:
        schema, name = _split_table(table)
        prefix = f"{quote_identifier(schema)}." if schema else ""
        with self.errors(f"looking up table {table}"):
            rows = self.conn.execute(f"PRAGMA {prefix}table_info({quote_identifier(name)})").fetchall()
        return [r[1] for r in rows] or None

    def create_table(self, table: str, columns: Sequence[str], sample: Sequence[Sequence[Any]]) -> None:
        types = [_sqlite_type(_first_value(sample, i)) for i in range(len(columns))]
        body = ", ".join(f"{quote_identifier(c)} {t}".rstrip() for c, t in zip(columns, types))
        statement = f"CREATE TABLE {_qualified(table)} ({body})"
        with self.errors(f"creating table {table}", statement):
            self.conn.execute(statement)

    def delete_rows(self, table: str) -> None:
        with self.errors(f"deleting the rows of {table}"):
            self.conn.execute(f"DELETE FROM {_qualified(table)}")

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        names = ", ".join(quote_identifier(c) for c in columns)
        statement = f"INSERT INTO {_qualified(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"
        if self.adapt_values:
            rows = [tuple(map(_sqlite_value, row)) for row in rows]
        with self.errors(f"inserting into {table}"):
            self.conn.executemany(statement, rows)

    def shares_file_with(self, other: Database) -> bool:
        """Whether ``other`` is a connection to the same SQLite file."""
        if not isinstance(other, SqliteDatabase) or ":memory:" in (self.path, other.path):
            return False
        try:
            return os.path.samefile(self.path, other.path)
        except OSError:
            return False


def _first_value(rows: Sequence[Sequence[Any]], index: int) -> Any:
    """The first value that is not NULL in column ``index`` of ``rows``."""
    for row in rows:
        if row[index] is not None:
            return row[index]
    return None


def _sqlite_type(value: Any) -> str:
    """A column type for SQLite from a sample value; '' (no type: values kept as they come) when unknown."""
    if isinstance(value, (bool, int)):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, (str, dict, list, _dt.date, _dt.time)):
        return "TEXT"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "BLOB"
    return ""


# -- other databases, through SQLAlchemy ------------------------------------------------------


def _import_sqlalchemy(url: str) -> Any:
    try:
        return importlib.import_module("sqlalchemy")
    except ImportError:
        raise SqlFailure(
            f"'url' {hide_password(url)} needs SQLAlchemy, which is not installed; install it into the"
            f" environment Taskloom runs in: {install_command(url)}. SQLite files need nothing: give"
            " 'database' with the file's path instead"
        ) from None


class AlchemyDatabase(Database):
    """A database reached through a SQLAlchemy URL; one connection, one transaction."""

    def __init__(self, url: str, watch: Watch) -> None:
        self.watch = watch
        self.label = f"database {hide_password(url)}"
        self.sa = _import_sqlalchemy(url)
        self.engine = self._engine(url)
        with self.errors("connecting"):
            self.conn = self.engine.connect()
        self._raw = self.conn.connection.dbapi_connection
        self._closed = threading.Event()
        threading.Thread(target=self._interrupt_when_stopped, name="sql-watch", daemon=True).start()

    def _engine(self, url: str) -> Any:
        sa = self.sa
        try:
            return sa.create_engine(url, poolclass=sa.pool.NullPool)
        except ImportError as exc:
            raise SqlFailure(
                f"the driver for {self.label} is not installed ({exc}); install it into the environment"
                f" Taskloom runs in: {install_command(url, getattr(exc, 'name', None))}"
            ) from None
        except sa.exc.NoSuchModuleError:
            dialect, driver = _scheme(url)
            raise SqlFailure(
                f"SQLAlchemy knows no database kind {dialect + ('+' + driver if driver else '')!r} (from 'url'"
                f" {hide_password(url)}); use e.g. postgresql+psycopg://, mysql+pymysql:// or sqlite:///path"
            ) from None
        except sa.exc.ArgumentError as exc:
            raise SqlFailure(
                f"'url' {hide_password(url)} is not a SQLAlchemy URL ({exc}); write"
                " dialect+driver://user:password@host:port/database"
            ) from None

    def _interrupt_when_stopped(self) -> None:
        """Cancel the running statement when the attempt is cancelled or times out, if the driver can."""
        while not self._closed.wait(WATCH_SECONDS):
            if self.watch.stopped():
                for name in ("cancel", "interrupt"):  # psycopg, oracledb / sqlite3
                    method = getattr(self._raw, name, None)
                    if callable(method):
                        try:
                            method()
                        except Exception:  # already finished or closed: nothing to stop
                            pass
                        return
                return

    def execute(self, query: str, parameters: Mapping[str, Any], doing: str) -> Rows:
        statement = self.sa.text(query).execution_options(stream_results=True)
        with self.errors(doing, query):
            result = self.conn.execute(statement, dict(parameters))
        if not result.returns_rows:
            return Rows(self, doing, query, None, result.rowcount, lambda size: [], result.close)
        return Rows(self, doing, query, list(result.keys()), result.rowcount,
                    lambda size: [tuple(r) for r in result.fetchmany(size)], result.close)

    def commit(self) -> None:
        with self.errors("committing"):
            self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self._closed.set()
        self.conn.close()
        self.engine.dispose()

    def describe(self, exc: BaseException) -> tuple[str, bool, str]:
        sa_exc = self.sa.exc
        orig = getattr(exc, "orig", None)
        if isinstance(orig, sqlite3.Error):
            return describe_sqlite(orig)
        message = " ".join(_BACKGROUND.sub("", str(orig if orig is not None else exc)).split())
        retriable = isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                                     sa_exc.TimeoutError)) or bool(getattr(exc, "connection_invalidated", False))
        if isinstance(exc, sa_exc.IntegrityError):
            hint = "the data breaks a constraint of the table (unique, not null, check or foreign key); nothing was written"
        elif isinstance(exc, sa_exc.ProgrammingError):
            hint = "fix the SQL; it runs exactly as written, with values passed separately as :name placeholders"
        elif "required for bind parameter" in message:
            hint = "every :name in the query needs a value in 'parameters'"
        elif retriable:
            hint = "a connection or locking problem; the task is tried again when it has 'retries' left"
        else:
            hint = ""
        return message, retriable, hint

    def _table(self, table: str, columns: Sequence[str], types: Sequence[Any] | None = None) -> Any:
        sa = self.sa
        schema, name = _split_table(table)
        types = types or [None] * len(columns)
        return sa.Table(name, sa.MetaData(), *(sa.Column(c, t) for c, t in zip(columns, types)), schema=schema)

    def table_columns(self, table: str) -> list[str] | None:
        schema, name = _split_table(table)
        with self.errors(f"looking up table {table}"):
            inspector = self.sa.inspect(self.conn)
            if not inspector.has_table(name, schema=schema):
                return None
            return [c["name"] for c in inspector.get_columns(name, schema=schema)]

    def create_table(self, table: str, columns: Sequence[str], sample: Sequence[Sequence[Any]]) -> None:
        types = [_alchemy_type(self.sa, _first_value(sample, i)) for i in range(len(columns))]
        with self.errors(f"creating table {table}"):
            self._table(table, columns, types).create(self.conn)

    def delete_rows(self, table: str) -> None:
        with self.errors(f"deleting the rows of {table}"):
            self.conn.execute(self._table(table, []).delete())

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        values = [dict(zip(columns, map(_alchemy_value, row))) for row in rows]
        with self.errors(f"inserting into {table}"):
            self.conn.execute(self._table(table, columns).insert(), values)


def _alchemy_type(sa: Any, value: Any) -> Any:
    """A SQLAlchemy column type from a sample value (text when unknown)."""
    kinds: list[tuple[type | tuple[type, ...], Any]] = [
        (bool, sa.Boolean), (int, sa.BigInteger), (float, sa.Float), (decimal.Decimal, sa.Numeric),
        ((bytes, bytearray, memoryview), sa.LargeBinary), (_dt.datetime, None), (_dt.date, sa.Date),
        (_dt.time, sa.Time),
    ]
    for kind, column_type in kinds:
        if isinstance(value, kind):
            if column_type is None:  # a datetime: keep its time zone when it has one
                return sa.DateTime(timezone=value.tzinfo is not None)
            return column_type
    return sa.Text


# -- opening -----------------------------------------------------------------------------------


def _sqlite_path(ctx: AttemptContext, database: Any) -> str:
    path = str(database)
    if path == ":memory:":
        return path
    return os.path.normpath(os.path.join(ctx.cwd, os.path.expanduser(path)))


def connect(
    ctx: AttemptContext, watch: Watch, database: Any, url: Any, *, names: tuple[str, str] = ("database", "url"),
    source: bool = False,
) -> Database:
    """Open the database a task names with ``database`` (a SQLite path) or ``url``.

    ``names`` are the two parameters' names (``target_database``, ``target_url`` for a copy's target).
    The source of a copy (``source``) must exist and is opened read-only.
    """
    if database not in (None, "") and url not in (None, ""):
        raise SqlFailure(f"give either '{names[0]}' or '{names[1]}', not both")
    if url not in (None, ""):
        return AlchemyDatabase(str(url), watch)
    if database in (None, ""):
        raise SqlFailure(f"give '{names[0]}' (a SQLite file's path) or '{names[1]}' (a SQLAlchemy URL)")
    path = _sqlite_path(ctx, database)
    if source and path != ":memory:" and not os.path.isfile(path):
        raise SqlFailure(
            f"the source SQLite database {path} does not exist; check '{names[0]}'"
            f" (a relative path is resolved against the working directory {ctx.cwd})"
        )
    return SqliteDatabase(path, watch, read_only=source and path != ":memory:")


# -- the sql task -----------------------------------------------------------------------------


def run(ctx: AttemptContext) -> AttemptResult:
    """The ``sql`` task: run ``query`` with ``parameters`` on ``database`` or ``url``."""
    params = ctx.params
    watch = Watch(ctx.cancel, ctx.timeout)
    query = str(params["query"])
    try:
        binds = bind_parameters(params.get("parameters"))
        with connect(ctx, watch, params.get("database"), params.get("url")) as db:
            ctx.log("system", f"running the query on {db.label}")
            output = _run_statement(db, query, binds, int(params.get("max_rows", DEFAULT_MAX_ROWS)))
    except SqlFailure as failure:
        return failure.result()
    ctx.log("system", _summary(output))
    return AttemptResult(TaskState.SUCCEEDED, output=output)


def _run_statement(db: Database, query: str, binds: Mapping[str, Any], max_rows: int) -> dict[str, Any]:
    rows = db.execute(query, binds, "the query")
    output = {"rowcount": rows.rowcount} if rows.columns is None else _collect(rows, max_rows)
    rows.close()
    db.commit()
    return output


def _collect(rows: Rows, max_rows: int) -> dict[str, Any]:
    """The output of a statement that returns rows: the first ``max_rows`` of them, and how many there were."""
    columns = unique_names(rows.columns or [])
    kept: list[dict[str, Any]] = []
    count = 0
    while batch := rows.fetch(FETCH_SIZE):
        room = max_rows - len(kept)
        if room > 0:
            kept.extend(dict(zip(columns, map(json_value, row))) for row in batch[:room])
        count += len(batch)
    return {"rows": kept, "count": count, "truncated": count > len(kept), "columns": columns}


def _summary(output: Mapping[str, Any]) -> str:
    if "rowcount" in output:
        n = output["rowcount"]
        return "done (the statement reports no row count)" if n < 0 else f"{n} row(s) affected"
    kept = len(output["rows"])
    return f"{output['count']} row(s) returned" + (f", the first {kept} kept" if output["truncated"] else "")


# -- the sql_copy task ----------------------------------------------------------------------------


def run_copy(ctx: AttemptContext) -> AttemptResult:
    """The ``sql_copy`` task: copy the rows of ``query`` into ``table``, all or nothing."""
    params = ctx.params
    watch = Watch(ctx.cancel, ctx.timeout)
    table, mode = str(params["table"]), str(params.get("mode", "append"))
    try:
        binds = bind_parameters(params.get("parameters"))
        with connect(ctx, watch, params.get("database"), params.get("url"), source=True) as source, \
                connect(ctx, watch, params.get("target_database"), params.get("target_url"),
                        names=("target_database", "target_url")) as target:
            copied = _copy(ctx, source, target, binds)
    except SqlFailure as failure:
        return failure.result()
    return AttemptResult(TaskState.SUCCEEDED, output={"rows_copied": copied, "table": table, "mode": mode})


def _copy(ctx: AttemptContext, source: Database, target: Database, binds: Mapping[str, Any]) -> int:
    """Stream the query's rows into the target table in one target transaction; the number copied."""
    params, watch = ctx.params, target.watch
    table, mode = str(params["table"]), str(params.get("mode", "append"))
    batch_size = int(params.get("batch_size", DEFAULT_BATCH_SIZE))
    _prepare_connections(ctx, source, target)
    ctx.log("system", f"copying from {source.label} into table {table} of {target.label} ({mode})")
    target.begin()
    rows = source.execute(str(params["query"]), binds, "the source query")
    if rows.columns is None:
        raise SqlFailure(
            f"the source query on {source.label} returned no rows to copy; give a query that returns rows,"
            " e.g. SELECT id, name FROM users WHERE id > :mark"
        )
    columns = unique_names(rows.columns)
    batch = rows.fetch(batch_size)
    _prepare_table(ctx, target, table, columns, batch)
    copied = number = 0
    while batch:
        if watch.stopped():
            raise watch.failure(target.label)
        target.insert_rows(table, columns, batch)
        copied, number = copied + len(batch), number + 1
        ctx.log("system", f"batch {number}: {len(batch)} row(s) inserted, {copied} so far")
        batch = rows.fetch(batch_size)
    rows.close()
    if watch.stopped():
        raise watch.failure(target.label)
    target.commit()
    ctx.log("system", f"committed {copied} row(s) into {table}")
    return copied


def _prepare_connections(ctx: AttemptContext, source: Database, target: Database) -> None:
    """Let the two connections work together: values of another driver, one SQLite file read and written."""
    if isinstance(target, SqliteDatabase):
        target.adapt_values = not isinstance(source, SqliteDatabase)
        if target.shares_file_with(source):
            # The source's read lock would block the target from spilling its changes to the file
            # until the busy timeout; keep them in memory until the commit instead.
            with target.errors("preparing the connection"):
                target.conn.execute("PRAGMA cache_spill = OFF")
            ctx.log("system", "source and target are the same file: the copy is held in memory until it commits")


def _prepare_table(
    ctx: AttemptContext, target: Database, table: str, columns: list[str], sample: list[tuple[Any, ...]]
) -> None:
    """Create the target table when it is missing (and allowed), or check it and empty it for ``replace``."""
    params = ctx.params
    existing = target.table_columns(table)
    if existing is None:
        if not params.get("create", True):
            raise SqlFailure(
                f"table {table} does not exist in {target.label}; create it first, or set \"create\": true"
            )
        target.create_table(table, columns, sample)
        ctx.log("system", f"created table {table} with columns {', '.join(columns)}")
        return
    known = {name.lower() for name in existing}
    missing = [c for c in columns if c.lower() not in known]
    if missing:
        raise SqlFailure(
            f"table {table} in {target.label} has no column {', '.join(repr(c) for c in missing)}; its columns"
            f" are {', '.join(existing)}. Name the query's columns after them with AS, or copy into a new table"
        )
    if params.get("mode", "append") == "replace":
        target.delete_rows(table)
        ctx.log("system", f"deleted the rows of {table} (mode replace; undone if the copy fails)")
