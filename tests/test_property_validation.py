"""Property-based tests of validation and of the export/import round trip (hypothesis).

Two generators drive them:

- :func:`valid_documents` builds ``taskloom/v1`` documents that must validate:
  a random DAG (drawn in topological order, then listed in a shuffled order),
  ``noop``/``condition``/``shell``/``python`` tasks whose templates read only
  declared params and upstream tasks, every optional task field, declared
  params, triggers and settings, and free text in titles and descriptions.
- :func:`edit` applies random graph edits to such a document (add, remove and
  rename tasks, add and remove edges, change an edge's ``on`` or a task's
  ``join``) and random damage (any value replaced by any JSON value, keys
  dropped, values wrapped), so most edited documents are invalid in some way.

The properties: validation only ever *reports* (a list of :class:`Issue`;
``load_workflow`` raises nothing but :class:`DocumentError`); whatever it
accepts builds a model and survives canonical JSON; and a valid document comes
back unchanged from the store (save, export, import again), through files,
and through the ``taskloom export``/``import`` commands into another home.

The settings are derandomized (the same examples on every run, so CI is
deterministic) and keep no example database (no ``.hypothesis`` folder).
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from taskloom.core.issues import DocumentError, Issue
from taskloom.core.model import Workflow, canonical_json
from taskloom.core.validation import load_workflow, parse_document, validate_document
from taskloom.storage.store import UserError, Workspace
from taskloom.ui.cli.main import cli

#: The profile CI runs: the same examples every time, no example database, no per-example deadline.
settings.register_profile(
    "taskloom-ci", derandomize=True, database=None, deadline=None, max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: A bug hunt: TASKLOOM_HYPOTHESIS=taskloom-hunt makes the examples random and ten times as many.
settings.register_profile(
    "taskloom-hunt", parent=settings.get_profile("taskloom-ci"), derandomize=False, max_examples=1500,
)
PROFILE = os.environ.get("TASKLOOM_HYPOTHESIS", "taskloom-ci")
FAST = settings.get_profile(PROFILE)


def budget(examples: int) -> settings:
    """:data:`FAST` with ``examples`` examples (ten times as many in a bug hunt)."""
    return settings(FAST, max_examples=examples * (10 if PROFILE == "taskloom-hunt" else 1))

# -- JSON values ------------------------------------------------------------------------

#: Strings that mean something to some layer: templates, sandbox escapes, pointers, ids, odd characters.
TRICKY_STRINGS = [
    "", " ", "{{", "}}", "{{ }}", "{%", "{% for x in y %}", "{#", "{{ tasks }}", "{{ tasks.nope.output }}",
    "{{ params.nope }}", "{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ 1/0 }}",
    "{{ tasks.a.output | tojson }}", "{{ range(10**9) | list }}", "a/b~c", "/tasks/0", "~1", "shell", "noop",
    "condition", "python", "placeholder", "foreach", "success", "failure", "always", "true", "false", "all",
    "any", "a", "b", "_", "__class__", "copy", "items", "\x00", "\ud7ff", "\ud800", "x\udfff", "é", "🙂",
    "\u2028", "1e400",
    "taskloom/v1", "0 * * * *", "Europe/Berlin", "manual", "cron", "interval", "webhook",
]

_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()  # nan and infinities included: a dict handed to validation may hold them
    | st.text(max_size=12)
    | st.text(st.characters(codec=None, categories=("Cs", "Lo")), max_size=3)  # lone surrogates too
    | st.sampled_from(TRICKY_STRINGS)
)
json_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(TRICKY_STRINGS), inner, max_size=3),
    max_leaves=6,
)

# -- valid documents ------------------------------------------------------------------------

#: Task ids, including names of dict methods (templates read tasks.copy.output as data, not dict.copy).
task_ids = st.sampled_from(["a", "b", "copy", "items", "keys", "get", "_x", "T9", "values"]) | st.from_regex(
    r"[a-z_][a-z0-9_]{0,5}", fullmatch=True
)
#: Free text without template syntax (a "{{" there would make it a template that may not parse).
plain_text = st.text(st.characters(blacklist_characters="{}%#", blacklist_categories=("Cs",)), max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
positive = st.floats(min_value=0.001, max_value=1e9, allow_nan=False) | st.integers(1, 10**9)
non_negative = st.floats(min_value=0, max_value=1e9, allow_nan=False) | st.integers(0, 10**9)

PARAM_VALUES = {
    "string": st.text(max_size=10),
    "number": finite | st.integers(-(10**6), 10**6),
    "integer": st.integers(-(2**63), 2**63),
    "boolean": st.booleans(),
    "array": st.lists(st.integers() | st.text(max_size=5), max_size=3),
    "object": st.dictionaries(st.text(max_size=5), st.integers() | st.none(), max_size=3),
}


@st.composite
def declared_params(draw: st.DrawFn) -> dict[str, Any]:
    """``params``: a few declared run parameters, each with a matching default or none."""
    names = draw(st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True), max_size=3, unique=True))
    params: dict[str, Any] = {}
    for name in names:
        kind = draw(st.sampled_from(sorted(PARAM_VALUES)))
        spec: dict[str, Any] = {}
        if kind != "string" or draw(st.booleans()):
            spec["type"] = kind
        if draw(st.booleans()):
            spec["default"] = draw(PARAM_VALUES[kind])
        if draw(st.booleans()):
            spec["description"] = draw(plain_text)
        params[name] = spec
    return params


triggers = st.lists(
    st.sampled_from([
        {"type": "manual"},
        {"type": "cron", "cron": "0 * * * *"},
        {"type": "cron", "cron": "*/15 9-17 * * 1-5", "timezone": "Europe/Berlin", "enabled": False},
        {"type": "interval", "every": 5, "unit": "minutes"},
        {"type": "interval", "every": 1, "unit": "weeks", "at": "09:30", "weekday": "monday", "timezone": "UTC"},
        {"type": "interval", "every": 2, "unit": "days", "at": "23:59", "start": "2025-01-01T00:00:00"},
        {"type": "webhook"},
        {"type": "webhook", "respond": "run", "secret": "HOOK_KEY"},
    ]),
    max_size=3,
).map(lambda ts: [{"id": f"tr{i}", **t} for i, t in enumerate(ts)])

settings_values = st.fixed_dictionaries({}, optional={
    "max_parallel_tasks": st.integers(1, 64),
    "timeout": positive,
    "catchup": st.sampled_from(["none", "latest", "all"]),
    "catchup_limit": st.integers(1, 1000),
    "overlap": st.sampled_from(["skip", "queue", "allow", "cancel_previous"]),
    "max_active_runs": st.integers(1, 10),
})


def _template(draw: st.DrawFn, upstream: list[str], params: dict[str, Any]) -> str:
    """A template reading what this task may read: an upstream task, a declared param, the run."""
    choices = ["{{ run.id }}", "{{ run.logical_time }}", "{{ trigger.payload | tojson }}"]
    choices += [f"{{{{ tasks.{u}.output }}}}" for u in upstream] + [f"{{{{ tasks['{u}'].status }}}}" for u in upstream]
    choices += [f"{{{{ params.{p} }}}}" for p in params]
    return draw(st.sampled_from(choices))


def _task(draw: st.DrawFn, task_id: str, kind: str, upstream: list[str], params: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] = {"id": task_id, "type": kind}
    if kind == "condition":
        expressions = ["true", "false", "1 == 1", "1 > 2", "run.id > 0"]
        expressions += [f"tasks.{u}.status == 'succeeded'" for u in upstream]
        task["params"] = {"expression": draw(st.sampled_from(expressions))}
    elif kind == "shell":
        words = draw(st.lists(plain_text | st.just("TEMPLATE"), min_size=1, max_size=3))
        command = " ".join(_template(draw, upstream, params) if w == "TEMPLATE" else w for w in words)
        task["params"] = {"command": "echo " + command}
        if draw(st.booleans()):
            task["params"]["env"] = {"X": _template(draw, upstream, params)}
    elif kind == "python":
        task["params"] = {"code": "def main(**kw):\n    return kw", "args": {"v": _template(draw, upstream, params)}}
    elif draw(st.booleans()):
        task["params"] = {}
    optional = draw(st.fixed_dictionaries({}, optional={
        "title": plain_text, "description": plain_text, "retries": st.integers(0, 100),
        "retry_delay": non_negative, "retry_backoff": st.floats(1, 10) | st.integers(1, 10),
        "max_retry_delay": non_negative, "timeout": positive, "join": st.sampled_from(["all", "any"]),
        "position": st.fixed_dictionaries({"x": finite | st.integers(-5000, 5000), "y": finite}),
    }))
    task.update(optional)
    return task


@st.composite
def valid_documents(draw: st.DrawFn, max_tasks: int = 8) -> dict[str, Any]:
    """A valid taskloom/v1 document (see the module docstring)."""
    n = draw(st.integers(1, max_tasks))
    ids = draw(st.lists(task_ids, min_size=n, max_size=n, unique=True))
    params = draw(declared_params())
    kinds = [draw(st.sampled_from(["noop", "condition", "shell", "python"])) for _ in ids]
    tasks, edges = [], []
    ancestors: dict[str, set[str]] = {}
    for j, task_id in enumerate(ids):
        preds = draw(st.sets(st.integers(0, j - 1), max_size=3)) if j else set()
        ancestors[task_id] = set()
        for i in sorted(preds):
            source = ids[i]
            ancestors[task_id] |= {source} | ancestors[source]
            ons = ["success", "failure", "always", None] + (["true", "false"] if kinds[i] == "condition" else [])
            on = draw(st.sampled_from(ons))
            edges.append({"from": source, "to": task_id, **({} if on is None else {"on": on})})
        tasks.append(_task(draw, task_id, kinds[j], sorted(ancestors[task_id]), params))
    doc: dict[str, Any] = {
        "format": "taskloom/v1",
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)),
        "tasks": draw(st.permutations(tasks)),
    }
    if edges or draw(st.booleans()):
        doc["edges"] = draw(st.permutations(edges))
    extra = draw(st.fixed_dictionaries({}, optional={
        "title": plain_text, "description": plain_text, "triggers": triggers, "settings": settings_values,
    }))
    if params or draw(st.booleans()):
        doc["params"] = params
    doc.update(extra)
    return doc


# -- random edits -----------------------------------------------------------------------------


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``value`` (the root excluded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield here + (key,)
            yield from _paths(item, here + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield here + (index,)
            yield from _paths(item, here + (index,))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _ids(doc: dict[str, Any]) -> list[Any]:
    tasks = doc.get("tasks")
    return [t.get("id") for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else []


def _list(doc: dict[str, Any], key: str) -> list[Any] | None:
    value = doc.get(key)
    return value if isinstance(value, list) else None


EDGE_ONS = st.sampled_from(["success", "failure", "always", "true", "false"]) | json_values
JOINS = st.sampled_from(["all", "any"]) | json_values
#: Types, also unhashable ones: a type is looked up in the registry, which a list or an object cannot be.
TYPES = (
    st.sampled_from(["noop", "condition", "shell", "python", "shel", "placeholder", "foreach"])
    | st.lists(st.text(max_size=3), max_size=2) | st.dictionaries(st.text(max_size=3), st.none(), max_size=1)
    | json_values
)


#: Numbers at the edges of JSON: what 1e400 parses to, integers no double holds, negative zero.
EXTREME_NUMBERS = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 10**400, -(10**309), -0.0, 2**64])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def edit(doc: dict[str, Any], data: st.DataObject) -> str:
    """Apply one random edit to ``doc`` in place; return what it did (for the failure report)."""
    kind = data.draw(st.sampled_from([
        "add_task", "remove_task", "add_edge", "remove_edge", "set_on", "set_join", "rename", "retype",
        "replace", "delete", "wrap", "extreme_number",
    ]), label="edit")
    ids = _ids(doc) or ["a"]
    some_id = st.sampled_from(ids) | task_ids | json_values
    tasks, edges = _list(doc, "tasks"), _list(doc, "edges")
    if kind == "add_task" and tasks is not None:
        task = {"id": data.draw(some_id), "type": data.draw(TYPES)}
        if data.draw(st.booleans()):
            task["params"] = data.draw(json_values)
        tasks.insert(data.draw(st.integers(0, len(tasks))), task)
    elif kind == "remove_task" and tasks:
        tasks.pop(data.draw(st.integers(0, len(tasks) - 1)))
    elif kind == "add_edge":
        edge = {"from": data.draw(some_id), "to": data.draw(some_id)}
        if data.draw(st.booleans()):
            edge["on"] = data.draw(EDGE_ONS)
        if edges is None:
            doc["edges"] = edges = []
        edges.append(edge)
    elif kind == "remove_edge" and edges:
        edges.pop(data.draw(st.integers(0, len(edges) - 1)))
    elif kind == "set_on" and edges and isinstance(edges[0], dict):
        data.draw(st.sampled_from([e for e in edges if isinstance(e, dict)]))["on"] = data.draw(EDGE_ONS)
    elif kind in ("set_join", "rename", "retype") and tasks and any(isinstance(t, dict) for t in tasks):
        task = data.draw(st.sampled_from([t for t in tasks if isinstance(t, dict)]))
        if kind == "set_join":
            task["join"] = data.draw(JOINS)
        elif kind == "retype":
            task["type"] = data.draw(TYPES)
        else:
            old, new = task.get("id"), data.draw(some_id)
            task["id"] = new
            if data.draw(st.booleans()):  # the editor renames the edges too; a hand edit may not
                for e in edges or []:
                    if isinstance(e, dict):
                        e.update({k: new for k in ("from", "to") if e.get(k) == old})
    elif kind == "extreme_number":
        numbers = [p for p in _paths(doc) if _is_number(_parent(doc, p)[p[-1]])]
        if numbers:
            path = data.draw(st.sampled_from(numbers))
            _parent(doc, path)[path[-1]] = data.draw(EXTREME_NUMBERS)
            return f"{kind} {path}"
    elif kind in ("replace", "delete", "wrap"):
        paths = list(_paths(doc))
        if not paths:
            return kind
        path = data.draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        if kind == "replace":
            parent[path[-1]] = data.draw(json_values)
        elif kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(st.sampled_from([[parent[path[-1]]], {"x": parent[path[-1]]}]))
        return f"{kind} {path}"
    return kind


# -- properties ---------------------------------------------------------------------------------


def assert_reports_only(doc: Any) -> list[Issue]:
    """``validate_document`` returns issues (never raises); accepted documents build and serialise."""
    issues = validate_document(doc)
    assert isinstance(issues, list) and all(isinstance(i, Issue) for i in issues)
    for issue in issues:
        assert issue.path == "" or issue.path.startswith("/"), issue
        assert issue.message.strip(), issue
        str(issue).encode("utf-8")  # printable, and sendable in a JSON response
    if not issues:
        Workflow.from_document(doc)
        text = canonical_json(doc)
        text.encode("utf-8")  # storable
        again, problems = parse_document(text)
        assert problems == [] and validate_document(again) == [], (text, problems)
        assert canonical_json(again) == text
    return issues


@FAST
@given(doc=valid_documents())
def test_generated_documents_are_valid(doc: dict[str, Any]) -> None:
    """The generator's documents validate: validation accepts every shape the format allows."""
    assert validate_document(doc) == []
    assert_reports_only(doc)
    workflow = load_workflow(json.dumps(doc))
    assert list(workflow.tasks) == _ids(doc)


