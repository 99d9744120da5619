"""Request and response bodies of the HTTP API (:mod:`taskloom.api.app`), as pydantic models.

They document the API in OpenAPI and check what clients send; the response
shapes are the CLI's ``--json`` shapes (``RunRecord.summary()``,
``RunRecord.to_json``), with keys only ever added, never renamed or removed.
Times are ISO 8601 in UTC.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema

from taskloom.core.states import RunState

__all__ = [
    "WORKFLOW_SCHEMA_REF", "WorkflowDocument", "RunStatus", "ErrorBody", "Health", "RunSummary",
    "WorkflowSummary", "WorkflowDetail", "VersionSummary", "SaveResult", "PauseState", "RunRequest",
    "RerunRequest", "RunQueued", "RunDetail", "LogLine", "LogPage", "CancelResult", "workflow_schema_components",
    "unstorable_at", "too_deep", "printable", "MAX_SERVED_DEPTH", "servable", "AuditRow",
]

#: Where the OpenAPI document keeps the taskloom/v1 JSON Schema (added by :func:`taskloom.api.app.create_app`).
WORKFLOW_SCHEMA_REF = "#/components/schemas/TaskloomWorkflow"

#: A taskloom/v1 workflow document; OpenAPI shows the format's own JSON Schema for it.
WorkflowDocument = Annotated[dict[str, Any], WithJsonSchema({"allOf": [{"$ref": WORKFLOW_SCHEMA_REF}]})]

RunStatus = Literal[tuple(s.value for s in RunState)]  # type: ignore[valid-type]
# Responses say str, not RunStatus, so that a state added later cannot turn a read into an error.
_STATUS = "The run's state: " + ", ".join(s.value for s in RunState) + "."


class _Strict(BaseModel):
    """A request body: unknown keys are mistakes, reported by name."""

    model_config = ConfigDict(extra="forbid")


# -- errors and health --------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error response: what went wrong, and where when it can say."""

    error: str = Field(description="What went wrong, fit to show a user.")
    field: str | None = Field(None, description="The request part at fault, e.g. 'body.params.times' or 'query.limit'.")
    issues: list[dict[str, str]] | None = Field(
        None,
        description="Every problem: {field, message} for a malformed request; "
        "{path, message, hint} (a JSON pointer into the document) for an invalid workflow.",
    )


class Health(BaseModel):
    status: Literal["ok"]
    version: str = Field(description="The installed taskloom version.")
    time: str = Field(description="The server's clock, ISO 8601 UTC.")


# -- workflows -----------------------------------------------------------------


class RunSummary(BaseModel):
    """A run without its tasks (the ``taskloom runs --json`` shape)."""

    id: int
    workflow: str
    version: int | None = Field(description="The workflow version it ran; null for an unsaved file.")
    status: str = Field(description=_STATUS)
    trigger: str = Field(description="What started it: 'api', 'manual', 'rerun', a trigger type, ...")
    logical_time: str | None
    started: str | None
    ended: str | None
    duration: float | None = Field(description="Seconds from start to end; null until it ended.")
    params: dict[str, Any]
    error: str | None
    parent_run_id: int | None = Field(description="The run this one re-runs.")
    started_by: str | None = Field(None, description="Who started it: a user's name, 'schedule', 'webhook', 'api'"
                                                     " (the service token); null for runs from before accounts.")


class WorkflowSummary(BaseModel):
    name: str
    title: str
    version: int = Field(description="The current version.")
    paused: bool = Field(description="A paused workflow's triggers do not fire.")
    created: str
    updated: str
    owner: str | None = Field(None, description="Who saved its first version.")
    last_run: RunSummary | None


class WorkflowDetail(BaseModel):
    name: str
    title: str
    version: int
    paused: bool
    document: WorkflowDocument


class VersionSummary(BaseModel):
    version: int
    message: str = Field(description="The note given when it was saved.")
    created: str
    sha256: str = Field(description="The SHA-256 of the version's canonical JSON.")


class SaveResult(BaseModel):
    name: str
    version: int
    created: bool = Field(description="False when the document equals the current version (nothing stored).")


class PauseState(BaseModel):
    name: str
    paused: bool


# -- runs --------------------------------------------------------------------------


class RunRequest(_Strict):
    """How to start a run."""

    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Values of the workflow's declared params as JSON values of the declared types; "
        "missing ones take their defaults.",
        examples=[{"who": "world", "times": 3}],
    )
    payload: Any = Field(None, description="Any JSON value; tasks read it as trigger.payload.")


class RerunRequest(_Strict):
    """Which part of a run to run again; the rest keeps the old run's results."""

    from_task: str | None = Field(None, description="Re-run this task and everything downstream of it.")
    failed: StrictBool = Field(False, description="Re-run the failed tasks and everything downstream of them.")


class RunQueued(BaseModel):
    run_id: int
    status: Literal["queued"]


class AttemptDetail(BaseModel):
    number: int
    status: str
    started: str | None
    ended: str | None
    exit_code: int | None
    signal: int | None
    error: str | None
    output: Any


class TaskDetail(BaseModel):
    status: str
    attempts: int
    output: Any
    error: str | None
    skip_reason: str | None
    attempt_list: list[AttemptDetail]


