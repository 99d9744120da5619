"""The Runs page (run-log viewer) driven headless with AppTest, and its storage queries."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from taskloom.storage.runs import get_run, log_page, request_resume, search_firings, search_runs
from taskloom.storage.store import Workspace
from taskloom.runtime.execution import execute

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "taskloom" / "ui" / "web" / "app.py")

MIXED = {
    "format": "taskloom/v1",
    "name": "mixed",
    "tasks": [
        {"id": "ok", "type": "shell", "params": {"command": "for i in $(seq 1 500); do echo line-$i; done"}},
        {"id": "bad", "type": "shell", "params": {"command": "echo oops >&2; exit 3"}},
        {"id": "after", "type": "shell", "params": {"command": "echo never"}},
        {"id": "boom", "type": "shell", "params": {"command": "kill -9 $$"}},
    ],
    "edges": [{"from": "ok", "to": "bad"}, {"from": "bad", "to": "after"}],
}
HELLO = {"format": "taskloom/v1", "name": "greet",
         "tasks": [{"id": "say", "type": "shell", "params": {"command": "echo hi"}}]}


def _execute(ws: Workspace, name: str, cwd: Path) -> int:
    run_id, _ = ws.start_run(ws.target(name), {})
    execute(ws, run_id, cwd=str(cwd))
    return run_id


@pytest.fixture
def store(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A home with a failed 'mixed' run (succeeded, failed, skipped, crashed tasks), a succeeded 'greet' run,
    a queued 'greet' run and a missed firing."""
    monkeypatch.setenv("TASKLOOM_HOME", str(home))
    ws = Workspace(home)
    ws.save(MIXED)
    ws.save(HELLO)
    ids = {
        "greet_ok": _execute(ws, "greet", tmp_path),
        "mixed": _execute(ws, "mixed", tmp_path),
        "queued": ws.start_run(ws.target("greet"), {})[0],
    }
    now = time.time()
    ws.db.execute(
        "INSERT INTO firings (workflow, trigger_id, instant, status, reason, claimed_by, created)"
        " VALUES ('greet', 'nightly', ?, 'missed', 'scheduler was down at 02:00', 'test', ?)",
        [now - 3600, now],
    )
    ws.db.conn.commit()
    yield {"ws": ws, "home": home, **ids}
    ws.close()


