"""The runner against an oracle: random graphs, real runs, end states checked by a simple reference model.

Hypothesis draws a DAG of tasks whose outcome the test controls without any
process: ``noop``; ``condition`` with a constant expression, one that fails
(``1 / 0``), or one that reads an upstream task's status; and ``scripted``,
a task type registered here that ends as its params say (succeeded, failed,
timed out, crashed, or raising), optionally succeeding from attempt N, or
refusing to be retried. Edges get every ``on``, tasks every ``join``, some
tasks retries (with no delay). Each graph is stored and run by the real
runner into a real SQLite journal.

:func:`reference` is the oracle. It is written from the rules in
docs/format.md, not from :mod:`taskloom.core.plan`: decide tasks in any order once
all their upstream tasks are decided; an edge is satisfied per its ``on``; a
task runs when it has no incoming edge, or its join (``all``/``any``) is
satisfied, and is skipped otherwise; a run fails when a task failed, timed
out or crashed without an outgoing ``failure`` or ``always`` edge. Every
task's end state, attempt count and condition output, and the run's status,
must agree with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from taskloom.storage.plugins import load_registry
from taskloom.core.registry import Registry
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult
from taskloom.storage.store import Workspace
from taskloom.runtime.execution import execute

from test_property_validation import budget

#: Ways a task can fail: the edges' ``failure`` and the run's outcome count these.
FAILURES = {"failed", "timed_out", "crashed"}
OUTCOMES = ["succeeded", "failed", "timed_out", "crashed", "raise"]
SCRIPTED_SCHEMA = {
    "type": "object",
    "required": ["outcome"],
    "additionalProperties": False,
    "properties": {
        "outcome": {"enum": OUTCOMES},
        "succeed_from": {"type": "integer", "minimum": 1},
        "retriable": {"type": "boolean"},
    },
}


def scripted(ctx: AttemptContext) -> AttemptResult:
    """The ``scripted`` task type: end as ``params.outcome`` says, or succeed from attempt ``succeed_from``."""
    params = ctx.params
    if params.get("succeed_from") and ctx.attempt >= params["succeed_from"]:
        return AttemptResult(TaskState.SUCCEEDED, output=ctx.attempt)
    if params["outcome"] == "raise":
        raise RuntimeError("scripted to raise")  # the runner records a crash
    state = TaskState(params["outcome"])
    error = None if state is TaskState.SUCCEEDED else f"scripted to end {state.value}"
    return AttemptResult(state, output=ctx.attempt, error=error, retriable=params.get("retriable", True))


def oracle_registry() -> Registry:
    """The built-in types plus ``scripted`` (on the runner's thread) and ``scripted_thread`` (on a task thread)."""
    registry = load_registry()
    base = registry["noop"]
    for name, inline in (("scripted", True), ("scripted_thread", False)):
        registry.register(dataclasses.replace(
            base, name=name, inline=inline, entry=f"{__name__}:scripted", params_schema=SCRIPTED_SCHEMA))
    return registry


# -- the oracle ----------------------------------------------------------------------------------


def _edge_met(on: str, state: str, output: Any) -> bool:
    """docs/format.md, "Edges": when ``b`` may run given how ``a`` ended."""
    if on == "success":
        return state == "succeeded"
    if on == "failure":
        return state in FAILURES
    if on == "always":
        return True
    return state == "succeeded" and output is (on == "true")


def _execute(task: dict[str, Any], states: dict[str, str]) -> tuple[str, Any, int]:
    """How a task that runs ends: (state, output, attempts), given the end states of the others."""
    retries = task.get("retries", 0)
    params = task.get("params", {})
    if task["type"] == "noop":
        return "succeeded", None, 1
    if task["type"] == "condition":
        expression = params["expression"]
        if expression == "1 / 0":
            return "failed", None, 1  # its inputs cannot change between attempts: no retry
        if expression.startswith("tasks."):
            upstream = expression.split(".")[1]
            return "succeeded", states[upstream] == "succeeded", 1
        return "succeeded", expression in ("true", "1 == 1"), 1
    outcome = params["outcome"]
    if outcome == "succeeded":
        return "succeeded", 1, 1
    # An exception is a crash, which is always retriable: the task cannot say otherwise.
    allowed = retries + 1 if params.get("retriable", True) or outcome == "raise" else 1
    start = params.get("succeed_from")
    if start is not None and start <= allowed:
        return "succeeded", start, start
    return ("crashed" if outcome == "raise" else outcome), None, allowed


def reference(doc: dict[str, Any]) -> tuple[dict[str, tuple[str, Any, int]], str]:
    """Each task's (state, output, attempts) and the run's status, by the documented rules."""
    tasks = {t["id"]: t for t in doc["tasks"]}
    edges = doc.get("edges", [])
    incoming: dict[str, list[dict[str, Any]]] = {tid: [] for tid in tasks}
    for edge in edges:
        incoming[edge["to"]].append(edge)
    ended: dict[str, tuple[str, Any, int]] = {}
    while len(ended) < len(tasks):
        for tid, task in tasks.items():
            if tid in ended or any(e["from"] not in ended for e in incoming[tid]):
                continue
            met = [_edge_met(e.get("on", "success"), *ended[e["from"]][:2]) for e in incoming[tid]]
            join = any if task.get("join", "all") == "any" else all
            if not met or join(met):
                ended[tid] = _execute(task, {k: v[0] for k, v in ended.items()})
            else:
                ended[tid] = ("skipped", None, 0)
    unhandled = [
        tid for tid, (state, _, _) in ended.items()
        if state in FAILURES and not any(e["from"] == tid and e.get("on") in ("failure", "always") for e in edges)
    ]
    return ended, "failed" if unhandled else "succeeded"


# -- generated workflows ---------------------------------------------------------------------------


@st.composite
def oracle_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A DAG of up to 9 noop/condition/scripted tasks with random edges, joins and retries."""
    n = draw(st.integers(1, 9))
    tasks: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    ancestors: list[set[int]] = []
    for j in range(n):
        preds = sorted(draw(st.sets(st.integers(0, j - 1), max_size=3))) if j else []
        ancestors.append(set().union(*(ancestors[i] | {i} for i in preds)) if preds else set())
        kind = draw(st.sampled_from(["noop", "condition", "scripted", "scripted_thread"]))
        task: dict[str, Any] = {"id": f"t{j}", "type": kind}
        if kind == "condition":
            expressions = ["true", "false", "1 == 1", "1 > 2", "1 / 0"]
            expressions += [f"tasks.t{i}.status == 'succeeded'" for i in sorted(ancestors[j])]
            task["params"] = {"expression": draw(st.sampled_from(expressions))}
        elif kind.startswith("scripted"):
            task["params"] = draw(st.fixed_dictionaries(
                {"outcome": st.sampled_from(OUTCOMES)},
                optional={"succeed_from": st.integers(1, 3), "retriable": st.booleans()},
            ))
        if draw(st.booleans()):
            task["retries"] = draw(st.integers(0, 2))
            task["retry_delay"] = 0
        if preds and draw(st.booleans()):
            task["join"] = draw(st.sampled_from(["all", "any"]))
        tasks.append(task)
        for i in preds:
            ons = ["success", "failure", "always"] + (["true", "false"] if tasks[i]["type"] == "condition" else [])
            edges.append({"from": f"t{i}", "to": f"t{j}", "on": draw(st.sampled_from(ons))})
    return {
        "format": "taskloom/v1",
        "name": "oracle",
        "tasks": draw(st.permutations(tasks)),
        "edges": draw(st.permutations(edges)),
        "settings": {"max_parallel_tasks": draw(st.integers(1, 4))},
    }


@pytest.fixture(scope="module")
def oracle_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = Workspace(tmp_path_factory.mktemp("home"), registry=oracle_registry())
    yield ws
    ws.close()


@budget(100)
@given(doc=oracle_documents())
def test_runner_end_states_agree_with_the_reference(doc: dict[str, Any], oracle_ws: Workspace) -> None:
    expected, expected_status = reference(doc)
    note(f"expected: {expected} -> {expected_status}")
    event(f"run {expected_status}")
    event(f"{sum(state == 'skipped' for state, _, _ in expected.values())} task(s) skipped")
    oracle_ws.save(doc)
    run_id, _ = oracle_ws.start_run(oracle_ws.target("oracle"), {})
    status = execute(oracle_ws, run_id, cwd=str(oracle_ws.home))
    run = oracle_ws.run(run_id, attempts=True)
    got = {tid: (t.status, t.output, t.attempts) for tid, t in run.tasks.items()}
    note(f"got: {got} -> {run.status}")
    assert got == expected
    assert status.value == run.status == expected_status
    for tid, task in run.tasks.items():
        assert (task.skip_reason is not None) == (task.status == "skipped"), tid
        assert len(task.attempt_list) == task.attempts, tid


def test_the_reference_follows_the_documented_examples() -> None:
    """The oracle itself on hand-checked cases: a catch branch, skip propagation, join any, true/false."""
    doc = {"tasks": [
        {"id": "a", "type": "scripted", "params": {"outcome": "failed"}},
        {"id": "catch", "type": "noop"},
        {"id": "next", "type": "noop"},
        {"id": "after", "type": "noop"},
        {"id": "either", "type": "noop", "join": "any"},
        {"id": "c", "type": "condition", "params": {"expression": "1 > 2"}},
        {"id": "yes", "type": "noop"},
        {"id": "no", "type": "noop"},
    ], "edges": [
        {"from": "a", "to": "catch", "on": "failure"}, {"from": "a", "to": "next"}, {"from": "next", "to": "after"},
        {"from": "next", "to": "either"}, {"from": "catch", "to": "either"},
        {"from": "c", "to": "yes", "on": "true"}, {"from": "c", "to": "no", "on": "false"},
    ]}
    ended, status = reference(doc)
    assert {k: v[0] for k, v in ended.items()} == {
        "a": "failed", "catch": "succeeded", "next": "skipped", "after": "skipped", "either": "succeeded",
        "c": "succeeded", "yes": "skipped", "no": "succeeded"}
    assert status == "succeeded"  # a's failure is handled by its failure edge
