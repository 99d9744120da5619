"""Edge and join rules, skip propagation and run outcomes, on the pure planner."""

from __future__ import annotations

import pytest

from taskloom.core.model import Workflow
from taskloom.core.plan import RunPlan, run_outcome
from taskloom.core.states import RunState, TaskState as S

from conftest import make_doc


def wf(edges, joins=None, types=None):
    ids = sorted({e["from"] for e in edges} | {e["to"] for e in edges})
    tasks = [
        {"id": t, "type": (types or {}).get(t, "noop"), **({"join": joins[t]} if joins and t in joins else {})}
        for t in ids
    ]
    return Workflow.from_document(make_doc(tasks, edges))


@pytest.mark.parametrize(
    "on, upstream, output, runs",
    [
        ("success", S.SUCCEEDED, None, True),
        ("success", S.FAILED, None, False),
        ("success", S.SKIPPED, None, False),
        ("failure", S.FAILED, None, True),
        ("failure", S.TIMED_OUT, None, True),
        ("failure", S.CRASHED, None, True),
        ("failure", S.SUCCEEDED, None, False),
        ("failure", S.SKIPPED, None, False),
        ("always", S.SUCCEEDED, None, True),
        ("always", S.FAILED, None, True),
        ("always", S.SKIPPED, None, True),
        ("true", S.SUCCEEDED, True, True),
        ("true", S.SUCCEEDED, False, False),
        ("false", S.SUCCEEDED, False, True),
        ("false", S.SUCCEEDED, True, False),
        ("true", S.FAILED, None, False),
    ],
)
def test_edge_rules(on, upstream, output, runs):
    plan = RunPlan(wf([{"from": "a", "to": "b", "on": on}], types={"a": "condition"} if on in ("true", "false") else None))
    assert plan.ready() == ["a"]
    plan.mark_started("a")
    skipped = plan.finish("a", upstream, output)
    if runs:
        assert plan.ready() == ["b"] and skipped == []
    else:
        assert plan.ready() == [] and [t for t, _ in skipped] == ["b"]
        assert "'a'" in skipped[0][1] and f"'{on}'" in skipped[0][1]


def test_join_all_skips_as_soon_as_one_edge_fails():
    plan = RunPlan(wf([{"from": "a", "to": "c"}, {"from": "b", "to": "c"}]))
    for t in plan.ready():
        plan.mark_started(t)
    skipped = plan.finish("a", S.FAILED)
    assert skipped == [("c", "upstream 'a' failed and edge is 'success'")]


def test_join_all_waits_for_every_upstream():
    plan = RunPlan(wf([{"from": "a", "to": "c"}, {"from": "b", "to": "c"}]))
    for t in plan.ready():
        plan.mark_started(t)
    plan.finish("a", S.SUCCEEDED)
    assert plan.ready() == []
    plan.finish("b", S.SUCCEEDED)
    assert plan.ready() == ["c"]


def test_join_any_waits_for_all_upstreams_then_needs_one():
    plan = RunPlan(wf([{"from": "a", "to": "c"}, {"from": "b", "to": "c"}], joins={"c": "any"}))
    for t in plan.ready():
        plan.mark_started(t)
    plan.finish("a", S.SUCCEEDED)
    assert plan.ready() == []  # b has not ended yet
    plan.finish("b", S.FAILED)
    assert plan.ready() == ["c"]


def test_join_any_skips_when_no_edge_is_satisfied():
    plan = RunPlan(wf([{"from": "a", "to": "c"}, {"from": "b", "to": "c"}], joins={"c": "any"}))
    for t in plan.ready():
        plan.mark_started(t)
    plan.finish("a", S.FAILED)
    skipped = plan.finish("b", S.SKIPPED)
    assert [t for t, _ in skipped] == ["c"]
    assert skipped[0][1].startswith("no incoming edge satisfied")


def test_skipping_propagates_down_the_graph_but_always_edges_still_run():
    plan = RunPlan(wf([
        {"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "d", "on": "always"},
    ]))
    plan.mark_started("a")
    skipped = plan.finish("a", S.FAILED)
    assert [t for t, _ in skipped] == ["b", "c"]
    assert plan.skip_reasons["c"] == "upstream 'b' skipped and edge is 'success'"
    assert plan.ready() == ["d"]


def test_handled_failure_succeeds_unhandled_fails():
    handled = wf([{"from": "a", "to": "b", "on": "failure"}])
    assert run_outcome(handled, {"a": S.FAILED, "b": S.SUCCEEDED}) is RunState.SUCCEEDED
    unhandled = wf([{"from": "a", "to": "b"}])
    assert run_outcome(unhandled, {"a": S.FAILED, "b": S.SKIPPED}) is RunState.FAILED
    by_always = wf([{"from": "a", "to": "b", "on": "always"}])
    assert run_outcome(by_always, {"a": S.TIMED_OUT, "b": S.SUCCEEDED}) is RunState.SUCCEEDED
    assert run_outcome(unhandled, {"a": S.SUCCEEDED, "b": S.CANCELLED}) is RunState.CANCELLED


def test_finish_rejects_non_terminal_state():
    plan = RunPlan(wf([{"from": "a", "to": "b"}]))
    with pytest.raises(ValueError, match="not a terminal state"):
        plan.finish("a", S.RUNNING)


def test_plan_resumes_from_stored_string_states():
    plan = RunPlan(wf([{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]),
                   states={"a": "succeeded", "b": "pending"}, outputs={"a": 1})
    assert plan.ready() == ["b"]
    with pytest.raises(ValueError, match="not in workflow"):
        RunPlan(wf([{"from": "a", "to": "b"}]), states={"zz": "pending"})
