"""Every state change goes through the transition table, on a real store.

What the product does (a retry, an interrupt and its resume, a crash recovered, a
cancel, a re-run, a resume requested from the web) is each run here, and every
change it wrote is one the table allows; a change the table forbids, asked of
the real journal or store, raises :class:`InvalidTransition` and writes nothing.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from taskloom.core.states import (
    ATTEMPT_TRANSITIONS,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    InvalidTransition,
    RunState,
    TaskState,
)
from taskloom.runtime.execution import execute, recover
from taskloom.storage import journal as journal_module
from taskloom.storage import recovery as recovery_module
from taskloom.storage import runs as runs_module
from taskloom.storage import transitions
from taskloom.storage.journal import SqliteJournal
from taskloom.storage.recovery import find_orphans, take_over
from taskloom.storage.runs import create_run, mark_cancel_requested, request_resume, reuse_results

from conftest import make_doc

pytestmark = pytest.mark.both_backends

P, R = TaskState.PENDING, TaskState.RUNNING


class Changes:
    """The state changes written, as (kind, row, states it was asked from, new state)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, tuple, Any]] = []

    def of_task(self, task_id: str) -> list[tuple[tuple, TaskState]]:
        return [(was, new) for kind, row, was, new in self.seen if kind == "task" and row[1] == task_id]

    def of_run(self) -> list[tuple[tuple, RunState]]:
        return [(was, new) for kind, _, was, new in self.seen if kind == "run"]


def _was(value: Any) -> tuple:
    if value is None:
        return ()
    return (value,) if isinstance(value, (TaskState, RunState)) else tuple(value)


@pytest.fixture
def changes(monkeypatch: pytest.MonkeyPatch) -> Changes:
    """Record every call of the one place that writes a status column (as the journal, recovery and runs call it)."""
    record = Changes()

    def spy(kind: str, function: Any, row: Any) -> Any:
        def wrapper(db: Any, *args: Any, **kwargs: Any) -> Any:
            result = function(db, *args, **kwargs)
            key, new = row(args)
            was = kwargs.get("was", TaskState.RUNNING if kind == "attempt" else None)
            if kind != "tasks" or result:
                record.seen.append((kind, key, _was(was), new))
            return result
        return wrapper

    wrappers = {
        "change_run": spy("run", transitions.change_run, lambda a: (a[0], RunState(a[1]))),
        "change_task": spy("task", transitions.change_task, lambda a: ((a[0], a[1]), TaskState(a[2]))),
        "change_attempt": spy("attempt", transitions.change_attempt, lambda a: (a[0], TaskState(a[1]))),
        "change_tasks": spy("tasks", transitions.change_tasks, lambda a: (a[0], TaskState(a[1]))),
        "change_attempts": spy("attempts", transitions.change_attempts, lambda a: (a[0], TaskState(a[1]))),
    }
    for module in (journal_module, recovery_module, runs_module):
        for name, wrapper in wrappers.items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, wrapper)
    return record


def assert_all_allowed(record: Changes) -> None:
    """Every change recorded is in the table, from each state it was asked from."""
    tables = {"task": TASK_TRANSITIONS, "tasks": TASK_TRANSITIONS, "run": RUN_TRANSITIONS,
              "attempt": ATTEMPT_TRANSITIONS, "attempts": ATTEMPT_TRANSITIONS}
    for kind, row, was, new in record.seen:
        for old in was:
            assert new in tables[kind][old], f"{kind} {row}: {old} -> {new} is not in the table"


def status_of(ws: Any, run_id: int, task_id: str | None = None) -> str:
    if task_id is None:
        return ws.db.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()[0]
    return ws.db.execute("SELECT status FROM task_states WHERE run_id = ? AND task_id = ?", [run_id, task_id]
                         ).fetchone()[0]


def row_of(ws: Any, table: str, where: str, args: list[Any]) -> tuple:
    return tuple(ws.db.execute(f"SELECT * FROM {table} WHERE {where}", args).fetchone())


def new_run(ws: Any, doc: dict[str, Any], *, owner: str | None = None) -> int:
    return create_run(ws.db, doc, at=time.time(), params={}, owner=owner)


def run_file(ws: Any, tmp_path: Path, doc: dict[str, Any]) -> int:
    path = tmp_path / f"{doc['name']}.json"
    path.write_text(json.dumps(doc))
    run_id, _ = ws.start_run(ws.target(str(path)), {})
    return run_id


