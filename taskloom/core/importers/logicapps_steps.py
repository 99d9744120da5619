"""One Logic Apps action to one Taskloom task: Http, Compose, ParseJson, Wait, Terminate, Response...

Each converter receives the action's JSON and a :class:`StepContext` and
returns a :class:`Step`: the task's type, params and settings, a sentence
for the import report, and what did not convert exactly. Control actions
(If, Scope, For each) shape the graph and live in :mod:`.logicapps_graph`;
an action type with no converter here becomes a placeholder
(:func:`placeholder_for`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from taskloom.core.specs.http import METHODS
from taskloom.core.importers.common import iso_duration, short_json
from taskloom.core.importers.wdl import Context, Translation, translate_string, translate_value

__all__ = ["Step", "StepContext", "CONVERTERS", "VALUE_TYPES", "convert_step", "placeholder_todo", "retry_settings"]


@dataclass
class StepContext:
    """What a step converter may use: the expression context and the task's id."""

    wdl: Context
    task_id: str


@dataclass
class Step:
    """A converted action: the task's fields (without id and edges) and what to report."""

    type: str
    params: dict[str, Any]
    summary: str
    settings: dict[str, Any] = field(default_factory=dict)
    #: things that did not convert exactly, each a sentence with what to check
    notes: list[str] = field(default_factory=list)


def _use(translation: Translation, notes: list[str], where: str) -> Any:
    notes.extend(f"{where}: kept verbatim, {reason}" for reason in translation.verbatim)
    notes.extend(f"{where}: {how}" for how in translation.approximate)
    return translation.value


def retry_settings(policy: Any, notes: list[str], *, default_applies: bool) -> dict[str, Any]:
    """Task retry settings for a Logic Apps ``retryPolicy`` (None: the default policy, when it applies)."""
    if policy is None:
        if not default_applies:
            return {}
        # the documented default: up to four retries, exponentially spaced by 7.5 s, between 5 and 45 s
        return {"retries": 4, "retry_delay": 7.5, "retry_backoff": 2, "max_retry_delay": 45}
    if not isinstance(policy, dict):
        notes.append(f"retryPolicy {short_json(policy)} is not an object; no retries")
        return {}
    kind = str(policy.get("type", "default")).lower()
    if kind == "none":
        return {}
    if kind == "default":
        return retry_settings(None, notes, default_applies=True)
    try:
        count = int(policy.get("count", 4))
    except (TypeError, ValueError):
        count = 4
        notes.append(f"retryPolicy count {policy.get('count')!r} is not a number; 4 is used")
    interval = iso_duration(policy.get("interval"))
    if interval is None:
        interval = iso_duration(policy.get("minimumInterval")) or 7.5
        if policy.get("interval") is not None:
            notes.append(f"retryPolicy interval {policy.get('interval')!r} is not an ISO 8601 duration")
    out: dict[str, Any] = {"retries": max(0, min(count, 90)), "retry_delay": interval}
    if kind == "fixed":
        out["retry_backoff"] = 1
    elif kind == "exponential":
        out["retry_backoff"] = 2
        maximum = iso_duration(policy.get("maximumInterval"))
        if maximum:
            out["max_retry_delay"] = maximum
    else:
        notes.append(f"retryPolicy type {policy.get('type')!r} is unknown; treated as exponential")
        out["retry_backoff"] = 2
    if kind == "exponential" and "minimumInterval" in policy:
        notes.append("retryPolicy minimumInterval: Taskloom starts at 'interval' and doubles, without random spread")
    return out


# -- converters ----------------------------------------------------------------


def _http(action: dict[str, Any], ctx: StepContext) -> Step:
    inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
    notes: list[str] = []
    params: dict[str, Any] = {}
    method = str(inputs.get("method", "GET")).upper()
    if method not in METHODS:
        notes.append(f"method {inputs.get('method')!r} is not one of {', '.join(METHODS)}; GET is used")
        method = "GET"
    if method != "GET":
        params["method"] = method
    uri = inputs.get("uri")
    params["url"] = _use(translate_string(uri, ctx.wdl), notes, "uri") if isinstance(uri, str) else ""
    if not isinstance(uri, str):
        notes.append("the action has no uri: set params.url")
    headers = inputs.get("headers")
    if isinstance(headers, dict) and headers:
        params["headers"] = {str(k): _text(_use(translate_value(v, ctx.wdl), notes, f"headers.{k}"))
                             for k, v in headers.items()}
    queries = inputs.get("queries")
    if isinstance(queries, dict) and queries:
        params["query"] = {str(k): _scalar(_use(translate_value(v, ctx.wdl), notes, f"queries.{k}"))
                           for k, v in queries.items()}
    if "body" in inputs:
        body = inputs["body"]
        if isinstance(body, str) and not _is_single_expression(body):
            params["body"] = _use(translate_string(body, ctx.wdl), notes, "body")
        else:
            params["json"] = _use(translate_value(body, ctx.wdl), notes, "body")
    auth = _authentication(inputs.get("authentication"), ctx, notes)
    if auth:
        params["auth"] = auth
    settings = retry_settings(inputs.get("retryPolicy"), notes, default_applies=True)
    summary = f"{method} {short_json(uri, 60)}" + (
        "; Logic Apps' default retry policy (4 retries)" if inputs.get("retryPolicy") is None else "")
    timeout = _limit_timeout(action, notes)
    if timeout is not None:
        settings["timeout"] = timeout
        params["timeout"] = timeout
    return Step("http", params, summary, settings, notes)