@FAST
@given(doc=valid_documents(), data=st.data())
def test_validation_of_edited_documents_only_reports(doc: dict[str, Any], data: st.DataObject) -> None:
    """Random graph edits and damage: validation returns issues, never an exception."""
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        note(edit(doc, data))
    issues = assert_reports_only(doc)
    event("still valid after the edits" if not issues else "invalid after the edits")
    try:
        text = json.dumps(doc)
    except ValueError:  # a number too long for Python's int to str conversion
        return
    try:
        load_workflow(text)
    except DocumentError as exc:
        assert exc.issues
    else:
        assert validate_document(doc) == []


@FAST
@given(doc=json_values)
def test_any_json_value_as_a_document_only_reports(doc: Any) -> None:
    assert_reports_only(doc)


@FAST
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_only_report(raw: bytes) -> None:
    """Bytes from anywhere: parse and load say what is wrong, never raise anything else."""
    doc, issues = parse_document(raw)
    assert doc is None or not issues
    try:
        load_workflow(raw)
    except DocumentError as exc:
        assert exc.issues and all(isinstance(i, Issue) for i in exc.issues)


# -- round trips through the store, files and the CLI ---------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One Taskloom home for every example of a test (hypothesis runs many examples per test)."""
    ws = Workspace(tmp_path_factory.mktemp("home"))
    yield ws
    ws.close()


