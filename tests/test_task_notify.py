"""The ``notify`` task type: webhooks to a real local HTTP server, email to a real aiosmtpd server, the log.

Also: the examples in docs/tasks/notify.md validate.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from taskloom.core.validation import validate_document
from taskloom.storage.config import Config
from taskloom.storage.secrets import SecretStore
from taskloom.runtime.execution import execute

from conftest import ROOT, make_doc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a webhook receiver -------------------------------------------------------------


class Hook:
    """Records POSTs; answers with the status set in ``statuses`` (first one per request), else 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
                status = hook.statuses.pop(0) if hook.statuses else 200
                data = b"ok" if status < 400 else b"invalid_payload"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


# -- an SMTP server -----------------------------------------------------------------


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's signature
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[Message]:
        return [message_from_bytes(e.original_content) for e in self.envelopes]


class Authenticator:
    """Accepts one login; records every attempt."""

    def __init__(self, login: str, password: str) -> None:
        self.expected = (login.encode(), password.encode())
        self.seen: list[tuple[str, bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
        assert isinstance(auth_data, LoginPassword)
        self.seen.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=(auth_data.login, auth_data.password) == self.expected, handled=False)


@pytest.fixture
def smtp(ws):
    """A plain SMTP server on 127.0.0.1, configured as the store's smtp.host/smtp.port."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    config = Config(ws.db)
    config.set("smtp.host", "127.0.0.1")
    config.set("smtp.port", port)
    config.set("smtp.from", "robot@taskloom.test")
    config.set("smtp.timeout", 5)
    yield inbox
    controller.stop()


@pytest.fixture
def smtp_auth(ws, home):
    """An SMTP server that requires AUTH (without TLS, which is fine on 127.0.0.1 in a test)."""
    inbox = Inbox()
    auth = Authenticator("alerts", "pw-7c1d9e3b5a")
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=auth, auth_required=True, auth_require_tls=False,
    )
    controller.start()
    SecretStore(ws.db, home).set("SMTP_PASSWORD", "pw-7c1d9e3b5a")
    config = Config(ws.db)
    for key, value in {"smtp.host": "127.0.0.1", "smtp.port": port, "smtp.username": "alerts",
                       "smtp.password_secret": "SMTP_PASSWORD", "smtp.timeout": 5}.items():
        config.set(key, value)
    yield inbox, auth
    controller.stop()


def notify(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "tell", "type": "notify", "params": params, **extra}


def logs(ws, run_id: int) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in ws.db.execute(
        "SELECT task_id, stream, line FROM logs WHERE run_id = ? ORDER BY id", [run_id])]


# -- log ----------------------------------------------------------------------------


def test_log_channel_writes_the_message_as_stdout_lines(run_doc, ws):
    run = run_doc(make_doc([notify({"message": "first line\nsecond line"})]))
    assert run.status == "succeeded"
    assert run.tasks["tell"].output == {"channel": "log", "delivered": True, "message": "first line\nsecond line"}
    assert [(s, line) for _, s, line in logs(ws, run.id)] == [("stdout", "first line"), ("stdout", "second line")]


def test_condition_then_notify_alerts_when_a_score_crosses_the_threshold(run_doc, ws):
    doc = make_doc(
        [
            {"id": "score", "type": "python", "params": {"code": "def main():\n    return {'max': 0.97, 'sensor': 's3'}"}},
            {"id": "high", "type": "condition", "params": {"expression": "tasks.score.output.max > params.threshold"}},
            {"id": "alert", "type": "notify", "params": {
                "channel": "log",
                "message": "ALERT: {{ tasks.score.output.sensor }} scored {{ tasks.score.output.max }}"
                           " (threshold {{ params.threshold }})"}},
        ],
        [{"from": "score", "to": "high"}, {"from": "high", "to": "alert", "on": "true"}],
        params={"threshold": {"type": "number", "default": 0.9}},
    )
    run = run_doc(doc)
    assert run.status == "succeeded" and run.tasks["alert"].status == "succeeded"
    assert ("alert", "stdout", "ALERT: s3 scored 0.97 (threshold 0.9)") in logs(ws, run.id)
    calm = run_doc(doc, {"threshold": "0.99"})
    assert calm.status == "succeeded" and calm.tasks["alert"].status == "skipped"


# -- webhook ------------------------------------------------------------------------


def test_webhook_posts_a_slack_style_text_payload(run_doc, ws, hook):
    run = run_doc(make_doc([notify({"channel": "webhook", "url": f"{hook.url}/hooks/T1", "message": "Deploy done"})]))
    assert run.status == "succeeded", run.tasks["tell"].error
    (got,) = hook.received
    assert got["path"] == "/hooks/T1" and got["headers"]["content-type"] == "application/json"
    assert json.loads(got["body"]) == {"text": "Deploy done"}
    assert run.tasks["tell"].output == {"channel": "webhook", "delivered": True, "status": 200,
                                        "url": f"{hook.url}/hooks/T1"}
    assert any(s == "system" and line.startswith(f"POST {hook.url}/hooks/T1 -> 200 OK") for _, s, line in logs(ws, run.id))


def test_webhook_custom_payload_and_headers(run_doc, hook):
    payload = {"content": "{{ params.who }} finished", "embeds": [{"title": "report"}]}
    run = run_doc(make_doc(
        [notify({"channel": "webhook", "url": hook.url, "message": "unused", "payload": payload,
                 "headers": {"X-Token": "t-1"}})],
        params={"who": {"type": "string", "default": "nightly"}},
    ))
    assert run.status == "succeeded"
    (got,) = hook.received
    assert json.loads(got["body"]) == {"content": "nightly finished", "embeds": [{"title": "report"}]}
    assert got["headers"]["x-token"] == "t-1"


def test_webhook_4xx_is_not_retried_but_5xx_is(run_doc, hook):
    hook.statuses = [400]
    bad = run_doc(make_doc([notify({"channel": "webhook", "url": hook.url, "message": "x"}, retries=2, retry_delay=0)]))
    assert bad.tasks["tell"].status == "failed" and len(bad.tasks["tell"].attempt_list) == 1
    assert bad.tasks["tell"].error.startswith(f"POST {hook.url} returned 400 Bad Request: invalid_payload")
    hook.statuses = [502]
    flaky = run_doc(make_doc([notify({"channel": "webhook", "url": hook.url, "message": "x"}, retries=2, retry_delay=0)]))
    assert flaky.status == "succeeded" and len(flaky.tasks["tell"].attempt_list) == 2


# -- email --------------------------------------------------------------------------


def test_email_reaches_the_smtp_server(run_doc, ws, smtp):
    run = run_doc(make_doc([notify({
        "channel": "email", "to": ["ops@example.com", "dev@example.com"], "cc": "boss@example.com",
        "subject": "Nightly load: {{ params.rows }} rows", "message": "All good.\nSee the run for details.",
    })], params={"rows": {"type": "integer", "default": 12}}))
    assert run.status == "succeeded", run.tasks["tell"].error
    (envelope,) = smtp.envelopes
    assert envelope.mail_from == "robot@taskloom.test"
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com", "boss@example.com"]
    (mail,) = smtp.messages()
    assert mail["Subject"] == "Nightly load: 12 rows" and mail["From"] == "robot@taskloom.test"
    assert mail["To"] == "ops@example.com, dev@example.com" and mail["Cc"] == "boss@example.com"
    assert mail.get_payload(decode=True).decode().replace("\r\n", "\n") == "All good.\nSee the run for details.\n"
    out = run.tasks["tell"].output
    assert out["delivered"] is True and out["recipients"] == envelope.rcpt_tos and out["channel"] == "email"
    assert any(re.match(r"email 'Nightly load: 12 rows' to .* via 127\.0\.0\.1:\d+ accepted in \d+ ms", line)
               for _, _, line in logs(ws, run.id))


def test_email_default_subject_and_single_recipient(run_doc, smtp):
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"})]))
    assert run.status == "succeeded"
    (mail,) = smtp.messages()
    assert mail["Subject"] == "Taskloom notification" and mail["To"] == "ops@example.com"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_email_logs_in_with_the_password_from_the_secret(run_doc, ws, smtp_auth):
    inbox, auth = smtp_auth
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"})]))
    assert run.status == "succeeded", run.tasks["tell"].error
    assert [(login, pw) for _, login, pw in auth.seen] == [(b"alerts", b"pw-7c1d9e3b5a")]
    assert len(inbox.envelopes) == 1
    assert "pw-7c1d9e3b5a" not in json.dumps(logs(ws, run.id))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_email_wrong_password_fails_without_retries(run_doc, ws, home, smtp_auth):
    inbox, auth = smtp_auth
    SecretStore(ws.db, home).set("SMTP_PASSWORD", "not-the-password")
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"},
                                   retries=2, retry_delay=0)]))
    tell = run.tasks["tell"]
    assert tell.status == "failed" and len(tell.attempt_list) == 1 and inbox.envelopes == []
    assert "refused the login of 'alerts'" in tell.error and "smtp.password_secret" in tell.error


def test_email_without_smtp_host_says_how_to_set_it(run_doc):
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"},
                                   retries=2, retry_delay=0)]))
    tell = run.tasks["tell"]
    assert tell.status == "failed" and len(tell.attempt_list) == 1
    assert "smtp.host is not set; set it with: taskloom config set smtp.host HOST" in tell.error


def test_email_with_a_missing_password_secret_fails_clearly(run_doc, ws):
    config = Config(ws.db)
    config.set("smtp.host", "127.0.0.1")
    config.set("smtp.username", "alerts")
    config.set("smtp.password_secret", "NOT_STORED")
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"},
                                   retries=1, retry_delay=0)]))
    tell = run.tasks["tell"]
    assert tell.status == "failed" and len(tell.attempt_list) == 1
    assert "no secret named 'NOT_STORED'" in tell.error


def test_email_to_a_server_that_is_down_is_retried(run_doc, ws):
    config = Config(ws.db)
    port = free_port()
    config.set("smtp.host", "127.0.0.1")
    config.set("smtp.port", port)
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"},
                                   retries=1, retry_delay=0)]))
    tell = run.tasks["tell"]
    assert tell.status == "failed" and len(tell.attempt_list) == 2
    assert tell.error.startswith(f"could not reach SMTP server 127.0.0.1:{port}")


# -- validation and docs ------------------------------------------------------------


@pytest.mark.parametrize(
    "params, path, words",
    [
        ({"channel": "webhook", "message": "x"}, "/tasks/0/params", "missing required parameter 'url'"),
        ({"channel": "email", "message": "x"}, "/tasks/0/params", "missing required parameter 'to'"),
        ({"channel": "log"}, "/tasks/0/params", "missing required parameter 'message'"),
        ({"channel": "sms", "message": "x"}, "/tasks/0/params/channel", "expected one of 'webhook'"),
        ({"channel": "webhook", "url": "hooks.slack.com/x", "message": "x"}, "/tasks/0/params/url", "http"),
        ({"channel": "email", "to": [], "message": "x"}, "/tasks/0/params/to", "at least 1"),
    ],
    ids=["webhook-url", "email-to", "message", "channel", "url-scheme", "empty-to"],
)
def test_validation_reports_what_a_channel_needs(params, path, words):
    issues = validate_document(make_doc([notify(params)]))
    assert any(i.path == path and words in str(i) for i in issues), [str(i) for i in issues]


def test_docs_examples_validate():
    text = (ROOT / "docs" / "tasks" / "notify.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL) if re.match(r'\s*\{\s*"format"', b)]
    assert blocks
    for block in blocks:
        doc = json.loads(block)
        assert validate_document(doc) == [], doc["name"]


@pytest.fixture
def silent_smtp(ws):
    """A port that accepts connections (the kernel's backlog) but never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    config = Config(ws.db)
    config.set("smtp.host", "127.0.0.1")
    config.set("smtp.port", listener.getsockname()[1])
    yield config
    listener.close()


def test_email_to_a_silent_server_times_out_on_smtp_timeout(run_doc, silent_smtp):
    silent_smtp.set("smtp.timeout", 0.5)
    started = time.monotonic()
    run = run_doc(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"})]))
    assert time.monotonic() - started < 3
    tell = run.tasks["tell"]
    assert tell.status == "failed" and re.match(r"SMTP server 127\.0\.0\.1:\d+ did not", tell.error), tell.error
    assert "smtp.timeout" in tell.error


def test_cancel_while_waiting_for_the_smtp_server_ends_promptly(ws, tmp_path, silent_smtp):
    silent_smtp.set("smtp.timeout", 20)
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(make_doc([notify({"channel": "email", "to": "ops@example.com", "message": "hi"})])))
    run_id, _ = ws.start_run(ws.target(str(path)), {})
    runners: list[Any] = []
    threading.Timer(0.5, lambda: runners[0].cancel()).start()
    started = time.monotonic()
    execute(ws, run_id, cwd=str(tmp_path), on_runner=runners.append)
    elapsed = time.monotonic() - started
    run = ws.run(run_id)
    assert run.status == "cancelled" and run.tasks["tell"].status == "cancelled"
    assert elapsed < 2, f"cancel took {elapsed:.1f} s"
