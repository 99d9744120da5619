"""The composition root: where a store, an executor, services and configuration become a running runner.

Everything that executes a run goes through here: ``taskloom run``/``resume``/
``rerun`` in the foreground, the scheduler's run threads and sub-workflows.
:func:`execute` builds the :class:`~taskloom.runtime.runner.Runner` with every
dependency explicit (the runner has no defaults of its own); :func:`recover`
takes over runs whose runner died and ends the processes they left;
:func:`cancel` stops a run at once, whoever ran it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from taskloom.core.journal import Journal
from taskloom.core.model import Workflow
from taskloom.core.registry import Registry, default_registry
from taskloom.core.states import FINAL_RUN_STATES, RunState
from taskloom.runtime.alerting import run_ended
from taskloom.runtime.executors import Executor
from taskloom.runtime.process import kill_leftover_group
from taskloom.runtime.runner import RunEvent, Runner
from taskloom.runtime.services import StoreServices
from taskloom.runtime.tasks.base import NoServices
from taskloom.storage.db import StorageError
from taskloom.storage.journal import SqliteJournal
from taskloom.storage.recovery import Leftover, Orphan, Recovered, cancel_orphan, find_orphans, take_over
from taskloom.storage.runs import RunRecord, get_run
from taskloom.storage.store import Workspace, storage_as_user_error

__all__ = ["execute", "build_runner", "standalone_runner", "recover", "cancel", "kill_leftovers"]

log = logging.getLogger("taskloom.runtime")


def execute(
    ws: Workspace,
    run_id: int,
    *,
    owner: str | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
    on_runner: Callable[[Runner], None] | None = None,
    cwd: str | None = None,
    grace: float = 5.0,
    executor: Executor | None = None,
    workflow: Workflow | None = None,
    created: RunRecord | None = None,
) -> RunState:
    """Run a queued or crashed run in this process until it ends, taking it up where it stopped.

    ``executor`` says where its attempts run (:mod:`taskloom.runtime.executors`);
    by default, this machine's shared pool. ``cwd`` is where relative paths
    resolve when the run has no folder of its own (see
    :meth:`Workspace.run_folder`). ``workflow`` is the run's workflow when the
    caller has built it already (the scheduler, from the document it started
    the run with): the stored document is then not read and parsed again.
    ``created`` is the run's record when this process has just created it
    (:meth:`Workspace.new_run`): it is not read back, and, never started, it
    has no journal to take up.

    When the database cannot be written during the run (a full disk, a
    lock held too long), the runner kills the run's tasks and stops; the
    error is logged (it names the database and the fix), kept in
    ``ws.storage_failure``, and ``CRASHED`` is returned. The run's record
    still says running: once the database can be written, recovery marks
    it crashed and resumes it (the scheduler by itself, or ``taskloom resume``).

    A run that ends failed or succeeded raises its workflow's alerts here
    (:func:`taskloom.runtime.alerting.run_ended`: failure, recovery), once its
    end is recorded; delivery is bounded by timeouts and never raises.
    """
    ws.storage_failure = None
    try:
        runner, journal, run = build_runner(ws, run_id, owner=owner, on_event=on_event, cwd=cwd, grace=grace,
                                            executor=executor, workflow=workflow, run=created)
        if on_runner is not None:
            on_runner(runner)
        status = runner.run(
            run_id, params=run.params, logical_time=run.logical_time,
            trigger_payload=run.trigger_payload, snapshot=None if created is not None else journal.load_run(run_id),
        )
    except StorageError as exc:
        ws.storage_failure = exc
        log.error("run %d stopped: %s; its tasks were stopped; once the database can be written a running"
                  " scheduler resumes it, or resume it with: taskloom resume %d", run_id, exc, run_id)
        return RunState.CRASHED
    if status in (RunState.FAILED, RunState.SUCCEEDED):
        run_ended(ws, run_id, runner.workflow, status.value)  # the workflow's alerts; never raises
    return status


def build_runner(
    ws: Workspace,
    run_id: int,
    *,
    owner: str | None,
    on_event: Callable[[RunEvent], None] | None = None,
    cwd: str | None = None,
    grace: float = 5.0,
    executor: Executor | None = None,
    workflow: Workflow | None = None,
    run: RunRecord | None = None,
):
    """The runner of ``run_id``, its journal and its record: every dependency wired here, once.

    ``workflow``, when given, is the run's, built from the document it was
    created with; otherwise the run's stored document is read and parsed.
    ``run``, when given, is its record (else it is read).
    """
    if run is None:
        run = get_run(ws.db, run_id)
    elif run.id != run_id:
        raise ValueError(f"the record given is of run {run.id}, not {run_id}")
    if workflow is None:
        workflow = ws.workflow_of(run)
    elif workflow.name != run.workflow:
        raise ValueError(f"run {run_id} is of workflow {run.workflow!r}, not {workflow.name!r}")
    journal = SqliteJournal(ws.db, owner=owner, home=ws.home)
    folder = ws.run_folder(run, default=cwd)
    if executor is None:
        from taskloom.runtime.executors.local import shared_local_executor

        executor = shared_local_executor()
    runner = Runner(
        workflow, journal, registry=ws.registry, on_event=on_event, cwd=folder,
        secrets=ws.secret_values(), grace=grace,
        services=StoreServices(ws, run.workflow, cwd=folder, owner=owner), executor=executor,
        log_limits=ws.log_limits(),
    )
    return runner, journal, run


def standalone_runner(
    workflow: Workflow, journal: Journal, *, cwd: str, registry: Registry | None = None,
    executor: Executor | None = None, **options: Any,
) -> Runner:
    """A runner with no store's services behind it (benchmarks, embedding): built-in task types unless
    ``registry`` is given, this machine's shared pool unless ``executor`` is."""
    from taskloom.runtime.executors.local import shared_local_executor

    return Runner(workflow, journal, registry=registry or default_registry(), cwd=cwd, services=NoServices(cwd),
                  executor=executor or shared_local_executor(), **options)


