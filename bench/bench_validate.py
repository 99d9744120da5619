"""Benchmark: validating a 10,000-task, 20,000-edge workflow.

Builds a random DAG with a fixed seed (edges only go from a lower to a higher
task index, so it is acyclic), with ``noop`` and ``shell`` tasks of which
some read upstream outputs through templates, then times
:func:`taskloom.core.validation.validate_document` and prints a small table.

Run from the project root::

    .venv/bin/python bench/bench_validate.py [--tasks N] [--edges M] [--repeat K]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskloom.core.registry import default_registry  # noqa: E402
from taskloom.core.validation import validate_document  # noqa: E402

__all__ = ["build_document", "main"]

#: The goal: a 10,000-task, 20,000-edge workflow validates well under a second.
GOAL_SECONDS = 1.0


def _edges(rng: random.Random, n_tasks: int, n_edges: int) -> list[tuple[int, int]]:
    """``n_edges`` distinct pairs ``(i, j)`` with ``i < j``, mostly between nearby tasks."""
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_edges:
        j = rng.randrange(1, n_tasks)
        i = max(0, j - rng.randint(1, 50))
        pairs.add((i, j))
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def build_document(n_tasks: int = 10_000, n_edges: int = 20_000, seed: int = 42) -> dict[str, Any]:
    """A valid ``taskloom/v1`` document with the given size."""
    rng = random.Random(seed)
    pairs = _edges(rng, n_tasks, n_edges)
    upstream: dict[int, list[int]] = {}
    for i, j in pairs:
        upstream.setdefault(j, []).append(i)
    tasks: list[dict[str, Any]] = []
    for k in range(n_tasks):
        task: dict[str, Any] = {"id": f"t{k}", "position": {"x": k % 100 * 200, "y": k // 100 * 120}}
        if k % 3 == 0:
            task["type"] = "noop"
        else:
            task["type"] = "shell"
            command = f"echo task {k}"
            parents = upstream.get(k)
            if parents and k % 2 == 0:
                direct = rng.choice(parents)
                command = f"process --rows {{{{ tasks.t{direct}.output.rows }}}} --limit {{{{ params.limit }}}}"
                grand = upstream.get(direct)
                if grand and k % 4 == 0:  # an ancestor two edges up: needs the reachability check
                    command += f" --since {{{{ tasks.t{rng.choice(grand)}.output.at }}}}"
            task["params"] = {"command": command, "env": {"RUN": "{{ run.id }}"}}
            task["retries"] = k % 4
        tasks.append(task)
    return {
        "format": "taskloom/v1",
        "name": "bench-dag",
        "params": {"limit": {"type": "integer", "default": 100}},
        "triggers": [{"id": "hourly", "type": "cron", "cron": "0 * * * *", "timezone": "Europe/Berlin"}],
        "tasks": tasks,
        "edges": [
            {"from": f"t{i}", "to": f"t{j}", **({"on": "always"} if (i + j) % 7 == 0 else {})}
            for i, j in pairs
        ],
        "settings": {"max_parallel_tasks": 8},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--edges", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    doc = build_document(args.tasks, args.edges)
    registry = default_registry()
    times: list[float] = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        issues = validate_document(doc, registry)
        times.append(time.perf_counter() - start)
        if issues:
            print("unexpected issues:", *issues[:5], sep="\n  ", file=sys.stderr)
            return 1
    print(f"{'tasks':>8} {'edges':>8} {'runs':>5} {'best s':>8} {'median s':>9}")
    print(
        f"{len(doc['tasks']):>8} {len(doc['edges']):>8} {args.repeat:>5} "
        f"{min(times):>8.3f} {statistics.median(times):>9.3f}"
    )
    median = statistics.median(times)
    print(f"goal: validation well under {GOAL_SECONDS:g} s (median {median:.3f} s): "
          f"{'holds' if median < GOAL_SECONDS else 'DOES NOT HOLD'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
