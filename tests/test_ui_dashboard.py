"""The Dashboard page and the Settings additions (notification channels, file roots), driven with AppTest."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from streamlit.testing.v1 import AppTest

from taskloom.storage.config import Config
from taskloom.storage.db import write_txn
from taskloom.storage.scheduling import acquire_lease
from taskloom.storage.secrets import SecretStore
from taskloom.storage.store import Workspace
from tests.conftest import make_doc
from taskloom.ui.web.runlog.dashboard import active_runs, recent_failures, runs_per_day, upcoming_firings, workflow_stats

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "taskloom" / "ui" / "web" / "app.py")
DAY = 86400.0
NOOP = {"id": "step", "type": "noop"}


def at_utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def page(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TASKLOOM_HOME", str(home))
    monkeypatch.delenv("TASKLOOM_FILE_ROOTS", raising=False)

    def open_page(path: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        at.run()
        at.switch_page(path).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def run(thing: Any) -> AppTest:
    at = thing.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str) -> list[dict[str, Any]]:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value.to_dict("records")
    raise AssertionError(f"no table with a column {column!r}")


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("success", "info", "warning", "error", "markdown", "caption", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def store_workflows(ws: Workspace) -> str:
    """A daily 02:30 Europe/Berlin workflow and a daily 06:00 UTC one; the first one's document hash."""
    berlin, _ = ws.save(make_doc([NOOP], name="berlin", triggers=[
        {"id": "nightly", "type": "cron", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}]))
    ws.save(make_doc([NOOP], name="morning", triggers=[
        {"id": "six", "type": "cron", "cron": "0 6 * * *", "timezone": "UTC"}, {"id": "hand", "type": "manual"}]))
    return berlin.document


def insert_run(ws: Workspace, doc: str, workflow: str, status: str, created: float, seconds: float | None = None,
               error: str | None = None) -> int:
    started = created + 1 if status != "queued" else None
    ended = started + seconds if seconds is not None and started is not None else None
    cur = ws.db.execute(
        "INSERT INTO runs (workflow, version, document, status, trigger, params, logical_time, created, started,"
        " ended, error) VALUES (?, 1, ?, ?, 'manual', '{}', ?, ?, ?, ?, ?)",
        [workflow, doc, status, created, created, started, ended, error],
    )
    ws.db.conn.commit()
    return cur.lastrowid


def seed_runs(ws: Workspace, now: float) -> dict[str, int]:
    doc = store_workflows(ws)
    ids = {}
    insert_run(ws, doc, "alpha", "succeeded", now - 40 * DAY, 50)  # older than the chart's 30 days
    for seconds in (10, 20, 30):
        insert_run(ws, doc, "alpha", "succeeded", now - 2 * DAY, seconds)
    ids["alpha_failed"] = insert_run(ws, doc, "alpha", "failed", now - 2 * DAY + 60, 5, "boom in alpha")
    ids["beta_crashed"] = insert_run(ws, doc, "beta", "crashed", now - DAY, 7, "runner lost")
    insert_run(ws, doc, "beta", "cancelled", now - DAY + 10, 3)
    insert_run(ws, doc, "alpha", "succeeded", now - 30, 40)
    ids["alpha_running"] = insert_run(ws, doc, "alpha", "running", now - 20)
    ids["beta_queued"] = insert_run(ws, doc, "beta", "queued", now - 10)
    return ids


# -- data functions ----------------------------------------------------------------


def test_dashboard_data(ws: Workspace):
    now = at_utc("2026-11-28T12:00:00+00:00")
    ids = seed_runs(ws, now)

    per_day = runs_per_day(ws.db, now)
    assert per_day == [
        {"day": "2026-11-26", "status": "failed", "runs": 1},
        {"day": "2026-11-26", "status": "succeeded", "runs": 3},
        {"day": "2026-11-27", "status": "cancelled", "runs": 1},
        {"day": "2026-11-27", "status": "crashed", "runs": 1},
        {"day": "2026-11-28", "status": "queued", "runs": 1},
        {"day": "2026-11-28", "status": "running", "runs": 1},
        {"day": "2026-11-28", "status": "succeeded", "runs": 1},
    ]

    stats = {s["workflow"]: s for s in workflow_stats(ws.db)}
    alpha, beta = stats["alpha"], stats["beta"]
    assert (alpha["runs"], alpha["succeeded"], alpha["failed"], alpha["active"]) == (7, 5, 1, 1)
    assert alpha["success_rate"] == round(5 / 6, 4)
    assert alpha["median_seconds"] == 25.0  # of 50, 10, 20, 30, 5, 40 (the running run has not ended)
    assert beta["success_rate"] == 0.0 and beta["median_seconds"] == 5.0 and beta["active"] == 1
    assert workflow_stats(ws.db, window=2)[0]["median_seconds"] == 22.5  # the last two ended: 5 and 40

    assert [r["id"] for r in active_runs(ws.db, now)] == [ids["beta_queued"], ids["alpha_running"]]
    failures = recent_failures(ws.db)
    assert [(r["id"], r["error"]) for r in failures] == [
        (ids["beta_crashed"], "runner lost"), (ids["alpha_failed"], "boom in alpha")]


