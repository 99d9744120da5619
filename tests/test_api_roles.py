"""Every REST endpoint against every role, over real HTTP: the status each role gets, and the audit trail after.

The operations come from the server's own OpenAPI document, so a new endpoint without a line in
:data:`NEEDS` fails here until someone decides who may call it. The expected roles are written out
below, not read from the code under test.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskloom.storage.accounts import Accounts
from taskloom.storage.store import Workspace

from clitools import free_port, query, start, taskloom, wait_for, write_flow
from conftest import make_doc
from test_api import execute, serve  # noqa: F401  (the fixture: a uvicorn server on 127.0.0.1)
from test_triggers import service  # noqa: F401  (the fixture: a real scheduler with its API)

pytestmark = pytest.mark.both_backends

ROLES = ("viewer", "operator", "editor", "admin")
SERVICE_TOKEN = "the-service-token-for-scripts"
FLOW = make_doc([{"id": "a", "type": "shell", "params": {"command": "echo hi"}}], name="flow")

#: operation -> the least role that may call it
NEEDS = {
    "GET /workflows": "viewer", "GET /workflows/{name}": "viewer", "GET /workflows/{name}/versions": "viewer",
    "GET /workflows/{name}/versions/{version}": "viewer", "GET /runs": "viewer", "GET /runs/{run_id}": "viewer",
    "GET /runs/{run_id}/logs": "viewer",
    "POST /workflows/{name}/runs": "operator", "POST /runs/{run_id}/cancel": "operator",
    "POST /runs/{run_id}/rerun": "operator", "POST /workflows/{name}/pause": "operator",
    "POST /workflows/{name}/resume": "operator",
    "POST /workflows": "editor",
    "GET /audit": "admin",
}
#: what each operation's audit row says when it is refused (None: reading is not audited)
ACTION = {"POST /workflows/{name}/runs": "trigger", "POST /runs/{run_id}/cancel": "cancel",
          "POST /runs/{run_id}/rerun": "rerun", "POST /workflows/{name}/pause": "pause",
          "POST /workflows/{name}/resume": "pause", "POST /workflows": "save", "GET /audit": "audit"}


@pytest.fixture
def team(home: Path, tmp_path: Path, serve):  # noqa: F811
    """A home with FLOW, one finished run, a user of each role with a token, and the API with a service token."""
    ws = Workspace(home)
    try:
        ws.save(FLOW, actor="admin")
        run_id, _ = ws.start_run(ws.target("flow"), {}, from_text=False)
        accounts = Accounts(ws.db)
        tokens = {}
        for role in ROLES:
            accounts.add(role, role, None)
            tokens[role] = accounts.create_token(role, label="test")[1]
    finally:
        ws.close()
    execute(home, run_id, tmp_path)
    api = serve(token=SERVICE_TOKEN)
    return api, tokens, run_id


def operations(api) -> list[tuple[str, str]]:
    spec = api.client.get("/openapi.json", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}).json()
    return [(method.upper(), path) for path, methods in spec["paths"].items() for method in methods
            if path != "/health" and not path.startswith("/hooks/")]


def call(api, method: str, path: str, run_id: int, token: str | None) -> Any:
    url = path.replace("{name}", "flow").replace("{run_id}", str(run_id)).replace("{version}", "1")
    body = FLOW if (method, path) == ("POST", "/workflows") else ({} if method == "POST" else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.client.request(method, url, json=body, headers=headers)


def test_every_endpoint_answers_each_role_as_the_table_says(team, home):
    api, tokens, run_id = team
    found = operations(api)
    assert {f"{m} {p}" for m, p in found} == set(NEEDS), "an endpoint without a decision on who may call it"
    table: dict[str, dict[str, int]] = {}
    for method, path in found:
        label = f"{method} {path}"
        row = table[label] = {}
        row["none"] = call(api, method, path, run_id, None).status_code
        row["bad"] = call(api, method, path, run_id, "tlk_not-a-token").status_code
        for role in ROLES:
            response = call(api, method, path, run_id, tokens[role])
            row[role] = response.status_code
            if response.status_code == 403:
                body = response.json()
                assert body["needed"] == NEEDS[label] and f"{role} is" in body["error"], body
        row["service"] = call(api, method, path, run_id, SERVICE_TOKEN).status_code
    for label, row in table.items():
        least = ROLES.index(NEEDS[label])
        assert row["none"] == 401 and row["bad"] == 401, (label, row)
        for at, role in enumerate(ROLES):
            if at < least:
                assert row[role] == 403, (label, role, row)
            else:
                assert 200 <= row[role] < 300, (label, role, row)
        assert 200 <= row["service"] < 300, (label, row)
    refused = query(home, "SELECT actor, action, result FROM audit WHERE result = 'refused'")
    expected = sorted((role, ACTION[label], "refused") for label in NEEDS if label in ACTION
                      for role in ROLES[:ROLES.index(NEEDS[label])])
    assert sorted(refused) == expected
    print("\n".join(f"{label:45} {row}" for label, row in sorted(table.items())))


def test_changes_through_the_api_are_audited_with_the_caller_and_address(team, home):
    api, tokens, run_id = team
    auth = {"Authorization": f"Bearer {tokens['operator']}"}
    queued = api.client.post("/workflows/flow/runs", json={}, headers=auth).json()["run_id"]
    assert api.client.post(f"/runs/{queued}/cancel", headers=auth).status_code == 200
    assert api.client.post("/workflows/flow/pause", headers=auth).status_code == 200
    editor = {"Authorization": f"Bearer {tokens['editor']}"}
    changed = make_doc([{"id": "a", "type": "noop"}], name="flow")
    assert api.client.post("/workflows", json=changed, headers=editor).json()["version"] == 2
    rows = query(home, "SELECT actor, via, action, target, workflow, version, result, source FROM audit"
                       " ORDER BY id")
    assert rows == [
        ("operator", "token", "trigger", f"run {queued}", "flow", 1, "ok", "api 127.0.0.1"),
        ("operator", "token", "cancel", f"run {queued}", "flow", 1, "ok", "api 127.0.0.1"),
        ("operator", "token", "pause", "workflow flow", "flow", None, "ok", "api 127.0.0.1"),
        ("editor", "token", "save", "workflow flow", "flow", 2, "ok", "api 127.0.0.1"),
    ]
    assert query(home, "SELECT started_by FROM runs WHERE id = ?", queued) == [("operator",)]
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    page = api.client.get("/audit", params={"user": "operator", "limit": 2}, headers=admin).json()
    assert [r["action"] for r in page] == ["pause", "cancel"]
    since = api.client.get("/audit", params={"since": "2000-01-01T00:00:00"}, headers=admin).json()
    assert len(since) == 4
    assert api.client.get("/workflows", headers=admin).json()[0]["owner"] == "admin"


def test_a_token_stops_working_when_revoked_expired_or_its_user_removed_and_roles_apply_at_once(team, home):
    api, tokens, run_id = team
    auth = lambda role: {"Authorization": f"Bearer {tokens[role]}"}  # noqa: E731
    assert api.client.post("/workflows/flow/pause", headers=auth("operator")).status_code == 200
    ws = Workspace(home)
    try:
        accounts = Accounts(ws.db)
        accounts.set_role("operator", "viewer")
        assert api.client.post("/workflows/flow/pause", headers=auth("operator")).status_code == 403
        accounts.revoke_token(accounts.tokens("viewer")[0].id)
        expiring = accounts.create_token("editor", expires=time.time() + 0.5)[1]
        accounts.remove("operator")
    finally:
        ws.close()
    revoked = api.client.get("/runs", headers=auth("viewer"))
    assert revoked.status_code == 401 and "was revoked" in revoked.json()["error"]
    assert api.client.get("/runs", headers=auth("operator")).status_code == 401
    assert api.client.get("/runs", headers={"Authorization": f"Bearer {expiring}"}).status_code == 200
    time.sleep(0.6)
    expired = api.client.get("/runs", headers={"Authorization": f"Bearer {expiring}"})
    assert expired.status_code == 401 and "has expired" in expired.json()["error"]
    assert api.client.get("/docs").status_code == 401, "without a token not even the docs"
    assert api.client.get("/docs", headers=auth("admin")).status_code == 200


def test_without_accounts_or_a_token_the_api_serves_loopback_as_before(home, serve):  # noqa: F811
    api = serve()
    assert api.client.post("/workflows", json=FLOW).status_code == 201
    assert api.client.get("/audit").status_code == 200
    assert query(home, "SELECT actor, via, action FROM audit") == [("local", "local", "save")]
    ws = Workspace(home)
    try:
        Accounts(ws.db).add("ann", "admin", "correct horse battery")
    finally:
        ws.close()
    refused = api.client.get("/workflows")
    assert refused.status_code == 401 and "Authorization: Bearer" in refused.json()["error"], \
        "the first account makes every caller show a token"


@pytest.mark.sqlite_only
def test_the_scheduler_serves_a_public_address_once_the_home_has_accounts(home, tmp_path):
    other = tmp_path / "no-accounts"
    refused = taskloom(other, "scheduler", "--host", "0.0.0.0", "--port", str(free_port()), timeout=30)
    assert refused.returncode == 1 and "with no accounts and no token" in " ".join(refused.stderr.split())
    assert taskloom(home, "users", "add", "ann", "--role", "admin", input="correct horse battery").returncode == 0
    port = free_port()
    proc = start(home, "scheduler", "--host", "0.0.0.0", "--port", str(port))
    try:
        def health() -> int:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
            except httpx.HTTPError:
                return 0

        assert wait_for(lambda: health() == 200, timeout=30, what="the API on 0.0.0.0")
        assert httpx.get(f"http://127.0.0.1:{port}/runs", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.sqlite_only
def test_webhooks_keep_their_own_tokens_when_the_home_has_accounts(home, tmp_path, service):  # noqa: F811
    assert taskloom(home, "users", "add", "ann", "--role", "admin", input="correct horse battery").returncode == 0
    user_token = json.loads(taskloom(home, "tokens", "create", "--user", "ann", "--json").stdout)["token"]
    doc = make_doc([{"id": "a", "type": "shell", "params": {"command": "echo hooked"}}], name="hooked",
                   triggers=[{"id": "push", "type": "webhook"}])
    assert taskloom(home, "import", write_flow(tmp_path, doc)).returncode == 0
    (hook,) = json.loads(taskloom(home, "webhooks", "hooked", "--base-url", service, "--json").stdout)
    assert httpx.post(hook["url"], json={}, headers={"Authorization": f"Bearer {user_token}"}).status_code == 401, \
        "a user's token is not the webhook's"
    started = httpx.post(hook["url"], json={}, headers={"Authorization": f"Bearer {hook['token']}"})
    assert started.status_code == 202, started.text
    assert query(home, "SELECT started_by, trigger FROM runs") == [("webhook", "webhook")]
    assert httpx.get(f"{service}/runs").status_code == 401
    assert httpx.get(f"{service}/runs", headers={"Authorization": f"Bearer {user_token}"}).status_code == 200
