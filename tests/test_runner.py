"""The runner end to end: real SQLite in tmp_path, real child processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from taskloom.core.states import RunState

from conftest import make_doc

pytestmark = pytest.mark.both_backends


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def test_data_flows_between_shell_python_and_condition(run_doc):
    doc = make_doc(
        [
            {"id": "a", "type": "shell", "params": {"command": "echo hi; echo '{\"rows\": [1, 2, 3]}'"}},
            {"id": "b", "type": "python", "params": {
                "code": "def main(rows, n):\n    return {'total': sum(rows) * n, 'kind': type(rows).__name__}",
                "args": {"rows": "{{ tasks.a.output.rows }}", "n": "{{ params.n }}"}}},
            {"id": "c", "type": "condition", "params": {"expression": "tasks.b.output.total > 10"}},
        ],
        [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}],
        params={"n": {"type": "integer", "default": 1}},
    )
    run = run_doc(doc, {"n": "2"})
    assert run.status == "succeeded"
    assert run.tasks["a"].output == {"rows": [1, 2, 3]}
    # a template that is exactly one {{ }} keeps its JSON type: the list arrived as a list
    assert run.tasks["b"].output == {"total": 12, "kind": "list"}
    assert run.tasks["c"].output is True
    assert run.tasks["b"].attempt_list[0].params["args"] == {"rows": [1, 2, 3], "n": 2}


def test_mixed_text_template_renders_json_for_containers(run_doc):
    doc = make_doc(
        [
            {"id": "a", "type": "python", "params": {"code": "def main():\n    return {'x': [1, 'y']}"}},
            {"id": "b", "type": "shell", "params": {"command": "echo 'got {{ tasks.a.output }}'"}},
        ],
        [{"from": "a", "to": "b"}],
    )
    run = run_doc(doc)
    assert run.tasks["b"].output == 'got {"x": [1, "y"]}'


def test_run_home_is_the_taskloom_home_and_without_a_store_fails_the_task(run_doc, ws, tmp_path):
    doc = make_doc([{"id": "a", "type": "transform", "params": {"value": "{{ run.home }}/data.db"}}])
    assert run_doc(doc).tasks["a"].output == f"{Path(os.path.abspath(ws.home))}/data.db"

    from taskloom.runtime.execution import standalone_runner
    from taskloom.core.model import Workflow
    from taskloom.storage.journal import SqliteJournal

    run_id, _ = ws.start_run(ws.target(str(tmp_path / "test-flow.json")), {})
    outcome = standalone_runner(Workflow.from_document(doc), SqliteJournal(ws.db), cwd=str(tmp_path)).run(
        run_id, params={}, logical_time=0)
    assert outcome is RunState.FAILED  # a runner without a store has no home: never a path from the root
    assert "home" in ws.run(run_id).tasks["a"].error


def test_unhandled_failure_fails_the_run_and_skips_downstream(run_doc):
    doc = make_doc(
        [
            {"id": "a", "type": "shell", "params": {"command": "echo oops >&2; exit 3"}},
            {"id": "b", "type": "noop"},
        ],
        [{"from": "a", "to": "b"}],
    )
    run = run_doc(doc)
    assert run.status == "failed"
    assert run.tasks["a"].status == "failed"
    assert run.tasks["a"].attempt_list[0].exit_code == 3
    assert run.tasks["a"].error == "exited with status 3"
    assert run.tasks["b"].status == "skipped"
    assert run.tasks["b"].skip_reason == "upstream 'a' failed and edge is 'success'"


def test_handled_failure_runs_the_catch_branch_and_succeeds(run_doc):
    doc = make_doc(
        [
            {"id": "a", "type": "shell", "params": {"command": "exit 1"}},
            {"id": "on_ok", "type": "noop"},
            {"id": "catch", "type": "shell", "params": {"command": "echo handled"}},
        ],
        [{"from": "a", "to": "on_ok"}, {"from": "a", "to": "catch", "on": "failure"}],
    )
    run = run_doc(doc)
    assert run.status == "succeeded"
    assert run.tasks["catch"].status == "succeeded"
    assert run.tasks["on_ok"].status == "skipped"


def test_retries_record_every_attempt_with_its_own_logs(run_doc, ws, tmp_path):
    counter = tmp_path / "count"
    doc = make_doc([{
        "id": "flaky", "type": "shell", "retries": 3, "retry_delay": 0.2, "retry_backoff": 2,
        "params": {"command": f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
                              "echo attempt $n; [ $n -ge 3 ]"},
    }])
    started = time.monotonic()
    run = run_doc(doc)
    elapsed = time.monotonic() - started
    assert run.status == "succeeded"
    attempts = run.tasks["flaky"].attempt_list
    assert [a.status for a in attempts] == ["failed", "failed", "succeeded"]
    assert run.tasks["flaky"].attempts == 3
    assert elapsed >= 0.2 + 0.4  # the backoff was honoured: 0.2 s, then 0.4 s
    gap = attempts[2].started - attempts[1].ended
    assert gap >= 0.39
    from taskloom.storage.runs import iter_logs

    lines = [(l["attempt"], l["stream"], l["line"]) for l in iter_logs(ws.db, run.id)]
    assert (1, "stdout", "attempt 1") in lines and (3, "stdout", "attempt 3") in lines
    assert any(s == "system" and "retry 2/3 will start 0.4 second(s) from now" in t for _, s, t in lines)


def test_retries_exhausted_fail_the_task(run_doc):
    doc = make_doc([{"id": "t", "type": "shell", "retries": 1, "retry_delay": 0, "params": {"command": "exit 7"}}])
    run = run_doc(doc)
    assert run.status == "failed"
    assert [a.exit_code for a in run.tasks["t"].attempt_list] == [7, 7]


def test_timeout_kills_the_shell_tasks_grandchildren(run_doc, tmp_path):
    pids = tmp_path / "pids"
    doc = make_doc([{
        "id": "slow", "type": "shell", "timeout": 1,
        "params": {"command": f"sleep 60 & echo $! >> {pids}; sh -c 'echo $$ >> {pids}; sleep 60'"},
    }])
    started = time.monotonic()
    run = run_doc(doc)
    assert time.monotonic() - started < 10
    assert run.status == "failed"
    assert run.tasks["slow"].status == "timed_out"
    assert "timed out after 1 s" in run.tasks["slow"].error
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    deadline = time.monotonic() + 3
    while any(pid_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in children)


def test_timed_out_attempt_is_retried_and_can_be_handled(run_doc):
    doc = make_doc(
        [
            {"id": "slow", "type": "python", "timeout": 0.5, "retries": 1, "retry_delay": 0,
             "params": {"code": "import time\ndef main():\n    time.sleep(30)"}},
            {"id": "fallback", "type": "noop"},
        ],
        [{"from": "slow", "to": "fallback", "on": "failure"}],
    )
    run = run_doc(doc)
    assert [a.status for a in run.tasks["slow"].attempt_list] == ["timed_out", "timed_out"]
    assert run.tasks["fallback"].status == "succeeded"
    assert run.status == "succeeded"


def test_sandbox_escape_attempt_fails_the_task_clearly(run_doc, tmp_path):
    marker = tmp_path / "escaped"
    doc = make_doc([{
        "id": "evil", "type": "shell",
        "params": {"command": "echo {{ ''.__class__.__mro__[1].__subclasses__() }} > " + str(marker)},
    }])
    run = run_doc(doc)
    assert run.status == "failed"
    assert run.tasks["evil"].status == "failed"
    assert "unsafe" in run.tasks["evil"].error and "sandbox" in run.tasks["evil"].error
    assert not marker.exists()  # the command never ran


def test_python_task_errors_are_reported_with_traceback_in_logs(run_doc, ws):
    doc = make_doc([{"id": "p", "type": "python", "params": {"code": "def main():\n    raise KeyError('nope')"}}])
    run = run_doc(doc)
    assert run.tasks["p"].status == "failed"
    assert run.tasks["p"].error == "KeyError: 'nope'"
    from taskloom.storage.runs import iter_logs

    stderr = [l["line"] for l in iter_logs(ws.db, run.id) if l["stream"] == "stderr"]
    assert any("Traceback" in l for l in stderr) and any("KeyError" in l for l in stderr)


def test_python_callable_from_working_directory(run_doc, tmp_path):
    (tmp_path / "scoring.py").write_text("def predict(x):\n    return x * 2\n")
    doc = make_doc([{"id": "p", "type": "python", "params": {"callable": "scoring:predict", "args": {"x": 21}}}])
    run = run_doc(doc)
    assert run.tasks["p"].output == 42


def test_non_json_return_value_fails(run_doc):
    doc = make_doc([{"id": "p", "type": "python", "params": {"code": "def main():\n    return {1, 2}"}}])
    run = run_doc(doc)
    assert run.tasks["p"].status == "failed"
    assert "not JSON-serializable" in run.tasks["p"].error


def test_tasks_get_a_minimal_environment(run_doc, ws, monkeypatch):
    monkeypatch.setenv("TASKLOOM_TEST_LEAK", "secret-ish")
    doc = make_doc([{"id": "e", "type": "shell", "params": {"command": "env", "env": {"MINE": "1"}}}])
    run = run_doc(doc)
    from taskloom.storage.runs import iter_logs

    assert run.status == "succeeded"
    names = {l["line"].split("=", 1)[0] for l in iter_logs(ws.db, run.id)}
    assert "TASKLOOM_TEST_LEAK" not in names
    assert {"PATH", "MINE", "TASKLOOM_RUN_ID", "TASKLOOM_TASK_ID"} <= names
    assert names - {"PATH", "HOME", "LANG", "TZ", "MINE", "PWD", "SHLVL", "_", "OLDPWD"} <= {
        "TASKLOOM_RUN_ID", "TASKLOOM_TASK_ID", "TASKLOOM_ATTEMPT", "TASKLOOM_ATTEMPT_ID"}


def test_parallelism_is_bounded_by_max_parallel_tasks(run_doc, tmp_path):
    log = tmp_path / "spans"
    tasks = [
        {"id": f"t{i}", "type": "shell",
         "params": {"command": f"echo start $(date +%s.%N) >> {log}; sleep 0.3; echo end $(date +%s.%N) >> {log}"}}
        for i in range(6)
    ]
    run = run_doc(make_doc(tasks, settings={"max_parallel_tasks": 2}))
    assert run.status == "succeeded"
    events = sorted((float(ts), kind) for kind, ts in (line.split() for line in log.read_text().splitlines()))
    level = peak = 0
    for _, kind in events:
        level += 1 if kind == "start" else -1
        peak = max(peak, level)
    assert peak == 2


def test_run_timeout_stops_everything(run_doc):
    doc = make_doc(
        [
            {"id": "a", "type": "shell", "params": {"command": "sleep 30"}},
            {"id": "b", "type": "noop"},
        ],
        [{"from": "a", "to": "b"}],
        settings={"timeout": 1},
    )
    started = time.monotonic()
    run = run_doc(doc)
    assert time.monotonic() - started < 10
    assert run.status == "failed"
    assert "settings.timeout" in run.error
    assert run.tasks["a"].status == "timed_out"
    assert run.tasks["b"].status == "skipped"


def test_chatty_task_loses_no_line(run_doc, ws):
    doc = make_doc([{"id": "chatty", "type": "python", "params": {
        "code": "import sys\ndef main():\n    w = sys.stdout.write\n    for i in range(100000):\n        w(f'line {i}\\n')\n"}}])
    started = time.monotonic()
    run = run_doc(doc)
    elapsed = time.monotonic() - started
    assert run.status == "succeeded"
    count, first, last = ws.db.execute(
        "SELECT count(*), min(line), max(id) FROM logs WHERE run_id = ? AND stream = 'stdout'", [run.id]
    ).fetchone()
    assert count == 100_000
    lines = [r[0] for r in ws.db.execute("SELECT line FROM logs WHERE run_id = ? ORDER BY id", [run.id])]
    assert lines == [f"line {i}" for i in range(100_000)]
    assert elapsed < 10


def test_task_ids_that_shadow_dict_methods_resolve_to_the_task(run_doc):
    doc = make_doc(
        [
            {"id": "copy", "type": "python", "params": {"code": "def main():\n    return {'items': [1, 2]}"}},
            {"id": "use", "type": "shell", "params": {"command": "echo {{ tasks.copy.output.items | length }}"}},
        ],
        [{"from": "copy", "to": "use"}],
    )
    run = run_doc(doc)
    assert run.status == "succeeded"
    assert run.tasks["use"].output == 2


def test_python_callable_from_a_file_path(run_doc, tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "helpers.py").write_text("FACTOR = 3\n")
    (scripts / "score.py").write_text("from helpers import FACTOR\n\ndef predict(x):\n    return x * FACTOR\n")
    doc = make_doc([{"id": "p", "type": "python", "params": {"callable": "scripts/score.py:predict", "args": {"x": 5}}}])
    run = run_doc(doc)
    assert run.status == "succeeded", run.tasks["p"].error
    assert run.tasks["p"].output == 15
    missing = run_doc(make_doc([{"id": "p", "type": "python", "params": {"callable": "scripts/nope.py:predict"}}]))
    assert "no Python file" in missing.tasks["p"].error
