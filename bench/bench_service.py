"""A workflow as an HTTP API: webhook latency and throughput of a real ``taskloom scheduler``.

Run:  .venv/bin/python bench/bench_service.py [--sequential 100] [--runs 500] [--clients 20] [--no-postgres]
      [--variants transform python]

For each store (SQLite in a fresh home; PostgreSQL from the machine's package,
``tests/pgserver.py``, unless ``--no-postgres`` or it is not installed) and each
variant of a 3-step workflow (``transform`` steps, ``python`` steps), a real
``taskloom scheduler`` process serves the workflow through a webhook trigger with
``"respond": "run"``:

1. latency: ``--sequential`` requests one after the other on one connection,
   p50 and p95 of the time from sending the request to reading the run's outputs;
2. throughput: ``--runs`` requests from ``--clients`` concurrent clients, runs a
   second from the first request to the last answer. Every run must end exactly
   once: counted from the store (runs, attempts), not from the answers.

The baseline is a minimal FastAPI app computing the same three steps in its own
process (uvicorn, same machine, same minute), measured the same way. ``CPU
ms/run`` is the scheduler process's own CPU time (all its threads, from
``/proc``) over the throughput phase, per run; a ``python`` step's worker
processes are not in it.

Comparing two commits on a machine whose speed drifts: check the other one out
(``git worktree add /tmp/old COMMIT``) and run this script with
``PYTHONPATH=/tmp/old``, in alternation with a run without it. The server
started then runs that checkout's code (the load generator stays this one). Then the
storage cost of one run: database bytes a run adds for small outputs and for a
3 MB output passed to one downstream task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from pgserver import PostgresServer, find_bindir, fresh_database  # noqa: E402
from taskloom.core.states import RunState  # noqa: E402
from taskloom.runtime.execution import execute  # noqa: E402
from taskloom.storage.db import backend_of  # noqa: E402
from taskloom.storage.scheduling import webhook_token  # noqa: E402
from taskloom.storage.store import Workspace  # noqa: E402

TASKLOOM = str(Path(sys.executable).with_name("taskloom"))

#: The three steps, as the baseline computes them and as the workflow's tasks do.
STEPS = {
    "transform": [
        {"id": "parse", "type": "transform", "params": {"value": {"n": "{{ trigger.payload.n }}"}}},
        {"id": "double", "type": "transform", "params": {"value": {"n": "{{ tasks.parse.output.n * 2 }}"}}},
        {"id": "answer", "type": "transform", "params": {"value": {"answer": "{{ tasks.double.output.n + 1 }}"}}},
    ],
    "python": [
        {"id": "parse", "type": "python",
         "params": {"code": "def main(n):\n    return {'n': n}\n", "args": {"n": "{{ trigger.payload.n }}"}}},
        {"id": "double", "type": "python",
         "params": {"code": "def main(n):\n    return {'n': n * 2}\n", "args": {"n": "{{ tasks.parse.output.n }}"}}},
        {"id": "answer", "type": "python",
         "params": {"code": "def main(n):\n    return {'answer': n + 1}\n", "args": {"n": "{{ tasks.double.output.n }}"}}},
    ],
}

BASELINE_APP = textwrap.dedent('''
    import sys
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    def parse(payload):
        return {"n": payload["n"]}

    def double(value):
        return {"n": value["n"] * 2}

    def answer(value):
        return {"answer": value["n"] + 1}

    @app.post("/hooks/{workflow}/{trigger_id}")
    async def hook(workflow: str, trigger_id: str, request: Request):
        first = parse(await request.json())
        second = double(first)
        return {"status": "succeeded", "outputs": {"parse": first, "double": second, "answer": answer(second)}}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
''')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workflow(variant: str) -> dict[str, Any]:
    steps = STEPS[variant]
    return {
        "format": "taskloom/v1", "name": f"api-{variant}",
        "triggers": [{"id": "call", "type": "webhook", "respond": "run"}],
        "tasks": steps,
        "edges": [{"from": a["id"], "to": b["id"]} for a, b in zip(steps, steps[1:])],
        "settings": {"overlap": "allow", "max_active_runs": 1000},
    }


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:g} s")


def check_answer(response: httpx.Response, n: int) -> None:
    body = response.json()
    assert response.status_code == 200, (response.status_code, body)
    assert body["status"] == "succeeded", body
    assert body["outputs"]["answer"] == {"answer": n * 2 + 1}, body


def sequential(url: str, headers: dict[str, str], count: int) -> list[float]:
    """Milliseconds per request, one after the other on one kept-alive connection."""
    times = []
    with httpx.Client(headers=headers, timeout=60) as client:
        for n in range(5):  # warm up: first imports, workers, connections
            check_answer(client.post(url, json={"n": n}), n)
        for n in range(count):
            started = time.perf_counter()
            response = client.post(url, json={"n": n})
            times.append((time.perf_counter() - started) * 1000)
            check_answer(response, n)
    return times


class _Connection:
    """One kept-alive HTTP/1.1 connection, as lean as a load generator can be.

    httpx's client spends about 1 ms of CPU per request, which on two cores is
    the limit of the whole measurement (the server shares them); this writes the
    request bytes and reads the response by its Content-Length.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: Any) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.head}Content-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def check_reply(status: int, body: Any, n: int) -> None:
    assert status == 200, (status, body)
    assert body["status"] == "succeeded", body
    assert body["outputs"]["answer"] == {"answer": n * 2 + 1}, body


