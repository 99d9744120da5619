"""The Designer page: pure functions of taskloom.ui.web.designer, and the page driven headless with Streamlit's AppTest.

The canvas (streamlit-flow) is a custom component: AppTest does not render it,
but its arguments (``json_args``: the nodes and edges sent to the browser) can
be read, and what the browser would send back is injected by setting
``st.session_state["designer_flow"]`` before a run.
"""

from __future__ import annotations

import itertools
import re
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from taskloom.core.model import canonical_json
from taskloom.storage.plugins import load_registry
from taskloom.core.validation import Issue, validate_document
from taskloom.storage.secrets import SecretStore
from taskloom.storage.workflows import list_versions, list_workflows
from taskloom.storage.store import Workspace
from taskloom.ui.web.designer import docops, flowstate, forms, palette, triggers_panel
from taskloom.ui.web.designer.session import DOC, FLOW_KEY, GEN, OPEN, SELECTED

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "taskloom" / "ui" / "web" / "app.py")
HELLO = ROOT / "assets" / "examples" / "hello.json"
REGISTRY = load_registry()
_stamps = itertools.count(1)


def hello() -> dict[str, Any]:
    return json.loads(HELLO.read_text())


def chain(n: int = 3, **extra: Any) -> dict[str, Any]:
    """t0 -> t1 -> ... noop tasks, no positions."""
    doc = {
        "format": "taskloom/v1", "name": "chain",
        "tasks": [{"id": f"t{i}", "type": "noop"} for i in range(n)],
        "edges": [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(n - 1)],
    }
    doc.update(extra)
    return doc


# -- pure functions ------------------------------------------------------------------


def test_md_escape_and_node_content_escape_user_text():
    assert flowstate.md_escape("**x** <b>$y$</b> [l](u)") == r"\*\*x\*\* \<b\>\$y\$\</b\> \[l\]\(u\)"
    task = {"id": "t", "type": "shell", "title": "<img src=x onerror=alert(1)> **bold**"}
    content = flowstate.node_content(task, REGISTRY, [Issue("/tasks/0/params/command", 'bad "<x>"', "")])
    assert re.search(r"(?<!\\)<img", content) is None and r"\<img" in content and r"\*\*bold\*\*" in content
    assert "💻" in content and "shell" in content
    assert 'title="/tasks/0/params/command: bad &quot;&lt;x&gt;&quot;"' in content and "⚠ 1 problem" in content


def test_doc_to_flow_nodes_are_editable_with_side_handles_and_edges_are_arrows():
    doc = hello()
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)
    assert [n["id"] for n in flow["nodes"]] == [t["id"] for t in doc["tasks"]]
    for node in flow["nodes"]:
        assert node["connectable"] and node["deletable"] and node["selectable"] and node["draggable"]
        assert (node["sourcePosition"], node["targetPosition"]) == ("right", "left")
    assert flow["nodes"][0]["position"] == {"x": 0.0, "y": 100.0}
    edges = {e["id"]: e for e in flow["edges"]}
    assert set(edges) == {"greet->repeat", "repeat->many", "many->celebrate", "many->shrug", "celebrate->done",
                          "shrug->done"}
    assert all(e["deletable"] and e["markerEnd"]["type"] == "arrowclosed" for e in edges.values())
    assert edges["many->celebrate"]["label"] == "true"
    assert edges["many->celebrate"]["style"]["stroke"] == flowstate.EDGE_COLORS["true"]
    assert edges["many->shrug"]["style"]["stroke"] == flowstate.EDGE_COLORS["false"]
    assert edges["greet->repeat"]["label"] == "success"


def test_invalid_nodes_are_outlined_red():
    doc = chain(2)
    doc["tasks"][1] = {"id": "t1", "type": "http", "params": {"url": "ftp://nope"}}
    issues = validate_document(doc, REGISTRY)
    flow = flowstate.doc_to_flow(doc, issues, REGISTRY)
    assert "#d32f2f" in flow["nodes"][1]["style"]["border"] and "⚠" in flow["nodes"][1]["data"]["content"]
    assert "#d32f2f" not in flow["nodes"][0]["style"]["border"]


