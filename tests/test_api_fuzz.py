"""Fuzzing the REST API from its own OpenAPI document (schemathesis) over real HTTP on 127.0.0.1.

The app is the one ``taskloom scheduler`` serves: :func:`taskloom.api.app.create_app`
with a bearer token plus the webhooks of :func:`taskloom.api.hooks.add_hooks`,
run by uvicorn on a free loopback port. The home holds a workflow with params
and a webhook trigger, a finished run and a queued one, so requests aimed at
existing resources reach the deep code paths, not only the 404s.

For every operation in ``/openapi.json`` schemathesis generates requests that
fit the schema (positive) and requests that break it (negative), once with
generated path parameters and once with the path pointing at the stored
workflow and run. Each request must get no 5xx (schemathesis's
``not_a_server_error`` check), and a 4xx must leave the database exactly as it
was: a hash of every table's rows is taken before and after.

Two operations get more than their OpenAPI entry lets schemathesis generate:
``POST /workflows`` also receives the documents of the property tests (valid
ones must be stored exactly as sent, damaged ones get 422 and store nothing),
and the webhook, whose body OpenAPI does not describe, receives any bytes with
no, wrong or right credentials (only the right token with a storable body
starts a run).

Derandomized with a modest number of examples per operation and mode, so it
is deterministic and takes about half a minute; ``TASKLOOM_HYPOTHESIS=taskloom-hunt``
runs ten times as many at random.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, note, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from taskloom.core.validation import validate_document
from taskloom.api.app import create_app
from taskloom.api.hooks import add_hooks
from taskloom.storage.scheduling import webhook_token
from taskloom.storage.sqlite import sqlite3
from taskloom.storage.store import Workspace
from taskloom.runtime.execution import execute

from conftest import make_doc
from test_property_validation import budget, edit, json_values, valid_documents

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLOW = make_doc(
    [{"id": "greet", "type": "shell", "params": {"command": "echo 'hi {{ params.who }}'"}},
     {"id": "after", "type": "noop"}],
    [{"from": "greet", "to": "after"}],
    name="greeter",
    params={"who": {"type": "string", "default": "world"}, "times": {"type": "integer", "default": 1}},
    triggers=[{"id": "push", "type": "webhook"}],
)
#: Path parameters naming what the home holds.
EXISTING = {"name": "greeter", "version": 1, "run_id": 1, "workflow": "greeter", "trigger_id": "push"}


def snapshot(db_path: Path) -> str:
    """A hash of every row of every table: equal hashes, unchanged database."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        digest = hashlib.sha256()
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            digest.update(table.encode())
            for row in sorted(conn.execute(f'SELECT * FROM "{table}"'), key=repr):
                digest.update(repr(row).encode())
        return digest.hexdigest()
    finally:
        conn.close()


@dataclass
class Served:
    url: str
    home: Path
    hook_token: str
    seen: dict[str, dict[int, int]] = field(default_factory=dict)  # operation -> status -> count


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The scheduler's app (API and webhooks) over a seeded home, on a free 127.0.0.1 port."""
    home = tmp_path_factory.mktemp("home")
    ws = Workspace(home)
    try:
        ws.save(FLOW)
        target = ws.target("greeter")
        done, _ = ws.start_run(target, {})
        execute(ws, done, cwd=str(home))
        ws.start_run(target, {"who": "queued"})
        hook_token = webhook_token(ws.db, "greeter", "push")
    finally:
        ws.close()
    app = create_app(home, token=TOKEN)
    add_hooks(app, home)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.01)
    yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", home, hook_token)
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    """The API's own OpenAPI document, fetched over HTTP with the token."""
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json", headers=AUTH)


