"""Validation of taskloom/v1 documents: one case per rule, plus the schema and its published copy.

Each rule is a row: an edit applied to a valid document, the JSON pointer the
issue must carry, and words its message and hint must contain.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from taskloom.core.fastschema import compile_predicate
from taskloom.core.model import canonical_json
from taskloom.core.registry import Registry, TaskType, default_registry
from taskloom.core.specs import BUILTIN_TYPES
from taskloom.core.schema import WORKFLOW_SCHEMA, schema_json, workflow_schema
from taskloom.core.templatecheck import _fast_references
from taskloom.core.templates import references
from taskloom.core.validation import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    DocumentError,
    Issue,
    load_workflow,
    parse_document,
    validate_document,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "assets" / "schema" / "workflow-v1.json"
REGENERATE = (
    'python -c "from taskloom.core.schema import schema_json; print(schema_json(), end=\'\')" '
    "> assets/schema/workflow-v1.json"
)


def base_doc() -> dict[str, Any]:
    """A small valid workflow: extract -> score -> check -(true)-> alert."""
    return {
        "format": "taskloom/v1",
        "name": "hourly-scores",
        "params": {"threshold": {"type": "number", "default": 0.9}},
        "triggers": [{"id": "hourly", "type": "cron", "cron": "0 * * * *", "timezone": "Europe/Berlin"}],
        "tasks": [
            {"id": "extract", "type": "shell", "params": {"command": "echo 1"}},
            {
                "id": "score",
                "type": "python",
                "params": {"code": "def main(rows): return rows", "args": {"rows": "{{ tasks.extract.output }}"}},
            },
            {"id": "check", "type": "condition", "params": {"expression": "tasks.score.output.max > params.threshold"}},
            {"id": "alert", "type": "shell", "params": {"command": "echo {{ tasks.score.output.max }}"}},
        ],
        "edges": [
            {"from": "extract", "to": "score"},
            {"from": "score", "to": "check"},
            {"from": "check", "to": "alert", "on": "true"},
        ],
    }


def rich_doc() -> dict[str, Any]:
    """Every optional feature of the format, valid."""
    doc = base_doc()
    doc.update(
        title="Hourly scores",
        description="Scores readings.",
        settings={"max_parallel_tasks": 2, "timeout": 3600},
    )
    doc["params"]["label"] = {"description": "free text"}
    doc["params"]["limits"] = {"type": "array", "default": [1, 2]}
    doc["params"]["retries"] = {"type": "integer", "default": 3}
    doc["triggers"] += [
        {"id": "nightly", "type": "interval", "every": 1, "unit": "days", "at": "02:30", "timezone": "UTC",
         "start": "2025-01-01T00:00:00", "end": "2026-01-01T00:00:00+01:00", "enabled": False},
        {"id": "weekly", "type": "interval", "every": 2, "unit": "weeks", "weekday": "monday", "at": "09:00"},
        {"id": "often", "type": "interval", "every": 90, "unit": "seconds"},
        {"id": "by_hand", "type": "manual"},
    ]
    doc["tasks"][0].update(
        title="Extract", description="Reads rows.", retries=3, retry_delay=5, retry_backoff=1.5,
        max_retry_delay=60, timeout=120.5, join="any", position={"x": 10, "y": -20.5},
    )
    doc["tasks"][3]["params"].update(
        cwd="/tmp", env={"RUN": "{{ run.id }}", "TOKEN": "{{ secrets.token }}", "WHY": "{{ trigger.payload }}"}
    )
    doc["tasks"].append({"id": "cleanup", "type": "noop"})
    doc["tasks"].append({
        "id": "report", "type": "shell",
        "params": {"command": "{% for k, v in tasks.extract.output.items() %}{{ k }}={{ v }} {{ loop.index }}{% endfor %}"},
    })
    doc["edges"] += [
        {"from": "alert", "to": "cleanup", "on": "always"},
        {"from": "score", "to": "cleanup", "on": "failure"},
        {"from": "check", "to": "cleanup", "on": "false"},
        {"from": "cleanup", "to": "report"},
    ]
    return doc


# -- editing documents by JSON pointer ----------------------------------------------


def _parent(doc: Any, path: str) -> tuple[Any, Any]:
    parts = path.split("/")[1:]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last: Any = parts[-1]
    return node, int(last) if isinstance(node, list) and last != "-" else last


def edit(doc: dict[str, Any], *ops: tuple[Any, ...]) -> dict[str, Any]:
    """Apply ("set", pointer, value), ("del", pointer) and ("add", pointer-to-list, value)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        if op[0] == "add":
            node, key = _parent(doc, op[1])
            node[key].append(copy.deepcopy(op[2]))
            continue
        node, key = _parent(doc, op[1])
        if op[0] == "set":
            node[key] = copy.deepcopy(op[2])
        else:
            del node[key]
    return doc


def S(pointer: str, value: Any) -> tuple[Any, ...]:
    return ("set", pointer, value)


def D(pointer: str) -> tuple[Any, ...]:
    return ("del", pointer)


