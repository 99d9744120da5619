"""Engine overhead: a 1,000-task random DAG of ``noop`` tasks, journaled in SQLite,
against plain Python calling the same no-op function in topological order.

Run:  .venv/bin/python bench/bench_engine.py [--tasks 1000] [--edges 2000] [--repeat 3]

Prints the best of ``--repeat`` runs for each shape. Both sides run in this
process; the ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import graphlib
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.model import Workflow  # noqa: E402
from engine.runner import Runner  # noqa: E402
from engine.states import RunState, TaskState  # noqa: E402
from engine.tasks.base import AttemptContext, AttemptResult  # noqa: E402
from engine.tasks.inline import noop  # noqa: E402
from storage import SqliteJournal, connect, create_run  # noqa: E402


def random_dag(tasks: int, edges: int, seed: int = 42) -> dict:
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


def fan(width: int) -> dict:
    tasks = [{"id": "start", "type": "noop"}, {"id": "end", "type": "noop"}]
    tasks += [{"id": f"w{i}", "type": "noop"} for i in range(width)]
    edges = [{"from": "start", "to": f"w{i}"} for i in range(width)]
    edges += [{"from": f"w{i}", "to": "end"} for i in range(width)]
    return {"format": "taskloom/v1", "name": "bench-fan", "tasks": tasks, "edges": edges,
            "settings": {"max_parallel_tasks": 64}}


def engine_seconds(doc: dict, folder: Path) -> float:
    db = connect(folder / f"{time.monotonic_ns()}.db")
    workflow = Workflow.from_document(doc)
    run_id = create_run(db, doc, at=time.time(), params={})
    started = time.perf_counter()
    outcome = Runner(workflow, SqliteJournal(db)).run(run_id, params={}, logical_time=time.time())
    elapsed = time.perf_counter() - started
    assert outcome is RunState.SUCCEEDED, outcome
    done = db.execute("SELECT count(*) FROM task_states WHERE run_id = ? AND status = 'succeeded'", [run_id]).fetchone()[0]
    assert done == len(doc["tasks"]), done
    db.conn.close()
    return elapsed


def baseline_seconds(doc: dict) -> float:
    """Plain Python: the same no-op function per task, in topological order."""
    graph: dict[str, set[str]] = {t["id"]: set() for t in doc["tasks"]}
    for e in doc["edges"]:
        graph[e["to"]].add(e["from"])
    started = time.perf_counter()
    import threading

    for task_id in graphlib.TopologicalSorter(graph).static_order():
        ctx = AttemptContext(0, task_id, 1, {}, 1.0, threading.Event(), lambda s, l: None, lambda p: None, {}, ".")
        result: AttemptResult = noop(ctx)
        assert result.status is TaskState.SUCCEEDED
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=2000)
    parser.add_argument("--fan", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shapes = [
        (f"random DAG ({args.tasks} tasks, {args.edges} edges)", random_dag(args.tasks, args.edges)),
        (f"fan-out/fan-in ({args.fan} wide)", fan(args.fan)),
    ]
    print(f"python {platform.python_version()}, {platform.machine()}, {platform.system()}")
    print(f"{'shape':<42} {'engine s':>9} {'ms/task':>8} {'plain s':>9} {'us/task':>8} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, doc in shapes:
            n = len(doc["tasks"])
            engine = min(engine_seconds(doc, Path(tmp)) for _ in range(args.repeat))
            plain = min(baseline_seconds(doc) for _ in range(args.repeat))
            print(f"{label:<42} {engine:>9.3f} {engine / n * 1e3:>8.3f} {plain:>9.4f} "
                  f"{plain / n * 1e6:>8.2f} {engine / plain:>7.0f}x")


if __name__ == "__main__":
    main()
