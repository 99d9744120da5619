"""A throwaway PostgreSQL server for the tests: a real ``postgres``, never a mock.

``PostgresServer`` runs ``initdb`` into a fresh temporary folder, starts the
server on 127.0.0.1 (and any ``also_listen`` address) and a free port with trust
authentication on loopback only (and any ``trust`` network),
and on ``stop()`` shuts it down (``pg_ctl stop -m fast``), makes sure no process
of that data folder is left, and removes the folder::

    with PostgresServer() as server:
        url = fresh_database(server.url)   # postgresql://postgres@127.0.0.1:PORT/t_...

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the
server programs run as the ``postgres`` system user (``runuser``), which owns the
temporary folder. The binaries are found with ``pg_config --bindir`` or in
``/usr/lib/postgresql/*/bin``; ``find_bindir()`` returns None when they are
missing (``.ci/run`` installs Debian's ``postgresql`` then).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import importlib.util
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = ["PostgresServer", "PostgresError", "find_bindir", "fresh_database", "require_postgres", "pids_in", "port_is_free"]

SUPERUSER = "postgres"
#: The system user that runs the server when the tests run as root.
SERVER_OS_USER = "postgres"
PROGRAMS = ("initdb", "pg_ctl", "postgres")
START_TIMEOUT = 30  # seconds pg_ctl waits for "accepting connections"
STOP_TIMEOUT = 30
INSTALL_HINT = "PostgreSQL server binaries not found (apt-get install postgresql; .ci/run does it)"


class PostgresError(RuntimeError):
    """The test server could not be set up, started or stopped; the message holds the server's log tail."""


def _has_programs(folder: Path) -> bool:
    return all((folder / name).is_file() and os.access(folder / name, os.X_OK) for name in PROGRAMS)


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name)) or (0,)


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when the server is not installed.

    Debian's ``pg_config`` may come from libpq-dev alone (client only), so its answer
    is checked; then the newest ``/usr/lib/postgresql/<version>/bin``; then ``PATH``.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return next((folder for folder in candidates if _has_programs(folder)), None)