def _is_single_expression(text: str) -> bool:
    return text.startswith("@") and not text.startswith("@@") and not text.startswith("@{")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else short_json(value, 10_000)


def _scalar(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else short_json(value, 10_000)


def _authentication(auth: Any, ctx: StepContext, notes: list[str]) -> dict[str, Any] | None:
    if not isinstance(auth, dict):
        return None
    kind = str(auth.get("type", "")).lower()
    secret = re.sub(r"\W", "_", ctx.task_id).upper()
    if kind == "basic" and isinstance(auth.get("username"), str):
        user = _use(translate_string(auth["username"], ctx.wdl), notes, "authentication.username")
        notes.append(f"Basic authentication: the password is not imported; store it with "
                     f"'taskloom secrets set {secret}_PASSWORD'")
        return {"type": "basic", "username": user, "secret": f"{secret}_PASSWORD"}
    if kind == "raw":
        notes.append(f"Raw authentication: the header value is not imported; store the token with "
                     f"'taskloom secrets set {secret}_TOKEN' (sent as a bearer token)")
        return {"type": "bearer", "secret": f"{secret}_TOKEN"}
    notes.append(f"authentication type {auth.get('type')!r} is not converted: give the request credentials"
                 " from a secret (params.auth, or a header with {{ secrets.NAME }})")
    return None


def _limit_timeout(action: dict[str, Any], notes: list[str]) -> float | None:
    limit = action.get("limit")
    if not isinstance(limit, dict) or "timeout" not in limit:
        return None
    seconds = iso_duration(limit["timeout"])
    if seconds is None or seconds <= 0:
        notes.append(f"limit.timeout {limit['timeout']!r} is not an ISO 8601 duration; the default timeout applies")
        return None
    return seconds


def _compose(action: dict[str, Any], ctx: StepContext) -> Step:
    notes: list[str] = []
    value = _use(translate_value(action.get("inputs"), ctx.wdl), notes, "inputs")
    return Step("transform", {"value": value}, "a value built from templates", notes=notes)


def _parse_json(action: dict[str, Any], ctx: StepContext) -> Step:
    inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
    notes: list[str] = []
    value = _use(translate_value(inputs.get("content"), ctx.wdl), notes, "content")
    if inputs.get("schema"):
        notes.append("the JSON schema is not checked; outputs of Taskloom tasks are JSON already")
    if isinstance(value, str) and not value.startswith("{{"):
        notes.append("content is text: Taskloom does not parse it; give it a JSON value")
    return Step("transform", {"value": value}, "the content as JSON", notes=notes)


def _initialize_variable(action: dict[str, Any], ctx: StepContext) -> Step:
    inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
    variables = inputs.get("variables") if isinstance(inputs.get("variables"), list) else []
    first = variables[0] if variables and isinstance(variables[0], dict) else {}
    notes: list[str] = []
    value = _use(translate_value(first.get("value"), ctx.wdl), notes, "value")
    if len(variables) > 1:
        notes.append("only the first variable of the action is converted")
    return Step("transform", {"value": value}, f"the initial value of variable {first.get('name')!r}", notes=notes)


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}


def _wait(action: dict[str, Any], ctx: StepContext) -> Step:
    inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
    notes: list[str] = []
    interval = inputs.get("interval")
    if isinstance(interval, dict):
        unit = str(interval.get("unit", "Second")).lower().rstrip("s")
        try:
            count = float(interval.get("count", 0))
        except (TypeError, ValueError):
            count = 0
            notes.append(f"interval.count {interval.get('count')!r} is not a number; set params.seconds")
        if unit not in _UNIT_SECONDS:
            notes.append(f"interval.unit {interval.get('unit')!r} is unknown; seconds are used")
        elif unit == "month":
            notes.append("a month counts 30 days")
        seconds = count * _UNIT_SECONDS.get(unit, 1)
        return Step("delay", {"seconds": int(seconds) if float(seconds).is_integer() else seconds},
                    f"wait {seconds:g} s", notes=notes)
    until = inputs.get("until")
    stamp = until.get("timestamp") if isinstance(until, dict) else None
    if isinstance(stamp, str):
        value = _use(translate_string(stamp, ctx.wdl), notes, "until.timestamp")
        return Step("delay", {"until": value}, f"wait until {short_json(stamp, 40)}", notes=notes)
    notes.append("neither interval nor until.timestamp: a wait of 0 s; set params.seconds or params.until")
    return Step("delay", {"seconds": 0}, "wait", notes=notes)


