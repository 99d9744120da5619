"""Workflow alerts: the ``alerts`` section, its validation and defaults, and delivery to real servers.

Failure and recovery mail to a real aiosmtpd server and POSTs to a real HTTP
receiver on 127.0.0.1, with a secret masked in the body; the home-wide
defaults; a failed delivery journaled as failed; the journal's dedupe across
two processes (both stores); and the dead-man alert of a real scheduler
process whose run hangs (finish_within) and whose firings were missed while it
was down (start_within).
"""

from __future__ import annotations

import doctest
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from taskloom.core.alerts import AlertFacts, effective_alerts
from taskloom.core.lateness import FiringFacts, late_finding, next_late_deadline
from taskloom.core.model import Alerts, Workflow, canonical_json
from taskloom.core.validation import validate_document
from taskloom.runtime.alerting import send_alert
from taskloom.runtime.execution import execute
from taskloom.storage.accounts import Accounts
from taskloom.storage.alerts import list_alerts
from taskloom.storage.config import Config, ConfigError
from taskloom.storage.secrets import SecretStore

from clitools import env_for, query, start, taskloom, wait_for, write_flow
from conftest import ROOT, make_doc
from test_task_notify import Hook, hook, smtp  # noqa: F401 - the fixtures: a webhook receiver, an SMTP server

SECRET = "tok-5e1f0a9c7b3d"


