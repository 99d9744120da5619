"""The ``python`` task type: call a function in a child process so a timeout can kill it.

With a worker pool (the local executor's :class:`taskloom.runtime.executors.pool.PythonPool`,
passed as ``ctx.python_pool``) the function runs in a warm worker; without
one, in a fresh interpreter started for the attempt.

The child is a fresh interpreter of the same environment started with ``-I``
(no user site, no PYTHONPATH, no current directory on ``sys.path``); the
bootstrap puts the task's working directory on ``sys.path`` itself, so
``callable: "score:predict"`` imports ``score.py`` from there.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from taskloom.core.logtext import line_cap
from taskloom.runtime.process import run_process
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, result_from_process

__all__ = ["run"]

_BOOTSTRAP = str(Path(__file__).with_name("pychild.py"))


def run(ctx: AttemptContext) -> AttemptResult:
    params = ctx.params
    cwd = os.path.join(ctx.cwd, params["cwd"]) if params.get("cwd") else ctx.cwd
    env = {**ctx.env, **{k: str(v) for k, v in (params.get("env") or {}).items()}}
    env.setdefault("PYTHONUNBUFFERED", "1")
    spec = {"callable": params.get("callable"), "code": params.get("code"), "args": params.get("args") or {},
            "cwd": cwd}
    if ctx.python_pool is not None:
        return ctx.python_pool.run(ctx, {**spec, "env": env})
    with tempfile.TemporaryDirectory(prefix="taskloom-py-") as tmp:
        spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        result = run_process(
            [sys.executable, "-I", "-u", _BOOTSTRAP, str(spec_path), str(result_path)],
            env=env,
            cwd=cwd,
            timeout=ctx.timeout,
            on_line=ctx.log,
            cancel=ctx.cancel,
            grace=ctx.grace,
            on_start=ctx.on_process,
            max_line_bytes=line_cap(ctx.log),
        )
        reply = _read_result(result_path)
    if reply is not None and not reply.get("ok") and not (result.timed_out or result.cancelled):
        return AttemptResult(TaskState.FAILED, error=reply.get("error"), exit_code=result.returncode,
                             retriable=reply.get("retriable", True))
    failed = result_from_process(result, ctx.timeout)
    if failed is not None:
        return failed
    if reply is None:
        return AttemptResult(TaskState.FAILED, error="the task process exited without a result", exit_code=0)
    return AttemptResult(TaskState.SUCCEEDED, output=reply.get("output"), exit_code=0)


def _read_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
