"""Engine overhead: ``noop`` workflows journaled in SQLite against plain Python, and a chain from process start to exit.

Run:  .venv/bin/python bench/bench_engine.py [--tasks 1000] [--edges 2000] [--fan 500] [--repeat 3]
                                             [--chain 100] [--cli-repeat 5]

1. In process: a random DAG (``--tasks`` tasks, ``--edges`` edges, seed 42)
   and a ``--fan``-wide fan-out/fan-in of ``noop`` tasks, run by the real
   runner with every state change journaled in a fresh SQLite file, against
   plain Python calling the same no-op task function in topological order
   (graphlib). End to end: parsing the workflow, creating the run, running it.
   Goal: under 0.3 ms per task. A ``--chain``-task chain is shown too: it runs
   one task per turn of the runner's loop, the worst case for batching.
2. From process start to exit: ``taskloom run FILE`` of the chain in a real
   subprocess, from spawn to exit, in a temporary ``TASKLOOM_HOME``; beside it
   the interpreter's own start-up (``python -c pass``), the import of the
   command line (``python -c "import taskloom.ui.cli.main"``, also with the garbage
   collector off) and an import-time breakdown by package, so the table
   shows where the time goes. Goal: under 1 s.

Both sides of every ratio run in this script; the ratio is what to compare
across machines.
"""

from __future__ import annotations

import argparse
import graphlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskloom.core.model import Workflow  # noqa: E402
from taskloom.runtime.execution import standalone_runner  # noqa: E402
from taskloom.core.states import RunState, TaskState  # noqa: E402
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult  # noqa: E402
from taskloom.runtime.tasks.inline import noop  # noqa: E402
from taskloom.storage import SqliteJournal, connect, create_run  # noqa: E402
from taskloom.storage.sqlite import sqlite3  # noqa: E402

__all__ = ["random_dag", "fan", "chain", "main"]

#: Goals from the benchmark suite's brief.
GOAL_MS_PER_TASK = 0.3
GOAL_CHAIN_SECONDS = 1.0


def random_dag(tasks: int, edges: int, seed: int = 42) -> dict[str, Any]:
    """``tasks`` noop tasks and ``edges`` distinct edges from a lower to a higher index (acyclic)."""
    rng = random.Random(seed)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        a, b = sorted(rng.sample(range(tasks), 2))
        pairs.add((a, b))
    return {
        "format": "taskloom/v1",
        "name": "bench-random",
        "tasks": [{"id": f"t{i}", "type": "noop"} for i in range(tasks)],
        "edges": [{"from": f"t{a}", "to": f"t{b}"} for a, b in sorted(pairs)],
        "settings": {"max_parallel_tasks": 64},
    }


def fan(width: int) -> dict[str, Any]:
    """``start`` -> ``width`` noop tasks -> ``end``."""
    tasks = [{"id": "start", "type": "noop"}, {"id": "end", "type": "noop"}]
    tasks += [{"id": f"w{i}", "type": "noop"} for i in range(width)]
    edges = [{"from": "start", "to": f"w{i}"} for i in range(width)]
    edges += [{"from": f"w{i}", "to": "end"} for i in range(width)]
    return {"format": "taskloom/v1", "name": "bench-fan", "tasks": tasks, "edges": edges,
            "settings": {"max_parallel_tasks": 64}}


def chain(length: int) -> dict[str, Any]:
    """``length`` noop tasks, each depending on the one before."""
    return {
        "format": "taskloom/v1",
        "name": "bench-chain",
        "tasks": [{"id": f"c{i}", "type": "noop"} for i in range(length)],
        "edges": [{"from": f"c{i}", "to": f"c{i + 1}"} for i in range(length - 1)],
    }


