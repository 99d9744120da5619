"""Alerts: what a workflow's ``alerts`` section means, checked and decided without I/O.

A workflow says who hears about its runs without wiring a notify task::

    "alerts": {
      "on": ["failure", "recovery", "late"],
      "late": {"start_within": 300, "finish_within": 3600},
      "to": [{"email": ["ops@example.com"]}, {"webhook": "{{ secrets.SLACK_URL }}"}, {"log": true}]
    }

* ``failure``: a run ended ``failed`` (a task failed, timed out or crashed with
  nothing to handle it, or the run outlived ``settings.timeout``). A run that
  is *interrupted* (recorded ``crashed``) is resumed by the scheduler, so it
  alerts when it really ends.
* ``recovery``: a run succeeded and the workflow's previous ended run (by end
  time; cancelled runs do not count) had failed.
* ``late``: the dead-man alert of the cron and interval triggers
  (:mod:`taskloom.core.lateness` has the arithmetic). For each
  instant, its run must have *started* within ``start_within`` seconds of the
  instant and *ended* within ``finish_within`` seconds of its start (of the
  instant while it has not started). It fires also when no run exists at all:
  the firing was missed while the scheduler was down, or never started. An
  instant skipped for overlap (``settings.overlap``) is not late by itself:
  the run that was still active is, and its own instant reports it.

Defaults: ``on`` is failure and recovery, plus late when ``late`` is given;
``to`` is the home's ``alerts.to`` configuration, else the workflow's owner
(``{"owner": true}``: the email address of their account, when it has one)
and the log. A workflow without an ``alerts`` section gets the kinds of the
``alerts.on`` configuration (failure and recovery only), to those same
channels.

Deduplication: one alert per (run, kind); a late alert about an instant that
has no run, one per (workflow, trigger, instant). :func:`dedupe_key` is the
journal's unique key, with the channel.

Pure: time is an argument, nothing here sends or reads anything.

    >>> policy = effective_alerts(None, ["failure"], [])
    >>> sorted(policy.kinds), [c.kind for c in policy.channels]
    (['failure'], ['owner', 'log'])
    >>> run_end_kind("failed", None, policy.kinds), run_end_kind("succeeded", "failed", policy.kinds)
    ('failure', None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from taskloom.core.issues import Issue, pointer
from taskloom.core.masking import Masker
from taskloom.core.model import ALERT_KINDS, AlertChannel, Alerts
from taskloom.core.templates import TemplateError, has_template, references

__all__ = [
    "ALERT_KINDS", "DEFAULT_KINDS", "OWNER_AND_LOG", "TIME_TRIGGER_TYPES", "LOG_LINES",
    "AlertPolicy", "AlertFacts",
    "check_alerts", "check_channels", "check_default_kinds", "effective_alerts", "run_end_kind",
    "dedupe_key", "channel_labels", "alert_text", "run_link",
]

#: The kinds an ``alerts`` section without ``on`` alerts about (and late, when ``late`` is given).
DEFAULT_KINDS = ("failure", "recovery")
#: The trigger types whose instants a late alert watches.
TIME_TRIGGER_TYPES = ("cron", "interval")
#: How many of the failed task's last log lines an alert quotes.
LOG_LINES = 20

#: Where alerts go when neither the workflow nor the home says.
OWNER_AND_LOG = (AlertChannel("owner"), AlertChannel("log"))

#: An address as mail servers take it: something@domain.tld, no spaces, commas or angle brackets.
_EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>.]+$")


# -- validation ---------------------------------------------------------------------


def check_alerts(doc: Mapping[str, Any]) -> list[Issue]:
    """Issues of the ``alerts`` section beyond its structure (which the schema checked).

    Repeated kinds, ``late`` in ``on`` without its seconds (or the reverse),
    ``late`` without a cron or interval trigger, bad email addresses and
    webhook URLs.
    """
    section = doc.get("alerts")
    if not isinstance(section, dict):
        return []
    issues = _kind_issues(section)
    late = section.get("late")
    if isinstance(late, dict):
        issues += _late_issues(late, doc.get("triggers"))
    to = section.get("to")
    if isinstance(to, list):
        issues += check_channels(to, ("alerts", "to"))
    return issues


def _kind_issues(section: Mapping[str, Any]) -> list[Issue]:
    on = section.get("on")
    issues: list[Issue] = []
    if isinstance(on, list):
        seen: set[Any] = set()
        for i, kind in enumerate(on):
            if kind in seen and isinstance(kind, str):
                issues.append(Issue(pointer("alerts", "on", i), f"'{kind}' is listed twice in alerts.on",
                                    "list each kind once"))
            seen.add(kind)
        if "late" in on and "late" not in section:
            issues.append(Issue(pointer("alerts", "on"), "'late' is in alerts.on but alerts.late does not say"
                                " how late is late",
                                'add "late": {"start_within": SECONDS} and/or {"finish_within": SECONDS}'))
        if "late" not in on and isinstance(section.get("late"), dict):
            issues.append(Issue(pointer("alerts", "late"), "alerts.late is given but 'late' is not in alerts.on,"
                                " so it would never alert", "add 'late' to alerts.on, or remove alerts.late"))
    return issues


def _late_issues(late: Mapping[str, Any], triggers: Any) -> list[Issue]:
    issues: list[Issue] = []
    if "start_within" not in late and "finish_within" not in late:
        issues.append(Issue(pointer("alerts", "late"), "alerts.late gives neither 'start_within' nor"
                            " 'finish_within'", 'e.g. "late": {"start_within": 300, "finish_within": 3600}'))
    timed = [t for t in triggers if isinstance(t, dict) and t.get("type") in TIME_TRIGGER_TYPES] \
        if isinstance(triggers, list) else []
    if not timed:
        others = [f"{t.get('type')} '{t.get('id')}'" for t in triggers if isinstance(t, dict)] \
            if isinstance(triggers, list) else []
        having = f"its triggers: {', '.join(others)}" if others else "it has no triggers"
        issues.append(Issue(pointer("alerts", "late"), f"alerts.late watches the instants of cron and interval"
                            f" triggers, and this workflow has none ({having})",
                            "add a cron or interval trigger, or remove alerts.late (and 'late' from alerts.on)"))
    return issues


def check_channels(channels: Sequence[Any], base: tuple[Any, ...]) -> list[Issue]:
    """Issues of a list of channels (a workflow's ``alerts.to``, or the ``alerts.to`` configuration)."""
    issues: list[Issue] = []
    for i, channel in enumerate(channels):
        if not isinstance(channel, dict):
            continue
        email = channel.get("email")
        addresses = [email] if isinstance(email, str) else email if isinstance(email, list) else []
        for j, address in enumerate(addresses):
            if isinstance(address, str) and not _EMAIL.match(address.strip()):
                where = pointer(*base, i, "email") if isinstance(email, str) else pointer(*base, i, "email", j)
                issues.append(Issue(where, f"{address!r} is not an email address",
                                    "write one address per item, like 'ops@example.com'"))
        url = channel.get("webhook")
        if isinstance(url, str):
            issue = _webhook_issue(url)
            if issue is not None:
                issues.append(Issue(pointer(*base, i, "webhook"), *issue))
    return issues


def _webhook_issue(url: str) -> tuple[str, str] | None:
    """``(message, hint)`` when ``url`` is neither an http(s) URL nor a template of secrets."""
    if has_template(url):
        try:
            roots = {ref.root for ref in references(url)}
        except TemplateError as exc:
            return f"the webhook template does not parse: {exc}", "e.g. '{{ secrets.SLACK_URL }}'"
        if roots - {"secrets"}:
            names = ", ".join(sorted(roots - {"secrets"}))
            return (f"an alert's webhook template can only read secrets, not {names}",
                    "keep the URL in a secret: taskloom secrets set SLACK_URL, then '{{ secrets.SLACK_URL }}'")
        return None
    if not re.match(r"^https?://[^\s/]+", url):
        return f"webhook {url!r} is not an http:// or https:// URL", \
            "give the full URL, or '{{ secrets.NAME }}' to read it from a secret"
    return None


def check_default_kinds(kinds: Sequence[Any]) -> list[str]:
    """Problems of the ``alerts.on`` configuration: failure and recovery only (late needs its seconds)."""
    problems = []
    for kind in kinds:
        if kind not in DEFAULT_KINDS:
            problems.append(f"{kind!r} cannot be a home-wide default; use 'failure' or 'recovery'"
                            + (" (late needs its seconds: set alerts.late in the workflow)" if kind == "late" else ""))
    return problems


# -- what applies --------------------------------------------------------------------


@dataclass(frozen=True)
class AlertPolicy:
    """What a workflow alerts about, and where, once the home's defaults are applied."""

    kinds: frozenset[str]
    channels: tuple[AlertChannel, ...]
    start_within: float | None = None
    finish_within: float | None = None

    @property
    def watches_late(self) -> bool:
        return "late" in self.kinds and (self.start_within is not None or self.finish_within is not None)


def effective_alerts(alerts: Alerts | None, default_on: Sequence[str],
                     default_to: Sequence[Mapping[str, Any]]) -> AlertPolicy | None:
    """The policy of a workflow's ``alerts`` (None: it has none) under the home's ``alerts.on``/``alerts.to``.

    None when nothing is alerted. Channels default to ``default_to``, and to
    the owner and the log when that is empty too: an alert is never sent nowhere.

    >>> effective_alerts(Alerts(on=()), ["failure"], []) is None
    True
    >>> sorted(effective_alerts(Alerts(start_within=60.0), [], []).kinds)
    ['failure', 'late', 'recovery']
    """
    if alerts is None:
        kinds = frozenset(k for k in default_on if k in DEFAULT_KINDS)
        start = finish = None
        channels = None
    else:
        late_given = alerts.start_within is not None or alerts.finish_within is not None
        kinds = frozenset(alerts.on if alerts.on is not None else (*DEFAULT_KINDS, *(("late",) if late_given else ())))
        start, finish, channels = alerts.start_within, alerts.finish_within, alerts.to
    if not kinds:
        return None
    if not channels:
        channels = tuple(AlertChannel.from_json(c) for c in default_to) or OWNER_AND_LOG
    return AlertPolicy(kinds, channels, start, finish)


def run_end_kind(status: str, previous: str | None, kinds: Iterable[str]) -> str | None:
    """The alert a run that ended ``status`` raises, given the previous ended run's status (None: no run before).

    >>> run_end_kind("succeeded", "failed", ["recovery"]), run_end_kind("succeeded", "succeeded", ["recovery"])
    ('recovery', None)
    >>> run_end_kind("cancelled", None, ALERT_KINDS) is None
    True
    """
    kinds = set(kinds)
    if status == "failed" and "failure" in kinds:
        return "failure"
    if status == "succeeded" and previous == "failed" and "recovery" in kinds:
        return "recovery"
    return None


# -- the journal's key and the message --------------------------------------------------


def dedupe_key(kind: str, *, run_id: int | None, workflow: str, trigger_id: str | None = None,
               instant: float | None = None) -> str:
    """The unique key of one alert: per (run, kind), or for a late instant without a run per (workflow, trigger,
    instant, kind).

    >>> dedupe_key("failure", run_id=7, workflow="w"), dedupe_key("late", run_id=None, workflow="w",
    ...                                                          trigger_id="t", instant=1.5)
    ('run:7:failure', 'instant:w:t:1.5:late')
    """
    if run_id is not None:
        return f"run:{run_id}:{kind}"
    return f"instant:{workflow}:{trigger_id}:{instant!r}:{kind}"


def channel_labels(channels: Sequence[AlertChannel]) -> list[str]:
    """A name per channel for the journal: ``email:ops@example.com``, ``webhook:1``, ``owner``, ``log`` (a webhook's URL
    may hold a secret, so it is named by its place in the list). Unique within the list.

    >>> channel_labels([AlertChannel("webhook", url="u"), AlertChannel("email", to=("a@b.c",)),
    ...                 AlertChannel("webhook", url="v"), AlertChannel("log")])
    ['webhook:1', 'email:a@b.c', 'webhook:3', 'log']
    """
    labels = []
    for i, channel in enumerate(channels, 1):
        if channel.kind == "email":
            label = "email:" + ",".join(channel.to)
        elif channel.kind == "webhook":
            label = f"webhook:{i}"
        else:
            label = channel.kind
        while label in labels:
            label += f"#{i}"
        labels.append(label)
    return labels


@dataclass(frozen=True)
class AlertFacts:
    """What one alert says."""

    kind: str
    workflow: str
    summary: str  # one line: what happened
    link: str  # the run's page, or the command that shows it
    run_id: int | None = None
    trigger_id: str | None = None
    instant: float | None = None
    failed_task: str | None = None
    error: str | None = None
    log_lines: tuple[str, ...] = ()


def run_link(web_url: str | None, run_id: int | None, workflow: str) -> str:
    """The run's page in the web app when ``web.url`` is set, else the commands that show it.

    >>> run_link("https://taskloom.example.com/", 12, "w"), run_link(None, 12, "w")
    ('https://taskloom.example.com/runs?run=12', 'taskloom logs 12 (and: taskloom runs w)')
    """
    if run_id is None:
        return f"{web_url.rstrip('/')}/runs" if web_url else f"taskloom runs {workflow}"
    if web_url:
        return f"{web_url.rstrip('/')}/runs?run={run_id}"
    return f"taskloom logs {run_id} (and: taskloom runs {workflow})"


def _iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, tz=timezone.utc).isoformat(timespec="seconds")


