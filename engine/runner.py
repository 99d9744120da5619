"""The runner: executes one run of a workflow, journaling every state change.

One loop owns the run. Each turn it (1) takes the attempts that ended,
(2) decides retries and skips with :class:`engine.plan.RunPlan` and
:mod:`engine.retry`, (3) records new attempts, all in one journal batch
(one SQLite transaction), and only then (4) starts the new attempts: an
attempt is on disk before its process exists. In-process types (``noop``,
``condition``) run on the loop's thread; the others run on a thread each,
in a child process of their own.

The runner takes time from an injected clock and writes only through the
:class:`engine.journal.Journal` protocol.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .journal import Journal, LogLine
from .logbuffer import LogBuffer
from .model import Task, Workflow
from .plan import RunPlan
from .registry import Registry, TaskType, default_registry
from .retry import next_attempt_at
from .states import FAILURE_STATES, RunState, TaskState
from .tasks.base import AttemptContext, AttemptResult, TaskFunction, load_entry
from .templates import TemplateError, render_value

__all__ = ["Runner", "RunEvent", "minimal_env"]

#: Variables a task inherits from the runner's environment; everything else is dropped.
INHERITED_ENV = ("PATH", "HOME", "LANG", "TZ")


def minimal_env(source: Mapping[str, str]) -> dict[str, str]:
    """The environment tasks start from: PATH, HOME, LANG and TZ only."""
    env = {k: source[k] for k in INHERITED_ENV if k in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


@dataclass(frozen=True)
class RunEvent:
    """A progress notice for displays (the CLI's live view)."""

    kind: str  # "task" | "run"
    task_id: str | None
    status: str
    attempt: int = 0
    detail: str = ""


@dataclass
class _Running:
    task_id: str
    attempt: int
    attempt_id: int
    cancel: threading.Event
    thread: threading.Thread | None = None


@dataclass
class _Ended:
    task_id: str
    attempt: int
    attempt_id: int
    result: AttemptResult
    at: float


@dataclass
class _RunState:
    attempts: dict[str, int] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    retry_due: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class Runner:
    """Executes runs of one workflow."""

    def __init__(
        self,
        workflow: Workflow,
        journal: Journal,
        *,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
        cwd: str | None = None,
        environ: Mapping[str, str] | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        grace: float = 5.0,
    ) -> None:
        self.workflow = workflow
        self.journal = journal
        self.registry = registry or default_registry()
        self.clock = clock
        self.cwd = cwd or os.getcwd()
        self.env = minimal_env(os.environ if environ is None else environ)
        self.on_event = on_event or (lambda event: None)
        self.grace = grace
        self._events: queue.Queue[_Ended] = queue.Queue()
        self._cancel = threading.Event()
        self._functions: dict[str, TaskFunction] = {}

    # -- public -------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the run: running attempts are killed, pending tasks cancelled. Thread- and signal-safe."""
        self._cancel.set()
        self._events.put_nowait(None)  # type: ignore[arg-type]  # wake the loop

    def run(
        self,
        run_id: int,
        *,
        params: Mapping[str, Any],
        logical_time: float,
        trigger_payload: Any = None,
    ) -> RunState:
        """Execute the run ``run_id`` (already created, all tasks pending) to its end."""
        self._run_id = run_id
        self._context = {
            "params": dict(params),
            "tasks": {},
            "run": {
                "id": run_id,
                "logical_time": datetime.fromtimestamp(logical_time, tz=timezone.utc).isoformat(),
            },
            "trigger": {"payload": trigger_payload},
        }
        self._plan = RunPlan(self.workflow)
        self._state = _RunState(attempts={tid: 0 for tid in self.workflow.tasks})
        self._logs = LogBuffer(self.journal.append_logs)
        started = self.clock()
        self._deadline = started + self.workflow.settings.timeout
        self.journal.run_started(run_id, at=started)
        self.on_event(RunEvent("run", None, RunState.RUNNING.value))
        try:
            outcome = self._loop()
        finally:
            self._stop_all()
            self._logs.close()
        self.journal.run_ended(run_id, outcome, at=self.clock(), error=self._state.error)
        self.on_event(RunEvent("run", None, outcome.value, detail=self._state.error or ""))
        return outcome

    # -- the loop -----------------------------------------------------------

    def _loop(self) -> RunState:
        ended: list[_Ended] = []
        while True:
            launches: list[tuple[_Running, Task, TaskType, Mapping[str, Any]]] = []
            self._logs.flush()  # lines of ended attempts reach disk before their end state
            with self.journal.batch():
                for item in ended:
                    self._attempt_ended(item)
                ended = []
                if self._cancel.is_set():
                    return self._cancel_run("cancelled")
                now = self.clock()
                if now >= self._deadline:
                    return self._time_out_run()
                for task_id in self._startable(now):
                    launch = self._start_attempt(task_id, now)
                    if launch is not None:
                        launches.append(launch)
                if self._plan.done() and not self._state.running:
                    return self._plan.outcome()
            inline_results = [self._launch(*launch) for launch in launches]
            ended.extend(r for r in inline_results if r is not None)
            if not ended:
                ended.extend(self._wait(self._next_wakeup()))
            ended.extend(self._drain())

    def _startable(self, now: float) -> list[str]:
        slots = self.workflow.settings.max_parallel_tasks - len(self._state.running)
        due = [t for t, at in self._state.retry_due.items() if at <= now]
        for task_id in due:
            del self._state.retry_due[task_id]
        candidates = due + self._plan.ready()
        return candidates[: max(slots, 0)] if slots < len(candidates) else candidates

    def _next_wakeup(self) -> float:
        wake = self._deadline
        if self._state.retry_due:
            wake = min(wake, min(self._state.retry_due.values()))
        return max(0.0, wake - self.clock())

    def _wait(self, timeout: float) -> list[_Ended]:
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return []
        return [] if item is None else [item]

    def _drain(self) -> list[_Ended]:
        items = []
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return items
            if item is not None:
                items.append(item)

    # -- attempts -----------------------------------------------------------

    def _start_attempt(self, task_id: str, now: float):
        task = self.workflow.tasks[task_id]
        task_type = self.registry[task.type]
        number = self._state.attempts[task_id] + 1
        self._state.attempts[task_id] = number
        self._plan.mark_started(task_id)
        try:
            params = self._render(task, task_type)
            render_error = None
        except TemplateError as exc:
            params, render_error = dict(task.params), f"parameter template failed: {exc}"
        attempt_id = self.journal.attempt_started(
            self._run_id, task_id, number, at=now, params=params
        )
        self.journal.task_changed(
            self._run_id, task_id, TaskState.RUNNING, at=now, attempts=number, next_attempt_at=None
        )
        running = _Running(task_id, number, attempt_id, threading.Event())
        self._state.running[task_id] = running
        self.on_event(RunEvent("task", task_id, TaskState.RUNNING.value, number))
        if render_error is not None:
            # Deterministic: retrying the same inputs cannot help, so no retry.
            self._events.put(
                _Ended(task_id, number, attempt_id, AttemptResult(TaskState.FAILED, error=render_error), now)
            )
            self._state.attempts[task_id] = max(number, task.retries + 1)
            return None
        return running, task, task_type, params

    def _render(self, task: Task, task_type: TaskType) -> dict[str, Any]:
        context = self._context
        return {
            key: value if key in task_type.expression_params else render_value(value, context)
            for key, value in task.params.items()
        }

    def _launch(self, running: _Running, task: Task, task_type: TaskType, params: Mapping[str, Any]):
        ctx = AttemptContext(
            run_id=self._run_id,
            task_id=task.id,
            attempt=running.attempt,
            params=params,
            timeout=min(task.timeout, max(0.0, self._deadline - self.clock())),
            cancel=running.cancel,
            log=self._logger(task.id, running.attempt),
            on_process=lambda pid: self.journal.attempt_process(running.attempt_id, pid),
            env={
                **self.env,
                "TASKLOOM_RUN_ID": str(self._run_id),
                "TASKLOOM_TASK_ID": task.id,
                "TASKLOOM_ATTEMPT": str(running.attempt),
            },
            cwd=self.cwd,
            template_context=self._context,
            grace=self.grace,
        )
        function = self._function(task_type)
        if task_type.inline:
            return self._ended(running, self._call(function, ctx))
        running.thread = threading.Thread(
            target=lambda: self._events.put(self._ended(running, self._call(function, ctx))),
            name=f"task-{task.id}-{running.attempt}",
            daemon=True,
        )
        running.thread.start()
        return None

    def _ended(self, running: _Running, result: AttemptResult) -> _Ended:
        return _Ended(running.task_id, running.attempt, running.attempt_id, result, self.clock())

    @staticmethod
    def _call(function: TaskFunction, ctx: AttemptContext) -> AttemptResult:
        try:
            return function(ctx)
        except Exception as exc:  # a bug in a task implementation must not kill the run
            return AttemptResult(TaskState.CRASHED, error=f"task implementation failed: {type(exc).__name__}: {exc}")

    def _function(self, task_type: TaskType) -> TaskFunction:
        if task_type.name not in self._functions:
            self._functions[task_type.name] = load_entry(task_type.entry)
        return self._functions[task_type.name]

    def _logger(self, task_id: str, attempt: int) -> Callable[[str, str], None]:
        append, run_id, clock = self._logs.append, self._run_id, self.clock

        def log(stream: str, line: str) -> None:
            append(LogLine(run_id, task_id, attempt, clock(), stream, line))

        return log

    def _attempt_ended(self, item: _Ended) -> None:
        result, task_id = item.result, item.task_id
        self._state.running.pop(task_id, None)
        self.journal.attempt_ended(
            item.attempt_id, result.status, at=item.at, exit_code=result.exit_code,
            signal=result.signal, error=result.error, output=result.output,
        )
        self.on_event(RunEvent("task", task_id, result.status.value, item.attempt, result.error or ""))
        if result.status in FAILURE_STATES and not self._cancel.is_set():
            due = next_attempt_at(self.workflow.tasks[task_id], item.attempt, item.at)
            if due is not None and self._state.attempts[task_id] <= self.workflow.tasks[task_id].retries:
                self._schedule_retry(item, due)
                return
        self._finish_task(task_id, result.status, at=item.at, output=result.output, error=result.error)

    def _schedule_retry(self, item: _Ended, due: float) -> None:
        task = self.workflow.tasks[item.task_id]
        self._state.retry_due[item.task_id] = due
        self._plan.mark_waiting(item.task_id)
        message = (
            f"attempt {item.attempt} {item.result.status.value}; retry {item.attempt}/{task.retries}"
            f" will start {due - item.at:g} second(s) from now"
        )
        self._logs.append(LogLine(self._run_id, item.task_id, item.attempt, item.at, "system", message))
        self.journal.task_changed(
            self._run_id, item.task_id, item.result.status, at=item.at, error=item.result.error
        )
        self.journal.task_changed(
            self._run_id, item.task_id, TaskState.PENDING, at=item.at, next_attempt_at=due
        )
        self.on_event(RunEvent("task", item.task_id, "retrying", item.attempt, message))

    def _finish_task(
        self, task_id: str, status: TaskState, *, at: float, output: Any = None, error: str | None = None
    ) -> None:
        skipped = self._plan.finish(task_id, status, output)
        self._context["tasks"][task_id] = {"status": status.value, "output": output}
        self.journal.task_changed(
            self._run_id, task_id, status, at=at,
            output=output if status is TaskState.SUCCEEDED else None, error=error,
        )
        for skipped_id, reason in skipped:
            self._skip(skipped_id, reason, at)

    def _skip(self, task_id: str, reason: str, at: float) -> None:
        self._context["tasks"][task_id] = {"status": TaskState.SKIPPED.value, "output": None}
        self.journal.task_changed(self._run_id, task_id, TaskState.SKIPPED, at=at, skip_reason=reason)
        self.on_event(RunEvent("task", task_id, TaskState.SKIPPED.value, detail=reason))

    # -- stopping -----------------------------------------------------------

    def _stop_all(self) -> None:
        """Kill whatever still runs and wait for the threads (their results are discarded)."""
        for running in self._state.running.values():
            running.cancel.set()
        for running in list(self._state.running.values()):
            if running.thread is not None:
                running.thread.join()

    def _end_running(self, status: TaskState, error: str) -> None:
        for running in self._state.running.values():
            running.cancel.set()
        for running in list(self._state.running.values()):
            if running.thread is not None:
                running.thread.join()
        self._logs.flush()
        now = self.clock()
        for item in self._drain():
            self._state.running.pop(item.task_id, None)
            final = status if item.result.status is TaskState.CANCELLED else item.result.status
            self.journal.attempt_ended(
                item.attempt_id, final, at=item.at, exit_code=item.result.exit_code,
                signal=item.result.signal, error=error if final is status else item.result.error,
                output=item.result.output,
            )
            self._plan.states[item.task_id] = final
            self.journal.task_changed(self._run_id, item.task_id, final, at=now, error=item.result.error or error)

    def _cancel_run(self, reason: str) -> RunState:
        self._end_running(TaskState.CANCELLED, reason)
        now = self.clock()
        for task_id in self._plan.pending():
            self._plan.states[task_id] = TaskState.CANCELLED
            self.journal.task_changed(self._run_id, task_id, TaskState.CANCELLED, at=now, next_attempt_at=None)
        self._state.error = reason
        return RunState.CANCELLED

    def _time_out_run(self) -> RunState:
        limit = self.workflow.settings.timeout
        reason = f"the run exceeded settings.timeout ({limit:g} s)"
        self._end_running(TaskState.TIMED_OUT, reason)
        now = self.clock()
        for task_id in self._plan.pending():
            self._plan.states[task_id] = TaskState.SKIPPED
            self.journal.task_changed(
                self._run_id, task_id, TaskState.SKIPPED, at=now, skip_reason=reason, next_attempt_at=None
            )
        self._state.error = reason
        return RunState.FAILED
