"""The Workflows and Settings pages, driven headless with Streamlit's AppTest."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from taskloom.core.firing import next_firings
from taskloom.core.model import Workflow, canonical_json
from taskloom.storage.config import Config
from taskloom.storage.runs import list_runs
from taskloom.storage.scheduling import TriggerState, acquire_lease, save_trigger_state, trigger_state
from taskloom.storage.secrets import SecretStore
from taskloom.storage.workflows import NotFound, get_document, get_workflow, list_versions, list_workflows
from taskloom.storage.store import Workspace

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "taskloom" / "ui" / "web" / "app.py")
EXAMPLES = ROOT / "assets" / "examples"


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def hello_v2() -> dict[str, Any]:
    """hello with a task added (after 'done'), changed fields and params of 'repeat', a changed param default."""
    doc = example("hello")
    doc["tasks"][1]["retries"] = 5
    doc["tasks"][1]["params"]["args"]["times"] = "{{ params.times }}"
    doc["tasks"][1]["params"]["code"] = doc["tasks"][1]["params"]["code"].replace("print(g)", "print(g.upper())")
    doc["params"]["times"]["default"] = 4
    doc["tasks"].append({"id": "extra", "type": "noop", "title": "Extra step"})
    doc["edges"].append({"from": "done", "to": "extra"})
    return doc


@pytest.fixture
def page(home: Path, monkeypatch: pytest.MonkeyPatch):
    """Open a page of the app (relative to taskloom/ui/web/app.py) on the Taskloom home ``home``."""
    monkeypatch.setenv("TASKLOOM_HOME", str(home))

    def open_page(path: str = "views/workflows.py") -> AppTest:
        at = AppTest.from_file(APP, default_timeout=30)
        at.run()
        at.switch_page(path).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


@pytest.fixture
def switches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every st.switch_page call of the app: (page, st.session_state["designer_open"] at that moment).

    The real switch still happens; recording the state at the call keeps these tests
    independent of what the Designer page does with it.
    """
    import streamlit

    calls: list[tuple[str, Any]] = []
    real = streamlit.switch_page

    def recording(page, *args, **kwargs):
        calls.append((str(page), streamlit.session_state.get("designer_open")))
        return real(page, *args, **kwargs)

    monkeypatch.setattr(streamlit, "switch_page", recording)
    return calls


def run(thing: Any) -> AppTest:
    """Rerun after an interaction (``run(at.button(key=...).click())``); the page must not raise."""
    at = thing.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column: str) -> list[dict[str, Any]]:
    """The rows of the first dataframe on the page that has ``column``."""
    for df in at.dataframe:
        value = df.value
        if column in value.columns:
            return value.to_dict("records")
    raise AssertionError(f"no table with a column {column!r}")


