"""What every import shares: recognising the format, the placeholder task, literal text, layout, round trips."""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import pytest

from taskloom.core.importers import ConversionError, convert, detect_format, sniff
from taskloom.core.importers.common import iso_duration, literal, slug
from taskloom.core.model import canonical_json
from taskloom.storage.plugins import load_registry
from taskloom.core.schema import workflow_schema
from taskloom.core.templates import render_value
from taskloom.core.validation import validate_document
from taskloom.storage.store import UserError

from conftest import ROOT, make_doc

DATA = ROOT / "tests" / "data" / "import"
FIXTURES = ["scores.logicapp.json", "trycatch.logicapp.json", "arm.logicapp.json", "scores.n8n.json",
            "orders.n8n.json", "jobs.crontab"]


def replace_placeholders(doc: dict[str, Any]) -> dict[str, Any]:
    """What a user does after an import: each placeholder becomes a real task (here a no-op)."""
    out = copy.deepcopy(doc)
    for task in out["tasks"]:
        if task["type"] == "placeholder":
            task["type"] = "noop"
            del task["params"]
    return out


# -- recognising the format ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [
    ("scores.logicapp.json", "logicapps"), ("trycatch.logicapp.json", "logicapps"), ("arm.logicapp.json", "logicapps"),
    ("scores.n8n.json", "n8n"), ("orders.n8n.json", "n8n"), ("jobs.crontab", "crontab"),
])
def test_auto_recognises_each_format(name, kind):
    raw = (DATA / name).read_bytes()
    assert sniff(raw, name) == kind == detect_format(raw, name)
    assert convert(raw, filename=name).format == kind


def test_auto_recognises_taskloom_documents_and_leaves_them_alone():
    raw = (ROOT / "assets" / "examples" / "hello.json").read_bytes()
    assert sniff(raw, "hello.json") == "taskloom"
    conversion = convert(raw, filename="hello.json")
    assert conversion.format == "taskloom" and conversion.report == []
    assert conversion.documents == [json.loads(raw)]


@pytest.mark.parametrize(("raw", "words"), [
    (b'{"some": "json"}', "this JSON is not"),
    (b"hello\nworld\n", "not JSON and not a crontab"),
    (b'{"broken": ', "invalid JSON at line 1"),
])
def test_unrecognised_input_says_what_it_is_not(raw, words):
    assert sniff(raw, "x") is None
    with pytest.raises(ConversionError) as caught:
        convert(raw, filename="x")
    assert words in str(caught.value) and caught.value.issues[0].hint


@pytest.mark.parametrize(("raw", "source", "words"), [
    (b"", "auto", "the file is empty"),
    (b"@daily x\n\xff\xfe\n", "crontab", "invalid UTF-8"),
    (b'{"nodes": []}', "crontab", "this is JSON, not a crontab"),
    (b"@daily x", "excel", "unknown format"),
])
def test_input_that_cannot_be_read(raw, source, words):
    with pytest.raises(ConversionError, match=words):
        convert(raw, source)


# -- the placeholder task -------------------------------------------------------------------


PLACEHOLDER = {"id": "Slack", "type": "placeholder", "params": {
    "source": "n8n", "what": "n8n node 'Slack' (n8n-nodes-base.slack)", "reason": "no equivalent",
    "todo": "replace it with a notify task (channel 'webhook')",
    "original": {"parameters": {"text": "={{ $json.x }}", "more": "{% nonsense %}"}}}}


def test_a_placeholder_never_validates_and_says_what_to_replace_it_with():
    doc = make_doc([{"id": "a", "type": "noop"}, PLACEHOLDER], [{"from": "a", "to": "Slack"}])
    (issue,) = validate_document(doc)  # its original JSON is never read as templates
    assert issue.path == "/tasks/1/type"
    assert issue.message == ("task 'Slack' is a placeholder for n8n node 'Slack' (n8n-nodes-base.slack): no equivalent;"
                             " it cannot run")
    assert issue.hint == ("replace it with a notify task (channel 'webhook'); its original definition is in"
                          " params.original")


def test_a_placeholder_with_broken_params_still_reports_them():
    doc = make_doc([{"id": "p", "type": "placeholder", "params": {"source": "excel"}}])
    paths = [i.path for i in validate_document(doc)]
    assert "/tasks/0/type" in paths and "/tasks/0/params/source" in paths


def test_placeholders_cannot_be_stored_or_run(ws, tmp_path):
    doc = make_doc([PLACEHOLDER])
    with pytest.raises(UserError) as caught:
        ws.save(doc)
    assert "is a placeholder" in caught.value.issues[0].message
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError) as caught:
        ws.target(str(path))
    assert "is a placeholder" in caught.value.issues[0].message


def test_the_published_schema_knows_the_placeholder_type():
    schema = workflow_schema(load_registry())
    assert "placeholder" in schema["$defs"]["task"]["properties"]["type"]["enum"]


