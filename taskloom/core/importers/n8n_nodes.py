"""One n8n node to one Taskloom task: HTTP Request, Code, Execute Command, If, Set, Wait, Send Email.

A node's parameter layout depends on its ``typeVersion``; each converter
reads the layouts the n8n documentation describes (older and newer) and
falls back to n8n's defaults for parameters a file leaves out. A node type
without a converter becomes a placeholder (:func:`placeholder_todo`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode

from taskloom.core.specs.http import METHODS
from taskloom.core.importers.common import as_dict, as_list, short_json
from taskloom.core.importers.n8n_expr import Base, is_expression, to_expression, translate_n8n
from taskloom.core.importers.wdl import Untranslatable

__all__ = ["NodeContext", "Step", "CONVERTERS", "placeholder_todo", "short_type"]


@dataclass
class NodeContext:
    """What a node converter may use: upstream node names and how to name their outputs."""

    upstream: list[str]
    base: Base
    task_id: str
    #: template of the items the node receives, for the Code node ("" when it has no input)
    items: str = ""


@dataclass
class Step:
    """A converted node: the task's type and params, a sentence for the report, what did not convert exactly."""

    type: str
    params: dict[str, Any]
    summary: str
    notes: list[str] = field(default_factory=list)


def short_type(node_type: Any) -> str:
    """``"n8n-nodes-base.httpRequest"`` -> ``"httpRequest"``."""
    return str(node_type).rsplit(".", 1)[-1]