def A(pointer: str, value: Any) -> tuple[Any, ...]:
    return ("add", pointer, value)


SHELL = lambda tid, command="echo": {"id": tid, "type": "shell", "params": {"command": command}}  # noqa: E731
NOOP = lambda tid: {"id": tid, "type": "noop"}  # noqa: E731
EDGE = lambda a, b, **on: {"from": a, "to": b, **on}  # noqa: E731


# -- one row per rule -------------------------------------------------------------------

# (id, edits, path, words in message, words in hint)
RULES: list[tuple[str, list[tuple[Any, ...]], str, list[str], list[str]]] = [
    # format and top level
    ("wrong-format", [S("/format", "taskloom/v2")], "/format", ["taskloom/v2", "expected 'taskloom/v1'"], ['"format": "taskloom/v1"']),
    ("missing-format", [D("/format")], "", ['missing "format"'], ['"format": "taskloom/v1"']),
    ("missing-name", [D("/name")], "", ["missing required key 'name'"], ["add \"name\""]),
    ("bad-name", [S("/name", "Hourly Scores")], "/name", ["'Hourly Scores'", "not a valid name"], ["hourly-scores"]),
    ("unknown-top-key-close", [S("/taks", [])], "/taks", ["unknown key 'taks'"], ["did you mean 'tasks'?", "known keys:", "edges"]),
    ("unknown-top-key-far", [S("/colour", 1)], "/colour", ["unknown key 'colour'"], ["known keys:", "format", "settings"]),
    ("tasks-missing", [D("/tasks"), D("/edges")], "", ["missing required key 'tasks'"], ["add \"tasks\""]),
    ("tasks-empty", [S("/tasks", []), D("/edges")], "/tasks", ["at least one task"], ['"id"']),
    ("tasks-not-a-list", [S("/tasks", {"a": 1}), D("/edges")], "/tasks", ["must be an array", "object"], []),
    ("title-not-string", [S("/title", 3)], "/title", ["'title' must be a string", "integer 3"], []),
    # params
    ("param-default-type", [S("/params/threshold/default", "high")], "/params/threshold/default",
     ["parameter 'threshold'", "must be a number", "'high'"], ["change the parameter's \"type\""]),
    ("param-default-untyped-is-string", [S("/params/label", {"default": 3})], "/params/label/default",
     ["must be a string"], []),
    ("param-default-integer", [S("/params/n", {"type": "integer", "default": 1.5})], "/params/n/default",
     ["must be an integer"], []),
    ("param-name", [S("/params/bad-name", {})], "/params/bad-name", ["parameter name 'bad-name' is not an identifier"], ["bad_name"]),
    ("param-type", [S("/params/threshold/type", "float")], "/params/threshold/type", ["'float'", "'number'"], []),
    ("param-unknown-key", [S("/params/threshold/min", 0)], "/params/threshold/min", ["unknown key 'min'"], ["known keys: type, default, description"]),
    # tasks
    ("task-unknown-key", [S("/tasks/0/retrys", 2)], "/tasks/0/retrys", ["unknown key 'retrys'"], ["did you mean 'retries'?"]),
    ("task-missing-type", [D("/tasks/0/type")], "/tasks/0", ["missing required key 'type'"], ["registered task type"]),
    ("task-id-pattern", [A("/tasks", NOOP("load-data"))], "/tasks/4/id", ["task id 'load-data' is not an identifier"], ["load_data"]),
    ("task-retries-range", [S("/tasks/0/retries", 101)], "/tasks/0/retries", ["'retries' must be <= 100", "101"], [">= 0 and <= 100"]),
    ("task-retries-integer", [S("/tasks/0/retries", 1.5)], "/tasks/0/retries", ["must be an integer", "1.5"], []),
    ("task-retry-delay", [S("/tasks/0/retry_delay", -1)], "/tasks/0/retry_delay", ["must be >= 0"], []),
    ("task-backoff", [S("/tasks/0/retry_backoff", 0.5)], "/tasks/0/retry_backoff", ["must be >= 1", "0.5"], []),
    ("task-max-retry-delay", [S("/tasks/0/max_retry_delay", "1m")], "/tasks/0/max_retry_delay", ["must be a number", "'1m'"], []),
    ("task-timeout", [S("/tasks/0/timeout", 0)], "/tasks/0/timeout", ["'timeout' must be > 0", "got 0"], []),
    ("task-join", [S("/tasks/0/join", "every")], "/tasks/0/join", ["'every'", "'all', 'any'"], []),
    ("task-position", [S("/tasks/0/position", {"x": 1})], "/tasks/0/position", ["missing required key 'y'"], []),
    ("task-position-type", [S("/tasks/0/position", {"x": 1, "y": "2"})], "/tasks/0/position/y", ["must be a number"], []),
    ("task-params-not-object", [S("/tasks/0/params", "echo")], "/tasks/0/params", ["must be an object"], []),
    ("task-not-object", [A("/tasks", "cleanup")], "/tasks/4", ["tasks[4] must be an object", "string"], []),
    ("duplicate-task-id", [A("/tasks", SHELL("extract"))], "/tasks/4/id", ["duplicate task id 'extract'", "/tasks/0"], ["unique", "extract_2"]),
    ("unknown-type-close", [S("/tasks/0/type", "shel")], "/tasks/0/type", ["unknown task type 'shel'"], ["did you mean 'shell'?"]),
    ("unknown-type-far", [S("/tasks/0/type", "zzzz")], "/tasks/0/type", ["unknown task type 'zzzz'"], ["known types:", "'condition'", "'noop'", "'python'", "'shell'"]),
    # task params against the type's schema
    ("param-missing-command", [S("/tasks/0/params", {})], "/tasks/0/params", ["missing required parameter 'command'"], ["add \"command\""]),
    ("params-default-empty", [D("/tasks/0/params")], "/tasks/0/params", ["missing required parameter 'command'"], []),
    ("param-unknown", [S("/tasks/0/params/comand", "x")], "/tasks/0/params/comand", ["unknown parameter 'comand'", "shell"], ["did you mean 'command'?"]),
    ("param-wrong-type", [S("/tasks/0/params/command", ["echo", "1"])], "/tasks/0/params/command", ["parameter 'command' must be a string", "array"], []),
    ("param-empty-string", [S("/tasks/0/params/command", "")], "/tasks/0/params/command", ["must not be empty"], []),
    ("param-nested", [S("/tasks/0/params/env", {"A": 1})], "/tasks/0/params/env/A", ["must be a string", "integer 1"], []),
    ("python-neither", [D("/tasks/1/params/code")], "/tasks/1/params", ["give either 'callable' or 'code'"], ["'callable':", "'code':"]),
    ("python-both", [S("/tasks/1/params/callable", "pkg.mod:main")], "/tasks/1/params", ["give either 'callable' or 'code', not both"], []),
    ("python-callable-pattern", [D("/tasks/1/params/code"), S("/tasks/1/params/callable", "pkg.mod")], "/tasks/1/params/callable",
     ["'pkg.mod'", "does not match"], ["module:function"]),
    ("noop-takes-nothing", [A("/tasks", {"id": "n", "type": "noop", "params": {"x": 1}})], "/tasks/4/params/x", ["unknown parameter 'x'"], ["known parameters: none"]),
    # edges
    ("edge-missing-to", [A("/edges", EDGE("alert", "extrct"))], "/edges/3/to", ["there is no task 'extrct'"], ["did you mean 'extract'?"]),
    ("edge-missing-from", [A("/edges", EDGE("nobody", "alert"))], "/edges/3/from", ["there is no task 'nobody'"], ["known tasks:", "'alert'"]),
    ("edge-self-loop", [A("/edges", EDGE("alert", "alert"))], "/edges/3", ["from 'alert' to itself"], ["remove this edge"]),
    ("edge-duplicate", [A("/edges", EDGE("extract", "score", on="failure"))], "/edges/3", ["duplicate edge 'extract' -> 'score'", "/edges/0"], ["one edge per pair"]),
    ("edge-true-not-condition", [S("/edges/0/on", "true")], "/edges/0/on", ["'extract'", "'shell' task, not a condition"], ["make 'extract' a condition task"]),
    ("edge-false-not-condition", [S("/edges/1/on", "false")], "/edges/1/on", ["'score'", "not a condition"], ['"on": "success"']),
    ("edge-on-enum", [S("/edges/0/on", "sucess")], "/edges/0/on", ["'sucess'", "'success', 'failure', 'always', 'true', 'false'"], ["did you mean 'success'?"]),
    ("edge-unknown-key", [S("/edges/0/when", "x")], "/edges/0/when", ["unknown key 'when'"], ["from, to, on"]),
    ("edge-missing-from-key", [D("/edges/0/from")], "/edges/0", ["missing required key 'from'"], []),
    ("edges-not-a-list", [S("/edges", {})], "/edges", ["must be an array"], []),
    ("cycle", [A("/edges", EDGE("check", "extract"))], "/edges/3", ["cycle: extract -> score -> check -> extract"], ["acyclic", "/edges/0", "/edges/1"]),
    # templates
    ("template-syntax", [S("/tasks/3/params/command", "echo {{ tasks.score.output.max ")], "/tasks/3/params/command", ["does not parse"], ["{{ tasks.extract.output.rows }}"]),
    ("template-unknown-root", [S("/tasks/3/params/command", "{{ task.score.output }}")], "/tasks/3/params/command", ["unknown name 'task'"], ["did you mean 'tasks'?"]),
    ("template-unknown-root-far", [S("/tasks/3/params/command", "{{ env.HOME }}")], "/tasks/3/params/command", ["unknown name 'env'"], ["params", "secrets"]),
    ("template-missing-task", [S("/tasks/3/params/command", "{{ tasks.scor.output }}")], "/tasks/3/params/command", ["tasks.scor", "no task 'scor'"], ["did you mean 'score'?"]),
    ("template-not-upstream", [S("/tasks/0/params/command", "echo {{ tasks.alert.output }}")], "/tasks/0/params/command",
     ["'alert' is not upstream of 'extract'"], ["add an edge from 'alert' to 'extract' (or a path through other tasks)"]),
    ("template-self", [S("/tasks/3/params/command", "{{ tasks.alert.output }}")], "/tasks/3/params/command", ["'alert' reads its own output"], ["upstream"]),
    ("template-undeclared-param", [S("/tasks/3/params/command", "{{ params.limit }}")], "/tasks/3/params/command",
     ["params.limit", "no parameter 'limit'"], ['declare it under "params"', '"limit"']),
    ("template-param-typo", [S("/tasks/3/params/command", "{{ params.treshold }}")], "/tasks/3/params/command", ["params.treshold"], ["did you mean 'threshold'?"]),
    ("template-nested-path", [S("/tasks/1/params/args/rows", ["{{ tasks.alert.output }}"])], "/tasks/1/params/args/rows/0", ["not upstream of 'score'"], []),
    ("template-item-access", [S("/tasks/3/params/command", "{{ tasks['nope'].output }}")], "/tasks/3/params/command", ["no task 'nope'"], []),
    ("expression-syntax", [S("/tasks/2/params/expression", "tasks.score.output.max >")], "/tasks/2/params/expression",
     ["expression", "does not parse"], ["an expression looks like"]),
    ("expression-not-upstream", [S("/tasks/2/params/expression", "tasks.alert.output")], "/tasks/2/params/expression",
     ["'alert' is not upstream of 'check'"], ["add an edge from 'alert' to 'check'"]),
    # triggers
    ("cron-invalid", [S("/triggers/0/cron", "61 * * * *")], "/triggers/0/cron", ["'61 * * * *'", "does not parse"], ["minute hour"]),
    ("cron-six-fields", [S("/triggers/0/cron", "0 0 * * * *")], "/triggers/0/cron", ["6 fields", "exactly 5"], ["minute hour day-of-month month day-of-week"]),
    ("cron-seven-fields", [S("/triggers/0/cron", "0 0 * * * * 2030")], "/triggers/0/cron", ["7 fields", "no seconds or year field"], []),
    ("cron-alias", [S("/triggers/0/cron", "@hourly")], "/triggers/0/cron", ["'@hourly'", "exactly 5"], ["'0 * * * *'"]),
    ("cron-missing", [D("/triggers/0/cron")], "/triggers/0", ["missing required key 'cron'"], ["Five fields"]),
    ("timezone-case", [S("/triggers/0/timezone", "europe/berlin")], "/triggers/0/timezone", ["unknown time zone 'europe/berlin'"], ["did you mean 'Europe/Berlin'?"]),
    ("timezone-typo", [S("/triggers/0/timezone", "Europe/Berln")], "/triggers/0/timezone", ["unknown time zone"], ["did you mean 'Europe/Berlin'?"]),
    ("timezone-unknown", [S("/triggers/0/timezone", "Mars/Olympus")], "/triggers/0/timezone", ["'Mars/Olympus'"], ["IANA"]),
    ("timezone-directory", [S("/triggers/0/timezone", "Europe")], "/triggers/0/timezone", ["unknown time zone 'Europe'"], []),
    ("trigger-duplicate-id", [A("/triggers", {"id": "hourly", "type": "manual"})], "/triggers/1/id", ["duplicate trigger id 'hourly'", "/triggers/0"], ["unique"]),
    ("trigger-type", [S("/triggers/0/type", "crn")], "/triggers/0/type", ["unknown trigger type 'crn'"], ["did you mean 'cron'?"]),
    ("trigger-unknown-key", [S("/triggers/0/timezon", "UTC")], "/triggers/0/timezon", ["unknown key 'timezon'"], ["did you mean 'timezone'?"]),
    ("manual-no-keys", [S("/triggers/0", {"id": "m", "type": "manual", "cron": "0 * * * *"})], "/triggers/0/cron", ["unknown key 'cron'"], []),
    ("interval-at-format", [S("/triggers/0", {"id": "d", "type": "interval", "every": 1, "unit": "days", "at": "9:30"})],
     "/triggers/0/at", ["'9:30'", "not a time of day"], ["HH:MM"]),
    ("interval-at-range", [S("/triggers/0", {"id": "d", "type": "interval", "every": 1, "unit": "days", "at": "24:00"})],
     "/triggers/0/at", ["not a time of day"], []),
    ("interval-at-needs-days", [S("/triggers/0", {"id": "h", "type": "interval", "every": 2, "unit": "hours", "at": "09:30"})],
     "/triggers/0/at", ["'at' is not allowed here"], ["'days' or 'weeks'"]),
    ("interval-weekday-needs-weeks", [S("/triggers/0", {"id": "d", "type": "interval", "every": 1, "unit": "days", "weekday": "monday"})],
     "/triggers/0/weekday", ["'weekday' is not allowed here"], ["unit 'weeks'"]),
    ("interval-every", [S("/triggers/0", {"id": "d", "type": "interval", "every": 0, "unit": "days"})], "/triggers/0/every", ["must be >= 1"], []),
    ("interval-unit", [S("/triggers/0", {"id": "d", "type": "interval", "every": 1, "unit": "day"})], "/triggers/0/unit", ["'day'"], ["did you mean 'days'?"]),
    ("start-after-end", [S("/triggers/0/start", "2025-06-01T00:00:00"), S("/triggers/0/end", "2025-01-01T00:00:00")],
     "/triggers/0/start", ["start 2025-06-01T00:00:00 is after end 2025-01-01T00:00:00"], ["swap"]),
    ("start-after-end-offsets", [S("/triggers/0/start", "2025-01-01T12:00:00+00:00"), S("/triggers/0/end", "2025-01-01T12:30:00+01:00")],
     "/triggers/0/start", ["is after end"], []),
    ("start-not-datetime", [S("/triggers/0/start", "2025-01-01")], "/triggers/0/start", ["'2025-01-01' is not an ISO 8601 date-time"], ["2025-01-31T09:00:00"]),
    ("end-garbage", [S("/triggers/0/end", "tomorrow morning")], "/triggers/0/end", ["not an ISO 8601 date-time"], []),
    # settings
    ("settings-unknown-key", [S("/settings", {"max_parallel": 2})], "/settings/max_parallel", ["unknown key 'max_parallel'"], ["did you mean 'max_parallel_tasks'?"]),
    ("settings-parallel", [S("/settings", {"max_parallel_tasks": 0})], "/settings/max_parallel_tasks", ["must be >= 1"], []),
    ("settings-timeout", [S("/settings", {"timeout": -5})], "/settings/timeout", ["must be > 0", "-5"], []),
]


