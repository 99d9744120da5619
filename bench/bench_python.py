"""Python tasks through the local executor's worker pool, against ``concurrent.futures.ProcessPoolExecutor``.

Run:  .venv/bin/python bench/bench_python.py [--parallel 200] [--chain 100] [--repeat 3]

The same functions (written to a temporary module) are called

- by the real runner as ``python`` tasks, journaled in SQLite, through the
  local executor's pool of warm workers (2 workers, ``max_parallel_tasks: 2``);
- by a ``ProcessPoolExecutor(2)``, in the same process, just before.

Shapes: ``--parallel`` independent calls, and a ``--chain`` of calls each
waiting for the one before (``submit(...).result()`` in a loop for the
baseline), of a function that keeps the CPU busy for 0, 2 or 10 ms. The
goal: within 2x of the process pool. The trivial rows measure the fixed
cost per task, which the pool cannot pay: each attempt's start and end are
committed to SQLite (``synchronous = FULL``) before the next one starts. For context the first rows also show the
same runner without a pool (a fresh interpreter per attempt, as a runner
without warm workers would do). Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import engine_seconds  # noqa: E402  (bench/common.py)
from taskloom.runtime.executors.local import LocalExecutor  # noqa: E402

GOAL_RATIO = 2.0
WIDTH = 2
MODULE = '''
import time

def work(ms=0.0):
    """Keep the CPU busy for ``ms`` milliseconds (0: return at once)."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass
    return ms
'''
#: Work per task, in ms: trivial calls show the fixed cost per task, longer ones the usual case.
WORK_MS = (0.0, 2.0, 10.0)


class NoPool:
    """An executor that gives python tasks no pool: a fresh interpreter per attempt."""

    name = "local-fresh"

    def execute(self, task_type, function, ctx):  # type: ignore[no-untyped-def]
        return function(replace(ctx, python_pool=None))

    def close(self) -> None:
        pass


def parallel_doc(n: int, ms: float) -> dict[str, Any]:
    tasks = [{"id": f"p{i}", "type": "python", "params": {"callable": "benchfns:work", "args": {"ms": ms}}}
             for i in range(n)]
    return {"format": "taskloom/v1", "name": "bench-python-parallel", "tasks": tasks,
            "settings": {"max_parallel_tasks": WIDTH}}


def chain_doc(n: int, ms: float = 0.0) -> dict[str, Any]:
    tasks = [{"id": f"p{i}", "type": "python", "params": {"callable": "benchfns:work", "args": {"ms": ms}}}
             for i in range(n)]
    edges = [{"from": f"p{i}", "to": f"p{i + 1}"} for i in range(n - 1)]
    return {"format": "taskloom/v1", "name": "bench-python-chain", "tasks": tasks, "edges": edges}


def pool_parallel_seconds(pool: ProcessPoolExecutor, fns: Any, n: int, ms: float) -> float:
    started = time.perf_counter()
    list(pool.map(fns.work, [ms] * n))
    return time.perf_counter() - started


def pool_chain_seconds(pool: ProcessPoolExecutor, fns: Any, n: int, ms: float) -> float:
    started = time.perf_counter()
    for _ in range(n):
        pool.submit(fns.work, ms).result()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=200)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shapes = [("parallel", ms, args.parallel) for ms in WORK_MS] + [("chain", ms, args.chain) for ms in (0.0, 10.0)]
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-py-") as tmp:
        folder = Path(tmp)
        (folder / "benchfns.py").write_text(MODULE)
        sys.path.insert(0, tmp)
        fns = importlib.import_module("benchfns")
        baseline = {}
        with ProcessPoolExecutor(WIDTH) as pool:
            list(pool.map(fns.work, [0.0] * WIDTH * 2))  # start its workers before timing, as ours are
            for shape, ms, n in shapes:
                timer = pool_parallel_seconds if shape == "parallel" else pool_chain_seconds
                baseline[shape, ms] = min(timer(pool, fns, n, ms) for _ in range(args.repeat))
        ours = {}
        executor = LocalExecutor(WIDTH)
        executor.pool.prestart()
        try:
            engine_seconds(chain_doc(4), folder, executor)  # warm the workers' imports
            for shape, ms, n in shapes:
                doc = parallel_doc(n, ms) if shape == "parallel" else chain_doc(n, ms)
                ours[shape, ms] = min(engine_seconds(doc, folder, executor) for _ in range(args.repeat))
        finally:
            executor.close()
        fresh_n = 20
        fresh = engine_seconds(chain_doc(fresh_n), folder, NoPool())
    print(f"python tasks: worker pool vs ProcessPoolExecutor({WIDTH})  ({platform.python_version()},"
          f" {platform.machine()}, best of {args.repeat})")
    print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
    print()
    print("| shape | work per task | Taskloom s | ms/task | ProcessPoolExecutor s | ms/task | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = {}
    for shape, ms, n in shapes:
        label = f"{n} independent tasks, {WIDTH} at a time" if shape == "parallel" else f"{n}-task chain"
        mine, base = ours[shape, ms], baseline[shape, ms]
        ratios[shape, ms] = mine / base
        print(f"| {label} | {ms:g} ms | {mine:.3f} | {mine / n * 1e3:.2f} | {base:.3f} | {base / n * 1e3:.2f}"
              f" | {mine / base:.2f}x |")
    print()
    print(f"for context, a fresh interpreter per attempt (no pool): {fresh / fresh_n * 1e3:.1f} ms/task"
          f" on a {fresh_n}-task chain of trivial calls")
    for (shape, ms), ratio in ratios.items():
        verdict = "holds" if ratio <= GOAL_RATIO else "MISSES"
        print(f"goal: within {GOAL_RATIO:g}x of ProcessPoolExecutor, {shape} at {ms:g} ms/task: {ratio:.2f}x,"
              f" goal {verdict}")


if __name__ == "__main__":
    main()
