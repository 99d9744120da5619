"""Benchmark: the Runs page (run-log viewer) on a big store: 100,000 runs and 1,000,000 log lines.

Fills a fresh Taskloom home (cached under /tmp; ``--fresh`` regenerates it)
with the example workflows, runs of them spread over 60 days with realistic
statuses and triggers, a few ``task_states`` rows per run, and log lines
concentrated on some runs, one of which has 200,000 lines. Then opens the
app's Runs page with Streamlit's AppTest and times ``at.run()`` (server time:
the whole script run, not the browser's drawing), best and median of
``--repeat`` runs, each in a fresh session:

  (a) the run table, first page;
  (b) the table after a status filter is chosen (the rerun);
  (c) ``?run=ID`` of the 200,000-line run: its detail and first log page;
  (d) a search in that run's log (the rerun after typing it).

and the storage queries alone (``search_runs``, ``log_page``). The goal: the
run table and a log page each render in under 0.5 s of server time.

Run from the project root::

    .venv/bin/python bench/bench_runlog.py [--fresh] [--repeat 5] [--home /tmp/taskloom-bench-runlog]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskloom.storage.sqlite import sqlite3  # noqa: E402

__all__ = ["generate", "main"]

DEFAULT_HOME = Path("/tmp/taskloom-bench-runlog")
N_RUNS = 100_000
N_LOGS = 1_000_000
BIG_RUN_LINES = 200_000
DAYS = 60
MARKER = "generated.json"  # written last: a home without it is incomplete and regenerated
SEARCH = "checksum mismatch"  # appears on every 1,000th line of the big run
STATUSES = [("succeeded", 82), ("failed", 9), ("cancelled", 2), ("crashed", 1), ("running", 3), ("queued", 3)]
TRIGGERS = [("cron", 70), ("manual", 15), ("webhook", 8), ("rerun", 5), ("api", 2)]
ERRORS = ["task fetch failed: exit code 1", "task load timed out after 600 s", "runner lost (heartbeat expired)",
          "task transform failed: KeyError: 'score'", "HTTP 503 from https://api.example.com/items"]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]], k: int) -> list[str]:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs], k=k)


def generate(home: Path, seed: int = 11) -> dict[str, Any]:
    """Fill ``home`` (created fresh); return what the benchmark needs to know (the big run's id...)."""
    from taskloom.storage.store import Workspace

    home.mkdir(parents=True, exist_ok=True)
    for name in ("taskloom.db", "taskloom.db-wal", "taskloom.db-shm", MARKER):
        (home / name).unlink(missing_ok=True)
    ws = Workspace(home)
    for path in sorted((ROOT / "assets" / "examples").glob("*.json")):
        ws.save(json.loads(path.read_text()))
    ws.close()

    rng = random.Random(seed)
    conn = sqlite3.connect(home / "taskloom.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    flows = []  # (name, version, sha256, task ids)
    for name, version, sha, body in conn.execute(
        "SELECT w.name, w.current_version, d.sha256, d.body FROM workflows w"
        " JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version"
        " JOIN documents d ON d.sha256 = v.document ORDER BY w.name"
    ):
        flows.append((name, version, sha, [t["id"] for t in json.loads(body)["tasks"]]))
    weights = [5 if f[0] == "hourly-scores" else 3 if f[0] == "api-poll" else 1 for f in flows]

    now = time.time()
    t0 = now - DAYS * 86400
    times = sorted(rng.uniform(t0, now - 60) for _ in range(N_RUNS))  # ids grow with time, like real runs
    statuses = _weighted(rng, STATUSES, N_RUNS)
    triggers = _weighted(rng, TRIGGERS, N_RUNS)
    picks = rng.choices(range(len(flows)), weights=weights, k=N_RUNS)
    runs, states = [], []
    for i in range(N_RUNS):
        run_id = i + 1
        name, version, sha, tasks = flows[picks[i]]
        created = times[i]
        status = statuses[i] if i < N_RUNS - 50 else rng.choice(["running", "queued", "succeeded"])
        started = None if status == "queued" else created + rng.uniform(0.01, 2)
        ended = None if status in ("queued", "running") else started + rng.expovariate(1 / 40)
        error = rng.choice(ERRORS) if status in ("failed", "crashed") else None
        trigger = triggers[i]
        runs.append((run_id, name, version, sha, status, trigger, "{}", created, created, started, ended, error,
                     max(1, run_id - rng.randint(1, 500)) if trigger == "rerun" else None))
        n_tasks = min(len(tasks), rng.randint(2, 4))
        for k, task in enumerate(tasks[:n_tasks]):
            if status == "succeeded":
                ts = "succeeded"
            elif status == "queued":
                ts = "pending"
            elif k < n_tasks - 1:
                ts = "succeeded"
            else:
                ts = {"failed": "failed", "crashed": "crashed", "cancelled": "cancelled", "running": "running"}[status]
            states.append((run_id, task, ts, 0 if ts == "pending" else 1, error if ts in ("failed", "crashed") else None,
                           ended or created))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO runs (id, workflow, version, document, status, trigger, params, logical_time, created,"
        " started, ended, error, parent_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
    conn.executemany(
        "INSERT INTO task_states (run_id, task_id, status, attempts, error, updated) VALUES (?, ?, ?, ?, ?, ?)",
        states)
    conn.execute("COMMIT")

    # the big run: a finished run of hello (drawn on the detail page), its first task printing 200,000 lines
    hello = next(f for f in flows if f[0] == "hello")
    big = int(rng.randint(N_RUNS // 2, N_RUNS - 100))
    b_created = times[big - 1]
    first = hello[3][0]
    conn.execute("BEGIN")
    conn.execute("UPDATE runs SET workflow = ?, version = ?, document = ?, status = 'succeeded', trigger = 'manual',"
                 " started = ?, ended = ?, error = NULL WHERE id = ?",
                 [hello[0], hello[1], hello[2], b_created + 0.5, b_created + 1800, big])
    conn.execute("DELETE FROM task_states WHERE run_id = ?", [big])
    conn.executemany(
        "INSERT INTO task_states (run_id, task_id, status, attempts, updated) VALUES (?, ?, 'succeeded', 1, ?)",
        [(big, t, b_created + 1800) for t in hello[3]])
    conn.executemany(
        "INSERT INTO attempts (run_id, task_id, number, status, started, ended, exit_code) VALUES (?, ?, 1, 'succeeded', ?, ?, 0)",
        [(big, t, b_created + 1 + k * 300, b_created + 1 + k * 300 + 290) for k, t in enumerate(hello[3])])
    conn.execute("COMMIT")

    # logs: the big run first, then 800,000 lines over ~3,000 other runs (a few chatty, most a few hundred)
    def big_lines():
        for j in range(BIG_RUN_LINES):
            text = (f"row {j}: {SEARCH} in block {j // 1000}" if j % 1000 == 999 else
                    f"row {j}: processed record {rng.getrandbits(32):08x} in {j % 97} ms")
            yield (big, first, 1, b_created + 1 + j * 0.0014, "stderr" if j % 1000 == 999 else "stdout", text)

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                     big_lines())
    conn.execute("COMMIT")
    remaining = N_LOGS - BIG_RUN_LINES
    chatty = rng.sample(range(1, N_RUNS + 1), 3000)
    sizes = [rng.paretovariate(1.2) for _ in chatty]
    scale = remaining / sum(sizes)
    counts = [max(1, int(s * scale)) for s in sizes]
    counts[0] += remaining - sum(counts)
    task_of = {r[0]: flows[picks[r[0] - 1]][3] for r in runs}

    def other_lines():
        for run_id, count in zip(chatty, counts):
            if run_id == big:
                continue
            tasks = task_of[run_id][:3]
            base = times[run_id - 1]
            for j in range(count):
                task = tasks[j * len(tasks) // count]
                yield (run_id, task, 1, base + j * 0.01, "stdout" if j % 50 else "stderr",
                       f"[{task}] step {j}: ok {rng.getrandbits(24):06x}")

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                     other_lines())
    conn.execute("COMMIT")
    conn.execute("UPDATE sqlite_sequence SET seq = (SELECT max(id) FROM runs) WHERE name = 'runs'")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts_now = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "task_states", "logs")}
    conn.close()
    info = {"big_run": big, "big_task": first, "counts": counts_now, "generated": now}
    (home / MARKER).write_text(json.dumps(info))
    return info


def _quiet_streamlit() -> None:
    import logging

    for name in ("streamlit", "streamlit.runtime.scriptrunner_utils.script_run_context"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--fresh", action="store_true", help="regenerate the cached home")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    home: Path = args.home
    if args.fresh or not (home / MARKER).is_file():
        print(f"generating {N_RUNS:,} runs and {N_LOGS:,} log lines in {home} ...", flush=True)
        took, info = _timed(lambda: generate(home))
        print(f"  generated in {took:.1f} s: {info['counts']}", flush=True)
    else:
        info = json.loads((home / MARKER).read_text())
        print(f"using the cached home {home} ({info['counts']}; --fresh regenerates)")
    big, big_task = info["big_run"], info["big_task"]

    os.environ["TASKLOOM_HOME"] = str(home)
    _quiet_streamlit()
    from streamlit.testing.v1 import AppTest

    from taskloom.storage import connect
    from taskloom.storage.runs import log_page, search_runs

    results: list[tuple[str, list[float]]] = []

    # storage alone
    db = connect(home / "taskloom.db")
    checks = [
        ("search_runs: first page", lambda: search_runs(db, limit=51)),
        ("search_runs: status=crashed", lambda: search_runs(db, status="crashed", limit=51)),
        ("search_runs: workflow+status", lambda: search_runs(db, workflow="hello", status="failed", limit=51)),
        ("search_runs: text 'timed out'", lambda: search_runs(db, text="timed out", limit=51)),
        ("search_runs: text, no hit (scan)", lambda: search_runs(db, text="zzz-none", limit=51)),
        ("search_runs: page 100 (keyset)", lambda: search_runs(db, before_id=N_RUNS - 99 * 50, limit=51)),
        ("log_page: big run, first page", lambda: log_page(db, big, task_id=big_task, limit=200)),
        ("log_page: big run, page after id", lambda: log_page(db, big, task_id=big_task,
                                                              after_id=_mid_id(db, big), limit=200)),
        ("log_page: big run, search", lambda: log_page(db, big, task_id=big_task, search=SEARCH, limit=200)),
        ("log_page: big run, search no hit", lambda: log_page(db, big, task_id=big_task, search="zzz-none",
                                                              limit=200)),
    ]
    for label, fn in checks:
        fn()  # warm
        results.append((label, [_timed(fn)[0] for _ in range(args.repeat)]))
    db.conn.close()

    app = str(ROOT / "taskloom" / "ui" / "web" / "app.py")

    def fresh() -> Any:
        return AppTest.from_file(app, default_timeout=120)

    def ok(at: Any) -> Any:
        assert not at.exception, [e.value for e in at.exception]
        return at

    cold, _ = _timed(lambda: ok(fresh().switch_page("views/runs.py").run()))  # imports, caches
    page_a, page_b, page_c, page_d = [], [], [], []
    for _ in range(args.repeat):
        at = fresh().switch_page("views/runs.py")
        took, _ = _timed(at.run)
        ok(at)
        assert at.dataframe, "no run table"
        page_a.append(took)

        at.selectbox(key="runs_status").set_value("crashed")
        took, _ = _timed(at.run)
        ok(at)
        assert len(at.dataframe[0].value) == 50
        assert set(at.dataframe[0].value["status"].astype(str).str.contains("crashed")) == {True}
        page_b.append(took)

        at = fresh().switch_page("views/runs.py")
        at.query_params["run"] = str(big)
        took, _ = _timed(at.run)
        ok(at)
        assert at.session_state["runs_selected"] == big
        logs = [d.value for d in at.dataframe if "line" in d.value.columns]
        assert logs and len(logs[0]) == 200, "no first log page"
        page_c.append(took)

        at.text_input(key="runs_log_search").input(SEARCH)
        took, _ = _timed(at.run)
        ok(at)
        logs = [d.value for d in at.dataframe if "line" in d.value.columns]
        assert logs and len(logs[0]) == min(200, BIG_RUN_LINES // 1000), "no search result"
        assert logs[0]["line"].str.contains(SEARCH).all()
        page_d.append(took)
    results += [
        ("page (a): run table, first page", page_a),
        ("page (b): table, status filter", page_b),
        ("page (c): run detail + log page", page_c),
        ("page (d): log search in the run", page_d),
    ]

    print(f"\nRuns page on {info['counts']['runs']:,} runs / {info['counts']['logs']:,} log lines"
          f" (big run {big}: {BIG_RUN_LINES:,} lines), {args.repeat} runs each:")
    print(f"  {'':36} {'best':>9} {'median':>9}")
    for label, times in results:
        print(f"  {label:36} {min(times) * 1000:7.1f}ms {statistics.median(times) * 1000:7.1f}ms")
    print(f"  (first AppTest run in this process, imports included: {cold:.3f}s)")
    worst = max(statistics.median(t) for label, t in results if label.startswith("page"))
    print(f"goal: the run table and a log page under 0.5 s of server time: "
          f"{'met' if worst < 0.5 else 'MISSED'} (worst median {worst:.3f}s)")


def _mid_id(db: Any, run_id: int) -> int:
    row = db.execute("SELECT min(id), max(id) FROM logs WHERE run_id = ?", [run_id]).fetchone()
    return (row[0] + row[1]) // 2


if __name__ == "__main__":
    main()