@pytest.mark.parametrize("edits, path, message, hint", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(edits, path, message, hint):
    issues = validate_document(edit(base_doc(), *edits))
    assert len(issues) == 1, "\n".join(map(str, issues))
    issue = issues[0]
    assert issue.path == path, str(issue)
    for words in message:
        assert words in issue.message, str(issue)
    for words in hint:
        assert words in issue.hint, str(issue)


# -- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        ('{\n  "format": "taskloom/v1"\n  "name": "x"\n}', ["line 3, column 3", "Expecting ',' delimiter"]),
        ('{"a": 1,}', ["line 1, column 9"]),
        ("", ["line 1, column 1", "Expecting value"]),
        ('{"a": NaN}', ["NaN is not a JSON value"]),
        ('{"a": -Infinity}', ["-Infinity is not a JSON value"]),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), ["nesting too deep", "line 1, column 65", str(MAX_DEPTH)]),
        ('{"a":\n' + "[" * 100_000 + "]" * 100_000 + "}", ["nesting too deep", "line 2, column 64"]),
        ('"unterminated [[[[' + "[" * 100 , ["line 1"]),
    ],
    ids=["missing-comma", "trailing-comma", "empty", "nan", "infinity", "too-deep", "far-too-deep", "unterminated"],
)
def test_parse_errors(text, words):
    doc, issues = parse_document(text)
    assert doc is None and len(issues) == 1
    assert issues[0].path == ""
    for w in words:
        assert w in issues[0].message, issues[0]
    assert issues[0].hint


