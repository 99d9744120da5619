"""The scheduler: one long-running process that fires workflows on time and on events, and runs them.

Only the holder of the lease (:mod:`storage.scheduling`) fires; other
scheduler processes wait as standbys and take over when the lease expires.
On becoming active a scheduler first resumes crashed runs, then fires.

The loop does not poll: it computes the next instant anything is due (a
firing, an event poll, a lease renewal) and sleeps on an event until then,
or until something wakes it (a request from the API, SIGUSR1 from the CLI).
Each firing is claimed in SQLite under its unique (workflow, trigger,
instant) key before its run starts. Runs execute on threads of this process.

Fencing. Every write the loop makes (a firing's outcome, a trigger's cursor,
taking a requested run) happens in a transaction that first checks this
process still holds the lease with its token; a scheduler that stalled
(SIGSTOP, a VM pause) past its lease and wakes up after a standby took over
writes nothing and stands by.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.firing import FiringError, firings_between, next_firings
from engine.fireplan import MISFIRE_GRACE, overlap_action, plan_due
from engine.model import Trigger, Workflow
from storage import failpoints
from storage.db import write_txn
from storage.scheduling import (
    LEASE, Lease, TriggerState, acquire_lease, active_runs, claim_firing, queued_firings, release_lease,
    renew_lease, save_trigger_state, set_firing, trigger_state,
)
from storage.workflows import list_workflows
from storage.workspace import UserError, Workspace

from .pollers import PollError, poll_files, poll_git, poll_workflow

__all__ = ["Scheduler", "TIME_TRIGGERS", "POLLED_TRIGGERS"]

log = logging.getLogger("taskloom.scheduler")

TIME_TRIGGERS = ("cron", "interval")
POLLED_TRIGGERS = ("file", "git", "workflow")


def _version() -> str:
    try:
        return version("taskloom")
    except PackageNotFoundError:
        return "dev"


class _Fenced(Exception):
    """Our lease was taken over while we were starting a firing; the new holder starts it."""


@dataclass
class _Active:
    threads: dict[int, threading.Thread] = field(default_factory=dict)
    runners: dict[int, Any] = field(default_factory=dict)


class Scheduler:
    """Fires and runs the workflows stored in one Taskloom home."""

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
    ) -> None:
        self.home = home
        #: where task attempts run (an engine.executors.Executor); None: this machine, warm workers included
        self.executor = executor
        self.lease_ttl = lease_ttl
        self.grace = grace
        self.cwd = cwd
        self.clock = clock
        self.safety_poll = safety_poll
        self.wake_event = threading.Event()
        self.stop_event = threading.Event()
        self.lease: Lease | None = None
        self.owner = ""
        self.version = _version()
        self._active = _Active()
        self._lock = threading.Lock()
        self._parsed: dict[tuple[str, int | None], Workflow] = {}

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
        try:
            with self.ws.session() as heartbeat:
                self.owner = heartbeat.id
                self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        renew_at = 0.0
        while not self.stop_event.is_set():
            now = self.clock()
            if self.lease is None:
                self.lease = acquire_lease(self.ws.db, self.owner, ttl=self.lease_ttl, version=self.version)
                if self.lease is None:
                    self._sleep_until(now + self.lease_ttl / 2)
                    continue
                log.info("active: holding the scheduler lease (token %d)", self.lease.token)
                self._on_activate()
                renew_at = 0.0
            if now >= renew_at:
                self.lease = renew_lease(self.ws.db, self.lease, ttl=self.lease_ttl)
                if self.lease is None:
                    log.warning("lost the scheduler lease to another process; standing by")
                    continue
                renew_at = now + self.lease_ttl / 3
            try:
                due = self._tick(self.clock())
            except _Fenced:
                log.warning("lost the scheduler lease while starting a run; standing by")
                self.lease = None
                continue
            self._sleep_until(min(due, renew_at, now + self.safety_poll))

    def _sleep_until(self, instant: float) -> None:
        timeout = instant - self.clock()
        if timeout > 0 and self.wake_event.wait(timeout):
            self.wake_event.clear()

    def _on_activate(self) -> None:
        """Before firing anything new: take over orphaned runs, resume crashed ones, start claimed firings."""
        for recovered in self.ws.recover(self.owner):
            log.warning("run %d: %s; resuming it", recovered.run_id, recovered.reason)
        for (run_id,) in self.ws.db.execute("SELECT id FROM runs WHERE status = 'crashed' ORDER BY id").fetchall():
            try:
                self.ws.claim_crashed(run_id, self.owner)
            except UserError:
                continue
            self._execute(run_id)
        self._start_claimed_firings()

    def _tick(self, now: float) -> float:
        """Start whatever is due; return the instant the loop must look again."""
        self._start_requested_runs()
        self._start_queued_firings()
        next_due = now + self.safety_poll
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
        return next_due

    def _workflow(self, name: str, version: int | None = None) -> Workflow | None:
        """The stored workflow (its current version), parsed once per version: the loop asks on every tick."""
        if version is not None and (name, version) in self._parsed:
            return self._parsed[(name, version)]
        try:
            target = self.ws.target(name)
        except UserError:
            return None
        self._parsed[(name, target.version)] = target.workflow
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
        if decision == "skip":
            self._set_claimed_firing(
                firing_id, "skipped_overlap",
                f"run {active[-1]} was still active (settings.overlap is '{workflow.settings.overlap}')")
            return
        if decision == "queue":
            waiting = f"waiting for run {active[-1]} to end"
            self._set_claimed_firing(firing_id, "queued", f"{reason}; {waiting}" if reason else waiting)
            return
        if decision == "cancel_previous":
            for run_id in active:
                self.ws.request_cancel(run_id, owner=self.owner)
        self._start_firing(firing_id, workflow.name, trigger, instant, payload)

    @contextmanager
    def _fenced(self) -> Iterator[None]:
        """A write transaction that first checks we still hold the lease (with our token); else :class:`_Fenced`."""
        lease = self.lease
        with write_txn(self.ws.db):
            if lease is None or self.ws.db.execute(
                "SELECT 1 FROM scheduler_lease WHERE name = ? AND holder = ? AND token = ?",
                [LEASE, lease.holder, lease.token],
            ).fetchone() is None:
                raise _Fenced()
            yield

    def _set_claimed_firing(self, firing_id: int, status: str, reason: str) -> None:
        """Record what became of a firing we just claimed, unless the lease moved on meanwhile."""
        with self._fenced():
            self.ws.db.execute("UPDATE firings SET status = ?, reason = ? WHERE id = ? AND status = 'claimed'",
                               [status, reason, firing_id])

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
            target = self.ws.target(name)
        except UserError as exc:
            with self._fenced():
                set_firing(self.ws.db, firing_id, status="failed_to_start", reason=str(exc))
            return
        with write_txn(self.ws.db):
            try:
                run_id, _ = self.ws.start_run(
                    target, {}, owner=self.owner, from_text=False, trigger=kind, trigger_id=trigger_id,
                    trigger_payload=payload, logical_time=instant,
                )
            except UserError as exc:
                self.ws.db.execute("UPDATE firings SET status = 'failed_to_start', reason = ? WHERE id = ?",
                                   [str(exc), firing_id])
                return
            started = self.ws.db.execute(
                "UPDATE firings SET status = 'started', run_id = ? WHERE id = ? AND status IN ('claimed', 'queued')"
                " AND EXISTS (SELECT 1 FROM scheduler_lease WHERE holder = ? AND token = ?)",
                [run_id, firing_id, self.lease.holder, self.lease.token],
            ).rowcount
            if not started:
                raise _Fenced()
        self._execute(run_id)

    def _start_claimed_firings(self) -> None:
        """Firings a dead scheduler claimed but never started: start them now (once)."""
        rows = self.ws.db.execute(
            "SELECT f.id, f.workflow, f.trigger_id, f.instant, f.payload FROM firings f"
            " WHERE f.status = 'claimed' AND f.run_id IS NULL ORDER BY f.instant"
        ).fetchall()
        for firing_id, name, trigger_id, instant, payload in rows:
            workflow = self._workflow(name)
            trigger = next((t for t in workflow.triggers if t.id == trigger_id), None) if workflow else None
            log.warning("%s/%s: firing at %s was claimed but not started; starting it", name, trigger_id, instant)
            try:
                self._start_firing(firing_id, name, trigger or "schedule", instant,
                                   None if payload is None else json.loads(payload))
            except _Fenced:
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

    def _start_requested_runs(self) -> None:
        """Queued runs nobody owns (from the API, `taskloom trigger`, a re-run): claim and execute them."""
        rows = self.ws.db.execute("SELECT id FROM runs WHERE status = 'queued' AND owner IS NULL ORDER BY id").fetchall()
        for (run_id,) in rows:
            with self._fenced():
                claimed = self.ws.db.execute(
                    "UPDATE runs SET owner = ? WHERE id = ? AND owner IS NULL AND status = 'queued'",
                    [self.owner, run_id],
                ).rowcount
            if claimed:
                self._execute(run_id)

    def _execute(self, run_id: int) -> None:
        def work() -> None:
            ws = Workspace(self.home)
            try:
                ws.execute(run_id, owner=self.owner, cwd=self.cwd, executor=self.executor,
                           on_runner=lambda runner: self._active.runners.__setitem__(run_id, runner))
            except Exception:  # one broken run must not stop the scheduler
                log.exception("run %d failed to execute", run_id)
            finally:
                ws.close()
                with self._lock:
                    self._active.threads.pop(run_id, None)
                    self._active.runners.pop(run_id, None)
                self.wake()  # a queued firing may be waiting for this run to end

        thread = threading.Thread(target=work, name=f"run-{run_id}", daemon=True)
        with self._lock:
            self._active.threads[run_id] = thread
        thread.start()

    def _shutdown(self) -> None:
        with self._lock:
            runners = list(self._active.runners.values())
            threads = list(self._active.threads.values())
        for runner in runners:
            runner.stop("the scheduler is stopping")
        for thread in threads:
            thread.join(timeout=30)
        if self.lease is not None:
            try:
                release_lease(self.ws.db, self.lease)
            except Exception:  # the database may be the reason we stop
                log.exception("could not release the lease")
        self.ws.close()
