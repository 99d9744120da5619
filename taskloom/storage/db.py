"""Opening the SQLite database: pragmas, write transactions, migrations.

Every connection runs in autocommit mode (``isolation_level=None``) and every
write goes through :func:`write_txn`, which starts with ``BEGIN IMMEDIATE``:
the write lock is taken up front, so a write never fails half-way with
SQLITE_BUSY because a read snapshot went stale (sqlite.org/lang_transaction.html
§2.1).

Waiting for the write lock. SQLite's busy handler waits up to the busy
timeout (``TASKLOOM_BUSY_TIMEOUT_MS``, default 30 000 ms) for another
process to release the lock; when that is not enough, :func:`write_txn` tries
again until ``TASKLOOM_LOCK_TIMEOUT`` seconds (default 300) have passed since
it first asked, logging a warning while it waits, and only then gives up with
a :class:`StorageError` that names the database and how to find the holder.
A long backup or a ``sqlite3`` shell left in a transaction delays Taskloom;
it does not crash it.

Errors. SQLite's errors about the file itself (a full disk, a read-only file
or file system, an I/O error, a lock held too long) become
:class:`StorageError`: the message says what failed, names the path and says
how to fix it, and ``kind`` says which it was, for callers that react
differently (the scheduler keeps running and retries; a command prints the
message and exits 1). Other SQLite errors (a constraint, a bug in a query)
are left as they are.

Driver. Connections and the exception classes caught here come from
:mod:`taskloom.storage.sqlite`: ``pysqlite3``'s bundled SQLite where it is installed,
else the standard library's; :func:`sqlite_version_note` warns when that
SQLite has the WAL-reset bug.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Union

from taskloom.core.errors import StorageError

from taskloom.storage import failpoints
from taskloom.storage.groupcommit import Group, Writer
from taskloom.storage.schema_state import is_postgres_url
from taskloom.storage.sqlite import DRIVER, sqlite3, sqlite_utils

__all__ = [
    "connect", "write_txn", "check_writable", "BUSY_TIMEOUT_MS", "LOCK_TIMEOUT", "BUSY_TIMEOUT_ENV", "LOCK_TIMEOUT_ENV",
    "StorageError", "storage_error", "sqlite_version_note", "WAL_RESET_FIXED", "data_version", "watch_changes",
    "ChangeWatch", "Database", "backend_of", "database_location",
]

log = logging.getLogger("taskloom.storage")

#: A Taskloom store: a SQLite file opened through sqlite-utils, or a
#: :class:`taskloom.storage.postgres.PgDatabase`. Storage calls only what both
#: offer: ``execute``, ``conn.executemany``, ``conn.in_transaction``, ``conn.close``.
Database = Union[sqlite_utils.Database, Any]

#: How long one SQLite call waits for another process's write lock (its busy handler), by default.
BUSY_TIMEOUT_MS = 30_000
#: How long :func:`write_txn` keeps trying to get the write lock, in all, by default (seconds).
LOCK_TIMEOUT = 300.0
BUSY_TIMEOUT_ENV = "TASKLOOM_BUSY_TIMEOUT_MS"
LOCK_TIMEOUT_ENV = "TASKLOOM_LOCK_TIMEOUT"
#: While waiting for the lock, a warning at most this often (seconds).
_WAIT_NOTICE_EVERY = 10.0

# SQLite primary result codes (sqlite.org/rescode.html) that are about the file, not the query.
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26

#: SQLite 3.7.0 up to these releases may corrupt a database when two processes
#: write or checkpoint its WAL at once; these are the first fixed release of
#: each line (3.51.3 and every later release; 3.50.7, 3.44.6 as backports).
WAL_RESET_FIXED = ((3, 44, 6), (3, 50, 7), (3, 51, 3))
WAL_RESET_BUG = "the WAL-reset bug (sqlite.org/wal.html#walresetbug)"


def _code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``exc``; guessed from the text when the error carries none."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    for needle, guess in (("disk is full", _FULL), ("readonly", _READONLY), ("read-only", _READONLY),
                          ("is locked", _BUSY), ("disk i/o error", _IOERR), ("malformed", _CORRUPT),
                          ("not a database", _NOTADB), ("unable to open", _CANTOPEN)):
        if needle in text:
            return guess
    return None


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent if not path.exists() else path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _nearly_full(path: Path) -> bool:
    """Less than 64 KiB free for this user where ``path`` lives (SQLite needs room for its -wal and -shm)."""
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 64 * 1024


def storage_error(exc: sqlite3.Error, path: str | Path, doing: str = "write to") -> StorageError | None:
    """The :class:`StorageError` for an SQLite error about the file at ``path``; None for other errors.

    ``doing`` completes "cannot ... PATH" ("write to", "open").
    """
    path = Path(path)
    code = _code(exc)
    if code in (_IOERR, _CANTOPEN) and _nearly_full(path):
        code = _FULL  # a full disk often shows as an I/O error: SQLite cannot grow its -shm file
    if code in (_CANTOPEN, _IOERR) and _read_only_fs(path):
        code = _READONLY
    if code == _FULL:
        reason = "the disk is full"
        advice = f"free space on the file system that holds {path.parent}, then try again"
        kind = "full"
    elif code == _READONLY:
        if _read_only_fs(path):
            reason = "it is on a read-only file system"
            advice = "remount that file system read-write, or set TASKLOOM_HOME to a writable folder"
        else:
            reason = "the database is read-only"
            advice = (f"make {path.name}, its -wal and -shm files and the folder {path.parent} writable"
                      " by this user (chmod u+w)")
        kind = "readonly"
    elif code in (_BUSY, _LOCKED):
        reason = "another process holds the write lock"
        advice = f"see which with: fuser {path}; or raise {LOCK_TIMEOUT_ENV} (seconds)"
        kind = "locked"
    elif code in (_CORRUPT, _NOTADB):
        reason = "the file is damaged or not a Taskloom database"
        advice = "restore it from a backup, or check it with: sqlite3 PATH 'PRAGMA integrity_check'".replace(
            "PATH", str(path))
        kind = "corrupt"
    elif code == _IOERR:
        reason = "the disk reported an I/O error"
        advice = "check the disk and the file system (dmesg), then try again"
        kind = "io"
    elif code == _CANTOPEN:
        reason = "the file cannot be opened"
        advice = f"check that {path.parent} exists and is readable and writable by this user"
        kind = "open"
    else:
        return None
    return StorageError(f"cannot {doing} database {path}: {reason} ({exc}); {advice}", path=path, kind=kind,
                        reason=reason, fix=advice)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StorageError(f"{name}={raw!r} is not a number; set it to a number of "
                           f"{'milliseconds' if name.endswith('_MS') else 'seconds'} or unset it") from None
    return max(0.0, value)


def sqlite_version_note(version: str | None = None, driver: str | None = None) -> str | None:
    """A warning when the SQLite under Taskloom's connections has the WAL-reset bug; None when it is fixed.

    For long-running processes to log at start. ``version`` and ``driver``
    default to the SQLite and the module :mod:`taskloom.storage.sqlite` chose (a fixed
    SQLite bundled by ``pysqlite3`` where its wheel exists, else the one the
    standard library's ``sqlite3`` links).
    """
    version = sqlite3.sqlite_version if version is None else version
    driver = DRIVER if driver is None else driver
    if not _affected_by_wal_reset_bug(_version_tuple(version)):
        return None
    return (
        f"SQLite {version} (through the {driver} module) has {WAL_RESET_BUG}: two processes writing one"
        " database at the same time can corrupt it. Keep to one writing process per database: while this"
        " one runs, do not run, trigger, import or set secrets from another shell. Taskloom needs SQLite"
        " 3.51.3 or later (or 3.50.7+, 3.44.6+). On Linux x86_64, macOS and Windows installing Taskloom"
        " brings one (the pysqlite3 wheel); elsewhere install pysqlite3 built against a fixed SQLite, or use"
        " a Python whose sqlite3 module links one"
    )


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"3.40.1"`` as ``(3, 40, 1)``; a part that is not a number ends it (``"3.53.0-beta"`` is ``(3, 53)``)."""
    parts = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def _affected_by_wal_reset_bug(version: tuple[int, ...]) -> bool:
    if version < (3, 7, 0) or version >= WAL_RESET_FIXED[-1]:
        return False
    return not any(version[:2] == f[:2] and version >= f for f in WAL_RESET_FIXED)


def connect(
    path: str | Path, *, busy_timeout_ms: int | None = None, lock_timeout: float | None = None
) -> Database:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date.

    ``path`` is a SQLite file, or a ``postgresql://`` URL for the PostgreSQL
    store (:mod:`taskloom.storage.postgres`). ``busy_timeout_ms`` and
    ``lock_timeout`` default to ``TASKLOOM_BUSY_TIMEOUT_MS`` and
    ``TASKLOOM_LOCK_TIMEOUT`` when set, else :data:`BUSY_TIMEOUT_MS` and
    :data:`LOCK_TIMEOUT` (see the module docstring). Raises :class:`StorageError`.
    """
    busy_ms = int(_env_number(BUSY_TIMEOUT_ENV, BUSY_TIMEOUT_MS) if busy_timeout_ms is None else busy_timeout_ms)
    lock_s = _env_number(LOCK_TIMEOUT_ENV, LOCK_TIMEOUT) if lock_timeout is None else lock_timeout
    if is_postgres_url(path):
        from taskloom.storage.postgres import open_postgres

        return open_postgres(str(path), lock_timeout=lock_s)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot open database {path}: cannot create its folder ({exc.strerror or exc});"
            " create it or set TASKLOOM_HOME to a writable folder", path=path, kind="open",
            fix="create it or set TASKLOOM_HOME to a writable folder",
        ) from None
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=busy_ms / 1000, check_same_thread=False)
    except sqlite3.Error as exc:
        raise storage_error(exc, path, "open") or StorageError(f"cannot open database {path}: {exc}", path=path) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(exc, path, "open") or StorageError(f"cannot open database {path}: {exc}", path=path) from None
    db = sqlite_utils.Database(conn)
    # One lock per connection: the runner's threads share it.
    db.lock = threading.RLock()  # type: ignore[attr-defined]
    db.writer = _writer_of(path)  # type: ignore[attr-defined]
    db.taskloom_path = path  # type: ignore[attr-defined]
    db.busy_timeout_ms = busy_ms  # type: ignore[attr-defined]
    db.lock_timeout = lock_s  # type: ignore[attr-defined]
    from taskloom.storage.migrations import migrate

    try:
        migrate(db)
    except StorageError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StorageError(f"cannot prepare database {path}: {exc}", path=path) from None
    return db


def backend_of(db: Database) -> str:
    """``"sqlite"`` or ``"postgresql"``: which store ``db`` is."""
    return getattr(db, "backend", "sqlite")


def database_location(db: Database) -> str:
    """What messages call the store: the SQLite file's path, or the URL without its password."""
    return str(_path_of(db)) if backend_of(db) == "sqlite" else db.taskloom_path


_writers: dict[str, Writer] = {}
_writers_lock = threading.Lock()


def _writer_of(path: Path) -> Writer:
    """The lock this process's connections to the SQLite file ``path`` take around a write transaction.

    SQLite lets one connection write at a time, and one that finds the lock
    taken sleeps in its busy handler (1, 2, 5, 10 ms and up) before it asks
    again: with twenty runs of one process writing at once, most of their time
    went to those sleeps. Queued on a lock of this process instead, the next
    writer starts the moment the last one is done, and transactions that
    arrive together share one commit (:mod:`taskloom.storage.groupcommit`);
    other processes still meet SQLite's own lock and busy handler.
    """
    key = os.path.realpath(path)
    with _writers_lock:
        return _writers.setdefault(key, Writer())


def _path_of(db: sqlite_utils.Database) -> Path:
    path = getattr(db, "taskloom_path", None)
    if path is None:  # a Database opened without connect(): ask SQLite
        rows = db.conn.execute("PRAGMA database_list").fetchall()
        path = next((Path(r[2]) for r in rows if r[1] == "main" and r[2]), Path(":memory:"))
    return Path(path)


def check_writable(db: sqlite_utils.Database) -> None:
    """Make one real, durable write (the header's user_version, unchanged); raise :class:`StorageError` if it fails.

    For a long-running process to refuse to start on a read-only or full
    database, rather than failing on its first write.
    """
    with write_txn(db):
        if backend_of(db) == "postgresql":  # refused in a read-only transaction, whatever it matches
            db.execute("UPDATE taskloom_migrations SET applied = applied WHERE false")
            return
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version)}")


