"""The runner: executes one run of a workflow, journaling every state change.

One loop owns the run. Each turn it (1) takes the attempts that ended,
(2) decides retries and skips with :class:`taskloom.core.plan.RunPlan` and
:mod:`taskloom.core.retry`, (3) records new attempts, all in one journal batch
(one SQLite transaction), and only then (4) starts the new attempts: an
attempt is on disk before its process exists. In-process types (``noop``,
``condition``) run on the loop's thread; the others run on a task thread each
(up to ``max_parallel_tasks`` threads, reused), through the runner's
executor (:mod:`taskloom.runtime.executors`): on this machine in a child process or
a warm worker, or on a Dask cluster.

A run can be resumed from its journal (:meth:`Runner.run` with a snapshot):
succeeded tasks keep their outputs, a retry waiting for its backoff starts at
its persisted instant. Three ways to stop early:

* :meth:`Runner.cancel` (``taskloom cancel``, also requested through the
  journal from another process): running attempts are killed and end
  ``cancelled``, pending tasks end ``cancelled``, the run ends ``cancelled``.
* :meth:`Runner.stop` (SIGTERM, Ctrl-C): no new attempts start; running ones
  get a grace period, then are killed and recorded ``cancelled`` with their
  tasks pending again; the run ends ``crashed`` and can be resumed.
* :class:`taskloom.core.journal.Fenced`: another process took the run over; this
  one kills its attempts and writes nothing more.

Every task state change is journaled with the state the runner knows the
task is in (``was``), so the journal holds it against the transition table
(:mod:`taskloom.core.states`) without reading it back: pending -> running
when an attempt starts, running -> its end, running -> pending for a retry
or an interrupt, pending -> skipped or cancelled for a task that never ran.

Secret values are masked in every log line, error, output and rendered
parameter before the journal sees them. Log lines are also escaped and
capped (per line and per attempt, ``log_limits``) by each attempt's
:class:`taskloom.runtime.logbuffer.AttemptLog`.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from taskloom.runtime.executors import Executor
from taskloom.core.journal import Fenced, Journal, LogLine, RunEvent, RunSnapshot
from taskloom.runtime.logbuffer import AttemptLog, LogBuffer
from taskloom.core.logtext import LogLimits, cut_bytes, cut_marker
from taskloom.core.masking import Masker
from taskloom.core.model import Task, Workflow
from taskloom.core.plan import RunPlan
from taskloom.core.registry import Registry, TaskType
from taskloom.core.retry import next_attempt_at
from taskloom.core.states import FAILURE_STATES, TERMINAL_TASK_STATES, RunState, TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, TaskFunction, TaskServices, load_entry
from taskloom.core.templates import SecretsNamespace, TemplateError, render_value

__all__ = ["Runner", "RunEvent", "minimal_env", "Fenced"]

#: Variables a task inherits from the runner's environment; everything else is dropped.
INHERITED_ENV = ("PATH", "HOME", "LANG", "TZ")

#: How often the loop looks for a cancel requested by another process.
CANCEL_POLL_SECONDS = 0.5

#: The longest a chain of in-process attempts keeps the journal's transaction (and the store's write lock) open.
INLINE_TXN_SECONDS = 0.05


def minimal_env(source: Mapping[str, str]) -> dict[str, str]:
    """The environment tasks start from: PATH, HOME, LANG and TZ only."""
    env = {k: source[k] for k in INHERITED_ENV if k in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


@dataclass
class _Running:
    task_id: str
    attempt: int
    attempt_id: int
    cancel: threading.Event
    future: Future[None] | None = None  # the attempt's work on the runner's task threads
    log: AttemptLog | None = None  # its ctx.log, closed when the attempt ends


@dataclass
class _Ended:
    task_id: str
    attempt: int
    attempt_id: int
    result: AttemptResult
    at: float


@dataclass
class _Progress:
    attempts: dict[str, int] = field(default_factory=dict)  # highest attempt number
    failures: dict[str, int] = field(default_factory=dict)  # attempts that used up a retry
    running: dict[str, _Running] = field(default_factory=dict)
    retry_due: dict[str, float] = field(default_factory=dict)
    waited: set[str] = field(default_factory=set)  # tasks whose start_at wait is over or planned
    error: str | None = None


class Runner:
    """Executes runs of one workflow."""

    def __init__(
        self,
        workflow: Workflow,
        journal: Journal,
        *,
        registry: Registry,
        cwd: str,
        services: TaskServices,
        executor: Executor,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        grace: float = 5.0,
        log_limits: LogLimits | None = None,
    ) -> None:
        # No hidden defaults for what the composition root decides
        # (taskloom.runtime.execution): the task types, the folder, the store's
        # services and where attempts run are always passed in.
        self.workflow = workflow
        self.journal = journal
        self.registry = registry
        self.clock = clock
        self.cwd = cwd
        self.env = minimal_env(os.environ if environ is None else environ)
        self.secrets = dict(secrets or {})
        self.masker = Masker(self.secrets.values())
        self.on_event = on_event or (lambda event: None)
        self.grace = grace
        self.services = services
        self.executor = executor
        self.log_limits = log_limits or LogLimits()
        self._events: queue.Queue[_Ended | None] = queue.Queue()
        self._cancel = threading.Event()
        self._stop_reason: str | None = None
        self._stop_deadline: float | None = None
        self._functions: dict[str, TaskFunction] = {}
        self._has_waiters = any(
            getattr(self.registry.get(t.type), "start_at", None) is not None for t in workflow.tasks.values()
        )

    # -- public -------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the run. Thread- and signal-safe."""
        self._cancel.set()
        self._events.put_nowait(None)  # wake the loop

    def stop(self, reason: str) -> None:
        """Interrupt the run so it can be resumed; a second call skips the grace period."""
        now = time.monotonic()
        if self._stop_reason is None:
            self._stop_reason, self._stop_deadline = reason, now + self.grace
        else:
            self._stop_deadline = now
        self._events.put_nowait(None)

    def run(
        self,
        run_id: int,
        *,
        params: Mapping[str, Any],
        logical_time: float,
        trigger_payload: Any = None,
        snapshot: RunSnapshot | None = None,
    ) -> RunState:
        """Execute run ``run_id`` (already created) to its end, resuming from ``snapshot`` if given."""
        self._run_id = run_id
        run_info = {"id": run_id, "logical_time": datetime.fromtimestamp(logical_time, tz=timezone.utc).isoformat()}
        home = self.services.home()
        if home is not None:  # without a store there is no home: {{ run.home }} fails the task, never renders ""
            run_info["home"] = home
        self._context = {
            "params": dict(params),
            "tasks": {},
            "run": run_info,
            "trigger": {"payload": trigger_payload},
            "secrets": SecretsNamespace(self.secrets),
        }
        self._progress = _Progress(
            attempts={tid: 0 for tid in self.workflow.tasks}, failures={tid: 0 for tid in self.workflow.tasks}
        )
        self._plan = self._plan_from(snapshot)
        self._logs = LogBuffer(self.journal.append_logs)
        # Threads are reused between attempts: starting one per attempt cost more than a short task.
        self._threads = ThreadPoolExecutor(self.workflow.settings.max_parallel_tasks, f"run-{run_id}-task")
        started = self.clock()
        self._deadline = started + self.workflow.settings.timeout
        try:
            outcome = self._loop(lambda: self._begin(started, resumed=snapshot is not None))
        finally:  # also on Fenced: kill what runs, write nothing more
            self._kill_all()
            self._threads.shutdown(wait=False)
            self._logs.close()
        self.on_event(RunEvent("run", None, outcome.value, detail=self._progress.error or ""))
        return outcome

    def answer(self, run_id: int, outcome: RunState) -> dict[str, Any]:
        """What a request waiting for this run gets once it ended: its status, error and every task's output.

        The outputs are the ones the runner journaled (masked), in the workflow's
        order, None for a task without one: what reading the run back would give.
        """
        ended = self._context["tasks"]
        return {"run_id": run_id, "status": outcome.value, "error": self._progress.error,
                "outputs": {task_id: ended[task_id]["output"] if ended.get(task_id, {}).get("status") == "succeeded"
                            else None for task_id in self.workflow.tasks}}

    # -- resuming -----------------------------------------------------------

    def _plan_from(self, snapshot: RunSnapshot | None) -> RunPlan:
        """A fresh plan, or one that takes up a journaled run where it stopped."""
        if snapshot is None:
            return RunPlan(self.workflow)
        ended = {t: s.status for t, s in snapshot.tasks.items() if s.status in TERMINAL_TASK_STATES}
        outputs = {t: s.output for t, s in snapshot.tasks.items() if s.status is TaskState.SUCCEEDED}
        plan = RunPlan(self.workflow, states=ended, outputs=outputs)
        for task_id, task in snapshot.tasks.items():
            self._progress.attempts[task_id] = task.attempts
            self._progress.failures[task_id] = task.failures
            if task_id in ended:
                if task.skip_reason:
                    plan.skip_reasons[task_id] = task.skip_reason
                self._context["tasks"][task_id] = {"status": task.status.value, "output": task.output}
            elif task.next_attempt_at is not None:
                # A retry waiting for its backoff (or a delay) keeps its persisted instant.
                self._progress.retry_due[task_id] = task.next_attempt_at
                self._progress.waited.add(task_id)
                plan.mark_waiting(task_id)
        return plan

    def _begin(self, started: float, *, resumed: bool) -> None:
        """Record the run running (in the loop's first transaction), with the skips a resumed plan implies."""
        self.journal.run_started(self._run_id, at=started)
        self.on_event(RunEvent("run", None, RunState.RUNNING.value))
        if resumed:  # skips implied by the restored states (tasks reused by a re-run, for one)
            for task_id, reason in self._plan.initial_skips():
                self._skip(task_id, reason, started)

    # -- the loop -----------------------------------------------------------

    def _loop(self, begin: Callable[[], None]) -> RunState:
        """Turn until the run ends; return its outcome, recorded in the same transaction as its last turn.

        A turn's decisions are committed before any process starts. In-process
        attempts (``noop``, ``condition``, ``transform``...) have no process to
        leave behind and no effect outside the run, so they run inside the open
        transaction, and the turns that record them share it: a chain of them
        costs one commit, not two per task. The transaction is committed before
        the loop waits, before a pooled attempt starts, and after
        :data:`INLINE_TXN_SECONDS` at most. While it is open, this thread holds
        the log buffer's writer: lines reach the journal in order, before the
        ends they led to.
        """
        ended: list[_Ended] = []
        self._next_cancel_poll = 0.0  # when to look for a cancel requested by another process next
        while True:
            pooled: list[Any] = []
            with self._logs.writing(), self.journal.batch():
                opened = time.monotonic()
                if begin is not None:
                    begin()
                    begin = None  # type: ignore[assignment]
                while True:
                    self._logs.flush()  # lines of ended attempts reach the journal before their end state
                    outcome, launches = self._turn(ended)
                    ended = []
                    if outcome is not None:
                        self._logs.flush()
                        self.journal.run_ended(self._run_id, outcome, at=self.clock(), error=self._progress.error)
                        return outcome
                    for launch in launches:
                        if launch is None:
                            continue
                        if launch[2].inline:
                            ended.append(self._launch(*launch))
                        else:
                            pooled.append(launch)
                    if pooled or not ended or time.monotonic() - opened >= INLINE_TXN_SECONDS:
                        break  # commit: a process starts, or the loop waits, or the lock was held long enough
                    ended.extend(self._drain())
            for launch in pooled:
                self._launch(*launch)
            if not ended:
                ended.extend(self._wait(min(self._next_wakeup(), CANCEL_POLL_SECONDS)))
            ended.extend(self._drain())

    def _turn(self, ended: list[_Ended]) -> tuple[RunState | None, list[Any]]:
        """Record the attempts that ended and decide what starts; the run's outcome once it is over."""
        for item in ended:
            self._attempt_ended(item)
        now = self.clock()
        if now >= self._next_cancel_poll:
            self._next_cancel_poll = now + CANCEL_POLL_SECONDS
            if self.journal.cancel_requested(self._run_id):
                self._cancel.set()
        if self._cancel.is_set():
            return self._end_cancelled(), []
        if now >= self._deadline:
            return self._end_timed_out(), []
        launches: list[Any] = []
        if self._stop_reason is not None:
            if not self._progress.running:
                return self._end_interrupted(), []
            if time.monotonic() >= (self._stop_deadline or 0):
                self._kill_all()  # their results are queued; the next turn records them
        else:
            launches = [self._start_attempt(t, now) for t in self._startable(now)]
        if self._plan.done() and not self._progress.running:
            return self._plan.outcome(), []
        return None, launches

    def _startable(self, now: float) -> list[str]:
        slots = self.workflow.settings.max_parallel_tasks - len(self._progress.running)
        due = sorted((at, t) for t, at in self._progress.retry_due.items() if at <= now)
        candidates = [t for _, t in due]
        for task_id in self._plan.iter_ready():
            if len(candidates) >= slots:
                if not self._has_waiters:
                    break
                # Tasks that wait before they start (delay) begin waiting now even without a free slot.
                if self.registry[self.workflow.tasks[task_id].type].start_at is None:
                    continue
            if not self._defer(task_id, now):
                candidates.append(task_id)
        chosen = candidates[: max(slots, 0)]
        for task_id in chosen:
            self._progress.retry_due.pop(task_id, None)
        return chosen

    def _defer(self, task_id: str, now: float) -> bool:
        """Make a task whose type waits before it starts (``delay``) wait, without a slot; True if it waits."""
        task = self.workflow.tasks[task_id]
        task_type = self.registry[task.type]
        if task_type.start_at is None or task_id in self._progress.waited:
            return False
        self._progress.waited.add(task_id)
        try:
            at = float(load_entry(task_type.start_at)(self._render(task, task_type), now))
        except Exception:  # bad parameters: the attempt itself reports them
            return False
        if at <= now:
            return False
        self._progress.retry_due[task_id] = at
        self._plan.mark_waiting(task_id)
        self.journal.task_changed(self._run_id, task_id, TaskState.PENDING, was=TaskState.PENDING, at=now,
                                  next_attempt_at=at)
        self.on_event(RunEvent("task", task_id, "waiting", 0, f"starts at {datetime.fromtimestamp(at, tz=timezone.utc).isoformat()}"))
        return True

    def _next_wakeup(self) -> float:
        wake = self._deadline
        if self._progress.retry_due:
            wake = min(wake, min(self._progress.retry_due.values()))
        timeout = wake - self.clock()
        if self._stop_deadline is not None:
            timeout = min(timeout, self._stop_deadline - time.monotonic())
        return max(0.0, timeout)

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
        number = self._progress.attempts[task_id] + 1
        self._progress.attempts[task_id] = number
        self._plan.mark_started(task_id)
        try:
            params, render_error = self._render(task, task_type), None
        except TemplateError as exc:
            params, render_error = dict(task.params), f"parameter template failed: {self.masker.mask(str(exc))}"
        attempt_id = self.journal.attempt_started(
            self._run_id, task_id, number, at=now, params=self.masker.mask_value(params)
        )
        self.journal.task_changed(
            self._run_id, task_id, TaskState.RUNNING, was=TaskState.PENDING, at=now, attempts=number,
            next_attempt_at=None,
        )
        running = _Running(task_id, number, attempt_id, threading.Event())
        self._progress.running[task_id] = running
        self.on_event(RunEvent("task", task_id, TaskState.RUNNING.value, number))
        if render_error is not None:
            # Deterministic: retrying the same inputs cannot help, so no retry.
            self._progress.failures[task_id] = task.retries
            result = AttemptResult(TaskState.FAILED, error=render_error)
            self._events.put(_Ended(task_id, number, attempt_id, result, now))
            return None
        return running, task, task_type, params

    def _render(self, task: Task, task_type: TaskType) -> dict[str, Any]:
        """Render the params' templates; expressions and per-item params are left to the task."""
        later = (*task_type.expression_params, *task_type.item_params)
        return {
            key: value if key in later else render_value(value, self._context)
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
            log=self._logger(running, task.id),
            on_process=lambda pid: self.journal.attempt_process(running.attempt_id, pid),
            env={
                **self.env,
                "TASKLOOM_RUN_ID": str(self._run_id),
                "TASKLOOM_TASK_ID": task.id,
                "TASKLOOM_ATTEMPT": str(running.attempt),
                "TASKLOOM_ATTEMPT_ID": str(running.attempt_id),
            },
            cwd=self.cwd,
            template_context=self._context,
            grace=self.grace,
            services=self.services,
            workflow=self.workflow.name,
            registry=self.registry,
        )
        function = self._function(task_type)
        if task_type.inline:
            return self._ended(running, self._call(function, ctx))
        execute = self.executor.execute
        running.future = self._threads.submit(
            lambda: self._events.put(self._ended(running, self._call(lambda c: execute(task_type, function, c), ctx)))
        )
        return None

    def _ended(self, running: _Running, result: AttemptResult) -> _Ended:
        if running.log is not None:  # on the attempt's thread, so its note is buffered before its end is recorded
            running.log.close()
        if self.masker:
            result.error = None if result.error is None else self.masker.mask(result.error)
            result.output = self.masker.mask_value(result.output)
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

    def _logger(self, running: _Running, task_id: str) -> AttemptLog:
        """The attempt's ``ctx.log``: masked, escaped and capped lines into the log buffer."""
        running.log = AttemptLog(
            self._logs.append, self._run_id, task_id, running.attempt, clock=self.clock, limits=self.log_limits,
            mask=self._mask_line if self.masker else None,
        )
        return running.log

    def _mask_line(self, line: str) -> str:
        """Mask a log line; a line its reader cut may end in the first part of a secret, masked too."""
        cut = cut_bytes(line)
        if not cut:
            return self.masker.mask(line)
        marker = cut_marker(cut)
        return self.masker.mask_tail(line[: -len(marker)]) + marker

    def _attempt_ended(self, item: _Ended) -> None:
        result, task_id = item.result, item.task_id
        self._progress.running.pop(task_id, None)
        if result.status is TaskState.CANCELLED and self._stop_reason is not None:
            result.error = f"interrupted ({self._stop_reason}); the task runs again when the run resumes"
        self.journal.attempt_ended(
            item.attempt_id, result.status, at=item.at, exit_code=result.exit_code,
            signal=result.signal, error=result.error, output=result.output,
        )
        self.on_event(RunEvent("task", task_id, result.status.value, item.attempt, result.error or ""))
        if result.status is TaskState.CANCELLED and self._stop_reason is not None:
            self._requeue_interrupted(item)
            return
        if result.status in FAILURE_STATES:
            self._progress.failures[task_id] += 1
            task = self.workflow.tasks[task_id]
            due = next_attempt_at(task, self._progress.failures[task_id], item.at)
            if due is not None and result.retriable and not self._cancel.is_set():
                self._schedule_retry(item, due)
                return
        self._finish_task(task_id, result.status, at=item.at, output=result.output, error=result.error)

    def _schedule_retry(self, item: _Ended, due: float) -> None:
        task = self.workflow.tasks[item.task_id]
        failures = self._progress.failures[item.task_id]
        self._progress.retry_due[item.task_id] = due
        self._plan.mark_waiting(item.task_id)
        message = (
            f"attempt {item.attempt} {item.result.status.value}; retry {failures}/{task.retries}"
            f" will start {due - item.at:g} second(s) from now"
        )
        self._logs.append(LogLine(self._run_id, item.task_id, item.attempt, item.at, "system", message))
        self.journal.task_changed(
            self._run_id, item.task_id, TaskState.PENDING, was=TaskState.RUNNING, at=item.at, next_attempt_at=due,
            error=item.result.error,
        )
        self.on_event(RunEvent("task", item.task_id, "retrying", item.attempt, message))

    def _requeue_interrupted(self, item: _Ended) -> None:
        """An attempt killed by :meth:`stop` runs again when the run resumes; it used up no retry."""
        self._plan.mark_waiting(item.task_id)
        self.journal.task_changed(
            self._run_id, item.task_id, TaskState.PENDING, was=TaskState.RUNNING, at=item.at, next_attempt_at=None
        )

    def _finish_task(
        self, task_id: str, status: TaskState, *, at: float, output: Any = None, error: str | None = None
    ) -> None:
        skipped = self._plan.finish(task_id, status, output)
        self._context["tasks"][task_id] = {"status": status.value, "output": output}
        self.journal.task_changed(
            self._run_id, task_id, status, was=TaskState.RUNNING, at=at,
            output=output if status is TaskState.SUCCEEDED else None, error=error,
        )
        for skipped_id, reason in skipped:
            self._skip(skipped_id, reason, at)

    def _skip(self, task_id: str, reason: str, at: float) -> None:
        self._context["tasks"][task_id] = {"status": TaskState.SKIPPED.value, "output": None}
        self.journal.task_changed(self._run_id, task_id, TaskState.SKIPPED, was=TaskState.PENDING, at=at,
                                  skip_reason=reason)
        self.on_event(RunEvent("task", task_id, TaskState.SKIPPED.value, detail=reason))

    # -- ending early -------------------------------------------------------

    def _kill_all(self) -> None:
        """Kill every running attempt and wait for its thread (results stay queued)."""
        for running in self._progress.running.values():
            running.cancel.set()
        for running in list(self._progress.running.values()):
            if running.future is not None:
                running.future.result()

    def _collect_killed(self, status: TaskState, error: str) -> None:
        """Record the attempts :meth:`_kill_all` ended, as ``status`` unless they ended otherwise first."""
        self._kill_all()
        self._logs.flush()
        for item in self._drain():
            self._progress.running.pop(item.task_id, None)
            final = status if item.result.status is TaskState.CANCELLED else item.result.status
            message = error if final is status else item.result.error
            self.journal.attempt_ended(
                item.attempt_id, final, at=item.at, exit_code=item.result.exit_code,
                signal=item.result.signal, error=message, output=item.result.output,
            )
            self._plan.end(item.task_id, final)
            self.journal.task_changed(self._run_id, item.task_id, final, was=TaskState.RUNNING, at=item.at,
                                      error=message)

    def _end_pending(self, status: TaskState, reason: str) -> None:
        now = self.clock()
        for task_id in self._plan.pending():
            self._plan.end(task_id, status)
            reason_column = reason if status is TaskState.SKIPPED else None
            self.journal.task_changed(
                self._run_id, task_id, status, was=TaskState.PENDING, at=now, next_attempt_at=None,
                skip_reason=reason_column,
            )
        self._progress.error = reason

    def _end_cancelled(self) -> RunState:
        self._collect_killed(TaskState.CANCELLED, "cancelled")
        self._end_pending(TaskState.CANCELLED, "cancelled")
        return RunState.CANCELLED

    def _end_timed_out(self) -> RunState:
        reason = f"the run exceeded settings.timeout ({self.workflow.settings.timeout:g} s)"
        self._collect_killed(TaskState.TIMED_OUT, reason)
        self._end_pending(TaskState.SKIPPED, reason)
        return RunState.FAILED

    def _end_interrupted(self) -> RunState:
        self._progress.error = (
            f"interrupted ({self._stop_reason}); resume it with: taskloom resume {self._run_id}"
        )
        return RunState.CRASHED
