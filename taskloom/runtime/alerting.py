"""Sending a workflow's alerts: when a run ends (failure, recovery) and when a time trigger's run is late.

What to alert about is :mod:`taskloom.core.alerts`' decision; this module
gathers the facts (the failed task, its error, its last log lines, the run's
link), masks every secret value in them, claims the alert in the journal
(:mod:`taskloom.storage.alerts`, one row per channel, unique per run and
kind) and delivers it with the ``notify`` task's own code
(:func:`taskloom.runtime.tasks.notify.run`): the same SMTP settings
(``smtp.*``), the same webhook POST, the same timeouts and error messages.

Delivery never raises: every channel has :data:`ALERT_TIMEOUT` seconds, a
failure is journaled as ``failed`` with its error and logged, and the run or
the scheduler loop goes on. :func:`run_ended` runs where every run ends
(:func:`taskloom.runtime.execution.execute`), after the run's end is
recorded; the scheduler's late checks send from a thread of their own
(:func:`send_in_background`), so a slow mail server never holds the loop.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from taskloom.core.alerts import (
    LOG_LINES, AlertFacts, AlertPolicy, alert_text, channel_labels, dedupe_key, effective_alerts, run_end_kind, run_link,
)
from taskloom.core.lateness import LateFinding
from taskloom.core.masking import Masker
from taskloom.core.model import AlertChannel, Workflow
from taskloom.core.states import TaskState
from taskloom.core.templates import SecretsNamespace, TemplateError, render_value
from taskloom.runtime.services import StoreServices
from taskloom.runtime.tasks import notify
from taskloom.runtime.tasks.base import AttemptContext
from taskloom.storage.alerts import (
    claim_alert, failed_task, last_log_lines, owner_email, previous_ended_status, settle_alert,
)
from taskloom.storage.config import Config
from taskloom.storage.store import Workspace

__all__ = ["ALERT_TIMEOUT", "policy_of", "run_ended", "late_facts", "send_alert", "send_in_background"]

log = logging.getLogger("taskloom.alerts")

#: Seconds one channel's delivery may take (an SMTP conversation, a webhook POST).
ALERT_TIMEOUT = 10.0


def policy_of(ws: Workspace, workflow: Workflow) -> AlertPolicy | None:
    """The workflow's alerts under this home's ``alerts.on``/``alerts.to``; None when it alerts about nothing."""
    on, to = Config(ws.db).get_many("alerts.on", "alerts.to")
    return effective_alerts(workflow.alerts, on or [], to or [])


def run_ended(ws: Workspace, run_id: int, workflow: Workflow, status: str) -> None:
    """Alert about a run that just ended ``status``, if its workflow asks: failure, or recovery. Never raises."""
    try:
        policy = policy_of(ws, workflow)
        if policy is None:
            return
        previous = previous_ended_status(ws.db, workflow.name, run_id) if status == "succeeded" else None
        kind = run_end_kind(status, previous, policy.kinds)
        if kind is None:
            return
        facts = _run_facts(ws, run_id, workflow.name, kind, status, previous)
        send_alert(ws, facts, policy, dedupe=dedupe_key(kind, run_id=run_id, workflow=workflow.name))
    except Exception:  # an alert must never fail the run that raised it
        log.exception("run %d: its %s alert could not be prepared", run_id, status)


def _run_facts(ws: Workspace, run_id: int, workflow: str, kind: str, status: str, previous: str | None) -> AlertFacts:
    link = run_link(Config(ws.db).get("web.url"), run_id, workflow)
    if kind == "recovery":
        return AlertFacts(kind, workflow, f"run {run_id} succeeded after {previous} runs", link, run_id=run_id)
    run = ws.run(run_id)
    failed = failed_task(ws.db, run_id)
    if failed is None:  # the run itself failed (settings.timeout) with no task to blame
        return AlertFacts(kind, workflow, f"run {run_id} {status}", link, run_id=run_id, error=run.error)
    task_id, error = failed
    return AlertFacts(
        kind, workflow, f"run {run_id} {status}: task {task_id} failed", link, run_id=run_id, failed_task=task_id,
        error=error or run.error, log_lines=tuple(last_log_lines(ws.db, run_id, task_id, LOG_LINES)),
    )


def late_facts(ws: Workspace, finding: LateFinding) -> AlertFacts:
    """What a late alert says: the trigger, the instant, what was late, and the run when there is one."""
    firing = finding.firing
    instant = datetime.fromtimestamp(firing.instant, tz=timezone.utc).isoformat(timespec="seconds")
    return AlertFacts(
        "late", firing.workflow, f"trigger {firing.trigger_id} at {instant}: {finding.detail}",
        run_link(Config(ws.db).get("web.url"), firing.run_id, firing.workflow), run_id=firing.run_id,
        trigger_id=firing.trigger_id, instant=firing.instant,
    )


def send_alert(ws: Workspace, facts: AlertFacts, policy: AlertPolicy, *, dedupe: str) -> dict[str, str]:
    """Claim and deliver one alert on each of the policy's channels; ``{channel label: outcome}``.

    The outcome is ``sent``, ``failed: ERROR``, ``already`` for a channel
    whose alert someone claimed before (it is not sent again), or
    ``no address`` for the owner channel of a workflow whose owner's account
    has no email address (nothing is journaled then).
    """
    secrets = ws.secret_values()
    masker = Masker(secrets.values())
    subject, body = alert_text(facts, masker)
    outcomes: dict[str, str] = {}
    for channel, label in zip(policy.channels, channel_labels(policy.channels)):
        if channel.kind == "owner":
            address = owner_email(ws.db, facts.workflow)
            if address is None:
                outcomes[label] = "no address"
                continue
            channel = AlertChannel("email", to=(address,))
        alert_id = claim_alert(ws.db, dedupe=dedupe, workflow=facts.workflow, kind=facts.kind, channel=label,
                               run_id=facts.run_id, trigger_id=facts.trigger_id, instant=facts.instant)
        if alert_id is None:
            outcomes[label] = "already"
            continue
        error = _deliver(ws, channel, facts, subject, body, secrets)
        error = None if error is None else masker.mask(error)
        settle_alert(ws.db, alert_id, status="sent" if error is None else "failed", error=error)
        outcomes[label] = "sent" if error is None else f"failed: {error}"
        if error is None:
            log.info("%s alert of %s sent to %s", facts.kind, facts.workflow, label)
        else:
            log.error("%s alert of %s could not be sent to %s: %s", facts.kind, facts.workflow, label, error)
    return outcomes


def _deliver(ws: Workspace, channel: AlertChannel, facts: AlertFacts, subject: str, body: str,
             secrets: dict[str, str]) -> str | None:
    """Deliver on one channel; None when delivered, else what went wrong. Never raises."""
    try:
        if channel.kind == "log":
            log.warning("%s", body.rstrip("\n"))
            return None
        if channel.kind == "email":
            params: dict[str, Any] = {"channel": "email", "to": list(channel.to), "subject": subject, "message": body}
        else:
            url = render_value(channel.url, {"secrets": SecretsNamespace(secrets)})
            params = {"channel": "webhook", "url": str(url), "message": body}
        result = notify.run(_context(ws, facts, params))
    except TemplateError as exc:
        return f"the webhook URL template failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug in delivery must not escape into the run or the loop
        return f"{type(exc).__name__}: {exc}"
    if result.status is TaskState.SUCCEEDED:
        return None
    return result.error or result.status.value


def _context(ws: Workspace, facts: AlertFacts, params: dict[str, Any]) -> AttemptContext:
    """The attempt context notify's delivery runs in: the store's configuration and secrets, a timeout."""
    home = str(Path(ws.home).resolve())
    lines: list[str] = []
    return AttemptContext(
        run_id=facts.run_id or 0, task_id=f"alert-{facts.kind}", attempt=1, params=params, timeout=ALERT_TIMEOUT,
        cancel=threading.Event(), log=lambda stream, line: lines.append(line), on_process=lambda pid: None,
        env={}, cwd=home, services=StoreServices(ws, facts.workflow, cwd=home, owner=None),
        workflow=facts.workflow,
    )


def send_in_background(home: str | Path, facts_of: Callable[[Workspace], AlertFacts], policy: AlertPolicy, *,
                       dedupe: str, name: str = "alert") -> threading.Thread:
    """:func:`send_alert` on a daemon thread with a store connection of its own; ``facts_of(ws)`` makes the
    facts there. Errors are logged, never raised."""
    def work() -> None:
        ws = None
        try:
            ws = Workspace(home)
            send_alert(ws, facts_of(ws), policy, dedupe=dedupe)
        except Exception:
            log.exception("an alert (%s) could not be sent", dedupe)
        finally:
            if ws is not None:
                ws.close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread

