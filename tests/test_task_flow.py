"""transform, delay, subworkflow and foreach, run for real."""

from __future__ import annotations

import json
import time

from taskloom.core.validation import validate_document

from clitools import query, start, taskloom, wait_for, write_flow
from conftest import make_doc


def test_transform_composes_and_filters_with_jmespath(run_doc):
    doc = make_doc(
        [
            {"id": "scores", "type": "python", "params": {"code": "def main():\n    return [{'n': 'a', 's': 0.2}, {'n': 'b', 's': 0.95}]"}},
            {"id": "pick", "type": "transform", "params": {
                "value": {"items": "{{ tasks.scores.output }}", "threshold": "{{ params.t }}"},
                "query": "items[?s > `0.9`].n"}},
            {"id": "compose", "type": "transform", "params": {"value": {"high": "{{ tasks.pick.output }}", "note": "n={{ tasks.pick.output | length }}"}}},
        ],
        [{"from": "scores", "to": "pick"}, {"from": "pick", "to": "compose"}],
        params={"t": {"type": "number", "default": 0.9}},
    )
    run = run_doc(doc)
    assert run.tasks["pick"].output == ["b"]
    assert run.tasks["compose"].output == {"high": ["b"], "note": "n=1"}


def test_bad_jmespath_fails_without_spending_retries(run_doc):
    doc = make_doc([{"id": "t", "type": "transform", "retries": 3, "retry_delay": 0, "params": {"value": [1], "query": "[?"}}])
    run = run_doc(doc)
    assert run.tasks["t"].status == "failed" and "JMESPath query" in run.tasks["t"].error
    assert len(run.tasks["t"].attempt_list) == 1


def test_delay_waits_without_holding_a_slot(run_doc, tmp_path):
    doc = make_doc(
        [
            {"id": "wait", "type": "delay", "params": {"seconds": 1}},
            {"id": "busy", "type": "shell", "params": {"command": "sleep 0.3; date +%s.%N"}},
            {"id": "after", "type": "noop"},
        ],
        [{"from": "wait", "to": "after"}],
        settings={"max_parallel_tasks": 1},
    )
    started = time.time()
    run = run_doc(doc)
    assert run.status == "succeeded"
    # with one slot, busy ran while wait was waiting: it finished long before the delay ended
    assert float(run.tasks["busy"].output) - started < 0.9
    wait = run.tasks["wait"].attempt_list[0]
    assert wait.started - started >= 0.95


def test_delay_until_an_instant_and_bad_values(run_doc):
    soon = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 1.5))
    run = run_doc(make_doc([{"id": "w", "type": "delay", "params": {"until": soon}}]))
    assert run.status == "succeeded"
    issues = validate_document(make_doc([{"id": "w", "type": "delay", "params": {}}]))
    assert issues and issues[0].path == "/tasks/0/params"


