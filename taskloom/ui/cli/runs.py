"""Commands that execute runs in the foreground: ``run``, ``resume``, ``rerun``; and ``cancel``.

A process that executes runs holds a heartbeat. Before it starts anything it
takes over the runs whose runner died (their running attempts end
``crashed``, their leftover processes are killed) and resumes them alongside
its own run. SIGTERM or Ctrl-C interrupts: no new task starts, running tasks
get ``--grace`` seconds, then are killed, and the run can be resumed; a
second signal kills at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import click
from rich.markup import escape
from rich.text import Text

from taskloom.core.errors import UserMistake
from taskloom.core.model import Workflow
from taskloom.core.params import parse_assignments
from taskloom.runtime.runner import Fenced, RunEvent, Runner
from taskloom.core.states import RunState
from taskloom.storage.heartbeat import Heartbeat
from taskloom.storage.store import UserError, Workspace

from taskloom.ui.cli import render
from taskloom.ui.cli.common import _Fail, _print_json, _workspace, err, executor_options, open_executor, out
from taskloom.runtime.execution import cancel as cancel_run, execute, recover

__all__ = ["run", "resume", "rerun", "cancel"]

_json_option = click.option(
    "--json", "as_json", is_flag=True, help='Print {"run_id", "status", "tasks": {...}} when done.'
)
_grace_option = click.option(
    "--grace", default=5.0, show_default=True, type=float,
    help="Seconds a task gets after SIGTERM (on cancel or interrupt) before SIGKILL.",
)
_recover_option = click.option(
    "--recover/--no-recover", default=True, show_default=True,
    help="First take over and resume runs whose runner died.",
)


@click.command()
@click.argument("target", metavar="FILE|NAME")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Set a declared param (repeatable).")
@_json_option
@_grace_option
@_recover_option
@executor_options
@click.pass_context
def run(ctx: click.Context, target: str, params: tuple[str, ...], as_json: bool, grace: float, recover: bool,
        executor: str | None, dask_address: str | None) -> None:
    """Run a workflow once in the foreground: a stored NAME, or a FILE (validated, not stored).

    Exit status 0 when the run succeeded, 1 otherwise.

    Example: taskloom run hello -p who=world
    """
    with _workspace(ctx) as ws, open_executor(executor, dask_address) as where:
        try:
            resolved = ws.target(target)
            given = parse_assignments(list(params))
        except UserMistake as exc:  # bad params, no such workflow, an invalid file
            raise _Fail(exc) from None
        with ws.session() as heartbeat:
            orphans = _recover(ws, heartbeat) if recover else []
            try:
                run_id, _ = ws.start_run(resolved, given, owner=heartbeat.id)
                ws.audit("trigger", f"run {run_id}", workflow=resolved.workflow.name, version=resolved.version)
            except UserError as exc:
                raise _Fail(exc) from None
            status = _foreground(ws, heartbeat, run_id, resolved.workflow, as_json=as_json, grace=grace,
                                 also=orphans, executor=where)
        _report(ws, run_id, as_json)
    sys.exit(0 if status is RunState.SUCCEEDED else 1)


@click.command()
@click.argument("target", metavar="RUN_ID|NAME")
@_json_option
@_grace_option
@executor_options
@click.pass_context
def resume(ctx: click.Context, target: str, as_json: bool, grace: float, executor: str | None,
           dask_address: str | None) -> None:
    """Resume a crashed or interrupted run (RUN_ID), or a paused workflow (NAME).

    A run resumes where it stopped: tasks that succeeded are not run again and
    their outputs feed the rest; crashed attempts are retried when their task
    has retries left; a retry waiting for its backoff starts at its planned time.
    """
    if not target.isdigit():
        from taskloom.ui.cli.service import unpause_workflow

        unpause_workflow(ctx, target)
        return
    run_id = int(target)
    with _workspace(ctx) as ws, open_executor(executor, dask_address) as where, ws.session() as heartbeat:
        for recovered in recover(ws, heartbeat.id, run_id=run_id, grace=grace):
            err.print(escape(f"run {run_id}: {recovered.reason}; its running attempts are marked crashed"))
        try:
            record = ws.claim_crashed(run_id, heartbeat.id)
        except UserError as exc:
            raise _Fail(exc) from None
        status = _foreground(ws, heartbeat, run_id, ws.workflow_of(record), as_json=as_json, grace=grace,
                             executor=where)
        _report(ws, run_id, as_json)
    sys.exit(0 if status is RunState.SUCCEEDED else 1)


@click.command()
@click.argument("run_id", type=int)
@click.option("--from", "from_task", metavar="TASK", help="Re-run TASK and everything downstream of it.")
@click.option("--failed", is_flag=True, help="Re-run the failed tasks and everything downstream of them.")
@_json_option
@_grace_option
@executor_options
@click.pass_context
def rerun(ctx: click.Context, run_id: int, from_task: str | None, failed: bool, as_json: bool, grace: float,
          executor: str | None, dask_address: str | None) -> None:
    """Start a new run with the same version, params and trigger payload as RUN_ID.

    With --from or --failed, tasks outside the re-run part keep the results of
    RUN_ID (they are not executed again). The new run links to RUN_ID.
    """
    if from_task and failed:
        raise click.UsageError("give --from TASK or --failed, not both")
    with _workspace(ctx) as ws, open_executor(executor, dask_address) as where, ws.session() as heartbeat:
        try:
            new_id = ws.rerun(run_id, owner=heartbeat.id, from_task=from_task, failed=failed)
            parent = ws.run(run_id)
            ws.audit("rerun", f"run {run_id}", workflow=parent.workflow, version=parent.version,
                     detail=f"as run {new_id}")
        except UserError as exc:
            raise _Fail(exc) from None
        record = ws.run(new_id)
        reused = [t for t, r in record.tasks.items() if r.status != "pending"]
        (err if as_json else out).print(
            f"run {new_id} re-runs run {run_id}" + (f"; reusing {', '.join(reused)}" if reused else "")
        )
        status = _foreground(ws, heartbeat, new_id, ws.workflow_of(record), as_json=as_json, grace=grace,
                             executor=where)
        _report(ws, new_id, as_json)
    sys.exit(0 if status is RunState.SUCCEEDED else 1)


@click.command()
@click.argument("run_id", type=int)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the run has stopped.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait at most.")
@_grace_option
@click.pass_context
def cancel(ctx: click.Context, run_id: int, wait: bool, timeout: float, grace: float) -> None:
    """Cancel a run, from any process: running tasks get SIGTERM, then SIGKILL after the grace period.

    Pending tasks end cancelled and the run ends cancelled. Exit 0 once the run
    is cancelled (or was already over), 1 if it did not stop within --timeout.
    """
    with _workspace(ctx) as ws:
        try:
            outcome = cancel_run(ws, run_id, owner=f"cancel-{os.getpid()}", grace=grace)
        except UserError as exc:
            raise _Fail(exc) from None
        cancelled = ws.run(run_id)
        ws.audit("cancel", f"run {run_id}", workflow=cancelled.workflow, version=cancelled.version, detail=outcome)
        if outcome == "ended":
            out.print(f"run {run_id} already {ws.run(run_id).status}; nothing to cancel")
            return
        if outcome == "requested" and wait:
            deadline = time.monotonic() + timeout
            while ws.run(run_id).status not in {s.value for s in RunState} - {"queued", "running"}:
                if time.monotonic() > deadline:
                    raise _Fail(f"run {run_id} did not stop within {timeout:g} s; its runner may be stuck")
                time.sleep(0.1)
        status = ws.run(run_id).status
        out.print(f"run {run_id} {status if outcome == 'cancelled' or wait else 'cancel requested'}")


# -- executing in the foreground --------------------------------------------


def _recover(ws: Workspace, heartbeat: Heartbeat) -> list[int]:
    recovered = recover(ws, heartbeat.id)
    for r in recovered:
        err.print(f"[yellow]{escape(f'run {r.run_id}: {r.reason}; resuming it')}[/]")
    return [r.run_id for r in recovered]


def _foreground(
    ws: Workspace,
    heartbeat: Heartbeat,
    run_id: int,
    workflow: Workflow,
    *,
    as_json: bool,
    grace: float,
    also: list[int] = (),  # type: ignore[assignment]
    executor: Any = None,
) -> RunState:
    """Execute ``run_id`` with live progress (and the ``also`` runs beside it); stop cleanly on signals."""
    runners: list[Runner] = []
    previous = _install_stop_handlers(runners)
    threads = [_background(ws, heartbeat, other, grace, runners, executor) for other in also]
    progress = render.RunProgress(err if as_json else out, workflow, run_id, quiet=as_json)
    try:
        with progress:
            status = execute(ws, 
                run_id, owner=heartbeat.id, on_event=progress.update, on_runner=runners.append, grace=grace,
                executor=executor,
            )
        for thread in threads:
            thread.join()
    except Fenced as exc:
        raise _Fail(f"{exc}; this process stopped") from None
    finally:
        _restore_handlers(previous)
    if status is RunState.CRASHED:
        err.print(f"[yellow]run {run_id} was interrupted; resume it with: taskloom resume {run_id}[/]")
    return status


def _background(
    ws: Workspace, heartbeat: Heartbeat, run_id: int, grace: float, runners: list[Runner], executor: Any
) -> threading.Thread:
    def on_event(event: RunEvent) -> None:
        if event.kind == "run" and event.status != "running":
            err.print(Text.assemble(f"resumed run {run_id} ", render.state_text(event.status)))

    def work() -> None:
        try:
            execute(ws, run_id, owner=heartbeat.id, on_event=on_event, on_runner=runners.append, grace=grace,
                       executor=executor)
        except Exception as exc:  # one resumed run must not take down the run the user asked for
            err.print(f"[red]{escape(f'resuming run {run_id} failed: {exc}')}[/]")

    thread = threading.Thread(target=work, name=f"resume-{run_id}", daemon=True)
    thread.start()
    return thread


def _report(ws: Workspace, run_id: int, as_json: bool) -> None:
    record = ws.run(run_id, attempts=True)
    if as_json:
        _print_json(record.to_json())
    else:
        render.print_run_result(out, record)


def _install_stop_handlers(runners: list[Runner]) -> dict[int, Any]:
    """SIGINT and SIGTERM interrupt every run of this process (see the module docstring)."""

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        err.print(f"[yellow]{name}: stopping; running tasks get the grace period (again to kill now)[/]")
        for runner in runners:
            runner.stop(name)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
