"""W2, a fan-out/fan-in of ``python`` tasks (1 -> 500 -> 1), through the runner and three baselines.

Run:  .venv/bin/python bench/bench_w2.py [--width 500] [--work-ms 0] [--repeat 3] [--profile]

The workload W2: a ``source`` task, ``--width`` independent tasks ``t0`` ...
each reading the source's output through ``{{ tasks.source.output }}`` in
their ``args``, and a ``sink`` task reading all of their outputs through
``{{ tasks.t0.output }}`` ... (one template per upstream, in a list). The
same functions, written to a temporary module, are called

- by the real runner as ``python`` tasks, journaled in SQLite, through the
  local executor's pool of 2 warm workers (``max_parallel_tasks: 2``);
- by a ``concurrent.futures.ProcessPoolExecutor(2)``: the source, then the
  fan-out submitted at once, then the sink with the fan-out's results;
- by a ``ThreadPoolExecutor(2)``, the same way;
- by a plain serial loop.

Warm: a first run starts the runner's workers and imports the module in
them (and in the process pool's); then best of ``--repeat``. Each function
keeps the CPU busy for ``--work-ms`` (default 0: empty functions, so the
figures are the cost of a task, not of its work).

Orchestration per task is (Taskloom s - ProcessPoolExecutor s) / tasks:
what the runner adds to the cost of calling the functions in other
processes. Goals: under 0.5 ms of it per task, and Taskloom within 2x of the
process pool.

``--profile`` runs one warm Taskloom W2 under cProfile instead and prints
the 25 biggest costs by cumulative and by own time, for the loop's thread
(planning, templates, the journal's transactions) and, apart, for the
threads the run starts (its task threads, which hand each attempt to a
worker and wait for its reply, and its log flusher). Waiting shows as own
time there: an idle task thread in ``SimpleQueue.get``, the flusher in
``LogBuffer.flush`` while the loop holds the write lock.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import platform
import pstats
import sys
import tempfile
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import engine_seconds  # noqa: E402  (bench/common.py)
from taskloom.core.model import Workflow  # noqa: E402
from taskloom.core.states import RunState  # noqa: E402
from taskloom.runtime.execution import standalone_runner  # noqa: E402
from taskloom.runtime.executors.local import LocalExecutor  # noqa: E402
from taskloom.storage import SqliteJournal, connect, create_run  # noqa: E402

__all__ = ["w2_doc", "main"]

GOAL_ORCHESTRATION_MS = 0.5
GOAL_RATIO = 2.0
WIDTH = 2
SEED = 7
MODULE = '''
import time


def _busy(ms):
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def source(seed, ms=0.0):
    _busy(ms)
    return seed


def fan(x, i, ms=0.0):
    _busy(ms)
    return x + i


def sink(parts, ms=0.0):
    _busy(ms)
    return sum(parts)
'''
MODULE_NAME = "benchw2"


def w2_doc(width: int = 500, ms: float = 0.0) -> dict[str, Any]:
    """W2: ``source`` -> ``width`` tasks reading its output -> ``sink`` reading all of theirs, by templates."""
    call = f"{MODULE_NAME}:"
    tasks = [{"id": "source", "type": "python", "params": {"callable": call + "source",
                                                           "args": {"seed": SEED, "ms": ms}}}]
    tasks += [{"id": f"t{i}", "type": "python", "params": {
        "callable": call + "fan", "args": {"x": "{{ tasks.source.output }}", "i": i, "ms": ms}}}
        for i in range(width)]
    tasks.append({"id": "sink", "type": "python", "params": {
        "callable": call + "sink", "args": {"parts": [f"{{{{ tasks.t{i}.output }}}}" for i in range(width)],
                                            "ms": ms}}})
    edges = [{"from": "source", "to": f"t{i}"} for i in range(width)]
    edges += [{"from": f"t{i}", "to": "sink"} for i in range(width)]
    return {"format": "taskloom/v1", "name": "bench-w2", "tasks": tasks, "edges": edges,
            "settings": {"max_parallel_tasks": WIDTH}}


def expected_sink(width: int) -> int:
    return sum(SEED + i for i in range(width))


def checked_run(doc: dict[str, Any], folder: Path, executor: Any, width: int) -> None:
    """Run ``doc`` once through the real runner and check the sink's output (the templates did their job)."""
    db = connect(folder / f"check-{time.monotonic_ns()}.db")
    run_id = create_run(db, doc, at=time.time(), params={})
    runner = standalone_runner(Workflow.from_document(doc), SqliteJournal(db), cwd=str(folder), executor=executor)
    outcome = runner.run(run_id, params={}, logical_time=time.time())
    assert outcome is RunState.SUCCEEDED, f"{doc['name']} ended {outcome.value}"
    row = db.execute("SELECT output FROM task_states WHERE run_id = ? AND task_id = 'sink'", [run_id]).fetchone()
    db.close()
    assert json.loads(row[0]) == expected_sink(width), row


