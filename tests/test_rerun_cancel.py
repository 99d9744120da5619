"""Re-run (whole, from a task, failed tasks) and cancel from another process."""

from __future__ import annotations

import json
import time

import pytest

from clitools import pid_alive, query, start, taskloom, wait_for, write_flow
from conftest import make_doc

pytestmark = pytest.mark.both_backends


def counted(path, then="true"):
    return {"command": f"echo x >> {path}; {then}"}


def count(path):
    return path.read_text().count("x") if path.exists() else 0


@pytest.fixture
def diamond(tmp_path):
    """extract -> (left, right) -> join; right fails until the file 'fixed' exists."""
    files = {name: tmp_path / name for name in ("extract", "left", "right", "join")}
    doc = make_doc(
        [
            {"id": "extract", "type": "shell", "params": counted(files["extract"], "echo '[1, 2, 3]'")},
            {"id": "left", "type": "shell", "params": counted(files["left"], "echo {{ tasks.extract.output | length }}")},
            {"id": "right", "type": "shell", "params": counted(files["right"], f"[ -e {tmp_path / 'fixed'} ]")},
            {"id": "join", "type": "shell", "params": counted(files["join"])},
        ],
        [{"from": "extract", "to": "left"}, {"from": "extract", "to": "right"},
         {"from": "left", "to": "join"}, {"from": "right", "to": "join"}],
        name="diamond",
        params={"n": {"type": "integer", "default": 1}},
    )
    return doc, files


def test_rerun_failed_reuses_everything_not_downstream_of_the_failure(tmp_path, home, diamond):
    doc, files = diamond
    first = taskloom(home, "run", write_flow(tmp_path, doc), "-p", "n=5", "--json", cwd=tmp_path)
    assert first.returncode == 1
    parent = json.loads(first.stdout)
    assert parent["tasks"]["right"]["status"] == "failed" and parent["tasks"]["join"]["status"] == "skipped"
    (tmp_path / "fixed").touch()
    again = taskloom(home, "rerun", str(parent["run_id"]), "--failed", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    child = json.loads(again.stdout)
    assert child["status"] == "succeeded"
    assert [count(files[t]) for t in ("extract", "left", "right", "join")] == [1, 1, 2, 1]
    assert child["tasks"]["left"]["output"] == 3  # reused output, not re-executed
    runs = json.loads(taskloom(home, "runs", "--json").stdout)
    newest = runs[0]
    assert newest["parent_run_id"] == parent["run_id"] and newest["trigger"] == "rerun"
    assert newest["params"] == {"n": 5}


def test_rerun_from_a_task_runs_it_and_its_downstream_only(tmp_path, home, diamond):
    doc, files = diamond
    (tmp_path / "fixed").touch()
    first = json.loads(taskloom(home, "run", write_flow(tmp_path, doc), "--json", cwd=tmp_path).stdout)
    assert first["status"] == "succeeded"
    again = taskloom(home, "rerun", str(first["run_id"]), "--from", "left", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [count(files[t]) for t in ("extract", "left", "right", "join")] == [1, 2, 1, 2]
    whole = taskloom(home, "rerun", str(first["run_id"]), cwd=tmp_path)
    assert whole.returncode == 0
    assert [count(files[t]) for t in ("extract", "left", "right", "join")] == [2, 3, 2, 3]


def test_rerun_refuses_unknown_task_and_missing_failures(tmp_path, home, diamond):
    doc, _ = diamond
    (tmp_path / "fixed").touch()
    run_id = json.loads(taskloom(home, "run", write_flow(tmp_path, doc), "--json", cwd=tmp_path).stdout)["run_id"]
    bad = taskloom(home, "rerun", str(run_id), "--from", "lefty")
    assert bad.returncode == 1 and "no task 'lefty'" in bad.stderr and "left" in bad.stderr
    none = taskloom(home, "rerun", str(run_id), "--failed")
    assert none.returncode == 1 and "no failed task" in none.stderr


def test_cancel_from_another_process_while_a_task_ignores_sigterm(tmp_path, home):
    started, pid_file = tmp_path / "started", tmp_path / "pid"
    doc = make_doc(
        [
            {"id": "stubborn", "type": "shell", "params": {
                "command": f"trap '' TERM; echo $$ > {pid_file}; touch {started}; sleep 60 & wait; sleep 60"}},
            {"id": "later", "type": "noop"},
            {"id": "parallel_wait", "type": "shell", "params": {"command": "sleep 60"}},
        ],
        [{"from": "stubborn", "to": "later"}],
    )
    runner = start(home, "run", write_flow(tmp_path, doc), "--grace", "1", cwd=tmp_path)
    wait_for(started.exists, what="the task to start")
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    shell_pid = int(pid_file.read_text())
    began = time.monotonic()
    cancelled = taskloom(home, "cancel", str(run_id), timeout=30)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled" in cancelled.stdout
    assert time.monotonic() - began < 8
    runner.wait(timeout=10)
    assert runner.returncode == 1
    assert query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] == "cancelled"
    states = dict(query(home, "SELECT task_id, status FROM task_states WHERE run_id = ?", run_id))
    assert states == {"stubborn": "cancelled", "later": "cancelled", "parallel_wait": "cancelled"}
    assert not pid_alive(shell_pid)


def test_cancel_a_run_whose_runner_died(tmp_path, home):
    started = tmp_path / "started"
    doc = make_doc([{"id": "t", "type": "shell", "params": {"command": f"touch {started}; sleep 60"}}])
    runner = start(home, "run", write_flow(tmp_path, doc), cwd=tmp_path)
    wait_for(started.exists, what="the task to start")
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    runner.kill()
    runner.wait()
    result = taskloom(home, "cancel", str(run_id))
    assert result.returncode == 0 and "cancelled" in result.stdout
    assert query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] == "cancelled"
    again = taskloom(home, "cancel", str(run_id))
    assert again.returncode == 0 and "already cancelled" in again.stdout