def alert_text(facts: AlertFacts, masker: Masker) -> tuple[str, str]:
    """``(subject, body)`` of an alert, every secret value masked (the error and log lines quote a task).

    >>> subject, body = alert_text(AlertFacts("failure", "w", "run 3 failed", "taskloom logs 3", run_id=3,
    ...                            failed_task="t", error="token abcd1234 refused"), Masker(["abcd1234"]))
    >>> subject
    '[taskloom] failure: w (run 3)'
    >>> "token *** refused" in body
    True
    """
    where = f"run {facts.run_id}" if facts.run_id is not None else f"trigger {facts.trigger_id}"
    subject = f"[taskloom] {facts.kind}: {facts.workflow} ({where})"
    lines = [f"{facts.kind.upper()}: {facts.summary}", "", f"Workflow: {facts.workflow}"]
    if facts.run_id is not None:
        lines.append(f"Run: {facts.run_id}")
    if facts.trigger_id is not None:
        lines.append(f"Trigger: {facts.trigger_id}")
    if facts.instant is not None:
        lines.append(f"Instant: {_iso(facts.instant)}")
    lines.append(f"Link: {facts.link}")
    if facts.failed_task is not None:
        lines.append(f"Failed task: {facts.failed_task}")
    if facts.error:
        lines.append(f"Error: {facts.error}")
    if facts.log_lines:
        lines += ["", f"Last {len(facts.log_lines)} log lines of {facts.failed_task}:"]
        lines += [f"  {line}" for line in facts.log_lines]
    return masker.mask(subject), masker.mask("\n".join(lines)) + "\n"
