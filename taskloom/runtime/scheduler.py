"""The scheduler: one long-running process that fires workflows on time and on events, and runs them.

Only the holder of the lease (:mod:`taskloom.storage.scheduling`) fires time
and polled triggers; other scheduler processes, on this host or on others
sharing a PostgreSQL store, are standbys that take over when the lease expires.
On becoming active a scheduler first resumes crashed runs, then fires; while
active it looks for runs whose runner died (on any host, by heartbeat age)
every :attr:`Scheduler.RECOVERY_EVERY` seconds and resumes them.

Every scheduler, active or standby, executes queued runs (from the API,
``taskloom trigger``, re-runs, and firings the active one had no room for), up
to ``max_runs`` at once per process (``taskloom scheduler --max-runs``). A run
is taken by one compare-and-set (``owner IS NULL`` to our runner id) inside
the store's write lock, so two schedulers never take the same run.

The loop does not poll: it computes the next instant anything is due (a
firing, an event poll, a lease renewal) and sleeps on an event until then,
or until something wakes it: a request from the API it serves, or a commit by any
other process (a queued run, a cancel, a pause), seen on SQLite's change
counter within 0.1 s (:meth:`Scheduler._watch_requests`); nobody signals it.
Each firing is claimed in SQLite under its unique (workflow, trigger,
instant) key before its run starts. Runs execute on run threads of this process,
reused with their store connection (:mod:`taskloom.runtime.runthreads`).

The API's hot path. A webhook served by this process starts its run through
:meth:`Scheduler.start_now`: created owned by this scheduler and handed to a run
thread at once, with no loop tick and no claim. A request waiting for the
run's end (``respond: run``) waits on :attr:`Scheduler.run_ends`, which the run
thread answers as the run ends.

Fencing. Every write the loop makes (a firing's outcome, a trigger's cursor,
taking a requested run) happens in a transaction that first checks this
process still holds the lease with its token; a scheduler that stalled
(SIGSTOP, a VM pause) past its lease and wakes up after a standby took over
writes nothing and stands by.

Storage errors. When the database cannot be written (a full disk, a lock
held past ``TASKLOOM_LOCK_TIMEOUT``, an I/O error) the loop logs the error
once, keeps running and tries again after a growing pause (1 s doubling to
``storage_retry_max``). A run whose journal could not be written stops (its
tasks are killed, as on a crash); once writes succeed again it is recorded
crashed, its crashed attempts are retried per their task's policy, and it
resumes, as do firings that were claimed but could not be started.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator

from taskloom.core.alerts import AlertPolicy, dedupe_key
from taskloom.core.lateness import LATE_LOOKBACK, late_findings, next_late_deadline
from taskloom.core.firing import FiringError, firings_between, next_firings
from taskloom.core.fireplan import MISFIRE_GRACE, overlap_action, plan_due
from taskloom.core.errors import Fenced, TaskloomError, storage_failure
from taskloom.core.model import Trigger, Workflow
from taskloom.core.states import RunState
from taskloom.storage import failpoints
from taskloom.storage.db import StorageError, watch_changes, write_txn
from taskloom.storage.recovery import Orphan, take_over
from taskloom.storage.runs import RunRecord, run_ownership
from taskloom.storage.scheduling import (
    Lease, TriggerState, acquire_lease, active_runs, claim_firing, claim_requested_run, claimed_firings,
    crashed_runs, holds_lease, mark_firing_started, queued_firings, release_lease, renew_lease, requested_runs,
    save_trigger_state, set_firing, settle_claimed_firing, trigger_state,
)
from taskloom.storage.sqlite import sqlite3
from taskloom.storage.workflows import list_workflows
from taskloom.storage.store import UserError, Workspace

from taskloom.runtime.pollers import PollError, poll_files, poll_git, poll_workflow
from taskloom.runtime.alerting import late_facts, policy_of, send_in_background
from taskloom.runtime.execution import cancel, execute, kill_leftovers, recover
from taskloom.storage.runends import FINAL, RunEnds
from taskloom.runtime.runthreads import Job, RunThreads, Slot
from taskloom.storage.alerts import trigger_firings

__all__ = ["Scheduler", "TIME_TRIGGERS", "POLLED_TRIGGERS"]

log = logging.getLogger("taskloom.scheduler")

TIME_TRIGGERS = ("cron", "interval")
POLLED_TRIGGERS = ("file", "git", "workflow")


def _version() -> str:
    try:
        return version("taskloom")
    except PackageNotFoundError:
        return "dev"


def _short(exc: Exception) -> str:
    """A storage error's cause without its advice (for a run's recorded error)."""
    reason = getattr(exc, "reason", None)
    path = getattr(exc, "path", None)
    return f"{reason} ({path})" if reason and path else str(exc)


def _late_section(workflow: Workflow) -> bool:
    """Whether the workflow's own alerts section gives late seconds (the home's defaults never do)."""
    alerts = workflow.alerts
    return alerts is not None and (alerts.start_within is not None or alerts.finish_within is not None)


@dataclass
class _Active:
    threads: dict[int, Job] = field(default_factory=dict)
    runners: dict[int, Any] = field(default_factory=dict)
    #: runs that stopped because the database could not be written, resumed once it can:
    #: run id -> (the reason recorded with the crash, not before this monotonic instant)
    stranded: dict[int, tuple[str, float]] = field(default_factory=dict)
    #: how often each run stopped that way (its pause before resuming doubles each time)
    strandings: dict[int, int] = field(default_factory=dict)


@dataclass
class _StorageTrouble:
    """Since when the database cannot be written, and what was last logged about it."""

    since: float
    message: str
    logged_at: float
    pause: float


#: What :class:`Fenced` says when our lease was taken over while we were starting a firing (the new holder starts it).
_LEASE_TAKEN = "another scheduler holds the lease now"

#: Seconds between SIGTERM and SIGKILL for the processes a dead runner left behind.
KILL_GRACE = 5.0


class Scheduler:
    """Fires and runs the workflows stored in one Taskloom home."""

    #: How often the change counter is read for requests of other processes (seconds).
    REQUEST_POLL = 0.1
    #: How often the active scheduler looks for runs whose runner died on another host (seconds).
    RECOVERY_EVERY = 5.0

    def __init__(
        self,
        home: str | Path,
        *,
        lease_ttl: float = 5.0,
        grace: float = MISFIRE_GRACE,
        cwd: str | None = None,
        clock: Callable[[], float] = time.time,
        safety_poll: float = 30.0,
        executor: Any = None,
        storage_retry_max: float = 8.0,
        max_runs: int | None = None,
    ) -> None:
        self.home = home
        #: where task attempts run (a taskloom.runtime.executors.Executor); None: this machine, warm workers included
        self.executor = executor
        self.lease_ttl = lease_ttl
        self.grace = grace
        self.cwd = cwd
        self.clock = clock
        self.safety_poll = safety_poll
        #: longest pause between two tries while the database cannot be written
        self.storage_retry_max = storage_retry_max
        #: how many runs this process executes at once (None: no limit); others wait queued for any scheduler
        self.max_runs = max_runs
        self._recovered_at = 0.0
        self._trouble: _StorageTrouble | None = None
        self._activated = False
        self.wake_event = threading.Event()
        self.stop_event = threading.Event()
        self.lease: Lease | None = None
        self.owner = ""
        self.version = _version()
        self._active = _Active()
        self._lock = threading.Lock()
        self._parsed: dict[tuple[str, int | None], Workflow] = {}
        #: when the late alerts are looked at next, and the ones this process already sent (or is sending)
        self._late_due = 0.0
        self._late_sent: set[str] = set()
        #: runs start_now counted against max_runs that have no thread yet
        self._reserved = 0
        self._run_threads = RunThreads(home)
        #: what requests waiting for a run's end (a ``respond: run`` webhook) wait on
        self.run_ends = RunEnds(home, executing_here=self._running)

    # -- control ------------------------------------------------------------

    def wake(self) -> None:
        """Look at the database now (a run was queued, a workflow changed). Thread- and signal-safe."""
        self.wake_event.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    @property
    def active(self) -> bool:
        return self.lease is not None

    # -- the loop -----------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop`; interrupt this process's runs on the way out (they resume later)."""
        self.ws = Workspace(self.home)
        watcher = threading.Thread(target=self._watch_requests, name="taskloom-requests", daemon=True)
        watcher.start()
        try:
            with self.ws.session() as heartbeat:
                self.owner = heartbeat.id
                self._loop()
        finally:
            self._shutdown()

    def _watch_requests(self) -> None:
        """Wake the loop when another connection commits: a run queued, a cancel or pause asked, a workflow saved.

        Other processes record requests as rows and never signal this one;
        the change counter tells within :attr:`REQUEST_POLL` seconds.
        """
        try:
            watch = watch_changes(self.ws.database)
        except (StorageError, TaskloomError) as exc:
            log.warning("cannot watch the database for requests (%s); looking every %g s", exc, self.safety_poll)
            return
        try:
            while not self.stop_event.is_set():
                if watch.wait(self.REQUEST_POLL) and not self.stop_event.is_set():
                    self.wake()
        finally:
            watch.close()

    def _loop(self) -> None:
        renew_at = 0.0
        while not self.stop_event.is_set():
            try:
                wake_at, renew_at = self._step(renew_at)
            except TaskloomError as exc:
                trouble = storage_failure(exc)  # a StorageError, or the one a UserError was made of
                if trouble is None:
                    raise
                # The database cannot be written (or read): log it, keep the loop alive, try again later.
                self._storage_failed(trouble)
                continue
            except sqlite3.OperationalError as exc:  # a failed read the storage layer left as the driver's
                self._storage_failed(exc)
                continue
            self._sleep_until(wake_at)

    def _step(self, renew_at: float) -> tuple[float, float]:
        """One turn of the loop: hold the lease, recover what needs it, fire what is due.

        Returns when to look again and when the lease must next be renewed.
        """
        now = self.clock()
        if self.lease is None:
            self.lease = acquire_lease(self.ws.db, self.owner, ttl=self.lease_ttl, version=self.version)
            if self.lease is None:
                self._start_requested_runs()  # a standby fires nothing, but runs what is queued
                return min(now + self.lease_ttl / 2, now + self.safety_poll), renew_at
            log.info("active: holding the scheduler lease (token %d)", self.lease.token)
            self._activated = False
        if not self._activated:
            self._on_activate()  # again after a storage error part-way: each step is idempotent
            self._activated = True
            renew_at = 0.0
        if now >= renew_at:
            self.lease = renew_lease(self.ws.db, self.lease, ttl=self.lease_ttl)
            if self.lease is None:
                log.warning("lost the scheduler lease to another process; standing by")
                return now, renew_at
            renew_at = now + self.lease_ttl / 3
        try:
            if self._trouble is not None or self._active.stranded:
                self._after_storage_trouble()
            due = self._tick(self.clock())
        except Fenced:  # the scheduler lease, here: a run's own fencing happens on its thread
            log.warning("lost the scheduler lease while starting a run; standing by")
            self.lease = None
            return now, renew_at
        with self._lock:
            pauses = [at for _, at in self._active.stranded.values()]
        if pauses:  # look again when the next stopped run may resume
            due = min(due, now + max(0.05, min(pauses) - time.monotonic()))
        return min(due, renew_at, now + self.safety_poll), renew_at

    def _storage_failed(self, exc: Exception) -> None:
        """Log a storage error (once, then at most once a minute while it lasts) and pause before the next try."""
        now = time.monotonic()
        message = str(exc)
        trouble = self._trouble
        if trouble is None:
            trouble = self._trouble = _StorageTrouble(now, message, now, 1.0)
            log.error("%s; the scheduler keeps running and tries again", message)
        else:
            trouble.pause = min(trouble.pause * 2, self.storage_retry_max)
            if message != trouble.message or now - trouble.logged_at >= 60:
                trouble.message, trouble.logged_at = message, now
                log.error("still failing after %.0f s: %s", now - trouble.since, message)
        self.stop_event.wait(trouble.pause)

    def _after_storage_trouble(self) -> None:
        """The database can be written again: resume the runs it stopped and the firings it left claimed."""
        if self._trouble is not None:
            log.info("the database can be written again after %.0f s; resuming",
                     time.monotonic() - self._trouble.since)
        self._settle_stranded()
        self._start_claimed_firings()
        self._trouble = None

    def _sleep_until(self, instant: float) -> None:
        timeout = instant - self.clock()
        if timeout > 0 and self.wake_event.wait(timeout):
            self.wake_event.clear()

    def _on_activate(self) -> None:
        """Before firing anything new: take over orphaned runs, resume crashed ones, start claimed firings."""
        self._recover_orphans()
        self._start_claimed_firings()

    def _recover_orphans(self) -> None:
        """Take over the runs whose runner died (here: by pid; on any host: by heartbeat age) and resume them,
        with every crashed run: their finished tasks are not run again."""
        self._recovered_at = self.clock()
        for recovered in recover(self.ws, self.owner):
            log.warning("run %d: %s; resuming it", recovered.run_id, recovered.reason)
        for run_id in crashed_runs(self.ws.db):
            self._resume_crashed(run_id)

    def _resume_crashed(self, run_id: int) -> None:
        if self._running(run_id):
            return  # resumed already; its thread has not marked it running yet
        try:
            self.ws.claim_crashed(run_id, self.owner)
        except UserError as exc:
            if exc.storage is not None:
                raise exc.storage from None
            return
        self._execute(run_id)

    def _running(self, run_id: int) -> bool:
        with self._lock:
            return run_id in self._active.threads

    def _settle_stranded(self) -> None:
        """Runs whose runner stopped on a storage error: record the crash (retries per policy) and resume them."""
        crashed = RunState.CRASHED.value
        with self._lock:
            stranded = dict(self._active.stranded)
        for run_id, (reason, not_before) in stranded.items():
            if self._running(run_id) or time.monotonic() < not_before:
                continue  # its runner is still stopping, or it stopped again just now
            row = run_ownership(self.ws.db, run_id)
            if row is not None and row.status in ("queued", "running") and row.owner == self.owner:
                # the crash is recorded as for a dead runner: running attempts crashed, retried per policy
                taken = take_over(self.ws.db, Orphan(run_id, row.workflow, self.owner, reason), owner=self.owner)
                if taken is not None:
                    kill_leftovers(taken.leftovers, KILL_GRACE)
                    log.warning("run %d: recorded as crashed (%s); resuming it", run_id, reason)
                row = run_ownership(self.ws.db, run_id)
            with self._lock:
                self._active.stranded.pop(run_id, None)
            if row is not None and row.status == crashed and row.owner == self.owner:
                self._resume_crashed(run_id)

    def _tick(self, now: float) -> float:
        """Start whatever is due; return the instant the loop must look again."""
        if now - self._recovered_at >= self.RECOVERY_EVERY:
            self._recover_orphans()
        self._start_requested_runs()
        self._start_queued_firings()
        next_due = min(now + self.safety_poll, self._recovered_at + self.RECOVERY_EVERY)
        for info in list_workflows(self.ws.db):
            workflow = self._workflow(info.name, info.version)
            if workflow is None:
                continue
            for trigger in workflow.triggers:
                if trigger.config.get("enabled", True) is False:
                    continue
                if trigger.type in TIME_TRIGGERS:
                    next_due = min(next_due, self._fire_time_trigger(workflow, trigger, now, info.paused))
                elif trigger.type in POLLED_TRIGGERS and not info.paused:
                    next_due = min(next_due, self._poll(workflow, trigger, now))
        if now >= self._late_due:
            self._late_due = self._check_late(now)
        return min(next_due, self._late_due)

    def _workflow(self, name: str, version: int | None = None) -> Workflow | None:
        """The stored workflow (its current version), parsed once per version: the loop asks on every tick."""
        if version is not None and (name, version) in self._parsed:
            return self._parsed[(name, version)]
        try:
            target = self.ws.target(name, parsed=self._parsed)  # adds the version it had to parse
        except UserError:
            return None
        return target.workflow

    # -- time triggers -----------------------------------------------------

    def _fire_time_trigger(self, workflow: Workflow, trigger: Trigger, now: float, paused: bool) -> float:
        state = trigger_state(self.ws.db, workflow.name, trigger.id)
        if state is None or state.last_instant is None:
            # a new trigger starts now: instants before the scheduler knew it are not "missed"
            self._save_trigger_state(workflow.name, trigger.id, TriggerState(now, None, None))
            return self._next_instant(trigger, now)
        try:
            due = [f.instant for f in firings_between(trigger, state.last_instant, now)]
        except FiringError as exc:
            log.error("%s/%s cannot fire: %s", workflow.name, trigger.id, exc)
            return now + self.safety_poll
        if due and not paused:
            settings = workflow.settings
            for decision in plan_due(due, now, catchup=settings.catchup, limit=settings.catchup_limit, grace=self.grace):
                self._fire(workflow, trigger, decision.instant, decision.action, decision.reason)
        if due:
            state.last_instant = due[-1]
            self._save_trigger_state(workflow.name, trigger.id, state)
        return self._next_instant(trigger, max(now, state.last_instant))

    def _next_instant(self, trigger: Trigger, after: float) -> float:
        try:
            upcoming = next_firings(trigger, after, 1)
        except FiringError:
            return after + self.safety_poll
        return upcoming[0].instant if upcoming else after + self.safety_poll

    def _fire(self, workflow: Workflow, trigger: Trigger, instant: float, action: str, reason: str = "",
              payload: Any = None) -> None:
        """Claim one firing and act on it: missed, skipped for overlap, queued, or a new run."""
        assert self.lease is not None
        if action == "missed":
            claim_firing(self.ws.db, self.lease, workflow.name, trigger.id, instant, status="missed", reason=reason)
            log.warning("%s/%s missed %s: %s", workflow.name, trigger.id, instant, reason)
            return
        firing_id = claim_firing(
            self.ws.db, self.lease, workflow.name, trigger.id, instant, status="claimed", reason=reason or None,
            payload=payload,
        )
        if firing_id is None:
            return  # claimed before (another scheduler, or before a restart): at most one run per instant
        failpoints.hit("scheduler.after_claim")
        active = active_runs(self.ws.db, workflow.name)
        policy = workflow.settings.overlap
        if policy == "skip" and (reason.startswith("caught up") or trigger.type in POLLED_TRIGGERS):
            # caught-up instants and events (a file, a commit) are never dropped: they wait their turn
            policy = "queue"
        decision = overlap_action(policy, len(active), workflow.settings.max_active_runs)
        earlier = decision == "start" and policy != "cancel_previous" and any(
            queued[1] == workflow.name for queued in queued_firings(self.ws.db))
        if earlier:
            # Older firings wait their turn (caught-up instants, queued while a run was active): this one must not
            # overtake them now that the run has ended; they start oldest first.
            decision = "skip" if policy == "skip" else "queue"
        if decision == "skip":
            why = "earlier firings were still queued" if earlier else f"run {active[-1]} was still active"
            self._set_claimed_firing(
                firing_id, "skipped_overlap", f"{why} (settings.overlap is '{workflow.settings.overlap}')")
            return
        if decision == "queue":
            waiting = "waiting for the firings queued before it" if earlier else f"waiting for run {active[-1]} to end"
            self._set_claimed_firing(firing_id, "queued", f"{reason}; {waiting}" if reason else waiting)
            return
        if decision == "cancel_previous":
            for run_id in active:
                cancel(self.ws, run_id, owner=self.owner)
        self._start_firing(firing_id, workflow.name, trigger, instant, payload)

    @contextmanager
    def _fenced(self) -> Iterator[None]:
        """A write transaction that first checks we still hold the lease (with our token); else :class:`Fenced`."""
        lease = self.lease
        with write_txn(self.ws.db):
            if lease is None or not holds_lease(self.ws.db, lease):
                raise Fenced(_LEASE_TAKEN)
            yield

    def _set_claimed_firing(self, firing_id: int, status: str, reason: str) -> None:
        """Record what became of a firing we just claimed, unless the lease moved on meanwhile."""
        with self._fenced():
            settle_claimed_firing(self.ws.db, firing_id, status=status, reason=reason)

    def _save_trigger_state(self, workflow: str, trigger_id: str, state: TriggerState) -> None:
        with self._fenced():
            save_trigger_state(self.ws.db, workflow, trigger_id, state)

    def _start_firing(self, firing_id: int, name: str, trigger: Trigger | str, instant: float, payload: Any) -> None:
        """Create the firing's run and mark the firing started, in one transaction fenced by our lease.

        A claimed firing whose scheduler died before this point is started by
        the next active scheduler (:meth:`_on_activate`); the lease check makes
        sure a stalled former holder cannot start it a second time.
        """
        kind = trigger.type if isinstance(trigger, Trigger) else trigger
        trigger_id = trigger.id if isinstance(trigger, Trigger) else None
        assert self.lease is not None
        try:
            target = self.ws.target(name, parsed=self._parsed)  # the tick parsed it: not read or parsed again
        except UserError as exc:
            with self._fenced():
                set_firing(self.ws.db, firing_id, status="failed_to_start", reason=str(exc))
            return
        here = self._has_room()  # else the run waits queued, unowned, for whichever scheduler has room
        with write_txn(self.ws.db):
            try:
                run_id, _ = self.ws.start_run(
                    target, {}, owner=self.owner if here else None, from_text=False, trigger=kind, trigger_id=trigger_id,
                    trigger_payload=payload, logical_time=instant,
                )
            except UserError as exc:
                if exc.storage is not None:
                    # SQLite may have rolled the transaction back already: record nothing, retry later
                    raise exc.storage from None
                set_firing(self.ws.db, firing_id, status="failed_to_start", reason=str(exc))  # in this transaction
                return
            if not mark_firing_started(self.ws.db, firing_id, run_id, self.lease):
                raise Fenced(_LEASE_TAKEN)  # rolls the new run back: the lease holder starts the firing
        if here:
            self._execute(run_id, target.workflow)

    def _start_claimed_firings(self) -> None:
        """Firings a dead scheduler claimed but never started: start them now (once)."""
        for firing_id, name, trigger_id, instant, payload in claimed_firings(self.ws.db):
            workflow = self._workflow(name)
            trigger = next((t for t in workflow.triggers if t.id == trigger_id), None) if workflow else None
            log.warning("%s/%s: firing at %s was claimed but not started; starting it", name, trigger_id, instant)
            try:
                self._start_firing(firing_id, name, trigger or "schedule", instant, payload)
            except Fenced:
                return

    def _start_queued_firings(self) -> None:
        started: set[str] = set()
        for firing_id, name, trigger_id, instant, payload in queued_firings(self.ws.db):
            if name in started or active_runs(self.ws.db, name):
                continue
            workflow = self._workflow(name)
            trigger = next((t for t in workflow.triggers if t.id == trigger_id), None) if workflow else None
            self._start_firing(firing_id, name, trigger or "schedule", instant, payload)
            started.add(name)

    # -- late alerts -------------------------------------------------------

    #: Seconds between two late checks when no deadline comes sooner (a workflow saved meanwhile is seen then).
    LATE_RECHECK = 10.0

    def _check_late(self, now: float) -> float:
        """Send the late alerts that are due (each from a thread of its own); return when to look again.

        The dead-man check: for every workflow whose alerts watch ``late``, the
        recent instants of its cron and interval triggers whose run did not
        start or finish in time, a missed or skipped firing included
        (:func:`taskloom.core.alerts.late_findings`). A paused workflow is not
        watched. Never raises: a check that fails is logged and tried again.
        """
        due = now + self.LATE_RECHECK
        try:
            for info in list_workflows(self.ws.db):
                workflow = self._workflow(info.name, info.version)
                if workflow is None or info.paused or not _late_section(workflow):
                    continue  # most workflows: nothing to read (late seconds are only ever the workflow's own)
                policy = policy_of(self.ws, workflow)
                if policy is None or not policy.watches_late:
                    continue
                for trigger in workflow.triggers:
                    if trigger.type in TIME_TRIGGERS and trigger.config.get("enabled", True) is not False:
                        due = min(due, self._check_late_trigger(workflow, trigger, policy, now))
        except Exception as exc:  # alerts must never stop the loop
            log.error("the late-alert check failed: %s; it runs again in %g s", exc, self.LATE_RECHECK)
        return due

    def _check_late_trigger(self, workflow: Workflow, trigger: Trigger, policy: AlertPolicy, now: float) -> float:
        """Send the late alerts of one trigger; return when one of its instants may next become late."""
        start, finish = policy.start_within, policy.finish_within
        since = now - max(start or 0.0, finish or 0.0) - LATE_LOOKBACK
        firings = trigger_firings(self.ws.db, workflow.name, trigger.id, since)
        for finding in late_findings(firings, start_within=start, finish_within=finish, now=now):
            key = dedupe_key("late", run_id=finding.firing.run_id, workflow=workflow.name, trigger_id=trigger.id,
                             instant=finding.firing.instant)
            if key in self._late_sent:
                continue  # sent (or being sent) by this process; the journal's key stops every other one
            if len(self._late_sent) > 10_000:
                self._late_sent.clear()  # only a shortcut: the journal's unique key is what sends each once
            self._late_sent.add(key)
            log.warning("%s/%s is late: %s", workflow.name, trigger.id, finding.detail)
            send_in_background(self.home, lambda ws, f=finding: late_facts(ws, f), policy, dedupe=key,
                               name=f"alert-late-{workflow.name}")
        try:
            upcoming = [f.instant for f in next_firings(trigger, now, 1)]
        except FiringError:
            upcoming = []
        deadline = next_late_deadline(firings, upcoming, start_within=start, finish_within=finish, now=now)
        return now + self.LATE_RECHECK if deadline is None else deadline

    # -- event triggers ----------------------------------------------------

    def _poll(self, workflow: Workflow, trigger: Trigger, now: float) -> float:
        state = trigger_state(self.ws.db, workflow.name, trigger.id) or TriggerState(None, None, None)
        every = float(trigger.config.get("poll_seconds", 5 if trigger.type == "workflow" else 30))
        if state.next_poll is not None and state.next_poll > now:
            return state.next_poll
        try:
            events, cursor = self._poll_once(trigger, state.cursor)
        except PollError as exc:
            log.error("%s/%s: %s", workflow.name, trigger.id, exc)
            events, cursor = [], state.cursor
        for index, payload in enumerate(events):
            self._fire(workflow, trigger, now + index * 1e-6, "run", payload=payload)
        state.cursor, state.next_poll = cursor, now + every
        self._save_trigger_state(workflow.name, trigger.id, state)
        return state.next_poll

    def _poll_once(self, trigger: Trigger, cursor: Any) -> tuple[list[dict[str, Any]], Any]:
        if trigger.type == "file":
            return poll_files(trigger.config, cursor)
        if trigger.type == "git":
            return poll_git(trigger.config, cursor, Path(self.ws.home) / "git-cache")
        return poll_workflow(self.ws.db, trigger.config, cursor)

    # -- runs ---------------------------------------------------------------

    def _has_room(self) -> bool:
        """Whether this process may start one more run (``max_runs``)."""
        with self._lock:
            return self.max_runs is None or len(self._active.threads) + self._reserved < self.max_runs

    def _start_requested_runs(self) -> None:
        """Queued runs nobody owns (from the API, `taskloom trigger`, a re-run): claim and execute them.

        Not fenced by the lease: standbys take them too. The claim is a compare-and-set on ``owner IS NULL``
        in the store's write lock, so whichever scheduler asks first takes a run and the others skip it.
        """
        for run_id in requested_runs(self.ws.db):
            if not self._has_room():
                return
            if claim_requested_run(self.ws.db, run_id, self.owner):
                self._execute(run_id)

    def serve(self, handle: Callable[[Slot, Callable[[Any], None]], None], name: str = "webhook") -> Future[Any]:
        """Run ``handle(slot, reply)`` on a run thread; the future holds what it replied, or what it raised.

        The API's hot path: a webhook request is authenticated, its run
        created and, when this scheduler has room, run on one thread (with
        :meth:`start_now`'s ``slot``), instead of passing from a request
        thread to a run thread. ``reply`` answers the request (the first call
        counts), as soon as the run is created.
        """
        future: Future[Any] = Future()

        def reply(value: Any) -> None:
            if not future.done():
                future.set_result(value)

        def work(slot: Slot) -> None:
            try:
                handle(slot, reply)
            except BaseException as exc:  # the request's error, raised where the request waits
                if not future.done():
                    future.set_exception(exc)
            finally:
                if not future.done():
                    future.set_exception(RuntimeError("the webhook's handler ended without an answer"))

        self._run_threads.submit(Job(work, name))
        return future

    def start_now(self, ws: Workspace, target: Any, *, trigger: str, trigger_id: str | None = None,
                  payload: Any = None, expect: bool = False, slot: Slot | None = None,
                  reply: Callable[[Any], None] | None = None) -> tuple[int, Any]:
        """Start a run of ``target`` at once, on a thread of this process when it has room (the API's hot path).

        The run is created owned by this scheduler and handed to a run thread
        with the workflow already parsed: no loop tick, no claim, no second
        read. Without room (``max_runs``), or before the loop has its runner
        id, it is created queued for whichever scheduler has room. With
        ``expect``, also returns a future answered when the run ends
        (:class:`taskloom.storage.runends.RunEnds`), else None.

        ``slot``: called on a run thread (:meth:`serve`), the run runs on this
        thread, and ``reply`` gets ``(run_id, future)`` as soon as the run is created.
        """
        with self._lock:
            here = bool(self.owner) and not self.stop_event.is_set() and (
                self.max_runs is None or len(self._active.threads) + self._reserved < self.max_runs)
            if here:
                self._reserved += 1
        try:
            created = ws.new_run(target, {}, owner=self.owner if here else None, from_text=False,
                                 trigger=trigger, trigger_id=trigger_id, trigger_payload=payload)
        except BaseException:
            if here:
                with self._lock:
                    self._reserved -= 1
            raise
        run_id = created.id
        future = self.run_ends.expect(run_id) if expect else None
        if reply is not None:
            reply((run_id, future))  # before the run: the request waits on ``future`` with its own timeout
        if here:
            self._execute(run_id, target.workflow, reserved=True, slot=slot, created=created)
        else:
            self.wake()
            if future is not None:
                self.run_ends.watch_elsewhere(run_id)
        return run_id, future

    def _execute(self, run_id: int, workflow: Workflow | None = None, *, reserved: bool = False,
                 slot: Slot | None = None, created: RunRecord | None = None) -> None:
        """Run ``run_id`` on a run thread; ``workflow`` is its workflow when parsed already (the run does not parse it).

        ``reserved``: :meth:`start_now` counted the run against ``max_runs`` before it had a thread.
        ``slot``: this is a run thread already (:meth:`serve`): run it here, and return once it has ended.
        ``created``: the run's record, as :meth:`start_now` just created it (nothing to read back).
        """
        def work(slot: Slot) -> None:
            runners: list[Any] = []

            def on_runner(runner: Any) -> None:
                runners.append(runner)
                self._active.runners[run_id] = runner

            try:
                ws = slot.get()
                status = execute(ws, run_id, owner=self.owner, cwd=self.cwd, executor=self.executor,
                                 workflow=workflow, on_runner=on_runner, created=created)
                if ws.storage_failure is not None:  # logged; the runner killed the run's tasks
                    self._strand(run_id, ws.storage_failure)
                    slot.discard()  # the connection may be broken (a server that went away)
                elif status.value in FINAL and runners and self.run_ends.awaited(run_id):
                    self.run_ends.ended(run_id, runners[0].answer(run_id, status))
            except (StorageError, UserError) as exc:
                if storage_failure(exc) is None:
                    log.error("run %d cannot run: %s", run_id, exc)
                    return
                log.error("run %d could not start: %s; it starts once the database can be written", run_id, exc)
                self._strand(run_id, exc)
                slot.discard()  # the next run on this thread opens a new connection
            except Fenced as exc:
                log.warning("run %d: %s; this scheduler stopped running it", run_id, exc)
            except Exception:  # one broken run must not stop the scheduler
                log.exception("run %d failed to execute", run_id)
            finally:
                with self._lock:
                    self._active.threads.pop(run_id, None)
                    self._active.runners.pop(run_id, None)
                self.wake()  # a queued firing may be waiting for this run to end

        job = Job(work, f"run-{run_id}")
        with self._lock:  # before it starts: its end removes it
            if reserved:
                self._reserved -= 1
            self._active.threads[run_id] = job
        if slot is None:
            self._run_threads.submit(job)
            return
        thread = threading.current_thread()
        named, thread.name = thread.name, job.name
        try:
            job.run(slot)
        finally:
            thread.name = named

    def _strand(self, run_id: int, exc: Exception) -> None:
        """Remember a run stopped by a storage error, to resume it once the database can be written."""
        with self._lock:
            count = self._active.strandings[run_id] = self._active.strandings.get(run_id, 0) + 1
            pause = min(2.0 ** (count - 1), self.storage_retry_max)
            self._active.stranded[run_id] = (f"the database could not be written: {_short(exc)}",
                                             time.monotonic() + pause)

    def _shutdown(self) -> None:
        with self._lock:
            runners = list(self._active.runners.values())
            threads = list(self._active.threads.values())
        for runner in runners:
            runner.stop("the scheduler is stopping")
        for thread in threads:
            thread.join(timeout=30)
        self._run_threads.close()
        if self.lease is not None:
            try:
                release_lease(self.ws.db, self.lease)
            except Exception:  # the database may be the reason we stop
                log.exception("could not release the lease")
        self.ws.close()