def test_next_firings_merge_and_flag_dst(ws: Workspace):
    store_workflows(ws)
    now = at_utc("2026-03-28T12:00:00+00:00")  # Berlin springs forward on 2026-03-29 at 02:00
    firings = upcoming_firings(ws.db, now)
    assert len(firings) == 10
    assert [f["instant"] for f in firings] == sorted(f["instant"] for f in firings)
    first, second, third = firings[:3]
    assert (first["workflow"], first["trigger"], first["wall"]) == ("berlin", "nightly", "2026-03-29T03:30:00+02:00")
    assert first["dst_moved"] and first["moved"]
    assert first["instant"] == at_utc("2026-03-29T01:30:00+00:00")
    assert (second["workflow"], second["instant"]) == ("morning", at_utc("2026-03-29T06:00:00+00:00"))
    assert (third["workflow"], third["wall"]) == ("berlin", "2026-03-30T02:30:00+02:00")
    assert not any(f["dst_moved"] for f in firings[1:])
    assert {f["workflow"] for f in firings} == {"berlin", "morning"}

    ws.db.execute("UPDATE workflows SET paused = 1 WHERE name = 'morning'")
    ws.db.conn.commit()
    assert {f["workflow"] for f in upcoming_firings(ws.db, now)} == {"berlin"}


def test_dashboard_queries_stay_bounded_with_many_runs(ws: Workspace):
    doc = store_workflows(ws)
    now = time.time()
    rows = [(f"wf{i % 20}", doc, ("succeeded", "failed", "crashed", "cancelled")[i % 4], now - i * 25,
             now - i * 25 + 1, now - i * 25 + 1 + i % 60) for i in range(100_000)]
    with write_txn(ws.db):  # one transaction: a commit per row would fsync 100,000 times
        ws.db.conn.executemany(
            "INSERT INTO runs (workflow, version, document, status, trigger, params, logical_time, created,"
            " started, ended) VALUES (?, 1, ?, ?, 'manual', '{}', ?, ?, ?, ?)",
            [(w, d, s, c, c, st, e) for (w, d, s, c, st, e) in rows],
        )
    started = time.monotonic()
    assert sum(r["runs"] for r in runs_per_day(ws.db, now)) == 100_000  # 25 s apart: all within 30 days
    assert len(workflow_stats(ws.db)) == 20
    assert len(recent_failures(ws.db)) == 10
    assert active_runs(ws.db, now) == []
    upcoming_firings(ws.db, now)
    assert time.monotonic() - started < 3.0


# -- the page ----------------------------------------------------------------------


def test_dashboard_page(ws: Workspace, page):
    ids = seed_runs(ws, time.time())
    at = page("views/dashboard.py")
    assert at.title[0].value == "Dashboard"
    assert len(at.get("vega_lite_chart")) == 1  # the stacked bar chart of runs per day

    stats = {r["workflow"]: r for r in table(at, "success rate")}
    assert stats["alpha"]["success rate"] == "83.3%" and stats["alpha"]["median duration (s)"] == 25.0
    assert stats["beta"]["success rate"] == "0.0%"

    firings = table(at, "wall time")
    assert len(firings) == 10 and {f["workflow"] for f in firings} == {"berlin", "morning"}

    links = [str(e.proto) for e in at.get("page_link")]
    assert any(f"run {ids['alpha_running']}" in p and f"run={ids['alpha_running']}" in p for p in links), links
    assert any(f"run {ids['beta_queued']}" in p and f"run={ids['beta_queued']}" in p for p in links), links

    failures = table(at, "error")
    assert [(f["id"], f["error"]) for f in failures] == [
        (ids["beta_crashed"], "runner lost"), (ids["alpha_failed"], "boom in alpha")]
    assert failures[0]["run"] == f"runs?run={ids['beta_crashed']}"


def test_dashboard_page_empty(ws: Workspace, page):
    at = page("views/dashboard.py")
    shown = texts(at)
    assert "No runs in the last 30 days." in shown and "No run is queued or running." in shown
    assert "No failed or crashed runs." in shown


