"""Run every benchmark in ``bench/`` one after the other, then summarise times and verdicts.

Run:  .venv/bin/python bench/bench_all.py [NAME ...]      (``make bench`` lists them all)

NAME is the part after ``bench_`` (``engine`` runs ``bench/bench_engine.py``),
each run with its default sizes. Each benchmark's output is shown as it
comes; the summary at the end gives how long each took, its goal lines (the
lines that say whether a goal holds), and the total against the ten-minute
budget. A missing or failing benchmark does not stop the others; the exit
status is 1 if any was missing or failed.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from taskloom.storage.sqlite import sqlite3  # noqa: E402  # the SQLite Taskloom's own connections use

__all__ = ["DEFAULT", "main"]

DEFAULT = ["engine", "validate", "logs", "logpages", "shell", "python", "w2", "dask", "scheduler", "designer", "runlog", "service", "writers"]
BUDGET_SECONDS = 600.0
_VERDICT = re.compile(r"^\s*(goal|target)\b|\b(holds|HOLD|meets|MISSES|met)\b")


@dataclass
class Outcome:
    """What one benchmark did."""

    name: str
    status: str  # "ok", "failed (exit N)" or "missing"
    seconds: float = 0.0
    verdicts: list[str] = field(default_factory=list)


def run_one(name: str) -> Outcome:
    """Run ``bench/bench_NAME.py``, echoing its output and keeping its goal lines."""
    script = BENCH / f"bench_{name}.py"
    print(f"\n=== {name}: {Path(sys.executable).name} bench/{script.name}", flush=True)
    if not script.exists():
        print(f"(missing: {script} does not exist)", flush=True)
        return Outcome(name, "missing")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "STREAMLIT_LOGGER_LEVEL": "error"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=BENCH.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    verdicts = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if _VERDICT.search(line):
            verdicts.append(line.strip())
    code = proc.wait()
    seconds = time.perf_counter() - started
    return Outcome(name, "ok" if code == 0 else f"failed (exit {code})", seconds, verdicts)


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or DEFAULT
    print(f"{date.today().isoformat()}: python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}", flush=True)
    started = time.perf_counter()
    outcomes = [run_one(name) for name in names]
    total = time.perf_counter() - started
    print("\n=== summary")
    print(f"{'benchmark':<12} {'seconds':>8}  status")
    for o in outcomes:
        print(f"{o.name:<12} {o.seconds:>8.1f}  {o.status}")
        for line in o.verdicts:
            print(f"{'':<12} {'':>8}    {line}")
    verdict = "holds" if total < BUDGET_SECONDS else "DOES NOT HOLD"
    print(f"{'total':<12} {total:>8.1f}  goal: every benchmark in under {BUDGET_SECONDS / 60:g} minutes: {verdict}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