def operations(schema: Any) -> list[Any]:
    """Every operation of the document (schemathesis fails here if one cannot be loaded)."""
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(served: Served, operation: Any, mode: GenerationMode, path_parameters: dict[str, Any] | None,
         examples: int) -> None:
    """Send generated requests for one operation; no 5xx, and a 4xx stores nothing."""
    db_path = served.home / "taskloom.db"
    counts = served.seen.setdefault(f"{operation.label} ({mode}{', existing paths' if path_parameters else ''})", {})
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(budget(examples), suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        before = snapshot(db_path)
        response = case.call(base_url=served.url, headers=AUTH, timeout=30)
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if 400 <= response.status_code < 500:
            changed = f"a {response.status_code} changed the database: {case.as_curl_command()}"
            assert snapshot(db_path) == before, changed

    try:
        check()
    except Unsatisfiable:  # negative mode on an operation without a parameter or body: nothing to break
        assert mode is GenerationMode.NEGATIVE and not counts, operation.label
        return
    assert sum(counts.values()) > 0, f"no request was sent for {operation.label}"


def test_the_api_has_the_expected_operations(api_schema: Any) -> None:
    """The fuzzing below covers every path, the webhook included."""
    labels = {op.label for op in operations(api_schema)}
    assert "POST /workflows" in labels and "POST /hooks/{workflow}/{trigger_id}" in labels
    assert len(labels) == 16


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("aimed", [False, True], ids=["generated-paths", "existing-paths"])
def test_no_server_error_and_a_4xx_stores_nothing(served: Served, api_schema: Any, mode: GenerationMode,
                                                   aimed: bool) -> None:
    """Every operation, 25 examples each (250 in a bug hunt)."""
    for operation in operations(api_schema):
        names = {p.name for p in operation.path_parameters}
        if aimed and not names:
            continue  # the same requests as with generated paths
        fixed = {k: v for k, v in EXISTING.items() if k in names} if aimed else None
        fuzz(served, operation, mode, fixed, examples=25)


@budget(60)
@given(doc=valid_documents(), data=st.data())
def test_a_posted_document_stores_one_version_or_nothing(
    served: Served, doc: dict[str, Any], data: st.DataObject
) -> None:
    """Generated documents, some damaged by random edits, through POST /workflows: a valid one is stored
    as it was sent (or found identical), anything else is a 422 that stores nothing."""
    for _ in range(data.draw(st.sampled_from([0, 0, 1, 2]), label="edits")):
        note(edit(doc, data))
    try:
        body = json.dumps(doc).encode("utf-8", "surrogatepass")
    except ValueError:  # an integer too long for Python to write: not something a client can send
        reject()  # counted as filtered, not as a passing example
    db_path = served.home / "taskloom.db"
    before = snapshot(db_path)
    response = httpx.post(f"{served.url}/workflows", content=body, timeout=30,
                          headers={**AUTH, "Content-Type": "application/json"})
    note(response.text)
    valid = validate_document(doc) == []
    if valid:
        assert response.status_code in (200, 201)
        saved = response.json()
        stored = httpx.get(f"{served.url}/workflows/{saved['name']}/versions/{saved['version']}", headers=AUTH)
        assert stored.json() == doc
    else:
        assert response.status_code == 422 and response.json()["issues"]
        assert snapshot(db_path) == before


@budget(60)
@given(
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
    credentials=st.sampled_from(["none", "wrong", "api token", "basic", "right"]),
)
def test_a_webhook_starts_a_run_only_with_its_token_and_a_storable_body(
    served: Served, body: bytes, credentials: str
) -> None:
    """The webhook has no body schema in OpenAPI, so it gets its own fuzzing: any bytes, any credentials."""
    headers = {
        "none": {}, "wrong": {"Authorization": "Bearer nope"}, "api token": AUTH,
        "basic": {"Authorization": f"Basic {served.hook_token}"},
        "right": {"Authorization": f"Bearer {served.hook_token}"},
    }[credentials]
    db_path = served.home / "taskloom.db"
    before = snapshot(db_path)
    response = httpx.post(f"{served.url}/hooks/greeter/push", content=body, headers=headers, timeout=30)
    note(response.text)
    assert response.status_code < 500
    if credentials != "right":
        assert response.status_code == 401
    if response.status_code >= 400:
        assert response.json()["error"] and snapshot(db_path) == before
    else:
        assert response.status_code == 202 and credentials == "right"
