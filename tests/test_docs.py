"""The docs keep up with the code: every task type and CLI command is documented, every example validates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from taskloom.core.schema import TRIGGER_TYPES
from taskloom.core.specs import BUILTIN_TYPES
from taskloom.core.validation import validate_document
from taskloom.storage.outputs import DEFAULT_MAX_OUTPUT_BYTES, PREVIEW_CHARS, SPILL_KEY, OutputCodec
from taskloom.ui.cli.main import cli

from conftest import ROOT

DOCS = ROOT / "docs"
PAGE_OF = {"sql_copy": "sql"}


def json_blocks(text: str) -> list[dict]:
    """The complete workflows among a page's JSON code blocks."""
    docs = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    return [d for d in docs if isinstance(d, dict) and "format" in d]


@pytest.mark.parametrize("task_type", BUILTIN_TYPES, ids=lambda t: t.name)
def test_every_task_type_has_a_page_with_a_valid_example(task_type):
    page = DOCS / "tasks" / f"{PAGE_OF.get(task_type.name, task_type.name)}.md"
    assert page.is_file(), f"document {task_type.name} in {page}"
    examples = json_blocks(page.read_text())
    assert any(any(t["type"] == task_type.name for t in doc["tasks"]) for doc in examples), (
        f"{page} needs a complete example workflow using {task_type.name}"
    )
    for doc in examples:
        issues = validate_document(doc)
        if task_type.placeholder:  # never valid by design: the example must fail for its placeholders only
            placeholders = [t["id"] for t in doc["tasks"] if t["type"] == task_type.name]
            assert [i.path for i in issues] == [f"/tasks/{doc['tasks'].index(t)}/type" for t in doc["tasks"]
                                                if t["id"] in placeholders], issues
            assert all("is a placeholder for" in i.message for i in issues)
        else:
            assert issues == [], f"an example in {page} does not validate"


@pytest.mark.parametrize("task_type", BUILTIN_TYPES, ids=lambda t: t.name)
def test_every_parameter_has_a_title_and_description_for_the_editor(task_type):
    for name, spec in task_type.params_schema.get("properties", {}).items():
        assert spec.get("title"), f"{task_type.name}.{name} has no title"
        assert spec.get("description"), f"{task_type.name}.{name} has no description"
    assert task_type.icon and task_type.category and task_type.description


def test_every_cli_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"taskloom {name}" in readme, f"README.md does not mention taskloom {name}"


def test_format_reference_examples_validate():
    for doc in json_blocks((DOCS / "format.md").read_text()):
        assert validate_document(doc) == []


def test_the_quick_start_is_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n\n```sh\n(.*?)```", readme, re.DOTALL).group(1)
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make run", "make test"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("args", "ui_port", "api_port"), [((), "8501", "8765"),
                                                        (("UI_PORT=8601", "API_PORT=8766"), "8601", "8766")])
def test_make_run_serves_on_the_ports_it_is_given(args, ui_port, api_port):
    """``make run UI_PORT=8601 API_PORT=8766``, as the README says; -n prints the commands without running them."""
    printed = subprocess.run(["make", "-n", "-C", str(ROOT), "run", *args], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    serve = [line for line in printed.splitlines() if "taskloom serve" in line]
    assert serve and serve[-1].endswith(f"taskloom serve --ui-port {ui_port} --port {api_port}"), printed
    options = {opt for param in cli.commands["serve"].params for opt in param.opts}
    assert {"--ui-port", "--port"} <= options
    assert "make run UI_PORT=8601 API_PORT=8766" in (ROOT / "README.md").read_text()


def _format_section(title: str) -> str:
    text = (DOCS / "format.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("task_type", BUILTIN_TYPES, ids=lambda t: t.name)
def test_the_format_reference_lists_and_links_every_task_type(task_type):
    page = f"tasks/{PAGE_OF.get(task_type.name, task_type.name)}.md"
    rows = [line for line in _format_section("Tasks").splitlines() if f"`{task_type.name}`" in line and page in line]
    assert rows, f"docs/format.md's task types table has no row for {task_type.name} linking {page}"


@pytest.mark.parametrize("trigger_type", TRIGGER_TYPES)
def test_the_format_reference_lists_every_trigger_type(trigger_type):
    rows = [line for line in _format_section("Triggers").splitlines() if line.startswith(f"| `{trigger_type}` |")]
    assert len(rows) == 1, f"docs/format.md's triggers table needs one row for {trigger_type}"
    assert "(scheduling.md#" in rows[0] or trigger_type == "manual"


def test_the_spilled_output_shape_is_documented_as_it_is_stored(tmp_path):
    codec = OutputCodec(tmp_path, max_bytes=10)
    stored = json.loads(codec.encode(["x" * 100], run_id=12, task_id="extract", attempt=1))
    documented = (DOCS / "format.md").read_text().split("### Large outputs: `$taskloom_spilled`", 1)[1]
    example = json.loads(re.search(r"```json\n(.*?)```", documented, re.DOTALL).group(1))
    assert list(example) == list(stored) == [SPILL_KEY]
    assert set(example[SPILL_KEY]) == set(stored[SPILL_KEY])
    for key in stored[SPILL_KEY]:
        assert f"| `{key}` |" in documented, f"docs/format.md does not explain {key}"
    assert f"{DEFAULT_MAX_OUTPUT_BYTES:,} bytes" in documented and f"{PREVIEW_CHARS:,} characters" in documented
    assert "docs/format.md#large-outputs-taskloom_spilled" in (ROOT / "README.md").read_text()


def test_links_between_the_docs_lead_to_files_that_exist():
    for page in [ROOT / "README.md", *DOCS.glob("*.md"), *DOCS.glob("tasks/*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}, which is missing"