def open_runs(run: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("views/runs.py")
    if run is not None:
        at.query_params["run"] = str(run)
    at.run()
    check(at)
    return at


def check(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def frame(at: AppTest, column: str) -> pd.DataFrame:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with column {column!r}")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [i.value for i in at.info]
    parts += [c.value for c in at.caption] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def flow_args(at: AppTest) -> dict[str, Any]:
    for el in at.get("component_instance"):
        if "streamlit_flow" in el.proto.component_name:
            return json.loads(el.proto.json_args)
    raise AssertionError("no flow graph drawn")


def pick_task(at: AppTest, node: str) -> AppTest:
    at.session_state["runs_flow"] = {"nodes": [], "edges": [], "selectedId": node, "timestamp": 1}
    return check(at.run())


# -- storage ---------------------------------------------------------------------------


def test_search_runs_keyset_pages_and_filters(store: dict[str, Any]) -> None:
    ws = store["ws"]
    for _ in range(5):
        ws.start_run(ws.target("greet"), {})
    everything = [r.id for r in search_runs(ws.db, limit=1000)]
    assert everything == sorted(everything, reverse=True) and len(everything) == 8
    seen, before = [], None
    while True:
        page = search_runs(ws.db, before_id=before, limit=3)
        if not page:
            break
        assert len(page) <= 3
        seen += [r.id for r in page]
        before = page[-1].id
    assert seen == everything
    assert [r.id for r in search_runs(ws.db, workflow="mixed")] == [store["mixed"]]
    assert [r.id for r in search_runs(ws.db, status="succeeded")] == [store["greet_ok"]]
    assert [r.id for r in search_runs(ws.db, text="status 3")] == [store["mixed"]]  # a task's error
    assert [r.id for r in search_runs(ws.db, text=str(store["mixed"]), workflow="mixed")] == [store["mixed"]]
    assert search_runs(ws.db, text="%") == [] and search_runs(ws.db, text="_") == []  # LIKE is escaped
    assert len(search_runs(ws.db, trigger="manual")) == 8 and search_runs(ws.db, trigger="cron") == []
    now = time.time()
    assert len(search_runs(ws.db, since=now - 600, until=now + 600)) == 8
    assert search_runs(ws.db, until=now - 600) == []
    missed = search_firings(ws.db, workflow="greet")
    assert [(f["status"], f["reason"]) for f in missed] == [("missed", "scheduler was down at 02:00")]
    assert search_firings(ws.db, workflow="mixed") == []


def test_log_page_paging_and_search(store: dict[str, Any]) -> None:
    db, run = store["ws"].db, store["mixed"]
    first = log_page(db, run, task_id="ok")
    assert [r["line"] for r in first.lines] == [f"line-{i}" for i in range(1, 201)]
    assert first.has_newer and not first.has_older
    second = log_page(db, run, task_id="ok", after_id=first.last_id)
    assert [r["line"] for r in second.lines] == [f"line-{i}" for i in range(201, 401)]
    assert second.has_older and second.has_newer
    third = log_page(db, run, task_id="ok", after_id=second.last_id)
    assert len(third.lines) == 100 and not third.has_newer and third.has_older
    back = log_page(db, run, task_id="ok", before_id=second.first_id)
    assert back.lines == first.lines and not back.has_older and back.has_newer
    found = log_page(db, run, task_id="ok", search="line-137")
    assert [r["line"] for r in found.lines] == ["line-137"]
    assert log_page(db, run, task_id="ok", search="line_1").lines == []  # '_' is literal
    assert [r["line"] for r in log_page(db, run, task_id="bad").lines] == ["oops"]
    assert log_page(db, run, task_id="ok", attempt=2).lines == []


def test_request_resume_only_crashed(store: dict[str, Any]) -> None:
    db, run = store["ws"].db, store["mixed"]
    assert request_resume(db, run) is False  # failed, not crashed
    db.execute("UPDATE runs SET status = 'crashed', owner = 'dead' WHERE id = ?", [run])
    db.conn.commit()
    assert request_resume(db, run) is True
    assert db.execute("SELECT status, owner FROM runs WHERE id = ?", [run]).fetchone() == ("queued", None)


# -- the page: table and filters ------------------------------------------------------------


def test_table_filters_and_missed_firing(store: dict[str, Any]) -> None:
    at = open_runs()
    runs = frame(at, "run")
    assert list(runs["run"]) == [store["queued"], store["mixed"], store["greet_ok"]]
    assert "🔴 failed" in list(runs["status"]) and "🟢 succeeded" in list(runs["status"])
    firings = frame(at, "reason")
    assert list(firings["reason"]) == ["scheduler was down at 02:00"] and "missed" in firings["status"][0]

    check(at.selectbox(key="runs_workflow").select("mixed").run())
    assert list(frame(at, "run")["run"]) == [store["mixed"]]
    check(at.selectbox(key="runs_workflow").select("(all)").run())
    check(at.selectbox(key="runs_status").select("queued").run())
    assert list(frame(at, "run")["run"]) == [store["queued"]]
    check(at.selectbox(key="runs_status").select("(all)").run())
    check(at.text_input(key="runs_text").input("status 3").run())
    assert list(frame(at, "run")["run"]) == [store["mixed"]]
    check(at.text_input(key="runs_text").input("no such thing").run())
    assert "No runs match." in texts(at)
    check(at.text_input(key="runs_text").input("").run())
    check(at.selectbox(key="runs_status").select("missed").run())
    assert list(frame(at, "reason")["reason"]) == ["scheduler was down at 02:00"]


def test_table_pages_with_keyset(store: dict[str, Any]) -> None:
    ws = store["ws"]
    for _ in range(52):
        ws.start_run(ws.target("greet"), {})
    at = open_runs()
    page1 = list(frame(at, "run")["run"])
    assert len(page1) == 50 and page1 == sorted(page1, reverse=True)
    check(at.button(key="runs_older").click().run())
    page2 = list(frame(at, "run")["run"])
    assert len(page2) == 5 and max(page2) < min(page1)
    check(at.button(key="runs_newer").click().run())
    assert list(frame(at, "run")["run"]) == page1


# -- the page: run detail ----------------------------------------------------------------------


def test_detail_graph_states_and_tasks(store: dict[str, Any]) -> None:
    at = open_runs(store["mixed"])
    shown = texts(at)
    assert f"Run {store['mixed']} · mixed v1" in [s.value for s in at.subheader]
    assert "🔴 failed" in shown and "manual" in shown
    nodes = {n["id"]: n for n in flow_args(at)["nodes"]}
    assert nodes["ok"]["style"]["background"] == "#a5d6a7"
    assert nodes["bad"]["style"]["background"] == "#ef9a9a"
    assert nodes["after"]["style"]["background"] == "#d6d6d6"
    assert nodes["boom"]["style"]["background"] == "#ea80fc"
    assert "upstream" in nodes["after"]["data"]["content"]
    assert not any(n["draggable"] or n["connectable"] for n in nodes.values())
    assert len(at.get("vega_lite_chart")) == 1  # the timeline

    assert at.selectbox(key="runs_task").value == "ok"
    assert "🟢 succeeded" in texts(at) and "exit code 0" in texts(at)
    pick_task(at, "bad")
    assert at.selectbox(key="runs_task").value == "bad"
    assert "exited with status 3" in texts(at) and "exit code 3" in texts(at)
    assert any(j.value == {"command": "echo oops >&2; exit 3"} or '"echo oops' in str(j.value) for j in at.json)
    pick_task(at, "after")
    assert "skipped: upstream 'bad' failed" in texts(at)
    pick_task(at, "boom")
    assert "killed by signal SIGKILL" in texts(at) and "signal 9" in texts(at)
    assert "🟣 crashed" in texts(at)


def test_select_run_from_picker(store: dict[str, Any]) -> None:
    at = open_runs()
    check(at.selectbox(key="runs_pick").select(store["greet_ok"]).run())
    assert f"Run {store['greet_ok']} · greet v1" in [s.value for s in at.subheader]
    assert at.query_params["run"] in (str(store["greet_ok"]), [str(store["greet_ok"])])


def test_log_paging_and_search_on_page(store: dict[str, Any]) -> None:
    at = open_runs(store["mixed"])
    log = frame(at, "line")
    assert len(log) == 200 and log["line"].iloc[0] == "line-1" and log["stream"].iloc[0] == "stdout"
    check(at.button(key="runs_log_newer").click().run())
    log = frame(at, "line")
    assert log["line"].iloc[0] == "line-201" and log["line"].iloc[-1] == "line-400"
    check(at.button(key="runs_log_newer").click().run())
    assert list(frame(at, "line")["line"]) == [f"line-{i}" for i in range(401, 501)]
    assert at.button(key="runs_log_newer").disabled
    check(at.button(key="runs_log_older").click().run())
    assert frame(at, "line")["line"].iloc[0] == "line-201"
    check(at.text_input(key="runs_log_search").input("line-137").run())
    assert list(frame(at, "line")["line"]) == ["line-137"]


# -- the page: actions ------------------------------------------------------------------------


def status_of(ws: Workspace, run_id: int) -> str:
    return ws.db.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()[0]


def test_cancel_queued_run(store: dict[str, Any], tmp_path: Path) -> None:
    ws, run = store["ws"], store["queued"]
    at = open_runs(run)
    check(at.button(key="runs_act_cancel").click().run())
    # queued and not yet taken by a scheduler: nothing runs, so it is cancelled on the spot
    assert status_of(ws, run) == "cancelled"
    states = {r[0] for r in ws.db.execute("SELECT status FROM task_states WHERE run_id = ?", [run])}
    assert states == {"cancelled"}
    # a crashed run (no live runner) is cancelled on the spot
    ws.db.execute("UPDATE runs SET status = 'crashed', owner = NULL WHERE id = ?", [store["mixed"]])
    ws.db.conn.commit()
    at = open_runs(store["mixed"])
    check(at.button(key="runs_act_cancel").click().run())
    assert status_of(ws, store["mixed"]) == "cancelled"


def test_rerun_and_rerun_failed(store: dict[str, Any]) -> None:
    ws = store["ws"]
    at = open_runs(store["mixed"])
    check(at.button(key="runs_act_rerun").click().run())
    new = ws.db.execute("SELECT max(id) FROM runs").fetchone()[0]
    assert new > store["queued"]
    run = get_run(ws.db, new)
    assert run.status == "queued" and run.parent_run_id == store["mixed"] and run.trigger == "rerun"
    assert f"run {new} queued" in texts(at) and "no scheduler answered" in texts(at)
    assert at.session_state["runs_selected"] == new  # the page follows the new run
    assert f"Run {new} · mixed v1" in [s.value for s in at.subheader]

    check(at.selectbox(key="runs_pick").select(store["mixed"]).run())
    check(at.button(key="runs_act_failed").click().run())
    again = ws.db.execute("SELECT max(id) FROM runs").fetchone()[0]
    assert again > new and get_run(ws.db, again).parent_run_id == store["mixed"]
    reused = dict(ws.db.execute("SELECT task_id, reused_from FROM task_states WHERE run_id = ?", [again]).fetchall())
    assert reused["ok"] == store["mixed"] and reused["bad"] is None


def test_rerun_from_selected_task(store: dict[str, Any]) -> None:
    ws = store["ws"]
    at = open_runs(store["mixed"])
    pick_task(at, "bad")
    assert at.button(key="runs_act_from").label == "Re-run from bad"
    check(at.button(key="runs_act_from").click().run())
    new = ws.db.execute("SELECT max(id) FROM runs").fetchone()[0]
    rows = dict(ws.db.execute("SELECT task_id, reused_from FROM task_states WHERE run_id = ?", [new]).fetchall())
    assert rows["ok"] == store["mixed"] and rows["bad"] is None and rows["after"] is None
    assert get_run(ws.db, new).status == "queued"


def test_resume_crashed_run(store: dict[str, Any]) -> None:
    ws = store["ws"]
    ws.db.execute("UPDATE runs SET status = 'crashed', owner = 'gone' WHERE id = ?", [store["mixed"]])
    ws.db.conn.commit()
    at = open_runs(store["mixed"])
    assert not at.button(key="runs_act_resume").disabled
    check(at.button(key="runs_act_resume").click().run())
    assert ws.db.execute("SELECT status, owner FROM runs WHERE id = ?", [store["mixed"]]).fetchone() == ("queued", None)
    assert f"run {store['mixed']} queued" in texts(at)


def test_spilled_output_preview_and_download(store: dict[str, Any]) -> None:
    ws, home, run = store["ws"], store["home"], store["mixed"]
    path = home / "outputs" / str(run) / "ok.1.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"rows": [1, 2, 3]}')
    ref = {"$taskloom_spilled": {"path": f"outputs/{run}/ok.1.json", "bytes": 19, "sha256": "x",
                                 "preview": '{"rows": [1, 2'}}
    ws.db.execute("UPDATE attempts SET output = ? WHERE run_id = ? AND task_id = 'ok'", [json.dumps(ref), run])
    ws.db.conn.commit()
    at = open_runs(run)
    assert "large output (19 bytes)" in texts(at)
    assert any('{"rows": [1, 2' in c.value for c in at.code)
    assert len(at.get("download_button")) == 1