def engine_seconds(doc: dict[str, Any], folder: Path) -> float:
    """Parse, create the run and run it to the end in a fresh database; seconds."""
    db = connect(folder / f"{time.monotonic_ns()}.db")
    started = time.perf_counter()
    workflow = Workflow.from_document(doc)
    run_id = create_run(db, doc, at=time.time(), params={})
    outcome = standalone_runner(workflow, SqliteJournal(db), cwd=str(folder)).run(run_id, params={}, logical_time=time.time())
    elapsed = time.perf_counter() - started
    assert outcome is RunState.SUCCEEDED, outcome
    done = db.execute("SELECT count(*) FROM task_states WHERE run_id = ? AND status = 'succeeded'", [run_id]).fetchone()[0]
    assert done == len(doc["tasks"]), done
    db.conn.close()
    return elapsed


def baseline_seconds(doc: dict[str, Any]) -> float:
    """Plain Python: the same no-op function per task, in topological order."""
    graph: dict[str, set[str]] = {t["id"]: set() for t in doc["tasks"]}
    for e in doc["edges"]:
        graph[e["to"]].add(e["from"])
    started = time.perf_counter()
    for task_id in graphlib.TopologicalSorter(graph).static_order():
        ctx = AttemptContext(0, task_id, 1, {}, 1.0, threading.Event(), lambda s, l: None, lambda p: None, {}, ".")
        result: AttemptResult = noop(ctx)
        assert result.status is TaskState.SUCCEEDED
    return time.perf_counter() - started