def flow(command: str, alerts: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc = make_doc([{"id": "step", "type": "shell", "params": {"command": command}}], name="nightly", **extra)
    if alerts is not None:
        doc["alerts"] = alerts
    return doc


@pytest.mark.parametrize("module", ["taskloom.core.alerts", "taskloom.core.lateness"])
def test_the_examples_in_the_docstrings_hold(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


# -- the format: validation, the model, the round trip --------------------------------------------------------

HOURLY = [{"id": "hourly", "type": "cron", "cron": "0 * * * *"}]


@pytest.mark.parametrize("alerts, triggers, path, words, hint", [
    ({"on": ["failur"]}, None, "/alerts/on/0", "'failur'", "did you mean 'failure'?"),
    ({"to": [{"email": ["ops at example.com"]}]}, None, "/alerts/to/0/email/0", "not an email address",
     "ops@example.com"),
    ({"to": [{"email": "ops@example"}]}, None, "/alerts/to/0/email", "not an email address", "ops@example.com"),
    ({"late": {"start_within": -5}}, HOURLY, "/alerts/late/start_within", "must be > 0, got -5", "use a value > 0"),
    ({"late": {"finish_within": 0}}, HOURLY, "/alerts/late/finish_within", "must be > 0, got 0", "use a value > 0"),
    ({"late": {"start_within": 60}}, [{"id": "hook", "type": "webhook"}], "/alerts/late",
     "this workflow has none (its triggers: webhook 'hook')", "add a cron or interval trigger"),
    ({"late": {"start_within": 60}}, None, "/alerts/late", "it has no triggers", "add a cron or interval trigger"),
    ({"on": ["late"]}, HOURLY, "/alerts/on", "does not say how late", "start_within"),
    ({"on": ["failure"], "late": {"start_within": 5}}, HOURLY, "/alerts/late", "'late' is not in alerts.on",
     "add 'late' to alerts.on"),
    ({"late": {}}, HOURLY, "/alerts/late", "neither 'start_within' nor 'finish_within'", "start_within"),
    ({"on": ["failure", "failure"]}, None, "/alerts/on/1", "listed twice", "once"),
    ({"to": [{"webhook": "hooks.slack.example/x"}]}, None, "/alerts/to/0/webhook", "not an http:// or https://",
     "secrets.NAME"),
    ({"to": [{"webhook": "{{ params.url }}"}]}, None, "/alerts/to/0/webhook", "can only read secrets, not params",
     "taskloom secrets set"),
    ({"to": [{"log": True, "email": "a@b.co"}]}, None, "/alerts/to/0", "exactly one of 'email', 'webhook', 'owner', 'log'", ""),
    ({"to": []}, None, "/alerts/to", "at least 1 item", ""),
    ({"lat": {}}, None, "/alerts/lat", "unknown key 'lat'", "did you mean 'late'?"),
])
def test_a_bad_alerts_section_names_the_path_and_the_fix(alerts, triggers, path, words, hint):
    doc = flow("true", alerts, **({"triggers": triggers} if triggers else {}))
    issues = validate_document(doc)
    assert [i.path for i in issues] == [path], issues
    assert words in issues[0].message and hint in issues[0].hint, issues[0]


FULL = {
    "on": ["failure", "recovery", "late"],
    "late": {"start_within": 300, "finish_within": 3600},
    "to": [{"email": ["ops@example.com", "dev@example.com"]}, {"webhook": "{{ secrets.SLACK_URL }}"}, {"log": True}],
}


def test_the_alerts_section_is_carried_by_the_model_and_round_trips_exactly():
    doc = flow("true", FULL, triggers=HOURLY)
    assert validate_document(doc) == []
    workflow = Workflow.from_document(doc)
    assert workflow.alerts is not None
    assert workflow.alerts.on == ("failure", "recovery", "late")
    assert (workflow.alerts.start_within, workflow.alerts.finish_within) == (300.0, 3600.0)
    assert [c.kind for c in workflow.alerts.to] == ["email", "webhook", "log"]
    assert workflow.alerts.to[0].to == ("ops@example.com", "dev@example.com")
    again = Workflow.from_document(workflow.to_document())
    assert again.to_document() == doc and again.alerts == workflow.alerts
    text = canonical_json(doc)
    assert canonical_json(json.loads(text)) == text and json.loads(text)["alerts"] == FULL
    assert list(json.loads(text))[-1] == "alerts"  # after settings: where a reader looks for it


def test_documents_without_alerts_stay_valid_and_byte_for_byte_the_same():
    for path in sorted((ROOT / "assets" / "examples").glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("format") != "taskloom/v1":
            continue
        assert Workflow.from_document(doc).alerts is None
        assert canonical_json(Workflow.from_document(doc).to_document()) == canonical_json(doc)


def test_defaults_of_the_section_and_of_the_home():
    assert effective_alerts(None, [], []) is None  # no section, no home default: no alerts
    policy = effective_alerts(None, ["failure"], [{"email": "ops@example.com"}])
    assert policy.kinds == {"failure"} and policy.channels[0].to == ("ops@example.com",)
    policy = effective_alerts(Alerts(), [], [])
    assert policy.kinds == {"failure", "recovery"} and [c.kind for c in policy.channels] == ["owner", "log"]
    assert effective_alerts(Alerts(on=()), ["failure"], []) is None  # an explicit "on": [] opts out
    assert effective_alerts(Alerts(finish_within=9.0), [], []).watches_late


@pytest.mark.parametrize("facts, now, expected", [
    # instant 1000; start_within 60, finish_within 600
    (dict(status="missed", reason="the scheduler was not running"), 1059, None),
    (dict(status="missed", reason="the scheduler was not running"), 1060, ("start", "no run started within 60 s")),
    (dict(status="started", run_id=4, run_status="running", run_started=1001), 1500, None),
    (dict(status="started", run_id=4, run_status="running", run_started=1001), 1601,
     ("finish", "run 4 has not finished 600 s after it started")),
    (dict(status="started", run_id=4, run_status="succeeded", run_started=1001, run_ended=1700), 1800,
     ("finish", "run 4 took 699 s")),
    (dict(status="started", run_id=5, run_status="succeeded", run_started=1090, run_ended=1100), 1200,
     ("start", "run 5 started 90 s after its instant")),
    (dict(status="queued", reason="waiting for run 3 to end"), 1070, ("start", "the firing is queued")),
    (dict(status="skipped_overlap", reason="run 3 was still active"), 5000, None),
])
def test_late_arithmetic(facts, now, expected):
    firing = FiringFacts("w", "t", 1000.0, **facts)
    found = late_finding(firing, start_within=60, finish_within=600, now=now)
    if expected is None:
        assert found is None
    else:
        assert (found.what, expected[1] in found.detail) == (expected[0], True), found


def test_finish_within_alone_fires_when_no_run_ever_started():
    firing = FiringFacts("w", "t", 1000.0, "missed", "the scheduler was not running")
    found = late_finding(firing, start_within=None, finish_within=30, now=1031)
    assert found.what == "finish" and "no run finished within 30 s" in found.detail
    assert next_late_deadline([], [2000.0], start_within=None, finish_within=30, now=1031) == 2030.0


def test_bad_alert_configuration_is_refused(ws):
    config = Config(ws.db)
    with pytest.raises(ConfigError, match="'late' cannot be a home-wide default"):
        config.set("alerts.on", ["failure", "late"])
    with pytest.raises(ConfigError, match=r"alerts.to\[0\] is .*each channel is one of"):
        config.set("alerts.to", [{"mail": "ops@example.com"}])
    with pytest.raises(ConfigError, match="not an email address"):
        config.set("alerts.to", [{"email": ["nobody"]}])
    assert config.get("alerts.to") == [] and config.get("alerts.on") == []
    config.set("alerts.to", [{"log": True}])
    assert config.get("alerts.to") == [{"log": True}]


# -- delivery, in the process that runs the workflow ------------------------------------------------------------


def bodies(hook: Hook) -> list[str]:
    return [json.loads(r["body"])["text"] for r in hook.received]


def test_failure_then_recovery_reach_email_and_webhook_once_each_with_the_secret_masked(
        run_doc, ws, home, smtp, hook):
    SecretStore(ws.db, home).set("TOKEN", SECRET)
    SecretStore(ws.db, home).set("HOOK_URL", f"{hook.url}/services/T0/B0")
    Config(ws.db).set("web.url", "https://taskloom.example.com/")
    alerts = {"on": ["failure", "recovery"],
              "to": [{"email": ["ops@example.com"]}, {"webhook": "{{ secrets.HOOK_URL }}"}]}
    lines = "; ".join(f"echo line {n}" for n in range(30))
    failing = flow(f"{lines}; echo using {{{{ secrets.TOKEN }}}}; echo oops >&2; exit 3", alerts)
    run = run_doc(failing)
    assert run.status == "failed"
    (mail,) = smtp.messages()
    assert mail["Subject"] == f"[taskloom] failure: nightly (run {run.id})" and mail["To"] == "ops@example.com"
    text = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    for part in ("Workflow: nightly", f"Run: {run.id}", f"Link: https://taskloom.example.com/runs?run={run.id}",
                 "Failed task: step", "Error: exited with status 3", "using ***", "[stderr #1] oops"):
        assert part in text, part
    assert SECRET not in text and "line 29" in text and "line 0\n" not in text
    assert len(re.findall(r"^  \[std(?:out|err) #1\] ", text, re.M)) == 20  # the last 20 lines only
    (posted,) = bodies(hook)
    assert hook.received[0]["path"] == "/services/T0/B0" and posted == text and SECRET not in posted
    assert run_doc(flow("true", alerts)).status == "succeeded"
    assert len(smtp.messages()) == 2 and "RECOVERY: run" in bodies(hook)[1]
    run_doc(flow("true", alerts))  # a success after a success: nothing
    assert len(smtp.messages()) == 2 and len(hook.received) == 2
    journal = list_alerts(ws.db, "nightly")
    assert sorted((a["kind"], a["channel"], a["status"]) for a in journal) == [
        ("failure", "email:ops@example.com", "sent"), ("failure", "webhook:2", "sent"),
        ("recovery", "email:ops@example.com", "sent"), ("recovery", "webhook:2", "sent")]


def test_the_home_defaults_alert_a_workflow_without_an_alerts_section(run_doc, ws, home, hook):
    config = Config(ws.db)
    config.set("alerts.on", ["failure"])
    config.set("alerts.to", [{"webhook": hook.url}])
    run = run_doc(flow("exit 1"))
    (posted,) = bodies(hook)
    assert f"FAILURE: run {run.id} failed" in posted and f"taskloom logs {run.id}" in posted  # no web.url: a command
    run_doc(flow("exit 1", {"on": []}))  # a workflow may opt out
    assert len(hook.received) == 1
    shown = json.loads(taskloom(home, "alerts", "nightly", "--json").stdout)
    assert [(a["run_id"], a["kind"], a["channel"], a["status"]) for a in shown] == [
        (run.id, "failure", "webhook:1", "sent")]
    assert "failure  webhook:1" in taskloom(home, "alerts").stdout


def test_without_channels_the_alert_reaches_the_owner_of_the_workflow(ws, tmp_path, smtp, monkeypatch):
    Accounts(ws.db).add("alice", "editor", None, email="alice@example.com")
    Accounts(ws.db).add("bob", "editor", None)
    for owner, name in (("alice", "owned"), ("bob", "no-address")):
        monkeypatch.setenv("TASKLOOM_USER", owner)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(flow("exit 1", {"on": ["failure"]}) | {"name": name}))
        ws.import_file(path)
        run_id, _ = ws.start_run(ws.target(name), {})
        execute(ws, run_id, cwd=str(tmp_path))
    (mail,) = smtp.messages()  # bob's account has no address: his alert went to the log only
    assert mail["To"] == "alice@example.com" and mail["Subject"].startswith("[taskloom] failure: owned")
    assert sorted((a["workflow"], a["channel"]) for a in list_alerts(ws.db)) == [
        ("no-address", "log"), ("owned", "log"), ("owned", "owner")]


def test_a_delivery_that_fails_is_journaled_failed_and_the_run_is_unharmed(run_doc, ws, hook):
    hook.statuses = [500, 500]
    down = Hook()
    dead_url = down.url
    down.close()
    run = run_doc(flow("exit 2", {"to": [{"webhook": hook.url}, {"webhook": dead_url}, {"log": True}]}))
    assert run.status == "failed"
    journal = {a["channel"]: a for a in list_alerts(ws.db, "nightly")}
    assert journal["webhook:1"]["status"] == "failed" and "500" in journal["webhook:1"]["error"]
    assert journal["webhook:2"]["status"] == "failed" and "could not connect" in journal["webhook:2"]["error"]
    assert journal["log"]["status"] == "sent"


# -- the journal: one alert per (run, kind), whoever asks ------------------------------------------------------

SEND_ONCE = """
import sys, time
from taskloom.core.alerts import AlertFacts, effective_alerts
from taskloom.core.model import Alerts, AlertChannel
from taskloom.runtime.alerting import send_alert
from taskloom.storage.store import Workspace
ws = Workspace(sys.argv[1])
policy = effective_alerts(Alerts(to=(AlertChannel("webhook", url=sys.argv[2]),)), [], [])
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
print(send_alert(ws, AlertFacts("failure", "nightly", "run 7 failed", "taskloom logs 7", run_id=7), policy,
                 dedupe="run:7:failure"))
"""


@pytest.mark.both_backends
def test_two_processes_sending_the_same_alert_send_it_once(ws, home, hook):
    at = str(time.time() + 3)  # both start sending at the same instant
    procs = [subprocess.Popen([sys.executable, "-c", SEND_ONCE, str(home), hook.url, at], env=env_for(home),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(out.strip() for out, _ in outs) == ["{'webhook:1': 'already'}", "{'webhook:1': 'sent'}"]
    assert len(hook.received) == 1
    policy = effective_alerts(Alerts(to=None), [], [{"webhook": hook.url}])
    again = send_alert(ws, AlertFacts("failure", "nightly", "run 7 failed", "", run_id=7), policy,
                       dedupe="run:7:failure")
    assert again == {"webhook:1": "already"} and len(hook.received) == 1  # a re-check sends nothing either
    assert [(a["run_id"], a["kind"], a["status"]) for a in list_alerts(ws.db)] == [(7, "failure", "sent")]


# -- the dead-man alert, from a real scheduler ------------------------------------------------------------------


def every_second(command: str, late: dict[str, float]) -> dict[str, Any]:
    return flow(command, {"on": ["late"], "late": late, "to": [{"webhook": "{{ secrets.HOOK }}"}]},
                triggers=[{"id": "tick", "type": "interval", "every": 1, "unit": "seconds"}])


def scheduler(home: Path, *args: str):
    return start(home, "scheduler", "--no-api", "--lease-ttl", "2", *args)


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def late_texts(hook: Hook) -> list[str]:
    return [t for t in bodies(hook) if t.startswith("LATE:")]


def test_a_hanging_run_is_reported_late_once_by_the_scheduler(tmp_path, home, hook):
    taskloom(home, "secrets", "set", "HOOK", input=hook.url)
    taskloom(home, "import", write_flow(tmp_path, every_second("sleep 60", {"finish_within": 2})))
    proc = scheduler(home)
    try:
        wait_for(lambda: late_texts(hook), timeout=30, what="the late alert of the hanging run")
        time.sleep(4)  # several more checks, and more instants skipped behind the hanging run
    finally:
        stop(proc)
    (text,) = late_texts(hook)
    run_id = query(home, "SELECT min(id) FROM runs WHERE workflow = 'nightly'")[0][0]
    assert f"Run: {run_id}" in text and f"its run {run_id} has not finished" in text and "finish_within is 2 s" in text
    assert "Trigger: tick" in text and "Instant: " in text
    assert query(home, "SELECT run_id, kind, channel, status FROM alerts") == [(run_id, "late", "webhook:1", "sent")]


def test_firings_missed_while_the_scheduler_was_down_are_reported_late(tmp_path, home, hook):
    taskloom(home, "secrets", "set", "HOOK", input=hook.url)
    taskloom(home, "import", write_flow(tmp_path, every_second("true", {"start_within": 1})))
    up = scheduler(home, "--misfire-grace", "0.5")
    wait_for(lambda: len(query(home, "SELECT id FROM firings WHERE status = 'started'")) >= 2, timeout=20,
             what="first firings")
    stop(up)
    assert late_texts(hook) == []  # runs that start on time are not late
    time.sleep(4)  # down: about four instants pass
    again = scheduler(home, "--misfire-grace", "0.5")
    try:
        wait_for(lambda: len(late_texts(hook)) >= 3, timeout=30, what="late alerts for the missed instants")
        time.sleep(3)  # more checks: nothing is sent twice
    finally:
        stop(again)
    texts = late_texts(hook)
    assert all("no run started within 1 s of its instant (the firing is missed: the scheduler was not running"
               in t for t in texts), texts
    instants = [re.search(r"Instant: (\S+)", t).group(1) for t in texts]
    assert len(instants) == len(set(instants)), "an instant was reported twice"
    rows = query(home, "SELECT run_id, trigger_id, instant, status FROM alerts WHERE kind = 'late'")
    assert len(rows) == len(texts) and all(r[0] is None and r[1] == "tick" and r[3] == "sent" for r in rows)
    missed = {r[0] for r in query(home, "SELECT instant FROM firings WHERE status = 'missed'")}
    assert {r[2] for r in rows} <= missed
