"""Importing Azure Logic Apps definitions: every mapped construct, placeholders, and input that cannot be read.

The definitions are written for these tests from the public description of
the workflow definition language; run tests execute converted workflows.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from taskloom.core.importers import ConversionError, convert
from taskloom.core.model import canonical_json
from taskloom.core.validation import validate_document

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "import"


def load(name: str) -> str:
    return (DATA / name).read_text()


def one(definition: Any, **kw: Any):
    """Convert a definition given as a dict; return (document, report, conversion)."""
    conversion = convert(json.dumps(definition), "logicapps", filename=kw.pop("filename", "flow.json"), **kw)
    (doc,) = conversion.documents
    return doc, conversion.report, conversion


def tasks(doc: dict) -> dict[str, dict]:
    return {t["id"]: t for t in doc["tasks"]}


def edges(doc: dict) -> set[tuple[str, str, str]]:
    return {(e["from"], e["to"], e.get("on", "success")) for e in doc.get("edges", [])}


def definition(actions: dict, triggers: dict | None = None, **extra: Any) -> dict:
    return {"$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/"
                       "workflowdefinition.json#", "contentVersion": "1.0.0.0",
            "triggers": triggers or {}, "actions": actions, **extra}


def compose(inputs: Any, run_after: dict | None = None) -> dict:
    return {"type": "Compose", "runAfter": run_after or {}, "inputs": inputs}


# -- the three shapes of a file ------------------------------------------------------


def test_standard_workflow_json_recurrence_http_if_and_catch():
    conversion = convert(load("scores.logicapp.json"), filename="tests/data/import/scores.logicapp.json")
    assert conversion.format == "logicapps"
    (doc,) = conversion.documents
    assert validate_document(doc) == []
    assert doc["name"] == "scores-logicapp"
    assert doc["params"] == {"threshold": {"type": "number", "default": 0.9, "description": "Alert above this."}}
    assert doc["triggers"] == [{"id": "Every_morning", "type": "cron", "cron": "30 6 * * *",
                                "timezone": "Europe/Berlin", "start": "2024-01-01T00:00:00+01:00"}]
    t = tasks(doc)
    assert t["Get_scores"]["type"] == "http"
    assert t["Get_scores"]["params"] == {"url": "https://example.org/scores", "headers": {"Accept": "application/json"},
                                         "query": {"day": "today"}, "timeout": 120}
    assert (t["Get_scores"]["retries"], t["Get_scores"]["retry_delay"], t["Get_scores"]["retry_backoff"],
            t["Get_scores"]["max_retry_delay"], t["Get_scores"]["timeout"]) == (3, 10, 2, 3600, 120)
    assert t["Too_high"] == {**t["Too_high"], "type": "condition",
                             "params": {"expression": "tasks.Get_scores.output.json.max > params.threshold"}}
    assert t["Alert"]["params"] == {"method": "POST", "url": "https://hooks.example.org/alert",
                                    "body": "{{ tasks.Get_scores.output.json.max }} exceeds {{ params.threshold }}"}
    assert t["Alert"]["retries"] == 4  # Logic Apps' default retry policy applies to Http actions
    assert t["On_error"] == {**t["On_error"], "type": "transform", "params": {"value": "fetch failed"}}
    assert edges(doc) == {("Get_scores", "Too_high", "success"), ("Too_high", "Alert", "true"),
                          ("Get_scores", "On_error", "failure")}
    assert all("position" in task for task in doc["tasks"])
    secure = [i for i in conversion.report if i.path == "/definition/parameters/apiToken"]
    assert secure[0].kind == "flagged" and "taskloom secrets set APITOKEN" in secure[0].hint


def test_secure_parameters_become_secrets_in_templates():
    doc, report, _ = one(definition(
        {"Call": {"type": "Http", "runAfter": {}, "inputs": {
            "method": "GET", "uri": "https://api.example.org", "headers": {"X-Key": "@parameters('key')"}}}},
        parameters={"key": {"type": "SecureString"}}))
    assert "params" not in doc
    assert tasks(doc)["Call"]["params"]["headers"] == {"X-Key": "{{ secrets.KEY }}"}
    assert validate_document(doc) == []


def test_arm_template_names_the_workflow_and_resolves_parameter_values():
    conversion = convert(load("arm.logicapp.json"), filename="arm.logicapp.json")
    (doc,) = conversion.documents
    assert (doc["name"], doc["title"]) == ("weekly-report", "Weekly-Report")
    assert doc["params"] == {"url": {"type": "string", "default": "https://reports.example.org/weekly"}}
    assert doc["triggers"] == [{"id": "Mondays", "type": "cron", "cron": "15 8 * * 1,4",
                                "timezone": "America/Los_Angeles"}]
    loop = tasks(doc)["For_each_team"]
    assert loop["type"] == "foreach"
    assert loop["params"] == {"items": "{{ tasks.List_teams.output }}", "concurrency": 2,
                              "task": {"type": "transform", "params": {"value": "team {{ item }}"}}}
    assert [i.path for i in conversion.report if i.kind == "placeholder"] == [
        "/resources/1/properties/definition/actions/Fetch_each",
        "/resources/1/properties/definition/actions/Send_an_email",
    ]
    # placeholders keep their place in the graph and their original JSON, and are the only problems
    assert ("For_each_team", "Send_an_email", "success") in edges(doc)
    email = tasks(doc)["Send_an_email"]
    assert email["params"]["original"]["inputs"]["path"] == "/v2/Mail"
    assert "notify task (channel 'email')" in email["params"]["todo"]
    problems = validate_document(doc)
    assert [p.path for p in problems] == ["/tasks/2/type", "/tasks/3/type"]
    assert "placeholder for Logic Apps action 'Send_an_email' (ApiConnection)" in problems[1].message
    assert "notify task (channel 'email')" in problems[1].hint


def test_bare_definition_request_trigger_response_and_try_catch_finally():
    conversion = convert(load("trycatch.logicapp.json"), filename="trycatch.logicapp.json")
    (doc,) = conversion.documents
    assert validate_document(doc) == []
    assert doc["triggers"] == [{"id": "When_called", "type": "webhook", "respond": "run"}]
    t = tasks(doc)
    assert t["Try"]["type"] == "noop" and t["Catch"]["type"] == "noop"
    assert t["Try_failed"] == {**t["Try_failed"], "type": "noop", "join": "any"}
    assert {e for e in edges(doc) if e[1] == "Try_failed"} == {
        ("Prepare", "Try_failed", "failure"), ("Maybe_fail", "Try_failed", "failure"), ("Stop", "Try_failed", "failure")}
    assert ("Try_failed", "Catch", "success") in edges(doc)
    assert ("Maybe_fail_done", "Carry_on", "success") in edges(doc)
    assert ("Report_failure", "Settle", "always") in edges(doc)
    assert t["Stop"]["type"] == "shell" and t["Stop"]["params"]["env"] == {
        "TERMINATE_MESSAGE": "Terminated (Failed): Broken rows failed"}
    assert t["Settle"]["params"] == {"seconds": 0}
    assert t["Answer"]["params"] == {"value": {"statusCode": 200, "body": {"done": True}}}


def test_try_catch_runs_like_logic_apps(run_doc):
    """The catch scope runs when an action in the try scope fails; the run counts as handled."""
    (doc,) = convert(load("trycatch.logicapp.json"), filename="trycatch.logicapp.json").documents
    failed = run_doc(doc)
    assert failed.status == "succeeded"
    states = {k: v.status for k, v in failed.tasks.items()}
    assert states["Stop"] == "failed" and states["Report_failure"] == "succeeded"
    assert failed.tasks["Report_failure"].output == "caught: 3 rows"
    assert states["Carry_on"] == "skipped" and states["Answer"] == "succeeded"
    fine = run_doc(doc, {"fail": "false"})
    states = {k: v.status for k, v in fine.tasks.items()}
    assert states["Stop"] == "skipped" and states["Catch"] == "skipped" and states["Report_failure"] == "skipped"
    assert fine.tasks["Carry_on"].output == [1, 2, 3] and states["Answer"] == "succeeded"


def test_foreach_with_one_action_runs_per_item(run_doc):
    (doc,) = convert(load("arm.logicapp.json"), filename="arm.logicapp.json").documents
    doc = copy.deepcopy(doc)
    doc["tasks"] = [t for t in doc["tasks"] if t["type"] != "placeholder"]
    doc["edges"] = [e for e in doc["edges"] if e["to"] in tasks(doc)]
    result = run_doc(doc)
    assert result.status == "succeeded"
    assert result.tasks["For_each_team"].output == ["team blue", "team green"]


# -- runAfter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "on", "flagged"),
    [
        (["Succeeded"], "success", False),
        (["Failed", "TimedOut"], "failure", False),
        (["Succeeded", "Failed", "Skipped", "TimedOut"], "always", False),
        (["Failed"], "failure", True),
        (["TimedOut"], "failure", True),
        (["Succeeded", "Failed"], "always", True),
        (["Skipped"], "always", True),
        (["succeeded"], "success", False),
    ],
)
def test_run_after_statuses_become_edge_conditions(statuses, on, flagged):
    doc, report, _ = one(definition({"A": compose(1), "B": compose(2, {"A": statuses})}))
    assert edges(doc) == {("A", "B", on)}
    flags = [i for i in report if i.kind == "flagged" and i.path == "/actions/B/runAfter/A"]
    assert bool(flags) == flagged
    if flagged:
        assert f"closest Taskloom edge is '{on}'" in flags[0].message


def test_several_run_after_keys_all_have_to_hold():
    doc, _, _ = one(definition({"A": compose(1), "B": compose(2), "C": compose(3, {"A": ["Succeeded"], "B": ["Failed"]})}))
    assert edges(doc) == {("A", "C", "success"), ("B", "C", "failure")}
    assert tasks(doc)["C"].get("join", "all") == "all"


def test_actions_are_ordered_by_run_after_whatever_their_order_in_the_file():
    doc, _, _ = one(definition({"Last": compose(3, {"Middle": ["Succeeded"]}), "Middle": compose(2, {"First": ["Succeeded"]}),
                                "First": compose(1)}))
    assert [t["id"] for t in doc["tasks"]] == ["First", "Middle", "Last"]
    assert validate_document(doc) == []


def test_run_after_of_an_if_waits_for_the_branch_taken(run_doc):
    actions = {
        "Check": {"type": "If", "runAfter": {}, "expression": "@equals(parameters('go'), true)",
                  "actions": {"Yes": compose("yes")}, "else": {"actions": {}}},
        "After": compose("after", {"Check": ["Succeeded"]}),
    }
    doc, _, _ = one(definition(actions, parameters={"go": {"type": "Bool", "defaultValue": False}}))
    assert tasks(doc)["Check_done"]["join"] == "any"
    assert edges(doc) >= {("Yes", "Check_done", "success"), ("Check", "Check_done", "false"),
                          ("Check_done", "After", "success")}
    for go, yes in (("false", "skipped"), ("true", "succeeded")):
        result = run_doc(doc, {"go": go})
        assert result.status == "succeeded"
        assert (result.tasks["Yes"].status, result.tasks["After"].status) == (yes, "succeeded")


def test_a_scope_with_several_last_actions_joins_them():
    actions = {"S": {"type": "Scope", "runAfter": {}, "actions": {"A": compose(1), "B": compose(2)}},
               "Next": compose(3, {"S": ["Succeeded"]}), "Finally": compose(4, {"S": ["Succeeded", "Failed", "Skipped",
                                                                                         "TimedOut"]})}
    doc, _, _ = one(definition(actions))
    assert validate_document(doc) == []
    assert edges(doc) >= {("S", "A", "success"), ("S", "B", "success"), ("A", "S_done", "success"),
                          ("B", "S_done", "success"), ("S_done", "Next", "success"), ("A", "S_ended", "always"),
                          ("B", "S_ended", "always"), ("S_ended", "Finally", "success")}


def test_run_after_outside_the_container_is_flagged_and_ignored():
    actions = {"A": compose(1), "S": {"type": "Scope", "runAfter": {"A": ["Succeeded"]},
                                      "actions": {"B": compose(2, {"A": ["Succeeded"]})}}}
    doc, report, _ = one(definition(actions))
    assert ("S", "B", "success") in edges(doc) and ("A", "B", "success") not in edges(doc)
    assert any(i.path == "/actions/S/actions/B/runAfter/A" and "not an action of the same container" in i.message
               for i in report)


# -- actions ------------------------------------------------------------------------------


def test_http_action_methods_bodies_auth_and_retry_policies():
    actions = {
        "Post": {"type": "Http", "runAfter": {}, "inputs": {
            "method": "post", "uri": "https://api.example.org/items", "body": {"name": "@triggerBody()?['name']"},
            "authentication": {"type": "Basic", "username": "me", "password": "@parameters('pw')"},
            "retryPolicy": {"type": "fixed", "count": 2, "interval": "PT30S"}}},
        "Raw": {"type": "Http", "runAfter": {"Post": ["Succeeded"]}, "inputs": {
            "method": "PUT", "uri": "https://api.example.org/raw", "body": "plain @{body('Post')?['id']}",
            "retryPolicy": {"type": "none"}}},
        "Typed": {"type": "Http", "runAfter": {"Raw": ["Succeeded"]}, "inputs": {
            "method": "PATCH", "uri": "https://api.example.org/typed", "body": "@body('Post')",
            "authentication": {"type": "ManagedServiceIdentity"}}},
    }
    doc, report, _ = one(definition(actions))
    t = tasks(doc)
    assert t["Post"]["params"] == {"method": "POST", "url": "https://api.example.org/items",
                                   "json": {"name": "{{ trigger.payload.name }}"},
                                   "auth": {"type": "basic", "username": "me", "secret": "POST_PASSWORD"}}
    assert (t["Post"]["retries"], t["Post"]["retry_delay"], t["Post"]["retry_backoff"]) == (2, 30, 1)
    assert t["Raw"]["params"]["body"] == "plain {{ tasks.Post.output.json.id }}" and "retries" not in t["Raw"]
    assert t["Typed"]["params"]["json"] == "{{ tasks.Post.output.json }}"
    assert validate_document(doc) == []
    assert any("taskloom secrets set POST_PASSWORD" in i.message for i in report)
    assert any("'ManagedServiceIdentity' is not converted" in i.message for i in report)


def test_wait_terminate_and_parse_json():
    actions = {
        "Nap": {"type": "Wait", "runAfter": {}, "inputs": {"interval": {"count": 5, "unit": "Minute"}}},
        "Until": {"type": "Wait", "runAfter": {"Nap": ["Succeeded"]},
                  "inputs": {"until": {"timestamp": "2030-01-01T08:00:00Z"}}},
        "Parse": {"type": "ParseJson", "runAfter": {"Until": ["Succeeded"]},
                  "inputs": {"content": "@triggerBody()", "schema": {"type": "object"}}},
        "Quit": {"type": "Terminate", "runAfter": {"Parse": ["Failed"]}, "inputs": {"runStatus": "Cancelled"}},
        "Done": {"type": "Terminate", "runAfter": {"Parse": ["Succeeded"]}, "inputs": {"runStatus": "Succeeded"}},
    }
    doc, report, _ = one(definition(actions))
    t = tasks(doc)
    assert t["Nap"]["params"] == {"seconds": 300} and t["Until"]["params"] == {"until": "2030-01-01T08:00:00Z"}
    assert t["Parse"]["params"] == {"value": "{{ trigger.payload }}"}
    assert t["Quit"]["type"] == "shell" and t["Done"]["type"] == "noop"
    messages = " ".join(i.message for i in report)
    assert "the run ends failed, not cancelled" in messages and "here it is a no-op" in messages
    assert validate_document(doc) == []


def test_variables_that_are_only_initialised_translate_and_changed_ones_are_kept_verbatim():
    actions = {
        "Init": {"type": "InitializeVariable", "runAfter": {},
                 "inputs": {"variables": [{"name": "limit", "type": "integer", "value": 5}]}},
        "Counter": {"type": "InitializeVariable", "runAfter": {"Init": ["Succeeded"]},
                    "inputs": {"variables": [{"name": "n", "type": "integer", "value": 0}]}},
        "Bump": {"type": "IncrementVariable", "runAfter": {"Counter": ["Succeeded"]}, "inputs": {"name": "n", "value": 1}},
        "Use": compose({"limit": "@variables('limit')", "n": "@variables('n')"}, {"Bump": ["Succeeded"]}),
    }
    doc, report, _ = one(definition(actions))
    t = tasks(doc)
    assert t["Use"]["params"]["value"] == {"limit": "{{ tasks.Init.output }}", "n": "@variables('n')"}
    assert t["Bump"]["type"] == "placeholder"
    verbatim = [i for i in report if i.kind == "flagged" and "kept verbatim" in i.message]
    assert verbatim and verbatim[0].path == "/actions/Use" and "variables('n')" in verbatim[0].message


@pytest.mark.parametrize(
    ("expression", "jinja"),
    [
        ("@body('Get')?['items']?[0]?['name']", "{{ tasks.Get.output.json['items'][0].name }}"),
        ("@outputs('Get')['statusCode']", "{{ tasks.Get.output.status }}"),
        ("@outputs('Get')?['headers']?['etag']", "{{ tasks.Get.output.headers.etag }}"),
        ("@triggerOutputs()?['body']?['id']", "{{ trigger.payload.id }}"),
        ("@concat('id-', string(add(1, 2)))", "{{ 'id-' ~ ((1 + 2) | string) }}"),
        ("@{toUpper('a')}-@{length(body('Get'))}", "{{ 'a' | upper }}-{{ tasks.Get.output.json | length }}"),
        ("@@literal", "@literal"),
        ("@coalesce(triggerBody()?['x'], 'none')", "{{ trigger.payload.x if trigger.payload.x is not none else 'none' }}"),
        ("@if(empty(triggerBody()), 'empty', 'full')", "{{ 'empty' if (not trigger.payload) else 'full' }}"),
    ],
)
def test_expressions_become_templates(expression, jinja):
    actions = {"Get": {"type": "Http", "runAfter": {}, "inputs": {"method": "GET", "uri": "https://x.example.org"}},
               "Use": compose(expression, {"Get": ["Succeeded"]})}
    doc, report, _ = one(definition(actions))
    assert tasks(doc)["Use"]["params"]["value"] == jinja.replace("['items']", ".items")
    assert validate_document(doc) == []
    assert not [i for i in report if "kept verbatim" in i.message]


@pytest.mark.parametrize("expression", ["@formatDateTime(utcNow(), 'yyyy')", "@json(triggerBody())",
                                        "@body('Missing')", "@item()", "@{actions('X')}", "@workflow().run.name"])
def test_untranslatable_expressions_are_kept_verbatim_and_flagged(expression):
    doc, report, _ = one(definition({"Use": compose(f"x {expression}" if expression.startswith("@{") else expression)}))
    value = tasks(doc)["Use"]["params"]["value"]
    assert expression in value
    flags = [i for i in report if i.kind == "flagged" and "kept verbatim" in i.message]
    assert flags and flags[0].path == "/actions/Use"
    assert validate_document(doc) == []  # a literal string: valid, and the report says to review it


def test_utcnow_becomes_the_logical_time_and_says_so():
    doc, report, _ = one(definition({"Now": compose("@utcNow()")}))
    assert tasks(doc)["Now"]["params"]["value"] == "{{ run.logical_time }}"
    assert any("run.logical_time" in i.message and i.kind == "flagged" for i in report)


def test_literal_text_with_template_syntax_stays_literal(run_doc):
    doc, _, _ = one(definition({"Text": compose("{{ not a template }} and {% nor this %}")}))
    assert validate_document(doc) == []
    assert run_doc(doc).tasks["Text"].output == "{{ not a template }} and {% nor this %}"


def test_structured_if_expressions():
    cond = {"or": [{"equals": ["@triggerBody()?['kind']", "big"]},
                   {"and": [{"greaterOrEquals": ["@triggerBody()?['size']", 10]}, {"not": {"equals": ["@triggerBody()?['x']", None]}}]},
                   {"contains": ["@triggerBody()?['tags']", "urgent"]}]}
    doc, _, _ = one(definition({"C": {"type": "If", "runAfter": {}, "expression": cond, "actions": {}, "else": {"actions": {}}}}))
    assert tasks(doc)["C"]["params"]["expression"] == (
        "(trigger.payload.kind == 'big') or ((trigger.payload.size >= 10) and (not (trigger.payload.x == none)))"
        " or ('urgent' in trigger.payload.tags)")
    assert validate_document(doc) == []


def test_an_if_whose_condition_does_not_translate_keeps_it_and_does_not_validate():
    doc, report, _ = one(definition({"C": {"type": "If", "runAfter": {}, "expression": "@contains(variables('v'), 'x')",
                                           "actions": {"Yes": compose(1)}}}))
    assert tasks(doc)["C"]["params"]["expression"] == "@contains(variables('v'), 'x')"
    flag = [i for i in report if i.path == "/actions/C/expression"][0]
    assert "does not validate until it is rewritten" in flag.message
    assert [i.path for i in validate_document(doc)] == ["/tasks/0/params/expression"]


@pytest.mark.parametrize("kind", ["ApiConnection", "ApiConnectionWebhook", "Function", "JavaScriptCode", "Workflow",
                                  "Switch", "Until", "Select", "Query", "SomethingNew"])
def test_unsupported_actions_become_placeholders(kind):
    action = {"type": kind, "runAfter": {}, "inputs": {"anything": "@{body('x')} {{ y }}"}}
    doc, report, conversion = one(definition({"Step": action, "After": compose(1, {"Step": ["Succeeded"]})}))
    step = tasks(doc)["Step"]
    assert step["type"] == "placeholder" and step["params"]["original"] == action
    assert step["params"]["source"] == "logicapps"
    assert ("Step", "After", "success") in edges(doc)
    assert [i.path for i in conversion.placeholders] == ["/actions/Step"]
    assert conversion.placeholders[0].hint.startswith("replace task 'Step' with")
    assert [i.path for i in validate_document(doc)] == ["/tasks/0/type"]


# -- triggers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recurrence", "expected"),
    [
        ({"frequency": "Minute", "interval": 15}, [{"type": "interval", "every": 15, "unit": "minutes"}]),
        ({"frequency": "Second", "interval": 30}, [{"type": "interval", "every": 30, "unit": "seconds"}]),
        ({"frequency": "Hour", "interval": 1, "schedule": {"minutes": [0, 30]}}, [{"type": "cron", "cron": "0,30 * * * *"}]),
        ({"frequency": "Day", "interval": 1, "schedule": {"hours": ["9", "17"], "minutes": [0]},
          "timeZone": "Eastern Standard Time"},
         [{"type": "cron", "cron": "0 9,17 * * *", "timezone": "America/New_York"}]),
        ({"frequency": "Day", "interval": 3, "startTime": "2024-05-01T05:45:00Z"},
         [{"type": "interval", "every": 3, "unit": "days", "at": "05:45", "start": "2024-05-01T05:45:00+00:00"}]),
        ({"frequency": "Week", "interval": 1, "schedule": {"weekDays": ["Saturday", "Sunday"], "hours": [10]},
          "timeZone": "Tokyo Standard Time"},
         [{"type": "cron", "cron": "0 10 * * 0,6", "timezone": "Asia/Tokyo"}]),
        ({"frequency": "Week", "interval": 2, "schedule": {"weekDays": ["Friday"], "hours": [16], "minutes": [30]},
          "startTime": "2024-01-05T00:00:00Z"},
         [{"type": "interval", "every": 2, "unit": "weeks", "weekday": "friday", "at": "16:30",
           "start": "2024-01-05T00:00:00+00:00"}]),
        ({"frequency": "Month", "interval": 1, "schedule": {"monthDays": [1, 15], "hours": [6]}},
         [{"type": "cron", "cron": "0 6 1,15 * *"}]),
    ],
)
def test_recurrence_triggers(recurrence, expected):
    doc, _, _ = one(definition({"A": compose(1)}, {"Timer": {"type": "Recurrence", "recurrence": recurrence}}))
    assert [{k: v for k, v in t.items() if k != "id"} for t in doc["triggers"]] == expected
    assert validate_document(doc) == []


def test_unknown_time_zone_falls_back_to_utc_and_is_flagged():
    doc, report, _ = one(definition({"A": compose(1)}, {"T": {"type": "Recurrence", "recurrence": {
        "frequency": "Day", "interval": 1, "timeZone": "Atlantis Standard Time", "schedule": {"hours": [1]}}}}))
    assert doc["triggers"] == [{"id": "T", "type": "cron", "cron": "0 1 * * *"}]
    assert any("Atlantis Standard Time" in i.message and i.kind == "flagged" for i in report)


def test_http_polling_trigger_calls_the_url_first_and_connector_triggers_are_placeholders():
    triggers = {
        "Poll": {"type": "Http", "inputs": {"method": "GET", "uri": "https://api.example.org/new"},
                 "recurrence": {"frequency": "Minute", "interval": 5}},
        "When_a_file_is_created": {"type": "ApiConnection", "inputs": {"host": {"connection": {"name": "x"}}},
                                   "recurrence": {"frequency": "Minute", "interval": 3}, "splitOn": "@triggerBody()"},
    }
    doc, report, conversion = one(definition({"Work": compose("@triggerBody()")}, triggers))
    assert [(t["id"], t["every"]) for t in doc["triggers"]] == [("Poll", 5), ("When_a_file_is_created", 3)]
    t = tasks(doc)
    assert t["Poll"]["type"] == "http" and t["Poll"]["params"]["url"] == "https://api.example.org/new"
    assert t["When_a_file_is_created"]["type"] == "placeholder"
    assert edges(doc) == {("Poll", "Work", "success"), ("When_a_file_is_created", "Work", "success")}
    assert [i.path for i in conversion.placeholders] == ["/triggers/When_a_file_is_created"]
    assert any(i.path == "/triggers/When_a_file_is_created/splitOn" for i in report)


def test_trigger_concurrency_and_sliding_window_become_settings():
    triggers = {"T": {"type": "SlidingWindow", "recurrence": {"frequency": "Hour", "interval": 1},
                      "runtimeConfiguration": {"concurrency": {"runs": 1}}}}
    doc, _, _ = one(definition({"A": compose(1)}, triggers))
    assert doc["settings"] == {"catchup": "all", "overlap": "queue"}


# -- input that cannot be converted ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ('{"definition": {"triggers": {}, "actions": []}}', "/definition/actions", "must be an object"),
        ('{"definition": {"actions": {"A": {"runAfter": {}}}}}', "/definition/actions/A", "with a 'type'"),
        ('{"definition": {"actions": {"A": "Compose"}}}', "/definition/actions/A", "with a 'type'"),
        ('{"definition": 7}', "/definition", "must be an object"),
        ('{"definition": {"actions": {}}}', "/definition", "neither triggers nor actions"),
        ('{"resources": [{"type": "Microsoft.Web/connections"}]}', "/resources", "Microsoft.Logic/workflows"),
        ('{"definition": {"triggers": {"T": 3}, "actions": {"A": {"type": "Compose"}}}}', "/definition/triggers/T",
         "must be an object"),
        ('{"definition": {"actions": {"A": {"type": "Compose", "runAfter": {"B": ["Succeeded"]}},'
         ' "B": {"type": "Compose", "runAfter": {"A": ["Succeeded"]}}}}}', "/definition/actions", "A -> B"),
    ],
)
def test_malformed_definitions_say_where(text, path, words):
    with pytest.raises(ConversionError) as caught:
        convert(text, "logicapps")
    (issue,) = caught.value.issues
    assert issue.path == path and words in issue.message and issue.hint


def test_broken_json_names_line_and_column():
    with pytest.raises(ConversionError) as caught:
        convert('{"definition": {\n  "actions": {,}\n}}', "logicapps")
    assert "line 2, column 15" in str(caught.value)


def test_conversion_is_deterministic():
    first = convert(load("trycatch.logicapp.json"), filename="trycatch.logicapp.json").documents[0]
    again = convert(load("trycatch.logicapp.json"), filename="trycatch.logicapp.json").documents[0]
    assert canonical_json(first) == canonical_json(again)


def test_every_report_item_points_into_the_file():
    text = load("arm.logicapp.json")
    data = json.loads(text)
    for item in convert(text, filename="arm.logicapp.json").report:
        node: Any = data
        for part in item.path.split("/")[1:]:
            node = node[int(part)] if isinstance(node, list) else node[part.replace("~1", "/").replace("~0", "~")]
        assert node is not None


def test_names_come_from_the_name_option_the_file_or_its_folder():
    text = load("trycatch.logicapp.json")
    assert convert(text, filename="dir/My Flow.json").documents[0]["name"] == "my-flow"
    assert convert(text, filename="apps/nightly-sync/workflow.json").documents[0]["name"] == "nightly-sync"
    assert convert(text, filename="x.json", name="Chosen Name").documents[0]["name"] == "chosen-name"


def test_windows_time_zone_names_map_to_iana():
    from taskloom.core.importers.windows_tz import WINDOWS_ZONES, iana_zone

    assert all(iana_zone(name) for name in WINDOWS_ZONES)
    assert iana_zone("w. europe standard time") == "Europe/Berlin"
    assert iana_zone("UTC-08") == "Etc/GMT+8" and iana_zone("UTC") == "UTC"
    assert iana_zone("Europe/Paris") == "Europe/Paris" and iana_zone("Mars Standard Time") is None


def test_monthly_last_day_fires():
    from datetime import datetime, timezone

    from taskloom.core.firing import next_firings
    from taskloom.core.model import Workflow

    doc, _, _ = one(definition({"A": compose(1)}, {"T": {"type": "Recurrence", "recurrence": {
        "frequency": "Month", "interval": 1, "schedule": {"monthDays": [-1], "hours": [22]}}}}))
    assert doc["triggers"][0]["cron"] == "0 22 L * *"
    assert validate_document(doc) == []
    (trigger,) = Workflow.from_document(doc).triggers
    firings = next_firings(trigger, datetime(2024, 2, 1, tzinfo=timezone.utc).timestamp(), 2)
    assert [f.wall[:10] for f in firings] == ["2024-02-29", "2024-03-31"]