class RunDetail(BaseModel):
    """A run with its tasks and their attempts (the ``taskloom run --json`` shape, plus the run's summary)."""

    run_id: int
    workflow: str
    version: int | None
    status: str = Field(description=_STATUS)
    error: str | None
    started: str | None
    ended: str | None
    tasks: dict[str, TaskDetail]
    trigger: str
    trigger_payload: Any
    logical_time: str | None
    duration: float | None
    params: dict[str, Any]
    parent_run_id: int | None


class LogLine(BaseModel):
    id: int = Field(description="Increasing; pass the last one seen as after_id to read on.")
    task: str
    attempt: int
    ts: str = Field(description="When the line was captured, ISO 8601 UTC.")
    stream: str = Field(description="'stdout', 'stderr', or 'system' (lines from Taskloom itself).")
    line: str


class LogPage(BaseModel):
    run_id: int
    status: str = Field(description="The run's status now; a client tailing the logs stops once it is not queued or running.")
    lines: list[LogLine]
    next_after_id: int | None = Field(
        description="The after_id for the next page when this page was full (more lines exist); null otherwise."
    )


class CancelResult(BaseModel):
    run_id: int
    result: Literal["requested", "cancelled", "ended"] = Field(
        description="'requested': its runner (or the scheduler, for a queued run) will stop it; "
        "'cancelled': nobody was running it, so it was cancelled here; 'ended': it had already ended."
    )


# -- the workflow format in OpenAPI ------------------------------------------------------


def workflow_schema_components(schema_text: str) -> dict[str, Any]:
    """The format's schema with its ``$defs`` hoisted to components (``TaskloomWorkflow.<def>``)."""
    schema = json.loads(schema_text)
    defs = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    base = WORKFLOW_SCHEMA_REF.rsplit("/", 1)[-1]

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: f"#/components/schemas/{base}.{v[len('#/$defs/'):]}"
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/") else rewrite(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return {base: rewrite(schema), **{f"{base}.{name}": rewrite(d) for name, d in defs.items()}}


# -- text that cannot be stored ----------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable_at(value: Any, where: str) -> tuple[str, str] | None:
    """``(dotted path, why)`` for the first value JSON parsers accept but Taskloom cannot store faithfully.

    A ``"\\ud800"`` escape decodes to an unpaired surrogate, which has no
    UTF-8 form: SQLite cannot store it and no response can echo it. ``NaN``,
    ``Infinity`` and ``1e400`` (which overflows to infinity) are not JSON
    numbers: they would come back as ``null``. Integers beyond a double's
    range break every JSON reader but Python's. The same rules as for
    workflow documents (:func:`taskloom.core.validation.validate_document`).
    """
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return path, "holds an unpaired surrogate (a \\ud800-\\udfff escape alone), which is not text"
        elif isinstance(item, float):
            if item != item:
                return path, "is NaN, which is not a JSON number"
            if item - item != 0.0:  # an infinity: a literal such as 1e400 overflows to it
                return path, "is a number too large for JSON: it overflows to infinity (at most about 1.8e308)"
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -sys.float_info.max <= item <= sys.float_info.max:
                return path, "is a number too large for JSON (at most about 1.8e308)"
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                    return path, "has a key holding an unpaired surrogate, which is not text"
                stack.append((inner, f"{path}.{printable(key)}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{path}.{i}") for i, inner in enumerate(item))
    return None


def too_deep(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels deep.

    The same cap as for workflow documents: deeper values parse, but reading
    them back through the API's serializer fails (it has a depth limit of its own).
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


#: Values nested deeper than this are sent as their JSON text: pydantic refuses to serialize past ~255 levels.
MAX_SERVED_DEPTH = 200


def servable(value: Any, limit: int = MAX_SERVED_DEPTH) -> Any:
    """``value`` as the API can always send it: a part nested deeper than ``limit`` becomes its JSON text.

    Task outputs are whatever a task returned; one nested 600 levels deep was
    stored fine, and then every ``GET /runs/{id}`` of its run failed with a
    500. Values within the limit are returned as they are, unchanged.
    """
    if not too_deep(value, limit):
        return value

    def cut(item: Any, depth: int) -> Any:
        if isinstance(item, (dict, list)) and depth > limit:
            return json.dumps(item, ensure_ascii=False)
        if isinstance(item, dict):
            return {k: cut(v, depth + 1) for k, v in item.items()}
        if isinstance(item, list):
            return [cut(v, depth + 1) for v in item]
        return item

    return cut(value, 1)


def printable(value: Any) -> Any:
    """``value`` with unpaired surrogates in its strings written as escapes, so it can be sent as UTF-8."""
    if isinstance(value, str):
        return value if value.isascii() or not _SURROGATE.search(value) else value.encode(
            "utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable(v) for v in value]
    return value


class AuditRow(BaseModel):
    """One row of the audit trail."""

    id: int
    at: str
    actor: str = Field(description="The user's name; 'local' without accounts; 'service-token' for --token.")
    via: str = Field(description="How they proved it: password, token, sso, service-token, cli, local.")
    action: str
    target: str
    workflow: str | None
    version: int | None
    result: str = Field(description="ok, refused (not allowed) or failed.")
    source: str = Field(description="cli, web, or api and the client's address.")
    detail: str