def process_seconds(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one subprocess from spawn to exit (its output captured); it must exit 0."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def taskloom_argv() -> list[str]:
    """The installed ``taskloom`` script beside this interpreter, else ``python -m taskloom.ui.cli.main``."""
    script = Path(sys.executable).parent / "taskloom"
    return [str(script)] if script.exists() else [sys.executable, "-m", "taskloom.ui.cli.main"]


def cli_rows(length: int, repeat: int, folder: Path) -> list[tuple[str, list[float]]]:
    """Timings (seconds) of the process-start measurements, each ``repeat`` times."""
    path = folder / "chain.json"
    path.write_text(json.dumps(chain(length)), encoding="utf-8")
    base_env = {k: v for k, v in os.environ.items() if k != "TASKLOOM_HOME"}
    warm_home = folder / "home-warm"
    warm_env = {**base_env, "TASKLOOM_HOME": str(warm_home)}
    run_argv = [*taskloom_argv(), "run", str(path)]
    process_seconds(run_argv, warm_env)  # creates the home; warms the OS caches
    fresh: list[float] = []
    for k in range(repeat):
        fresh.append(process_seconds(run_argv, {**base_env, "TASKLOOM_HOME": str(folder / f"home-{k}")}))
    return [
        ("python -c pass (interpreter start-up)", [process_seconds([sys.executable, "-c", "pass"]) for _ in range(repeat)]),
        ('python -c "import taskloom.ui.cli.main" (+ imports)', [process_seconds([sys.executable, "-c", "import taskloom.ui.cli.main"]) for _ in range(repeat)]),
        ("the same import with the garbage collector off", [process_seconds(
            [sys.executable, "-c", "import gc; gc.disable(); import taskloom.ui.cli.main"]) for _ in range(repeat)]),
        (f"taskloom run chain.json ({length} tasks)", [process_seconds(run_argv, warm_env) for _ in range(repeat)]),
        ("the same in a fresh home (creates the db)", fresh),
    ]


def import_breakdown(top: int = 8) -> tuple[float, list[tuple[str, float, str]]]:
    """``python -X importtime -c "import taskloom.ui.cli.main"``: total ms, and the top packages by self time.

    Each package comes with the chain of imports that first loaded it
    (``pandas <- sqlite_utils.db <- ... <- storage``), up to the first
    Taskloom module.
    """
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import taskloom.ui.cli.main"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    entries: list[tuple[int, str, float]] = []  # depth, module, self ms; children come before their parent
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[0].split(":")[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        entries.append(((len(name) - len(name.lstrip())) // 2, name.strip(), int(parts[0].split(":")[1]) / 1000))
    totals: dict[str, float] = {}
    for _, module, ms in entries:
        totals[module.split(".")[0]] = totals.get(module.split(".")[0], 0.0) + ms
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return sum(totals.values()), [(package, ms, _loaded_by(entries, package)) for package, ms in ranked]


def _loaded_by(entries: list[tuple[int, str, float]], package: str) -> str:
    """The import chain that first loaded ``package``, up to a Taskloom module (or the top)."""
    ours = ("taskloom",)
    if package in ours:
        return ""
    index = next(i for i, (_, module, _) in enumerate(entries) if module.split(".")[0] == package)
    depth, chain = entries[index][0], [entries[index][1]]
    for later_depth, module, _ in entries[index + 1:]:
        if later_depth < depth:
            depth = later_depth
            chain.append(module)
            if module.split(".")[0] in ours:
                break
    while len(chain) > 1 and chain[1].split(".")[0] == package:  # start at the package's outermost module
        chain.pop(0)
    return " <- ".join(chain)


def verdict(ok: bool) -> str:
    return "holds" if ok else "DOES NOT HOLD"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=2000)
    parser.add_argument("--fan", type=int, default=500)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs per in-process shape (best is shown)")
    parser.add_argument("--cli-repeat", type=int, default=5, help="subprocess runs per process-start row")
    args = parser.parse_args()
    shapes = [
        (f"random DAG ({args.tasks} tasks, {args.edges} edges, seed 42)", random_dag(args.tasks, args.edges), True),
        (f"fan-out/fan-in ({args.fan} wide)", fan(args.fan), True),
        (f"chain ({args.chain} tasks, one per loop turn)", chain(args.chain), False),
    ]
    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
          f"{platform.machine()} {platform.system()}")
    print()
    print("1. in process: noop tasks journaled in SQLite vs plain Python in topological order (best of "
          f"{args.repeat})")
    print(f"{'shape':<52} {'engine s':>9} {'ms/task':>8} {'plain s':>9} {'us/task':>8} {'ratio':>7}")
    goal_ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for label, doc, goal in shapes:
            n = len(doc["tasks"])
            engine = min(engine_seconds(doc, Path(tmp)) for _ in range(args.repeat))
            plain = min(baseline_seconds(doc) for _ in range(args.repeat))
            if goal:
                goal_ok = goal_ok and engine / n * 1e3 < GOAL_MS_PER_TASK
            print(f"{label:<52} {engine:>9.3f} {engine / n * 1e3:>8.3f} {plain:>9.4f} "
                  f"{plain / n * 1e6:>8.2f} {engine / plain:>6.0f}x")
        print(f"goal: under {GOAL_MS_PER_TASK} ms per task end to end (random DAG, fan-out): {verdict(goal_ok)}")
        print()
        print(f"2. from process start to exit, {args.cli_repeat} runs each (output to a pipe, not a terminal)")
        rows = cli_rows(args.chain, args.cli_repeat, Path(tmp))
    print(f"{'process':<52} {'best s':>9} {'median s':>9}")
    for label, times in rows:
        print(f"{label:<52} {min(times):>9.3f} {statistics.median(times):>9.3f}")
    total, ranked = import_breakdown()
    print(f"where the import time goes (python -X importtime, self time by top-level package, {total:.0f} ms in all;")
    print("  a module's self time includes the garbage-collection pauses that fall during its import):")
    for name, ms, loaded_by in ranked:
        print(f"  {name:<14} {ms:>5.0f} ms  {loaded_by}")
    chain_median = statistics.median(rows[3][1])
    print(f"goal: the {args.chain}-task chain under {GOAL_CHAIN_SECONDS:g} s from process start to exit "
          f"(median {chain_median:.3f} s): {verdict(chain_median < GOAL_CHAIN_SECONDS)}")


if __name__ == "__main__":
    main()
