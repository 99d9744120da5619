"""The Dask executor on a LocalCluster, against raw ``client.submit`` of the same functions with dependencies.

Run:  .venv/bin/python bench/bench_dask.py [--width 100] [--chain 30] [--repeat 2]

One ``LocalCluster`` of 2 worker processes (1 thread each) serves both
sides, in the same script:

- raw Dask: ``client.submit`` of the functions with their dependencies
  given as futures, the whole graph submitted at once, then waited for;
- Taskloom: the same graph as a workflow of ``python`` tasks run by the real
  runner (journaled in SQLite) with the Dask executor, ``max_parallel_tasks``
  four times the cluster's threads (so each worker has its next task queued
  while a result travels back, as raw Dask does with the whole graph).

Shapes: a fan-out/fan-in (one task, ``--width`` tasks depending on it, one
task depending on them all) and a ``--chain``, of a function keeping a CPU
busy for 0 or 20 ms. The goal: within 2x of raw Dask. Raw Dask runs each
function in the worker's thread; Taskloom runs it in a warm interpreter of
the worker machine (so a timeout or a cancel can kill it) and journals every
attempt before it starts, which is what the trivial rows show.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import engine_seconds  # noqa: E402  (bench/common.py)

GOAL_RATIO = 2.0
THREADS = 2
#: Attempts submitted at once: more than the cluster's threads, so workers have the next task queued
#: while a result travels back (raw Dask gets the same effect by receiving the whole graph).
IN_FLIGHT = 4 * THREADS
MODULE = '''
import time

def work(ms=0.0, *upstream):
    """Keep a CPU busy for ``ms`` milliseconds; ``upstream`` are the results it depends on (ignored)."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass
    return ms
'''


def fan_doc(width: int, ms: float) -> dict[str, Any]:
    call = {"callable": "benchdask:work", "args": {"ms": ms}}
    tasks = [{"id": "start", "type": "python", "params": call}, {"id": "end", "type": "python", "params": call}]
    tasks += [{"id": f"w{i}", "type": "python", "params": call} for i in range(width)]
    edges = [{"from": "start", "to": f"w{i}"} for i in range(width)] + [{"from": f"w{i}", "to": "end"} for i in range(width)]
    return {"format": "taskloom/v1", "name": "bench-dask-fan", "tasks": tasks, "edges": edges,
            "settings": {"max_parallel_tasks": IN_FLIGHT}}


def chain_doc(n: int, ms: float) -> dict[str, Any]:
    call = {"callable": "benchdask:work", "args": {"ms": ms}}
    tasks = [{"id": f"c{i}", "type": "python", "params": call} for i in range(n)]
    edges = [{"from": f"c{i}", "to": f"c{i + 1}"} for i in range(n - 1)]
    return {"format": "taskloom/v1", "name": "bench-dask-chain", "tasks": tasks, "edges": edges}


def raw_fan(client: Any, fns: Any, width: int, ms: float) -> float:
    started = time.perf_counter()
    first = client.submit(fns.work, ms, pure=False)
    middle = [client.submit(fns.work, ms, first, pure=False) for _ in range(width)]
    client.submit(fns.work, ms, *middle, pure=False).result()
    return time.perf_counter() - started


def raw_chain(client: Any, fns: Any, n: int, ms: float) -> float:
    started = time.perf_counter()
    future = client.submit(fns.work, ms, pure=False)
    for _ in range(n - 1):
        future = client.submit(fns.work, ms, future, pure=False)
    future.result()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--chain", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    from taskloom.runtime.executors.on_dask import DaskExecutor

    shapes = [("fan", ms, args.width) for ms in (0.0, 20.0)] + [("chain", ms, args.chain) for ms in (0.0, 20.0)]
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-dask-") as tmp:
        folder = Path(tmp)
        (folder / "benchdask.py").write_text(MODULE)
        sys.path.insert(0, tmp)
        fns = importlib.import_module("benchdask")
        with LocalCluster(n_workers=THREADS, threads_per_worker=1, processes=True, dashboard_address=None,
                          worker_dashboard_address=None) as cluster, \
                Client(cluster, set_as_default=False) as client:
            client.run(lambda: sys.path.insert(0, tmp))  # the raw side imports the same module on the workers
            raw_chain(client, fns, 4, 0.0)
            baseline = {}
            for shape, ms, n in shapes:
                timer = raw_fan if shape == "fan" else raw_chain
                baseline[shape, ms] = min(timer(client, fns, n, ms) for _ in range(args.repeat))
            executor = DaskExecutor(cluster.scheduler_address)
            try:
                engine_seconds(fan_doc(THREADS * 2, 0.0), folder, executor)  # warm the workers' pools
                ours = {}
                for shape, ms, n in shapes:
                    doc = fan_doc(n, ms) if shape == "fan" else chain_doc(n, ms)
                    ours[shape, ms] = min(engine_seconds(doc, folder, executor) for _ in range(args.repeat))
            finally:
                executor.close()
    print(f"dask executor vs raw client.submit on a LocalCluster of {THREADS} worker processes"
          f"  ({platform.python_version()}, best of {args.repeat})")
    print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
    print()
    print("| shape | work per task | Taskloom s | ms/task | raw Dask s | ms/task | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = {}
    for shape, ms, n in shapes:
        tasks = n + 2 if shape == "fan" else n
        label = f"fan-out/fan-in, {n} wide" if shape == "fan" else f"{n}-task chain"
        mine, base = ours[shape, ms], baseline[shape, ms]
        ratios[shape, ms] = mine / base
        print(f"| {label} | {ms:g} ms | {mine:.3f} | {mine / tasks * 1e3:.2f} | {base:.3f} | {base / tasks * 1e3:.2f}"
              f" | {mine / base:.2f}x |")
    print()
    for (shape, ms), ratio in ratios.items():
        verdict = "holds" if ratio <= GOAL_RATIO else "MISSES"
        print(f"goal: within {GOAL_RATIO:g}x of raw Dask, {shape} at {ms:g} ms/task: {ratio:.2f}x, goal {verdict}")


if __name__ == "__main__":
    main()
