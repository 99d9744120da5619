"""Task types that run on the runner's thread: ``noop`` and ``condition``."""

from __future__ import annotations

from taskloom.core.states import TaskState
from taskloom.core.templates import TemplateError, evaluate_expression
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult

__all__ = ["noop", "condition"]


def noop(ctx: AttemptContext) -> AttemptResult:
    """Succeed at once with no output."""
    return AttemptResult(TaskState.SUCCEEDED)


def condition(ctx: AttemptContext) -> AttemptResult:
    """Evaluate ``expression``; the output is its truth value (true/false edges read it)."""
    expression = ctx.params["expression"]
    try:
        value = evaluate_expression(expression, ctx.template_context)
    except TemplateError as exc:
        # Its inputs cannot change between attempts, so trying again cannot help: no retry is spent.
        return AttemptResult(TaskState.FAILED, error=str(exc), retriable=False)
    outcome = bool(value)
    ctx.log("system", f"{expression} -> {outcome}")
    return AttemptResult(TaskState.SUCCEEDED, output=outcome)
