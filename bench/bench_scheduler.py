"""Scheduler punctuality: how late firings of a 1-second interval trigger start, against the ideal instants.

Run:  .venv/bin/python bench/bench_scheduler.py [--firings 60]

Two schedulers run side by side for the same span:
- Taskloom's, in this process on a fresh home: lateness = when the run was
  created minus the firing's instant (whole seconds, so drift would show);
- the naive loop ``schedule.run_pending(); time.sleep(1)`` with
  ``schedule.every(1).seconds``: lateness = when the job ran minus the ideal
  instants (the first call plus k seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import schedule  # noqa: E402

from taskloom.runtime.scheduler import Scheduler  # noqa: E402
from taskloom.storage.store import Workspace  # noqa: E402


def taskloom_lateness(home: Path, seconds: float) -> list[float]:
    ws = Workspace(home)
    doc = {"format": "taskloom/v1", "name": "tick", "tasks": [{"id": "n", "type": "noop"}],
           "triggers": [{"id": "t", "type": "interval", "every": 1, "unit": "seconds"}],
           "settings": {"overlap": "allow", "max_active_runs": 50}}
    ws.save(doc)
    service = Scheduler(home, lease_ttl=5.0)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    time.sleep(seconds)
    service.stop()
    thread.join()
    rows = ws.db.execute(
        "SELECT r.created - f.instant FROM firings f JOIN runs r ON r.id = f.run_id WHERE f.workflow = 'tick'"
        " ORDER BY f.instant"
    ).fetchall()
    ws.close()
    return [r[0] for r in rows]


def naive_lateness(seconds: float) -> list[float]:
    calls: list[float] = []
    scheduler = schedule.Scheduler()
    scheduler.every(1).seconds.do(lambda: calls.append(time.time()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        scheduler.run_pending()
        time.sleep(1)
    if not calls:
        return []
    first = calls[0] - 1.0  # the job was scheduled one second before its first run was due
    return [t - (first + k + 1) for k, t in enumerate(calls)]


#: The goal: p99 lateness under 5 ms, and no drift (taken as the last 10 firings' mean within 2 ms of the first 10's).
GOAL_P99_MS = 5.0
GOAL_DRIFT_MS = 2.0


def figures(lateness: list[float]) -> tuple[float, float, float, float]:
    """p50, p99, max and drift of ``lateness`` (seconds, in firing order), in ms."""
    ms = sorted(x * 1000 for x in lateness)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    ordered = [x * 1000 for x in lateness]
    drift = statistics.mean(ordered[-10:]) - statistics.mean(ordered[:10]) if len(ordered) >= 20 else float("nan")
    return p50, p99, ms[-1], drift


def summary(label: str, lateness: list[float]) -> str:
    p50, p99, worst, drift = figures(lateness)
    return f"{label:<34} {len(lateness):>8} {p50:>9.2f} {p99:>9.2f} {worst:>9.2f} {drift:>10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firings", type=int, default=60)
    args = parser.parse_args()
    span = args.firings + 2.5
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        naive = threading.Thread(target=lambda: results.__setitem__("naive", naive_lateness(span)))
        naive.start()
        results["taskloom"] = taskloom_lateness(Path(tmp), span)
        naive.join()
    print(f"{'scheduler (1-second interval)':<34} {'firings':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'drift ms':>10}")
    print(summary("taskloom (sleeps until due)", results["taskloom"]))
    print(summary("schedule.run_pending(); sleep(1)", results["naive"]))
    print("drift: mean lateness of the last 10 firings minus that of the first 10")
    _, p99, _, drift = figures(results["taskloom"])
    ok = p99 < GOAL_P99_MS and abs(drift) < GOAL_DRIFT_MS
    print(f"goal: p99 under {GOAL_P99_MS:g} ms and no drift (|drift| under {GOAL_DRIFT_MS:g} ms) "
          f"(p99 {p99:.2f} ms, drift {drift:+.2f} ms): {'holds' if ok else 'DOES NOT HOLD'}")


if __name__ == "__main__":
    main()