def _terminate(action: dict[str, Any], ctx: StepContext) -> Step:
    inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
    status = str(inputs.get("runStatus", "Failed"))
    notes: list[str] = []
    if status.lower() == "succeeded":
        notes.append("Terminate (Succeeded) ends the whole run at once; here it is a no-op and other branches"
                     " still run")
        return Step("noop", {}, "Terminate (Succeeded) as a no-op", notes=notes)
    error = inputs.get("runError") if isinstance(inputs.get("runError"), dict) else {}
    text = " ".join(str(error.get(k)) for k in ("code", "message") if error.get(k) is not None) or status
    message = _use(translate_string(f"Terminated ({status}): {text}", ctx.wdl), notes, "runError")
    if status.lower() == "cancelled":
        notes.append("Terminate (Cancelled): here the task fails, so the run ends failed, not cancelled")
    notes.append("Terminate stops the whole run at once; here tasks already running in other branches finish")
    return Step("shell", {"command": 'echo "$TERMINATE_MESSAGE" >&2; exit 1', "env": {"TERMINATE_MESSAGE": message}},
                f"fail with {short_json(text, 50)}", notes=notes)


def _response(action: dict[str, Any], ctx: StepContext) -> Step:
    inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
    notes: list[str] = []
    value = {k: _use(translate_value(inputs[k], ctx.wdl), notes, k) for k in ("statusCode", "headers", "body")
             if k in inputs}
    notes.append("a webhook trigger with respond 'run' answers with the outputs of all tasks, this one included;"
                 " the status code and headers are not sent")
    return Step("transform", {"value": value}, "the response as a value", notes=notes)


CONVERTERS: dict[str, Callable[[dict[str, Any], StepContext], Step]] = {
    "http": _http,
    "compose": _compose,
    "parsejson": _parse_json,
    "initializevariable": _initialize_variable,
    "wait": _wait,
    "delay": _wait,
    "terminate": _terminate,
    "response": _response,
}
#: action types whose body('X') / outputs('X') is the task's output itself
VALUE_TYPES = frozenset({"compose", "parsejson", "initializevariable", "response", "foreach"})


def convert_step(action: dict[str, Any], ctx: StepContext) -> Step | None:
    """The task for a leaf action, or None when its type has no converter (a placeholder)."""
    converter = CONVERTERS.get(str(action.get("type", "")).lower())
    if converter is None:
        return None
    step = converter(action, ctx)
    if "timeout" not in step.settings:
        timeout = _limit_timeout(action, step.notes)
        if timeout is not None:
            step.settings["timeout"] = timeout
    return step


_CONNECTOR_TODO = (
    (("office365", "outlook", "gmail", "sendgrid", "smtp"), "a notify task (channel 'email')"),
    (("teams", "slack"), "a notify task (channel 'webhook')"),
    (("sql", "postgres", "mysql", "oracle"), "a sql task"),
    (("blob", "sftp", "ftp", "onedrive", "sharepoint", "filesystem", "dropbox", "box"),
     "a file task (or a shell task for a remote store)"),
)
_TYPE_TODO = {
    "javascriptcode": "a python task that does the same",
    "function": "an http task calling the function's URL",
    "workflow": "a subworkflow task (import the child workflow too)",
    "select": "a transform task with a JMESPath query",
    "query": "a transform task with a JMESPath filter, e.g. items[?score > `0.9`]",
    "join": "a transform task, e.g. {{ tasks.X.output | join(',') }}",
    "table": "a transform task or a python task",
    "switch": "a condition task per case, with true/false edges to each case's tasks",
    "until": "a python task that loops, or an http task with retries",
    "setvariable": "values passed through task outputs (a transform task) instead of a variable",
    "incrementvariable": "values passed through task outputs (a transform task) instead of a variable",
    "decrementvariable": "values passed through task outputs (a transform task) instead of a variable",
    "appendtoarrayvariable": "values passed through task outputs (a transform task) instead of a variable",
    "appendtostringvariable": "values passed through task outputs (a transform task) instead of a variable",
    "foreach": "a foreach task whose inner task is a subworkflow holding the loop's actions"
               " (import them as a workflow of their own)",
}


def placeholder_todo(action: dict[str, Any]) -> tuple[str, str]:
    """``(reason, todo)`` for an action that becomes a placeholder."""
    kind = str(action.get("type", "")).lower()
    if kind.startswith("apiconnection"):
        inputs = action.get("inputs") if isinstance(action.get("inputs"), dict) else {}
        host = inputs.get("host") if isinstance(inputs.get("host"), dict) else {}
        connection = host.get("connection") if isinstance(host.get("connection"), dict) else {}
        api = str(connection.get("name", "")) + str(connection.get("referenceName", ""))
        for names, todo in _CONNECTOR_TODO:
            if any(n in api.lower() for n in names):
                return "managed connectors run in Azure and have no Taskloom equivalent", f"replace it with {todo}"
        return ("managed connectors run in Azure and have no Taskloom equivalent",
                "replace it with an http task calling the service's API, or a python task")
    if kind == "foreach":
        return ("a For each with more than one action (or a nested control action): Taskloom's foreach runs one"
                " task per item", f"replace it with {_TYPE_TODO['foreach']}")
    todo = _TYPE_TODO.get(kind, "a task that does the same (shell, python or http)")
    return f"the action type {action.get('type')!r} has no Taskloom equivalent", f"replace it with {todo}"

