"""The templates for the everyday jobs: one ready workflow each, in assets/examples and in the template gallery.

``tests/test_examples.py`` runs every example to success on a fresh machine; this checks that the
four everyday jobs are there with the schedule and steps they promise, and the failure alert of the
API poll.
"""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

EXAMPLES = ROOT / "assets" / "examples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def types(doc: dict) -> set[str]:
    return {t["type"] for t in doc["tasks"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_copy_new_rows_from_a_to_b_every_morning():
    doc = example("daily-copy")
    (trigger,) = doc["triggers"]
    minute, hour, *rest = trigger["cron"].split()
    assert trigger["type"] == "cron" and int(hour) < 12 and rest == ["*", "*", "*"]
    assert "sql_copy" in types(doc)


def test_score_a_table_every_hour_and_alert_over_a_threshold():
    doc = example("hourly-scores")
    assert doc["triggers"][0]["cron"] == "0 * * * *"
    assert {"python", "condition", "notify"} <= types(doc)
    assert any("params.threshold" in str(t.get("params")) for t in doc["tasks"] if t["type"] == "condition")


def test_run_the_tests_of_a_local_repository_on_new_commits():
    doc = example("test-on-commit")
    assert {"git", "condition", "shell"} <= types(doc)
    assert any(t["type"] == "condition" and "updated" in t["params"]["expression"] for t in doc["tasks"])


def test_call_an_api_every_15_minutes_with_retries_and_alert_on_failure():
    doc = example("api-poll")
    assert doc["triggers"] == [{"id": "every15", "type": "interval", "every": 15, "unit": "minutes"}]
    fetch = next(t for t in doc["tasks"] if t["type"] == "http")
    assert fetch["retries"] >= 1
    on_failure = [e["to"] for e in doc["edges"] if e["from"] == fetch["id"] and e.get("on") == "failure"]
    assert [next(t for t in doc["tasks"] if t["id"] == target)["type"] for target in on_failure] == ["notify"]


def test_the_api_poll_alerts_when_the_api_cannot_be_reached(run_doc):
    doc = copy.deepcopy(example("api-poll"))
    doc["tasks"] = [t for t in doc["tasks"] if t["id"] != "serve"]  # nobody answers on the port
    for task in doc["tasks"]:
        if task["id"] == "fetch":
            task.update(retries=1, retry_delay=0.05)
    run = run_doc(doc, {"port": str(free_port())})
    states = {k: v.status for k, v in run.tasks.items()}
    assert states == {"fetch": "failed", "too_deep": "skipped", "alert": "skipped", "fetch_failed": "succeeded"}
    assert run.status == "succeeded"  # the failure is handled: the alert went out
    assert "did not answer after the retries (fetch failed)" in run.tasks["fetch_failed"].output["message"]


def test_every_example_is_in_the_template_gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TASKLOOM_HOME", str(home))
    at = AppTest.from_file(str(ROOT / "taskloom" / "ui" / "web" / "app.py"), default_timeout=30)
    at.run()
    at.switch_page("views/workflows.py").run()
    assert not at.exception
    keys = {b.key for b in at.button}
    for path in sorted(EXAMPLES.glob("*.json")):
        assert f"tpl_use_{path.stem}" in keys, path.stem
        title = json.loads(path.read_text())["title"]
        assert any(title in str(m.value) for m in at.markdown), title
