"""The PostgreSQL store: the same storage API and the same statements as SQLite's, on a server many hosts share.

Chosen by a URL (``--database postgresql://user@host/db`` or
``TASKLOOM_DATABASE_URL``); :func:`taskloom.storage.db.connect` opens a
:class:`PgDatabase` for it, and every storage module runs on it unchanged:
it offers the part of sqlite-utils' ``Database`` that storage uses
(``execute``, ``conn.executemany``, ``conn.in_transaction``, ``conn.close``).

Statements are written once, in words both backends share; :func:`translate`
makes the few differences (placeholders, ``LIKE`` and one date function)
when a statement is first used, and caches the result.

One writer at a time. :meth:`PgDatabase.write_txn` takes one
transaction-scoped advisory lock (:data:`WRITE_LOCK`) right after ``BEGIN``:
write transactions are serialised exactly as SQLite's ``BEGIN IMMEDIATE``
serialises them, across every host, so every compare-and-set the store makes
(the scheduler lease and its fencing token, a firing's claim, a run's owner)
keeps the argument it has on SQLite. Reads never take the lock (MVCC). A
transaction that ends without a COMMIT (its process died, its network was
cut) releases the lock when the server ends the session: every session sets
``idle_in_transaction_session_timeout`` and TCP keepalives so that happens
within seconds (:data:`SESSION_SETTINGS`).

Waking other processes. Every write transaction sends ``NOTIFY`` on
:data:`CHANNEL` as it commits; :class:`PgChangeWatch` (the scheduler's
watcher) listens, as SQLite's change counter is watched on one host.

Connections come from one ``psycopg_pool`` pool per URL and process: the
REST API opens a store per request, and taking a pooled connection costs no
round trip. The schema is brought up to date once per URL and process.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from taskloom.core.errors import StorageError
from taskloom.storage import failpoints
from taskloom.storage.schema_state import DatabaseUrlError, apply_changes, without_password

__all__ = ["PgDatabase", "PgChangeWatch", "open_postgres", "translate", "WRITE_LOCK", "CHANNEL", "SESSION_SETTINGS",
           "pg_storage_error"]

log = logging.getLogger("taskloom.storage")

#: The advisory lock every write transaction holds ("tlwrite").
WRITE_LOCK = 0x746C7772697465
#: The channel write transactions notify on commit.
CHANNEL = "taskloom_changes"
#: Per-session settings: a dead or cut-off client's transaction (and the write lock) ends within seconds.
SESSION_SETTINGS = {
    "idle_in_transaction_session_timeout": "15s",
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
#: libpq's own side of the same: connecting and noticing a dead server take seconds, not the OS's minutes.
CLIENT_SETTINGS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2",
                   "keepalives_count": "3", "tcp_user_timeout": "10000", "application_name": "taskloom"}

#: How long taking a connection from the pool may wait: one connect attempt's time. A server that is down then
#: stops a run (and shows in the scheduler's log) within seconds rather than after the pool's default 30 s.
POOL_WAIT = 10.0

_WAIT_NOTICE_EVERY = 10.0
#: A session waiting for the write lock leaves the server's queue and joins it again this often (seconds). A host
#: cut off from the network cannot join again, so its waiters are out of the queue within one step: otherwise the
#: server, dropping the cut-off holder, grants the lock to the cut-off host's next waiter, whose answer then waits
#: for its dead connection's retransmission timeout (``tcp_user_timeout``, 10 s more per waiter; tests/test_multihost.py).
_LOCK_WAIT_STEP = 1.0


# -- statements -------------------------------------------------------------------------------------


_DATE_UNIXEPOCH = re.compile(r"\bdate\((\w+), 'unixepoch'\)")
_LIKE = re.compile(r"\bLIKE\b")


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """A statement written for both backends, in PostgreSQL's words.

    * ``?`` placeholders become ``%s`` (and a literal ``%`` becomes ``%%``),
      outside quoted literals and identifiers;
    * ``LIKE`` becomes ``ILIKE``: SQLite's ``LIKE`` ignores the case of ASCII letters;
    * ``date(X, 'unixepoch')`` becomes the UTC day of ``X`` as ``YYYY-MM-DD``.

    >>> translate("SELECT id FROM runs WHERE workflow LIKE ? ESCAPE '\\\\' AND status = 'a?'")
    "SELECT id FROM runs WHERE workflow ILIKE %s ESCAPE '\\\\' AND status = 'a?'"
    """
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
            continue
        if char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    text = "".join(out)
    text = _LIKE.sub("ILIKE", text)
    return _DATE_UNIXEPOCH.sub(r"to_char(to_timestamp(\1) AT TIME ZONE 'UTC', 'YYYY-MM-DD')", text)


# -- errors -----------------------------------------------------------------------------------------


def pg_storage_error(exc: Exception, location: str, doing: str = "write to") -> StorageError | None:
    """The :class:`StorageError` for a psycopg error about the server or the connection; None for others."""
    import psycopg
    from psycopg import errors

    if isinstance(exc, errors.DiskFull):
        reason, kind = "the server's disk is full", "full"
        advice = "free space on the database server, then try again"
    elif isinstance(exc, errors.ReadOnlySqlTransaction):
        reason, kind = "the database is read-only (a standby, or default_transaction_read_only)", "readonly"
        advice = "point --database at the primary server, or make the database writable"
    elif isinstance(exc, errors.LockNotAvailable):
        reason, kind = "another session held the write lock too long", "locked"
        advice = ("see which with: SELECT pid, state, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                  " OR state LIKE 'idle in transaction%'")
    elif isinstance(exc, (errors.InsufficientPrivilege,)):
        reason, kind = "this user may not write to it", "readonly"
        advice = "grant the user rights on the database's tables (the owner of the database has them)"
    elif isinstance(exc, (psycopg.OperationalError, errors.AdminShutdown, errors.IdleInTransactionSessionTimeout)):
        reason, kind = "the server cannot be reached or closed the connection", "io"
        advice = "check that the server runs and this host can reach it; Taskloom reconnects on its own"
    elif isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc):
        reason, kind = "the connection to the server was closed", "io"
        advice = "check that the server runs and this host can reach it; Taskloom reconnects on its own"
    else:
        return None
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"cannot {doing} database {location}: {reason} ({detail}); {advice}", path=location,
                        kind=kind, reason=reason, fix=advice)


# -- connections ------------------------------------------------------------------------------------


_pools: dict[str, Any] = {}
_migrated: set[str] = set()
_pools_lock = threading.Lock()


def _configure(conn: Any) -> None:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format  # noqa: F401  (text format is the default)

    class _BoolAsInt(Dumper):
        """Booleans stored as 0/1 integers, as SQLite stores them (the schema's flags are INTEGER)."""

        oid = 20  # int8

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.autocommit = True
    for name, value in SESSION_SETTINGS.items():
        conn.execute(f"SET {name} = '{value}'")


def _conninfo(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    given = conninfo_to_dict(url)
    extra = {k: v for k, v in CLIENT_SETTINGS.items() if k not in given}
    return make_conninfo(url, **extra)


def _pool(url: str) -> Any:
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None or pool.closed or pool._pid != os.getpid():
            try:
                from psycopg_pool import ConnectionPool
            except ImportError:
                raise DatabaseUrlError("a postgresql:// database needs the PostgreSQL driver: install"
                                       " taskloom[postgres] (pip install 'taskloom[postgres]')") from None
            pool = ConnectionPool(_conninfo(url), min_size=0, max_size=int(os.environ.get("TASKLOOM_PG_POOL", "20")),
                                  configure=_configure, open=True, timeout=POOL_WAIT, name=f"taskloom-{os.getpid()}",
                                  check=ConnectionPool.check_connection)
            pool._pid = os.getpid()  # type: ignore[attr-defined]  # a forked child builds its own
            _pools[url] = pool
        return pool


def close_pool(url: str) -> None:
    """Close this process's connections to ``url`` (a process that is done with one database of many)."""
    with _pools_lock:
        pool = _pools.pop(url, None)
    if pool is not None and getattr(pool, "_pid", None) == os.getpid():
        pool.close(timeout=5)


@atexit.register
def _close_pools() -> None:
    for pool in list(_pools.values()):
        try:
            if getattr(pool, "_pid", None) == os.getpid():
                pool.close(timeout=1)
        except Exception:  # exiting anyway
            pass
    _pools.clear()


def open_postgres(url: str, *, lock_timeout: float) -> "PgDatabase":
    """A store on the PostgreSQL database at ``url``, its schema brought up to date (once per process)."""
    location = without_password(url)
    if url not in _migrated:
        apply_changes(url)
        _migrated.add(url)
    db = PgDatabase(url, location, lock_timeout=lock_timeout)
    db.connection()  # fail here, with the server's reason, rather than on the first statement
    return db


class _Conn:
    """The sqlite3-connection-shaped face of a :class:`PgDatabase` (what storage calls on ``db.conn``)."""

    def __init__(self, db: "PgDatabase") -> None:
        self._db = db

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> None:
        self._db.executemany(sql, rows)

    def close(self) -> None:
        self._db.close()


class PgDatabase:
    """A Taskloom store on PostgreSQL: one pooled connection, used by one process's threads under :attr:`lock`."""

    backend = "postgresql"

    def __init__(self, url: str, location: str, *, lock_timeout: float) -> None:
        self.url = url
        self.taskloom_path = location  # what messages name (the URL without its password)
        self.lock_timeout = lock_timeout
        self.lock = threading.RLock()
        self.conn = _Conn(self)
        self._raw: Any = None

    # -- the connection ---------------------------------------------------

    def connection(self) -> Any:
        """The connection, taken from the pool again when the last one broke (outside a transaction only)."""
        raw = self._raw
        if raw is not None and not raw.closed and not raw.broken:
            return raw
        if raw is not None:
            self._give_back()
        try:
            self._raw = _pool(self.url).getconn()
        except Exception as exc:
            raise self._error(exc, "open") from None
        return self._raw

    def _give_back(self) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        try:
            _pool(self.url).putconn(raw)
        except Exception:  # a broken connection the pool cannot take back
            try:
                raw.close()
            except Exception:
                pass

    def close(self) -> None:
        with self.lock:
            self._give_back()

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        raw = self._raw
        return raw is not None and not raw.closed and raw.info.transaction_status != TransactionStatus.IDLE

    def _error(self, exc: Exception, doing: str = "write to") -> Exception:
        return pg_storage_error(exc, self.taskloom_path, doing) or exc

    # -- statements -------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        import psycopg

        with self.lock:
            conn = self.connection()
            try:
                return conn.execute(translate(sql), list(params) if params else None)
            except psycopg.Error as exc:
                raise self._error(exc, "read" if sql.lstrip()[:6].upper() == "SELECT" else "write to") from None

    def executemany(self, sql: str, rows: Any) -> None:
        import psycopg

        with self.lock:
            conn = self.connection()
            try:
                with conn.cursor() as cursor:
                    cursor.executemany(translate(sql), [list(r) for r in rows])
            except psycopg.Error as exc:
                raise self._error(exc) from None

    # -- write transactions ----------------------------------------------

    @contextmanager
    def write_txn(self, *, durable: bool = True, on_begin: Callable[[], None] | None = None) -> Iterator["PgDatabase"]:
        """A write transaction holding :data:`WRITE_LOCK`; nested calls join the outer one (as on SQLite)."""
        import psycopg

        with self.lock:
            if self.in_transaction:
                yield self
                return
            conn = self.connection()
            try:
                conn.execute("BEGIN")
                self._take_write_lock(conn)
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, psycopg.Error):
                    raise self._error(exc) from None
                raise
            try:
                if on_begin is not None:
                    on_begin()
                yield self
                failpoints.hit("storage.commit")
                conn.execute("SELECT pg_notify(%s, '')", [CHANNEL])
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                self._rollback()
                raise self._error(exc) from None
            except BaseException:
                self._rollback()
                raise

    def _take_write_lock(self, conn: Any) -> None:
        """Wait for the write lock up to the lock timeout, logging while another session holds it."""
        from psycopg import errors

        started = time.monotonic()
        noticed = 0.0
        while True:
            left = self.lock_timeout - (time.monotonic() - started)
            step = max(0.001, min(_LOCK_WAIT_STEP, left))
            conn.execute(f"SET LOCAL lock_timeout = '{int(step * 1000)}ms'")
            try:
                conn.execute("SAVEPOINT taskloom_lock")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
                conn.execute("RELEASE SAVEPOINT taskloom_lock")
                conn.execute("SET LOCAL lock_timeout = 0")
                return
            except errors.LockNotAvailable:
                conn.execute("ROLLBACK TO SAVEPOINT taskloom_lock")
                waited = time.monotonic() - started
                if waited >= self.lock_timeout:
                    raise StorageError(
                        f"cannot write to database {self.taskloom_path}: another session held the write lock for"
                        f" {waited:.1f} s (TASKLOOM_LOCK_TIMEOUT is {self.lock_timeout:g} s); see which with:"
                        " SELECT pid, state, query FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
                        path=self.taskloom_path, kind="locked",
                        reason=f"another session held the write lock for {waited:.1f} s",
                        fix="see which in pg_stat_activity",
                    ) from None
                if waited - noticed >= _WAIT_NOTICE_EVERY:
                    noticed = waited
                    log.warning("waiting for the write lock on %s: another session holds it (waited %.1f s so far;"
                                " giving up after %g s)", self.taskloom_path, waited, self.lock_timeout)

    def _rollback(self) -> None:
        raw = self._raw
        if raw is None or raw.closed:
            return
        try:
            raw.execute("ROLLBACK")
        except Exception:  # the connection broke: the server rolls back when the session ends
            self._give_back()


class PgChangeWatch:
    """Tells when another process committed to the database: ``LISTEN`` on :data:`CHANNEL`, on a connection of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None

    def _listen(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(_conninfo(self.url), autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def wait(self, timeout: float) -> bool:
        """Whether a commit was announced within ``timeout`` seconds (False also while the server is unreachable)."""
        import psycopg

        try:
            conn = self._listen()
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                # drain what else arrived meanwhile: one wake-up covers them all
                for _ in conn.notifies(timeout=0.0):
                    pass
                return True
            return False
        except psycopg.Error:
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