def test_echo_of_the_drawn_graph_changes_nothing():
    for doc in (hello(), chain(4)):  # with and without saved positions
        flow = flowstate.doc_to_flow(doc, [], REGISTRY)
        update = flowstate.flow_to_doc(doc, {**flow, "selectedId": None, "timestamp": 1})
        assert not update.changed and update.doc == doc and not update.errors


def test_flow_to_doc_moves_deletes_and_connects():
    doc = chain(3)
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)
    flow["nodes"][0]["position"] = {"x": 12.25, "y": -40}
    update = flowstate.flow_to_doc(doc, flow)
    assert update.changed and update.doc["tasks"][0]["position"] == {"x": 12.2, "y": -40}
    doc = hello()  # saved positions: only the moved node changes
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)
    flow["nodes"][5]["position"] = {"x": 1100.4, "y": 90}
    out = flowstate.flow_to_doc(doc, flow).doc
    assert out["tasks"][5]["position"] == {"x": 1100.4, "y": 90} and out["tasks"][:5] == doc["tasks"][:5]

    doc = chain(3)
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)

    new_edge = {"id": "st-flow-edge_t0-t2", "source": "t0", "target": "t2"}
    update = flowstate.flow_to_doc(doc, {**flow, "edges": [*flow["edges"], new_edge], "selectedId": new_edge["id"]})
    assert update.doc["edges"][-1] == {"from": "t0", "to": "t2"} and update.selected == "t0->t2"

    dropped = {**flow, "edges": [e for e in flow["edges"] if e["id"] != "t0->t1"]}
    assert flowstate.flow_to_doc(doc, dropped).doc["edges"] == [{"from": "t1", "to": "t2"}]


def test_first_change_of_a_layout_without_positions_keeps_every_node_in_place():
    doc = chain(3)
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)
    drawn = {n["id"]: (n["position"]["x"], n["position"]["y"]) for n in flow["nodes"]}
    flow["nodes"][2]["position"] = {"x": 900, "y": 300}
    out = flowstate.flow_to_doc(doc, flow).doc
    assert out["tasks"][2]["position"] == {"x": 900, "y": 300}
    assert [(t["position"]["x"], t["position"]["y"]) for t in out["tasks"][:2]] == [drawn["t0"], drawn["t1"]]
    frozen = flowstate.freeze_positions(doc)
    assert flowstate.display_positions(frozen) == flowstate.display_positions(doc)


def test_flow_to_doc_refuses_a_cycle_and_names_it():
    doc = chain(3)
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)
    back = {"id": "st-flow-edge_t2-t0", "source": "t2", "target": "t0"}
    update = flowstate.flow_to_doc(doc, {**flow, "edges": [*flow["edges"], back]})
    assert update.doc["edges"] == doc["edges"]
    assert update.errors == ["refused edge t2 -> t0: it would close the cycle t2 -> t0 -> t1 -> t2"]
    loop = {"id": "st-flow-edge_t1-t1", "source": "t1", "target": "t1"}
    assert "t1 -> t1" in flowstate.flow_to_doc(doc, {**flow, "edges": [loop]}).errors[0]


def test_flow_to_doc_removes_dangling_edges_of_a_deleted_node():
    doc = chain(3)
    flow = flowstate.doc_to_flow(doc, [], REGISTRY)
    # keyboard delete: the node is gone but its edges are still in the state
    nodes = [n for n in flow["nodes"] if n["id"] != "t1"]
    update = flowstate.flow_to_doc(doc, {"nodes": nodes, "edges": flow["edges"]})
    assert [t["id"] for t in update.doc["tasks"]] == ["t0", "t2"]
    assert update.doc["edges"] == []
    assert any("left without a task" in n for n in update.notes)


def test_stale_states_are_recognised():
    flow = flowstate.stamp(flowstate.doc_to_flow(chain(2), [], REGISTRY), 5)
    assert flowstate.is_current(flow, 5) and not flowstate.is_current(flow, 6)
    empty = {"nodes": [], "edges": [], "selectedId": None}
    assert not flowstate.is_current(empty, 6, acked=5)  # an empty canvas from before revision 6
    assert flowstate.is_current(empty, 6, acked=6)  # the user deleted the last node of revision 6


