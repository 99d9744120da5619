"""The service's hot path: webhook runs handed to a run thread at once, their end answering the request, few commits.

Real things throughout: SQLite files in tmp_path, the real runner and scheduler
in this process, the webhook app served through Starlette's test client.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
import threading
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from taskloom.api import hooks
from taskloom.api.hooks import add_hooks
from taskloom.runtime.execution import execute
from taskloom.runtime.runthreads import Job, RunThreads
from taskloom.runtime.scheduler import Scheduler
from taskloom.storage.runends import RunEnds
from taskloom.storage.scheduling import webhook_token
from taskloom.storage.store import Workspace

from conftest import make_doc

CHAIN = [
    {"id": "parse", "type": "transform", "params": {"value": {"n": "{{ trigger.payload.n }}"}}},
    {"id": "double", "type": "transform", "params": {"value": {"n": "{{ tasks.parse.output.n * 2 }}"}}},
    {"id": "answer", "type": "transform", "params": {"value": "{{ tasks.double.output.n + 1 }}"}},
]
EDGES = [{"from": "parse", "to": "double"}, {"from": "double", "to": "answer"}]


def _commits(ws: Workspace) -> list[str]:
    seen: list[str] = []
    ws.db.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper().startswith("COMMIT") else None)
    return seen


def test_a_chain_of_in_process_tasks_is_one_commit_and_a_pooled_task_is_committed_before_it_starts(ws):
    ws.save(make_doc(CHAIN, EDGES, name="inline"))
    run_id, _ = ws.start_run(ws.target("inline"), {}, trigger="webhook", trigger_payload={"n": 4})
    commits = _commits(ws)
    assert execute(ws, run_id, owner="test").value == "succeeded"
    assert len(commits) == 1  # the run's start, three attempts and their ends, and the run's end
    run = ws.run(run_id, attempts=True)
    assert run.tasks["answer"].output == 9 and all(t.attempts == 1 for t in run.tasks.values())

    # a shell task between two transforms: its attempt is on disk before its process starts (the process reads it)
    probe = (f"{sys.executable} -c \"import json, os, sqlite3; db = sqlite3.connect('{ws.database}');"
             " row = db.execute('SELECT status FROM attempts WHERE id = ?', [int(os.environ['TASKLOOM_ATTEMPT_ID'])]);"
             " print(json.dumps({'seen': (row.fetchone() or [None])[0]}))\"")
    shell = {"id": "middle", "type": "shell", "params": {"command": probe}}
    doc = make_doc([CHAIN[0], shell, {**CHAIN[2], "params": {"value": "{{ tasks.middle.output.seen }}"}}],
                   [{"from": "parse", "to": "middle"}, {"from": "middle", "to": "answer"}], name="mixed")
    ws.save(doc)
    run_id, _ = ws.start_run(ws.target("mixed"), {}, trigger="webhook", trigger_payload={"n": 5})
    ws.db.conn.set_trace_callback(None)
    assert execute(ws, run_id, owner="test").value == "succeeded"
    assert ws.run(run_id).tasks["answer"].output == "running"

def test_run_ends_answers_a_run_ended_by_another_process_without_a_thread_per_waiter(ws, home):
    ws.save(make_doc(CHAIN, EDGES, name="inline"))
    ends = RunEnds(home)
    run_ids = [ws.start_run(ws.target("inline"), {}, trigger="webhook", trigger_payload={"n": n})[0] for n in range(5)]
    threads_before = threading.active_count()
    futures = {run_id: ends.expect(run_id) for run_id in run_ids}
    for run_id in run_ids:
        ends.watch_elsewhere(run_id)
    assert threading.active_count() - threads_before == 1  # one watcher, whatever the number of waiters
    other = Workspace(home)  # "elsewhere": a connection of its own, like another process
    try:
        for run_id in run_ids:
            assert execute(other, run_id, owner="other").value == "succeeded"
    finally:
        other.close()
    answers = {run_id: future.result(timeout=10) for run_id, future in futures.items()}
    for n, run_id in enumerate(run_ids):
        assert answers[run_id]["status"] == "succeeded" and answers[run_id]["outputs"]["answer"] == n * 2 + 1
    deadline = time.monotonic() + 5
    while ends._watcher is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ends._watcher is None  # nothing left to wait for: the watcher ended


def test_run_threads_are_reused_with_their_connection(home):
    Workspace(home).close()
    pool = RunThreads(home)
    seen = []
    try:
        for _ in range(3):
            job = Job(lambda slot: seen.append((threading.get_ident(), id(slot.get()))), "run-x")
            pool.submit(job)
            job.join(5)
            assert not job.is_alive()
    finally:
        pool.close()
    assert len(set(seen)) == 1  # one thread, one workspace, for three runs in a row


def _app_with_scheduler(home):
    service = Scheduler(home, lease_ttl=2)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not service.owner and time.monotonic() < deadline:
        time.sleep(0.01)
    app = FastAPI()
    add_hooks(app, home, wake=service.wake, runs=service)
    return service, thread, app


@pytest.mark.parametrize("served_by", ["this process's scheduler", "a scheduler elsewhere"])
def test_respond_run_returns_the_outputs_once_per_request(ws, home, served_by):
    doc = make_doc(CHAIN, EDGES, name="api", triggers=[{"id": "call", "type": "webhook", "respond": "run"}])
    ws.save(doc)
    headers = {"Authorization": f"Bearer {webhook_token(ws.db, 'api', 'call')}"}
    if served_by == "this process's scheduler":
        service, thread, app = _app_with_scheduler(home)
    else:  # the API alone: runs are queued, a scheduler in another thread (its own connections) runs them
        service = Scheduler(home, lease_ttl=2)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        app = FastAPI()
        add_hooks(app, home, wake=service.wake)
    try:
        with TestClient(app) as client:
            replies = [client.post("/hooks/api/call", json={"n": n}, headers=headers) for n in range(10)]
    finally:
        service.stop()
        thread.join(30)
    assert [r.status_code for r in replies] == [200] * 10
    assert [r.json()["outputs"]["answer"] for r in replies] == [n * 2 + 1 for n in range(10)]
    rows = ws.db.execute("SELECT status, count(*) FROM runs WHERE workflow = 'api' GROUP BY status").fetchall()
    assert rows == [("succeeded", 10)]
    assert ws.db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 30


def test_start_now_keeps_to_max_runs_and_queues_the_rest(ws, home):
    ws.save(make_doc([{"id": "wait", "type": "shell", "params": {"command": "sleep 1"}}], name="slow",
                     settings={"overlap": "allow", "max_active_runs": 10}))
    service = Scheduler(home, lease_ttl=2, max_runs=1)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not service.owner and time.monotonic() < deadline:
            time.sleep(0.01)
        first, _ = service.start_now(ws, ws.target("slow"), trigger="webhook")
        second, _ = service.start_now(ws, ws.target("slow"), trigger="webhook")
        owners = dict(ws.db.execute("SELECT id, owner FROM runs").fetchall())
        assert owners[first] == service.owner and owners[second] is None  # no room: queued for any scheduler
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = ws.db.execute("SELECT count(*) FROM runs WHERE status = 'succeeded'").fetchone()[0]
            if done == 2:
                break
            time.sleep(0.05)
        assert done == 2
    finally:
        service.stop()
        thread.join(30)


def test_a_large_upstream_output_in_rendered_params_is_stored_as_its_reference_not_a_copy(ws):
    code = "def main():\n    return 'x' * 3_000_000\n"
    ws.save(make_doc([{"id": "make", "type": "python", "params": {"code": code}},
                      {"id": "use", "type": "transform", "params": {"value": {"got": "{{ tasks.make.output }}",
                                                                              "small": "{{ 1 + 1 }}"}}}],
                     [{"from": "make", "to": "use"}], name="big"))
    run_id, _ = ws.start_run(ws.target("big"), {})
    assert execute(ws, run_id, owner="test").value == "succeeded"
    stored = ws.db.execute("SELECT length(params), params FROM attempts WHERE run_id = ? AND task_id = 'use'",
                           [run_id]).fetchone()
    assert stored[0] < 10_000  # a reference and a preview, not the 3 MB again
    params = json.loads(stored[1])
    ref = params["value"]["got"]["$taskloom_spilled"]
    assert ref["bytes"] == 3_000_002 and ref["preview"].startswith('"xxx') and params["value"]["small"] == 2
    upstream = json.loads(ws.db.execute("SELECT output FROM attempts WHERE run_id = ? AND task_id = 'make'",
                                        [run_id]).fetchone()[0])
    assert ref == upstream["$taskloom_spilled"]  # the upstream attempt's own file: nothing written twice
    kept = ws.run(run_id).tasks["use"].output["$taskloom_spilled"]  # its own output is kept apart, as documented
    assert json.loads((Path(ws.home) / kept["path"]).read_text()) == {"got": "x" * 3_000_000, "small": 2}


def test_a_webhook_is_authenticated_created_and_run_on_one_run_thread_and_answered_before_a_long_run(
        ws, home, monkeypatch):
    """The request passes from the event loop to one run thread and back: no request thread in between.
    A webhook that does not wait for its run gets 202 while the run still runs; a refused one starts nothing."""
    seen: dict[str, str] = {}
    doc = make_doc([{"id": "first", "type": "transform", "params": {"value": 1}},
                    {"id": "slow", "type": "shell", "params": {"command": "sleep 1.5"}}],
                   [{"from": "first", "to": "slow"}], name="hook",
                   triggers=[{"id": "call", "type": "webhook"}], settings={"overlap": "allow"})
    ws.save(doc)
    headers = {"Authorization": f"Bearer {webhook_token(ws.db, 'hook', 'call')}"}
    service, thread, app = _app_with_scheduler(home)
    real_handle, real_execute = hooks._handle, service._execute

    def handle_spy(ws_, *args, **kwargs):
        seen["handled on"] = threading.current_thread().name
        return real_handle(ws_, *args, **kwargs)

    def execute_spy(run_id, *args, **kwargs):
        seen["inline"] = "yes" if kwargs.get("slot") is not None else "no"
        return real_execute(run_id, *args, **kwargs)

    monkeypatch.setattr(hooks, "_handle", handle_spy)
    monkeypatch.setattr(service, "_execute", execute_spy)
    try:
        with TestClient(app) as client:
            started = time.monotonic()
            reply = client.post("/hooks/hook/call", json={}, headers=headers)
            answered = time.monotonic() - started
            refused = client.post("/hooks/hook/call", json={}, headers={"Authorization": "Bearer wrong"})
            run_id = reply.json()["run_id"]
            deadline = time.monotonic() + 20
            while ws.run(run_id).status != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        service.stop()
        thread.join(30)
    assert reply.status_code == 202 and reply.json()["status"] == "queued"
    assert answered < 1.0, f"the 202 waited {answered:.2f} s: for the run, not just for its creation"
    assert refused.status_code == 401
    assert seen["handled on"] == "webhook" and seen["inline"] == "yes"
    assert ws.run(run_id).status == "succeeded"
    assert ws.db.execute("SELECT count(*) FROM runs WHERE workflow = 'hook'").fetchone()[0] == 1