@contextmanager
def write_txn(
    db: sqlite_utils.Database, *, durable: bool = True, on_begin: Callable[[], None] | None = None
) -> Iterator[sqlite_utils.Database]:
    """A write transaction opened with ``BEGIN IMMEDIATE``; nested calls join the outer one.

    ``durable=False`` commits without an fsync (``synchronous = NORMAL`` for this
    commit only): the change survives a crash of any process at once, and
    reaches the disk, in order, with the next durable commit. It is for rows
    that matter only while this machine keeps running (an attempt's pid) or
    that a later durable commit depends on anyway (log lines before their
    attempt's end).

    ``on_begin`` runs once, right after ``BEGIN IMMEDIATE`` of the outermost
    transaction (not for nested calls): a check that holds for the whole
    transaction, such as a run's ownership fence.
    """
    if backend_of(db) == "postgresql":
        with db.write_txn(durable=durable, on_begin=on_begin):
            yield db
        return
    lock: threading.RLock = db.lock  # type: ignore[attr-defined]
    with lock:
        if db.conn.in_transaction:
            yield db
            return
        writer: Writer | None = getattr(db, "writer", None)
        # Bounded: past the lock timeout, BEGIN IMMEDIATE meets SQLite's lock and reports it as usual.
        held = writer is not None and writer.acquire(timeout=float(getattr(db, "lock_timeout", LOCK_TIMEOUT)))
        group = writer.take_open() if held else None
        if group is not None:
            with _joined(db, group, writer, on_begin):
                yield db
            return
        if not durable:
            db.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            _begin(db)
            try:
                if on_begin is not None:
                    on_begin()
                yield db
            except sqlite3.Error as exc:  # from the caller's statements
                _rollback(db)
                raise storage_error(exc, _path_of(db)) or exc from None
            except BaseException:
                _rollback(db)
                raise
            if held and durable:
                held = False  # finish() releases it
                writer.finish(Group(db.conn), functools.partial(_commit, db))
            else:
                _commit(db, db.conn)
        finally:
            if not durable:
                db.conn.execute("PRAGMA synchronous = FULL")
            if held:
                writer.release()