def test_auto_layout_is_left_to_right_and_stored():
    doc = chain(4)
    doc["tasks"].append({"id": "side", "type": "noop"})
    doc["edges"].append({"from": "t0", "to": "side"})
    out = flowstate.auto_layout(doc)
    x = {t["id"]: t["position"]["x"] for t in out["tasks"]}
    assert x["t0"] < x["t1"] < x["t2"] < x["t3"] and x["side"] == x["t1"]
    positions = [(t["position"]["x"], t["position"]["y"]) for t in out["tasks"]]
    assert len(set(positions)) == len(positions)
    assert canonical_json(flowstate.auto_layout(out)) == canonical_json(out)  # stable


def test_free_position_does_not_overlap():
    occupied = [(0.0, 0.0), (260.0, 0.0), (0.0, 120.0)]
    x, y = flowstate.free_position(occupied)
    assert all(abs(x - ox) >= flowstate.NODE_WIDTH or abs(y - oy) >= flowstate.NODE_HEIGHT for ox, oy in occupied)
    assert flowstate.free_position([]) == (0.0, 0.0)


def test_add_task_gives_fresh_ids_and_required_defaults():
    doc = docops.new_document()
    doc, first = docops.add_task(doc, "http", REGISTRY)
    doc, second = docops.add_task(doc, "http", REGISTRY, (10, 20))
    assert (first, second) == ("http_1", "http_2")
    assert doc["tasks"][0]["params"] == {"url": ""}
    assert doc["tasks"][1]["position"] == {"x": 10, "y": 20}
    doc, file_id = docops.add_task(doc, "file", REGISTRY)
    assert doc["tasks"][-1]["params"] == {"action": "copy", "source": ""}
    assert docops.default_params(REGISTRY.get("foreach").params_schema) == {"items": "", "task": {"type": ""}}


def test_rename_task_updates_edges_and_refuses_bad_ids():
    doc = docops.rename_task(hello(), "many", "enough")
    assert {"from": "repeat", "to": "enough"} in doc["edges"]
    assert {"from": "enough", "to": "celebrate", "on": "true"} in doc["edges"]
    with pytest.raises(ValueError, match="already a task 'greet'"):
        docops.rename_task(hello(), "many", "greet")
    with pytest.raises(ValueError, match="not a valid task id"):
        docops.rename_task(hello(), "many", "2many")


def test_edge_conditions_depend_on_the_source():
    doc = hello()
    assert docops.edge_conditions(doc, "greet") == ["success", "failure", "always"]
    assert docops.edge_conditions(doc, "many") == ["success", "failure", "always", "true", "false"]
    out = docops.set_edge_condition(doc, "greet->repeat", "failure")
    assert out["edges"][0] == {"from": "greet", "to": "repeat", "on": "failure"}
    assert docops.set_edge_condition(doc, "greet->repeat", "success") == doc  # the default: nothing written


def test_field_specs_from_the_http_schema():
    specs = {s.name: s for s in forms.field_specs(REGISTRY.get("http").params_schema)}
    assert specs["method"].kind == "enum" and specs["method"].options[0] == "GET"
    assert specs["url"].kind == "text" and specs["url"].required
    assert specs["body"].kind == "code"
    assert specs["headers"].kind == "json" and specs["json"].kind == "json"
    assert specs["timeout"].kind == "number" and not specs["timeout"].integer
    assert specs["max_response_bytes"].integer
    assert specs["follow_redirects"].kind == "bool"
    assert specs["expect_status"].kind == "smart"
    auth = specs["auth"]
    assert auth.kind == "object" and {c.name: c.kind for c in auth.children}["secret"] == "secret"
    sql = {s.name: s for s in forms.field_specs(REGISTRY.get("sql").params_schema)}
    assert sql["query"].kind == "code" and sql["query"].language == "SQL code"
    assert sql["url"].kind == "text" and sql["url"].secret_hint