def test_delay_survives_a_restart(tmp_path, home):
    doc = make_doc([{"id": "w", "type": "delay", "params": {"seconds": 3}}, {"id": "n", "type": "noop"}],
                   [{"from": "w", "to": "n"}])
    runner = start(home, "run", write_flow(tmp_path, doc), cwd=tmp_path)
    due = wait_for(lambda: query(home, "SELECT next_attempt_at FROM task_states WHERE task_id = 'w'")[0][0],
                   what="the delay to be planned")
    runner.kill()
    runner.wait()
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    resumed = taskloom(home, "resume", str(run_id), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    started = query(home, "SELECT started FROM attempts WHERE run_id = ? AND task_id = 'w'", run_id)
    assert len(started) == 1 and started[0][0] >= due - 0.05  # it waited for the planned instant, once


def test_subworkflow_runs_a_stored_workflow(tmp_path, home):
    child = make_doc(
        [{"id": "double", "type": "python", "params": {"code": "def main(x):\n    return x * 2", "args": {"x": "{{ params.x }}"}}}],
        name="child", params={"x": {"type": "integer"}},
    )
    failing = make_doc([{"id": "boom", "type": "shell", "params": {"command": "exit 3"}}], name="failing")
    parent = make_doc(
        [
            {"id": "call", "type": "subworkflow", "params": {"workflow": "child", "params": {"x": 21}}},
            {"id": "use", "type": "shell", "params": {"command": "echo {{ tasks.call.output.double }}"}},
            {"id": "bad", "type": "subworkflow", "params": {"workflow": "failing"}},
            {"id": "missing", "type": "subworkflow", "params": {"workflow": "nope"}},
        ],
        [{"from": "call", "to": "use"}],
        name="parent",
    )
    for doc in (child, failing, parent):
        assert taskloom(home, "import", write_flow(tmp_path, doc, f"{doc['name']}.json")).returncode == 0
    result = json.loads(taskloom(home, "run", "parent", "--json", cwd=tmp_path).stdout)
    assert result["tasks"]["call"]["output"] == {"double": 42}
    assert result["tasks"]["use"]["output"] == 42
    assert "workflow 'failing' failed" in result["tasks"]["bad"]["error"]
    assert "no workflow named 'nope'" in result["tasks"]["missing"]["error"]
    runs = json.loads(taskloom(home, "runs", "--json").stdout)
    children = [r for r in runs if r["trigger"] == "subworkflow"]
    assert {r["workflow"] for r in children} == {"child", "failing"}
    assert all(r["parent_run_id"] == result["run_id"] for r in children)


def test_a_workflow_calling_itself_stops(tmp_path, home):
    loop = make_doc([{"id": "again", "type": "subworkflow", "params": {"workflow": "loop"}}], name="loop")
    taskloom(home, "import", write_flow(tmp_path, loop))
    result = json.loads(taskloom(home, "run", "loop", "--json", cwd=tmp_path, timeout=120).stdout)
    assert result["status"] == "failed"
    runs = json.loads(taskloom(home, "runs", "-n", "50", "--json").stdout)
    assert len(runs) == 9  # the run itself and 8 nested levels, then the guard
    assert any("nested 8 deep" in (r["tasks"]["again"]["error"] or "") for r in runs)


def test_foreach_runs_items_in_order_with_bounded_concurrency(run_doc, tmp_path):
    log = tmp_path / "spans"
    doc = make_doc(
        [
            {"id": "list", "type": "transform", "params": {"value": [1, 2, 3, 4, 5, 6]}},
            {"id": "each", "type": "foreach", "params": {
                "items": "{{ tasks.list.output }}", "concurrency": 2,
                "task": {"type": "shell", "params": {
                    "command": f"echo start >> {log}; sleep 0.2; echo end >> {log}; echo $(({{{{ item }}}} * 10 + {{{{ index }}}}))"}}}},
        ],
        [{"from": "list", "to": "each"}],
    )
    run = run_doc(doc)
    assert run.status == "succeeded", run.tasks["each"].error
    assert run.tasks["each"].output == [10, 21, 32, 43, 54, 65]
    level = peak = 0
    for line in log.read_text().split():
        level += 1 if line == "start" else -1
        peak = max(peak, level)
    assert peak == 2


def test_foreach_failure_and_continue_on_error(run_doc):
    inner = {"type": "python", "params": {"code": "def main(x):\n    if x == 2:\n        raise ValueError('two')\n    return x", "args": {"x": "{{ item }}"}}}
    strict = run_doc(make_doc([{"id": "each", "type": "foreach", "params": {"items": [1, 2, 3], "task": inner, "concurrency": 1}}]))
    assert strict.tasks["each"].status == "failed"
    assert "item 1 of 3 failed: ValueError: two" in strict.tasks["each"].error
    lenient = run_doc(make_doc([{"id": "each", "type": "foreach", "params": {
        "items": [1, 2, 3], "task": inner, "continue_on_error": True}}], name="lenient"))
    assert lenient.tasks["each"].status == "succeeded"
    assert lenient.tasks["each"].output == [1, None, 3]


def test_foreach_validation_checks_the_inner_task():
    bad_type = make_doc([{"id": "e", "type": "foreach", "params": {"items": [1], "task": {"type": "shel", "params": {}}}}])
    assert [i.path for i in validate_document(bad_type)] == ["/tasks/0/params/task/type"]
    bad_params = make_doc([{"id": "e", "type": "foreach", "params": {"items": [1], "task": {"type": "shell", "params": {}}}}])
    assert [i.path for i in validate_document(bad_params)] == ["/tasks/0/params/task/params"]
    item_ok = make_doc([{"id": "e", "type": "foreach", "params": {"items": [1], "task": {"type": "shell", "params": {"command": "echo {{ item }} {{ index }}"}}}}])
    assert validate_document(item_ok) == []
    item_outside = make_doc([{"id": "e", "type": "shell", "params": {"command": "echo {{ item }}"}}])
    assert [i.message for i in validate_document(item_outside)] == ["template uses unknown name 'item'"]
