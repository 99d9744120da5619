"""Implementations of transform, delay, subworkflow and foreach."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Mapping

import jmespath
from jmespath.exceptions import JMESPathError

from taskloom.core.states import FAILURE_STATES, TaskState
from taskloom.core.templates import TemplateError, render_value
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, load_entry

__all__ = ["transform", "delay", "delay_start_at", "subworkflow", "foreach"]


def transform(ctx: AttemptContext) -> AttemptResult:
    """Output the rendered ``value``, filtered by the JMESPath ``query`` when there is one."""
    value, query = ctx.params["value"], ctx.params.get("query")
    if not query:
        return AttemptResult(TaskState.SUCCEEDED, output=value)
    try:
        return AttemptResult(TaskState.SUCCEEDED, output=jmespath.search(query, value))
    except JMESPathError as exc:
        message = str(exc).replace("\n", " ")
        return AttemptResult(TaskState.FAILED, error=f"JMESPath query {query!r} failed: {message}", retriable=False)


def delay_start_at(params: Mapping[str, Any], now: float) -> float:
    """When a ``delay`` task may start: ``seconds`` after ``now``, or at ``until``."""
    if params.get("until") is not None:
        moment = datetime.fromisoformat(str(params["until"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    return now + float(params["seconds"])


def delay(ctx: AttemptContext) -> AttemptResult:
    """The wait happened before the attempt started (see ``start_at``); check the parameters and finish."""
    try:
        delay_start_at(ctx.params, time.time())
    except (ValueError, TypeError, KeyError) as exc:
        return AttemptResult(
            TaskState.FAILED,
            error=f"delay needs 'seconds' (a number) or 'until' (an ISO 8601 instant): {exc}",
            retriable=False,
        )
    return AttemptResult(TaskState.SUCCEEDED, output={"waited_until": datetime.now(timezone.utc).isoformat()})


def subworkflow(ctx: AttemptContext) -> AttemptResult:
    """Run a stored workflow to its end; its tasks' outputs become this task's output."""
    name, params = ctx.params["workflow"], ctx.params.get("params") or {}
    stop, timed_out = threading.Event(), threading.Event()
    _follow(ctx.cancel, stop, deadline=time.monotonic() + ctx.timeout, on_deadline=timed_out)
    try:
        status, outputs, run_id = ctx.services.run_workflow(name, params, cancel=stop, parent_run_id=ctx.run_id)
    except LookupError as exc:
        return AttemptResult(TaskState.FAILED, error=str(exc), retriable=False)
    finally:
        stop.set()  # ends the watcher
    ctx.log("system", f"run {run_id} of {name} {status}")
    if status == "succeeded":
        return AttemptResult(TaskState.SUCCEEDED, output=outputs)
    if timed_out.is_set() and status == "cancelled":
        return AttemptResult(TaskState.TIMED_OUT, error=f"timed out after {ctx.timeout:g} s; run {run_id} of {name} was cancelled")
    if status == "cancelled":
        return AttemptResult(TaskState.CANCELLED, error=f"run {run_id} of {name} was cancelled")
    return AttemptResult(TaskState.FAILED, error=f"workflow {name!r} {status} (run {run_id}; see: taskloom logs {run_id})")


def foreach(ctx: AttemptContext) -> AttemptResult:
    """Run the inner task once per item, ``concurrency`` at a time; the output lists the results in order."""
    items, inner = ctx.params["items"], ctx.params["task"]
    if not isinstance(items, list):
        return AttemptResult(TaskState.FAILED, error=f"items must be a list, not {type(items).__name__}", retriable=False)
    task_type = ctx.registry.get(inner["type"]) if ctx.registry is not None else None
    if task_type is None:
        return AttemptResult(TaskState.FAILED, error=f"unknown inner task type {inner['type']!r}", retriable=False)
    function = load_entry(task_type.entry)
    keep_going = bool(ctx.params.get("continue_on_error", False))
    stop = threading.Event()
    deadline = time.monotonic() + ctx.timeout

    def one(index: int, item: Any) -> AttemptResult:
        if stop.is_set() or ctx.cancel.is_set():
            return AttemptResult(TaskState.CANCELLED, error="not started: the loop stopped")
        context = {**ctx.template_context, "item": item, "index": index}
        try:
            params = {
                k: v if k in task_type.expression_params else render_value(v, context)
                for k, v in (inner.get("params") or {}).items()
            }
        except TemplateError as exc:
            return AttemptResult(TaskState.FAILED, error=str(exc), retriable=False)
        child = dataclasses.replace(
            ctx, params=params, template_context=context, cancel=stop,
            timeout=max(0.0, deadline - time.monotonic()),
            log=lambda stream, line: ctx.log(stream, f"[{index}] {line}"),
        )
        try:
            result = function(child)
        except Exception as exc:  # an inner implementation bug fails that item only
            result = AttemptResult(TaskState.CRASHED, error=f"{type(exc).__name__}: {exc}")
        if result.status is not TaskState.SUCCEEDED and not keep_going:
            stop.set()
        return result

    done = threading.Event()
    _follow(ctx.cancel, stop, until=done)
    try:
        with ThreadPoolExecutor(max_workers=int(ctx.params.get("concurrency", 4))) as pool:
            results = list(pool.map(one, range(len(items)), items))
    finally:
        done.set()
    return _foreach_outcome(ctx, results, keep_going)


def _follow(
    cancel: threading.Event,
    stop: threading.Event,
    *,
    deadline: float | None = None,
    on_deadline: threading.Event | None = None,
    until: threading.Event | None = None,
) -> None:
    """Set ``stop`` when ``cancel`` is set or ``deadline`` passes; the watcher ends with ``stop`` or ``until``."""

    def watch() -> None:
        while not stop.wait(0.1) and not (until is not None and until.is_set()):
            if cancel.is_set():
                stop.set()
            elif deadline is not None and time.monotonic() >= deadline:
                if on_deadline is not None:
                    on_deadline.set()
                stop.set()

    threading.Thread(target=watch, name="taskloom-follow-cancel", daemon=True).start()


def _foreach_outcome(ctx: AttemptContext, results: list[AttemptResult], keep_going: bool) -> AttemptResult:
    outputs = [r.output if r.status is TaskState.SUCCEEDED else None for r in results]
    failed = [(i, r) for i, r in enumerate(results) if r.status in FAILURE_STATES]
    for index, result in failed:
        ctx.log("system", f"item {index} {result.status.value}: {result.error}")
    if ctx.cancel.is_set():
        return AttemptResult(TaskState.CANCELLED, error="cancelled", output=outputs)
    if failed and not keep_going:
        index, first = failed[0]
        return AttemptResult(
            first.status, error=f"item {index} of {len(results)} {first.status.value}: {first.error}",
            output=outputs, retriable=first.retriable,
        )
    return AttemptResult(TaskState.SUCCEEDED, output=outputs)