def pool_seconds(pool: Executor, fns: Any, width: int, ms: float) -> float:
    """The source, then the fan-out submitted at once, then the sink: through ``pool``."""
    started = time.perf_counter()
    x = pool.submit(fns.source, SEED, ms).result()
    futures = [pool.submit(fns.fan, x, i, ms) for i in range(width)]
    total = pool.submit(fns.sink, [f.result() for f in futures], ms).result()
    elapsed = time.perf_counter() - started
    assert total == expected_sink(width), total
    return elapsed


def serial_seconds(fns: Any, width: int, ms: float) -> float:
    started = time.perf_counter()
    x = fns.source(SEED, ms)
    total = fns.sink([fns.fan(x, i, ms) for i in range(width)], ms)
    elapsed = time.perf_counter() - started
    assert total == expected_sink(width), total
    return elapsed


def times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def best(repeat: int, timer: Callable[[], float]) -> float:
    return min(timer() for _ in range(repeat))


class ThreadProfiles:
    """A cProfile per thread started while active (the runner's task threads), merged on ``stats``."""

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._threads: list[threading.Thread] = []
        self._run = threading.Thread.run

    def __enter__(self) -> "ThreadProfiles":
        profiles, threads, run = self._profiles, self._threads, self._run

        def profiled_run(thread: threading.Thread) -> None:
            profile = cProfile.Profile()
            profiles.append(profile)
            threads.append(thread)
            profile.enable()
            try:
                run(thread)
            finally:
                profile.disable()

        threading.Thread.run = profiled_run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.run = self._run  # type: ignore[method-assign]

    def stats(self, stream: io.StringIO) -> pstats.Stats | None:
        """Wait for the threads to end (each disables its own profile), then merge their profiles."""
        for thread in self._threads:
            thread.join(timeout=10)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"threads still running: {alive}"
        if not self._profiles:
            return None
        stats = pstats.Stats(self._profiles[0], stream=stream)
        for profile in self._profiles[1:]:
            stats.add(profile)
        return stats


def profile(width: int, ms: float, folder: Path) -> None:
    """One warm Taskloom W2 under cProfile: the loop's thread and the task threads, apart."""
    doc = w2_doc(width, ms)
    executor = LocalExecutor(WIDTH)
    executor.pool.prestart()
    try:
        checked_run(doc, folder, executor, width)  # warm: workers started, module imported in them
        loop = cProfile.Profile()
        with ThreadProfiles() as threads:
            loop.enable()
            seconds = engine_seconds(doc, folder, executor)
            loop.disable()
        stream = io.StringIO()
        task_stats = threads.stats(stream)
    finally:
        executor.close()
    tasks = width + 2
    print(f"W2 under cProfile: {tasks} python tasks in {seconds:.3f} s ({seconds / tasks * 1e3:.2f} ms/task,"
          f" slowed down by the profiler)  ({platform.python_version()})")
    print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
    parts = [("the loop's thread (runner.run: plan, templates, journal)", pstats.Stats(loop, stream=stream)),
             (f"the threads started during the run ({len(threads._threads)}, merged: its task threads, which hand"
              " attempts to the workers, its log flusher, a worker's replacement)", task_stats)]
    for title, stats in parts:
        if stats is None:
            continue
        for order in ("cumulative", "tottime"):
            stream.seek(0)
            stream.truncate()
            stats.sort_stats(order).print_stats(25)
            print(f"\n=== {title}, top 25 by {order}")
            print(stream.getvalue().strip("\n"))


