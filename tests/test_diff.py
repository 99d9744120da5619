"""taskloom.core.diff: structured differences between two workflow documents."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from taskloom.core.diff import (
    ABSENT,
    EdgeChange,
    EdgeRef,
    FieldChange,
    Item,
    ItemChange,
    diff_documents,
    diff_values,
    format_value,
    text_diff,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def base() -> dict:
    return {
        "format": "taskloom/v1",
        "name": "flow",
        "title": "A flow",
        "params": {"n": {"type": "integer", "default": 3}},
        "triggers": [{"id": "hourly", "type": "cron", "cron": "0 * * * *"}],
        "tasks": [
            {"id": "a", "type": "shell", "params": {"command": "echo a", "env": {"X": "1"}}, "position": {"x": 0, "y": 0}},
            {"id": "b", "type": "python", "params": {"code": "def main():\n    return 1\n", "args": {"k": 1}},
             "position": {"x": 200, "y": 0}},
            {"id": "c", "type": "noop", "position": {"x": 400, "y": 0}},
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c", "on": "failure"}],
        "settings": {"max_parallel_tasks": 2},
    }


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_identical_documents_give_an_empty_diff(name):
    doc = json.loads((EXAMPLES / f"{name}.json").read_text())
    diff = diff_documents(doc, copy.deepcopy(doc))
    assert diff.is_empty and not diff.layout_only
    assert diff.summary() == "no changes"


def test_key_order_is_not_a_change():
    old = base()
    new = base()
    new["tasks"][0] = dict(reversed(list(new["tasks"][0].items())))
    assert diff_documents(old, new).is_empty


def test_added_and_removed_tasks_carry_their_json():
    old, new = base(), base()
    del new["tasks"][2]
    new["edges"].pop()
    new["tasks"].append({"id": "d", "type": "noop"})
    diff = diff_documents(old, new)
    assert diff.tasks_added == (Item("d", {"id": "d", "type": "noop"}),)
    assert diff.tasks_removed == (Item("c", old["tasks"][2]),)
    assert diff.tasks_changed == ()
    assert diff.edges_removed == (EdgeRef("b", "c", "failure"),)
    assert diff.summary() == "1 task added, 1 task removed, 1 edge removed"


def test_changed_task_lists_top_level_fields_and_nested_params():
    old, new = base(), base()
    a = new["tasks"][0]
    a["retries"] = 2  # added field
    a["title"] = "Say a"
    a["params"]["command"] = "echo A"  # changed param
    a["params"]["env"]["X"] = "2"  # nested param
    a["params"]["env"]["Y"] = "3"  # nested param added
    del new["tasks"][1]["params"]["args"]  # param removed
    new["tasks"][2]["type"] = "delay"
    new["tasks"][2]["params"] = {"seconds": 1}
    diff = diff_documents(old, new)
    assert diff.tasks_changed == (
        ItemChange("a", (
            FieldChange("params.command", "echo a", "echo A"),
            FieldChange("params.env.X", "1", "2"),
            FieldChange("params.env.Y", ABSENT, "3"),
            FieldChange("retries", ABSENT, 2),
            FieldChange("title", ABSENT, "Say a"),
        )),
        ItemChange("b", (FieldChange("params.args", {"k": 1}, ABSENT),)),
        ItemChange("c", (FieldChange("type", "noop", "delay"), FieldChange("params", ABSENT, {"seconds": 1}))),
    )
    kinds = [c.kind for c in diff.tasks_changed[0].changes]
    assert kinds == ["changed", "changed", "added", "added", "added"]
    assert diff.tasks_changed[1].changes[0].kind == "removed"
    assert not diff.tasks_added and not diff.tasks_removed and not diff.tasks_moved


def test_json_types_matter_and_odd_keys_are_quoted():
    assert diff_values({"a": 1}, {"a": True}) == [FieldChange("a", 1, True)]
    assert diff_values({"a": 10}, {"a": 10.0}) == [FieldChange("a", 10, 10.0)]
    assert diff_values({"a": [1, 2]}, {"a": [2, 1]}) == [FieldChange("a", [1, 2], [2, 1])]  # lists are whole values
    assert diff_values({"headers": {"X.Y": "1"}}, {"headers": {"X.Y": "2"}}) == [
        FieldChange('headers["X.Y"]', "1", "2")]
    assert diff_values({"a": None}, {}) == [FieldChange("a", None, ABSENT)]


def test_a_renamed_task_is_removed_plus_added():
    old, new = base(), base()
    new["tasks"][2]["id"] = "end"
    new["edges"][1]["to"] = "end"
    diff = diff_documents(old, new)
    assert [i.key for i in diff.tasks_removed] == ["c"] and [i.key for i in diff.tasks_added] == ["end"]
    assert diff.edges_removed == (EdgeRef("b", "c", "failure"),)
    assert diff.edges_added == (EdgeRef("b", "end", "failure"),)
    assert diff.tasks_changed == ()


def test_edges_added_removed_and_on_changed():
    old, new = base(), base()
    new["edges"] = [{"from": "a", "to": "b", "on": "always"}, {"from": "a", "to": "c"}]
    diff = diff_documents(old, new)
    assert diff.edges_changed == (EdgeChange("a", "b", "success", "always"),)
    assert diff.edges_added == (EdgeRef("a", "c", "success"),)
    assert diff.edges_removed == (EdgeRef("b", "c", "failure"),)
    assert str(diff.edges_added[0]) == "a → c (on success)"


def test_an_explicit_success_edge_is_the_same_as_a_default_one():
    old, new = base(), base()
    new["edges"][0]["on"] = "success"
    assert diff_documents(old, new).is_empty


def test_triggers_added_removed_changed():
    old, new = base(), base()
    new["triggers"] = [
        {"id": "hourly", "type": "cron", "cron": "30 * * * *", "timezone": "Europe/Berlin"},
        {"id": "hook", "type": "webhook"},
    ]
    diff = diff_documents(old, new)
    assert diff.triggers_added == (Item("hook", {"id": "hook", "type": "webhook"}),)
    assert diff.triggers_changed == (ItemChange("hourly", (
        FieldChange("cron", "0 * * * *", "30 * * * *"), FieldChange("timezone", ABSENT, "Europe/Berlin"))),)
    new["triggers"] = []
    assert [t.key for t in diff_documents(old, new).triggers_removed] == ["hourly"]


def test_params_settings_and_top_level_fields():
    old, new = base(), base()
    new["params"]["n"]["default"] = 5
    new["params"]["who"] = {"type": "string", "default": "x"}
    del old["params"]["n"]["default"]
    new["settings"] = {"max_parallel_tasks": 8, "overlap": "queue"}
    new["title"] = "Another title"
    new["description"] = "Now described"
    diff = diff_documents(old, new)
    assert diff.params_added == (Item("who", {"type": "string", "default": "x"}),)
    assert diff.params_changed == (ItemChange("n", (FieldChange("default", ABSENT, 5),)),)
    assert diff.settings == (FieldChange("max_parallel_tasks", 2, 8), FieldChange("overlap", ABSENT, "queue"))
    assert diff.document == (FieldChange("title", "A flow", "Another title"),
                             FieldChange("description", ABSENT, "Now described"))
    new["params"] = {}
    assert [p.key for p in diff_documents(old, new).params_removed] == ["n"]


def test_moves_are_counted_not_listed_as_field_changes():
    old, new = base(), base()
    for t in new["tasks"]:
        t["position"] = {"x": t["position"]["x"] + 10, "y": 50}
    diff = diff_documents(old, new)
    assert diff.tasks_moved == ("a", "b", "c") and diff.tasks_changed == ()
    assert not diff.is_empty and diff.layout_only
    assert diff.summary() == "3 tasks moved"
    new["tasks"][0]["retries"] = 1
    assert not diff_documents(old, new).layout_only


def test_task_order_is_one_flag():
    old, new = base(), base()
    new["tasks"].reverse()
    diff = diff_documents(old, new)
    assert diff.task_order_changed and diff.layout_only and diff.tasks_changed == ()
    assert diff.summary() == "task order changed"


def test_presenting_values_and_long_texts():
    assert format_value(ABSENT) == "(not set)"
    assert format_value({"a": "é"}) == '{"a": "é"}'
    assert format_value("x" * 200, width=10) == '"xxxxxxxx…'
    old, new = base(), base()
    new["tasks"][1]["params"]["code"] = "def main():\n    return 2\n"
    change = diff_documents(old, new).tasks_changed[0].changes[0]
    assert change.path == "params.code"
    lines = text_diff(change)
    assert "-    return 1" in lines and "+    return 2" in lines
    assert text_diff(FieldChange("params.command", "echo a", "echo b")) is None  # short: old → new is enough
    assert text_diff(FieldChange("retries", 1, 2)) is None


def test_documents_that_are_not_valid_do_not_crash_it():
    diff = diff_documents({"tasks": "nope", "edges": [1, {"from": 2}]}, {"tasks": [{"id": "a"}, {"no": "id"}]})
    assert [i.key for i in diff.tasks_added] == ["a"]