def test_parse_widget_values():
    specs = {s.name: s for s in forms.field_specs(REGISTRY.get("http").params_schema)}
    assert forms.parse_widget(specs["headers"], '{"A": "b"}') == forms.Change("set", {"A": "b"})
    bad = forms.parse_widget(specs["headers"], "{oops")
    assert bad.action == "error" and "not valid JSON" in bad.error
    assert forms.parse_widget(specs["headers"], "") == forms.Change("remove")
    assert forms.parse_widget(specs["expect_status"], "404") == forms.Change("set", 404)
    assert forms.parse_widget(specs["expect_status"], "2xx") == forms.Change("set", "2xx")
    assert forms.parse_widget(specs["expect_status"], "[200, 404]") == forms.Change("set", [200, 404])
    assert forms.parse_widget(specs["url"], "{{ params.u }}") == forms.Change("set", "{{ params.u }}")
    assert forms.parse_widget(specs["method"], forms.UNSET) == forms.Change("remove")
    assert forms.parse_widget(specs["timeout"], 12.0) == forms.Change("set", 12)
    assert forms.widget_value(specs["timeout"], forms.MISSING) == 30.0
    auth = {c.name: c for c in specs["auth"].children}
    assert forms.parse_widget(auth["secret"], forms.NO_SECRET) == forms.Change("set", "")
    assert forms.apply_change({}, ("auth", "secret"), "set", "TOKEN") == {"auth": {"secret": "TOKEN"}}


@pytest.mark.parametrize("expression, words", [
    ("* * * * *", "every minute"),
    ("*/5 * * * *", "every 5 minutes"),
    ("0 * * * *", "every hour"),
    ("15 * * * *", "every hour at minute 15"),
    ("0 8 * * 1-5", "at 08:00 on Monday to Friday"),
    ("30 2 * * *", "at 02:30 every day"),
    ("0 0 1 * *", "at 00:00 on day 1 of the month"),
    ("0 9 * * mon,wed", "at 09:00 on Monday and Wednesday"),
    ("0,30 8 * * *", "at 08:00 and 08:30"),
    ("0 12 * 1-3 *", "at 12:00 every day in January to March"),
    ("@daily", "at 00:00 every day"),
    ("0 0 1 2", "not a five-field cron expression"),
])
def test_describe_cron(expression, words):
    assert triggers_panel.describe_cron(expression).startswith(words)


def test_trigger_firings_flag_dst_moves():
    trigger = {"id": "night", "type": "cron", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    after = datetime(2026, 3, 27, 12, tzinfo=timezone.utc).timestamp()
    rows, error = triggers_panel.trigger_firings(trigger, after)
    assert error is None and len(rows) == 5
    assert rows[0]["local time"].startswith("2026-03-28 02:30") and rows[0]["UTC"] == "2026-03-28 01:30:00 UTC"
    assert rows[1]["DST"].startswith("⚠ moved") and rows[1]["local time"].startswith("2026-03-29 03:30")
    _, error = triggers_panel.trigger_firings({"id": "x", "type": "cron", "cron": "99 * * * *"}, after)
    assert error


def test_palette_groups_every_type_once():
    groups = palette.palette_groups(REGISTRY)
    names = [t.name for _, types in groups for t in types]
    assert sorted(names) == [n for n in REGISTRY.names() if not REGISTRY[n].placeholder]
    assert "placeholder" not in names  # only an import makes those
    assert groups[0][0] == "Run code"
    assert palette.one_line("Run a thing. More text.") == "Run a thing"


# -- the page ---------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("TASKLOOM_HOME", str(path))
    return path


@pytest.fixture
def store(home: Path):
    workspace = Workspace(home)
    yield workspace
    workspace.close()


def run(thing: Any) -> AppTest:
    """Run the app, or rerun after an interaction (``run(at.button(key=...).click())``); it must not raise."""
    at = thing.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app(home: Path) -> AppTest:
    return run(AppTest.from_file(APP, default_timeout=30))


def flow_args(at: AppTest) -> dict[str, Any]:
    (component,) = [c for c in at.get("component_instance") if c.proto.component_name.endswith("streamlit_flow")]
    return json.loads(component.proto.json_args)


def send(at: AppTest, *, nodes: list | None = None, edges: list | None = None, selected: str | None = None) -> AppTest:
    """What the browser would send: the drawn graph (changed as given) and a selection."""
    args = flow_args(at)
    at.session_state[FLOW_KEY] = {
        "nodes": args["nodes"] if nodes is None else nodes,
        "edges": args["edges"] if edges is None else edges,
        "selectedId": selected,
        "timestamp": 10_000 + next(_stamps),
    }
    return run(at)


def doc_of(at: AppTest) -> dict[str, Any]:
    return at.session_state[DOC]


def key(at: AppTest, rest: str) -> str:
    return f"dz{at.session_state[GEN]}:{rest}"


def texts(at: AppTest) -> str:
    """Every message, markdown, caption and toast on the page."""
    parts = []
    for kind in ("success", "info", "warning", "error", "markdown", "caption", "toast"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))  # as rendered: without Markdown escapes


