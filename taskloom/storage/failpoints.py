"""Named points where the fault-injection tests make this process fail on purpose.

``TASKLOOM_FAILPOINTS="name=action,name=action"`` in a process's environment
arms points; unarmed (always, outside tests) :func:`hit` is two dictionary
lookups. ``TASKLOOM_FAILPOINTS_FILE=PATH`` names a file in the same syntax
that is read again at every hit (missing or empty: nothing armed), so a test
can arm and disarm points while the process runs: the disk "fills up" in the
middle of a run and "has space again" later. Actions:

* ``kill``: SIGKILL this process, as a power cut or an OOM kill would;
* ``stop``: SIGSTOP this process (a stall: it resumes on SIGCONT);
* ``full``: raise the driver's ``OperationalError("database or disk is full")`` (:mod:`taskloom.storage.sqlite`),
  what SQLite raises on a full disk (``SQLITE_FULL``);
* ``sleep:SECONDS``: pause this thread.

Points: ``scheduler.after_claim`` (a firing is recorded, its run not yet
created), ``storage.commit`` (just before a write transaction commits).
"""

from __future__ import annotations

import os
import signal
import time

from taskloom.storage.sqlite import sqlite3

__all__ = ["hit", "ENV", "FILE_ENV"]

ENV = "TASKLOOM_FAILPOINTS"
FILE_ENV = "TASKLOOM_FAILPOINTS_FILE"


def hit(name: str) -> None:
    """Fail here if ``name`` is armed in this process's environment or in the file it names."""
    armed = os.environ.get(ENV)
    path = os.environ.get(FILE_ENV)
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                armed = ",".join(filter(None, (armed, f.read().strip())))
        except OSError:
            pass  # no file: nothing more armed
    if not armed:
        return
    for item in armed.split(","):
        point, _, action = item.strip().partition("=")
        if point == name:
            _act(action)


def _act(action: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif action == "full":
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = 13  # type: ignore[attr-defined]  # what SQLite itself attaches
        error.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
        raise error
    elif action.startswith("sleep:"):
        time.sleep(float(action.partition(":")[2]))
    else:
        raise ValueError(f"unknown failpoint action {action!r} in {ENV}")