def kill_leftovers(leftovers: list[Leftover], grace: float) -> list[int]:
    """End the process groups a dead runner's attempts left behind; return the pids of those killed."""
    return [lo.pid for lo in leftovers if kill_leftover_group(lo.pid, lo.marker, grace=grace)]


def recover(ws: Workspace, owner: str, *, run_id: int | None = None, grace: float = 5.0) -> list[Recovered]:
    """Take over runs whose runner died (all of them, or ``run_id``), and end what they left running."""
    recovered = []
    for orphan in find_orphans(ws.db, run_id=run_id):
        taken = take_over(ws.db, orphan, owner=owner)
        if taken is not None:
            taken.killed_groups = kill_leftovers(taken.leftovers, grace)
            recovered.append(taken)
    return recovered


@storage_as_user_error
def cancel(ws: Workspace, run_id: int, *, owner: str, grace: float = 5.0) -> str:
    """Cancel a run from any process, at once: ask its live runner, or cancel it here and end its processes.

    Returns ``"requested"`` (its runner will stop it), ``"cancelled"`` (done
    here), or ``"ended"`` when the run had already ended.
    """
    run = ws.run(run_id)
    if RunState(run.status) in FINAL_RUN_STATES:
        return "ended"
    if run.status == RunState.QUEUED.value and ws.owner_of(run_id) is None:
        # a request no scheduler took yet: nothing runs, so cancel it here (unless one claims it now)
        if cancel_orphan(ws.db, Orphan(run_id, run.workflow, None, "queued"), owner=owner) is not None:
            return "cancelled"
        run = ws.run(run_id)
    orphans = find_orphans(ws.db, run_id=run_id)
    if run.status == RunState.CRASHED.value or orphans:
        orphan = orphans[0] if orphans else Orphan(run_id, run.workflow, ws.owner_of(run_id), "crashed")
        leftovers = cancel_orphan(ws.db, orphan, owner=owner)
        if leftovers is None:
            return "ended"
        kill_leftovers(leftovers, grace)
        return "cancelled"
    return ws.request_cancel(run_id, owner=owner)