def _t(value: Any, ctx: NodeContext, notes: list[str], where: str) -> Any:
    """Translate every string of a parameter value."""
    if isinstance(value, str):
        result = translate_n8n(value, ctx.upstream, ctx.base)
        notes.extend(f"{where}: kept verbatim, {r}" for r in result.verbatim)
        return result.value
    if isinstance(value, dict):
        return {k: _t(v, ctx, notes, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_t(v, ctx, notes, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _pairs(holder: Any, key: str = "parameters") -> list[tuple[str, Any]]:
    """``{"parameters": [{"name", "value"}]}`` (n8n's fixed collections) as pairs."""
    items = holder.get(key) if isinstance(holder, dict) else None
    return [(str(p.get("name", "")), p.get("value", "")) for p in items or [] if isinstance(p, dict) and p.get("name")]


def _json_text(value: Any, ctx: NodeContext, notes: list[str], where: str) -> Any:
    """A JSON parameter given as text (``jsonBody``): parsed when it is plain JSON, else a template."""
    if isinstance(value, str) and not is_expression(value):
        try:
            return json.loads(value)
        except ValueError:
            notes.append(f"{where} is not valid JSON; it is sent as text")
            return value
    return _t(value, ctx, notes, where)


def _http(params: dict[str, Any], version: float, ctx: NodeContext) -> Step:
    notes: list[str] = []
    out: dict[str, Any] = {}
    old = version < 3
    method = str(params.get("requestMethod" if old else "method", "GET")).upper()
    if method not in METHODS:
        notes.append(f"method {method} is not supported; GET is used")
        method = "GET"
    if method != "GET":
        out["method"] = method
    out["url"] = _t(params.get("url", ""), ctx, notes, "url")
    headers: dict[str, Any] = {}
    query: dict[str, Any] = {}
    if old:
        json_mode = bool(params.get("jsonParameters"))
        if json_mode:
            for key, target in (("headerParametersJson", headers), ("queryParametersJson", query)):
                parsed = _json_text(params.get(key), ctx, notes, key) if params.get(key) else {}
                if isinstance(parsed, dict):
                    target.update(parsed)
            if params.get("bodyParametersJson"):
                out["json"] = _json_text(params["bodyParametersJson"], ctx, notes, "bodyParametersJson")
        else:
            headers.update(_pairs(params.get("headerParametersUi"), "parameter"))
            query.update(_pairs(params.get("queryParametersUi"), "parameter"))
            body = dict(_pairs(params.get("bodyParametersUi"), "parameter"))
            if body:
                out["json"] = _t(body, ctx, notes, "body")
    else:
        if params.get("sendHeaders"):
            headers.update(_pairs(params.get("headerParameters")))
            if params.get("specifyHeaders") == "json":
                parsed = _json_text(params.get("jsonHeaders", "{}"), ctx, notes, "jsonHeaders")
                headers.update(parsed if isinstance(parsed, dict) else {})
        if params.get("sendQuery"):
            query.update(_pairs(params.get("queryParameters")))
            if params.get("specifyQuery") == "json":
                parsed = _json_text(params.get("jsonQuery", "{}"), ctx, notes, "jsonQuery")
                query.update(parsed if isinstance(parsed, dict) else {})
        if params.get("sendBody"):
            _http_body(params, ctx, notes, out, headers)
    if headers:
        out["headers"] = {k: v if isinstance(v, str) else short_json(v, 10_000)
                          for k, v in _t(headers, ctx, notes, "headers").items()}
    if query:
        out["query"] = {k: v if isinstance(v, (str, int, float, bool)) else short_json(v, 10_000)
                        for k, v in _t(query, ctx, notes, "query").items()}
    options = params.get("options") if isinstance(params.get("options"), dict) else {}
    timeout = options.get("timeout")
    if isinstance(timeout, (int, float)) and timeout > 0:
        seconds = timeout / 1000
        out["timeout"] = int(seconds) if float(seconds).is_integer() else seconds
    if params.get("authentication") not in (None, "none"):
        notes.append("credentials are not imported: store the token with 'taskloom secrets set NAME' and set"
                     " params.auth (or a header with {{ secrets.NAME }})")
    return Step("http", out, f"{method} {short_json(params.get('url', ''), 60)}", notes)


def _http_body(params: dict[str, Any], ctx: NodeContext, notes: list[str], out: dict[str, Any],
               headers: dict[str, Any]) -> None:
    content = params.get("contentType", "json")
    if content == "json":
        if params.get("specifyBody") == "json":
            out["json"] = _json_text(params.get("jsonBody", "{}"), ctx, notes, "jsonBody")
        else:
            out["json"] = _t(dict(_pairs(params.get("bodyParameters"))), ctx, notes, "body")
    elif content == "form-urlencoded":
        pairs = _t(dict(_pairs(params.get("bodyParameters"))), ctx, notes, "body")
        if any("{{" in str(v) for v in pairs.values()):
            notes.append("a form body with templates is sent as written, not URL-encoded after rendering")
            out["body"] = "&".join(f"{k}={v}" for k, v in pairs.items())
        else:
            out["body"] = urlencode(pairs)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif content == "raw":
        out["body"] = _t(params.get("body", ""), ctx, notes, "body")
        if params.get("rawContentType"):
            headers.setdefault("Content-Type", params["rawContentType"])
    else:
        notes.append(f"body content type {content!r} (files) is not converted; set params.body or params.json")


_PY_SHIM = '''# Converted from the n8n Code node {name!r}. n8n's helpers are emulated: _input.all(), _input.first(),
# _input.last(), _input.item and _json; each item has .json. Review it: n8n runs Python differently.
class _Json(dict):
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


class _Item(dict):
    @property
    def json(self):
        return self["json"]


def _wrap(value):
    if isinstance(value, dict):
        return _Json({{k: _wrap(v) for k, v in value.items()}})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class _Input:
    def __init__(self, items):
        items = items if isinstance(items, list) else [] if items is None else [items]
        self._items = [_Item(json=_wrap(i["json"] if isinstance(i, dict) and "json" in i else i)) for i in items]

    def all(self):
        return list(self._items)

    def first(self):
        return self._items[0] if self._items else None

    def last(self):
        return self._items[-1] if self._items else None

    @property
    def item(self):
        return self.first()


def _plain(result):
    if result is None:
        return []
    if not isinstance(result, list):
        result = [result]
    return [r["json"] if isinstance(r, dict) and "json" in r else r for r in result]


def _run(_input, _json=None):
{body}


def main(items=None):
    source = _Input(items)
    {call}
'''


def _code(params: dict[str, Any], version: float, ctx: NodeContext, name: str) -> Step | None:
    language = str(params.get("language", "javaScript")).lower()
    if not language.startswith("python"):
        return None
    code = str(params.get("pythonCode", "") or "return _input.all()")
    body = "\n".join("    " + line if line.strip() else "" for line in code.splitlines()) or "    return []"
    per_item = params.get("mode") == "runOnceForEachItem"
    call = ("return [r for item in source.all() for r in _plain(_run(_Input([item]), item.json))]" if per_item
            else "return _plain(_run(source))")
    source = _PY_SHIM.format(name=name, body=body, call=call)
    out: dict[str, Any] = {"code": source}
    if ctx.items:
        out["args"] = {"items": ctx.items}
    notes = ["the Python code runs in a python task with n8n's item helpers emulated; its output is the list of"
             " the items' JSON: test it"]
    return Step("python", out, "Python code with n8n's item helpers emulated", notes)


def _command(params: dict[str, Any], version: float, ctx: NodeContext) -> Step:
    notes: list[str] = []
    command = _t(params.get("command", ""), ctx, notes, "command")
    if params.get("executeOnce") is False:
        notes.append("n8n ran the command once per input item; here it runs once")
    return Step("shell", {"command": command}, short_json(params.get("command", ""), 60), notes)


_V1_OPS = {"equal": "==", "notEqual": "!=", "smaller": "<", "smallerEqual": "<=", "larger": ">", "largerEqual": ">="}
_V2_OPS = {"equals": "==", "notEquals": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=",
           "before": "<", "after": ">"}


def _operand(value: Any, ctx: NodeContext) -> str:
    if is_expression(value):
        text = str(value)[1:].strip()
        if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
            return to_expression(text[2:-2], ctx.upstream, ctx.base)
        raise Untranslatable(f"{value!r} is not a single expression")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "none"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _compare(left: str, op: str, right: str) -> str:
    if op in ("contains", "notContains"):
        return f"({right} {'not in' if op == 'notContains' else 'in'} {left})"
    if op in ("startsWith", "endsWith"):
        return f"{left}.{op.lower()}({right})"
    if op in ("isEmpty", "empty", "notExists"):
        return f"(not {left})"
    if op in ("isNotEmpty", "notEmpty", "exists"):
        return f"(not (not {left}))"
    if op in ("true", "false"):
        return f"({left} == {op})"
    symbol = _V1_OPS.get(op) or _V2_OPS.get(op)
    if symbol is None:
        raise Untranslatable(f"the comparison {op!r} has no Taskloom equivalent")
    return f"({left} {symbol} {right})"


def _if(params: dict[str, Any], version: float, ctx: NodeContext) -> Step:
    notes: list[str] = []
    parts: list[str] = []
    conditions = params.get("conditions") if isinstance(params.get("conditions"), dict) else {}
    try:
        if isinstance(conditions.get("conditions"), list):  # version 2 and later
            joiner = " or " if conditions.get("combinator") == "or" else " and "
            for rule in map(as_dict, conditions["conditions"]):
                operator = rule.get("operator") if isinstance(rule.get("operator"), dict) else {}
                op = str(operator.get("operation", "equals"))
                parts.append(_compare(_operand(rule.get("leftValue"), ctx), op, _operand(rule.get("rightValue"), ctx)))
        else:
            joiner = " or " if params.get("combineOperation") == "any" else " and "
            for kind in ("boolean", "number", "string", "dateTime"):
                for rule in map(as_dict, as_list(conditions.get(kind))):
                    op = str(rule.get("operation", "equal"))
                    parts.append(_compare(_operand(rule.get("value1"), ctx), op, _operand(rule.get("value2"), ctx)))
        expression = joiner.join(parts) if parts else "true"
        if not parts:
            notes.append("the node has no conditions; the expression is 'true'")
    except Untranslatable as exc:
        expression = json.dumps(conditions or params, ensure_ascii=False)
        notes.append(f"the conditions are kept verbatim ({exc}); the workflow does not validate until they are"
                     " rewritten as a Jinja expression")
    if len(parts) == 1 and expression.startswith("(") and expression.endswith(")"):
        expression = expression[1:-1]
    return Step("condition", {"expression": expression}, expression, notes)


def _set_path(target: dict[str, Any], name: str, value: Any, dotted: bool) -> None:
    keys = name.split(".") if dotted else [name]
    for key in keys[:-1]:
        target = target.setdefault(key, {}) if isinstance(target.get(key, {}), dict) else target
    target[keys[-1]] = value


def _typed(value: Any, kind: str) -> Any:
    """A Set field's literal value as its declared type (n8n's form keeps numbers and JSON as text)."""
    if not isinstance(value, str) or is_expression(value):
        return value
    try:
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind in ("object", "array"):
            parsed = json.loads(value)
            return parsed if isinstance(parsed, dict if kind == "object" else list) else value
    except ValueError:
        return value
    return value


def _set(params: dict[str, Any], version: float, ctx: NodeContext) -> Step:
    notes: list[str] = []
    value: dict[str, Any] = {}
    options = params.get("options") if isinstance(params.get("options"), dict) else {}
    dotted = options.get("dotNotation", True) is not False
    if params.get("mode") == "raw":
        parsed = _json_text(params.get("jsonOutput", "{}"), ctx, notes, "jsonOutput")
        return Step("transform", {"value": parsed}, "the JSON output", notes)
    assignments = (params.get("assignments") or {}).get("assignments") if isinstance(params.get("assignments"),
                                                                                     dict) else None
    if isinstance(assignments, list):
        for item in assignments:
            if isinstance(item, dict) and item.get("name"):
                typed = _typed(item.get("value"), str(item.get("type", "string")))
                _set_path(value, str(item["name"]), _t(typed, ctx, notes, str(item["name"])), dotted)
        keep_input = params.get("includeOtherFields") is True
    else:
        values = params.get("values") if isinstance(params.get("values"), dict) else {}
        for kind in ("string", "number", "boolean"):
            for item in values.get(kind) or []:
                if isinstance(item, dict) and item.get("name"):
                    _set_path(value, str(item["name"]), _t(item.get("value"), ctx, notes, str(item["name"])), dotted)
        keep_input = params.get("keepOnlySet") is not True
    if keep_input:
        notes.append("n8n kept the input item's other fields; the transform holds only the fields it sets")
    return Step("transform", {"value": value}, f"fields {', '.join(value) or '(none)'}", notes)


_WAIT_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _wait(params: dict[str, Any], version: float, ctx: NodeContext) -> Step | None:
    notes: list[str] = []
    resume = params.get("resume", "timeInterval")
    if resume == "specificTime":
        until = _t(params.get("dateTime", ""), ctx, notes, "dateTime")
        return Step("delay", {"until": until}, f"wait until {short_json(params.get('dateTime'), 40)}", notes)
    if resume != "timeInterval":
        return None
    amount = params.get("amount", 1 if version < 1.1 else 1)
    unit = params.get("unit", "hours")
    if is_expression(amount):
        notes.append("the amount is an expression; set params.seconds")
        amount = 0
    try:
        seconds = float(amount) * _WAIT_UNITS.get(str(unit), 1)
    except (TypeError, ValueError):
        seconds = 0.0
        notes.append(f"amount {amount!r} is not a number; set params.seconds")
    if str(unit) not in _WAIT_UNITS:
        notes.append(f"unit {unit!r} is unknown; seconds are used")
    return Step("delay", {"seconds": int(seconds) if seconds.is_integer() else seconds}, f"wait {seconds:g} s", notes)


def _addresses(value: Any, ctx: NodeContext, notes: list[str], where: str) -> Any:
    text = _t(value, ctx, notes, where)
    if isinstance(text, str) and "{{" not in text and "{%" not in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return parts[0] if len(parts) == 1 else parts
    return text


def _email(params: dict[str, Any], version: float, ctx: NodeContext) -> Step:
    notes: list[str] = []
    options = params.get("options") if isinstance(params.get("options"), dict) else {}
    out: dict[str, Any] = {"channel": "email", "to": _addresses(params.get("toEmail", ""), ctx, notes, "toEmail")}
    cc = params.get("ccEmail") or options.get("ccEmail")
    if cc:
        out["cc"] = _addresses(cc, ctx, notes, "ccEmail")
    if params.get("subject"):
        out["subject"] = _t(params["subject"], ctx, notes, "subject")
    fmt = params.get("emailFormat", "text" if version >= 2 else None)
    text, html = params.get("text"), params.get("html")
    message = text if text else html
    if html and (fmt in ("html", None) and not text):
        notes.append("the HTML body is sent as plain text")
    out["message"] = _t(message or "(no text)", ctx, notes, "text")
    if params.get("fromEmail") or params.get("bccEmail") or options.get("bccEmail"):
        notes.append("the sender comes from the SMTP configuration (taskloom config set smtp.from ...); bcc is"
                     " not supported")
    notes.append("the SMTP server and password come from taskloom config and secrets, not from n8n credentials")
    return Step("notify", out, f"email to {short_json(params.get('toEmail', ''), 50)}", notes)


def _noop(params: dict[str, Any], version: float, ctx: NodeContext) -> Step:
    return Step("noop", {}, "no operation")


CONVERTERS: dict[str, Callable[..., Step | None]] = {
    "httprequest": _http,
    "executecommand": _command,
    "if": _if,
    "set": _set,
    "wait": _wait,
    "emailsend": _email,
    "noop": _noop,
}
#: converters that need the node's name too
NAMED = {"code": _code}

_TODO = (
    (("slack", "discord", "mattermost", "microsoftteams", "telegram", "rocketchat", "googlechat"),
     "a notify task (channel 'webhook')"),
    (("gmail", "microsoftoutlook", "sendgrid", "mailgun", "mailjet"), "a notify task (channel 'email')"),
    (("postgres", "mysql", "microsoftsql", "sqlite", "snowflake", "questdb", "timescaledb"), "a sql task"),
    (("readwritefile", "readbinaryfile", "readbinaryfiles", "writebinaryfile", "localfiletrigger"), "a file task"),
    (("ssh", "ftp"), "a shell task"),
    (("executeworkflow",), "a subworkflow task"),
    (("splitinbatches", "loopoveritems", "itemlists", "splitout"), "a foreach task"),
    (("merge",), "a noop task with join 'any' or 'all'"),
    (("switch", "filter"), "a condition task with true/false edges"),
    (("code", "function", "functionitem"), "a python task doing what the JavaScript did"),
    (("webhook", "respondtowebhook"), "a webhook trigger (its respond setting answers the caller)"),
)


def placeholder_todo(node_type: str) -> str:
    """What to replace a node of ``node_type`` with."""
    short = short_type(node_type).lower()
    if short.endswith("trigger"):
        return ("replace it with a Taskloom trigger (webhook, file, git, workflow, cron or interval) and delete"
                " this task")
    for names, todo in _TODO:
        if short in names:
            return f"replace it with {todo}"
    return "replace it with a task that does the same (an http task calling the service's API, or python)"
