"""Real workflows on a real dask.distributed LocalCluster of worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import distributed  # a dev dependency: these tests run everywhere, CI included, and never skip
import pytest

from taskloom.runtime.executors import ExecutorError, create_executor
from taskloom.runtime.executors.on_dask import DaskExecutor
from taskloom.storage.sqlite import sqlite3
from tests.conftest import make_doc
from tests.clitools import wait_gone

pytestmark = pytest.mark.timeout(180)

MODULE = '''
import os, time

def where(i):
    print(f"item {i}", flush=True)
    return {"i": i, "dask_worker_pid": os.getppid()}

def total(parts):
    return sum(p["i"] for p in parts)

def sleepy(marker):
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    print("sleeping", flush=True)
    time.sleep(300)

def talk_then_wait(gate):
    for n in range(3):
        print(f"line {n}", flush=True)
    while not os.path.exists(gate):
        time.sleep(0.02)
    return "ok"

def die_first(marker):
    if os.path.exists(marker):
        return "second attempt"
    with open(marker, "w") as f:
        f.write(str(os.getppid()))
    time.sleep(300)
'''


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None, worker_dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def executor(cluster):
    ex = DaskExecutor(cluster.scheduler_address)
    yield ex
    ex.close()


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "jobs.py").write_text(MODULE)
    return tmp_path


def py(task_id: str, function: str, code: Path, **extra) -> dict:
    params = {"callable": f"jobs:{function}", "cwd": str(code), **extra.pop("params", {})}
    return {"id": task_id, "type": "python", "params": params, **extra}


def worker_pids(cluster) -> set[int]:
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def test_fan_out_runs_on_the_workers_and_results_flow_back(executor, cluster, code, run_doc, ws):
    items = [py(f"w{i}", "where", code, params={"args": {"i": i}}) for i in range(6)]
    parts = "[" + ", ".join(f"tasks.w{i}.output" for i in range(6)) + "]"
    join = py("sum", "total", code, params={"args": {"parts": "{{ " + parts + " }}"}})
    shell = {"id": "sh", "type": "shell", "params": {"command": "echo '{\"from\": \"shell\"}'"}}
    doc = make_doc([*items, join, shell], [{"from": f"w{i}", "to": "sum"} for i in range(6)],
                   settings={"max_parallel_tasks": 4})
    run = run_doc(doc, executor=executor)
    assert run.status == "succeeded"
    assert run.tasks["sum"].output == 15
    assert run.tasks["sh"].output == {"from": "shell"}
    ran_on = {run.tasks[f"w{i}"].output["dask_worker_pid"] for i in range(6)}
    assert ran_on <= worker_pids(cluster), "python attempts must run under the Dask worker processes"
    assert os.getpid() not in ran_on
    lines = {line for (line,) in ws.db.execute("SELECT line FROM logs WHERE run_id = ?", [run.id])}
    assert {f"item {i}" for i in range(6)} <= lines


def test_failed_attempts_are_retried_per_policy(executor, code, tmp_path, run_doc):
    marker = tmp_path / "tried"
    command = f"if [ -f {marker} ]; then echo fine; else touch {marker}; echo first >&2; exit 3; fi"
    doc = make_doc([{"id": "flaky", "type": "shell", "retries": 2, "retry_delay": 0, "params": {"command": command}}])
    run = run_doc(doc, executor=executor)
    attempts = run.tasks["flaky"].attempt_list
    assert [a.status for a in attempts] == ["failed", "succeeded"]
    assert attempts[0].exit_code == 3
    assert run.tasks["flaky"].output == "fine"


def test_timeouts_hold_on_the_workers(executor, code, tmp_path, run_doc):
    marker = tmp_path / "pid"
    doc = make_doc([py("slow", "sleepy", code, timeout=1, params={"args": {"marker": str(marker)}})])
    started = time.monotonic()
    run = run_doc(doc, executor=executor, grace=1)
    assert run.tasks["slow"].status == "timed_out"
    assert time.monotonic() - started < 15
    assert wait_gone(int(marker.read_text()))


def test_cancel_reaches_the_task_on_its_worker(executor, code, tmp_path, ws, run_doc):
    marker = tmp_path / "pid"
    doc = make_doc([py("slow", "sleepy", code, params={"args": {"marker": str(marker)}})])
    runners = []

    def cancel_when_started():
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        runners[0].cancel()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    run = run_doc(doc, executor=executor, grace=1, on_runner=runners.append)
    assert run.status == "cancelled"
    assert run.tasks["slow"].status == "cancelled"
    assert wait_gone(int(marker.read_text())), "the task's process on the worker must be killed"


def test_log_lines_arrive_while_the_task_runs(executor, code, tmp_path, ws, run_doc):
    gate = tmp_path / "gate"
    doc = make_doc([py("t", "talk_then_wait", code, params={"args": {"gate": str(gate)}})])
    seen = []

    def watch():
        db = sqlite3.connect(ws.home / "taskloom.db", timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(seen) < 3:
            seen[:] = db.execute("SELECT line FROM logs WHERE task_id = 't' ORDER BY id").fetchall()
            time.sleep(0.05)
        gate.touch()

    watcher = threading.Thread(target=watch)
    watcher.start()
    run = run_doc(doc, executor=executor)
    watcher.join()
    assert seen == [("line 0",), ("line 1",), ("line 2",)], "lines were stored before the task was let finish"
    assert run.status == "succeeded"


def test_a_worker_killed_mid_task_crashes_the_attempt_and_the_retry_succeeds(executor, cluster, code, tmp_path, run_doc):
    marker = tmp_path / "victim"
    doc = make_doc([py("t", "die_first", code, retries=1, retry_delay=0, params={"args": {"marker": str(marker)}})])

    def kill_worker():
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(int(marker.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_worker, daemon=True)
    killer.start()
    run = run_doc(doc, executor=executor)
    killer.join()
    first, second = run.tasks["t"].attempt_list
    assert first.status == "crashed"
    assert "worker" in first.error
    assert second.status == "succeeded"
    assert run.tasks["t"].output == "second attempt"
    assert run.status == "succeeded"


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ExecutorError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        create_executor("dask", dask_address="tcp://127.0.0.1:9")
    with pytest.raises(ExecutorError, match="--dask-address"):
        create_executor("dask", environ={})


def test_dask_demo_and_run_with_the_dask_executor_from_the_command_line(tmp_path):
    """`taskloom dask-demo` serves a cluster; `taskloom run --executor dask` runs a workflow's tasks on it."""
    import json
    import socket

    from tests.clitools import start, taskloom, wait_for, write_flow

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    home.mkdir()
    demo = start(home, "dask-demo", "--port", str(port), "--workers", "1", "--threads", "2")
    try:
        address = f"tcp://127.0.0.1:{port}"
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_for(listening, timeout=60, what="the demo cluster")
        (tmp_path / "jobs.py").write_text("import os\ndef pid():\n    return os.getppid()\n")
        flow = write_flow(tmp_path, make_doc([
            {"id": "sh", "type": "shell", "params": {"command": "echo hello from the cluster"}},
            {"id": "py", "type": "python", "params": {"callable": "jobs:pid"}},
        ]))
        done = taskloom(home, "run", flow, "--executor", "dask", "--dask-address", address, "--json", cwd=tmp_path,
                        timeout=120)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["status"] == "succeeded"
        assert result["tasks"]["sh"]["output"] == "hello from the cluster"
        with distributed.Client(address, set_as_default=False) as client:
            assert result["tasks"]["py"]["output"] in set(client.run(os.getpid).values())
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    assert demo.returncode == 0


def test_dask_executor_without_an_address_is_refused_clearly(tmp_path):
    from tests.clitools import taskloom, write_flow

    home = tmp_path / "home"
    home.mkdir()
    flow = write_flow(tmp_path, make_doc([{"id": "a", "type": "noop"}]))
    done = taskloom(home, "run", flow, "--executor", "dask", cwd=tmp_path)
    assert done.returncode == 1
    assert "needs the address of a Dask scheduler" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_runner_killed_mid_task_leaves_nothing_running_on_the_workers(cluster, code, tmp_path):
    """SIGKILL of `taskloom run --executor dask`: its client disconnects and the worker kills the task."""
    from tests.clitools import start, wait_for, write_flow

    marker = tmp_path / "pid"
    flow = write_flow(tmp_path, make_doc([py("slow", "sleepy", code, params={"args": {"marker": str(marker)}})]))
    home = tmp_path / "home"
    home.mkdir()
    runner = start(home, "run", flow, "--executor", "dask", "--dask-address", cluster.scheduler_address, cwd=tmp_path)
    try:
        wait_for(lambda: marker.exists() and marker.read_text(), timeout=60, what="the task to start")
        runner.kill()
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert wait_gone(int(marker.read_text()), timeout=30), "the task's process outlived its runner"