def texts(at: AppTest) -> str:
    """Every message, markdown and caption on the page, one per line."""
    parts = []
    for kind in ("success", "info", "warning", "error", "markdown", "caption"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def protos(node: Any) -> list[str]:
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None:
        out.append(str(proto))
    for child in getattr(node, "children", {}).values():
        out += protos(child)
    return out


# -- the table and row actions ------------------------------------------------------


def test_table_shows_workflows_with_version_paused_and_last_run(ws: Workspace, page):
    ws.save(example("hello"))
    ws.save(hello_v2())
    ws.save(example("daily-copy"))
    ws.db.execute("UPDATE workflows SET paused = 1 WHERE name = 'daily-copy'")
    run_id, _ = ws.start_run(ws.target("hello"), {}, from_text=False)

    at = page()
    rows = {r["name"]: r for r in table(at, "next firing (UTC)")}
    assert set(rows) == {"hello", "daily-copy"}
    hello, daily = rows["hello"], rows["daily-copy"]
    assert (hello["version"], hello["paused"], hello["last run"]) == (2, False, f"#{run_id} queued")
    assert hello["title"] == "Hello, Taskloom" and hello["triggers"] == "daily (cron)"
    upcoming = next_firings(Workflow.from_document(hello_v2()).triggers[0], time.time(), 1)[0].instant
    when = datetime.fromtimestamp(upcoming, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    assert hello["next firing (UTC)"] == f"{when} · daily"
    assert hello["next firing (local)"]
    assert (daily["version"], daily["paused"], daily["last run"]) == (1, True, "never")
    assert daily["next firing (UTC)"] == "paused"
    assert at.button(key="wf_pause_daily-copy").label == "Resume"


def test_pause_and_resume(ws: Workspace, page):
    ws.save(example("hello"))
    at = page()
    assert at.button(key="wf_pause_hello").label == "Pause"
    run(at.button(key="wf_pause_hello").click())
    assert get_workflow(ws.db, "hello").paused
    assert "hello paused" in texts(at)
    assert at.button(key="wf_pause_hello").label == "Resume"
    assert table(at, "paused")[0]["paused"] is True
    run(at.button(key="wf_pause_hello").click())
    assert not get_workflow(ws.db, "hello").paused
    assert "hello resumed" in texts(at)


def test_run_now_queues_a_manual_run(ws: Workspace, page):
    ws.save(example("hello"))
    at = page()
    run(at.button(key="wf_run_hello").click())
    runs = list_runs(ws.db, "hello")
    assert [(r.status, r.trigger, r.version) for r in runs] == [("queued", "manual", 1)]
    assert f"run {runs[0].id} of hello queued; no scheduler is running here" in texts(at)
    assert table(at, "last run")[0]["last run"] == f"#{runs[0].id} queued"


def test_duplicate_stores_a_new_workflow_and_refuses_taken_or_bad_names(ws: Workspace, page):
    ws.save(example("hello"))
    ws.save(example("daily-copy"))
    at = page()
    at.text_input(key="wf_dup_name_hello").input("hello-copy")
    run(at.button(key="wf_dup_hello").click())
    assert "hello duplicated as hello-copy" in texts(at)
    info, doc = get_document(ws.db, "hello-copy")
    assert info.version == 1 and "duplicated from hello version 1" in info.message
    assert {**doc, "name": "hello"} == get_document(ws.db, "hello")[1]

    at.text_input(key="wf_dup_name_hello").input("daily-copy")
    run(at.button(key="wf_dup_hello").click())
    assert "already exists" in texts(at)
    assert len(list_versions(ws.db, "daily-copy")) == 1  # not turned into a new version of daily-copy

    at.text_input(key="wf_dup_name_hello").input("Bad Name!")
    run(at.button(key="wf_dup_hello").click())
    assert "/name" in texts(at)

    at.text_input(key="wf_dup_name_hello").input("")  # empty: the suggested name
    assert at.text_input(key="wf_dup_name_hello").placeholder == "hello-copy-2"
    run(at.button(key="wf_dup_hello").click())
    assert "hello duplicated as hello-copy-2" in texts(at)
    assert sorted(w.name for w in list_workflows(ws.db)) == ["daily-copy", "hello", "hello-copy", "hello-copy-2"]


def test_delete_needs_confirmation_and_keeps_runs(ws: Workspace, page):
    ws.save(example("hello"))
    ws.save(hello_v2())
    ws.save(example("daily-copy"))
    run_id, _ = ws.start_run(ws.target("hello"), {}, from_text=False)
    save_trigger_state(ws.db, "hello", "daily", TriggerState(1.0, None, None))
    save_trigger_state(ws.db, "daily-copy", "mornings", TriggerState(1.0, None, None))
    ws.db.execute("INSERT INTO webhook_tokens VALUES ('hello', 'hook', 'tok', 1.0)")
    ws.db.execute("INSERT INTO task_memory VALUES ('hello', 'greet', 'mark', '1', 1.0)")
    at = page()
    assert at.button(key="wf_del_hello").disabled
    run(at.checkbox(key="wf_del_confirm_hello").check())
    assert not at.button(key="wf_del_hello").disabled
    run(at.button(key="wf_del_hello").click())
    assert ("deleted hello and its 2 version(s); its runs are kept"
            " (1 queued or running run(s) go on to their end)") in texts(at)
    assert [w.name for w in list_workflows(ws.db)] == ["daily-copy"]
    with pytest.raises(NotFound):
        get_workflow(ws.db, "hello")
    assert ws.db.execute("SELECT count(*) FROM workflow_versions WHERE workflow = 'hello'").fetchone()[0] == 0
    for leftover in ("trigger_state", "webhook_tokens", "task_memory"):
        assert ws.db.execute(f"SELECT count(*) FROM {leftover} WHERE workflow = 'hello'").fetchone()[0] == 0
    assert trigger_state(ws.db, "daily-copy", "mornings") is not None  # other workflows keep theirs
    kept = ws.run(run_id)
    assert kept.workflow == "hello" and ws.workflow_of(kept).name == "hello"
    assert [r["name"] for r in table(at, "last run")] == ["daily-copy"]
    assert not [b for b in at.button if b.key == "wf_del_hello"]


def test_open_sets_the_designer_workflow_and_switches_page(ws: Workspace, page, switches):
    ws.save(example("hello"))
    at = page()
    at = at.button(key="wf_open_hello").click().run()  # the Designer's own errors are not this test's business
    assert switches == [("views/designer.py", "hello")]
    assert "Workflows" not in [t.value for t in at.title]


# -- import and export ----------------------------------------------------------------


def test_upload_import_creates_then_versions_then_reports_unchanged(ws: Workspace, page):
    at = page()
    body = (EXAMPLES / "hello.json").read_bytes()
    at.file_uploader(key="import_file").set_value(("hello.json", body, "application/json"))
    run(at.button(key="import_file_go").click())
    assert "created workflow hello (version 1) from hello.json" in [s.value for s in at.success]
    info, doc = get_document(ws.db, "hello")
    assert info.version == 1 and doc == example("hello") and info.message == "imported from hello.json"
    assert table(at, "next firing (UTC)")[0]["name"] == "hello"

    at.file_uploader(key="import_file").set_value(("hello.json", json.dumps(hello_v2()).encode(), "application/json"))
    at.text_input(key="import_message").input("more retries")
    run(at.button(key="import_file_go").click())
    assert "stored hello.json as version 2 of hello (was version 1)" in texts(at)
    assert get_document(ws.db, "hello")[0].message == "more retries"

    run(at.button(key="import_file_go").click())
    assert "hello unchanged: hello.json is identical to version 2" in texts(at)
    assert len(list_versions(ws.db, "hello")) == 2


def test_bad_file_shows_issues_with_paths_and_stores_nothing(ws: Workspace, page):
    bad = example("hello")
    bad["tasks"][0]["type"] = "shel"
    bad["edges"].append({"from": "greet", "to": "nowhere"})
    at = page()
    at.file_uploader(key="import_file").set_value(("bad.json", json.dumps(bad).encode(), "application/json"))
    run(at.button(key="import_file_go").click())
    assert any("Nothing was stored" in e.value and "bad.json" in e.value for e in at.error)
    issues = table(at, "problem")
    paths = [i["path"] for i in issues]
    assert "/tasks/0/type" in paths and any(p.startswith("/edges/") for p in paths)
    shel = next(i for i in issues if i["path"] == "/tasks/0/type")
    assert "shel" in shel["problem"] and "shell" in shel["hint"]
    assert list_workflows(ws.db) == []

    at.text_area(key="import_text").input("{not json")
    run(at.button(key="import_text_go").click())
    assert "invalid JSON" in table(at, "problem")[0]["problem"]
    assert list_workflows(ws.db) == []


def test_a_file_of_another_tool_is_pointed_to_the_converter_and_stores_nothing(ws: Workspace, page):
    n8n = (Path(__file__).parent / "data" / "import" / "orders.n8n.json").read_bytes()
    at = page()
    at.file_uploader(key="import_file").set_value(("orders.json", n8n, "application/json"))
    run(at.button(key="import_file_go").click())
    assert any("orders.json is n8n, not a Taskloom workflow" in e.value and "Designer's Import" in e.value
               for e in at.error), [e.value for e in at.error]
    assert list_workflows(ws.db) == []


def test_paste_import(ws: Workspace, page):
    at = page()
    at.text_area(key="import_text").input(json.dumps(example("daily-copy")))
    run(at.button(key="import_text_go").click())
    assert "created workflow daily-copy (version 1) from the pasted JSON" in texts(at)
    assert get_document(ws.db, "daily-copy")[1] == example("daily-copy")


def test_export_downloads_the_canonical_json_of_the_chosen_version(ws: Workspace, page, monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    saved: list[tuple[bytes, str, str | None]] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        saved.append((path_or_data, mimetype, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    ws.save(example("hello"))
    ws.save(hello_v2())
    ws.save(example("daily-copy"))
    at = page()
    run(at.selectbox(key="export_wf").select("hello"))
    run(at.selectbox(key="export_version__hello").select(1))
    button = at.download_button(key="export_download")
    assert button.label == "Download hello-v1.json"
    data, mime, filename = saved[-1]
    assert filename == "hello-v1.json" and mime == "application/json"
    assert data.decode() == canonical_json(get_document(ws.db, "hello", 1)[1])
    assert json.loads(data) == example("hello")


# -- history --------------------------------------------------------------------------


def test_version_list_and_readable_diff(ws: Workspace, page):
    ws.save(example("hello"), message="first")
    ws.save(hello_v2(), message="an extra step")
    at = page()
    run(at.selectbox(key="hist_wf").select("hello"))
    versions = table(at, "saved (UTC)")
    assert [(v["version"], v["message"], v["current"]) for v in versions] == [
        (2, "an extra step", True), (1, "first", False)]
    assert at.selectbox(key="diff_old__hello").value == 1 and at.selectbox(key="diff_new__hello").value == 2
    shown = texts(at)
    assert "1 task added, 1 task changed, 1 edge added, 1 param changed" in shown
    assert "**added** task `extra` (noop) · Extra step" in shown
    assert "**changed** task `repeat`:" in shown and "`retries`: `2` → `5`" in shown
    assert '`params.args.times`: `"{{ tasks.greet.output.times }}"` → `"{{ params.times }}"`' in shown
    code_diff = "\n".join(c.value for c in at.code)
    assert "-        print(g)" in code_diff and "+        print(g.upper())" in code_diff
    assert "**changed** param `times`" in shown and "`default`: `3` → `4`" in shown
    assert "**added** edge `done → extra (on success)`" in shown

    run(at.selectbox(key="diff_old__hello").select(2))
    assert "The two versions are identical." in texts(at)


def test_restore_creates_a_new_version_with_the_old_content(ws: Workspace, page):
    ws.save(example("hello"))
    ws.save(hello_v2())
    at = page()
    run(at.selectbox(key="hist_wf").select("hello"))
    assert at.selectbox(key="restore_version__hello").value == 1
    run(at.button(key="restore_go__hello").click())
    assert "restored version 1 of hello as version 3" in texts(at)
    info, doc = get_document(ws.db, "hello")
    assert (info.version, info.message) == (3, "restored version 1")
    assert canonical_json(doc) == canonical_json(get_document(ws.db, "hello", 1)[1])
    assert [v["version"] for v in table(at, "saved (UTC)")] == [3, 2, 1]


# -- templates ------------------------------------------------------------------------


def test_template_gallery_creates_a_workflow_and_opens_it(ws: Workspace, page, switches):
    at = page()
    assert "**Hello, Taskloom**" in texts(at)
    at.button(key="tpl_use_hello").click().run()
    info, doc = get_document(ws.db, "hello")
    assert (info.version, info.message) == (1, "from template hello") and doc == example("hello")
    assert switches == [("views/designer.py", "hello")]

    at = page()  # the name is taken now: the template is stored under the next free name
    assert "stored as hello-2" in texts(at)
    at.button(key="tpl_use_hello").click().run()
    assert get_document(ws.db, "hello-2")[1] == {**example("hello"), "name": "hello-2"}
    assert switches[-1] == ("views/designer.py", "hello-2")

    at = page()
    at.text_input(key="tpl_name_hello").input("hello")
    run(at.button(key="tpl_use_hello").click())
    assert any("already exists" in e.value for e in at.error)
    assert len(list_versions(ws.db, "hello")) == 1 and len(switches) == 2


# -- settings -------------------------------------------------------------------------


def test_settings_secret_set_listed_never_shown_then_deleted(ws: Workspace, page, home: Path):
    value = "s3cr3t-value-xyz"
    at = page("views/settings.py")
    at.text_input(key="secret_name").input("API_TOKEN")
    at.text_input(key="secret_value").input(value)
    run(at.button(key="secret_save").click())
    assert "secret API_TOKEN stored" in texts(at)
    assert [r["name"] for r in table(at, "created")] == ["API_TOKEN"]
    assert SecretStore(ws.db, home).get("API_TOKEN") == value
    assert not any(value in p for p in protos(at._tree))
    assert at.session_state["secret_value"] == ""
    assert at.text_input(key="secret_value").value == ""

    at.text_input(key="secret_name").input("bad name")
    at.text_input(key="secret_value").input("x")
    run(at.button(key="secret_save").click())
    assert any("invalid secret name" in e.value for e in at.error)

    assert at.button(key="secret_delete").disabled
    run(at.checkbox(key="secret_delete_confirm").check())
    run(at.button(key="secret_delete").click())
    assert "secret API_TOKEN deleted" in texts(at)
    assert SecretStore(ws.db, home).names() == []


def test_settings_config_set_unset_and_errors(ws: Workspace, page):
    at = page("views/settings.py")
    rows = {r["key"]: r for r in table(at, "description")}
    assert rows["smtp.port"]["value"] == "25" and rows["smtp.port"]["set"] == "default"
    at.text_input(key="cfg_in_smtp.port").input("587")
    run(at.button(key="cfg_set_smtp.port").click())
    assert Config(ws.db).get("smtp.port") == 587
    assert {r["key"]: r for r in table(at, "description")}["smtp.port"]["set"] == "set"

    at.text_input(key="cfg_in_smtp.port").input("many")
    run(at.button(key="cfg_set_smtp.port").click())
    assert any("smtp.port takes a value of type integer" in e.value for e in at.error)
    assert Config(ws.db).get("smtp.port") == 587

    at.text_input(key="cfg_in_file_roots").input('["/data", "/srv"]')
    run(at.button(key="cfg_set_file_roots").click())
    assert Config(ws.db).get("file_roots")[:2] == ["/data", "/srv"]

    assert page("views/settings.py").text_input(key="cfg_in_smtp.port").value == "587"  # a new session shows it

    run(at.button(key="cfg_unset_smtp.port").click())
    assert Config(ws.db).get("smtp.port") == 25
    assert {r["key"]: r for r in table(at, "description")}["smtp.port"]["set"] == "default"


def test_settings_scheduler_status(ws: Workspace, page):
    at = page("views/settings.py")
    assert any("No scheduler has run yet" in i.value for i in at.info)
    acquire_lease(ws.db, "sched-1", ttl=60, version="1.2.3")
    at = page("views/settings.py")
    assert any("Active: sched-1" in s.value for s in at.success)
    status = table(at, "holder")[0]
    assert status["active"] and status["version"] == "1.2.3"