def _commit(db: sqlite_utils.Database, conn: Any) -> None:
    """COMMIT the transaction open on ``conn``; roll it back and raise :class:`StorageError` if that fails."""
    try:
        failpoints.hit("storage.commit")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback_conn(conn)
        raise storage_error(exc, _path_of(db)) or exc from None
    except BaseException:
        _rollback_conn(conn)
        raise


@contextmanager
def _joined(db: sqlite_utils.Database, group: Group, writer: Writer,
            on_begin: Callable[[], None] | None) -> Iterator[None]:
    """Run one ``write_txn`` block inside ``group``'s open transaction, under a savepoint of its own
    (:mod:`taskloom.storage.groupcommit`); return once the group is committed."""
    own, db.conn = db.conn, group.conn
    group.members += 1
    try:
        group.conn.execute("SAVEPOINT taskloom_member")
        try:
            if on_begin is not None:
                on_begin()
            yield
        except BaseException as exc:
            error = (storage_error(exc, _path_of(db)) or exc) if isinstance(exc, sqlite3.Error) else exc
            if not group.conn.in_transaction:  # SQLite rolled the whole transaction back (a full disk, an I/O error)
                group.error = error
                assert group.done is not None  # a joined group was handed on
                group.done.set()
                writer.release()
            else:
                group.conn.execute("ROLLBACK TO taskloom_member")
                group.conn.execute("RELEASE taskloom_member")
                try:
                    writer.finish(group, functools.partial(_commit, db))  # the others' changes are still to commit
                except BaseException:
                    pass  # this member reports its own error
            if error is exc:
                raise
            raise error from None
        group.conn.execute("RELEASE taskloom_member")
        writer.finish(group, functools.partial(_commit, db))
    finally:
        db.conn = own


