"""The designer's import dialog: a format choice, the conversion, and the import report, driven with AppTest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from taskloom.storage.workflows import list_workflows
from taskloom.storage.store import Workspace
from taskloom.ui.web.designer import importing
from taskloom.ui.web.designer.session import DOC, GEN, SELECTED

from conftest import ROOT

APP = str(ROOT / "taskloom" / "ui" / "web" / "app.py")
DATA = ROOT / "tests" / "data" / "import"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("TASKLOOM_HOME", str(path))
    monkeypatch.setenv("TZ", "UTC")
    return path


def run(thing: Any) -> AppTest:
    at = thing.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app(home: Path) -> AppTest:
    return run(AppTest.from_file(APP, default_timeout=30))


def key(at: AppTest, rest: str) -> str:
    return f"dz{at.session_state[GEN]}:{rest}"


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("success", "info", "warning", "error", "markdown", "caption", "toast"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))


def upload(at: AppTest, name: str, data: bytes | None = None, source: str = "auto") -> AppTest:
    run(at.selectbox(key="designer_import_format").select(source))
    content = (DATA / name).read_bytes() if data is None else data
    return run(at.file_uploader(key=key(at, "upload")).set_value((name, content, "application/octet-stream")))


def stored(home: Path) -> list[str]:
    ws = Workspace(home)
    try:
        return [w.name for w in list_workflows(ws.db)]
    finally:
        ws.close()


def test_the_format_choice_offers_every_format(app: AppTest):
    box = app.selectbox(key="designer_import_format")
    assert box.options == [importing.FORMAT_LABELS[k] for k in ("auto", "taskloom", "logicapps", "n8n", "crontab")]
    assert box.value == "auto"


def test_a_logic_app_is_converted_opened_with_its_report_and_saved(app: AppTest, home: Path):
    upload(app, "scores.logicapp.json")
    doc = app.session_state[DOC]
    assert doc["name"] == "scores-logicapp" and [t["id"] for t in doc["tasks"]] == [
        "Get_scores", "Too_high", "Alert", "On_error"]
    text = texts(app)
    assert "loaded scores.logicapp.json (converted from Azure Logic Apps)" in text
    assert "Import report" in text and "converted from Azure Logic Apps: 1 workflow, 0 placeholders" in text
    assert "taskloom secrets set APITOKEN" in text and "-> http task 'Get_scores'" in text
    assert "Valid: no problems found" in text
    run(app.button(key="designer_save").click())
    assert stored(home) == ["scores-logicapp"]


def test_placeholders_are_listed_first_and_block_saving(app: AppTest, home: Path):
    upload(app, "scores.n8n.json")
    text = texts(app)
    report = [m.value for m in app.markdown if "✗ replace" in str(m.value)]
    assert report, text
    lines = str(report[0]).splitlines()
    assert lines[0].startswith("- ✗ replace `/nodes/5`")  # placeholders come first
    assert "replace task 'Post_to_Slack' with a notify task" in text
    assert "1 problem: this workflow cannot be saved yet" in text
    assert "task 'Post_to_Slack' is a placeholder" in text
    app.session_state[SELECTED] = "Post_to_Slack"  # its inspector shows the placeholder's form
    run(app)
    run(app.button(key="designer_save").click())
    assert stored(home) == [] and "not saved" in texts(app)


def test_a_crontab_gives_several_workflows_to_open_one_at_a_time(app: AppTest):
    upload(app, "jobs.crontab", source="crontab")
    assert app.session_state[DOC]["name"] == "cron-jobs-backup"
    pick = app.selectbox(key="designer_import:pick")
    assert pick.options[:3] == ["cron-jobs-backup", "cron-jobs-manage", "cron-jobs-curl"]
    run(pick.select_index(2))
    run(app.button(key="designer_import:open").click())
    assert app.session_state[DOC]["name"] == "cron-jobs-curl"
    assert "line 10" in texts(app)  # the report follows the open workflow


def test_bad_input_is_listed_and_changes_nothing(app: AppTest):
    before = app.session_state[DOC]
    bad = json.dumps({"name": "x", "nodes": [{"name": "A"}], "connections": {}}).encode()
    upload(app, "broken.json", bad, source="n8n")
    assert app.session_state[DOC] == before
    text = texts(app)
    assert "broken.json was not converted: 1 problem(s)" in text
    assert "/nodes/0" in text and "each node must be an object with a 'name' and a 'type'" in text


def test_taskloom_files_load_as_before_and_the_report_can_be_dismissed(app: AppTest):
    upload(app, "trycatch.logicapp.json")
    assert "Import report" in texts(app)
    run(app.button(key="designer_import:dismiss").click())
    assert "Import report" not in texts(app)
    upload(app, "hello.json", (ROOT / "assets" / "examples" / "hello.json").read_bytes())
    assert app.session_state[DOC]["name"] == "hello" and "Import report" not in texts(app)


def test_load_upload_without_streamlit():
    loaded = importing.load_upload((DATA / "orders.n8n.json").read_bytes(), "orders.n8n.json")
    assert loaded.format == "n8n" and not loaded.problems and len(loaded.documents) == 1
    assert "1 placeholder to replace" in importing.report_summary(loaded)
    markdown = importing.report_markdown(loaded.report)
    assert markdown.splitlines()[0].startswith("- ✗ replace")
    plain = importing.load_upload(b"{not json", "x.json", "taskloom")
    assert plain.problems and not plain.documents
