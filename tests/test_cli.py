"""The ``taskloom`` command line: commands, exit codes and the stable ``--json`` shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from taskloom.core.model import canonical_json
from taskloom.storage.store import Workspace
from taskloom.ui.cli.main import cli

from clitools import query
from conftest import ROOT, make_doc

TASKLOOM = str(Path(sys.executable).with_name("taskloom"))


@pytest.fixture
def invoke(home):
    runner = CliRunner()

    def call(*args: str, input: str | None = None):
        return runner.invoke(cli, ["--home", str(home), *args], input=input, catch_exceptions=False)

    return call


@pytest.fixture
def flow_file(tmp_path):
    def write(doc, name="flow.json"):
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return str(path)

    return write


OK_DOC = make_doc(
    [
        {"id": "hello", "type": "shell", "params": {"command": "echo hello {{ params.who }}"}, "position": {"x": 1, "y": 2}},
        {"id": "after", "type": "noop"},
        {"id": "never", "type": "noop"},
    ],
    [{"from": "hello", "to": "after"}, {"from": "hello", "to": "never", "on": "failure"}],
    name="greeter",
    params={"who": {"type": "string", "default": "world"}, "n": {"type": "integer", "default": 1}},
)


def test_validate_valid_and_invalid(invoke, flow_file):
    ok = invoke("validate", flow_file(OK_DOC))
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = dict(OK_DOC, tasks=[{"id": "x", "type": "shel", "params": {"command": "true"}}], edges=[])
    result = invoke("validate", flow_file(bad), "--json")
    assert result.exit_code == 1
    issues = json.loads(result.output)
    assert issues and set(issues[0]) == {"path", "message", "hint"}
    assert any(i["path"] == "/tasks/0/type" and "shell" in i["hint"] for i in issues)


def test_validate_invalid_json_names_line_and_column(invoke, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "taskloom/v1",\n  "name": "x"\n  "tasks": []\n}')
    result = invoke("validate", str(path))
    assert result.exit_code == 1
    assert "line 4" in result.output and "column 3" in result.output


def test_validate_missing_file_is_a_clear_error(invoke, tmp_path):
    result = invoke("validate", str(tmp_path / "nope.json"))
    assert result.exit_code == 1
    assert "cannot read" in result.output and "Traceback" not in result.output


def test_schema_prints_the_published_schema(invoke):
    result = invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads((ROOT / "assets/schema/workflow-v1.json").read_text())


def test_import_list_export_versions(invoke, flow_file, tmp_path):
    first = invoke("import", flow_file(OK_DOC), "--json")
    assert first.exit_code == 0
    assert json.loads(first.output)[0] | {"file": None} == {"file": None, "name": "greeter", "version": 1, "created": True}
    again = invoke("import", flow_file(OK_DOC))
    assert "unchanged" in again.output
    changed = dict(OK_DOC, title="Greeter v2")
    assert json.loads(invoke("import", flow_file(changed), "--json").output)[0]["version"] == 2
    listed = json.loads(invoke("list", "--json").output)
    assert [(w["name"], w["version"], w["paused"]) for w in listed] == [("greeter", 2, False)]
    exported = invoke("export", "greeter", "--version", "1").output
    assert exported == canonical_json(OK_DOC)
    assert json.loads(exported)["tasks"][0]["position"] == {"x": 1, "y": 2}
    out = tmp_path / "out.json"
    assert invoke("export", "greeter", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["title"] == "Greeter v2"
    missing = invoke("export", "nobody")
    assert missing.exit_code == 1 and "no workflow named 'nobody'" in missing.output


def test_invalid_import_stores_nothing(invoke, flow_file):
    invoke("import", flow_file(OK_DOC))
    broken = dict(OK_DOC, edges=[{"from": "hello", "to": "ghost"}])
    result = invoke("import", flow_file(broken))
    assert result.exit_code == 1
    assert "/edges/0/to" in result.output and "nothing stored" in result.output
    assert json.loads(invoke("list", "--json").output)[0]["version"] == 1


def test_run_stored_workflow_json_shape_and_params(invoke, flow_file):
    invoke("import", flow_file(OK_DOC))
    result = invoke("run", "greeter", "-p", "who=taskloom", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"run_id", "status", "tasks"} <= set(data)
    assert data["status"] == "succeeded"
    assert set(data["tasks"]["hello"]) >= {"status", "attempts", "output", "error"}
    assert data["tasks"]["hello"]["output"] == "hello taskloom"
    assert data["tasks"]["never"]["status"] == "skipped"
    runs = json.loads(invoke("runs", "greeter", "--json").output)
    assert {"id", "workflow", "version", "status", "trigger", "logical_time", "started", "ended"} <= set(runs[0])
    assert runs[0]["id"] == data["run_id"] and runs[0]["version"] == 1 and runs[0]["params"]["who"] == "taskloom"
    assert runs[0]["tasks"]["never"]["skip_reason"] == "upstream 'hello' succeeded and edge is 'failure'"


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "nobody=1"], "unknown parameter 'nobody'"),
        (["-p", "n=three"], "'three' is not an integer"),
        (["-p", "n"], "must be written key=value"),
    ],
)
def test_bad_params_are_refused_before_anything_runs(invoke, flow_file, args, message):
    invoke("import", flow_file(OK_DOC))
    result = invoke("run", "greeter", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert json.loads(invoke("runs", "--json").output) == []


def test_run_file_records_the_run_without_storing_the_workflow(invoke, flow_file):
    result = invoke("run", flow_file(OK_DOC))
    assert result.exit_code == 0
    assert json.loads(invoke("list", "--json").output) == []
    runs = json.loads(invoke("runs", "--json").output)
    assert runs[0]["workflow"] == "greeter" and runs[0]["version"] is None


def test_failed_run_exits_1_and_logs_explain(invoke, flow_file):
    doc = make_doc(
        [{"id": "boom", "type": "shell", "params": {"command": "echo about to fail; exit 4"}}, {"id": "next", "type": "noop"}],
        [{"from": "boom", "to": "next"}],
    )
    result = invoke("run", flow_file(doc))
    assert result.exit_code == 1
    run_id = json.loads(invoke("runs", "--json").output)[0]["id"]
    logs = invoke("logs", str(run_id))
    assert "about to fail" in logs.output
    assert "next skipped: upstream 'boom' failed and edge is 'success'" in logs.output
    only = invoke("logs", str(run_id), "--task", "next")
    assert "about to fail" not in only.output
    assert invoke("logs", "999").exit_code == 1


def test_run_unknown_name_lists_what_exists(invoke, flow_file):
    invoke("import", flow_file(OK_DOC))
    result = invoke("run", "greter")
    assert result.exit_code == 1 and "greeter" in result.output


def test_real_console_script_runs_an_example(home):
    """The installed ``taskloom`` script, in a real process, on a shipped example."""
    env = {"PATH": "/usr/bin:/bin", "TASKLOOM_HOME": str(home), "HOME": str(home)}
    imported = subprocess.run(
        [TASKLOOM, "import", *map(str, sorted((ROOT / "assets/examples").glob("*.json")))],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    result = subprocess.run(
        [TASKLOOM, "run", "hello", "-p", "who=CI", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tasks"]["repeat"]["output"] == ["hello CI #1", "hello CI #2", "hello CI #3"]
    assert data["tasks"]["shrug"]["status"] == "skipped"
    assert data["tasks"]["done"]["status"] == "succeeded"


# -- what a new user hit: exit codes, markup, pipes ----------------------------------------------


def test_trigger_without_a_scheduler_exits_1_and_says_how_to_start_one(invoke, flow_file):
    invoke("import", flow_file(OK_DOC))
    result = invoke("trigger", "greeter")
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message, message
    assert "no scheduler is running" in message and "taskloom scheduler" in message
    runs = json.loads(invoke("runs", "greeter", "--json").output)
    assert [r["status"] for r in runs] == ["queued"]  # it stays queued for the next scheduler


def test_trigger_with_a_live_scheduler_queues_the_run_without_signalling_it(invoke, flow_file, home):
    """A live lease, even held on another host: the scheduler notices the new row by itself."""
    from taskloom.storage.scheduling import acquire_lease

    invoke("import", flow_file(OK_DOC))
    ws = Workspace(home)
    try:
        acquire_lease(ws.db, "elsewhere", ttl=60, version="test")
    finally:
        ws.close()
    query(home, "UPDATE scheduler_lease SET host = 'another-host'")
    result = invoke("trigger", "greeter")
    assert result.exit_code == 0, result.output
    assert "run 1 of greeter queued" in result.stdout


def test_webhooks_without_a_scheduler_uses_the_default_address_and_says_so(invoke, flow_file):
    invoke("import", flow_file(dict(OK_DOC, triggers=[{"id": "push", "type": "webhook"}])))
    result = invoke("webhooks", "greeter", "--json")
    assert result.exit_code == 0
    assert [h["url"] for h in json.loads(result.stdout)] == ["http://127.0.0.1:8765/hooks/greeter/push"]
    assert "no running scheduler serves the API" in result.stderr and "default address" in result.stderr


def test_user_text_in_brackets_is_printed_not_taken_as_markup(invoke, flow_file, tmp_path):
    titled = dict(OK_DOC, title="scores [bold]draft[/bold] [cut 3 bytes]")
    path = tmp_path / "[draft] flow.json"
    path.write_text(json.dumps(titled))
    imported = invoke("import", str(path))
    assert f"({path})" in imported.output
    assert "scores [bold]draft[/bold] [cut 3 bytes]" in invoke("list").output
    assert f"{path}: valid" in invoke("validate", str(path)).output
    assert f"{path} has no webhook trigger" in invoke("webhooks", str(path)).output
    missing = invoke("validate", str(tmp_path / "no[x]such.json"))
    assert missing.exit_code == 1 and "no[x]such.json" in missing.stderr


def test_tables_written_to_a_pipe_keep_each_row_on_one_line(home, tmp_path):
    title = "Copy the new rows of every table of the warehouse into the reporting database, then tell the team"
    path = tmp_path / "long.json"
    path.write_text(json.dumps(dict(OK_DOC, title=title)))
    env = {"PATH": "/usr/bin:/bin", "TASKLOOM_HOME": str(home), "HOME": str(home)}
    assert subprocess.run([TASKLOOM, "import", str(path)], env=env, capture_output=True, timeout=60).returncode == 0
    listed = subprocess.run([TASKLOOM, "list"], env=env, capture_output=True, text=True, timeout=60)
    rows = [line for line in listed.stdout.splitlines() if "greeter" in line]
    assert len(rows) == 1 and title in rows[0], listed.stdout
    assert len(listed.stdout.splitlines()) == 2  # the header and the one row
