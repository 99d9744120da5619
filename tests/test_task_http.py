"""The ``http`` task type against a real HTTP server on 127.0.0.1, run end to end with SQLite.

Also: the examples in docs/tasks/http.md validate, and assets/examples/api-poll.json runs.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from taskloom.runtime.tasks.http import describe_expect, safe_url, status_expected
from taskloom.core.validation import validate_document
from taskloom.storage.secrets import SecretStore
from taskloom.runtime.execution import execute

from conftest import ROOT, make_doc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A local server that records every request and answers by path."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.arrived = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api.hits[parts.path] += 1
                api.requests.append({
                    "method": self.command, "path": parts.path, "query": dict(parse_qsl(parts.query)),
                    "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                })
                api.arrived.set()
                api.route(self, parts.path, dict(parse_qsl(parts.query)))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def route(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self.send(h, code, {"detail": "no such thing"} if code == 404 else {"code": code})
        elif path == "/flaky":
            self.send(h, 503 if self.hits[path] == 1 else 200, {"attempt": self.hits[path]})
        elif path == "/text":
            self.send(h, 200, "plain words\nsecond line", "text/plain; charset=utf-8")
        elif path == "/big":
            self.send(h, 200, "x" * 5000, "text/plain")
        elif path == "/problem":
            self.send(h, 200, {"type": "about:blank"}, "application/problem+json")
        elif path == "/broken-json":
            self.send(h, 200, "{not json", "application/json")
        elif path == "/redirect":
            h.send_response(302)
            h.send_header("Location", "/json")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif path == "/slow":
            until = time.monotonic() + float(query.get("s", "5"))
            while time.monotonic() < until and not self.stopping.is_set():
                time.sleep(0.02)
            self.send(h, 200, {"slow": True})
        else:
            self.send(h, 200, {"hello": "world", "n": 3})

    @staticmethod
    def send(h: BaseHTTPRequestHandler, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            h.send_response(code)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Set-Cookie", "a=1")
            h.send_header("Set-Cookie", "b=2")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        except OSError:
            pass  # the client went away (cancel, timeout tests)

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = Api()
    yield server
    server.close()


def http_task(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "call", "type": "http", "params": params, **extra}


def logs(ws, run_id: int) -> list[tuple[str, str]]:
    return [tuple(r) for r in ws.db.execute("SELECT stream, line FROM logs WHERE run_id = ? ORDER BY id", [run_id])]


# -- success paths ------------------------------------------------------------------


def test_get_json_gives_status_headers_json_url_and_time(run_doc, ws, api):
    run = run_doc(make_doc([http_task({"url": f"{api.url}/json"})]))
    assert run.status == "succeeded", run.tasks["call"].error
    out = run.tasks["call"].output
    assert out["status"] == 200 and out["json"] == {"hello": "world", "n": 3} and "text" not in out
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["set-cookie"] == "a=1, b=2"  # repeated headers joined
    assert out["url"] == f"{api.url}/json" and isinstance(out["elapsed_ms"], int) and out["truncated"] is False
    assert api.requests[0]["method"] == "GET" and api.requests[0]["headers"]["user-agent"] == "taskloom"
    (line,) = [line for stream, line in logs(ws, run.id) if stream == "system"]
    assert re.fullmatch(rf"GET {api.url}/json -> 200 OK in \d+ ms \(\d+ bytes\)", line), line


def test_post_json_body_reaches_the_server_as_json(run_doc, api):
    payload = {"name": "Ada", "tags": ["x", "y"], "n": 1.5, "ok": True, "none": None}
    run = run_doc(make_doc([http_task({"method": "POST", "url": f"{api.url}/items", "json": payload})]))
    assert run.status == "succeeded"
    (got,) = api.requests
    assert got["method"] == "POST" and got["path"] == "/items"
    assert got["headers"]["content-type"] == "application/json"
    assert json.loads(got["body"]) == payload


def test_json_body_from_an_upstream_output_keeps_its_type(run_doc, api):
    doc = make_doc(
        [
            {"id": "make", "type": "python", "params": {"code": "def main():\n    return {'rows': [1, 2]}"}},
            http_task({"method": "PUT", "url": f"{api.url}/rows", "json": "{{ tasks.make.output }}"}),
        ],
        [{"from": "make", "to": "call"}],
    )
    assert run_doc(doc).status == "succeeded"
    assert json.loads(api.requests[0]["body"]) == {"rows": [1, 2]}


def test_body_string_with_and_without_a_content_type(run_doc, api):
    run = run_doc(make_doc([
        http_task({"method": "POST", "url": f"{api.url}/csv", "body": "a,b\n1,2\n",
                   "headers": {"Content-Type": "text/csv"}}),
        {"id": "plain", "type": "http", "params": {"method": "PATCH", "url": f"{api.url}/plain", "body": "hé"}},
    ]))
    assert run.status == "succeeded"
    got = {r["path"]: r for r in api.requests}
    assert got["/csv"]["body"] == b"a,b\n1,2\n" and got["/csv"]["headers"]["content-type"] == "text/csv"
    assert got["/plain"]["method"] == "PATCH" and got["/plain"]["body"] == "hé".encode()
    assert got["/plain"]["headers"]["content-type"] == "text/plain; charset=utf-8"


def test_query_and_headers_are_sent(run_doc, api):
    run = run_doc(make_doc([http_task({
        "url": f"{api.url}/search?fixed=1",
        "query": {"q": "open issues", "page": 2, "all": True},
        "headers": {"X-Request-Id": "abc-123", "Accept": "application/json"},
    })]))
    assert run.status == "succeeded"
    (got,) = api.requests
    assert got["query"] == {"fixed": "1", "q": "open issues", "page": "2", "all": "true"}
    assert got["headers"]["x-request-id"] == "abc-123" and got["headers"]["accept"] == "application/json"


def test_non_json_response_is_text(run_doc, api):
    run = run_doc(make_doc([
        http_task({"url": f"{api.url}/text"}),
        {"id": "broken", "type": "http", "params": {"url": f"{api.url}/broken-json"}},
        {"id": "problem", "type": "http", "params": {"url": f"{api.url}/problem"}},
        {"id": "head", "type": "http", "params": {"method": "HEAD", "url": f"{api.url}/json"}},
    ]))
    assert run.status == "succeeded"
    assert run.tasks["call"].output["text"] == "plain words\nsecond line" and "json" not in run.tasks["call"].output
    assert run.tasks["broken"].output["text"] == "{not json"  # says JSON, is not: kept as text
    assert run.tasks["problem"].output["json"] == {"type": "about:blank"}  # +json counts
    assert run.tasks["head"].output["text"] == "" and run.tasks["head"].output["status"] == 200


def test_large_body_is_truncated_with_a_flag(run_doc, api):
    run = run_doc(make_doc([http_task({"url": f"{api.url}/big", "max_response_bytes": 100})]))
    out = run.tasks["call"].output
    assert run.status == "succeeded" and out["text"] == "x" * 100 and out["truncated"] is True


# -- auth and secrets ---------------------------------------------------------------


def test_bearer_and_basic_auth_come_from_secrets_and_never_reach_the_logs(run_doc, ws, home, api):
    store = SecretStore(ws.db, home)
    store.set("API_TOKEN", "tok-5f1e9a7c3b")
    store.set("API_PASSWORD", "pw-8d2c4e6a0f")
    run = run_doc(make_doc([
        http_task({"url": f"{api.url}/bearer", "auth": {"type": "bearer", "secret": "API_TOKEN"}}),
        {"id": "basic", "type": "http", "params": {
            "url": f"{api.url}/basic", "auth": {"type": "basic", "username": "ada", "secret": "API_PASSWORD"}}},
    ]))
    assert run.status == "succeeded"
    got = {r["path"]: r["headers"]["authorization"] for r in api.requests}
    basic = base64.b64encode(b"ada:pw-8d2c4e6a0f").decode()
    assert got == {"/bearer": "Bearer tok-5f1e9a7c3b", "/basic": f"Basic {basic}"}
    text = "\n".join(line for _, line in logs(ws, run.id))
    assert "/bearer -> 200" in text and "/basic -> 200" in text
    for leak in ("tok-5f1e9a7c3b", "pw-8d2c4e6a0f", basic, "Bearer", "Basic"):
        assert leak not in text
    stored = json.dumps([a.params for t in run.tasks.values() for a in t.attempt_list])
    assert "tok-5f1e9a7c3b" not in stored and "pw-8d2c4e6a0f" not in stored  # params hold the secret's name


def test_missing_secret_fails_without_retries(run_doc, api):
    task = http_task({"url": f"{api.url}/x", "auth": {"type": "bearer", "secret": "NOPE"}}, retries=2, retry_delay=0)
    run = run_doc(make_doc([task]))
    call = run.tasks["call"]
    assert call.status == "failed" and len(call.attempt_list) == 1 and api.hits["/x"] == 0
    assert "no secret named 'NOPE'; set it with: taskloom secrets set NOPE" in call.error


def test_credentials_in_the_url_query_are_hidden_in_logs(run_doc, ws, api):
    run = run_doc(make_doc([http_task({"url": f"{api.url}/q", "query": {"api_key": "k-42", "page": 1}})]))
    assert api.requests[0]["query"] == {"api_key": "k-42", "page": "1"}
    (line,) = [line for stream, line in logs(ws, run.id) if stream == "system"]
    assert f"GET {api.url}/q?api_key=***&page=1 -> 200" in line and "k-42" not in line
    assert safe_url("https://me:pw@h.example/x?token=t&a=1") == "https://me:***@h.example/x?token=***&a=1"


# -- statuses, failures and retries -------------------------------------------------


def test_expect_status_list_and_class(run_doc, api):
    run = run_doc(make_doc([
        http_task({"url": f"{api.url}/status/404", "expect_status": [200, 404]}),
        {"id": "moved", "type": "http", "params": {"url": f"{api.url}/redirect", "follow_redirects": False,
                                                   "expect_status": "3xx"}},
        {"id": "followed", "type": "http", "params": {"url": f"{api.url}/redirect"}},
    ]))
    assert run.status == "succeeded", {k: v.error for k, v in run.tasks.items()}
    assert run.tasks["call"].output["json"] == {"detail": "no such thing"}
    assert run.tasks["moved"].output["status"] == 302 and run.tasks["moved"].output["headers"]["location"] == "/json"
    assert run.tasks["followed"].output["status"] == 200 and run.tasks["followed"].output["url"] == f"{api.url}/json"
    assert status_expected(204, None) and not status_expected(301, None) and status_expected(418, "41x")
    assert describe_expect([200, "3xx"]) == "200 or 3xx"


def test_404_fails_with_the_body_and_is_not_retried(run_doc, api):
    task = http_task({"method": "POST", "url": f"{api.url}/status/404", "json": {}}, retries=2, retry_delay=0)
    run = run_doc(make_doc([task]))
    call = run.tasks["call"]
    assert run.status == "failed" and call.status == "failed"
    assert len(call.attempt_list) == 1 and api.hits["/status/404"] == 1
    assert call.error.startswith(f'POST {api.url}/status/404 returned 404 Not Found: {{"detail": "no such thing"}}')
    assert "expected 2xx" in call.error
    assert call.attempt_list[0].output["status"] == 404  # the response is kept on the attempt


def test_503_then_200_is_retried_and_succeeds(run_doc, api):
    run = run_doc(make_doc([http_task({"url": f"{api.url}/flaky"}, retries=2, retry_delay=0)]))
    call = run.tasks["call"]
    assert run.status == "succeeded" and [a.status for a in call.attempt_list] == ["failed", "succeeded"]
    assert "returned 503 Service Unavailable" in call.attempt_list[0].error
    assert call.output["json"] == {"attempt": 2}


def test_connection_refused_is_retried_with_a_clear_message(run_doc):
    url = f"http://127.0.0.1:{free_port()}/nothing"
    run = run_doc(make_doc([http_task({"url": url}, retries=1, retry_delay=0)]))
    call = run.tasks["call"]
    assert call.status == "failed" and len(call.attempt_list) == 2
    assert call.error.startswith(f"GET {url} could not connect:") and "refused" in call.error.lower()


def test_timeout_fails_quickly_and_clearly(run_doc, api):
    started = time.monotonic()
    run = run_doc(make_doc([http_task({"url": f"{api.url}/slow?s=5", "timeout": 0.5})]))
    assert time.monotonic() - started < 3
    call = run.tasks["call"]
    assert call.status == "failed"
    assert call.error.startswith(f"GET {api.url}/slow?s=5 timed out") and "0.5 s" in call.error


def test_the_tasks_own_timeout_ends_the_request_as_timed_out(run_doc, api):
    started = time.monotonic()
    run = run_doc(make_doc([http_task({"url": f"{api.url}/slow?s=5"}, timeout=0.5)]))
    assert time.monotonic() - started < 3
    assert run.tasks["call"].status == "timed_out" and "task's timeout" in run.tasks["call"].error


def test_cancel_during_a_slow_response_ends_promptly(ws, tmp_path, api):
    doc = make_doc([http_task({"url": f"{api.url}/slow?s=10"})])
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(doc))
    run_id, _ = ws.start_run(ws.target(str(path)), {})
    runners: list[Any] = []

    def cancel_when_the_request_arrives() -> None:
        if api.arrived.wait(5):
            time.sleep(0.2)
            runners[0].cancel()

    threading.Thread(target=cancel_when_the_request_arrives, daemon=True).start()
    started = time.monotonic()
    execute(ws, run_id, cwd=str(tmp_path), on_runner=runners.append)
    elapsed = time.monotonic() - started
    run = ws.run(run_id, attempts=True)
    assert run.status == "cancelled" and run.tasks["call"].status == "cancelled"
    assert elapsed < 3, f"cancel took {elapsed:.1f} s"


# -- validation and docs ------------------------------------------------------------


@pytest.mark.parametrize(
    "params, path, words",
    [
        ({"url": "http://x", "json": {"a": 1}, "body": "a"}, "/tasks/0/params/body", "not both"),
        ({"url": "http://x", "method": "FETCH"}, "/tasks/0/params/method", "expected one of 'GET'"),
        ({"url": "ftp://x"}, "/tasks/0/params/url", "http:// or https://"),
        ({}, "/tasks/0/params", "missing required parameter 'url'"),
        ({"url": "http://x", "expect_status": "2xy"}, "/tasks/0/params/expect_status", "2xy"),
        ({"url": "http://x", "auth": {"type": "basic", "secret": "S"}}, "/tasks/0/params/auth", "username"),
        ({"url": "http://x", "timeout": 0}, "/tasks/0/params/timeout", "> 0"),
    ],
    ids=["json-and-body", "method", "scheme", "url-missing", "expect", "basic-username", "timeout"],
)
def test_validation_reports_bad_params_at_their_path(params, path, words):
    issues = validate_document(make_doc([http_task(params)]))
    assert any(i.path == path and words in str(i) for i in issues), [str(i) for i in issues]


def test_valid_params_pass_validation():
    params = {"method": "DELETE", "url": "https://api.example.com/v1/items/{{ params.id }}", "query": {"x": 1},
              "expect_status": [200, "3xx", 404], "auth": {"type": "bearer", "secret": "TOKEN"}, "timeout": 2.5}
    assert validate_document(make_doc([http_task(params)], params={"id": {"type": "integer", "default": 1}})) == []


def json_blocks(page: str) -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "tasks" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    return [json.loads(b) for b in blocks if re.match(r'\s*\{\s*"format"', b)]


def test_docs_examples_validate():
    docs = json_blocks("http.md")
    assert len(docs) >= 1
    for doc in docs:
        assert validate_document(doc) == [], doc["name"]


def test_api_poll_example_runs(ws, run_doc):
    doc = ws.read_file(ROOT / "assets" / "examples" / "api-poll.json")
    assert validate_document(doc) == []
    run = run_doc(doc, {"port": str(free_port())})
    assert run.status == "succeeded", {k: (v.status, v.error) for k, v in run.tasks.items()}
    assert run.tasks["fetch"].output["json"]["depth"] > 0
    assert run.tasks["too_deep"].output is True and run.tasks["alert"].status == "succeeded"
