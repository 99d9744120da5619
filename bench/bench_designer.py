"""Benchmark: server time to render the Designer page with a 200-task workflow.

Stores a random DAG (fixed seed; edges only go from a lower to a higher task
index, so it is acyclic) of shell, python, condition, http and noop tasks in a
temporary Taskloom home, then opens the app's Designer on it with Streamlit's
AppTest (``?workflow=NAME``, a fresh session each time) and times ``at.run()``:
the whole script run on the server (page, validation, graph, forms), not the
browser's drawing. Also times a rerun after a node is clicked (the browser's
value injected), which is what every interaction costs.

Run from the project root::

    .venv/bin/python bench/bench_designer.py [--tasks 200] [--repeat 5] [--no-positions]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

__all__ = ["build_document", "main"]


def build_document(n_tasks: int = 200, seed: int = 7, positions: bool = True) -> dict[str, Any]:
    """A valid ``taskloom/v1`` document: ``n_tasks`` tasks, about 1.5 edges per task."""
    rng = random.Random(seed)
    tasks: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for k in range(n_tasks):
        kind = rng.choice(["shell", "shell", "python", "noop", "http", "condition"])
        task: dict[str, Any] = {"id": f"t{k}", "type": kind, "title": f"Step {k}"}
        if kind == "shell":
            task["params"] = {"command": f"echo step {k}"}
        elif kind == "python":
            task["params"] = {"code": f"def main():\n    return {k}\n"}
        elif kind == "http":
            task["params"] = {"url": f"https://example.com/items/{k}", "method": "GET"}
        elif kind == "condition":
            task["params"] = {"expression": f"{k} % 2 == 0"}
        if positions:
            task["position"] = {"x": (k % 20) * 260, "y": (k // 20) * 120}
        tasks.append(task)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < int(n_tasks * 1.5):
        j = rng.randrange(1, n_tasks)
        i = max(0, j - rng.randint(1, 12))
        pairs.add((i, j))
    for i, j in sorted(pairs, key=lambda p: (p[1], p[0])):
        edge: dict[str, Any] = {"from": f"t{i}", "to": f"t{j}"}
        if tasks[i]["type"] == "condition":
            edge["on"] = rng.choice(["true", "false"])
        elif rng.random() < 0.1:
            edge["on"] = rng.choice(["failure", "always"])
        edges.append(edge)
    return {
        "format": "taskloom/v1",
        "name": "bench-designer",
        "title": f"{n_tasks}-task benchmark",
        "triggers": [{"id": "hourly", "type": "cron", "cron": "0 * * * *", "timezone": "Europe/Berlin"}],
        "tasks": tasks,
        "edges": edges,
    }


def _quiet_streamlit() -> None:
    import logging

    for name in ("streamlit", "streamlit.runtime.scriptrunner_utils.script_run_context"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-positions", action="store_true", help="store no positions (laid out on every run)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["TASKLOOM_HOME"] = str(home)
        _quiet_streamlit()

        from streamlit.testing.v1 import AppTest

        from taskloom.storage.store import Workspace
        from taskloom.ui.web.designer.session import FLOW_KEY

        doc = build_document(args.tasks, positions=not args.no_positions)
        ws = Workspace(home)
        ws.save(doc)
        ws.close()

        app = str(ROOT / "taskloom" / "ui" / "web" / "app.py")
        start = time.perf_counter()
        AppTest.from_file(app, default_timeout=120).run()  # imports Streamlit's and the app's modules
        cold = time.perf_counter() - start
        opens: list[float] = []
        clicks: list[float] = []
        for _ in range(args.repeat):
            at = AppTest.from_file(app, default_timeout=120)
            at.query_params["workflow"] = doc["name"]
            start = time.perf_counter()
            at.run()
            opens.append(time.perf_counter() - start)
            assert not at.exception, [e.value for e in at.exception]
            assert len(at.session_state["designer_doc"]["tasks"]) == args.tasks
            (component,) = at.get("component_instance")
            import json

            flow = json.loads(component.proto.json_args)
            at.session_state[FLOW_KEY] = {"nodes": flow["nodes"], "edges": flow["edges"],
                                          "selectedId": "t100" if args.tasks > 100 else "t0",
                                          "timestamp": int(time.time() * 1000)}
            start = time.perf_counter()
            at.run()
            clicks.append(time.perf_counter() - start)
            assert not at.exception, [e.value for e in at.exception]
            assert at.session_state["designer_selected"] == ("t100" if args.tasks > 100 else "t0")

    edges = len(doc["edges"])
    print(f"Designer, {args.tasks} tasks / {edges} edges"
          f" ({'no stored positions' if args.no_positions else 'stored positions'}), AppTest at.run() wall time,"
          f" {args.repeat} runs:")
    print(f"  {'':28} {'best':>8} {'median':>8}")
    print(f"  {'open (fresh session)':28} {min(opens):7.3f}s {statistics.median(opens):7.3f}s")
    print(f"  {'rerun after a node click':28} {min(clicks):7.3f}s {statistics.median(clicks):7.3f}s")
    print(f"  (first run in this process, imports included, empty designer: {cold:.3f}s)")
    verdict = "meets" if statistics.median(opens) < 2.0 else "MISSES"
    print(f"target: open under 2 s of server time -> {verdict} (median {statistics.median(opens):.3f}s)")


if __name__ == "__main__":
    main()
