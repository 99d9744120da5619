"""Webhook runs in one process: what a run costs on one thread, and what group commit does for many.

Run:  .venv/bin/python bench/bench_writers.py [--runs 100] [--threads 20] [--slow-commit 0.005]

No HTTP: each thread does what a scheduler's run thread does for a webhook
(``Workspace.stored_target``, ``start_run``, ``execute``) with the 3-step
``transform`` workflow of ``bench_service.py``, on its own connection to one
SQLite file. Rows:

1. one thread: ms per run (the run's own cost, without HTTP or other threads);
2. ``--threads`` threads, with this disk's commits, groups as the store decides
   them (they form only when commits made alone take
   :data:`taskloom.storage.groupcommit.GROUP_ABOVE` or more), and with groups
   forced on;
3. the same with every commit made ``--slow-commit`` seconds slower (the
   ``storage.commit=sleep:S`` failpoint: a slow disk), groups as decided and
   forced off.

Each row prints runs/s, the process's CPU per run and write transactions per
commit (1.00: no group formed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_service import workflow  # noqa: E402
from taskloom.runtime.execution import execute  # noqa: E402
from taskloom.storage import groupcommit  # noqa: E402
from taskloom.storage.failpoints import ENV as FAILPOINTS  # noqa: E402
from taskloom.storage.store import Workspace  # noqa: E402


def runs_per_thread(home: Path, name: str, runs: int) -> None:
    ws = Workspace(home)
    parsed: dict = {}
    try:
        for n in range(runs):
            target = ws.stored_target(name, parsed=parsed)
            run_id, _ = ws.start_run(target, {}, owner="bench", from_text=False, trigger="webhook",
                                     trigger_id="call", trigger_payload={"n": n})
            status = execute(ws, run_id, owner="bench", cwd=str(home), workflow=target.workflow)
            assert status.value == "succeeded", f"run {run_id} ended {status.value}"
    finally:
        ws.close()


def measure(home: Path, name: str, threads: int, runs: int) -> tuple[float, float, float]:
    """(runs/s, CPU ms per run, transactions per commit) of ``threads`` threads doing ``runs`` runs each."""
    writer = Workspace(home).db.writer
    commits, transactions = writer.commits, writer.transactions
    cpu, started = time.process_time(), time.perf_counter()
    workers = [threading.Thread(target=runs_per_thread, args=(home, name, runs)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed, total = time.perf_counter() - started, threads * runs
    per_commit = (writer.transactions - transactions) / max(1, writer.commits - commits)
    return total / elapsed, (time.process_time() - cpu) / total * 1000, per_commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per thread")
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--slow-commit", type=float, default=0.005, help="seconds added to every commit")
    args = parser.parse_args()
    decided = groupcommit.GROUP_ABOVE
    rows = [
        ("one thread", 1, args.runs * 5, None, decided),
        (f"{args.threads} threads, this disk, groups as decided", args.threads, args.runs, None, decided),
        (f"{args.threads} threads, this disk, groups forced on", args.threads, args.runs, None, 0.0),
        (f"{args.threads} threads, commits +{args.slow_commit * 1000:g} ms, groups as decided", args.threads,
         max(1, args.runs // 5), args.slow_commit, decided),
        (f"{args.threads} threads, commits +{args.slow_commit * 1000:g} ms, groups off", args.threads,
         max(1, args.runs // 5), args.slow_commit, float("inf")),
    ]
    print(f"{'':58} {'runs/s':>8} {'ms/run':>8} {'CPU ms/run':>11} {'txn/commit':>11}")
    for label, threads, runs, slow, group_above in rows:
        with tempfile.TemporaryDirectory(prefix="taskloom-bench-writers-") as tmp:
            home = Path(tmp)
            doc = workflow("transform")
            Workspace(home).save(doc)
            if slow:
                os.environ[FAILPOINTS] = f"storage.commit=sleep:{slow}"
            groupcommit.GROUP_ABOVE = group_above
            try:
                runs_per_thread(home, doc["name"], 5)  # warm up; commits made alone tell how fast this disk is
                rate, cpu, per_commit = measure(home, doc["name"], threads, runs)
            finally:
                os.environ.pop(FAILPOINTS, None)
                groupcommit.GROUP_ABOVE = decided
        print(f"{label:58} {rate:8.0f} {1000 / rate * threads:8.2f} {cpu:11.2f} {per_commit:11.2f}", flush=True)


if __name__ == "__main__":
    main()
