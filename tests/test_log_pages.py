"""A run's log pages: every page shape read from an index in id order, never by sorting the run's lines.

On both stores: pages are contiguous and complete, first, middle and last, whole run or one task or
attempt or a search. On SQLite, the plan of each statement ``log_page`` issues is read: no temp B-tree.
"""

from __future__ import annotations

import time

import pytest

from taskloom.storage.runs import create_run, log_page, log_page_query

from conftest import make_doc

pytestmark = pytest.mark.both_backends

TASKS = ("a", "b", "c")


def _run_with_lines(ws, count: int) -> tuple[int, list[tuple[int, str, int, str]]]:
    """A run whose three tasks' lines interleave (and a second run around it); its lines as written."""
    doc = make_doc([{"id": t, "type": "noop"} for t in TASKS], name="chatty")
    other = create_run(ws.db, doc, at=time.time(), params={})
    run_id = create_run(ws.db, doc, at=time.time(), params={})
    rows = [(run_id, TASKS[n % 3], 1 + (n // 3) % 2, time.time(), "stdout", f"line {n} {'needle' if n % 7 == 0 else ''}")
            for n in range(count)]
    ws.db.conn.executemany("INSERT INTO logs (run_id, task_id, attempt, ts, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                           [(other, *row[1:]) for row in rows[:50]] + rows + [(other, *row[1:]) for row in rows[:50]])
    stored = ws.db.execute("SELECT id, task_id, attempt, line FROM logs WHERE run_id = ? ORDER BY id", [run_id])
    return run_id, [tuple(r) for r in stored.fetchall()]


FILTERS = [{}, {"task_id": "b"}, {"task_id": "c", "attempt": 2}, {"search": "needle"}, {"attempt": 1}]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "whole run")
def test_pages_forward_and_backward_are_contiguous_and_complete(ws, filters):
    run_id, lines = _run_with_lines(ws, 2_000)
    expected = [line[0] for line in lines
                if filters.get("task_id", line[1]) == line[1] and filters.get("attempt", line[2]) == line[2]
                and filters.get("search", "") in line[3]]
    forward, after, pages = [], None, 0
    while True:
        page = log_page(ws.db, run_id, after_id=after, limit=97, **filters)
        assert page.has_older == (pages > 0)
        forward += [line["id"] for line in page.lines]
        pages += 1
        if not page.has_newer:
            break
        after = page.last_id
    assert forward == expected
    backward, before = [], expected[-1] + 1
    while True:
        page = log_page(ws.db, run_id, before_id=before, limit=97, **filters)
        backward = [line["id"] for line in page.lines] + backward
        if not page.has_older:
            break
        before = page.lines[0]["id"]
    assert backward == expected
    assert log_page(ws.db, run_id + 99, limit=10).lines == []  # no such run: an empty page


@pytest.mark.sqlite_only
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "whole run")
def test_no_page_shape_sorts_the_runs_lines(ws, filters, backward):
    run_id, _ = _run_with_lines(ws, 3_000)
    ws.db.execute("ANALYZE")
    query = log_page_query(run_id, backward=backward, **filters)
    first, last = ws.db.execute(query.span, [run_id, run_id]).fetchone()  # the bounds log_page walks within
    plans = {
        "page": ws.db.execute(f"EXPLAIN QUERY PLAN {query.page}", [*query.args, first, last, 51]).fetchall(),
        "older": ws.db.execute(f"EXPLAIN QUERY PLAN {query.older}", [*query.args, first, last]).fetchall(),
        "span": ws.db.execute(f"EXPLAIN QUERY PLAN {query.span}", [run_id, run_id]).fetchall(),
    }
    for name, plan in plans.items():
        details = " | ".join(row[-1] for row in plan)
        assert "TEMP B-TREE" not in details, f"{name}: {details}"
        assert "USING" in details, f"{name} scans the table: {details}"  # an index, or the id range itself