def _rollback(db: sqlite_utils.Database) -> None:
    _rollback_conn(db.conn)


def _rollback_conn(conn: Any) -> None:
    # SQLITE_FULL and friends may already have rolled back; that is fine.
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolls back on its own when it cannot (sqlite.org/lang_transaction.html)


def _begin(db: sqlite_utils.Database) -> None:
    """``BEGIN IMMEDIATE``, asked again while another process holds the lock, up to the lock timeout."""
    started = time.monotonic()
    busy_ms = int(getattr(db, "busy_timeout_ms", BUSY_TIMEOUT_MS))
    limit = float(getattr(db, "lock_timeout", LOCK_TIMEOUT))
    noticed = 0.0
    shortened = False
    try:
        while True:
            try:
                db.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if _code(exc) not in (_BUSY, _LOCKED):
                    raise storage_error(exc, _path_of(db)) or exc from None
                waited = time.monotonic() - started
                left = limit - waited
                if left <= 0:
                    path = _path_of(db)
                    raise StorageError(
                        f"cannot write to database {path}: another process held the write lock for"
                        f" {waited:.1f} s ({LOCK_TIMEOUT_ENV} is {limit:g} s); see which with: fuser {path}",
                        path=path, kind="locked", reason=f"another process held the write lock for {waited:.1f} s",
                        fix=f"see which with: fuser {path}",
                    ) from None
                if waited - noticed >= _WAIT_NOTICE_EVERY or noticed == 0.0:
                    noticed = max(waited, 1e-9)
                    log.warning("waiting for the write lock on %s: another process holds it (waited %.1f s so far;"
                                " giving up after %g s)", _path_of(db), waited, limit)
                # the next wait ends at the deadline, not a whole busy timeout after it
                db.conn.execute(f"PRAGMA busy_timeout = {max(1, min(busy_ms, int(left * 1000)))}")
                shortened = True
    finally:
        if shortened:
            db.conn.execute(f"PRAGMA busy_timeout = {busy_ms}")


