"""Runner heartbeats: how one process tells the others it is alive.

Every process that runs workflows registers a row in ``runners`` and updates
its ``heartbeat`` every ``interval`` seconds from a thread of its own (with
its own connection, so a long log write never delays it). A run whose owner's
heartbeat is older than ``ttl``, or whose owner is a process on this host
that no longer exists, is an orphan (see :mod:`taskloom.storage.recovery`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import sqlite_utils

from taskloom.storage.db import connect, write_txn

__all__ = ["Heartbeat", "process_identity", "process_alive", "host_id", "HOST_ID_ENV", "DEFAULT_TTL",
           "DEFAULT_INTERVAL"]

DEFAULT_INTERVAL = 1.0
DEFAULT_TTL = 15.0
#: Names this machine in the store (runners, the scheduler lease, the API registry) instead of its host name:
#: two containers or test processes sharing a host name are still two hosts to each other.
HOST_ID_ENV = "TASKLOOM_HOST_ID"


def host_id() -> str:
    """This process's host as the store knows it: ``TASKLOOM_HOST_ID``, else the machine's host name.

    A pid means something only on its own host, so a run's owner is judged by its pid there and by its
    heartbeat's age everywhere else (:mod:`taskloom.storage.recovery`).
    """
    return os.environ.get(HOST_ID_ENV, "").strip() or socket.gethostname()


def process_identity(pid: int) -> str | None:
    """The start time of process ``pid`` (from /proc), which tells it apart from a later process with the same pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(b") ", 1)[-1].split()
    if fields[0] == b"Z":
        return None  # a zombie has exited
    return fields[19].decode()  # field 22 of stat: start time in clock ticks since boot


def process_alive(pid: int, identity: str | None) -> bool:
    """Whether the process that registered as (pid, identity) still runs on this host."""
    current = process_identity(pid)
    return current is not None and (identity is None or current == identity)


class Heartbeat:
    """This process's row in ``runners``, kept fresh by a background thread."""

    def __init__(self, db_path: Path, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.id = uuid.uuid4().hex
        self.interval = interval
        self._db: sqlite_utils.Database = connect(db_path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskloom-heartbeat", daemon=True)
        self.lost = False  # our row disappeared: another process declared us dead

    def __enter__(self) -> "Heartbeat":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        now = time.time()
        with write_txn(self._db):
            self._db.execute(
                "INSERT INTO runners (id, pid, pid_start, host, started, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
                [self.id, os.getpid(), process_identity(os.getpid()), host_id(), now, now],
            )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with write_txn(self._db):
                    cursor = self._db.execute(
                        "UPDATE runners SET heartbeat = ? WHERE id = ?", [time.time(), self.id]
                    )
                if cursor.rowcount == 0:
                    self.lost = True
            except Exception:  # a busy or full disk must not kill the thread; the next beat retries
                continue

    def stop(self) -> None:
        """Stop beating and remove the row: a clean exit leaves nothing to recover."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            with write_txn(self._db):
                self._db.execute("DELETE FROM runners WHERE id = ?", [self.id])
        finally:
            self._db.conn.close()