def test_nesting_at_the_limit_parses():
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_document(text)[1] == []


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"command": "[" * 1000 + '\\"{' * 100})
    doc, issues = parse_document(text)
    assert issues == [] and doc["command"].startswith("[[[")


@pytest.mark.parametrize("kind", [str, bytes])
def test_size_cap_is_checked_before_parsing(kind):
    text = "[" + " " * MAX_DOCUMENT_BYTES + "]"  # would parse fine, but is too big
    doc, issues = parse_document(text if kind is str else text.encode())
    assert doc is None and "limit is 5,242,880" in issues[0].message and issues[0].hint


def test_size_cap_counts_utf8_bytes_of_text():
    text = json.dumps({"x": "é" * (MAX_DOCUMENT_BYTES // 2 + 10)}, ensure_ascii=False)
    assert len(text) < MAX_DOCUMENT_BYTES
    assert "bytes" in parse_document(text)[1][0].message


def test_invalid_utf8_names_its_position():
    doc, issues = parse_document(b'{\n  "name": "caf\xe9"\n}')
    assert doc is None
    assert "invalid UTF-8 at line 2, column 15" in issues[0].message
    assert "UTF-8" in issues[0].hint


def test_bytes_with_a_bom_parse():
    doc, issues = parse_document(b"\xef\xbb\xbf" + json.dumps(base_doc()).encode())
    assert issues == [] and doc["name"] == "hourly-scores"


@pytest.mark.parametrize("doc", [[], "x", None, 3])
def test_document_must_be_an_object(doc):
    (issue,) = validate_document(doc)
    assert issue.path == "" and "must be a JSON object" in issue.message and "taskloom/v1" in issue.hint


def test_deep_params_in_a_dict_are_an_issue_not_a_traceback():
    deep: Any = "{{ tasks.extract.output }}"
    for _ in range(5000):
        deep = [deep]
    doc = base_doc()
    doc["tasks"][1]["params"]["args"]["rows"] = deep
    issues = validate_document(doc)
    assert len(issues) == 1 and "nesting too deep" in issues[0].message
    assert issues[0].path.startswith("/tasks/1/params/args/rows/0/0/")


# -- whole documents ----------------------------------------------------------------------


def test_valid_documents_have_no_issues():
    assert validate_document(base_doc()) == []
    assert validate_document(rich_doc()) == []


def test_every_issue_is_collected_in_one_pass():
    doc = edit(
        base_doc(),
        S("/tasks/0/retrys", 1),
        S("/tasks/2/type", "conditon"),
        A("/edges", EDGE("alert", "nobody")),
    )
    issues = validate_document(doc)
    assert [i.path for i in issues] == ["/tasks/0/retrys", "/tasks/2/type", "/edges/3/to"]


def test_issues_come_in_document_order():
    doc = edit(
        base_doc(),
        S("/settings", {"timeout": 0}),
        A("/edges", EDGE("alert", "alert")),
        S("/tasks/3/params/command", "{{ params.nope }}"),
        S("/tasks/0/timeout", -1),
        S("/triggers/0/cron", "bad"),
        S("/format", "v0"),
    )
    paths = [i.path for i in validate_document(doc)]
    assert paths == [
        "/format", "/triggers/0/cron", "/tasks/0/timeout", "/tasks/3/params/command", "/edges/3", "/settings/timeout",
    ]


def test_tasks_that_are_not_a_list_get_no_graph_checks():
    doc = edit(base_doc(), S("/tasks", "extract"))
    assert [i.path for i in validate_document(doc)] == ["/tasks"]


def test_edges_to_missing_tasks_make_no_further_noise():
    # score's template reads extract; the only edge into score is broken, so upstream is unknown.
    doc = edit(base_doc(), S("/edges/0/from", "extrct"))
    assert [i.path for i in validate_document(doc)] == ["/edges/0/from"]


def test_params_that_are_not_an_object_do_not_flag_every_template():
    doc = edit(base_doc(), S("/params", ["threshold"]))
    assert [i.path for i in validate_document(doc)] == ["/params"]


def test_an_unknown_type_is_reported_once():
    doc = edit(base_doc(), S("/tasks/2/type", "cond"))  # check has true edges and an expression param
    issues = validate_document(doc)
    assert [i.path for i in issues] == ["/tasks/2/type"]


def test_every_cycle_is_reported():
    doc = {
        "format": "taskloom/v1", "name": "loops",
        "tasks": [NOOP(t) for t in "abcdef"],
        "edges": [EDGE("a", "b"), EDGE("b", "a"), EDGE("c", "d"), EDGE("d", "e"), EDGE("e", "c"), EDGE("e", "f")],
    }
    issues = validate_document(doc)
    assert [(i.path, i.message) for i in issues] == [
        ("/edges/1", "cycle: a -> b -> a"),
        ("/edges/4", "cycle: c -> d -> e -> c"),
    ]


def test_upstream_through_a_path_and_with_cycles_elsewhere():
    doc = {
        "format": "taskloom/v1", "name": "paths",
        "tasks": [NOOP("a"), NOOP("b"), SHELL("c", "{{ tasks.a.output }}"), NOOP("x"), NOOP("y"),
                  SHELL("z", "{{ tasks.c.output }} {{ tasks.x.output }}")],
        "edges": [EDGE("a", "b"), EDGE("b", "c"), EDGE("x", "y"), EDGE("y", "x"), EDGE("y", "z")],
    }
    issues = validate_document(doc)
    assert [(i.path, i.message) for i in issues] == [
        ("/tasks/5/params/command", "template reads tasks.c, but 'c' is not upstream of 'z'"),
        ("/edges/3", "cycle: x -> y -> x"),
    ]


def test_failure_and_always_edges_count_as_upstream():
    doc = edit(base_doc(), S("/edges/0/on", "failure"), S("/edges/1/on", "always"))
    assert validate_document(doc) == []


def test_a_missing_params_object_is_the_types_default():
    doc = edit(base_doc(), A("/tasks", NOOP("tail")), A("/edges", EDGE("alert", "tail")))
    assert validate_document(doc) == []


def test_registry_argument_is_used():
    registry = default_registry()
    doc = edit(base_doc(), S("/tasks/0/type", "shell"))
    assert validate_document(doc, registry) == []


HTTP = TaskType(
    name="acme_http", title="HTTP request", description="Call a URL.", category="Network", icon="globe",
    entry="plugin.http:run",
    params_schema={
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string"}, "method": {"enum": ["GET", "POST"]}, "body": {"type": "string"}},
        "dependentRequired": {"body": ["method"]},  # beyond the fast predicate: jsonschema decides alone
    },
)
BROKEN = TaskType(
    name="broken", title="Broken", description="", category="", icon="", entry="plugin.broken:run",
    params_schema={"type": "objekt"},
)


@pytest.mark.parametrize(
    "task, path, words",
    [
        ({"id": "call", "type": "acme_http", "params": {"url": "https://x", "body": "{{ params.threshold }}"}},
         "/tasks/4/params", "'method' is a dependency of 'body'"),
        ({"id": "call", "type": "acme_http", "params": {"url": "https://x", "method": "GTE"}},
         "/tasks/4/params/method", "did you mean 'GET'?"),
        ({"id": "call", "type": "acme_http", "params": {}}, "/tasks/4/params", "missing required parameter 'url'"),
        ({"id": "call", "type": "broken"}, "/tasks/4/type", "invalid params schema"),
    ],
    ids=["fallback-to-jsonschema", "enum", "required", "broken-plugin"],
)
def test_plugin_task_types(task, path, words):
    registry = Registry(BUILTIN_TYPES + (HTTP, BROKEN))
    assert validate_document(edit(base_doc(), A("/tasks", {"id": "call", "type": "acme_http", "params": {"url": "u"}})), registry) == []
    (issue,) = validate_document(edit(base_doc(), A("/tasks", task)), registry)
    assert issue.path == path and words in str(issue), str(issue)


def test_workflow_schema_includes_plugin_types():
    schema = workflow_schema(Registry(BUILTIN_TYPES + (HTTP,)))
    task = schema["$defs"]["task"]
    assert task["properties"]["type"]["enum"] == sorted([t.name for t in BUILTIN_TYPES] + ["acme_http"])
    (rule,) = [r for r in task["allOf"] if r["if"]["properties"]["type"]["const"] == "acme_http"]
    assert rule["then"]["properties"]["params"]["required"] == ["url"]
    assert "enum" not in WORKFLOW_SCHEMA["$defs"]["task"]["properties"]["type"]  # the constant is untouched


def test_load_workflow_builds_the_model():
    workflow = load_workflow(json.dumps(rich_doc()))
    assert list(workflow.tasks)[:2] == ["extract", "score"]
    assert workflow.tasks["extract"].join == "any"
    assert workflow.settings.max_parallel_tasks == 2


def test_load_workflow_raises_with_every_issue():
    doc = edit(base_doc(), S("/tasks/0/retrys", 1), S("/tasks/2/type", "conditon"))
    with pytest.raises(DocumentError) as info:
        load_workflow(json.dumps(doc).encode())
    assert [i.path for i in info.value.issues] == ["/tasks/0/retrys", "/tasks/2/type"]
    assert str(info.value).splitlines() == [
        "/tasks/0/retrys: unknown key 'retrys' (did you mean 'retries'?)",
        "/tasks/2/type: unknown task type 'conditon' (did you mean 'condition'?)",
    ]
    assert isinstance(info.value, ValueError)


def test_load_workflow_reports_parse_errors():
    with pytest.raises(DocumentError) as info:
        load_workflow("{")
    assert "invalid JSON at line 1, column 2" in str(info.value)


def test_issue_to_dict_and_str():
    issue = Issue("/tasks/0/type", "unknown task type 'shel'", "did you mean 'shell'?")
    assert issue.to_dict() == {"path": "/tasks/0/type", "message": "unknown task type 'shel'", "hint": "did you mean 'shell'?"}
    assert str(issue) == "/tasks/0/type: unknown task type 'shel' (did you mean 'shell'?)"
    assert str(Issue("", "bad")) == "(document): bad"


def test_pointer_escapes_keys():
    doc = edit(base_doc(), S("/tasks/0/params/env", {"a/b~c": 1}))
    assert [i.path for i in validate_document(doc)] == ["/tasks/0/params/env/a~1b~0c"]


def test_templates_accept_run_trigger_secrets_and_jinja_locals():
    command = (
        "{{ run.id }} {{ run.logical_time }} {{ trigger.payload.x }} {{ secrets.API_KEY }} "
        "{% set n = 3 %}{% for i in range(n) %}{{ loop.index }}{% endfor %} {{ tasks.score.output | tojson }}"
    )
    assert validate_document(edit(base_doc(), S("/tasks/3/params/command", command))) == []


# -- canonical JSON -----------------------------------------------------------------------


def test_canonical_json_round_trip_keeps_editor_fields():
    doc = rich_doc()
    text = canonical_json(doc)
    again = json.loads(text)
    assert canonical_json(again) == text
    assert validate_document(again) == []
    task = again["tasks"][0]
    assert task["position"] == {"x": 10, "y": -20.5}
    assert task["title"] == "Extract" and task["description"] == "Reads rows."
    assert again["title"] == "Hourly scores" and again["description"] == "Scores readings."
    assert list(task)[:3] == ["id", "type", "title"]


# -- the schema and its published copy --------------------------------------------------


def test_published_schema_file_is_up_to_date():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_json(), (
        f"{SCHEMA_FILE.relative_to(ROOT)} is stale; regenerate it with:\n  {REGENERATE}"
    )


def test_schema_json_is_the_default_registry_schema():
    assert schema_json() == json.dumps(workflow_schema(default_registry()), indent=2) + "\n"


@pytest.mark.parametrize("schema", [WORKFLOW_SCHEMA, workflow_schema()], ids=["skeleton", "with-types"])
def test_schema_is_a_valid_draft_2020_12_schema(schema):
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://taskloom.dev/schema/workflow-v1.json"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_property_has_a_title_and_description():
    defs = WORKFLOW_SCHEMA["$defs"]
    missing = []
    for owner, schema in [("(top)", WORKFLOW_SCHEMA), *defs.items()]:
        for name, prop in schema.get("properties", {}).items():
            target = defs[prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else prop
            admitted_only = set(prop) == {"description"}  # a trigger variant admitting id/type
            if not target.get("description") or not (admitted_only or target.get("title")):
                missing.append(f"{owner}.{name}")
    assert not missing


def test_published_schema_accepts_valid_documents():
    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    for doc in (base_doc(), rich_doc(), *[json.loads(p.read_text()) for p in sorted((ROOT / "assets" / "examples").glob("*.json"))]):
        assert list(validator.iter_errors(doc)) == []


@pytest.mark.parametrize(
    "edits, path",
    [
        ([S("/tasks/0/params", {})], ["tasks", 0, "params"]),
        ([D("/tasks/1/params/code")], ["tasks", 1, "params"]),
        ([S("/tasks/0/type", "shel")], ["tasks", 0, "type"]),
        ([S("/tasks/0/retrys", 1)], ["tasks", 0]),
    ],
    ids=["shell-params", "python-oneof", "type-enum", "unknown-key"],
)
def test_published_schema_checks_params_and_types(edits, path):
    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = list(validator.iter_errors(edit(base_doc(), *edits)))
    assert errors and any(list(e.absolute_path) == path for e in errors), [e.message for e in errors]


# -- the fast paths agree with the slow ones -----------------------------------------------


def _mutations(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A random variation of ``value``: changed types, removed and added keys, odd numbers."""
    choices: list[Any] = [None, True, 0, 1, -1, 1.5, 1.0, "", "x", "0 * * * *", "09:30", [], {}, "all", "true"]
    if rng.random() < 0.15 or depth > 3:
        return rng.choice(choices)
    if isinstance(value, dict):
        out = {k: _mutations(rng, v, depth + 1) if rng.random() < 0.3 else v for k, v in value.items() if rng.random() > 0.1}
        if rng.random() < 0.2:
            out[rng.choice(["extra", "type", "id", "unit", "at", "weekday", "on", "every", "x"])] = rng.choice(choices)
        return out
    if isinstance(value, list):
        return [_mutations(rng, v, depth + 1) for v in value if rng.random() > 0.1]
    return value


def test_fast_predicate_agrees_with_jsonschema():
    defs = WORKFLOW_SCHEMA["$defs"]
    samples = {
        "task": rich_doc()["tasks"],
        "edge": rich_doc()["edges"],
        "trigger": rich_doc()["triggers"],
        "param": list(rich_doc()["params"].values()),
        "settings": [{"max_parallel_tasks": 2, "timeout": 1}],
    }
    rng = random.Random(7)
    checked = 0
    for name, values in samples.items():
        schema = {**defs[name], "$defs": defs}
        fast, slow = compile_predicate(schema), Draft202012Validator(schema)
        for _ in range(400):
            value = _mutations(rng, rng.choice(values))
            assert fast(value) == slow.is_valid(value), (name, value)
            checked += 1
    for task_type in default_registry():
        fast, slow = compile_predicate(task_type.params_schema), Draft202012Validator(task_type.params_schema)
        for params in ({}, {"command": "x"}, {"command": ""}, {"code": "x", "callable": "a:b"}, {"callable": "a:b"},
                       {"callable": "a"}, {"expression": 1}, {"env": {"A": 1}}, {"env": {"A": "1"}, "command": "x"}, []):
            assert fast(params) == slow.is_valid(params), (task_type.name, params)
    assert checked == 2000


@pytest.mark.parametrize(
    "text",
    [
        "{{ tasks.a.output }}", "{{tasks.a.output.rows[0]}} and {{ params.p }}", "{{- tasks.b -}}", "{{ tasks[0] }}",
        "{{ run }}", "{{ params.p | tojson | trim }}", "x }} {{ params.p }}", "{{ tasks.a }}}", "{{{ tasks.a }}}",
        "{{ true }}", "{{ tasks.a.output.0 }}", "{{ tasks['a'].x }}", "{{ 1 + {{ tasks.a }}", "{# c #}{{ tasks.a }}",
        "{% raw %}{{ tasks.z }}{% endraw %}", "{{ x }}", "{{ tasks.é }}", "{{ tasks.a. b }}", "{{ tasks.if }}",
    ],
)
def test_fast_template_references_agree_with_jinja(text):
    fast = _fast_references(text)
    if fast is None:
        return  # the fast path declined; Jinja decides
    assert fast == references(text)


# -- speed ------------------------------------------------------------------------------------


def test_large_workflow_validates_quickly():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_validate import build_document
    finally:
        sys.path.remove(str(ROOT / "bench"))
    doc = build_document(10_000, 20_000)
    validate_document(doc)  # warm caches
    start = time.perf_counter()
    issues = validate_document(doc)
    elapsed = time.perf_counter() - start
    assert issues == []
    assert elapsed < 2.0, f"{elapsed:.2f}s for 10,000 tasks (the benchmark's target is well under 1 s)"