@FAST
@given(doc=valid_documents())
def test_valid_documents_round_trip_through_the_store_and_files(
    doc: dict[str, Any], store: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """save -> export gives the same document; export -> file -> import is the same version again."""
    original = copy.deepcopy(doc)
    info, _ = store.save(doc)
    assert doc == original  # saving does not touch the caller's document
    exported = store.export(doc["name"], info.version)
    assert canonical_json(exported) == canonical_json(doc)
    assert exported == doc
    path = tmp_path_factory.mktemp("files") / "flow.json"
    path.write_text(canonical_json(exported), encoding="utf-8")
    again, created = store.import_file(path)
    assert not created and again.version == info.version  # identical: no new version
    assert canonical_json(store.export(doc["name"])) == canonical_json(doc)


@budget(25)
@given(doc=valid_documents())
def test_cli_export_then_import_into_another_home_is_identical(
    doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``taskloom import`` / ``export -o`` between two homes: the exported bytes are identical."""
    folder = tmp_path_factory.mktemp("cli")
    source = folder / "in.json"
    source.write_text(json.dumps(doc), encoding="utf-8")
    runner = CliRunner()
    first, second = str(folder / "one"), str(folder / "two")
    out1, out2 = folder / "out1.json", folder / "out2.json"
    for args in (["--home", first, "import", str(source)], ["--home", first, "export", doc["name"], "-o", str(out1)],
                 ["--home", second, "import", str(out1)], ["--home", second, "export", doc["name"], "-o", str(out2)]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    assert out1.read_bytes() == out2.read_bytes() == canonical_json(doc).encode()


# -- regressions found by the properties above ----------------------------------------------------


def test_a_true_edge_from_a_task_whose_type_is_a_list_is_an_issue_not_a_type_error() -> None:
    """Found by the edit property: the registry lookup of an unhashable type raised TypeError."""
    doc = {"format": "taskloom/v1", "name": "x", "tasks": [{"id": "c", "type": []}, {"id": "b", "type": "noop"}],
           "edges": [{"from": "c", "to": "b", "on": "true"}]}
    issues = validate_document(doc)
    assert [i.path for i in issues] == ["/tasks/0/type"] and "must be a string" in issues[0].message


@pytest.mark.parametrize(("text", "path", "words"), [
    ('{"x": 1, "y": 1e400}', "/tasks/0/position/y", ["overflows to Infinity"]),
    ('{"x": -1e400, "y": 0}', "/tasks/0/position/x", ["overflows to -Infinity"]),
    ('{"x": 1' + "0" * 400 + ', "y": 0}', "/tasks/0/position/x", ["401 digits", "too large"]),
])
def test_numbers_beyond_a_double_are_issues_and_never_exported_as_infinity(
    text: str, path: str, words: list[str]
) -> None:
    """Found by the edit property: 1e400 parsed to inf, validated, and canonical JSON wrote ``Infinity``,
    which no JSON parser reads back; a 400-digit integer made building the model raise OverflowError."""
    raw = '{"format": "taskloom/v1", "name": "x", "tasks": [{"id": "a", "type": "noop", "position": ' + text + "}]}"
    with pytest.raises(DocumentError) as caught:
        load_workflow(raw)
    [issue] = caught.value.issues
    assert issue.path == path and all(w in issue.message for w in words), issue


def test_nan_handed_over_in_a_dict_is_an_issue() -> None:
    doc = {"format": "taskloom/v1", "name": "x", "tasks": [{"id": "a", "type": "noop", "timeout": math.nan}]}
    assert [(i.path, i.message) for i in validate_document(doc)] == [("/tasks/0/timeout", "NaN is not a JSON number")]


def test_an_integer_literal_longer_than_pythons_limit_is_an_issue_not_a_value_error() -> None:
    """Found by reading parse_document: json.loads raises a plain ValueError past 4,300 digits."""
    doc, issues = parse_document('{"format": "taskloom/v1", "n": ' + "7" * 5000 + "}")
    assert doc is None and len(issues) == 1 and "number is too long" in issues[0].message


def test_a_lone_surrogate_escape_is_an_issue_not_a_unicode_error_when_stored(ws: Workspace) -> None:
    """Found by reading the store: ``"\\ud800"`` is valid JSON, but saving its canonical text as UTF-8
    raised UnicodeEncodeError (a 500 from the API). Now an issue, itself printable."""
    raw = b'{"format": "taskloom/v1", "name": "s", "title": "a\\ud800", "tasks": [{"id": "a", "type": "noop"}]}'
    with pytest.raises(UserError) as caught:
        ws.save(ws.check_document(raw))
    [issue] = caught.value.issues
    assert issue.path == "/title" and "unpaired surrogate (\\ud800)" in issue.message
    str(issue).encode("utf-8")
    assert ws.db.execute("SELECT count(*) FROM documents").fetchone()[0] == 0
