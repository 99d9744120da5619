"""Planning a run: which tasks may start, which must be skipped, how the run ends.

:class:`RunPlan` follows graphlib's protocol: ask :meth:`RunPlan.ready` for
tasks whose join is satisfied, report each end with :meth:`RunPlan.finish`,
and the plan answers with the tasks that became skippable. It holds no clock
and does no I/O; the runner owns time, processes and the journal.

Edge rules (``edges[].on``):

========  ===============================================================
success   the upstream succeeded
failure   the upstream failed, timed out or crashed
always    the upstream ended in any state, skipped included
true      the upstream (a ``condition``) succeeded with output true
false     the upstream (a ``condition``) succeeded with output false
========  ===============================================================

Join rules: ``all`` needs every incoming edge satisfied; ``any`` needs at
least one once every upstream has ended. A task whose join can no longer be
satisfied is skipped, with a reason, and skipping propagates.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from taskloom.core.model import Edge, Workflow
from taskloom.core.states import FAILURE_STATES, TERMINAL_TASK_STATES, RunState, TaskState

__all__ = ["RunPlan", "edge_satisfied", "run_outcome", "tasks_to_rerun"]


def edge_satisfied(edge: Edge, state: TaskState, output: Any = None) -> bool:
    """Whether ``edge`` lets its target run, given its source's terminal state."""
    if edge.on == "always":
        return True
    if edge.on == "success":
        return state is TaskState.SUCCEEDED
    if edge.on == "failure":
        return state in FAILURE_STATES
    if edge.on == "true":
        return state is TaskState.SUCCEEDED and output is True
    if edge.on == "false":
        return state is TaskState.SUCCEEDED and output is False
    raise ValueError(f"unknown edge condition {edge.on!r}")


def _describe(edge: Edge, state: TaskState, output: Any) -> str:
    if edge.on in ("true", "false") and state is TaskState.SUCCEEDED:
        return f"condition '{edge.source}' was {str(bool(output)).lower()} and edge is '{edge.on}'"
    return f"upstream '{edge.source}' {state.value} and edge is '{edge.on}'"


def run_outcome(workflow: Workflow, states: Mapping[str, TaskState]) -> RunState:
    """The end state of a run whose tasks all ended.

    A run fails when some task failed, timed out or crashed and nothing
    handles it (no outgoing ``failure`` or ``always`` edge); a cancelled task
    makes the run cancelled; otherwise the run succeeded.
    """
    if any(s is TaskState.CANCELLED for s in states.values()):
        return RunState.CANCELLED
    for task_id, state in states.items():
        if state in FAILURE_STATES and not any(
            e.on in ("failure", "always") for e in workflow.outgoing(task_id)
        ):
            return RunState.FAILED
    return RunState.SUCCEEDED


