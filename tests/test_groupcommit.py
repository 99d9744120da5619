"""Group commit on SQLite: transactions that arrive together while commits are slow share one COMMIT.

Real SQLite files and real threads. Each member keeps its own all-or-nothing,
and its ``write_txn`` returns only once its changes are committed; a failed
group commit fails every member.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from taskloom.storage.db import StorageError, connect, write_txn
from taskloom.storage.groupcommit import GROUP_ABOVE

SLOW, FAST = GROUP_ABOVE * 10, GROUP_ABOVE / 10


def open_db(path: Path):
    db = connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS t (who TEXT)")
    return db


def rows(path: Path) -> list[str]:
    db = connect(path)
    try:
        return sorted(r[0] for r in db.execute("SELECT who FROM t"))
    finally:
        db.conn.close()


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def three_writers(path: Path, commit_took: float, bodies: dict[str, object], before_release=lambda: None):
    """A holds the write lock until B and C wait for it, then ends its block: each writes a row (or raises).

    Returns what each write_txn raised (None: it returned), and the writer for its counters.
    """
    dbs = {k: open_db(path) for k in "ABC"}
    writer = dbs["A"].writer
    writer._alone.clear()
    writer._alone.extend([commit_took] * 5)
    commits, transactions = writer.commits, writer.transactions
    raised: dict[str, BaseException | None] = {}
    a_in = threading.Event()
    go = threading.Event()

    def write(who: str) -> None:
        try:
            with write_txn(dbs[who]) as db:
                db.execute("INSERT INTO t VALUES (?)", [who])
                if who == "A":
                    a_in.set()
                    go.wait(5)
                body = bodies.get(who)
                if body is not None:
                    body()
            raised[who] = None
        except BaseException as exc:  # noqa: BLE001 - the test reports what each writer saw
            raised[who] = exc

    threads = {k: threading.Thread(target=write, args=(k,)) for k in "ABC"}
    threads["A"].start()
    assert a_in.wait(5)
    threads["B"].start()
    threads["C"].start()
    wait_for(lambda: writer._waiting == 2)
    before_release()
    go.set()
    for t in threads.values():
        t.join(10)
        assert not t.is_alive()
    for db in dbs.values():
        db.conn.close()
    return raised, writer.commits - commits, writer.transactions - transactions


def fail() -> None:
    raise ValueError("this member's block failed")


@pytest.mark.parametrize("commit_took, expected_commits", [(SLOW, 1), (FAST, 3)], ids=["slow commits", "fast commits"])
def test_writers_that_arrive_together_share_one_commit_only_while_commits_are_slow(tmp_path, commit_took,
                                                                                  expected_commits):
    """With fast commits, waiting and waking members would cost more CPU than the fsyncs saved: each commits alone."""
    path = tmp_path / "t.db"
    raised, commits, transactions = three_writers(path, commit_took, {})
    assert raised == {"A": None, "B": None, "C": None}
    assert (commits, transactions) == (expected_commits, 3)
    assert rows(path) == ["A", "B", "C"]


def test_a_member_whose_block_fails_loses_only_its_own_changes(tmp_path):
    path = tmp_path / "t.db"
    raised, commits, transactions = three_writers(path, SLOW, {"B": fail})
    assert raised["A"] is None and raised["C"] is None
    assert isinstance(raised["B"], ValueError)
    assert rows(path) == ["A", "C"]
    assert commits == 1


def test_a_failed_group_commit_fails_every_member_and_stores_nothing(tmp_path, monkeypatch):
    path = tmp_path / "t.db"
    points = tmp_path / "failpoints"
    points.write_text("")
    monkeypatch.setenv("TASKLOOM_FAILPOINTS_FILE", str(points))
    raised, _, _ = three_writers(path, SLOW, {}, before_release=lambda: points.write_text("storage.commit=full"))
    points.write_text("")
    assert all(isinstance(raised[k], StorageError) for k in "ABC"), raised
    assert "full" in str(raised["A"])
    assert rows(path) == []


def test_a_group_left_for_a_waiter_that_went_away_is_committed_by_its_member(tmp_path):
    """A waiter that gives up (its lock timeout) just as the group is handed on: the member commits it itself."""
    path = tmp_path / "t.db"
    db = open_db(path)
    writer = db.writer
    writer._alone.clear()
    writer._alone.extend([SLOW] * 5)
    try:
        with writer._count:
            writer._waiting += 1  # someone seems to wait, and never takes the lock
        started = time.monotonic()
        with write_txn(db):
            db.execute("INSERT INTO t VALUES ('alone')")
        took = time.monotonic() - started
    finally:
        with writer._count:
            writer._waiting -= 1
        db.conn.close()
    assert rows(path) == ["alone"]
    assert took < 2, f"the member waited {took:.2f} s for a commit no one else would make"


def test_many_writers_with_slow_commits_lose_nothing_and_see_their_rows_when_told(tmp_path, monkeypatch):
    """Eight threads, ten transactions each, 10 ms per commit: every row is on disk when write_txn returns."""
    monkeypatch.setenv("TASKLOOM_FAILPOINTS", "storage.commit=sleep:0.01")
    path = tmp_path / "t.db"
    first = open_db(path)
    for _ in range(5):  # commits made alone: how this disk (here, the failpoint) commits is known after five
        with write_txn(first):
            first.execute("INSERT INTO t VALUES ('warm-up')")
    first.conn.close()
    missing: list[str] = []
    counters = connect(path).writer
    commits, transactions = counters.commits, counters.transactions

    def writer(k: int) -> None:
        db, reader = open_db(path), connect(path)
        try:
            for n in range(10):
                who = f"{k}-{n}"
                with write_txn(db):
                    db.execute("INSERT INTO t VALUES (?)", [who])
                if reader.execute("SELECT count(*) FROM t WHERE who = ?", [who]).fetchone()[0] != 1:
                    missing.append(who)
        finally:
            db.conn.close()
            reader.conn.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not missing, f"write_txn returned before these rows were committed: {missing}"
    assert len(rows(path)) == 85
    assert counters.transactions - transactions >= 80
    assert counters.commits - commits < (counters.transactions - transactions) / 2, "no commit was shared"


def test_a_transaction_without_fsync_never_leads_a_group(tmp_path):
    """Its commit has no fsync: a durable writer waiting behind it must not ride on it."""
    path = tmp_path / "t.db"
    db, other = open_db(path), open_db(path)
    writer = db.writer
    writer._alone.clear()
    writer._alone.extend([SLOW] * 5)
    commits, transactions = writer.commits, writer.transactions
    inside, go = threading.Event(), threading.Event()

    def quick() -> None:
        with write_txn(db, durable=False):
            db.execute("INSERT INTO t VALUES ('quick')")
            inside.set()
            go.wait(5)

    first = threading.Thread(target=quick)
    first.start()
    assert inside.wait(5)
    done = threading.Event()

    def durable_write() -> None:
        with write_txn(other):
            other.execute("INSERT INTO t VALUES ('durable')")
        done.set()

    second = threading.Thread(target=durable_write)
    second.start()
    wait_for(lambda: writer._waiting == 1)
    go.set()
    first.join(5)
    second.join(5)
    assert done.is_set()
    # the durable writer committed on its own (the quick one's commit is not a group's)
    assert (writer.commits - commits, writer.transactions - transactions) == (1, 1)
    db.conn.close()
    other.conn.close()
    assert rows(path) == ["durable", "quick"]
