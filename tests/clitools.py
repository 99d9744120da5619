"""Running the real ``taskloom`` console script in subprocesses, and waiting on its database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from taskloom.storage.sqlite import sqlite3  # the driver Taskloom's own connections use

TASKLOOM = str(Path(sys.executable).with_name("taskloom"))


#: The variable that points every command at the test's store (tests/conftest.py store_backend sets it).
DATABASE_URL_ENV = "TASKLOOM_DATABASE_URL"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment for a ``taskloom`` child: its home, and the test's PostgreSQL store when it has one."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TASKLOOM_HOME": str(home),
           "LANG": "C.UTF-8"}
    if os.environ.get(DATABASE_URL_ENV):
        env[DATABASE_URL_ENV] = os.environ[DATABASE_URL_ENV]
    return {**env, **extra}


def start(home: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``taskloom ARGS`` in the background."""
    return subprocess.Popen(
        [TASKLOOM, *args], env=env_for(home), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def taskloom(home: Path, *args: str, cwd: Path | None = None, timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``taskloom ARGS`` to its end; ``input`` is piped to its stdin (a secret's value)."""
    return subprocess.run(
        [TASKLOOM, *args], env=env_for(home), cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def query(home: Path, sql: str, *args: Any) -> list[tuple]:
    """Rows of ``sql`` (SQLite's ``?`` placeholders) from the test's store: the home's file, or its PostgreSQL
    database when ``TASKLOOM_DATABASE_URL`` names one."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        import psycopg

        from taskloom.storage.postgres import translate

        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            return [tuple(row) for row in conn.execute(translate(sql), args).fetchall()]
    conn = sqlite3.connect(home / "taskloom.db", timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _not_there_yet() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (sqlite3.OperationalError, FileNotFoundError, IndexError)
    try:
        import psycopg
    except ImportError:
        return errors
    return errors + (psycopg.errors.UndefinedTable,)


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except _not_there_yet():  # the database or its tables are not there yet
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def write_flow(folder: Path, doc: dict, name: str = "flow.json") -> str:
    path = folder / name
    path.write_text(json.dumps(doc))
    return str(path)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[-1][0] not in "ZX"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 10) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False