# -- what the product does is what the table allows ---------------------------------------------------


def test_a_retry_goes_running_to_pending_and_runs_again(ws, tmp_path, changes):
    marker = tmp_path / "failed-once"
    doc = make_doc([{"id": "flaky", "type": "shell", "retries": 1, "retry_delay": 0,
                     "params": {"command": f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 3"}}])
    run_id = run_file(ws, tmp_path, doc)
    assert execute(ws, run_id, cwd=str(tmp_path)) is RunState.SUCCEEDED
    # the task row never rests in failed: only its first attempt's row does
    assert changes.of_task("flaky") == [((P,), R), ((R,), P), ((P,), R), ((R,), TaskState.SUCCEEDED)]
    attempts = ws.db.execute("SELECT status FROM attempts WHERE run_id = ? ORDER BY number", [run_id]).fetchall()
    assert [a for (a,) in attempts] == ["failed", "succeeded"]
    assert changes.of_run() == [((), RunState.RUNNING), ((RunState.RUNNING,), RunState.SUCCEEDED)]
    assert_all_allowed(changes)


def test_the_runner_always_says_which_state_a_task_is_in(ws, tmp_path, changes):
    """No read per write on the hot path: each task change names the state the runner knows."""
    doc = make_doc(
        [{"id": "a", "type": "noop"}, {"id": "b", "type": "shell", "params": {"command": "exit 1"}},
         {"id": "c", "type": "noop"}, {"id": "d", "type": "noop"}],
        [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d"}],
    )
    run_id = run_file(ws, tmp_path, doc)
    assert execute(ws, run_id, cwd=str(tmp_path)) is RunState.FAILED
    task_changes = [(row, was) for kind, row, was, _ in changes.seen if kind == "task"]
    assert task_changes and all(len(was) == 1 for _, was in task_changes), task_changes
    assert changes.of_task("c") == [((P,), TaskState.SKIPPED)] and changes.of_task("d") == [((P,), TaskState.SKIPPED)]
    assert_all_allowed(changes)


@pytest.mark.sqlite_only  # counts statements through SQLite's trace callback
def test_checking_costs_the_runner_no_read(ws, tmp_path):
    """Task and attempt changes are compare-and-sets: their rows are read back only when one is refused."""
    doc = make_doc([{"id": "a", "type": "shell", "retries": 2, "retry_delay": 0, "params": {"command": "exit 1"}},
                    {"id": "b", "type": "noop"}], [{"from": "a", "to": "b", "on": "failure"}])
    run_id = run_file(ws, tmp_path, doc)
    statements: list[str] = []
    ws.db.conn.set_trace_callback(statements.append)
    try:
        assert execute(ws, run_id, cwd=str(tmp_path)) is RunState.SUCCEEDED
    finally:
        ws.db.conn.set_trace_callback(None)
    assert any(s.startswith("UPDATE task_states") for s in statements)
    assert not [s for s in statements if s.startswith(("SELECT status FROM task_states", "SELECT status, run_id"))]


def test_an_interrupt_requeues_the_running_task_and_the_run_resumes(ws, tmp_path, changes):
    started = tmp_path / "started"
    doc = make_doc([{"id": "long", "type": "shell", "params": {
        "command": f"if [ -e {started} ]; then exit 0; fi; touch {started}; sleep 30"}}])
    run_id = run_file(ws, tmp_path, doc)

    def stop_when_started(runner: Any) -> None:
        def wait_then_stop() -> None:
            deadline = time.monotonic() + 20
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            runner.stop("a test")
        threading.Thread(target=wait_then_stop, daemon=True).start()

    assert execute(ws, run_id, cwd=str(tmp_path), grace=0.3, on_runner=stop_when_started) is RunState.CRASHED
    assert status_of(ws, run_id) == "crashed" and status_of(ws, run_id, "long") == "pending"
    assert changes.of_task("long") == [((P,), R), ((R,), P)]

    ws.claim_crashed(run_id, "me")
    assert execute(ws, run_id, cwd=str(tmp_path)) is RunState.SUCCEEDED
    assert changes.of_task("long")[2:] == [((P,), R), ((R,), TaskState.SUCCEEDED)]
    assert changes.of_run() == [((), RunState.RUNNING), ((RunState.RUNNING,), RunState.CRASHED),
                                ((), RunState.RUNNING), ((RunState.RUNNING,), RunState.SUCCEEDED)]
    assert [a for (a,) in ws.db.execute("SELECT status FROM attempts WHERE run_id = ? ORDER BY number", [run_id])] == [
        "cancelled", "succeeded"]
    assert_all_allowed(changes)


@pytest.mark.parametrize(("retries", "task_after"), [(1, "pending"), (0, "crashed")])
def test_a_crash_is_recovered_through_the_table(ws, tmp_path, changes, retries, task_after):
    doc = make_doc([{"id": "a", "type": "noop", "retries": retries, "retry_delay": 0}, {"id": "b", "type": "noop"}],
                   [{"from": "a", "to": "b", "on": "always"}])
    run_id = new_run(ws, doc, owner="dead")  # no heartbeat row: its runner is gone
    dead = SqliteJournal(ws.db, owner="dead")
    now = time.time()
    dead.run_started(run_id, at=now)
    attempt = dead.attempt_started(run_id, "a", 1, at=now, params={})
    dead.task_changed(run_id, "a", R, was=P, at=now, attempts=1)

    [recovered] = recover(ws, "rescuer", run_id=run_id)
    assert recovered.crashed_attempts == [("a", 1)]
    assert status_of(ws, run_id) == "crashed" and status_of(ws, run_id, "a") == task_after
    assert ws.db.execute("SELECT status FROM attempts WHERE id = ?", [attempt]).fetchone()[0] == "crashed"
    assert ("run", run_id, (RunState.QUEUED, RunState.RUNNING), RunState.CRASHED) in changes.seen
    assert ("attempt", attempt, (R,), TaskState.CRASHED) in changes.seen

    ws.claim_crashed(run_id, "rescuer")
    outcome = execute(ws, run_id, owner="rescuer", cwd=str(tmp_path))
    assert outcome is RunState.SUCCEEDED  # a crash of a is handled: b runs 'always'
    assert status_of(ws, run_id, "a") == ("succeeded" if retries else "crashed")
    assert status_of(ws, run_id, "b") == "succeeded"
    assert_all_allowed(changes)


def test_a_queued_run_whose_claimer_died_is_recovered_crashed(ws, changes):
    run_id = new_run(ws, make_doc([{"id": "a", "type": "noop"}]), owner="dead")
    [orphan] = find_orphans(ws.db, run_id=run_id)
    assert take_over(ws.db, orphan, owner="new") is not None
    assert status_of(ws, run_id) == "crashed" and status_of(ws, run_id, "a") == "pending"
    assert_all_allowed(changes)


def test_cancels_end_only_what_had_not_ended(ws, tmp_path, changes):
    # nobody's queued run: cancelled in the store
    queued = new_run(ws, make_doc([{"id": "a", "type": "noop"}]))
    assert ws.request_cancel(queued, owner="me") == "cancelled"
    assert status_of(ws, queued) == "cancelled" and status_of(ws, queued, "a") == "cancelled"
    # a cancel its runner carries out: running -> cancelled, pending tasks cancelled
    doc = make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], [{"from": "a", "to": "b"}])
    asked = run_file(ws, tmp_path, doc)
    mark_cancel_requested(ws.db, asked, at=time.time())
    assert execute(ws, asked, cwd=str(tmp_path)) is RunState.CANCELLED
    assert {status_of(ws, asked, t) for t in "ab"} == {"cancelled"}
    # a crashed run is cancelled instead of resumed; its ended task keeps its state
    crashed = new_run(ws, doc, owner="dead")
    dead = SqliteJournal(ws.db, owner="dead")
    dead.run_started(crashed, at=time.time())
    first = dead.attempt_started(crashed, "a", 1, at=time.time(), params={})
    dead.task_changed(crashed, "a", R, was=P, at=time.time(), attempts=1)
    with dead.batch():  # as the runner does: an attempt's end and its task's in one transaction
        dead.attempt_ended(first, TaskState.SUCCEEDED, at=time.time())
        dead.task_changed(crashed, "a", TaskState.SUCCEEDED, was=R, at=time.time())
    recover(ws, "rescuer", run_id=crashed)
    assert status_of(ws, crashed) == "crashed"
    assert ws.request_cancel(crashed, owner="me") == "cancelled"
    assert status_of(ws, crashed) == "cancelled"
    assert (status_of(ws, crashed, "a"), status_of(ws, crashed, "b")) == ("succeeded", "cancelled")
    assert ("run", crashed, (RunState.QUEUED, RunState.RUNNING, RunState.CRASHED), RunState.CANCELLED) in changes.seen
    assert_all_allowed(changes)


def test_a_rerun_reuses_results_from_pending(ws, tmp_path, changes):
    doc = make_doc([{"id": "a", "type": "shell", "params": {"command": "echo '{\"n\": 5}'"}},
                    {"id": "b", "type": "shell", "params": {"command": "exit 1"}}], [{"from": "a", "to": "b"}])
    parent = run_file(ws, tmp_path, doc)
    assert execute(ws, parent, cwd=str(tmp_path)) is RunState.FAILED
    child = ws.rerun(parent, owner=None, failed=True)
    assert ((child, "a"), (P,), TaskState.SUCCEEDED) in [(row, was, new) for _, row, was, new in changes.seen]
    assert status_of(ws, child, "a") == "succeeded" and status_of(ws, child, "b") == "pending"
    reused = ws.db.execute("SELECT output, reused_from FROM task_states WHERE run_id = ? AND task_id = 'a'",
                           [child]).fetchone()
    assert json.loads(reused[0]) == {"n": 5} and reused[1] == parent
    assert execute(ws, child, cwd=str(tmp_path)) is RunState.FAILED
    assert changes.of_task("a")[-1] == ((P,), TaskState.SUCCEEDED)  # the re-run never ran it
    assert_all_allowed(changes)


def test_a_resume_requested_from_the_web_is_crashed_to_queued(ws, changes):
    run_id = new_run(ws, make_doc([{"id": "a", "type": "noop"}]), owner="dead")
    recover(ws, "rescuer", run_id=run_id)
    assert request_resume(ws.db, run_id) is True
    assert status_of(ws, run_id) == "queued"
    assert ws.db.execute("SELECT owner FROM runs WHERE id = ?", [run_id]).fetchone()[0] is None
    assert request_resume(ws.db, run_id) is False  # not crashed: not resumable, and nothing is written
    assert status_of(ws, run_id) == "queued"
    assert_all_allowed(changes)


# -- what the table forbids is refused, and nothing is written -------------------------------------------


@pytest.fixture
def ended(ws):
    """A run whose task 'a' succeeded and 'b' is still pending, journaled by its (live) runner."""
    doc = make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], [{"from": "a", "to": "b"}])
    run_id = new_run(ws, doc, owner="me")
    journal = SqliteJournal(ws.db, owner="me")
    now = time.time()
    journal.run_started(run_id, at=now)
    attempt = journal.attempt_started(run_id, "a", 1, at=now, params={})
    journal.task_changed(run_id, "a", R, was=P, at=now, attempts=1)
    journal.attempt_ended(attempt, TaskState.SUCCEEDED, at=now, output={"x": 1})
    journal.task_changed(run_id, "a", TaskState.SUCCEEDED, was=R, at=now, output={"x": 1})
    return journal, run_id, attempt


def test_a_succeeded_task_is_never_marked_running(ws, ended):
    journal, run_id, _ = ended
    before = row_of(ws, "task_states", "run_id = ? AND task_id = 'a'", [run_id])
    with pytest.raises(InvalidTransition) as caught:
        journal.task_changed(run_id, "a", R, at=time.time() + 5, attempts=2)  # the state read from the row
    error = caught.value
    assert (error.kind, error.from_state, error.to_state, error.run_id, error.task_id) == (
        "task", TaskState.SUCCEEDED, R, run_id, "a")
    assert "cannot go from succeeded to running" in str(error)
    with pytest.raises(InvalidTransition, match="cannot go from succeeded to running"):
        journal.task_changed(run_id, "a", R, was=TaskState.SUCCEEDED, at=time.time() + 5)  # the state known
    assert row_of(ws, "task_states", "run_id = ? AND task_id = 'a'", [run_id]) == before


def test_a_change_from_a_state_the_row_is_not_in_is_refused(ws, ended):
    """The runner's memory and the database disagree: a bug, even when the change itself would be legal."""
    journal, run_id, _ = ended
    before = row_of(ws, "task_states", "run_id = ? AND task_id = 'b'", [run_id])
    with pytest.raises(InvalidTransition, match="'b' of run .* is pending, not running") as caught:
        journal.task_changed(run_id, "b", TaskState.SUCCEEDED, was=R, at=time.time(), output=1)
    assert caught.value.from_state is P and caught.value.to_state is TaskState.SUCCEEDED
    assert row_of(ws, "task_states", "run_id = ? AND task_id = 'b'", [run_id]) == before
    with pytest.raises(LookupError, match="no task 'zz'"):
        journal.task_changed(run_id, "zz", R, was=P, at=time.time())


def test_a_cancelled_run_never_ends_succeeded(ws, ended):
    journal, run_id, _ = ended
    journal.run_ended(run_id, RunState.CANCELLED, at=1000.0, error="cancelled")
    before = row_of(ws, "runs", "id = ?", [run_id])
    with pytest.raises(InvalidTransition) as caught:
        journal.run_ended(run_id, RunState.SUCCEEDED, at=2000.0)
    error = caught.value
    assert (error.kind, error.from_state, error.to_state, error.run_id, error.task_id) == (
        "run", RunState.CANCELLED, RunState.SUCCEEDED, run_id, None)
    assert row_of(ws, "runs", "id = ?", [run_id]) == before


def test_an_ended_run_is_never_started_again(ws, ended):
    journal, run_id, _ = ended
    journal.run_ended(run_id, RunState.SUCCEEDED, at=1000.0)
    other = SqliteJournal(ws.db, owner="other")
    before = row_of(ws, "runs", "id = ?", [run_id])
    with pytest.raises(InvalidTransition, match=f"run {run_id} cannot go from succeeded to running"):
        other.run_started(run_id, at=2000.0)
    assert row_of(ws, "runs", "id = ?", [run_id]) == before  # the owner it claims is rolled back too


def test_an_attempt_ends_once(ws, ended):
    journal, run_id, attempt = ended
    before = row_of(ws, "attempts", "id = ?", [attempt])
    with pytest.raises(InvalidTransition, match=f"attempt {attempt} of task 'a' of run {run_id}") as caught:
        journal.attempt_ended(attempt, TaskState.FAILED, at=time.time(), error="late")
    assert (caught.value.kind, caught.value.from_state, caught.value.attempt_id) == (
        "attempt", TaskState.SUCCEEDED, attempt)
    assert row_of(ws, "attempts", "id = ?", [attempt]) == before


def test_a_refused_change_rolls_back_its_whole_batch(ws, ended):
    """The runner's turn is one transaction: a refused change takes the legal ones before it back too."""
    journal, run_id, _ = ended
    before = ws.db.execute("SELECT * FROM task_states WHERE run_id = ? ORDER BY task_id", [run_id]).fetchall()
    with pytest.raises(InvalidTransition):
        with journal.batch():
            journal.task_changed(run_id, "b", R, was=P, at=time.time(), attempts=1)  # legal
            journal.task_changed(run_id, "a", TaskState.FAILED, was=R, at=time.time())  # a is succeeded
    assert ws.db.execute("SELECT * FROM task_states WHERE run_id = ? ORDER BY task_id", [run_id]).fetchall() == before


def test_a_reused_result_only_lands_on_a_pending_task(ws, ended):
    journal, parent, _ = ended
    journal.task_changed(parent, "b", R, was=P, at=time.time(), attempts=1)
    journal.task_changed(parent, "b", TaskState.FAILED, was=R, at=time.time())
    child = new_run(ws, make_doc([{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}],
                                 [{"from": "a", "to": "b"}]))
    reuse_results(ws.db, child, parent, ["a"])
    assert status_of(ws, child, "a") == "succeeded"
    before = row_of(ws, "task_states", "run_id = ? AND task_id = 'a'", [child])
    with pytest.raises(InvalidTransition, match="cannot go from succeeded to succeeded"):
        reuse_results(ws.db, child, parent, ["a"])  # reused once already
    assert row_of(ws, "task_states", "run_id = ? AND task_id = 'a'", [child]) == before
    with pytest.raises(InvalidTransition, match="cannot go from pending to failed"):
        reuse_results(ws.db, child, parent, ["b"])  # a failure is run again, never reused
    assert status_of(ws, child, "b") == "pending"
