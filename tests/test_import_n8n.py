"""Importing n8n exports: nodes, connections, positions, triggers, retry settings, placeholders, bad input.

The exports are written for these tests from the public description of
n8n's workflow JSON (nodes with parameters per type version, connections
keyed by source node name and output index).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskloom.core.importers import ConversionError, convert
from taskloom.core.validation import validate_document

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "import"


def load(name: str) -> str:
    return (DATA / name).read_text()


def tasks(doc: dict) -> dict[str, dict]:
    return {t["id"]: t for t in doc["tasks"]}


def edges(doc: dict) -> set[tuple[str, str, str]]:
    return {(e["from"], e["to"], e.get("on", "success")) for e in doc.get("edges", [])}


def node(name: str, kind: str, parameters: dict | None = None, x: int = 0, version: float = 1, **extra: Any) -> dict:
    return {"id": name, "name": name, "type": f"n8n-nodes-base.{kind}", "typeVersion": version, "position": [x, 0],
            "parameters": parameters or {}, **extra}


def chain(*names: str) -> dict:
    return {a: {"main": [[{"node": b, "type": "main", "index": 0}]]} for a, b in zip(names, names[1:])}


def workflow(nodes: list[dict], connections: dict | None = None, **extra: Any) -> dict:
    return {"name": "flow", "nodes": nodes, "connections": connections or {}, **extra}


def one(data: Any, **kw: Any):
    conversion = convert(json.dumps(data), "n8n", **kw)
    (doc,) = conversion.documents
    return doc, conversion.report, conversion


def test_schedule_http_if_email_set_command_wait_and_a_placeholder():
    conversion = convert(load("scores.n8n.json"), filename="scores.n8n.json")
    assert conversion.format == "n8n"
    (doc,) = conversion.documents
    assert (doc["name"], doc["title"]) == ("hourly-scores", "Hourly scores")
    assert doc["triggers"] == [{"id": "Every_hour", "type": "cron", "cron": "5 * * * *", "timezone": "Europe/Berlin"}]
    assert doc["settings"] == {"timeout": 600}
    t = tasks(doc)
    assert t["Get_scores"]["params"] == {"url": "https://example.org/scores", "headers": {"Accept": "application/json"},
                                         "query": {"day": "today"}, "timeout": 10}
    assert (t["Get_scores"]["retries"], t["Get_scores"]["retry_delay"], t["Get_scores"]["retry_backoff"]) == (3, 2, 1)
    assert t["Too_high"]["params"] == {"expression": "tasks.Get_scores.output.json.max > 0.9"}
    assert t["Mail_the_team"]["params"] == {
        "channel": "email", "to": ["team@example.org", "lead@example.org"], "subject": "Score alert",
        "message": "Max score {{ tasks.Get_scores.output.json.max }} is above 0.9"}
    assert t["Log_it"]["params"] == {"value": {"status": "fine", "score": {"max": "{{ tasks.Get_scores.output.json.max }}"}}}
    assert t["Archive"]["params"] == {"command": "echo {{ tasks.Log_it.output.status }} >> /tmp/scores.log"}
    assert t["Pause"]["params"] == {"seconds": 120}
    assert t["Post_to_Slack"]["type"] == "placeholder"
    assert t["Post_to_Slack"]["params"]["original"]["parameters"]["channelId"]["value"] == "C0123"
    # positions are n8n's own; the sticky note and the trigger are not tasks
    assert t["Get_scores"]["position"] == {"x": 220, "y": 300} and t["Pause"]["position"] == {"x": 1100, "y": 400}
    assert "Note" not in t and "Every_hour" not in t
    assert edges(doc) == {("Get_scores", "Too_high", "success"), ("Too_high", "Mail_the_team", "true"),
                          ("Too_high", "Log_it", "false"), ("Mail_the_team", "Post_to_Slack", "success"),
                          ("Log_it", "Archive", "success"), ("Archive", "Pause", "success")}
    assert [p.path for p in validate_document(doc)] == ["/tasks/4/type"]
    assert [(i.path, i.task) for i in conversion.placeholders] == [("/nodes/5", "Post_to_Slack")]
    assert "notify task (channel 'webhook')" in conversion.placeholders[0].hint


def test_webhook_manual_code_error_outputs_disabled_nodes_and_joins():
    conversion = convert(load("orders.n8n.json"), filename="orders.n8n.json")
    (doc,) = conversion.documents
    assert doc["triggers"] == [{"id": "Webhook", "type": "webhook", "respond": "run"}, {"id": "Run_by_hand", "type": "manual"}]
    t = tasks(doc)
    assert t["Prepare"]["params"] == {"value": {"customer": "{{ trigger.payload.customer }}",
                                                "total": "{{ trigger.payload.total }}"}}
    assert t["Big_order"]["params"]["expression"] == (
        "(tasks.Prepare.output.total > 100) and (tasks.Prepare.output.customer != 'test')")
    assert t["Notify_CRM"]["params"]["timeout"] == 5 and t["Notify_CRM"]["params"]["method"] == "POST"
    assert t["Score"]["type"] == "python" and t["Score"]["params"]["args"] == {"items": "{{ tasks.Prepare.output }}"}
    assert t["Later"]["params"] == {"until": "2030-01-01T09:00:00Z"}
    assert t["Old_step"]["type"] == "noop" and t["Legacy_JS"]["type"] == "placeholder"
    assert t["Done"]["join"] == "any" and t["Done"]["description"] == "Both branches end here"
    assert edges(doc) >= {("Notify_CRM", "Later", "success"), ("Notify_CRM", "Log_failure", "failure"),
                          ("Log_failure", "Old_step", "always"), ("Big_order", "Score", "false")}
    kinds = {(i.path, i.kind) for i in conversion.report}
    assert ("/settings/errorWorkflow", "flagged") in kinds and ("/pinData", "flagged") in kinds
    assert ("/nodes/9", "flagged") in kinds  # the disabled node
    assert any("JSON.stringify" in i.message for i in conversion.report)  # kept verbatim
    assert [p.path for p in validate_document(doc)] == ["/tasks/4/type"]


def test_python_code_node_runs_with_n8n_item_helpers(run_doc):
    data = workflow(
        [node("Start", "manualTrigger"),
         node("Rows", "set", {"mode": "raw", "jsonOutput": '{"total": 21}'}, version=3.4),
         node("Double", "code", {"language": "python", "pythonCode":
                                 "for item in _input.all():\n    item.json.double = item.json.total * 2\nreturn _input.all()"},
              version=2),
         node("Each", "code", {"language": "python", "mode": "runOnceForEachItem",
                               "pythonCode": "return {'json': {'seen': _json.double}}"}, version=2)],
        chain("Start", "Rows", "Double", "Each"))
    doc, _, _ = one(data)
    assert validate_document(doc) == []
    result = run_doc(doc)
    assert result.status == "succeeded", {k: v.error for k, v in result.tasks.items()}
    assert result.tasks["Double"].output == [{"total": 21, "double": 42}]
    assert result.tasks["Each"].output == [{"seen": 42}]


def test_if_branches_run(run_doc):
    data = workflow(
        [node("Start", "manualTrigger"), node("Value", "set", {"assignments": {"assignments": [
            {"name": "n", "value": 5, "type": "number"}]}}, version=3.4),
         node("Small?", "if", {"conditions": {"combinator": "and", "conditions": [
             {"leftValue": "={{ $json.n }}", "rightValue": 10, "operator": {"type": "number", "operation": "lt"}}]}},
              version=2),
         node("Yes", "noOp"), node("No", "noOp")],
        {**chain("Start", "Value", "Small?"),
         "Small?": {"main": [[{"node": "Yes", "type": "main", "index": 0}], [{"node": "No", "type": "main", "index": 0}]]}})
    doc, _, _ = one(data)
    result = run_doc(doc)
    assert (result.tasks["Yes"].status, result.tasks["No"].status) == ("succeeded", "skipped")


@pytest.mark.parametrize(
    ("rule", "trigger"),
    [
        ({"field": "seconds", "secondsInterval": 30}, {"type": "interval", "every": 30, "unit": "seconds"}),
        ({"field": "minutes", "minutesInterval": 15}, {"type": "interval", "every": 15, "unit": "minutes"}),
        ({"field": "hours", "hoursInterval": 6, "triggerAtMinute": 10}, {"type": "cron", "cron": "10 */6 * * *"}),
        ({"field": "days", "triggerAtHour": 7}, {"type": "cron", "cron": "0 7 * * *"}),
        ({"field": "days", "daysInterval": 2, "triggerAtHour": 7, "triggerAtMinute": 5},
         {"type": "interval", "every": 2, "unit": "days", "at": "07:05"}),
        ({"field": "weeks", "triggerAtDay": [1, 5], "triggerAtHour": 9}, {"type": "cron", "cron": "0 9 * * 1,5"}),
        ({"field": "weeks", "weeksInterval": 2, "triggerAtDay": [3], "triggerAtHour": 9},
         {"type": "interval", "every": 2, "unit": "weeks", "weekday": "wednesday", "at": "09:00"}),
        ({"field": "months", "monthsInterval": 3, "triggerAtDayOfMonth": 15, "triggerAtHour": 8},
         {"type": "cron", "cron": "0 8 15 */3 *"}),
        ({"field": "cronExpression", "expression": "0 30 9 * * 1-5"}, {"type": "cron", "cron": "30 9 * * 1-5"}),
        ({}, {"type": "cron", "cron": "0 0 * * *"}),
    ],
)
def test_schedule_trigger_rules(rule, trigger):
    doc, _, _ = one(workflow([node("Timer", "scheduleTrigger", {"rule": {"interval": [rule]}}, version=1.2),
                              node("Work", "noOp")], chain("Timer", "Work")))
    assert [{k: v for k, v in t.items() if k != "id"} for t in doc["triggers"]] == [trigger]
    assert validate_document(doc) == []
    assert "edges" not in doc  # the trigger starts the run: no edge


def test_older_cron_and_interval_trigger_nodes_and_the_time_zone():
    cron = node("Cron", "cron", {"triggerTimes": {"item": [{"mode": "everyWeek", "hour": 6, "minute": 30, "weekday": 2},
                                                           {"mode": "custom", "cronExpression": "*/10 * * * *"}]}})
    every = node("Every", "interval", {"interval": 5, "unit": "minutes"})
    doc, report, _ = one(workflow([cron, every, node("Work", "noOp")], settings={"timezone": "America/Chicago"}))
    assert doc["triggers"] == [
        {"id": "Cron", "type": "cron", "cron": "30 6 * * 2", "timezone": "America/Chicago"},
        {"id": "Cron_2", "type": "cron", "cron": "*/10 * * * *", "timezone": "America/Chicago"},
        {"id": "Every", "type": "interval", "every": 5, "unit": "minutes"},
    ]
    doc, report, _ = one(workflow([cron, node("Work", "noOp")]))
    assert any("instance's" in i.message for i in report)  # no zone in the export: UTC, flagged


def test_http_request_layouts():
    old = node("Old", "httpRequest", {"requestMethod": "PUT", "url": "https://a.example.org", "jsonParameters": False,
                                      "headerParametersUi": {"parameter": [{"name": "X-A", "value": "1"}]},
                                      "queryParametersUi": {"parameter": [{"name": "q", "value": "x"}]},
                                      "bodyParametersUi": {"parameter": [{"name": "k", "value": "v"}]}})
    raw = node("Raw", "httpRequest", {"method": "POST", "url": "https://b.example.org", "sendBody": True,
                                      "contentType": "raw", "rawContentType": "text/csv", "body": "a,b"}, version=4.2)
    form = node("Form", "httpRequest", {"method": "POST", "url": "https://c.example.org", "sendBody": True,
                                        "contentType": "form-urlencoded",
                                        "bodyParameters": {"parameters": [{"name": "a b", "value": "1&2"}]}}, version=4.2)
    jsonb = node("Json", "httpRequest", {"method": "POST", "url": "https://d.example.org", "sendBody": True,
                                         "specifyBody": "json", "jsonBody": '{"n": 1}',
                                         "authentication": "genericCredentialType"}, version=4.2)
    doc, report, _ = one(workflow([old, raw, form, jsonb]))
    t = tasks(doc)
    assert t["Old"]["params"] == {"method": "PUT", "url": "https://a.example.org", "headers": {"X-A": "1"},
                                  "query": {"q": "x"}, "json": {"k": "v"}}
    assert t["Raw"]["params"] == {"method": "POST", "url": "https://b.example.org", "body": "a,b",
                                  "headers": {"Content-Type": "text/csv"}}
    assert t["Form"]["params"]["body"] == "a+b=1%262"
    assert t["Json"]["params"]["json"] == {"n": 1}
    assert any("credentials are not imported" in i.message for i in report)
    assert validate_document(doc) == []


@pytest.mark.parametrize(
    ("kind", "todo"),
    [("slack", "notify task (channel 'webhook')"), ("postgres", "sql task"), ("merge", "join"),
     ("gmailTrigger", "Taskloom trigger"), ("splitInBatches", "foreach"), ("someCommunityNode", "a task that does")],
)
def test_unknown_nodes_become_placeholders_that_keep_the_node(kind, todo):
    doc, report, conversion = one(workflow([node("Step", kind, {"resource": "message"}, x=40),
                                            node("After", "noOp")], chain("Step", "After")))
    step = tasks(doc)["Step"]
    assert step["type"] == "placeholder" and step["params"]["original"]["parameters"] == {"resource": "message"}
    assert todo in step["params"]["todo"] and step["position"] == {"x": 40, "y": 0}
    assert ("Step", "After", "success") in edges(doc)
    assert [i.path for i in conversion.placeholders] == ["/nodes/0"]
    issues = validate_document(doc)
    assert [i.path for i in issues] == ["/tasks/0/type"] and todo in issues[0].hint


def test_expressions_that_do_not_translate_are_kept_verbatim_and_valid(run_doc):
    doc, report, _ = one(workflow([node("Cmd", "executeCommand", {"command": "=echo {{ $now.toISO() }}"})]))
    assert tasks(doc)["Cmd"]["params"]["command"] == "{% raw %}=echo {{ $now.toISO() }}{% endraw %}"
    assert any(i.kind == "flagged" and "kept verbatim" in i.message for i in report)
    assert validate_document(doc) == []


def test_a_list_of_workflows_gives_one_document_each_with_unique_names():
    data = [workflow([node("A", "noOp")], name="Same"), workflow([node("B", "noOp")], name="Same")]
    conversion = convert(json.dumps(data), filename="all.json")
    assert conversion.format == "n8n"
    assert [d["name"] for d in conversion.documents] == ["same", "same-2"]
    assert {i.workflow for i in conversion.report} == {"same", "same-2"}


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"nodes": "x", "connections": {}}, "", "'nodes' list"),
        ({"nodes": [{"name": "A"}], "connections": {}}, "/nodes/0", "a 'name' and a 'type'"),
        ({"nodes": [node("A", "noOp"), node("A", "noOp")], "connections": {}}, "/nodes/1/name", "duplicate node name"),
        ({"nodes": [node("A", "noOp")], "connections": []}, "/connections", "keyed by node name"),
        ([], "", "empty list"),
    ],
)
def test_malformed_exports_say_where(data, path, words):
    with pytest.raises(ConversionError) as caught:
        convert(json.dumps(data), "n8n")
    (issue,) = caught.value.issues
    assert issue.path == path and words in issue.message and issue.hint


def test_connections_to_missing_nodes_are_flagged_not_fatal():
    doc, report, _ = one(workflow([node("A", "noOp")], {"A": {"main": [[{"node": "Ghost", "type": "main", "index": 0}]]},
                                                        "Nobody": {"main": [[]]}}))
    assert "edges" not in doc
    assert {i.path for i in report if i.kind == "flagged"} >= {"/connections/A/main/0", "/connections/Nobody"}


def test_a_taskloom_document_is_not_mistaken_for_n8n():
    with pytest.raises(ConversionError) as caught:
        convert(json.dumps({"format": "taskloom/v1", "name": "x", "tasks": []}), "n8n")
    assert "not an n8n export" in str(caught.value)


def test_set_fields_keep_their_declared_types():
    assignments = [{"name": "n", "value": "5", "type": "number"}, {"name": "f", "value": "2.5", "type": "number"},
                   {"name": "ok", "value": "true", "type": "boolean"}, {"name": "o", "value": '{"a": [1]}', "type": "object"},
                   {"name": "l", "value": "[1, 2]", "type": "array"}, {"name": "s", "value": "5", "type": "string"},
                   {"name": "bad", "value": "five", "type": "number"}]
    doc, _, _ = one(workflow([node("Set", "set", {"assignments": {"assignments": assignments}}, version=3.4)]))
    assert tasks(doc)["Set"]["params"]["value"] == {"n": 5, "f": 2.5, "ok": True, "o": {"a": [1]}, "l": [1, 2], "s": "5",
                                                    "bad": "five"}
