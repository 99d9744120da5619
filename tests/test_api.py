"""The HTTP API over real HTTP: a uvicorn server on 127.0.0.1 in a thread, httpx as the client."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import uvicorn

from taskloom.api.app import create_app
from taskloom.storage.store import Workspace
from taskloom.runtime.execution import execute as execute_run

from clitools import query
from conftest import make_doc

FLOW = make_doc(
    [
        {"id": "greet", "type": "shell",
         "params": {"command": "for i in 1 2 3 4 5; do echo line $i; done; echo 'hi {{ params.who }}'"}},
        {"id": "after", "type": "shell", "params": {"command": "echo done"}},
    ],
    [{"from": "greet", "to": "after"}],
    name="greeter",
    title="Greeter",
    params={"who": {"type": "string", "default": "world"}, "times": {"type": "integer", "default": 1}},
)
TOKEN = "s3cret-token"


@dataclass
class Api:
    url: str
    client: httpx.Client
    woken: list[float] = field(default_factory=list)


@pytest.fixture
def serve(home: Path) -> Iterator[Any]:
    """``serve(token=None, wake=None)`` starts the API for ``home`` on a free port; wake defaults to counting."""
    running: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(token: str | None = None, wake: Any = None) -> Api:
        woken: list[float] = []
        app = create_app(home, token=token, wake=wake or (lambda: woken.append(time.monotonic())))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        client = httpx.Client(base_url=url, timeout=30)
        running.append((server, thread, client))
        return Api(url, client, woken)

    yield start
    for server, thread, client in running:
        client.close()
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api(serve) -> Api:
    return serve()


@pytest.fixture
def stored(api: Api) -> Api:
    """The API with FLOW stored as version 1."""
    assert api.client.post("/workflows", json=FLOW).status_code == 201
    return api


def queue_run(api: Api, **body: Any) -> int:
    response = api.client.post("/workflows/greeter/runs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


def execute(home: Path, run_id: int, cwd: Path) -> None:
    ws = Workspace(home)
    try:
        execute_run(ws, run_id, cwd=str(cwd))
    finally:
        ws.close()


def count_runs(home: Path) -> int:
    return query(home, "SELECT count(*) FROM runs")[0][0]


# -- system ------------------------------------------------------------------------


def test_health(api):
    response = api.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == version("taskloom")
    assert datetime.fromisoformat(body["time"]).utcoffset().total_seconds() == 0


def test_openapi_lists_every_path_and_the_workflow_schema(api):
    spec = api.client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/health", "/workflows", "/workflows/{name}", "/workflows/{name}/versions",
        "/workflows/{name}/versions/{version}", "/workflows/{name}/pause", "/workflows/{name}/resume",
        "/workflows/{name}/runs", "/runs", "/runs/{run_id}", "/runs/{run_id}/logs", "/runs/{run_id}/cancel",
        "/runs/{run_id}/rerun", "/audit",
    }
    schemas = spec["components"]["schemas"]
    assert "tasks" in schemas["TaskloomWorkflow"]["properties"] and "TaskloomWorkflow.task" in schemas
    body = spec["paths"]["/workflows"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TaskloomWorkflow"}
    assert all(op.get("summary") for path in spec["paths"].values() for op in path.values())
    assert api.client.get("/docs").status_code == 200


def test_unknown_endpoint_is_a_json_404(api):
    response = api.client.get("/nope")
    assert response.status_code == 404 and "/nope" in response.json()["error"]
    assert api.client.delete("/workflows").status_code == 405


# -- workflows -----------------------------------------------------------------------


def test_invalid_documents_store_nothing_and_list_every_issue(api, home):
    bad = {**FLOW, "tasks": [{**FLOW["tasks"][0], "type": "shel"}, FLOW["tasks"][1]]}
    response = api.client.post("/workflows", json=bad)
    assert response.status_code == 422
    body = response.json()
    assert "not a valid workflow" in body["error"]
    assert body["issues"][0]["path"] == "/tasks/0/type" and "shell" in body["issues"][0]["hint"]
    broken = api.client.post("/workflows", content=b'{"format": "taskloom/v1",', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "invalid JSON" in broken.json()["issues"][0]["message"]
    assert api.client.post("/workflows", json=[1, 2]).status_code == 422
    assert api.client.get("/workflows").json() == []
    assert query(home, "SELECT count(*) FROM workflows")[0][0] == 0


def test_create_list_and_new_versions(api):
    created = api.client.post("/workflows", json=FLOW)
    assert created.status_code == 201 and created.json() == {"name": "greeter", "version": 1, "created": True}
    same = api.client.post("/workflows", json=FLOW)
    assert same.status_code == 200 and same.json() == {"name": "greeter", "version": 1, "created": False}
    changed = api.client.post("/workflows", json={**FLOW, "title": "Greeter 2"}, params={"message": "retitled"})
    assert changed.status_code == 201 and changed.json()["version"] == 2
    [row] = api.client.get("/workflows").json()
    assert (row["name"], row["title"], row["version"], row["paused"], row["last_run"]) == (
        "greeter", "Greeter 2", 2, False, None)
    assert datetime.fromisoformat(row["updated"])


def test_versions_and_documents(stored):
    stored.client.post("/workflows", json={**FLOW, "title": "v2"}, params={"message": "second"})
    versions = stored.client.get("/workflows/greeter/versions").json()
    assert [(v["version"], v["message"]) for v in versions] == [(1, ""), (2, "second")]
    assert len(versions[0]["sha256"]) == 64
    assert stored.client.get("/workflows/greeter/versions/1").json() == FLOW
    current = stored.client.get("/workflows/greeter").json()
    assert (current["name"], current["version"], current["paused"]) == ("greeter", 2, False)
    assert current["document"]["title"] == "v2"
    missing = stored.client.get("/workflows/greeter/versions/9")
    assert missing.status_code == 404 and "no version 9" in missing.json()["error"]
    assert stored.client.get("/workflows/nope").status_code == 404
    assert stored.client.get("/workflows/nope/versions").status_code == 404
    assert stored.client.get("/workflows/greeter/versions/0").json()["field"] == "path.version"


def test_pause_and_resume_show_in_the_list(stored, home):
    assert stored.client.post("/workflows/greeter/pause").json() == {"name": "greeter", "paused": True}
    assert stored.client.get("/workflows").json()[0]["paused"] is True
    assert query(home, "SELECT paused FROM workflows WHERE name = 'greeter'") == [(1,)]
    assert stored.client.post("/workflows/greeter/resume").json() == {"name": "greeter", "paused": False}
    assert stored.client.get("/workflows/greeter").json()["paused"] is False
    assert len(stored.woken) == 2  # the scheduler replans its firings at once
    missing = stored.client.post("/workflows/nope/pause")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


# -- starting runs ---------------------------------------------------------------------


def test_a_started_run_is_queued_for_the_scheduler(stored, home):
    response = stored.client.post("/workflows/greeter/runs", json={"params": {"who": "api"}, "payload": {"k": [1]}})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.json() == {"run_id": run_id, "status": "queued"}
    [(status, owner, trigger, params, payload, version)] = query(
        home, "SELECT status, owner, trigger, params, trigger_payload, version FROM runs WHERE id = ?", run_id)
    assert (status, owner, trigger, version) == ("queued", None, "api", 1)
    assert json.loads(params) == {"who": "api", "times": 1} and json.loads(payload) == {"k": [1]}
    assert len(stored.woken) == 1
    assert stored.client.post("/workflows/greeter/runs").status_code == 202  # no body: the defaults
    assert len(stored.woken) == 2 and count_runs(home) == 2
    [row] = stored.client.get("/workflows").json()
    assert row["last_run"]["status"] == "queued"


def test_post_workflows_refuses_a_6_mb_body_with_413_as_documented(stored, home):
    """docs/api.md: a body over 5 MB gets 413 ``{"error", "field": "body"}``, unread; it once was a 422."""
    doc = dict(FLOW, name="big", description="x" * (6 * 1024 * 1024))
    body = json.dumps(doc).encode()
    declared = stored.client.post("/workflows", content=body, headers={"Content-Type": "application/json"})
    chunked = stored.client.post("/workflows", content=iter([body[:1 << 20], body[1 << 20:]]),
                                 headers={"Content-Type": "application/json"})
    for response in (declared, chunked):
        assert response.status_code == 413, response.text
        assert set(response.json()) == {"error", "field"} and response.json()["field"] == "body"
        assert "5,242,880" in response.json()["error"] and "nothing was stored" in response.json()["error"]
    assert [w["name"] for w in stored.client.get("/workflows").json()] == ["greeter"]


def test_bad_params_and_unknown_workflows_queue_nothing(stored, home):
    wrong_type = stored.client.post("/workflows/greeter/runs", json={"params": {"times": "3"}})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["field"] == "body.params.times" and "'times'" in wrong_type.json()["error"]
    unknown = stored.client.post("/workflows/greeter/runs", json={"params": {"tims": 3}})
    assert unknown.status_code == 422 and "did you mean 'times'" in unknown.json()["error"]
    assert unknown.json()["issues"] == [{"field": "body.params.tims", "message": unknown.json()["error"]}]
    missing = stored.client.post("/workflows/nope/runs", json={})
    assert missing.status_code == 404 and "no workflow named 'nope'" in missing.json()["error"]
    assert count_runs(home) == 0 and stored.woken == []


def test_malformed_requests_name_the_field(stored, home):
    post = stored.client.post
    not_json = post("/workflows/greeter/runs", content=b'{"params": ', headers={"content-type": "application/json"})
    assert not_json.status_code == 422
    assert not_json.json()["error"] == "invalid request" and not_json.json()["issues"][0]["field"] == "body"
    not_object = post("/workflows/greeter/runs", json={"params": [1, 2]})
    assert not_object.status_code == 422 and not_object.json()["issues"][0]["field"] == "body.params"
    typo = post("/workflows/greeter/runs", json={"parms": {}})
    assert typo.status_code == 422 and typo.json()["field"] == "body.parms"
    assert post("/runs/1/rerun", json={"failed": "yes"}).json()["field"] == "body.failed"
    assert stored.client.get("/runs", params={"limit": 0}).json()["field"] == "query.limit"
    assert stored.client.get("/runs", params={"status": "done"}).json()["field"] == "query.status"
    assert stored.client.get("/runs/abc").json()["field"] == "path.run_id"
    assert count_runs(home) == 0


# -- reading runs -----------------------------------------------------------------------


def test_run_detail_and_paged_logs(stored, home, tmp_path):
    run_id = queue_run(stored, params={"who": "pages"})
    execute(home, run_id, tmp_path)
    run = stored.client.get(f"/runs/{run_id}").json()
    assert (run["run_id"], run["status"], run["trigger"], run["params"]) == (run_id, "succeeded", "api", {"who": "pages", "times": 1})
    assert run["tasks"]["greet"]["output"] == "hi pages" and run["tasks"]["after"]["status"] == "succeeded"
    assert run["tasks"]["greet"]["attempt_list"][0]["status"] == "succeeded"
    everything = stored.client.get(f"/runs/{run_id}/logs").json()
    assert everything["status"] == "succeeded" and everything["next_after_id"] is None
    stdout = [line["line"] for line in everything["lines"] if line["stream"] == "stdout"]
    assert stdout == ["line 1", "line 2", "line 3", "line 4", "line 5", "hi pages", "done"]
    paged, after = [], 0
    while after is not None:
        page = stored.client.get(f"/runs/{run_id}/logs", params={"after_id": after, "limit": 2}).json()
        assert len(page["lines"]) <= 2
        paged += page["lines"]
        after = page["next_after_id"]
    assert paged == everything["lines"]
    only = stored.client.get(f"/runs/{run_id}/logs", params={"task": "after"}).json()["lines"]
    assert {line["task"] for line in only} == {"after"} and datetime.fromisoformat(only[0]["ts"])
    bad_task = stored.client.get(f"/runs/{run_id}/logs", params={"task": "nope"})
    assert bad_task.status_code == 422 and bad_task.json()["field"] == "query.task"
    for path in ("/runs/999", "/runs/999/logs"):
        missing = stored.client.get(path)
        assert missing.status_code == 404 and missing.json()["error"] == "no run with id 999"


def test_runs_list_newest_first_with_filters_and_pages(stored, home, tmp_path):
    ids = [queue_run(stored, params={"times": n}) for n in range(5)]
    execute(home, ids[0], tmp_path)
    listed = stored.client.get("/runs").json()
    assert [r["id"] for r in listed] == ids[::-1]
    assert listed[-1]["status"] == "succeeded" and listed[-1]["params"] == {"who": "world", "times": 0}
    first = stored.client.get("/runs", params={"limit": 2}).json()
    second = stored.client.get("/runs", params={"limit": 2, "before_id": first[-1]["id"]}).json()
    assert [r["id"] for r in first + second] == ids[:0:-1]
    assert [r["id"] for r in stored.client.get("/runs", params={"status": "succeeded"}).json()] == [ids[0]]
    assert stored.client.get("/runs", params={"workflow": "other"}).json() == []
    assert len(stored.client.get("/runs", params={"workflow": "greeter", "status": "queued"}).json()) == 4


# -- cancel and rerun --------------------------------------------------------------------


def test_cancel(stored, home, tmp_path):
    done = queue_run(stored)
    execute(home, done, tmp_path)
    assert stored.client.post(f"/runs/{done}/cancel").json() == {"run_id": done, "result": "ended"}
    queued = queue_run(stored)  # no scheduler took it yet: cancelled on the spot
    assert stored.client.post(f"/runs/{queued}/cancel").json() == {"run_id": queued, "result": "cancelled"}
    assert query(home, "SELECT status FROM runs WHERE id = ?", queued) == [("cancelled",)]
    assert stored.client.post("/runs/999/cancel").status_code == 404


def test_rerun_queues_a_linked_run(stored, home, tmp_path):
    parent = queue_run(stored, params={"who": "again"}, payload={"p": 1})
    execute(home, parent, tmp_path)
    woken = len(stored.woken)
    response = stored.client.post(f"/runs/{parent}/rerun", json={"from_task": "after"})
    assert response.status_code == 202
    child = response.json()["run_id"]
    assert response.json() == {"run_id": child, "status": "queued"} and child != parent
    [row] = query(home, "SELECT status, owner, parent_run_id, trigger, trigger_payload FROM runs WHERE id = ?", child)
    assert row[:4] == ("queued", None, parent, "rerun") and json.loads(row[4]) == {"p": 1}
    run = stored.client.get(f"/runs/{child}").json()
    assert run["parent_run_id"] == parent and run["params"] == {"who": "again", "times": 1}
    assert run["tasks"]["greet"]["status"] == "succeeded" and run["tasks"]["after"]["status"] == "pending"
    assert len(stored.woken) == woken + 1
    assert stored.client.post(f"/runs/{parent}/rerun").status_code == 202  # no body: the whole run


def test_rerun_mistakes(stored, home, tmp_path):
    parent = queue_run(stored)
    execute(home, parent, tmp_path)
    before = count_runs(home)
    unknown = stored.client.post(f"/runs/{parent}/rerun", json={"from_task": "nope"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "body.from_task" and "'nope'" in unknown.json()["error"]
    nothing_failed = stored.client.post(f"/runs/{parent}/rerun", json={"failed": True})
    assert nothing_failed.status_code == 422 and "no failed task" in nothing_failed.json()["error"]
    both = stored.client.post(f"/runs/{parent}/rerun", json={"from_task": "greet", "failed": True})
    assert both.status_code == 422
    assert stored.client.post("/runs/999/rerun", json={}).status_code == 404
    assert count_runs(home) == before


# -- auth ------------------------------------------------------------------------------------


def test_a_token_guards_everything_but_health(serve, home):
    api = serve(token=TOKEN)
    anonymous = api.client.get("/workflows")
    assert anonymous.status_code == 401 and "Authorization: Bearer" in anonymous.json()["error"]
    assert anonymous.headers["www-authenticate"] == "Bearer"
    wrong = api.client.get("/workflows", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid bearer token"}
    assert api.client.get("/workflows", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    for path in ("/openapi.json", "/docs", "/runs/1", "/nope"):
        assert api.client.get(path).status_code == 401, path
    assert api.client.post("/workflows", json=FLOW).status_code == 401
    assert query(home, "SELECT count(*) FROM workflows")[0][0] == 0
    assert api.client.get("/health").status_code == 200
    hook = api.client.post("/hooks/greeter/push", json={})  # webhooks check their own trigger's token
    assert hook.status_code != 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert api.client.get("/workflows", headers=auth).status_code == 200
    assert api.client.post("/workflows", json=FLOW, headers=auth).status_code == 201
    spec = api.client.get("/openapi.json", headers=auth).json()
    assert spec["paths"]["/workflows"]["get"]["security"] == [{"HTTPBearer": []}]


def test_a_failing_wake_does_not_fail_the_request(serve, home):
    def wake() -> None:
        raise RuntimeError("scheduler gone")

    api = serve(wake=wake)
    assert api.client.post("/workflows", json=FLOW).status_code == 201
    assert api.client.post("/workflows/greeter/runs", json={}).status_code == 202
    assert count_runs(home) == 1
