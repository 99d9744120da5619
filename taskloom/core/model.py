"""The workflow model: a typed, read-only view of a ``taskloom/v1`` document.

The JSON document is the source of truth. :class:`Workflow` wraps a document
that has passed validation, applies the documented defaults, and keeps the
original dict untouched so that export writes back exactly what was read
(:func:`canonical_json`): the editor's ``position``, ``title`` and
``description`` survive a round trip and never change behaviour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "FORMAT",
    "TASK_DEFAULTS",
    "SETTINGS_DEFAULTS",
    "Param",
    "Task",
    "Edge",
    "Trigger",
    "Settings",
    "AlertChannel",
    "Alerts",
    "ALERT_KINDS",
    "Workflow",
    "canonical_json",
]

FORMAT = "taskloom/v1"

TASK_DEFAULTS: dict[str, Any] = {
    "retries": 0,
    "retry_delay": 10.0,
    "retry_backoff": 2.0,
    "max_retry_delay": 600.0,
    "timeout": 3600.0,
    "join": "all",
}

SETTINGS_DEFAULTS: dict[str, Any] = {
    "max_parallel_tasks": 4,
    "timeout": 86400.0,
    "catchup": "none",
    "catchup_limit": 100,
    "overlap": "skip",
    "max_active_runs": 4,
}

#: What an ``alerts`` section can be about: a run ended failed, the first success after failures, a time
#: trigger's run did not start or finish in time (see :mod:`taskloom.core.alerts`).
ALERT_KINDS = ("failure", "recovery", "late")

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Param:
    """A declared workflow parameter."""

    name: str
    type: str
    default: Any = _NO_DEFAULT
    description: str = ""

    @property
    def required(self) -> bool:
        """A parameter without a default must be given for every run."""
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class Task:
    """One node of the graph: what to run and how to retry it."""

    id: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    retries: int = 0
    retry_delay: float = 10.0
    retry_backoff: float = 2.0
    max_retry_delay: float = 600.0
    timeout: float = 3600.0
    join: str = "all"


@dataclass(frozen=True)
class Edge:
    """A dependency: ``target`` may run when ``source`` ended as ``on`` says."""

    source: str
    target: str
    on: str = "success"


@dataclass(frozen=True)
class Trigger:
    """A trigger declaration; the scheduler interprets ``config``."""

    id: str
    type: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class Settings:
    max_parallel_tasks: int = 4
    timeout: float = 86400.0
    catchup: str = "none"  # none | latest | all: instants missed while the scheduler was down
    catchup_limit: int = 100
    overlap: str = "skip"  # skip | queue | allow | cancel_previous
    max_active_runs: int = 4


@dataclass(frozen=True)
class AlertChannel:
    """Where an alert goes: ``email`` (addresses), ``webhook`` (a URL, maybe a ``{{ secrets.X }}`` template),
    ``owner`` (the email address of the workflow owner's account) or ``log`` (the service log)."""

    kind: str  # email | webhook | owner | log
    to: tuple[str, ...] = ()  # the addresses of an email channel
    url: str = ""  # the URL (or its template) of a webhook channel

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "AlertChannel":
        """One item of ``alerts.to`` (or of the ``alerts.to`` configuration key), already validated."""
        if "email" in item:
            value = item["email"]
            return cls("email", to=tuple([value] if isinstance(value, str) else value))
        if "webhook" in item:
            return cls("webhook", url=str(item["webhook"]))
        if "owner" in item:
            return cls("owner")
        return cls("log")


@dataclass(frozen=True)
class Alerts:
    """A workflow's ``alerts`` section, as written: ``on`` and ``to`` are None when not given (then the
    home's configuration decides, :func:`taskloom.core.alerts.effective_alerts`)."""

    on: tuple[str, ...] | None = None
    start_within: float | None = None
    finish_within: float | None = None
    to: tuple[AlertChannel, ...] | None = None

    @classmethod
    def from_json(cls, section: Mapping[str, Any]) -> "Alerts":
        late = section.get("late") or {}
        return cls(
            on=None if "on" not in section else tuple(section["on"]),
            start_within=None if "start_within" not in late else float(late["start_within"]),
            finish_within=None if "finish_within" not in late else float(late["finish_within"]),
            to=None if "to" not in section else tuple(AlertChannel.from_json(c) for c in section["to"]),
        )


@dataclass(frozen=True)
class Workflow:
    """A validated workflow with defaults applied and adjacency precomputed."""

    name: str
    title: str
    description: str
    params: Mapping[str, Param]
    triggers: tuple[Trigger, ...]
    tasks: Mapping[str, Task]
    edges: tuple[Edge, ...]
    settings: Settings
    document: Mapping[str, Any]
    #: the ``alerts`` section, or None when the document has none (the home's defaults may still apply)
    alerts: Alerts | None = None
    _incoming: Mapping[str, tuple[Edge, ...]] = field(repr=False, default_factory=dict)
    _outgoing: Mapping[str, tuple[Edge, ...]] = field(repr=False, default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "Workflow":
        """Build the model from a document that passed :func:`taskloom.core.validation.validate_document`."""
        tasks = {t["id"]: _task(t) for t in doc.get("tasks", [])}
        edges = tuple(
            Edge(e["from"], e["to"], e.get("on", "success")) for e in doc.get("edges", [])
        )
        incoming: dict[str, list[Edge]] = {tid: [] for tid in tasks}
        outgoing: dict[str, list[Edge]] = {tid: [] for tid in tasks}
        for edge in edges:
            incoming[edge.target].append(edge)
            outgoing[edge.source].append(edge)
        settings = {**SETTINGS_DEFAULTS, **doc.get("settings", {})}
        return cls(
            name=doc["name"],
            title=doc.get("title", ""),
            description=doc.get("description", ""),
            params={
                name: Param(
                    name,
                    spec.get("type", "string"),
                    spec.get("default", _NO_DEFAULT),
                    spec.get("description", ""),
                )
                for name, spec in doc.get("params", {}).items()
            },
            triggers=tuple(
                Trigger(t["id"], t["type"], {k: v for k, v in t.items() if k not in ("id", "type")})
                for t in doc.get("triggers", [])
            ),
            tasks=tasks,
            edges=edges,
            settings=Settings(
                max_parallel_tasks=int(settings["max_parallel_tasks"]),
                timeout=float(settings["timeout"]),
                catchup=settings["catchup"],
                catchup_limit=int(settings["catchup_limit"]),
                overlap=settings["overlap"],
                max_active_runs=int(settings["max_active_runs"]),
            ),
            document=doc,
            alerts=Alerts.from_json(doc["alerts"]) if isinstance(doc.get("alerts"), Mapping) else None,
            _incoming={k: tuple(v) for k, v in incoming.items()},
            _outgoing={k: tuple(v) for k, v in outgoing.items()},
        )

    def to_document(self) -> dict[str, Any]:
        """The document this workflow was built from, as a new plain dict: every key as it was read,
        ``alerts`` included, so ``Workflow.from_document(w.to_document())`` is ``w`` again."""
        return json.loads(json.dumps(self.document))

    def incoming(self, task_id: str) -> tuple[Edge, ...]:
        """Edges that end at ``task_id``."""
        return self._incoming[task_id]

    def outgoing(self, task_id: str) -> tuple[Edge, ...]:
        """Edges that start at ``task_id``."""
        return self._outgoing[task_id]

    def downstream_of(self, task_ids: set[str]) -> set[str]:
        """Every task reachable from ``task_ids``, the tasks themselves included."""
        seen = set(task_ids)
        stack = list(task_ids)
        while stack:
            for edge in self._outgoing[stack.pop()]:
                if edge.target not in seen:
                    seen.add(edge.target)
                    stack.append(edge.target)
        return seen


def _task(t: Mapping[str, Any]) -> Task:
    values = {**TASK_DEFAULTS, **{k: t[k] for k in TASK_DEFAULTS if k in t}}
    return Task(
        id=t["id"],
        type=t["type"],
        params=t.get("params", {}),
        title=t.get("title", ""),
        retries=int(values["retries"]),
        retry_delay=float(values["retry_delay"]),
        retry_backoff=float(values["retry_backoff"]),
        max_retry_delay=float(values["max_retry_delay"]),
        timeout=float(values["timeout"]),
        join=values["join"],
    )


# Canonical key order per kind of object; keys not listed follow, sorted.
_KEY_ORDER: dict[str, tuple[str, ...]] = {
    "workflow": (
        "format", "name", "title", "description", "params", "triggers",
        "tasks", "edges", "settings", "alerts",
    ),
    "task": (
        "id", "type", "title", "description", "params", "retries", "retry_delay",
        "retry_backoff", "max_retry_delay", "timeout", "join", "position",
    ),
    "trigger": ("id", "type"),
    "edge": ("from", "to", "on"),
    "param": ("type", "default", "description"),
    "alerts": ("on", "late", "to"),
}


def _ordered(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    order = _KEY_ORDER[kind]
    first = [k for k in order if k in obj]
    rest = sorted(k for k in obj if k not in order)
    return {k: obj[k] for k in first + rest}


def _canonical(doc: Mapping[str, Any]) -> dict[str, Any]:
    out = _ordered(doc, "workflow")
    if isinstance(out.get("params"), dict):
        out["params"] = {
            k: _ordered(v, "param") if isinstance(v, dict) else v
            for k, v in out["params"].items()
        }
    if isinstance(out.get("alerts"), dict):
        out["alerts"] = _ordered(out["alerts"], "alerts")
    for key, kind in (("tasks", "task"), ("triggers", "trigger"), ("edges", "edge")):
        if isinstance(out.get(key), list):
            out[key] = [_ordered(x, kind) if isinstance(x, dict) else x for x in out[key]]
    return out


def canonical_json(doc: Mapping[str, Any]) -> str:
    """Serialize a document canonically: fixed key order, two-space indent, final newline.

    Lists keep their order (task order is the user's); only object keys move,
    so the same workflow always produces the same bytes and diffs well in git.
    """
    return json.dumps(_canonical(doc), indent=2, ensure_ascii=False) + "\n"
