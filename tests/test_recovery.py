"""Crash recovery with real processes: SIGKILL of the runner, resume, retry backoff across a restart,
SIGTERM interruption."""

from __future__ import annotations

import pytest

import json
import os
import signal
import time

from clitools import pid_alive, query, start, taskloom, wait_for, write_flow
from conftest import make_doc

pytestmark = pytest.mark.both_backends


def counter_cmd(path, then=""):
    """Shell that appends one line to ``path`` (to count executions), then does ``then``."""
    return f"echo x >> {path}; {then}"


def test_sigkill_mid_run_then_resume(tmp_path, home):
    runs_a, runs_b, runs_c, b_first, b_pid = (tmp_path / n for n in ("a", "b", "c", "b-first", "b-pid"))
    doc = make_doc(
        [
            {"id": "a", "type": "shell", "params": {
                "command": counter_cmd(runs_a, "for i in $(seq 1 100); do echo a-line-$i; done; echo '{\"n\": 7}'")}},
            {"id": "b", "type": "shell", "retries": 1, "retry_delay": 0, "params": {
                "command": counter_cmd(runs_b, f"if [ -e {b_first} ]; then echo second; else touch {b_first}; "
                                               f"sleep 60 & echo $! > {b_pid}; wait; fi")}},
            {"id": "c", "type": "shell", "params": {"command": counter_cmd(runs_c, "echo {{ tasks.a.output.n }}")}},
        ],
        [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}],
    )
    runner = start(home, "run", write_flow(tmp_path, doc), "--json", cwd=tmp_path)
    wait_for(lambda: b_pid.exists() and b_pid.read_text().strip(), what="task b to start")
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    wait_for(lambda: query(home, "SELECT count(*) FROM logs WHERE run_id = ? AND task_id = 'a'", run_id)[0][0] >= 101,
             what="a's log lines to be committed")
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    leftover = int(b_pid.read_text())
    assert pid_alive(leftover), "the task's process group outlived the runner, as after a real crash"

    resumed = taskloom(home, "resume", str(run_id), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "succeeded"
    wait_for(lambda: not pid_alive(leftover), timeout=5, what="the leftover process to be killed")
    # Every task ran exactly as often as its outcome requires.
    assert runs_a.read_text().count("x") == 1  # succeeded before the crash: not run again
    assert runs_b.read_text().count("x") == 2  # crashed attempt, then its retry
    assert runs_c.read_text().count("x") == 1
    assert [a["status"] for a in result["tasks"]["b"]["attempt_list"]] == ["crashed", "succeeded"]
    assert "runner died" in result["tasks"]["b"]["attempt_list"][0]["error"]
    assert result["tasks"]["c"]["output"] == 7  # a's stored output fed c after the restart
    # No log line committed before the kill is lost (or duplicated).
    lines = query(home, "SELECT line FROM logs WHERE run_id = ? AND task_id = 'a' AND stream = 'stdout'", run_id)
    assert [l for (l,) in lines][:100] == [f"a-line-{i}" for i in range(1, 101)]
    assert len(lines) == 101


def test_crashed_task_without_retries_ends_the_run_crashed_and_failed(tmp_path, home):
    started = tmp_path / "started"
    doc = make_doc(
        [
            {"id": "slow", "type": "shell", "params": {"command": f"touch {started}; sleep 60"}},
            {"id": "after", "type": "noop"},
        ],
        [{"from": "slow", "to": "after"}],
    )
    runner = start(home, "run", write_flow(tmp_path, doc), cwd=tmp_path)
    wait_for(started.exists, what="the task to start")
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    runner.kill()
    runner.wait(timeout=10)
    # A new `taskloom run` of anything takes the orphan over and resumes it.
    other = write_flow(tmp_path, make_doc([{"id": "n", "type": "noop"}], name="other"), "other.json")
    result = taskloom(home, "run", other, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"run {run_id}" in result.stderr and "resuming it" in result.stderr
    status, error = query(home, "SELECT status, error FROM runs WHERE id = ?", run_id)[0]
    assert status == "failed"
    tasks = dict(query(home, "SELECT task_id, status FROM task_states WHERE run_id = ?", run_id))
    assert tasks == {"slow": "crashed", "after": "skipped"}


def test_retry_backoff_survives_a_restart(tmp_path, home):
    attempts = tmp_path / "attempts"
    doc = make_doc([{
        "id": "flaky", "type": "shell", "retries": 1, "retry_delay": 3,
        "params": {"command": f"echo $(date +%s.%N) >> {attempts}; [ $(wc -l < {attempts}) -ge 2 ]"},
    }])
    runner = start(home, "run", write_flow(tmp_path, doc), cwd=tmp_path)
    due = wait_for(lambda: query(home, "SELECT next_attempt_at FROM task_states WHERE task_id = 'flaky'")[0][0],
                   what="the retry to be scheduled")
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    runner.kill()
    runner.wait(timeout=10)
    assert time.time() < due - 1, "the restart must happen during the backoff"
    resumed = taskloom(home, "resume", str(run_id), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    started = [float(t) for t in attempts.read_text().split()]
    assert len(started) == 2  # not from scratch: one failed attempt, one retry
    assert started[1] >= due - 0.05, "the retry started at its persisted time, not at once"
    assert started[1] < due + 2
    data = json.loads(resumed.stdout)
    assert [a["status"] for a in data["tasks"]["flaky"]["attempt_list"]] == ["failed", "succeeded"]


def test_sigterm_interrupts_and_the_run_resumes_later(tmp_path, home):
    count, first = tmp_path / "count", tmp_path / "first"
    doc = make_doc(
        [
            {"id": "quick", "type": "shell", "params": {"command": counter_cmd(tmp_path / "quick")}},
            {"id": "long", "type": "shell", "params": {
                "command": counter_cmd(count, f"if [ -e {first} ]; then exit 0; fi; touch {first}; sleep 60")}},
        ],
        [{"from": "quick", "to": "long"}],
    )
    runner = start(home, "run", write_flow(tmp_path, doc), "--grace", "0.5", cwd=tmp_path)
    wait_for(first.exists, what="the long task to start")
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=15)
    assert runner.returncode == 1
    assert "resume it with: taskloom resume" in err
    run_id = query(home, "SELECT max(id) FROM runs")[0][0]
    assert query(home, "SELECT status FROM runs WHERE id = ?", run_id)[0][0] == "crashed"
    assert query(home, "SELECT status FROM task_states WHERE run_id = ? AND task_id = 'long'", run_id)[0][0] == "pending"
    resumed = taskloom(home, "resume", str(run_id), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert [a["status"] for a in data["tasks"]["long"]["attempt_list"]] == ["cancelled", "succeeded"]
    assert (tmp_path / "quick").read_text().count("x") == 1
    assert count.read_text().count("x") == 2
