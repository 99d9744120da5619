"""Event triggers against a real scheduler process: webhooks over HTTP, files, git commits, chained workflows."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import time

import httpx
import pytest

from taskloom.api.hooks import REFUSED
from taskloom.storage.secrets import SecretStore
from taskloom.storage.store import Workspace

from clitools import query, start, taskloom, wait_for, write_flow
from conftest import make_doc
from test_scheduler import free_port, stop


@pytest.fixture
def service(home):
    """A scheduler with its API on a free loopback port; yields the base URL."""
    port = free_port()
    proc = start(home, "scheduler", "--port", str(port), "--lease-ttl", "2")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url), timeout=20, what="the API")
    yield url
    stop(proc)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


ECHO = {"id": "echo", "type": "shell", "params": {"command": "echo '{{ trigger.payload | tojson }}'"}}


def test_webhook_with_token(tmp_path, home, service):
    doc = make_doc([ECHO], name="hooked", triggers=[
        {"id": "push", "type": "webhook"}, {"id": "sync", "type": "webhook", "respond": "run"}])
    taskloom(home, "import", write_flow(tmp_path, doc))
    hooks = {h["trigger"]: h for h in json.loads(taskloom(home, "webhooks", "hooked", "--base-url", service, "--json").stdout)}
    url, token = hooks["push"]["url"], hooks["push"]["token"]
    assert token and url == f"{service}/hooks/hooked/push"
    wrong = httpx.post(url, json={"a": 1}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert query(home, "SELECT count(*) FROM runs")[0][0] == 0  # nothing started
    ok = httpx.post(url, json={"a": 1}, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 202
    run_id = ok.json()["run_id"]
    wait_for(lambda: query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] == "succeeded", what="the run")
    run = json.loads(taskloom(home, "runs", "--json").stdout)[0]
    assert run["trigger"] == "webhook" and run["tasks"]["echo"]["output"] == {"a": 1}
    # respond: run waits and returns the outputs, like an HTTP API made of a workflow
    sync = httpx.post(hooks["sync"]["url"], json={"b": 2}, headers={"Authorization": f"Bearer {hooks['sync']['token']}"},
                      timeout=30)
    assert sync.status_code == 200 and sync.json()["outputs"]["echo"] == {"b": 2}


def test_webhook_with_hmac_signature(tmp_path, home, service):
    with _ws(home) as ws:
        SecretStore(ws.db, ws.home).set("HOOK_SECRET", "shared-signing-key")
    doc = make_doc([ECHO], name="signed", triggers=[{"id": "gh", "type": "webhook", "secret": "HOOK_SECRET"}])
    taskloom(home, "import", write_flow(tmp_path, doc))
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    url = f"{service}/hooks/signed/gh"
    bad = httpx.post(url, content=body, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert bad.status_code == 401 and bad.json() == REFUSED
    good_sig = "sha256=" + hmac.new(b"shared-signing-key", body, hashlib.sha256).hexdigest()
    good = httpx.post(url, content=body, headers={"X-Hub-Signature-256": good_sig, "Content-Type": "application/json"})
    assert good.status_code == 202
    assert query(home, "SELECT count(*) FROM runs")[0][0] == 1


class _ws:
    def __init__(self, home):
        self.ws = Workspace(home)

    def __enter__(self):
        return self.ws

    def __exit__(self, *exc):
        self.ws.close()


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


def test_webhooks_prints_the_address_the_running_schedulers_api_listens_on(tmp_path, home):
    """Not the default port: the scheduler records where its API really listens (here a port the OS chose)."""
    doc = make_doc([ECHO], name="hooked", triggers=[{"id": "push", "type": "webhook"}])
    taskloom(home, "import", write_flow(tmp_path, doc))
    proc = start(home, "scheduler", "--port", "0", "--lease-ttl", "2")
    try:
        wait_for(lambda: query(home, "SELECT count(*) FROM scheduler_lease WHERE expires > ?", time.time())[0][0],
                 what="the lease")
        listed = taskloom(home, "webhooks", "hooked", "--json")
        assert listed.returncode == 0 and "default address" not in listed.stderr, listed.stderr
        url = json.loads(listed.stdout)[0]["url"]
        base = url.removesuffix("/hooks/hooked/push")
        assert base.startswith("http://127.0.0.1:") and not base.endswith((":0", ":8765")), url
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        assert f"push: POST {url}" in taskloom(home, "webhooks", "hooked").stdout
    finally:
        stop(proc)
    after = taskloom(home, "webhooks", "hooked", "--json")  # stopped: the lease is released, the default is shown
    assert json.loads(after.stdout)[0]["url"] == "http://127.0.0.1:8765/hooks/hooked/push"
    assert "no running scheduler serves the API" in after.stderr


def test_the_api_address_is_the_lease_holders(home):
    """Storage: each scheduler process records its API; the one holding a live lease is the answer."""
    from taskloom.storage.scheduling import acquire_lease, api_address, record_api_address, release_lease

    with _ws(home) as ws:
        assert api_address(ws.db) is None  # no scheduler ever ran
        record_api_address(ws.db, "http://127.0.0.1:9001")
        assert api_address(ws.db) is None  # serving, but not (yet) holding the lease
        lease = acquire_lease(ws.db, "me", ttl=60, version="test")
        assert api_address(ws.db) == "http://127.0.0.1:9001"
        record_api_address(ws.db, None)  # restarted with --no-api under the same pid
        assert api_address(ws.db) is None
        record_api_address(ws.db, "http://[::1]:9002")
        assert api_address(ws.db) == "http://[::1]:9002"
        release_lease(ws.db, lease)
        assert api_address(ws.db) is None


def test_git_trigger_fires_once_per_new_commit(tmp_path, home):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-b", "main")
    (repo / "a.txt").write_text("1")
    git(repo, "add", ".")
    git(repo, "commit", "-m", "first")
    doc = make_doc([{"id": "ci", "type": "shell", "params": {"command": "echo {{ trigger.payload.commit }}"}}],
                   name="on-commit", triggers=[{"id": "main", "type": "git", "repo": str(repo), "poll_seconds": 1}])
    taskloom(home, "import", write_flow(tmp_path, doc))
    proc = start(home, "scheduler", "--no-api", "--lease-ttl", "2")
    try:
        wait_for(lambda: query(home, "SELECT cursor FROM trigger_state WHERE trigger_id = 'main'")[0][0],
                 what="the first poll to take stock")
        time.sleep(1.5)
        assert query(home, "SELECT count(*) FROM runs")[0][0] == 0  # the existing commit does not fire
        for n in (2, 3):
            (repo / "a.txt").write_text(str(n))
            git(repo, "commit", "-am", f"change {n}")
        wait_for(lambda: query(home, "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] == 2, what="two runs")
    finally:
        stop(proc)
    # a restart neither re-fires old commits nor misses a new one
    (repo / "a.txt").write_text("4")
    git(repo, "commit", "-am", "change 4")
    again = start(home, "scheduler", "--no-api", "--lease-ttl", "2")
    try:
        wait_for(lambda: query(home, "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] == 3, what="third run")
        time.sleep(2)
    finally:
        stop(again)
    payloads = [json.loads(p) for (p,) in query(home, "SELECT trigger_payload FROM runs ORDER BY id")]
    assert [p["message"] for p in payloads] == ["change 2", "change 3", "change 4"]
    assert all(p["author"] == "Ada <ada@example.com>" and len(p["commit"]) == 40 for p in payloads)


def test_file_and_workflow_triggers_chain(tmp_path, home):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.csv").write_text("already here")
    ingest = make_doc([{"id": "read", "type": "shell", "params": {"command": "wc -c < {{ trigger.payload.path }}"}}],
                      name="ingest", triggers=[{"id": "csv", "type": "file", "path": str(inbox), "pattern": "*.csv",
                                                "poll_seconds": 1}])
    report = make_doc([{"id": "say", "type": "shell", "params": {"command": "echo after {{ trigger.payload.run_id }}"}}],
                      name="report", triggers=[{"id": "after", "type": "workflow", "workflow": "ingest", "poll_seconds": 1}])
    for doc in (ingest, report):
        taskloom(home, "import", write_flow(tmp_path, doc, f"{doc['name']}.json"))
    proc = start(home, "scheduler", "--no-api", "--lease-ttl", "2")
    try:
        wait_for(lambda: query(home, "SELECT count(*) FROM trigger_state WHERE cursor IS NOT NULL")[0][0] == 2,
                 what="both triggers to take stock")
        (inbox / "new.csv").write_text("12345")
        (inbox / "ignored.txt").write_text("x")
        wait_for(lambda: query(home, "SELECT count(*) FROM runs WHERE workflow = 'report' AND status = 'succeeded'")[0][0] == 1,
                 timeout=20, what="the chained run")
    finally:
        stop(proc)
    ingest_runs = query(home, "SELECT trigger_payload FROM runs WHERE workflow = 'ingest'")
    assert len(ingest_runs) == 1 and json.loads(ingest_runs[0][0])["name"] == "new.csv"


def test_trigger_command_wakes_the_scheduler(tmp_path, home):
    doc = make_doc([{"id": "t", "type": "shell", "params": {"command": "echo hi"}}], name="by-hand")
    taskloom(home, "import", write_flow(tmp_path, doc))
    proc = start(home, "scheduler", "--no-api", "--lease-ttl", "2")
    try:
        wait_for(lambda: query(home, "SELECT count(*) FROM scheduler_lease")[0][0] == 1, what="the lease")
        time.sleep(0.5)
        began = time.monotonic()
        result = taskloom(home, "trigger", "by-hand")
        assert result.returncode == 0 and "queued" in result.stdout
        wait_for(lambda: query(home, "SELECT status FROM runs")[0][0] == "succeeded", timeout=10, what="the run")
        assert time.monotonic() - began < 5  # woken by SIGUSR1, not found by a slow poll
        assert taskloom(home, "pause", "by-hand").returncode == 0
        listed = json.loads(taskloom(home, "list", "--json").stdout)
        assert listed[0]["paused"] is True
        assert taskloom(home, "resume", "by-hand").returncode == 0
        assert json.loads(taskloom(home, "list", "--json").stdout)[0]["paused"] is False
    finally:
        stop(proc)


def test_the_api_refuses_a_public_address_without_accounts_or_a_token(home):
    result = taskloom(home, "scheduler", "--host", "0.0.0.0", "--port", str(free_port()), timeout=30)
    assert result.returncode == 1
    text = " ".join(result.stderr.split())
    assert "with no accounts and no token" in text and "taskloom users add NAME --role admin" in text
    assert "TASKLOOM_API_TOKEN" in text
