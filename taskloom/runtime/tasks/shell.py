"""The ``shell`` task type: a command line run by /bin/sh in its own process group.

Output: the last non-empty line the command printed on stdout, parsed as JSON
when it is JSON (``echo '{"rows": 3}'`` gives an object), else the text; null
when it printed nothing. This is the convention of Airflow's BashOperator,
extended so that shell steps can hand structured data downstream.
"""

from __future__ import annotations

import json
import os
from typing import Any

from taskloom.core.logtext import line_cap
from taskloom.runtime.process import run_process
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, result_from_process

__all__ = ["run", "output_from_line"]


def output_from_line(line: str | None) -> Any:
    """The task output for the last stdout line."""
    if line is None:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return line


def run(ctx: AttemptContext) -> AttemptResult:
    params = ctx.params
    env = {**ctx.env, **{k: str(v) for k, v in (params.get("env") or {}).items()}}
    last: list[str] = []

    def on_line(stream: str, line: str) -> None:
        if stream == "stdout" and line.strip():
            last[:] = [line]
        ctx.log(stream, line)

    result = run_process(
        ["/bin/sh", "-c", str(params["command"])],
        env=env,
        cwd=os.path.join(ctx.cwd, params["cwd"]) if params.get("cwd") else ctx.cwd,
        timeout=ctx.timeout,
        on_line=on_line,
        cancel=ctx.cancel,
        grace=ctx.grace,
        on_start=ctx.on_process,
        max_line_bytes=line_cap(ctx.log),
    )
    failed = result_from_process(result, ctx.timeout)
    if failed is not None:
        return failed
    return AttemptResult(TaskState.SUCCEEDED, exit_code=0, output=output_from_line(last[0] if last else None))