class RunPlan:
    """The evolving state of one run's graph."""

    def __init__(
        self,
        workflow: Workflow,
        states: Mapping[str, TaskState] | None = None,
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.workflow = workflow
        self.states: dict[str, TaskState] = {tid: TaskState.PENDING for tid in workflow.tasks}
        self.outputs: dict[str, Any] = dict(outputs or {})
        self.skip_reasons: dict[str, str] = {}
        self._started: set[str] = set()
        self._order = {tid: i for i, tid in enumerate(workflow.tasks)}
        # Tasks whose join may have changed since ready() last looked: all at first, then the targets
        # of each task that ends. Keeps ready() from rescanning the whole graph on every turn.
        self._dirty: set[str] = set(workflow.tasks)
        for tid, state in (states or {}).items():
            if tid not in self.states:
                raise ValueError(f"task {tid!r} is not in workflow {workflow.name!r}")
            self.states[tid] = TaskState(state)
            if self.states[tid] is not TaskState.PENDING:
                self._started.add(tid)
        # Each task's joins, kept up to date as its upstream tasks end (each edge is judged once, when its source
        # ends), so that a join of 500 edges costs nothing per end instead of a walk of all 500 every time.
        # The rest of a task's incoming edges are met (they are distinct: validation refuses a duplicate edge).
        self._open = {tid: 0 for tid in workflow.tasks}  # incoming edges whose source has not ended
        self._unmet: dict[str, dict[Edge, str]] = {tid: {} for tid in workflow.tasks}  # ended edges not met, and why
        for tid in workflow.tasks:
            for edge in workflow.incoming(tid):
                if self.states[edge.source] in TERMINAL_TASK_STATES:
                    self._judge(edge)
                else:
                    self._open[tid] += 1

    def _judge(self, edge: Edge) -> None:
        """Note why ``edge`` is not met, if it is not, now that its source has ended."""
        state = self.states[edge.source]
        output = self.outputs.get(edge.source)
        if not edge_satisfied(edge, state, output):
            self._unmet[edge.target][edge] = _describe(edge, state, output)

    def _ended(self, task_id: str, state: TaskState) -> None:
        """Set a terminal state and judge the task's outgoing edges (once: a task ends once per plan)."""
        was = self.states[task_id]
        self.states[task_id] = state
        if was in TERMINAL_TASK_STATES:
            return
        for edge in self.workflow.outgoing(task_id):
            self._open[edge.target] -= 1
            self._judge(edge)

    def _join(self, task_id: str) -> tuple[str, str]:
        """``("start"|"wait"|"skip", reason)`` for a pending task."""
        incoming = self.workflow.incoming(task_id)
        if not incoming:
            return "start", ""
        waiting, unmet = self._open[task_id] > 0, self._unmet[task_id]
        if self.workflow.tasks[task_id].join == "all":
            if unmet:
                return "skip", self._why(task_id)
            return ("wait", "") if waiting else ("start", "")
        if waiting:
            return "wait", ""
        if len(unmet) < len(incoming):  # every edge ended, and not all of them unmet
            return "start", ""
        return "skip", "no incoming edge satisfied: " + self._why(task_id)

    def _why(self, task_id: str) -> str:
        """The unmet incoming edges of ``task_id``, in the document's order."""
        unmet = self._unmet[task_id]
        return "; ".join(unmet[edge] for edge in self.workflow.incoming(task_id) if edge in unmet)

    def ready(self) -> list[str]:
        """Pending tasks whose join is satisfied and that were not handed out yet, in document order."""
        return list(self.iter_ready())

    def iter_ready(self) -> Iterator[str]:
        """:meth:`ready`, lazily: stop iterating once you have taken enough."""
        for tid in sorted(self._dirty, key=self._order.__getitem__):
            if self.states[tid] is not TaskState.PENDING or tid in self._started:
                self._dirty.discard(tid)
            elif self._join(tid)[0] == "start":
                yield tid
            else:  # waiting: looked at again when one of its upstream tasks ends
                self._dirty.discard(tid)

    def mark_started(self, task_id: str) -> None:
        """The runner took ``task_id`` (from :meth:`ready`)."""
        self._started.add(task_id)
        self.states[task_id] = TaskState.RUNNING

    def mark_waiting(self, task_id: str) -> None:
        """``task_id`` waits for a retry: it is pending again but must not be handed out."""
        self.states[task_id] = TaskState.PENDING
        self._started.add(task_id)

    def finish(self, task_id: str, state: TaskState, output: Any = None) -> list[tuple[str, str]]:
        """Record a terminal state; return ``(task_id, reason)`` for every task now skipped."""
        state = TaskState(state)
        if state not in TERMINAL_TASK_STATES:
            raise ValueError(f"task {task_id!r}: {state} is not a terminal state")
        if state is TaskState.SUCCEEDED:
            self.outputs[task_id] = output
        self._ended(task_id, state)
        return self._propagate_skips([e.target for e in self.workflow.outgoing(task_id)])

    def _propagate_skips(self, candidates: Iterable[str]) -> list[tuple[str, str]]:
        skipped: list[tuple[str, str]] = []
        stack = list(candidates)
        while stack:
            tid = stack.pop()
            self._dirty.add(tid)
            if self.states[tid] is not TaskState.PENDING or tid in self._started:
                continue
            verdict, reason = self._join(tid)
            if verdict != "skip":
                continue
            self._ended(tid, TaskState.SKIPPED)
            self.skip_reasons[tid] = reason
            self._started.add(tid)
            skipped.append((tid, reason))
            stack.extend(e.target for e in self.workflow.outgoing(tid))
        return skipped

    def initial_skips(self) -> list[tuple[str, str]]:
        """Skips implied by states given at construction (a resumed run)."""
        return self._propagate_skips(list(self.workflow.tasks))

    def end(self, task_id: str, state: TaskState) -> None:
        """Record a terminal state the run's end decided (cancelled, timed out): no skips follow from it."""
        self._ended(task_id, TaskState(state))

    def pending(self) -> list[str]:
        """Tasks that have not ended."""
        return [t for t, s in self.states.items() if s not in TERMINAL_TASK_STATES]

    def done(self) -> bool:
        # From the end: the last tasks in document order are usually the last to end, so this
        # stops at once while the run is going instead of scanning the graph on every turn.
        return all(self.states[t] in TERMINAL_TASK_STATES for t in reversed(self.states))

    def outcome(self) -> RunState:
        """The run's end state; call when :meth:`done`."""
        return run_outcome(self.workflow, self.states)


def tasks_to_rerun(
    workflow: Workflow,
    states: Mapping[str, TaskState],
    *,
    from_task: str | None = None,
    failed: bool = False,
) -> set[str]:
    """The tasks a re-run executes again; every other task keeps its result.

    ``from_task``: that task and everything downstream of it. ``failed``:
    the tasks that failed, timed out, crashed or were cancelled, and
    everything downstream of them. Neither: every task. A task outside the
    set that did not succeed or get skipped has no result to reuse, so it
    runs again too.
    """
    if from_task is not None:
        seeds = {from_task}
    elif failed:
        seeds = {t for t, s in states.items() if s in FAILURE_STATES or s is TaskState.CANCELLED}
    else:
        return set(workflow.tasks)
    rerun = workflow.downstream_of(seeds)
    reusable = (TaskState.SUCCEEDED, TaskState.SKIPPED)
    return rerun | {t for t in workflow.tasks if TaskState(states.get(t, TaskState.PENDING)) not in reusable}
