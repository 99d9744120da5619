"""The JSON Schema of a ``taskloom/v1`` workflow document.

:data:`WORKFLOW_SCHEMA` describes the document's structure: which keys exist,
their types and ranges, with a title and description on every property so
editors (VS Code and others that read ``$schema``) show help while typing.
It knows nothing about task types; :func:`workflow_schema` adds them from a
:class:`~taskloom.core.registry.Registry`, attaching each type's params schema
through ``if``/``then`` so that an editor validates ``params`` too.

The published copy lives in ``assets/schema/workflow-v1.json`` and must equal
:func:`schema_json` (a test checks it). Validation (:mod:`taskloom.core.validation`)
uses :data:`WORKFLOW_SCHEMA` for the document's skeleton and checks params
per task itself, which is much faster on large workflows.

Pure: no I/O.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from taskloom.core.model import ALERT_KINDS, FORMAT, SETTINGS_DEFAULTS, TASK_DEFAULTS
from taskloom.core.registry import Registry, default_registry

__all__ = [
    "SCHEMA_ID",
    "IDENTIFIER_PATTERN",
    "SLUG_PATTERN",
    "TIME_OF_DAY_PATTERN",
    "EDGE_CONDITIONS",
    "PARAM_TYPES",
    "TRIGGER_TYPES",
    "INTERVAL_UNITS",
    "WEEKDAYS",
    "ALERT_CHANNEL_SCHEMA",
    "WORKFLOW_SCHEMA",
    "workflow_schema",
    "schema_json",
]

SCHEMA_ID = "https://taskloom.dev/schema/workflow-v1.json"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TIME_OF_DAY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

EDGE_CONDITIONS = ("success", "failure", "always", "true", "false")
PARAM_TYPES = ("string", "number", "integer", "boolean", "array", "object")
TRIGGER_TYPES = ("cron", "interval", "manual", "webhook", "file", "git", "workflow")
INTERVAL_UNITS = ("seconds", "minutes", "hours", "days", "weeks")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _prop(title: str, description: str, **schema: Any) -> dict[str, Any]:
    """A property schema with its editor help first."""
    return {"title": title, "description": description, **schema}


def _identifier(title: str, description: str) -> dict[str, Any]:
    return _prop(title, description, type="string", pattern=IDENTIFIER_PATTERN)


_TEXT_TITLE = _prop("Title", "Human-readable name shown in the editor; no effect on runs.", type="string")
_TEXT_DESCRIPTION = _prop(
    "Description", "Free text for the reader; no effect on runs.", type="string"
)

_PARAM_DEFAULT_TYPES = [
    {
        "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
        "then": {"properties": {"default": {"type": name}}},
    }
    for name in PARAM_TYPES
    if name != "string"
] + [
    # "string" is also the type of a parameter that does not say.
    {
        "if": {"properties": {"type": {"const": "string"}}},
        "then": {"properties": {"default": {"type": "string"}}},
    }
]

_PARAM = {
    "title": "Parameter",
    "description": "A run parameter, readable in templates as params.NAME.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "type": _prop(
            "Type",
            "JSON type of the value.",
            enum=list(PARAM_TYPES),
            default="string",
        ),
        "default": _prop(
            "Default",
            "Value used when a run does not give one; must match 'type'. "
            "Without a default the parameter is required.",
        ),
        "description": _prop("Description", "What the parameter means.", type="string"),
    },
    "allOf": _PARAM_DEFAULT_TYPES,
}

_POSITION = {
    "title": "Position",
    "description": "Where the editor draws the task; no effect on runs.",
    "type": "object",
    "required": ["x", "y"],
    "additionalProperties": False,
    "properties": {
        "x": _prop("X", "Horizontal canvas coordinate.", type="number"),
        "y": _prop("Y", "Vertical canvas coordinate.", type="number"),
    },
}

_TASK = {
    "title": "Task",
    "description": "One node of the graph: what to run and how to retry it.",
    "type": "object",
    "required": ["id", "type"],
    "additionalProperties": False,
    "properties": {
        "id": _identifier(
            "Id",
            "Unique within the workflow; templates read its output as tasks.ID.output.",
        ),
        "type": _prop("Type", "A registered task type, e.g. 'shell' or 'python'.", type="string"),
        "title": _TEXT_TITLE,
        "description": _TEXT_DESCRIPTION,
        "params": _prop(
            "Parameters",
            "Input of the task type; strings may hold {{ templates }}.",
            type="object",
            default={},
        ),
        "retries": _prop(
            "Retries",
            "How many times a failed attempt is retried.",
            type="integer",
            minimum=0,
            maximum=100,
            default=TASK_DEFAULTS["retries"],
        ),
        "retry_delay": _prop(
            "Retry delay",
            "Seconds to wait before the first retry.",
            type="number",
            minimum=0,
            default=TASK_DEFAULTS["retry_delay"],
        ),
        "retry_backoff": _prop(
            "Retry backoff",
            "Factor the delay is multiplied by for each further retry.",
            type="number",
            minimum=1,
            default=TASK_DEFAULTS["retry_backoff"],
        ),
        "max_retry_delay": _prop(
            "Maximum retry delay",
            "Upper bound of the delay between retries, in seconds.",
            type="number",
            minimum=0,
            default=TASK_DEFAULTS["max_retry_delay"],
        ),
        "timeout": _prop(
            "Timeout",
            "Seconds one attempt may run before it is killed.",
            type="number",
            exclusiveMinimum=0,
            default=TASK_DEFAULTS["timeout"],
        ),
        "join": _prop(
            "Join",
            "'all': every incoming edge must be satisfied; 'any': at least one, "
            "once every upstream task has ended.",
            enum=["all", "any"],
            default=TASK_DEFAULTS["join"],
        ),
        "position": {"$ref": "#/$defs/position"},
    },
}

_EDGE = {
    "title": "Edge",
    "description": "A dependency: 'to' may run when 'from' ended as 'on' says.",
    "type": "object",
    "required": ["from", "to"],
    "additionalProperties": False,
    "properties": {
        "from": _prop("From", "Id of the upstream task.", type="string"),
        "to": _prop("To", "Id of the downstream task.", type="string"),
        "on": _prop(
            "On",
            "When the edge is satisfied: 'success', 'failure' (failed, timed out or "
            "crashed), 'always', or for a condition task 'true' / 'false'.",
            enum=list(EDGE_CONDITIONS),
            default="success",
        ),
    },
}

_TIMEZONE = _prop(
    "Time zone", "IANA time zone name, e.g. 'Europe/Berlin'.", type="string", default="UTC"
)
_START = _prop(
    "Start",
    "ISO 8601 date-time before which the trigger does not fire.",
    type="string",
    format="date-time",
)
_END = _prop(
    "End", "ISO 8601 date-time after which the trigger does not fire.", type="string", format="date-time"
)
_ENABLED = _prop("Enabled", "A disabled trigger never fires.", type="boolean", default=True)
# id and type are checked by the trigger's base schema; a variant only admits them.
_ID_SEEN = {"description": "Unique trigger id."}
_TYPE_SEEN = {"description": "Kind of trigger."}

_CRON_TRIGGER = {
    "title": "Cron trigger",
    "description": "Fires on a five-field cron schedule in a time zone.",
    "type": "object",
    "required": ["cron"],
    "additionalProperties": False,
    "properties": {
        "id": _ID_SEEN,
        "type": _TYPE_SEEN,
        "cron": _prop(
            "Cron expression",
            "Five fields: minute hour day-of-month month day-of-week, e.g. '0 * * * *'.",
            type="string",
            minLength=1,
        ),
        "timezone": _TIMEZONE,
        "start": _START,
        "end": _END,
        "enabled": _ENABLED,
    },
}

_INTERVAL_TRIGGER = {
    "title": "Interval trigger",
    "description": "Fires every N units, optionally at a time of day or on a weekday.",
    "type": "object",
    "required": ["every", "unit"],
    "additionalProperties": False,
    "properties": {
        "id": _ID_SEEN,
        "type": _TYPE_SEEN,
        "every": _prop("Every", "How many units between runs.", type="integer", minimum=1),
        "unit": _prop("Unit", "Unit of 'every'.", enum=list(INTERVAL_UNITS)),
        "at": _prop(
            "At",
            "Time of day as HH:MM (24 hours); only with unit 'days' or 'weeks'.",
            type="string",
            pattern=TIME_OF_DAY_PATTERN,
        ),
        "weekday": _prop("Weekday", "Day of the week; only with unit 'weeks'.", enum=list(WEEKDAYS)),
        "timezone": _TIMEZONE,
        "start": _START,
        "end": _END,
        "enabled": _ENABLED,
    },
    "allOf": [
        {
            "if": {"properties": {"unit": {"enum": ["seconds", "minutes", "hours"]}}, "required": ["unit"]},
            "then": {
                "properties": {
                    "at": {"not": {}, "description": "'at' is only used with unit 'days' or 'weeks'"}
                }
            },
        },
        {
            "if": {"properties": {"unit": {"not": {"const": "weeks"}}}, "required": ["unit"]},
            "then": {
                "properties": {
                    "weekday": {"not": {}, "description": "'weekday' is only used with unit 'weeks'"}
                }
            },
        },
    ],
}

_MANUAL_TRIGGER = {
    "title": "Manual trigger",
    "description": "Runs only when started by hand or through the API.",
    "type": "object",
    "additionalProperties": False,
    "properties": {"id": _ID_SEEN, "type": _TYPE_SEEN},
}

_POLL = _prop(
    "Poll every", "Seconds between two looks for news.", type="number", minimum=1, default=30
)

_WEBHOOK_TRIGGER = {
    "title": "Webhook trigger",
    "description": "Fires on POST /hooks/{workflow}/{trigger id}; the JSON body becomes trigger.payload.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": _ID_SEEN,
        "type": _TYPE_SEEN,
        "token_secret": _prop(
            "Token secret",
            "Name of a secret holding the bearer token; without it a token is generated when the workflow is stored.",
            type="string",
            pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        ),
        "secret": _prop(
            "Signature secret",
            "Name of a secret for a GitHub-style HMAC signature (X-Hub-Signature-256) instead of a token.",
            type="string",
            pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        ),
        "respond": _prop(
            "Respond with",
            "'accepted' answers at once with the run id; 'run' waits for the run and returns its outputs.",
            enum=["accepted", "run"],
            default="accepted",
        ),
        "enabled": _ENABLED,
    },
}

_FILE_TRIGGER = {
    "title": "File trigger",
    "description": "Fires once per new or changed file matching 'pattern' under 'path'; trigger.payload.path names it.",
    "type": "object",
    "required": ["path"],
    "additionalProperties": False,
    "properties": {
        "id": _ID_SEEN,
        "type": _TYPE_SEEN,
        "path": _prop("Folder", "The folder to watch.", type="string", minLength=1),
        "pattern": _prop("Pattern", "Glob of the files to watch; ** matches subfolders.", type="string", default="*"),
        "poll_seconds": _POLL,
        "enabled": _ENABLED,
    },
}

_GIT_TRIGGER = {
    "title": "Git trigger",
    "description": "Fires once per new commit on 'branch' of 'repo'; trigger.payload has commit, author, message.",
    "type": "object",
    "required": ["repo"],
    "additionalProperties": False,
    "properties": {
        "id": _ID_SEEN,
        "type": _TYPE_SEEN,
        "repo": _prop("Repository", "A local path or a URL git can fetch.", type="string", minLength=1),
        "branch": _prop("Branch", "Default: the repository's default branch.", type="string", minLength=1),
        "poll_seconds": _POLL,
        "enabled": _ENABLED,
    },
}

_WORKFLOW_TRIGGER = {
    "title": "Workflow trigger",
    "description": "Fires when a run of another workflow ends in one of 'states' (chaining).",
    "type": "object",
    "required": ["workflow"],
    "additionalProperties": False,
    "properties": {
        "id": _ID_SEEN,
        "type": _TYPE_SEEN,
        "workflow": _prop("Workflow", "Name of the workflow to follow.", type="string", minLength=1),
        "states": _prop(
            "States",
            "End states that fire this trigger.",
            type="array",
            items={"enum": ["succeeded", "failed", "cancelled", "crashed"]},
            minItems=1,
            default=["succeeded"],
        ),
        "poll_seconds": _prop(
            "Poll every", "Seconds between two looks at the runs that ended.", type="number", minimum=1, default=5
        ),
        "enabled": _ENABLED,
    },
}

_TRIGGER = {
    "title": "Trigger",
    "description": "When the scheduler starts a run: on time ('cron', 'interval'), on events ('webhook', 'file', "
    "'git', 'workflow'), or only by hand ('manual').",
    "type": "object",
    "required": ["id", "type"],
    "properties": {
        "id": _identifier("Id", "Unique among the workflow's triggers."),
        "type": _prop("Type", "Kind of trigger.", enum=list(TRIGGER_TYPES)),
    },
    "allOf": [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"$ref": f"#/$defs/{name}Trigger"},
        }
        for name in TRIGGER_TYPES
    ],
}

_SETTINGS = {
    "title": "Settings",
    "description": "Limits that apply to each run of the workflow.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_parallel_tasks": _prop(
            "Maximum parallel tasks",
            "How many tasks of one run may execute at the same time.",
            type="integer",
            minimum=1,
            default=SETTINGS_DEFAULTS["max_parallel_tasks"],
        ),
        "timeout": _prop(
            "Run timeout",
            "Seconds a whole run may take before it is cancelled.",
            type="number",
            exclusiveMinimum=0,
            default=SETTINGS_DEFAULTS["timeout"],
        ),
        "catchup": _prop(
            "Catch up",
            "Instants missed while the scheduler was down: 'none' records them as missed, 'latest' runs the most "
            "recent one, 'all' runs each in order (up to catchup_limit).",
            enum=["none", "latest", "all"],
            default="none",
        ),
        "catchup_limit": _prop(
            "Catch-up limit", "At most this many missed instants run with catchup 'all'.", type="integer",
            minimum=1, default=100,
        ),
        "overlap": _prop(
            "Overlap",
            "A firing while a run is active: 'skip' it (recorded), 'queue' it, 'allow' it (up to "
            "max_active_runs), or 'cancel_previous'.",
            enum=["skip", "queue", "allow", "cancel_previous"],
            default="skip",
        ),
        "max_active_runs": _prop(
            "Maximum active runs", "With overlap 'allow', how many runs may be active at once.", type="integer",
            minimum=1, default=4,
        ),
    },
}

_SECONDS_LATE = "Seconds after {what}; more than 0."

ALERT_CHANNEL_SCHEMA: dict[str, Any] = {
    "title": "Alert channel",
    "description": "One place alerts go: {\"email\": [addresses]}, {\"webhook\": URL}, {\"owner\": true} or "
    "{\"log\": true}.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "email": _prop(
            "Email",
            "One address or a list of them; sent through the smtp.* configuration.",
            type=["string", "array"],
            items={"type": "string"},
            minItems=1,
        ),
        "webhook": _prop(
            "Webhook",
            "A Slack-compatible webhook URL (POSTed {\"text\": message}); may be a template of secrets only, "
            "e.g. '{{ secrets.SLACK_URL }}'.",
            type="string",
            minLength=1,
        ),
        "owner": _prop(
            "Owner", "Email the workflow's owner, at the address of their account (taskloom users add --email).",
            const=True,
        ),
        "log": _prop("Log", "Write the alert to the service log.", const=True),
    },
    "oneOf": [{"required": ["email"]}, {"required": ["webhook"]}, {"required": ["owner"]}, {"required": ["log"]}],
}

_ALERTS = {
    "title": "Alerts",
    "description": "Who hears about this workflow's runs, without a notify task: on a failed run, on the first "
    "success after failures, and when a time trigger's run is late. Without 'to' the alerts go to the "
    "channels of the alerts.to configuration, else to the workflow's owner (when their account has an email "
    "address) and the log.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "on": _prop(
            "On",
            "What to alert about: 'failure' (a run ended failed), 'recovery' (the first successful run after "
            "failed ones), 'late' (see 'late'). Default: failure and recovery, and late when 'late' is given.",
            type="array",
            items={"enum": list(ALERT_KINDS)},
        ),
        "late": {
            "title": "Late",
            "description": "A dead-man alert for the cron and interval triggers: their run did not start, or "
            "did not finish, in time, including when no run was started at all.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "start_within": _prop(
                    "Start within", _SECONDS_LATE.format(what="the trigger's instant by which its run must have "
                                                          "started"), type="number", exclusiveMinimum=0,
                ),
                "finish_within": _prop(
                    "Finish within", _SECONDS_LATE.format(what="its start (or its instant, while it has not "
                                                           "started) by which the run must have ended"),
                    type="number", exclusiveMinimum=0,
                ),
            },
        },
        "to": _prop(
            "To", "Where the alerts go; default: the alerts.to configuration.", type="array", minItems=1,
            items={"$ref": "#/$defs/alertChannel"},
        ),
    },
}

WORKFLOW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Taskloom workflow",
    "description": "A taskloom/v1 workflow: parameters, triggers, and a DAG of tasks joined by edges.",
    "type": "object",
    "required": ["format", "name", "tasks"],
    "additionalProperties": False,
    "properties": {
        "format": _prop(
            "Format", f"Version of the document format; exactly '{FORMAT}'.", const=FORMAT
        ),
        "name": _prop(
            "Name",
            "Slug naming the workflow: lowercase letters, digits, '-' and '_', "
            "at most 64 characters, e.g. 'hourly-scores'.",
            type="string",
            pattern=SLUG_PATTERN,
        ),
        "title": _TEXT_TITLE,
        "description": _TEXT_DESCRIPTION,
        "params": _prop(
            "Parameters",
            "Run parameters by name; templates read them as params.NAME.",
            type="object",
            propertyNames={"pattern": IDENTIFIER_PATTERN},
            additionalProperties={"$ref": "#/$defs/param"},
        ),
        "triggers": _prop(
            "Triggers", "When the scheduler starts runs.", type="array", items={"$ref": "#/$defs/trigger"}
        ),
        "tasks": _prop(
            "Tasks", "The nodes of the graph, in the order the editor lists them.",
            type="array",
            minItems=1,
            items={"$ref": "#/$defs/task"},
        ),
        "edges": _prop(
            "Edges", "Dependencies between tasks; the graph must be acyclic.",
            type="array",
            items={"$ref": "#/$defs/edge"},
        ),
        "settings": {"$ref": "#/$defs/settings"},
        "alerts": {"$ref": "#/$defs/alerts"},
    },
    "$defs": {
        "param": _PARAM,
        "position": _POSITION,
        "task": _TASK,
        "edge": _EDGE,
        "trigger": _TRIGGER,
        "cronTrigger": _CRON_TRIGGER,
        "intervalTrigger": _INTERVAL_TRIGGER,
        "manualTrigger": _MANUAL_TRIGGER,
        "webhookTrigger": _WEBHOOK_TRIGGER,
        "fileTrigger": _FILE_TRIGGER,
        "gitTrigger": _GIT_TRIGGER,
        "workflowTrigger": _WORKFLOW_TRIGGER,
        "settings": _SETTINGS,
        "alerts": _ALERTS,
        "alertChannel": ALERT_CHANNEL_SCHEMA,
    },
}


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists only, so json.dumps accepts any Mapping."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def workflow_schema(registry: Registry | None = None) -> dict[str, Any]:
    """:data:`WORKFLOW_SCHEMA` with the task types of ``registry`` (default: the built-ins).

    ``tasks[].type`` becomes an enum of the registered names, and each type's
    params schema is attached to ``$defs.task`` through ``allOf`` of
    ``if type == NAME then params: <schema>``. Returns a new dict.
    """
    registry = default_registry() if registry is None else registry
    schema = copy.deepcopy(WORKFLOW_SCHEMA)
    task = schema["$defs"]["task"]
    task["properties"]["type"]["enum"] = registry.names()
    task["allOf"] = [
        {
            "if": {"properties": {"type": {"const": t.name}}, "required": ["type"]},
            "then": {"properties": {"params": _plain(t.params_schema)}},
        }
        for t in sorted(registry, key=lambda t: t.name)
    ]
    return schema


def schema_json(registry: Registry | None = None) -> str:
    """The text of ``assets/schema/workflow-v1.json``: the schema, two-space indent, final newline."""
    return json.dumps(workflow_schema(default_registry() if registry is None else registry), indent=2) + "\n"
