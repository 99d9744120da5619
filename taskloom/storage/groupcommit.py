"""Group commit on SQLite: write transactions of one process that arrive together share one COMMIT and one fsync.

Every connection of this process to one SQLite file takes that file's
:class:`Writer` lock around a write transaction (SQLite lets one connection
write at a time; queued here, the next writer starts the moment the last one
is done, instead of sleeping in SQLite's busy handler). A durable transaction
that ends its work while other threads wait for the lock does not commit: it
leaves its transaction open as a :class:`Group` and hands the lock to the next
waiter, which runs its own transaction inside the same one, under a savepoint
of its own, on the same connection. The last member (no one waiting, or the
group at :data:`MAX_MEMBERS` or :data:`MAX_SECONDS` old) commits for all, with
one fsync; every member's ``write_txn`` returns only once that commit is done,
so what a caller is told is stored is on the disk, as before. Groups form only
while commits are slow (:data:`GROUP_ABOVE`): with a fast fsync, waiting and
waking the members would cost more CPU than the fsyncs they save.

What each member keeps: its changes are all or nothing (a member whose block
raises rolls back to its savepoint; the others' changes stay), and durable
when ``write_txn`` returns. What members share: a failed commit fails all of
them (none of their changes are stored, and each one's ``write_txn`` raises),
and a member sees the changes of the members before it, as it would have
once they committed. A transaction with ``durable=False`` never leads a group
(its commit has no fsync); one that finds a group open joins it, and its
changes become durable with the group's.

Only waiters of this process are seen; other processes still meet SQLite's
own lock.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from typing import Any, Callable

__all__ = ["Writer", "Group", "MAX_MEMBERS", "MAX_SECONDS", "GROUP_ABOVE"]

#: A group commits once it holds this many members' transactions...
MAX_MEMBERS = 64
#: ...or once this many seconds have passed since its first member ended its block: that member's wait is bounded.
MAX_SECONDS = 0.015
#: Groups form only while a commit takes this long (seconds: the median of the last commits made with no other
#: writer waiting, so that time spent waiting for the interpreter's lock behind busy threads is not counted):
#: the wait and the wake-up of each member cost CPU, about 0.5 ms of it on a 2-core machine, which a fast
#: disk's fsync does not repay.
GROUP_ABOVE = 0.001
#: How often a member waiting for its group's commit checks that someone is still going to make it.
_CHECK_EVERY = 0.05


class Group:
    """An open write transaction on ``conn`` that several ``write_txn`` blocks share."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.members = 1
        self.started = time.monotonic()
        #: set once the group's transaction is committed or rolled back (made when first handed on: most
        #: transactions commit alone, and an Event each would cost them)
        self.done: threading.Event | None = None
        #: why the group's transaction was not committed (every member raises it), or None
        self.error: BaseException | None = None

    def is_full(self, now: float) -> bool:
        return self.members >= MAX_MEMBERS or now - self.started >= MAX_SECONDS


class Writer:
    """The write lock of one SQLite file in this process, with the group its holder may have left open."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._count = threading.Lock()
        self._waiting = 0
        self._open: Group | None = None
        self._alone: deque[float] = deque(maxlen=15)  # how long the last commits made alone took (seconds)
        #: commits made, and write transactions they held (for tests and benchmarks)
        self.commits = 0
        self.transactions = 0

    def acquire(self, timeout: float) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds; while waiting, a finishing holder hands its group on."""
        with self._count:
            self._waiting += 1
        try:
            return self._lock.acquire(timeout=timeout)
        finally:
            with self._count:
                self._waiting -= 1

    def release(self) -> None:
        self._lock.release()

    def commits_are_slow(self) -> bool:
        """Whether a commit takes :data:`GROUP_ABOVE` or more here (known after five commits made alone)."""
        if len(self._alone) < 5:
            return False
        return statistics.median(self._alone) >= GROUP_ABOVE

    def take_open(self) -> Group | None:
        """The group the last holder left open, now this holder's to join (with the lock held), or None."""
        group, self._open = self._open, None
        return group

    def finish(self, group: Group, commit: Callable[[Any], None]) -> None:
        """End this holder's part of ``group``: hand it to a waiter, or ``commit(group.conn)``; return once committed.

        Called with the lock held; it is released here. Raises the group's
        error if its commit failed (what ``commit`` raised, for every member).
        """
        if self._waiting and self.commits_are_slow() and not group.is_full(time.monotonic()):
            if group.done is None:
                group.done = threading.Event()
            self._open = group
            self._lock.release()
            self._await(group, commit)
        else:
            try:
                self._commit(group, commit)
            finally:
                self._lock.release()
        if group.error is not None:
            raise group.error

    def _commit(self, group: Group, commit: Callable[[Any], None]) -> None:
        alone, started = not self._waiting, time.monotonic()
        try:
            commit(group.conn)
        except BaseException as exc:
            group.error = exc
            raise
        finally:
            if group.done is not None:
                group.done.set()
            if alone and group.error is None:
                self._alone.append(time.monotonic() - started)
            self.commits += 1
            self.transactions += group.members

    def _await(self, group: Group, commit: Callable[[Any], None]) -> None:
        """Wait for ``group``'s commit; make it here if the waiter it was left for went away without taking it."""
        assert group.done is not None
        while not group.done.wait(_CHECK_EVERY):
            if self._open is not group or not self._lock.acquire(blocking=False):
                continue
            try:
                if self._open is group:  # nobody took it: a waiter gave up (its lock timeout) as it was handed on
                    self._open = None
                    self._commit(group, commit)
            finally:
                self._lock.release()