# -- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["plain", "{{ x }}", "a {% if %} b", "{# c #}", "{% endraw %} {{ y }}", "${#v}"])
def test_literal_text_renders_to_itself(text):
    assert render_value(literal(text), {}) == text


@pytest.mark.parametrize(("text", "seconds"), [("PT7S", 7), ("PT7.5S", 7.5), ("PT1H30M", 5400), ("P1D", 86400),
                                               ("P1W", 604800), ("PT", None), ("7 seconds", None), (7, None)])
def test_iso_durations(text, seconds):
    assert iso_duration(text) == seconds


@pytest.mark.parametrize(("text", "name"), [("My Flow!", "my-flow"), ("  ", "imported"), ("A_b-C", "a_b-c"),
                                            ("x" * 80, "x" * 64)])
def test_slugs(text, name):
    assert slug(text) == name


def test_converted_tasks_are_laid_out_without_overlap():
    (doc,) = convert((DATA / "trycatch.logicapp.json").read_text()).documents
    spots = [(t["position"]["x"], t["position"]["y"]) for t in doc["tasks"]]
    assert len(set(spots)) == len(spots)


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_import_store_export_import_gives_the_same_workflow(name, ws, tmp_path):
    raw = (DATA / name).read_bytes()
    for doc in convert(raw, filename=name).documents:
        doc = replace_placeholders(doc)
        info, created = ws.save(doc)
        assert created
        exported = canonical_json(ws.export(doc["name"]))
        assert exported == canonical_json(doc)
        path = tmp_path / f"{doc['name']}.json"
        path.write_text(exported)
        again, created = ws.import_file(path)
        assert (again.version, created) == (info.version, False)  # the same workflow: no new version
        assert canonical_json(ws.export(doc["name"])) == exported
    # converting the source again gives the same workflows: re-importing stores nothing new
    for doc in convert(raw, filename=name).documents:
        assert ws.save(replace_placeholders(doc))[1] is False


# -- the docs' examples are what the importers give -------------------------------------------------


@pytest.mark.parametrize(("page", "filename"), [("logicapps.md", "scores.json"), ("n8n.md", "hourly.json"),
                                                ("crontab.md", "my.crontab")])
def test_each_import_page_shows_what_its_example_converts_to(page, filename):
    text = (ROOT / "docs" / "importers" / page).read_text()
    source = re.findall(r"Input \(`[^`]+`\):\n\n```\w+\n(.*?)```", text, re.DOTALL)
    result = re.findall(r"```json\n(.*?)```", text[text.index("\nResult"):], re.DOTALL)
    assert source and result, f"{page} needs an Input block and a Result block"
    expected = json.loads(result[0])
    got = convert(source[0], filename=filename).documents
    assert got == (expected if isinstance(expected, list) else [expected])


def test_the_placeholder_page_links_every_import_page():
    text = (ROOT / "docs" / "tasks" / "placeholder.md").read_text()
    for page in ("logicapps", "n8n", "crontab"):
        assert f"../importers/{page}.md" in text


# -- never a crash ---------------------------------------------------------------------------------

_ODD_VALUES = [None, 0, 1.5, "", "x", "@", "@{", "={{ $json }}", [], {}, [1], {"a": 1}, True, "@body('Nope')", "PTX",
               [None]]


def _mangle(node: Any, rng: random.Random) -> None:
    """Replace, delete or descend into one random member of ``node``."""
    if not isinstance(node, (dict, list)) or not node:
        return
    key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
    roll = rng.random()
    if roll < 0.3:
        node[key] = copy.deepcopy(rng.choice(_ODD_VALUES))
    elif roll < 0.45:
        del node[key]
    else:
        _mangle(node[key], rng)


@pytest.mark.parametrize("name", [f for f in FIXTURES if f.endswith(".json")])
def test_importing_never_crashes_on_a_mangled_file(name):
    """A hand-edited file gives a conversion (maybe with placeholders) or a ConversionError; nothing else."""
    rng = random.Random(name)
    original = json.loads((DATA / name).read_text())
    for _ in range(300):
        data = copy.deepcopy(original)
        for _ in range(rng.randint(1, 6)):
            _mangle(data, rng)
        try:
            conversion = convert(json.dumps(data), filename=name)
        except ConversionError as exc:
            assert exc.issues and all(i.message for i in exc.issues)
            continue
        for doc in conversion.documents:
            validate_document(doc)


def test_importing_never_crashes_on_odd_crontab_lines():
    rng = random.Random(7)
    words = ["*", "*/5", "0", "61", "1-5", "mon", "@daily", "@reboot", "@nope", "%", "\\%", "{{", "${#x}", "'", '"',
             "/bin/x.sh", "cd", "&&", "X=1", "CRON_TZ=Europe/Paris", "CRON_TZ=Bad", "SHELL=/bin/zsh", "#", "L", "7"]
    for _ in range(500):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 5)))
        try:
            convert(text, "crontab")
        except ConversionError as exc:
            assert exc.issues
