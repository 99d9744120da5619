"""Who owns a run: heartbeat age decides across hosts, and a run taken over fences its old owner."""

from __future__ import annotations

import time

import pytest

from taskloom.core.journal import Fenced
from taskloom.core.states import TaskState
from taskloom.storage import create_run
from taskloom.storage.heartbeat import Heartbeat
from taskloom.storage.journal import SqliteJournal
from taskloom.storage.recovery import find_orphans, take_over

from conftest import make_doc

pytestmark = pytest.mark.both_backends

DOC = make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], [{"from": "a", "to": "b"}])


def register_runner(ws, runner_id: str, *, host: str, heartbeat: float) -> None:
    ws.db.execute(
        "INSERT INTO runners (id, pid, pid_start, host, started, heartbeat) VALUES (?, 1, NULL, ?, ?, ?)",
        [runner_id, host, heartbeat, heartbeat],
    )


def test_a_runner_on_another_host_is_dead_only_when_its_heartbeat_is_old(ws):
    now = time.time()
    register_runner(ws, "fresh", host="elsewhere", heartbeat=now - 2)
    register_runner(ws, "stale", host="elsewhere", heartbeat=now - 60)
    fresh = create_run(ws.db, DOC, at=now, params={}, owner="fresh")
    stale = create_run(ws.db, DOC, at=now, params={}, owner="stale")
    for run_id in (fresh, stale):
        ws.db.execute("UPDATE runs SET status = 'running' WHERE id = ?", [run_id])
    orphans = find_orphans(ws.db, now=now, ttl=15)
    assert [o.run_id for o in orphans] == [stale]
    assert "60 s old" in orphans[0].reason


def test_a_live_heartbeat_keeps_its_runs(ws):
    with Heartbeat(ws.db_path, interval=0.1) as heartbeat:
        run_id = create_run(ws.db, DOC, at=time.time(), params={}, owner=heartbeat.id)
        time.sleep(0.3)
        assert find_orphans(ws.db) == []
    # a clean exit removes the row: what it still owned is an orphan now
    assert [o.run_id for o in find_orphans(ws.db)] == [run_id]


def test_take_over_is_won_once_and_fences_the_old_owner(ws):
    now = time.time()
    run_id = create_run(ws.db, DOC, at=now, params={}, owner="old")
    old = SqliteJournal(ws.db, owner="old")
    old.run_started(run_id, at=now)
    attempt = old.attempt_started(run_id, "a", 1, at=now, params={})
    old.task_changed(run_id, "a", TaskState.RUNNING, at=now, attempts=1)
    [orphan] = find_orphans(ws.db, now=now)
    assert take_over(ws.db, orphan, owner="new", now=now) is not None
    assert take_over(ws.db, orphan, owner="third", now=now) is None  # compare-and-set: one winner
    status, error = ws.db.execute("SELECT status, error FROM attempts WHERE id = ?", [attempt]).fetchone()
    assert status == "crashed" and "runner died" in error
    assert ws.db.execute("SELECT status FROM task_states WHERE run_id = ? AND task_id = 'a'", [run_id]).fetchone()[0] == "crashed"
    with pytest.raises(Fenced):
        old.task_changed(run_id, "b", TaskState.RUNNING, at=now)
    assert ws.db.execute("SELECT status FROM task_states WHERE run_id = ? AND task_id = 'b'", [run_id]).fetchone()[0] == "pending"
