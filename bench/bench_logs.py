"""Log capture: how fast a chatty task's lines reach SQLite, and whether capture slows the task.

Run:  .venv/bin/python bench/bench_logs.py [--lines 500000]

1. flat out: a python task prints ``--lines`` lines as fast as it can; the same
   child run with its stdout to /dev/null is the baseline.
2. paced: a task prints 50,000 lines a second for 3 seconds; if capture kept
   up, it takes 3 seconds in the engine too. Every line is counted in SQLite.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.model import Workflow  # noqa: E402
from engine.runner import Runner  # noqa: E402
from storage import SqliteJournal, connect, create_run  # noqa: E402

FLAT = """import sys
def main():
    w = sys.stdout.write
    for i in range({n}):
        w(f'line {{i}} of a chatty task\\n')
"""
# 1,000 lines every 20 ms, on a fixed timetable (no drift).
PACED = """import sys, time
def main():
    start = time.perf_counter()
    for s in range({seconds}):
        for k in range(50):
            sys.stdout.write(''.join(f'line {{s}}-{{k}}-{{j}}\\n' for j in range(1000)))
            sys.stdout.flush()
            time.sleep(max(0.0, start + s + (k + 1) / 50 - time.perf_counter()))
"""


def through_engine(code: str, folder: Path) -> tuple[float, int]:
    db = connect(folder / f"{time.monotonic_ns()}.db")
    doc = {"format": "taskloom/v1", "name": "chatty",
           "tasks": [{"id": "chatty", "type": "python", "params": {"code": code}}]}
    run_id = create_run(db, doc, at=time.time(), params={})
    started = time.perf_counter()
    Runner(Workflow.from_document(doc), SqliteJournal(db)).run(run_id, params={}, logical_time=time.time())
    elapsed = time.perf_counter() - started
    lines = db.execute("SELECT count(*) FROM logs WHERE run_id = ? AND stream = 'stdout'", [run_id]).fetchone()[0]
    db.conn.close()
    return elapsed, lines


def to_devnull(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code + "\nmain()\n"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flat = FLAT.format(n=args.lines)
        engine, stored = through_engine(flat, Path(tmp))
        plain = to_devnull(flat)
        paced = PACED.format(seconds=args.seconds)
        paced_engine, paced_stored = through_engine(paced, Path(tmp))
        paced_plain = to_devnull(paced)
    print(f"{'case':<34} {'lines stored':>12} {'engine s':>9} {'lines/s':>10} {'/dev/null s':>11}")
    print(f"{'flat out':<34} {stored:>12,} {engine:>9.2f} {stored / engine:>10,.0f} {plain:>11.2f}")
    print(f"{'paced 50,000 lines/s':<34} {paced_stored:>12,} {paced_engine:>9.2f} "
          f"{paced_stored / paced_engine:>10,.0f} {paced_plain:>11.2f}")
    assert stored == args.lines and paced_stored == 50_000 * args.seconds, "lines were lost"


if __name__ == "__main__":
    main()
