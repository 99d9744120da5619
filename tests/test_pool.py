"""The local executor's pool of warm Python workers, through the real runner and on its own."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from taskloom.runtime.executors.local import LocalExecutor
from taskloom.runtime.executors.pool import PythonPool
from taskloom.runtime.tasks.base import AttemptContext
from taskloom.storage.sqlite import sqlite3
from tests.clitools import wait_gone
from tests.conftest import make_doc

MODULE = '''
import os, sys, time, subprocess

def whoami(tag=""):
    print("running", tag, flush=True)
    return {"pid": os.getpid(), "task": os.environ.get("TASKLOOM_TASK_ID"), "extra": os.environ.get("EXTRA"),
            "cwd": os.getcwd()}

def slow(marker):
    child = subprocess.Popen(["sleep", "300"])
    with open(marker, "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    print("started", flush=True)
    time.sleep(300)

def oom_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return "second try"

def leave_behind(marker):
    child = subprocess.Popen(["sleep", "300"])
    with open(marker, "w") as f:
        f.write(str(child.pid))
    return "done"

def noisy():
    sys.stdout.write("no newline at the end")
    print("to stderr", file=sys.stderr)
    return 1

def exits():
    sys.exit(4)

def hard_exit():
    os._exit(3)

def talk_then_wait(gate):
    print("first line", flush=True)
    while not os.path.exists(gate):
        time.sleep(0.02)
    return "ok"
'''


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "jobs.py").write_text(MODULE)
    return folder


@pytest.fixture
def executor():
    local = LocalExecutor(2)
    yield local
    local.close()


def py(task_id: str, function: str, code_dir: Path, **extra) -> dict:
    params = {"callable": f"jobs:{function}", "cwd": str(code_dir), **extra.pop("params", {})}
    return {"id": task_id, "type": "python", "params": params, **extra}


def test_workers_are_reused_with_each_attempts_own_environment(run_doc, executor, code_dir):
    doc = make_doc(
        [py("a", "whoami", code_dir, params={"env": {"EXTRA": "only-a"}}), py("b", "whoami", code_dir)],
        [{"from": "a", "to": "b"}],
    )
    run = run_doc(doc, executor=executor)
    a, b = run.tasks["a"].output, run.tasks["b"].output
    assert run.status == "succeeded"
    assert a["pid"] == b["pid"], "the second task should reuse the warm worker"
    assert (a["task"], b["task"]) == ("a", "b")
    assert (a["extra"], b["extra"]) == ("only-a", None), "a task's env must not leak into the next job"
    assert a["cwd"] == str(code_dir)
    assert executor.pool.started <= 2


def test_edited_code_is_picked_up_by_a_warm_worker(executor, code_dir, run_doc):
    (code_dir / "version.py").write_text("def get():\n    return 1\n")
    doc = make_doc([{"id": "v", "type": "python", "params": {"callable": "version:get", "cwd": str(code_dir)}}])
    assert run_doc(doc, executor=executor).tasks["v"].output == 1
    (code_dir / "version.py").write_text("def get():\n    return 22\n")
    assert run_doc(doc, executor=executor).tasks["v"].output == 22


def test_same_module_name_in_two_folders_does_not_mix(executor, tmp_path, run_doc):
    tasks = []
    for name, value in (("one", 1), ("two", 2)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "score.py").write_text(f"def get():\n    return {value}\n")
        tasks.append({"id": name, "type": "python", "params": {"callable": "score:get", "cwd": str(folder)}})
    doc = make_doc(tasks, [{"from": "one", "to": "two"}])
    run = run_doc(doc, executor=executor)
    assert (run.tasks["one"].output, run.tasks["two"].output) == (1, 2)


def test_timeout_kills_the_worker_and_its_children_and_replaces_it(executor, code_dir, tmp_path, run_doc):
    marker = tmp_path / "pids"
    doc = make_doc(
        [py("slow", "slow", code_dir, timeout=1, params={"args": {"marker": str(marker)}}),
         py("after", "whoami", code_dir)],
        [{"from": "slow", "to": "after", "on": "always"}],
    )
    started = time.monotonic()
    run = run_doc(doc, executor=executor, grace=1)
    worker_pid, child_pid = map(int, marker.read_text().split())
    assert run.tasks["slow"].status == "timed_out"
    assert time.monotonic() - started < 10
    assert wait_gone(worker_pid) and wait_gone(child_pid), "the timed-out worker's group must be gone"
    assert run.tasks["after"].status == "succeeded"
    assert run.tasks["after"].output["pid"] != worker_pid, "a fresh worker replaced the killed one"


def test_a_worker_killed_by_sigkill_crashes_the_attempt_which_is_retried(executor, code_dir, tmp_path, run_doc):
    doc = make_doc([py("t", "oom_once", code_dir, retries=1, retry_delay=0,
                       params={"args": {"marker": str(tmp_path / "once")}})])
    run = run_doc(doc, executor=executor)
    first, second = run.tasks["t"].attempt_list
    assert (first.status, first.signal) == ("crashed", signal.SIGKILL)
    assert "SIGKILL" in first.error
    assert (second.status, run.tasks["t"].output) == ("succeeded", "second try")


def test_processes_a_task_leaves_behind_end_with_its_job(executor, code_dir, tmp_path, run_doc):
    marker = tmp_path / "left"
    run = run_doc(make_doc([py("t", "leave_behind", code_dir, params={"args": {"marker": str(marker)}})]),
                  executor=executor)
    assert run.status == "succeeded"
    assert wait_gone(int(marker.read_text()), timeout=5)


def test_lines_without_newline_and_stderr_are_kept_per_attempt(executor, code_dir, run_doc, ws):
    doc = make_doc([py("n", "noisy", code_dir), py("w", "whoami", code_dir, params={"args": {"tag": "w"}})],
                   [{"from": "n", "to": "w"}])
    run = run_doc(doc, executor=executor)
    logs = ws.db.execute("SELECT task_id, stream, line FROM logs WHERE run_id = ? ORDER BY id", [run.id]).fetchall()
    assert ("n", "stdout", "no newline at the end") in logs
    assert ("n", "stderr", "to stderr") in logs
    assert [line for task, _, line in logs if task == "w"] == ["running w"]


def test_sys_exit_fails_and_os_exit_fails_without_a_result(executor, code_dir, run_doc):
    run = run_doc(make_doc([py("a", "exits", code_dir), py("b", "hard_exit", code_dir)]), executor=executor)
    assert run.tasks["a"].status == "failed" and "SystemExit: 4" in run.tasks["a"].error
    assert run.tasks["b"].status == "failed" and "status 3" in run.tasks["b"].error


def test_lines_reach_the_database_while_the_task_runs(executor, code_dir, tmp_path, ws, run_doc):
    gate = tmp_path / "gate"
    doc = make_doc([py("t", "talk_then_wait", code_dir, params={"args": {"gate": str(gate)}})])
    seen = []

    def watch():
        db = sqlite3.connect(ws.home / "taskloom.db", timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = db.execute("SELECT line FROM logs WHERE task_id = 't'").fetchall()
            if rows:
                seen.extend(rows)
                break
            time.sleep(0.05)
        gate.touch()

    watcher = threading.Thread(target=watch)
    watcher.start()
    run = run_doc(doc, executor=executor)
    watcher.join()
    assert seen == [("first line",)], "the line was stored before the task was let finish"
    assert run.status == "succeeded"


def test_cancel_kills_the_worker(code_dir, tmp_path):
    pool = PythonPool(1)
    marker = tmp_path / "pids"
    cancel = threading.Event()
    ctx = AttemptContext(run_id=1, task_id="t", attempt=1, params={}, timeout=60, cancel=cancel,
                         log=lambda stream, line: None, on_process=lambda pid: None, env={"PATH": "/usr/bin:/bin"},
                         cwd=str(code_dir), grace=1)
    job = {"callable": "jobs:slow", "args": {"marker": str(marker)}, "cwd": str(code_dir), "env": {"PATH": "/usr/bin:/bin"}}
    threading.Timer(0.5, cancel.set).start()
    try:
        result = pool.run(ctx, job)
    finally:
        pool.close()
    worker_pid, child_pid = map(int, marker.read_text().split())
    assert result.status.value == "cancelled"
    assert wait_gone(worker_pid) and wait_gone(child_pid)


def test_workers_die_with_the_process_that_owns_the_pool(tmp_path, code_dir):
    """SIGKILL of the runner's process leaves no worker (nor what its task started) running."""
    from tests.clitools import start, wait_for, write_flow

    marker = tmp_path / "pids"
    flow = write_flow(tmp_path, make_doc([py("slow", "slow", code_dir, params={"args": {"marker": str(marker)}})]))
    home = tmp_path / "home"
    home.mkdir()
    proc = start(home, "run", flow, cwd=tmp_path)
    try:
        wait_for(lambda: marker.exists() and marker.read_text(), what="the task to start")
        worker_pid, child_pid = map(int, marker.read_text().split())
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_gone(worker_pid) and wait_gone(child_pid)
