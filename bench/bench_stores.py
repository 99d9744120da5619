"""The two stores side by side: engine overhead per task, and runs a second through the scheduler.

Run:  .venv/bin/python bench/bench_stores.py [--fan 500] [--chain 200] [--runs 300] [--repeat 3]

A PostgreSQL server is started for the run from the machine's PostgreSQL
package (``tests/pgserver.py``: a temporary data folder, loopback, a free port),
so both columns come from the same machine in the same minute.

1. Engine: a ``--fan``-wide fan-out/fan-in and a ``--chain`` of ``noop`` tasks run
   in process by the real runner, every state change journaled in the store;
   milliseconds per task (best of ``--repeat``).
2. Scheduler: a real ``taskloom scheduler`` process on the store; ``--runs``
   one-task runs are queued at once (as the API queues them) and timed from the
   first until the store records the last one ended. Runs a second.

These are figures, not goals: PostgreSQL pays a network round trip per
statement where SQLite pays a function call, and it buys schedulers on
several hosts (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_engine import chain, fan  # noqa: E402
from pgserver import PostgresServer, fresh_database  # noqa: E402
from taskloom.core.model import Workflow  # noqa: E402
from taskloom.core.states import RunState  # noqa: E402
from taskloom.runtime.execution import standalone_runner  # noqa: E402
from taskloom.storage import SqliteJournal, connect, create_run  # noqa: E402
from taskloom.storage.store import Workspace  # noqa: E402

TASKLOOM = str(Path(sys.executable).with_name("taskloom"))


def engine_ms_per_task(doc: dict, database: str | Path, folder: Path) -> float:
    db = connect(database)
    try:
        started = time.perf_counter()
        workflow = Workflow.from_document(doc)
        run_id = create_run(db, doc, at=time.time(), params={})
        outcome = standalone_runner(workflow, SqliteJournal(db), cwd=str(folder)).run(
            run_id, params={}, logical_time=time.time())
        elapsed = time.perf_counter() - started
        assert outcome is RunState.SUCCEEDED, outcome
        return elapsed * 1000 / len(doc["tasks"])
    finally:
        db.conn.close()


def scheduler_runs_per_second(home: Path, url: str | None, runs: int) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "TASKLOOM_HOME": str(home), "LANG": "C.UTF-8"}
    if url:
        env["TASKLOOM_DATABASE_URL"] = url
    doc = home / "one.json"
    doc.write_text('{"format": "taskloom/v1", "name": "one", "tasks": [{"id": "t", "type": "noop"}]}')
    subprocess.run([TASKLOOM, "import", str(doc)], env=env, check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([TASKLOOM, "scheduler", "--no-api"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ws = Workspace(home, database=url)
    try:
        time.sleep(2)  # the scheduler holds its lease and sleeps
        target = ws.target("one")
        started = time.perf_counter()
        for _ in range(runs):
            ws.start_run(target, {}, owner=None)
        while True:
            left = ws.db.execute("SELECT count(*) FROM runs WHERE status NOT IN ('succeeded', 'failed')"
                                 ).fetchone()[0]
            if not left:
                break
            if time.perf_counter() - started > 300:
                raise SystemExit(f"{left} runs did not end within 300 s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        ended = ws.db.execute("SELECT count(*) FROM runs WHERE status = 'succeeded'").fetchone()[0]
        assert ended == runs, (ended, runs)
        return runs / elapsed
    finally:
        ws.close()
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fan", type=int, default=500)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with PostgresServer() as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"PostgreSQL server started in {server.start_seconds:.1f} s")
        print(f"\n{'engine (ms per task)':<32} {'SQLite':>10} {'PostgreSQL':>12} {'ratio':>7}")
        for label, doc in ((f"fan {args.fan}", fan(args.fan)), (f"chain {args.chain}", chain(args.chain))):
            sqlite = min(engine_ms_per_task(doc, folder / f"e{i}.db", folder) for i in range(args.repeat))
            pg = min(engine_ms_per_task(doc, fresh_database(server.url), folder) for _ in range(args.repeat))
            print(f"{label:<32} {sqlite:>10.3f} {pg:>12.3f} {pg / sqlite:>6.1f}x")
        homes = folder / "sqlite-home", folder / "pg-home"
        for home in homes:
            home.mkdir()
        sqlite_rate = scheduler_runs_per_second(homes[0], None, args.runs)
        pg_rate = scheduler_runs_per_second(homes[1], fresh_database(server.url), args.runs)
        print(f"\n{'scheduler (runs/s)':<32} {'SQLite':>10} {'PostgreSQL':>12} {'ratio':>7}")
        print(f"{f'{args.runs} queued 1-task runs':<32} {sqlite_rate:>10.1f} {pg_rate:>12.1f}"
              f" {sqlite_rate / pg_rate:>6.1f}x")


if __name__ == "__main__":
    main()
