"""Shell tasks: ``true`` run by the real runner (journaled in SQLite) against ``subprocess.run`` of the same command.

Run:  .venv/bin/python bench/bench_shell.py [--parallel 200] [--chain 100] [--repeat 3]

Two shapes, each run by the engine and by plain ``subprocess.run`` with the
same parallelism:

- ``--parallel`` independent ``shell`` tasks with ``max_parallel_tasks: 2``,
  against a ``ThreadPoolExecutor(2)`` calling ``subprocess.run``;
- a ``--chain``-task chain, against ``subprocess.run`` called in a loop.

A ``shell`` task runs ``/bin/sh -c COMMAND`` in a new process group with
its stdout and stderr read line by line, so ``subprocess.run("true",
shell=True)`` is the like-for-like baseline (the goal: within 1.5x of it);
``subprocess.run(["true"])``, without a shell, is shown too.

Where the time goes: the engine again with SQLite's ``synchronous = NORMAL``
instead of the product's ``FULL`` (no fsync per commit: a diagnostic, not a
setting Taskloom uses); the same shapes with a task type that ends at once
on a thread of its own (the runner, its threads and the journal without any
process); and :func:`taskloom.runtime.process.run_process` alone (the process
launcher without the runner) against ``subprocess.run`` with the output
captured. Best of ``--repeat`` runs everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskloom.core.model import Workflow  # noqa: E402
from taskloom.runtime.process import run_process  # noqa: E402
from taskloom.core.registry import Registry, default_registry  # noqa: E402
from taskloom.runtime.execution import standalone_runner  # noqa: E402
from taskloom.runtime.runner import minimal_env  # noqa: E402
from taskloom.core.states import RunState  # noqa: E402
from taskloom.storage import SqliteJournal, connect, create_run  # noqa: E402
from taskloom.storage.sqlite import sqlite3  # noqa: E402

__all__ = ["parallel_doc", "chain_doc", "main"]

#: The goal: the engine within this factor of ``subprocess.run(..., shell=True)``.
GOAL_RATIO = 1.5
#: A task type that ends at once but, unlike ``noop``, on a thread of its own, as process tasks do.
THREAD_NOOP = "bench_thread_noop"


def _task(i: int, task_type: str) -> dict[str, Any]:
    task: dict[str, Any] = {"id": f"s{i}", "type": task_type}
    if task_type == "shell":
        task["params"] = {"command": "true"}
    return task


def parallel_doc(n: int, task_type: str = "shell", width: int = 2) -> dict[str, Any]:
    """``n`` independent tasks, at most ``width`` at a time."""
    return {"format": "taskloom/v1", "name": "bench-shell-parallel",
            "tasks": [_task(i, task_type) for i in range(n)], "settings": {"max_parallel_tasks": width}}


def chain_doc(n: int, task_type: str = "shell") -> dict[str, Any]:
    """``n`` tasks, each depending on the one before."""
    return {"format": "taskloom/v1", "name": "bench-shell-chain", "tasks": [_task(i, task_type) for i in range(n)],
            "edges": [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(n - 1)]}


def bench_registry() -> Registry:
    """The built-in types plus :data:`THREAD_NOOP` (``noop``'s function, not inline)."""
    registry = default_registry()
    registry.register(dataclasses.replace(registry["noop"], name=THREAD_NOOP, inline=False))
    return registry


def engine_seconds(doc: dict[str, Any], folder: Path, registry: Registry, synchronous: str | None = None) -> float:
    """Parse, create the run and run it in a fresh database; every task must succeed.

    ``synchronous`` overrides the product's ``PRAGMA synchronous = FULL`` (a
    diagnostic: how much of the time is the fsync of each commit).
    """
    db = connect(folder / f"{time.monotonic_ns()}.db")
    if synchronous is not None:
        db.conn.execute(f"PRAGMA synchronous = {synchronous}")
    started = time.perf_counter()
    workflow = Workflow.from_document(doc)
    run_id = create_run(db, doc, at=time.time(), params={})
    outcome = standalone_runner(workflow, SqliteJournal(db), cwd=str(folder), registry=registry).run(
        run_id, params={}, logical_time=time.time())
    elapsed = time.perf_counter() - started
    assert outcome is RunState.SUCCEEDED, outcome
    done = db.execute("SELECT count(*) FROM task_states WHERE run_id = ? AND status = 'succeeded'", [run_id]).fetchone()[0]
    assert done == len(doc["tasks"]), done
    db.conn.close()
    return elapsed


def plain_seconds(call: Callable[[], Any], n: int, width: int) -> float:
    """``call`` ``n`` times: in a loop when ``width`` is 1, else on a ThreadPoolExecutor(width)."""
    started = time.perf_counter()
    if width == 1:
        for _ in range(n):
            call()
    else:
        with ThreadPoolExecutor(width) as pool:
            for future in [pool.submit(call) for _ in range(n)]:
                future.result()
    return time.perf_counter() - started


def _check(proc: subprocess.CompletedProcess[Any]) -> None:
    assert proc.returncode == 0, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=200, help="independent tasks, 2 at a time")
    parser.add_argument("--chain", type=int, default=100, help="tasks in the chain")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    registry = bench_registry()
    env = minimal_env(os.environ)
    shapes = [(f"{args.parallel} independent, 2 at a time", args.parallel, 2),
              (f"chain of {args.chain}", args.chain, 1)]
    baselines: list[tuple[str, Callable[[], Any]]] = [
        ('subprocess.run("true", shell=True)', lambda: _check(subprocess.run("true", shell=True))),
        ('subprocess.run(["true"])', lambda: _check(subprocess.run(["true"]))),
    ]
    breakdown: list[tuple[str, Callable[[], Any]]] = [
        ("run_process(/bin/sh -c true) alone", lambda: run_process(
            ["/bin/sh", "-c", "true"], env=env, on_line=lambda s, l: None, cancel=threading.Event())),
        ("subprocess.run(shell=True, capture_output=True)", lambda: _check(subprocess.run(
            "true", shell=True, capture_output=True, env=env, start_new_session=True))),
    ]

    def best(fn: Callable[[], float]) -> tuple[float, float]:
        """The shortest of ``--repeat`` runs of ``fn``: (wall seconds, this process's CPU seconds)."""
        runs = []
        for _ in range(args.repeat):
            cpu = _cpu_seconds()
            wall = fn()
            runs.append((wall, _cpu_seconds() - cpu))
        return min(runs)

    def row(name: str, measured: tuple[float, float], n: int, ratio: float | None = None) -> None:
        wall, cpu = measured
        shown = f"{ratio:>11.2f}x" if ratio is not None else ""
        print(f"  {name:<48} {wall:>8.3f} {wall / n * 1e3:>8.3f} {cpu / n * 1e3:>8.3f} {shown}")

    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
          f"{platform.machine()} {platform.system()}; best of {args.repeat}")
    print("cpu ms/task: CPU time of this process (all its threads, not the children) per task")
    goal_ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, n, width in shapes:
            shell_doc = parallel_doc(n, "shell", width) if width > 1 else chain_doc(n, "shell")
            thread_doc = parallel_doc(n, THREAD_NOOP, width) if width > 1 else chain_doc(n, THREAD_NOOP)
            engine = best(lambda: engine_seconds(shell_doc, folder, registry))
            print()
            print(f"{label}: `true`")
            print(f"  {'':<48} {'s':>8} {'ms/task':>8} {'cpu ms':>8} {'engine/this':>12}")
            row("taskloom shell tasks (journaled in SQLite)", engine, n)
            for name, call in baselines:
                plain = best(lambda: plain_seconds(call, n, width))
                ratio = engine[0] / plain[0]
                if "shell=True" in name:
                    goal_ok = goal_ok and ratio <= GOAL_RATIO
                row(name, plain, n, ratio)
            print("  where the time goes:")
            row("the same shell tasks, SQLite synchronous=NORMAL",
                best(lambda: engine_seconds(shell_doc, folder, registry, synchronous="NORMAL")), n)
            row("runner + journal, no process (thread-noop tasks)",
                best(lambda: engine_seconds(thread_doc, folder, registry)), n)
            for name, call in breakdown:
                row(name, best(lambda: plain_seconds(call, n, width)), n)
    print()
    print(f"goal: within {GOAL_RATIO}x of subprocess.run(\"true\", shell=True) with the same parallelism: "
          f"{'holds' if goal_ok else 'DOES NOT HOLD'}")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