# -- settings: notification channels ----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hook:
    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_settings_webhook_test_message(ws: Workspace, page):
    hook = Hook()
    try:
        at = page("views/settings.py")
        at.text_input(key="notify_webhook_url").input(hook.url)
        at = run(at.button(key="notify_webhook_save").click())
        assert Config(ws.db).get("notify.webhook_url") == hook.url
        at = run(at.button(key="notify_webhook_test").click())
        assert hook.received == [("/hook", {"text": "Taskloom test message"})]
        assert any("answered 200" in s.value for s in at.success)

        at = page("views/settings.py")  # a new session shows the stored URL and tests it
        assert at.text_input(key="notify_webhook_url").value == hook.url
        run(at.button(key="notify_webhook_test").click())
        assert len(hook.received) == 2
    finally:
        hook.close()

    failing = Hook(status=500)
    try:
        at.text_input(key="notify_webhook_url").input(failing.url)
        at = run(at.button(key="notify_webhook_test").click())
        assert any("answered 500" in e.value for e in at.error)
    finally:
        failing.close()
    at.text_input(key="notify_webhook_url").input(f"http://127.0.0.1:{free_port()}/nobody")
    at = run(at.button(key="notify_webhook_test").click())
    assert any("webhook test to" in e.value and "ConnectError" in e.value for e in at.error)


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def test_settings_smtp_test_message(ws: Workspace, home: Path, page):
    at = page("views/settings.py")
    at.text_input(key="notify_smtp_to").input("ops@example.test")
    at = run(at.button(key="notify_smtp_test").click())
    assert any("smtp.host is not set" in e.value for e in at.error)

    inbox = Inbox()
    logins: list[tuple[bytes, bytes]] = []

    def auth(server, session, envelope, mechanism, data) -> AuthResult:  # noqa: ANN001
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"alerts", b"pw-s3cret"), handled=False)

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=auth, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        SecretStore(ws.db, home).set("SMTP_PASSWORD", "pw-s3cret")
        config = Config(ws.db)
        for key, value in {"smtp.host": "127.0.0.1", "smtp.port": port, "smtp.username": "alerts",
                           "smtp.password_secret": "SMTP_PASSWORD", "smtp.from": "robot@taskloom.test",
                           "smtp.timeout": 5}.items():
            config.set(key, value)
        at = page("views/settings.py")
        smtp_rows = {r["key"]: r["value"] for r in table(at, "key") if r["key"].startswith("smtp.")}
        assert smtp_rows["smtp.host"] == "127.0.0.1" and smtp_rows["smtp.port"] == str(port)
        at.text_input(key="notify_smtp_to").input("ops@example.test")
        at = run(at.button(key="notify_smtp_test").click())
        assert any("test message sent to ops@example.test" in s.value for s in at.success), texts(at)
        assert len(inbox.envelopes) == 1 and inbox.envelopes[0].rcpt_tos == ["ops@example.test"]
        mail = message_from_bytes(inbox.envelopes[0].original_content)
        assert mail["Subject"] == "Taskloom test message" and mail["From"] == "robot@taskloom.test"
        assert logins == [(b"alerts", b"pw-s3cret")]

        SecretStore(ws.db, home).set("SMTP_PASSWORD", "wrong")
        at = run(at.button(key="notify_smtp_test").click())
        assert any("test email failed" in e.value and "SMTPAuthenticationError" in e.value for e in at.error)
        assert len(inbox.envelopes) == 1
    finally:
        controller.stop()


# -- settings: file roots and scheduler ------------------------------------------------


def test_settings_file_roots_add_remove(ws: Workspace, page, monkeypatch: pytest.MonkeyPatch):
    at = page("views/settings.py")
    assert "No roots besides the working directory." in texts(at)
    for path in ("/data/in", "/data/out"):
        at.text_input(key="roots_new").input(path)
        at = run(at.button(key="roots_add").click())
    assert Config(ws.db).get("file_roots") == ["/data/in", "/data/out"]
    at.text_input(key="roots_new").input("/data/in")
    at = run(at.button(key="roots_add").click())
    assert any("already an allowed root" in w.value for w in at.warning)

    at.selectbox(key="roots_remove").select("/data/in")
    at = run(at.button(key="roots_remove_btn").click())
    assert Config(ws.db).get("file_roots") == ["/data/out"]

    monkeypatch.setenv("TASKLOOM_FILE_ROOTS", "/env/root")
    at = page("views/settings.py")  # persists into a new session, with the environment's roots
    assert table(at, "root") == [{"root": "/data/out", "from": "file_roots"},
                                 {"root": "/env/root", "from": "$TASKLOOM_FILE_ROOTS"}]
    at.selectbox(key="roots_remove").select("/data/out")
    run(at.button(key="roots_remove_btn").click())
    assert Config(ws.db).get("file_roots") == ["/env/root"]
    assert ws.db.execute("SELECT COUNT(*) FROM config WHERE key = 'file_roots'").fetchone()[0] == 0


def test_settings_scheduler_shows_host_pid_heartbeat_version(ws: Workspace, page):
    lease = acquire_lease(ws.db, "sched-9", ttl=60, version="9.8.7")
    assert lease is not None
    at = page("views/settings.py")
    message = next(s.value for s in at.success if "Active: sched-9" in s.value)
    assert "pid" in message and "9.8.7" in message and "heartbeat" in message
    row = table(at, "holder")[0]
    assert row["host"] and row["pid"] and row["version"] == "9.8.7" and row["last renewed"].endswith("UTC")