async def _concurrent(url: str, headers: dict[str, str], runs: int, clients: int) -> float:
    parts = httpx.URL(url)
    numbers = iter(range(runs))

    async def client() -> None:
        connection = _Connection(parts.host, parts.port, headers)
        try:
            for n in numbers:
                check_reply(*await connection.post(parts.raw_path.decode(), {"n": n}), n)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return runs / (time.perf_counter() - started)


def concurrent(url: str, headers: dict[str, str], runs: int, clients: int) -> float:
    """Runs (requests answered) a second with ``clients`` requests in flight at once."""
    return asyncio.run(_concurrent(url, headers, runs, clients))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def count_from_store(ws: Workspace, name: str) -> tuple[int, int, int]:
    """(runs, runs that succeeded, task attempts) of workflow ``name``, read from the store."""
    runs = ws.db.execute("SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') FROM runs WHERE workflow = ?", [name]).fetchone()
    attempts = ws.db.execute(
        "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.workflow = ?", [name]).fetchone()
    return int(runs[0]), int(runs[1] or 0), int(attempts[0])


def service_env(home: Path, url: str | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "TASKLOOM_HOME": str(home), "LANG": "C.UTF-8"}
    if os.environ.get("PYTHONPATH"):  # a checkout of another commit: its server is measured (see the docstring)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if url:
        env["TASKLOOM_DATABASE_URL"] = url
        # 20 requests and 20 runs in flight each hold a connection; the default pool (20) would make them queue
        env["TASKLOOM_PG_POOL"] = "64"
    return env


def measure_taskloom(home: Path, url: str | None, variant: str, args: argparse.Namespace) -> dict[str, float]:
    home.mkdir(parents=True, exist_ok=True)
    doc = workflow(variant)
    ws = Workspace(home, database=url)
    ws.save(doc)
    token = webhook_token(ws.db, doc["name"], "call")
    port = free_port()
    log = open(home / "scheduler.log", "w")
    proc = subprocess.Popen([TASKLOOM, "scheduler", "--port", str(port)], env=service_env(home, url),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, proc)
        hook = f"http://127.0.0.1:{port}/hooks/{doc['name']}/call"
        headers = {"Authorization": f"Bearer {token}"}
        times = sequential(hook, headers, args.sequential)
        cpu_before = cpu_seconds(proc.pid)
        rate = concurrent(hook, headers, args.runs, args.clients)
        cpu_ms = (cpu_seconds(proc.pid) - cpu_before) / args.runs * 1000
        expected = 5 + args.sequential + args.runs
        runs, succeeded, attempts = count_from_store(ws, doc["name"])
        assert runs == succeeded == expected, f"{variant}: {runs} runs, {succeeded} succeeded, {expected} requests"
        assert attempts == 3 * expected, f"{variant}: {attempts} attempts for {expected} runs of 3 tasks"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        ws.close()
    return {"p50": statistics.median(times), "p95": percentile(times, 0.95), "rate": rate, "cpu": cpu_ms}


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) the process ``pid`` has used, from ``/proc`` (its children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_baseline(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BASELINE_APP, str(port)])
    try:
        wait_listening(port, proc)
        hook = f"http://127.0.0.1:{port}/hooks/api/call"
        times = sequential(hook, {}, args.sequential)
        rate = concurrent(hook, {}, args.runs, args.clients)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"p50": statistics.median(times), "p95": percentile(times, 0.95), "rate": rate}