def compare(width: int, ms: float, repeat: int, folder: Path, fns: Any) -> None:
    doc = w2_doc(width, ms)
    tasks = width + 2
    seconds: dict[str, float] = {}
    with ProcessPoolExecutor(WIDTH) as pool:
        pool_seconds(pool, fns, width, ms)  # warm: its workers started and the module imported
        seconds["pool"] = best(repeat, lambda: pool_seconds(pool, fns, width, ms))
    with ThreadPoolExecutor(WIDTH) as threads:
        pool_seconds(threads, fns, width, ms)
        seconds["threads"] = best(repeat, lambda: pool_seconds(threads, fns, width, ms))
    serial_seconds(fns, width, ms)
    seconds["serial"] = best(repeat, lambda: serial_seconds(fns, width, ms))
    executor = LocalExecutor(WIDTH)
    executor.pool.prestart()
    try:
        checked_run(doc, folder, executor, width)  # warm: workers started, module imported in them
        started_before = executor.pool.started
        runs = [engine_seconds(doc, folder, executor) for _ in range(repeat)]
        restarts = executor.pool.started - started_before
        max_jobs = executor.pool.max_jobs
    finally:
        executor.close()
    seconds["taskloom"] = min(runs)
    orchestration_ms = (seconds["taskloom"] - seconds["pool"]) / tasks * 1e3
    ratio = seconds["taskloom"] / seconds["pool"]

    print(f"W2: fan-out/fan-in of python tasks, 1 -> {width} -> 1 ({tasks} tasks), {ms:g} ms of work per task,"
          f" {WIDTH} at a time  ({platform.python_version()}, {platform.machine()}, warm, best of {repeat})")
    print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
    print()
    print("| way | seconds | ms/task | vs ProcessPoolExecutor |")
    print("| --- | ---: | ---: | ---: |")
    rows = [("Taskloom: python tasks, journaled in SQLite, 2 warm workers", "taskloom"),
            (f"`ProcessPoolExecutor({WIDTH})`", "pool"),
            (f"`ThreadPoolExecutor({WIDTH})`", "threads"),
            ("serial loop", "serial")]
    for label, key in rows:
        s = seconds[key]
        print(f"| {label} | {s:.5f} | {s / tasks * 1e3:.4f} | {times(s / seconds['pool'])} |")
    print()
    print(f"Taskloom runs: {', '.join(f'{s:.3f}' for s in runs)} s; workers started during them: {restarts}"
          f" (a worker retires after {max_jobs} jobs)")
    print(f"Taskloom vs threads: {times(seconds['taskloom'] / seconds['threads'])};"
          f" vs the serial loop: {times(seconds['taskloom'] / seconds['serial'])}")
    print(f"orchestration: {orchestration_ms:.3f} ms per task"
          f" (Taskloom s - ProcessPoolExecutor s) / {tasks} * 1000")
    verdict = "holds" if orchestration_ms < GOAL_ORCHESTRATION_MS else "MISSES"
    print(f"goal: under {GOAL_ORCHESTRATION_MS:g} ms of orchestration per task on W2: {verdict}"
          f" ({orchestration_ms:.3f} ms)")
    verdict = "holds" if ratio <= GOAL_RATIO else "MISSES"
    print(f"goal: python tasks within {GOAL_RATIO:g}x of a ProcessPoolExecutor on W2: {verdict} ({ratio:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=500, help="tasks between the source and the sink")
    parser.add_argument("--work-ms", type=float, default=0.0, help="CPU time each function spends")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile one warm Taskloom W2 instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-w2-") as tmp:
        folder = Path(tmp)
        (folder / f"{MODULE_NAME}.py").write_text(MODULE)
        sys.path.insert(0, tmp)
        fns = importlib.import_module(MODULE_NAME)
        if args.profile:
            profile(args.width, args.work_ms, folder)
        else:
            compare(args.width, args.work_ms, args.repeat, folder, fns)


if __name__ == "__main__":
    main()
