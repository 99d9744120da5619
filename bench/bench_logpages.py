"""Benchmark: log pages of a 1,000,000-line run, first, middle and last, unfiltered and filtered by task.

Fills a fresh store with three runs of one four-task workflow: 200,000 lines
of an earlier run, the big run's 1,000,000 lines, then 200,000 of a later run
(so a page must find its run's lines among others'). The big run's tasks
write interleaved, as tasks running side by side do: ``load`` 60% of the
lines, ``score`` 30%, ``report`` 9%, ``audit`` 1%. Then, for each page, the
best and median of ``--repeat`` reads of:

* storage: :func:`taskloom.storage.runs.log_page` (the statements the API and
  the run viewer run);
* API: ``GET /runs/ID/logs?after_id=..&task=..&limit=1000`` answered by the
  real app (uvicorn on 127.0.0.1), timed by the client, so it includes HTTP
  and JSON: an upper bound of the server's time.

"first" is the page without a cursor, "middle" and "last" start after the id
of the line at the middle and 1,000 lines before the end of what the filter
keeps. Each row prints its ratio to the first filtered page (the cheap case
before the run index), and the sort the old plan needed (the unfiltered
first page read through the task index, which orders by task first) is timed
once on SQLite for comparison. The goal: every page under 20 ms.

The same is measured on a database of a temporary PostgreSQL server
(tests/pgserver.py) when its programs are installed, unless ``--no-postgres``.

Run from the project root::

    .venv/bin/python bench/bench_logpages.py [--lines 1000000] [--repeat 7] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from taskloom.storage.sqlite import sqlite3  # noqa: E402

__all__ = ["main"]

GOAL_MS = 20.0
LIMIT = 1000
TASKS = (("load", 60), ("score", 30), ("report", 9), ("audit", 1))
DOC = {"format": "taskloom/v1", "name": "chatty", "tasks": [
    {"id": task, "type": "shell", "params": {"command": "true"}} for task, _ in TASKS]}


def lines_of(rng: random.Random, run_id: int, count: int, start_ts: float) -> list[tuple[Any, ...]]:
    """``count`` log rows of ``run_id`` (run_id, task_id, attempt, ts, stream, line), tasks interleaved."""
    tasks = rng.choices([t for t, _ in TASKS], weights=[w for _, w in TASKS], k=count)
    return [(run_id, task, 1, start_ts + k * 0.001, "stderr" if k % 50 == 0 else "stdout",
             f"{task} line {k}: processed record {k * 7919 % 1_000_003} of batch {k // 1000}")
            for k, task in enumerate(tasks)]


def fill(home: Path, url: str | None, lines: int) -> int:
    """A store with the three runs' lines; the big run's id."""
    from taskloom.storage.store import Workspace

    ws = Workspace(home, database=url)
    ws.save(DOC)
    target = ws.target("chatty")
    run_ids = [ws.start_run(target, {}, from_text=False)[0] for _ in range(3)]
    ws.close()
    rng = random.Random(7)
    now = time.time()
    chunks = [lines_of(rng, run_ids[0], lines // 5, now), lines_of(rng, run_ids[1], lines, now + 1e4),
              lines_of(rng, run_ids[2], lines // 5, now + 2e4)]
    if url is None:
        conn = sqlite3.connect(home / "taskloom.db", isolation_level=None)
        conn.execute("BEGIN")
        for rows in chunks:
            conn.executemany("INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                             rows)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for rows in chunks:
                with conn.cursor().copy("COPY logs (run_id, task_id, attempt, ts, stream, line) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            conn.execute("VACUUM ANALYZE logs")
    return run_ids[1]


def cursors(db: Any, run_id: int, task: str | None) -> dict[str, int]:
    """The after_id of the first, middle and last page of what ``task`` keeps (None: every line)."""
    where, args = "run_id = ?", [run_id]
    if task is not None:
        where, args = where + " AND task_id = ?", [run_id, task]
    (count,) = db.execute(f"SELECT count(*) FROM logs WHERE {where}", args).fetchone()

    def nth(n: int) -> int:
        return db.execute(f"SELECT id FROM logs WHERE {where} ORDER BY id LIMIT 1 OFFSET ?", [*args, n]).fetchone()[0]

    return {"first": 0, "middle": nth(count // 2), "last": nth(max(0, count - LIMIT - 1))}


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(best, median) milliseconds of ``repeat`` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), statistics.median(times)


def serve(home: Path) -> tuple[str, Any]:
    """The real API app on a free loopback port, in a thread; (its URL, the server)."""
    import socket

    import uvicorn

    from taskloom.api.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(home), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the API did not start within 30 s")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def measure(label: str, home: Path, url: str | None, lines: int, repeat: int) -> dict[tuple[str, str], tuple]:
    """Fill a store and time every page; {(filter, page): (storage best, median, api best, median)}."""
    import httpx

    from taskloom.storage.db import connect
    from taskloom.storage.runs import log_page

    from taskloom.storage.home import DATABASE_URL_ENV

    os.environ.pop(DATABASE_URL_ENV, None)
    if url is not None:
        os.environ[DATABASE_URL_ENV] = url  # the API's store
    started = time.perf_counter()
    run_id = fill(home, url, lines)
    print(f"{label}: filled {lines * 7 // 5:,} lines in {time.perf_counter() - started:.0f} s")
    db = connect(url or home / "taskloom.db")
    base, server = serve(home)
    figures = {}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for task in (None, "score", "audit"):
                for page, after in cursors(db, run_id, task).items():
                    def storage() -> None:
                        got = log_page(db, run_id, task_id=task, after_id=after or None, limit=LIMIT)
                        assert got.lines, (task, page)

                    query = {"after_id": after, "limit": LIMIT, **({"task": task} if task else {})}

                    def api() -> None:
                        answer = client.get(f"/runs/{run_id}/logs", params=query)
                        answer.raise_for_status()
                        assert answer.json()["lines"], (task, page)

                    figures[(task or "every line", page)] = (*timed(storage, repeat), *timed(api, repeat))
            if url is None:
                old = ("SELECT id, task_id, attempt, ts, stream, line FROM logs INDEXED BY logs_task"
                       " WHERE run_id = ? ORDER BY id LIMIT ?")
                figures[("every line", "first, sorted (old plan)")] = (
                    *timed(lambda: db.execute(old, [run_id, LIMIT]).fetchall(), 3), float("nan"), float("nan"))
    finally:
        server.should_exit = True
        db.close()
    return figures


def report(label: str, figures: dict[tuple[str, str], tuple]) -> bool:
    reference = figures[("audit", "first")][0]
    print(f"\n{label}: a page of {LIMIT} lines (ms: best / median of the reads)")
    print(f"{'filter':<12} {'page':<26} {'storage':>17} {'API (HTTP+JSON)':>19} {'vs first filtered':>18}")
    worst = 0.0
    for (task, page), (s_best, s_med, a_best, a_med) in figures.items():
        api = "" if a_best != a_best else f"{a_best:7.2f} / {a_med:7.2f}"
        print(f"{task:<12} {page:<26} {s_best:7.2f} / {s_med:7.2f} {api:>19} {s_best / reference:>17.1f}x")
        if "old plan" not in page:
            worst = max(worst, s_med, a_med)  # the API's time includes the client's: an upper bound
    held = worst < GOAL_MS
    print(f"goal: every page under {GOAL_MS:g} ms of server time (the API's median, an upper bound): worst {worst:.2f} ms,"
          f" {'holds' if held else 'MISSES'}")
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the big run")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "sqlite"
        home.mkdir()
        report("SQLite", measure("SQLite", home, None, args.lines, args.repeat))
        if args.no_postgres:
            return
        from pgserver import PostgresServer, find_bindir, fresh_database

        if find_bindir() is None:
            print("\n(PostgreSQL is not installed here: SQLite only)")
            return
        with PostgresServer() as server:
            pg_home = Path(tmp) / "pg"
            pg_home.mkdir()
            url = fresh_database(server.url)
            report("PostgreSQL", measure("PostgreSQL", pg_home, url, args.lines, args.repeat))


if __name__ == "__main__":
    main()