def database_bytes(ws: Workspace) -> int:
    """Bytes the store holds: the SQLite file with its WAL, or the PostgreSQL database's size."""
    if backend_of(ws.db) == "postgresql":
        return int(ws.db.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    ws.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(ws.database)
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def run_once(ws: Workspace, name: str, home: Path) -> None:
    run_id, _ = ws.start_run(ws.target(name), {}, trigger="manual")
    status = execute(ws, run_id, owner="bench", cwd=str(home))
    assert status is RunState.SUCCEEDED, f"run {run_id} of {name} ended {status.value}"


def bytes_per_run(home: Path, url: str | None, size: int, runs: int) -> float:
    """Database bytes one run adds when its first task outputs ``size`` bytes that the second one reads."""
    home.mkdir(parents=True, exist_ok=True)
    code = f"def main():\n    return 'x' * {size}\n"
    doc = {"format": "taskloom/v1", "name": f"big-{size}",
           "tasks": [{"id": "make", "type": "python", "params": {"code": code}},
                     {"id": "use", "type": "transform", "params": {"value": {"got": "{{ tasks.make.output }}"}}}],
           "edges": [{"from": "make", "to": "use"}]}
    ws = Workspace(home, database=url)
    try:
        ws.save(doc)
        run_once(ws, doc["name"], home)  # the first run creates what every run shares (pages, indexes)
        before = database_bytes(ws)
        for _ in range(runs):
            run_once(ws, doc["name"], home)
        return (database_bytes(ws) - before) / runs
    finally:
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=list(STEPS), default=list(STEPS))
    args = parser.parse_args()

    stores: list[tuple[str, Any]] = [("sqlite", None)]
    server = None
    if not args.no_postgres and find_bindir() is not None:
        server = PostgresServer()
        server.start()
        stores.append(("postgres", server))
    elif not args.no_postgres:
        print("(PostgreSQL is not installed here: SQLite only)")
    try:
        with tempfile.TemporaryDirectory(prefix="taskloom-bench-service-") as tmp:
            baseline = measure_baseline(args)
            print(f"{args.sequential} sequential requests (p50, p95) and {args.runs} runs from {args.clients} clients")
            print(f"{'':28} {'p50 ms':>8} {'p95 ms':>8} {'runs/s':>8} {'p50 x base':>11} {'rate / base':>12}"
                  f" {'CPU ms/run':>11}")
            print(f"{'FastAPI in-process baseline':28} {baseline['p50']:8.2f} {baseline['p95']:8.2f} "
                  f"{baseline['rate']:8.0f}")
            results: dict[tuple[str, str], dict[str, float]] = {}
            for store, pg in stores:
                for variant in args.variants:
                    url = fresh_database(pg.url) if pg else None
                    got = measure_taskloom(Path(tmp) / f"{store}-{variant}", url, variant, args)
                    results[(store, variant)] = got
                    print(f"{f'taskloom {variant}, {store}':28} {got['p50']:8.2f} {got['p95']:8.2f} "
                          f"{got['rate']:8.0f} {got['p50'] / baseline['p50']:10.1f}x "
                          f"{got['rate'] / baseline['rate']:11.2f}x {got['cpu']:11.2f}", flush=True)
            print("\ndatabase bytes one run adds (a python task's output read by a transform)")
            sizes = {"small output (20 B)": (20, 50), "3 MB output": (3_000_000, 3)}
            for store, pg in stores:
                for label, (size, runs) in sizes.items():
                    url = fresh_database(pg.url) if pg else None
                    added = bytes_per_run(Path(tmp) / f"bytes-{store}-{size}", url, size, runs)
                    print(f"  {store:9} {label:20} {added / 1e6:8.3f} MB")
                    if size == 3_000_000:
                        results[(store, "bytes")] = {"added": added}
            print()
            goals = {"transform": (5, 500), "python": (10, 300)}  # p50 ms, runs/s
            verdicts = []
            for variant in args.variants:
                p50, rate = goals[variant]
                got = results[("sqlite", variant)]
                verdicts += [(f"{variant} p50 under {p50} ms", got["p50"] < p50),
                             (f"{variant} at least {rate} runs/s", got["rate"] >= rate)]
            verdicts.append(("a 3 MB output adds under 1.5 MB", results[("sqlite", "bytes")]["added"] < 1.5e6))
            for label, held in verdicts:
                print(f"goal (sqlite): {label}: {'holds' if held else 'MISSES'}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
