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


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TASKLOOM_HOME": str(home),
            "LANG": "C.UTF-8", **extra}


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
    conn = sqlite3.connect(home / "taskloom.db", timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (sqlite3.OperationalError, FileNotFoundError, IndexError):  # not there yet
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
