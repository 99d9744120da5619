"""Log capture: how fast a chatty task's lines reach SQLite, that none is lost, and that memory stays bounded.

Run:  .venv/bin/python bench/bench_logs.py [--lines 1000000] [--small 100000,300000] [--seconds 3]

Each case runs in a child Python process of its own that runs one workflow
with the real runner (journaled in a fresh SQLite file) and reports its own
peak resident memory (``ru_maxrss``: the runner, its log buffer and SQLite;
not the task's process). The task is a ``shell`` task running this
interpreter on a small program, so the baseline is the very same command
line with its stdout to /dev/null.

1. flat out: the task prints ``--lines`` lines as fast as it can. Lines per
   second stored; every line checked in SQLite (the count, the first and the
   last line, and that line k is the k-th line printed, in order).
2. the same with each of the ``--small`` line counts: peak memory must not
   grow with the number of lines (the log buffer holds at most a fixed number
   of lines and slows a faster task down instead). The goal: the big case's
   peak within 1.5x of the smallest case's.
3. paced: the task prints 50,000 lines a second for ``--seconds`` seconds; if
   capture keeps up, it takes as long in the engine as to /dev/null.

The memory baseline is a child that imports the same modules and opens a
database, and runs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskloom.storage.sqlite import sqlite3  # noqa: E402

__all__ = ["FLAT", "PACED", "main"]

FLAT = """import sys
w = sys.stdout.write
for i in range({n}):
    w(f'line {{i}} of a chatty task\\n')
"""
# 1,000 lines every 20 ms, on a fixed timetable (no drift).
PACED = """import sys, time
start = time.perf_counter()
for s in range({seconds}):
    for k in range(50):
        sys.stdout.write(''.join(f'line {{s}}-{{k}}-{{j}}\\n' for j in range(1000)))
        sys.stdout.flush()
        time.sleep(max(0.0, start + s + (k + 1) / 50 - time.perf_counter()))
"""
#: Memory counts as bounded when the big case's peak is within this factor of the small case's.
RSS_GROWTH_LIMIT = 1.5


def command(code: str) -> str:
    """The shell command line that runs ``code`` with this interpreter."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case in this (child) process; return its figures."""
    from taskloom.core.model import Workflow
    from taskloom.runtime.execution import standalone_runner
    from taskloom.core.states import RunState
    from taskloom.storage import SqliteJournal, connect, create_run

    db = connect(Path(spec["folder"]) / f"{spec['case']}-{time.monotonic_ns()}.db")
    if spec["case"] == "idle":
        db.conn.close()
        return {"rss_mb": peak_rss_mb()}
    code = FLAT.format(n=spec["lines"]) if spec["case"] == "flat" else PACED.format(seconds=spec["seconds"])
    doc = {"format": "taskloom/v1", "name": "chatty",
           "tasks": [{"id": "chatty", "type": "shell", "params": {"command": command(code)}, "timeout": 3600}]}
    run_id = create_run(db, doc, at=time.time(), params={})
    started = time.perf_counter()
    outcome = standalone_runner(Workflow.from_document(doc), SqliteJournal(db), cwd=os.getcwd()).run(
        run_id, params={}, logical_time=time.time())
    elapsed = time.perf_counter() - started
    rss = peak_rss_mb()  # before the check below reads the rows back
    assert outcome is RunState.SUCCEEDED, outcome
    query = "SELECT line FROM logs WHERE run_id = ? AND stream = 'stdout' ORDER BY id"
    stored, in_order, first, last = 0, True, None, None
    for (line,) in db.conn.execute(query, [run_id]):
        if spec["case"] == "flat" and in_order and line != f"line {stored} of a chatty task":
            in_order = False
        first = line if first is None else first
        last = line
        stored += 1
    db.conn.close()
    return {"seconds": elapsed, "stored": stored, "in_order": in_order, "first": first, "last": last, "rss_mb": rss}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` in a fresh interpreter and return what it reported."""
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec['case']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def to_devnull(code: str) -> float:
    """The task's command with its stdout to /dev/null; seconds."""
    started = time.perf_counter()
    subprocess.run(command(code), shell=True, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--small", default="100000,300000", help="line counts of the memory comparison cases")
    parser.add_argument("--seconds", type=int, default=3, help="length of the paced case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
          f"{platform.machine()} {platform.system()}")
    with tempfile.TemporaryDirectory() as tmp:
        idle = run_child({"case": "idle", "folder": tmp})
        big = run_child({"case": "flat", "folder": tmp, "lines": args.lines})
        sizes = [int(x) for x in args.small.split(",")]
        smalls = [(n, run_child({"case": "flat", "folder": tmp, "lines": n})) for n in sizes]
        paced = run_child({"case": "paced", "folder": tmp, "seconds": args.seconds})
    big_plain = to_devnull(FLAT.format(n=args.lines))
    paced_plain = to_devnull(PACED.format(seconds=args.seconds))
    paced_lines = 50_000 * args.seconds

    print()
    print(f"{'case':<34} {'lines stored':>12} {'engine s':>9} {'lines/s':>10} {'/dev/null s':>11} "
          f"{'peak RSS MiB':>12}")
    rows = [  # label, figures, /dev/null seconds, lines printed
        (f"flat out, {args.lines:,} lines", big, big_plain, args.lines),
        *[(f"flat out, {n:,} lines", r, to_devnull(FLAT.format(n=n)), n) for n, r in smalls],
        (f"paced 50,000 lines/s for {args.seconds} s", paced, paced_plain, paced_lines),
    ]
    for label, r, plain, _ in rows:
        print(f"{label:<34} {r['stored']:>12,} {r['seconds']:>9.2f} {r['stored'] / r['seconds']:>10,.0f} "
              f"{plain:>11.2f} {r['rss_mb']:>12.1f}")
    print(f"{'idle: imports and a database only':<34} {'':>12} {'':>9} {'':>10} {'':>11} {idle['rss_mb']:>12.1f}")

    lost = [label for label, r, _, printed in rows if r["stored"] != printed]
    order_ok = big["in_order"] and all(r["in_order"] for _, r in smalls)
    ends_ok = (big["first"] == "line 0 of a chatty task" and big["last"] == f"line {args.lines - 1} of a chatty task")
    print()
    print(f"none lost: {'holds' if not lost and order_ok and ends_ok else 'DOES NOT HOLD'} "
          f"(count, first {big['first']!r}, last {big['last']!r}, every line in sequence: {order_ok})")
    smallest, small = smalls[0]
    growth = big["rss_mb"] / small["rss_mb"]
    peaks = " / ".join(f"{r['rss_mb']:.1f}" for r in [*(r for _, r in smalls), big])
    counts = " / ".join(f"{n:,}" for n in [*(n for n, _ in smalls), args.lines])
    print(f"memory bounded: {'holds' if growth <= RSS_GROWTH_LIMIT else 'DOES NOT HOLD'} "
          f"(peak {peaks} MiB for {counts} lines: x{growth:.2f} for {args.lines // smallest}x the lines; "
          f"{big['rss_mb'] - idle['rss_mb']:+.1f} MiB over the idle process)")
    print(f"paced task not slowed down: {paced['seconds']:.2f} s in the engine vs {paced_plain:.2f} s to /dev/null")


if __name__ == "__main__":
    main()
