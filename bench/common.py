"""What several benchmark scripts share: running a workflow document through the real runner."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskloom.core.model import Workflow  # noqa: E402
from taskloom.runtime.execution import standalone_runner  # noqa: E402
from taskloom.core.states import RunState  # noqa: E402
from taskloom.storage import SqliteJournal, connect, create_run  # noqa: E402

__all__ = ["engine_seconds"]


def engine_seconds(doc: dict[str, Any], folder: Path, executor: Any = None) -> float:
    """Seconds the real runner takes to run ``doc`` (journaled in a fresh SQLite file in ``folder``).

    Every task must succeed: a benchmark of a failing run measures nothing.
    """
    db = connect(folder / f"{time.monotonic_ns()}.db")
    run_id = create_run(db, doc, at=time.time(), params={})
    runner = standalone_runner(Workflow.from_document(doc), SqliteJournal(db), cwd=str(folder), executor=executor)
    started = time.perf_counter()
    outcome = runner.run(run_id, params={}, logical_time=time.time())
    elapsed = time.perf_counter() - started
    assert outcome is RunState.SUCCEEDED, f"{doc['name']} ended {outcome.value}"
    db.close()
    return elapsed