def open_stored(at: AppTest, name: str) -> AppTest:
    at.session_state[OPEN] = name
    return run(at)


def test_palette_adds_a_node_with_a_fresh_id(app: AppTest):
    run(app.button(key=palette.palette_key("http")).click())
    run(app.button(key=palette.palette_key("http")).click())
    doc = doc_of(app)
    assert [t["id"] for t in doc["tasks"]] == ["http_1", "http_2"]
    nodes = {n["id"]: n for n in flow_args(app)["nodes"]}
    assert set(nodes) == {"http_1", "http_2"}
    a, b = nodes["http_1"]["position"], nodes["http_2"]["position"]
    assert abs(a["x"] - b["x"]) >= flowstate.NODE_WIDTH or abs(a["y"] - b["y"]) >= flowstate.NODE_HEIGHT
    assert "🌐" in nodes["http_1"]["data"]["content"]
    assert app.session_state[SELECTED] == "http_2"  # the new node is open in the inspector
    assert "/tasks/0/params/url" in texts(app)  # the empty required url is flagged


def test_inspector_edits_params_and_fields_of_the_clicked_node(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    open_stored(app, "hello")
    send(app, selected="greet")
    assert app.session_state[SELECTED] == "greet"
    command = app.text_area(key=key(app, "t0:greet:p:command"))
    assert "Hello" in command.value and command.label == "Command * (code)"
    run(command.input("echo hi {{ params.who }}"))
    run(app.text_input(key=key(app, "t0:greet:m:title")).input("Say hi"))
    run(app.number_input(key=key(app, "t0:greet:m:retries")).set_value(3))
    run(app.selectbox(key=key(app, "t0:greet:m:join")).select("any"))
    task = doc_of(app)["tasks"][0]
    assert task["params"]["command"] == "echo hi {{ params.who }}"
    assert (task["title"], task["retries"], task["join"]) == ("Say hi", 3, "any")
    assert task["position"] == {"x": 0, "y": 100}  # untouched
    assert "Say hi" in flow_args(app)["nodes"][0]["data"]["content"]


def test_inspector_json_errors_secrets_and_rename(app: AppTest, store: Workspace):
    SecretStore(store.db, store.home).set("API_TOKEN", "s3cret")
    run(app.button(key=palette.palette_key("http")).click())
    headers = app.text_area(key=key(app, "t0:http_1:p:headers"))
    run(headers.input("{not json"))
    assert any("not valid JSON" in e.value for e in app.error)
    assert "headers" not in doc_of(app)["tasks"][0]["params"]
    run(app.text_area(key=key(app, "t0:http_1:p:headers")).input('{"Accept": "application/json"}'))
    assert doc_of(app)["tasks"][0]["params"]["headers"] == {"Accept": "application/json"}
    run(app.checkbox(key=key(app, "t0:http_1:p:auth:on")).check())
    secret = app.selectbox(key=key(app, "t0:http_1:p:auth.secret"))
    assert secret.options == ["(none)", "API_TOKEN"]
    run(secret.select("API_TOKEN"))
    assert doc_of(app)["tasks"][0]["params"]["auth"] == {"type": "bearer", "secret": "API_TOKEN"}

    run(app.button(key=palette.palette_key("noop")).click())
    run(app.text_input(key=key(app, "t1:noop_1:id")).input("http_1"))
    assert "already a task 'http_1'" in texts(app)
    run(app.text_input(key=key(app, "t1:noop_1:id")).input("join_here"))
    assert [t["id"] for t in doc_of(app)["tasks"]] == ["http_1", "join_here"]
    assert app.session_state[SELECTED] == "join_here"


def test_edge_condition_sets_on_label_and_colour(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    open_stored(app, "hello")
    send(app, selected="greet->repeat")
    condition = app.selectbox(key=key(app, "e:greet->repeat:on"))
    assert condition.options == ["success", "failure", "always"]  # greet is not a condition task
    run(condition.select("failure"))
    assert doc_of(app)["edges"][0] == {"from": "greet", "to": "repeat", "on": "failure"}
    edge = {e["id"]: e for e in flow_args(app)["edges"]}["greet->repeat"]
    assert edge["label"] == "failure" and edge["style"]["stroke"] == flowstate.EDGE_COLORS["failure"]
    assert edge["markerEnd"]["color"] == flowstate.EDGE_COLORS["failure"]
    send(app, selected="many->shrug")
    assert app.selectbox(key=key(app, "e:many->shrug:on")).options[-2:] == ["true", "false"]


def test_validation_issues_are_listed_with_paths_and_outlined(app: AppTest):
    bad = chain(2, name="bad-one")
    bad["tasks"][1] = {"id": "t1", "type": "http", "params": {"url": "ftp://x", "retries": 2}}
    bad["edges"].append({"from": "t0", "to": "ghost"})
    run(app.file_uploader(key=key(app, "upload")).set_value(("bad.json", json.dumps(bad).encode(), "application/json")))
    text = texts(app)
    assert "/tasks/1/params" in text and "/edges/1/to" in text and "cannot be saved" in text
    node = {n["id"]: n for n in flow_args(app)["nodes"]}["t1"]
    assert "#d32f2f" in node["style"]["border"] and "⚠" in node["data"]["content"]


def test_a_cycle_from_the_canvas_is_refused_and_named(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    open_stored(app, "hello")
    before = doc_of(app)["edges"]
    args = flow_args(app)
    send(app, edges=[*args["edges"], {"id": "st-flow-edge_done-greet", "source": "done", "target": "greet"}],
         selected="st-flow-edge_done-greet")
    assert doc_of(app)["edges"] == before
    errors = [e.value for e in app.error]
    assert any("refused edge done -> greet" in e and "done -> greet -> repeat -> many ->" in e for e in errors)
    assert "done->greet" not in {e["id"] for e in flow_args(app)["edges"]}


def test_a_new_connection_becomes_an_arrow_edge(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    open_stored(app, "hello")
    args = flow_args(app)
    send(app, edges=[*args["edges"], {"id": "st-flow-edge_greet-done", "source": "greet", "target": "done",
                                      "deletable": False}], selected="st-flow-edge_greet-done")
    assert doc_of(app)["edges"][-1] == {"from": "greet", "to": "done"}
    assert app.session_state[SELECTED] == "greet->done"
    edge = {e["id"]: e for e in flow_args(app)["edges"]}["greet->done"]
    assert edge["deletable"] and edge["markerEnd"]["type"] == "arrowclosed" and edge["label"] == "success"


def test_deleting_a_node_removes_its_dangling_edges(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    open_stored(app, "hello")
    args = flow_args(app)
    send(app, nodes=[n for n in args["nodes"] if n["id"] != "many"], edges=args["edges"])
    doc = doc_of(app)
    assert "many" not in [t["id"] for t in doc["tasks"]]
    assert all("many" not in (e["from"], e["to"]) for e in doc["edges"]) and len(doc["edges"]) == 3
    assert {e["id"] for e in flow_args(app)["edges"]} == {"greet->repeat", "celebrate->done", "shrug->done"}


def test_a_stale_canvas_state_is_ignored(app: AppTest):
    send(app)  # the empty canvas as first drawn
    run(app.button(key=palette.palette_key("noop")).click())
    # a late empty canvas (sent before the node arrived) must not delete it
    app.session_state[FLOW_KEY] = {"nodes": [], "edges": [], "selectedId": None, "timestamp": 4}
    run(app)
    assert [t["id"] for t in doc_of(app)["tasks"]] == ["noop_1"]
    send(app)  # the browser draws it
    app.session_state[FLOW_KEY] = {"nodes": [], "edges": [], "selectedId": None, "timestamp": 3}
    run(app)  # then the user deletes it from the canvas
    assert doc_of(app)["tasks"] == []
    run(app.button(key=palette.palette_key("noop")).click())
    old = flow_args(app)
    run(app.button(key=palette.palette_key("noop")).click())
    # a late echo of the one-node graph must not delete the second node
    app.session_state[FLOW_KEY] = {"nodes": old["nodes"], "edges": [], "selectedId": None, "timestamp": 5}
    run(app)
    assert [t["id"] for t in doc_of(app)["tasks"]] == ["noop_1", "noop_2"]


def test_save_versions_and_unsaved_indicator(app: AppTest, store: Workspace):
    assert "unsaved changes" in texts(app)
    run(app.button(key=palette.palette_key("noop")).click())
    run(app.text_input(key="designer_save_msg").input("first"))
    run(app.button(key="designer_save").click())
    assert "as version 1" in texts(app) and "unsaved changes" not in texts(app)
    run(app.text_input(key=key(app, "wf:title")).input("My flow"))
    assert "unsaved changes" in texts(app)
    run(app.button(key="designer_save").click())
    assert "unsaved changes" not in texts(app)
    versions = list_versions(store.db, "new-workflow")
    assert [(v.version, v.message) for v in versions] == [(1, "first"), (2, "")]
    assert store.export("new-workflow")["title"] == "My flow"


def test_an_invalid_document_is_not_saved(app: AppTest, store: Workspace):
    run(app.button(key=palette.palette_key("http")).click())
    run(app.button(key="designer_save").click())
    assert any("not saved" in e.value for e in app.error)
    assert list_workflows(store.db) == []


def test_upload_good_and_bad_files(app: AppTest, store: Workspace):
    uploader = app.file_uploader(key=key(app, "upload"))
    run(uploader.set_value(("broken.json", b'{"format": "taskloom/v1", "tasks": [', "application/json")))
    assert "broken.json was not loaded" in texts(app) and "invalid JSON at line 1" in texts(app)
    assert doc_of(app)["name"] == "new-workflow"
    run(app.file_uploader(key=key(app, "upload")).set_value(
        ("odd.json", b'{"format": "taskloom/v1", "name": "x", "tasks": [{"id": 1}]}', "application/json")))
    assert "odd.json was not loaded" in texts(app) and "/tasks/0/id" in texts(app)
    run(app.file_uploader(key=key(app, "upload")).set_value(("hello.json", HELLO.read_bytes(), "application/json")))
    assert doc_of(app) == hello() and "loaded hello.json" in texts(app)
    assert "unsaved changes" in texts(app)
    assert list_workflows(store.db) == []  # nothing stored until Save


def test_export_downloads_canonical_json(app: AppTest, monkeypatch: pytest.MonkeyPatch):
    from streamlit.delta_generator import DeltaGenerator

    captured: dict[str, Any] = {}
    real = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        captured[kwargs.get("key")] = (data, kwargs.get("file_name"))
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    run(app.file_uploader(key=key(app, "upload")).set_value(("hello.json", HELLO.read_bytes(), "application/json")))
    data, file_name = captured["designer_export"]
    assert data == canonical_json(hello()) and file_name == "hello.json"
    assert app.get("download_button")[0].label == "Export JSON"


def test_auto_layout_arranges_left_to_right(app: AppTest):
    doc = chain(3)
    for task in doc["tasks"]:
        task["position"] = {"x": 0, "y": 0}
    run(app.file_uploader(key=key(app, "upload")).set_value(("c.json", json.dumps(doc).encode(), "application/json")))
    run(app.button(key="designer_layout").click())
    x = [t["position"]["x"] for t in doc_of(app)["tasks"]]
    assert x[0] < x[1] < x[2]
    drawn = {n["id"]: n["position"]["x"] for n in flow_args(app)["nodes"]}
    assert drawn["t0"] < drawn["t1"] < drawn["t2"]


def test_round_trip_of_a_stored_example_creates_no_version(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    stored = canonical_json(store.export("hello"))
    app.query_params["workflow"] = "hello"
    run(app)
    assert doc_of(app)["name"] == "hello" and "unsaved changes" not in texts(app)
    send(app)  # the browser's echo of what it drew
    send(app, selected="many")
    assert canonical_json(doc_of(app)) == stored
    run(app.button(key="designer_save").click())
    assert "no changes" in texts(app)
    assert [v.version for v in list_versions(store.db, "hello")] == [1]


def test_open_from_another_page_and_run_now(app: AppTest, store: Workspace):
    store.import_file(HELLO)
    open_stored(app, "hello")
    assert OPEN not in app.session_state and doc_of(app)["name"] == "hello"
    run(app.button(key="designer_run").click())
    assert "run 1 queued" in texts(app)
    assert store.run(1).status == "queued" and store.run(1).trigger == "manual"


def test_unsaved_edits_survive_a_page_switch(app: AppTest):
    run(app.button(key=palette.palette_key("noop")).click())
    run(app.switch_page("views/runs.py"))
    run(app.switch_page("views/designer.py"))
    assert [t["id"] for t in doc_of(app)["tasks"]] == ["noop_1"] and "unsaved changes" in texts(app)


def test_triggers_panel(app: AppTest, store: Workspace):
    run(app.button(key=palette.palette_key("noop")).click())
    run(app.selectbox(key=key(app, "trg:new_type")).select("cron"))
    run(app.button(key=key(app, "trg:add")).click())
    assert doc_of(app)["triggers"] == [{"id": "cron_1", "type": "cron", "cron": "0 * * * *"}]
    run(app.text_input(key=key(app, "trg:0:cron_1:f:cron")).input("0 8 * * 1-5"))
    run(app.text_input(key=key(app, "trg:0:cron_1:f:timezone")).input("Europe/Berlin"))
    assert "at 08:00 on Monday to Friday" in texts(app)
    assert len(app.table) == 1  # the next five firings
    run(app.selectbox(key=key(app, "trg:new_type")).select("webhook"))
    run(app.button(key=key(app, "trg:add")).click())
    assert "http://127.0.0.1:8765/hooks/new-workflow/webhook_1" in [c.value for c in app.code]
    assert "generated when the workflow is saved" in texts(app)
    run(app.button(key="designer_save").click())
    codes = [c.value for c in app.code]
    assert len(codes) == 2 and len(codes[1]) > 20  # the token
    run(app.button(key=key(app, "trg:0:cron_1:remove")).click())
    assert [t["id"] for t in doc_of(app)["triggers"]] == ["webhook_1"]


def test_workflow_fields_and_settings(app: AppTest):
    run(app.button(key=palette.palette_key("noop")).click())
    run(app.text_input(key=key(app, "wf:name")).input("renamed"))
    run(app.text_area(key=key(app, "wf:params")).input('{"who": {"type": "string", "default": "you"}}'))
    run(app.number_input(key=key(app, "wf:settings.max_parallel_tasks")).set_value(2))
    run(app.selectbox(key=key(app, "wf:settings.overlap")).select("queue"))
    doc = doc_of(app)
    assert doc["name"] == "renamed" and doc["params"] == {"who": {"type": "string", "default": "you"}}
    assert doc["settings"] == {"max_parallel_tasks": 2, "overlap": "queue"}
    assert validate_document(doc, REGISTRY) == []


def test_every_task_type_and_trigger_type_has_a_working_form(app: AppTest):
    for type_name in (n for n in REGISTRY.names() if not REGISTRY[n].placeholder):
        run(app.button(key=palette.palette_key(type_name)).click())
        assert app.session_state[SELECTED] == f"{type_name}_1"  # its inspector rendered without an error
    for kind in triggers_panel.TRIGGER_ICONS:
        run(app.selectbox(key=key(app, "trg:new_type")).select(kind))
        run(app.button(key=key(app, "trg:add")).click())
    assert [t["type"] for t in doc_of(app)["triggers"]] == list(triggers_panel.TRIGGER_ICONS)
    index = REGISTRY.names().index("foreach")
    send(app, selected="foreach_1")
    inner = app.selectbox(key=key(app, f"t{index}:foreach_1:p:task.type"))
    assert "shell" in inner.options
    run(inner.select("shell"))
    assert doc_of(app)["tasks"][index]["params"]["task"] == {"type": "shell"}


def test_a_broken_document_can_still_be_shown_and_fixed(app: AppTest):
    doc = chain(2, name="broken")
    doc["tasks"].append({"id": "t0", "type": "mystery", "params": {"a": 1}})  # duplicate id, unknown type
    doc["edges"].append({"from": "t1", "to": "t1"})
    run(app.file_uploader(key=key(app, "upload")).set_value(("b.json", json.dumps(doc).encode(), "application/json")))
    assert [n["id"] for n in flow_args(app)["nodes"]] == ["t0", "t1", "t0~2"]
    text = texts(app)
    assert "/tasks/2/id" in text and "/tasks/2/type" in text and "/edges/1" in text
    send(app, selected="t1->t1")
    run(app.button(key=key(app, "e:t1->t1:delete")).click())
    assert doc_of(app)["edges"] == [{"from": "t0", "to": "t1"}]
