"""Named points where the fault-injection tests make this process fail on purpose.

``TASKLOOM_FAILPOINTS="name=action,name=action"`` in a process's environment
arms points; unarmed (always, outside tests) :func:`hit` is one dictionary
lookup. Actions:

* ``kill``: SIGKILL this process, as a power cut or an OOM kill would;
* ``stop``: SIGSTOP this process (a stall: it resumes on SIGCONT);
* ``full``: raise ``sqlite3.OperationalError("database or disk is full")``,
  what SQLite raises on a full disk (``SQLITE_FULL``);
* ``sleep:SECONDS``: pause this thread.

Points: ``scheduler.after_claim`` (a firing is recorded, its run not yet
created), ``storage.commit`` (just before a write transaction commits).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

__all__ = ["hit", "ENV"]

ENV = "TASKLOOM_FAILPOINTS"


def hit(name: str) -> None:
    """Fail here if ``name`` is armed in this process's environment."""
    armed = os.environ.get(ENV)
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
        raise sqlite3.OperationalError("database or disk is full")
    elif action.startswith("sleep:"):
        time.sleep(float(action.partition(":")[2]))
    else:
        raise ValueError(f"unknown failpoint action {action!r} in {ENV}")