def data_version(db: sqlite_utils.Database) -> int:
    """SQLite's change counter for this connection: it moves whenever another connection commits.

    Reading it is a look at the WAL index in shared memory, no I/O: cheap
    enough to poll ten times a second, which is how the scheduler notices
    requests recorded by other processes without being signalled.
    """
    return int(db.execute("PRAGMA data_version").fetchone()[0])


class ChangeWatch(Protocol):
    def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class _SqliteChangeWatch:
    """Another connection's commit, seen on SQLite's change counter (:func:`data_version`), looked at every ``timeout``."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._seen = data_version(self._db)

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)
        try:
            version = data_version(self._db)
        except (StorageError, sqlite3.Error):
            return False  # the scheduler's loop reports a database in trouble
        changed, self._seen = version != self._seen, version
        return changed

    def close(self) -> None:
        self._db.conn.close()


def watch_changes(database: str | Path) -> ChangeWatch:
    """Something to wait on until another process commits to ``database``: the scheduler's ear for requests.

    On SQLite, the change counter read every ``timeout``; on PostgreSQL,
    ``LISTEN`` for the notice every write transaction sends as it commits.
    """
    if is_postgres_url(database):
        from taskloom.storage.postgres import PgChangeWatch

        return PgChangeWatch(str(database))
    return _SqliteChangeWatch(Path(database))