def require_postgres() -> Path:
    """The server's bindir, else skip the test, or fail it in CI (``CI=true``), where `.ci/run` installs postgresql."""
    bindir = find_bindir()
    missing = None
    if bindir is None:
        missing = INSTALL_HINT
    elif importlib.util.find_spec("psycopg") is None:
        missing = "psycopg is not installed (pip install -e '.[dev]', which has taskloom[postgres])"
    if missing is None:
        return bindir
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(missing)
    pytest.skip(missing)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (SO_REUSEADDR, so old TIME_WAIT connections do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pids_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder``.

    The postmaster and every backend chdir into the data folder, so this finds
    all of them, including orphans whose postmaster has died (Linux /proc only;
    elsewhere the empty list).
    """
    target = str(folder.resolve())
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == target:
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return found


def fresh_database(url: str) -> str:
    """Create a new empty database on the server of ``url`` and return its URL (same user, host, port).

    Nothing drops it: the whole server is thrown away at the end of the session.
    """
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class PostgresServer:
    """One PostgreSQL server in its own temporary folder; ``start()``, ``url``, ``stop()``, or use ``with``."""

    def __init__(self, bindir: Path | None = None, database: str = "taskloom", *,
                 also_listen: tuple[str, ...] = (), trust: tuple[str, ...] = ()) -> None:
        """``also_listen``: addresses besides 127.0.0.1 to listen on (they must exist when it starts);
        ``trust``: networks (CIDR) besides loopback that may connect without a password."""
        found = bindir or find_bindir()
        if found is None:
            raise PostgresError(INSTALL_HINT)
        self.bindir = found
        self.database = database
        self.listen = ("127.0.0.1", *also_listen)
        self.trust = ("127.0.0.1/32", *trust)
        self.port = 0
        self.base: Path | None = None
        self.data: Path | None = None
        self.postmaster_pid: int | None = None
        self._sockets: Path | None = None
        self.start_seconds = 0.0
        self.stop_seconds = 0.0
        self._as_root = os.geteuid() == 0

    # -- running the server programs as an unprivileged user ------------------------------------------------

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        if self._as_root:
            # PostgreSQL refuses to run as root; runuser (util-linux) needs no password when root calls it.
            return ["runuser", "-u", SERVER_OS_USER, "--", *command]
        return command

    def _run(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # A C locale whatever the caller has (an unknown LANG makes initdb fail); cwd in our folder, since
        # the server user may not be allowed into the caller's (e.g. /root).
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        for name in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGOPTIONS"):
            env.pop(name, None)
        return subprocess.run(self._command(program, *args), capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=self.base, stdin=subprocess.DEVNULL)

    def _give(self, path: Path) -> None:
        """Hand a file or folder we created to the server user (when we are root)."""
        if self._as_root:
            entry = pwd.getpwnam(SERVER_OS_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _log_tail(self, limit: int = 3000) -> str:
        log = self.base / "server.log" if self.base else None
        try:
            return log.read_text(errors="replace")[-limit:] if log else ""
        except OSError:
            return ""

    # -- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        """initdb, start, wait until it accepts connections, create the database; return its URL."""
        started = time.monotonic()
        if self._as_root:
            try:
                pwd.getpwnam(SERVER_OS_USER)
            except KeyError:
                raise PostgresError(f"running as root, but there is no {SERVER_OS_USER!r} system user to run "
                                    "PostgreSQL as (it refuses to run as root); apt-get install postgresql") from None
        self.base = Path(tempfile.mkdtemp(prefix="taskloom-pg-"))
        try:
            self._give(self.base)
            self.data = self.base / "data"
            sockets = self.base / "sockets"
            sockets.mkdir(mode=0o700)
            self._give(sockets)
            self._sockets = sockets
            self._initdb()
            self._start_on_a_free_port()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self.url

    def _initdb(self) -> None:
        # --no-sync: the folder is thrown away, so initdb need not wait for the disk; the server keeps fsync on.
        out = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                        "--locale=C", "--no-sync")
        if out.returncode != 0:
            hint = ""
            if self._as_root and "Permission denied" in out.stderr:
                hint = f" (the {SERVER_OS_USER!r} user must be able to enter {self.base.parent}; set TMPDIR)"
            raise PostgresError(f"initdb failed{hint}: {out.stderr.strip()[-2000:]}")
        # Only loopback TCP (and the private socket folder) may connect, without a password.
        hba = self.data / "pg_hba.conf"
        hba.write_text("local all all trust\n" + "".join(f"host all all {net} trust\n" for net in self.trust))
        self._give(hba)
        conf = self.data / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\n# tests/pgserver.py\ninclude 'taskloom.conf'\n")

    def _write_settings(self) -> None:
        settings = self.data / "taskloom.conf"
        settings.write_text(
            f"listen_addresses = '{','.join(self.listen)}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self._sockets}'\n"
            "max_connections = 200\n"
            "logging_collector = off\n"
        )
        self._give(settings)

    def _start_on_a_free_port(self, attempts: int = 3) -> None:
        # The free port is only free when we looked; another process may take it before the server binds,
        # so a start that fails on "Address already in use" tries another port.
        for attempt in range(attempts):
            self.port = _free_port()
            self._write_settings()
            out = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"),
                            "-w", "-t", str(START_TIMEOUT), "start", timeout=START_TIMEOUT + 15)
            if out.returncode == 0:
                self.postmaster_pid = self._read_postmaster_pid()
                return
            log = self._log_tail()
            if "already in use" not in log or attempt == attempts - 1:
                raise PostgresError(f"PostgreSQL did not start within {START_TIMEOUT} s on 127.0.0.1:{self.port}: "
                                    f"{out.stdout.strip()} {out.stderr.strip()}\n--- server log ---\n{log}")

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server and keep its folder: ``immediate`` is a crash (no checkpoint, clients cut off at once),
        ``fast`` a clean shutdown. :meth:`start_again` brings it back on the same port."""
        out = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(STOP_TIMEOUT), "stop",
                        timeout=STOP_TIMEOUT + 15)
        if out.returncode != 0:
            raise PostgresError(f"pg_ctl stop -m {mode} failed: {out.stderr.strip()}\n{self._log_tail()}")

    def start_again(self) -> None:
        """Start the halted server on its port (crash recovery replays its WAL)."""
        out = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t",
                        str(START_TIMEOUT), "start", timeout=START_TIMEOUT + 15)
        if out.returncode != 0:
            raise PostgresError(f"PostgreSQL did not start again: {out.stderr.strip()}\n{self._log_tail()}")
        self.postmaster_pid = self._read_postmaster_pid()

    def _read_postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _create_database(self) -> None:
        import psycopg

        admin = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        """Stop the server, make sure none of its processes is left, remove the folder. Safe to call twice."""
        if self.base is None:
            return
        started = time.monotonic()
        try:
            if self.data is not None and (self.data / "postmaster.pid").exists():
                out = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT),
                                "stop", timeout=STOP_TIMEOUT + 15)
                if out.returncode != 0:
                    self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "10", "stop",
                              timeout=25)
            if self.data is not None:
                self._kill_leftovers()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
            self.stop_seconds = time.monotonic() - started

    def _kill_leftovers(self) -> None:
        """SIGKILL any process still working in the data folder (ours: we started them), then wait for them.

        Found by working directory, never by the pid in postmaster.pid alone: after a stop that pid
        may already belong to an unrelated process.
        """
        for pid in pids_in(self.data):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while pids_in(self.data) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = pids_in(self.data)
        if left:
            raise PostgresError(f"PostgreSQL processes {left} of {self.data} survived SIGKILL")

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
