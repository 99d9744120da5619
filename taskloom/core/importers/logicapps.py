"""Azure Logic Apps workflow definitions to ``taskloom/v1`` documents.

Three shapes are accepted: a bare definition (``{"$schema", "triggers",
"actions", ...}``), a wrapper with ``definition`` (Standard's
``workflow.json``, or a Consumption export with ``properties.definition``),
and an ARM template whose ``resources`` hold ``Microsoft.Logic/workflows``
(each such resource becomes one workflow). Parameters become params,
triggers become triggers (:mod:`.recurrence`), actions become tasks and
edges (:mod:`.logicapps_graph`); the report says what each became.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from taskloom.core.params import type_matches
from taskloom.core.importers.common import Ids, for_task, finish, name_from_file, placeholder_task, pointer_join, short_json, slug
from taskloom.core.importers.logicapps_graph import ActionGraph, LaContext
from taskloom.core.importers.logicapps_steps import StepContext, convert_step
from taskloom.core.importers.recurrence import recurrence_triggers
from taskloom.core.importers.report import ConversionError, Report, ReportItem

__all__ = ["convert_logicapps", "looks_like_logicapps"]

_PARAM_TYPES = {"string": "string", "securestring": "string", "int": "integer", "float": "number",
                "bool": "boolean", "array": "array", "object": "object", "secureobject": "object"}
_ARM_PARAMETER = re.compile(r"^\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]$")
_SCHEMA_HINT = '{"definition": {"triggers": {...}, "actions": {...}}}'


def looks_like_logicapps(data: Any) -> bool:
    """Whether a parsed JSON value has the shape of a Logic Apps definition, wrapper or ARM template."""
    if not isinstance(data, dict):
        return False
    if "workflowdefinition" in str(data.get("$schema", "")).lower():
        return True
    if isinstance(data.get("resources"), list):
        return any(isinstance(r, dict) and str(r.get("type", "")).lower() == "microsoft.logic/workflows"
                   for r in data["resources"])
    for holder in (data, data.get("properties")):
        if isinstance(holder, dict) and isinstance(holder.get("definition"), dict):
            return True
    return isinstance(data.get("actions"), dict) and isinstance(data.get("triggers", {}), dict) and (
        "contentVersion" in data or "triggers" in data)


def _arm_value(value: Any, arm_params: dict[str, Any]) -> Any:
    """``"[parameters('x')]"`` -> the ARM parameter's defaultValue; other values unchanged."""
    if isinstance(value, str):
        match = _ARM_PARAMETER.match(value)
        if match and isinstance(arm_params.get(match[1]), dict):
            return arm_params[match[1]].get("defaultValue", value)
    return value


def _definitions(data: Any) -> list[tuple[str, Any, dict[str, Any], str | None]]:
    """``(path, definition, parameter values, name)`` for each workflow in the file."""
    if not isinstance(data, dict):
        raise ConversionError.at("", "a Logic Apps definition must be a JSON object", f"e.g. {_SCHEMA_HINT}")
    if isinstance(data.get("resources"), list):
        arm_params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
        found = []
        for i, resource in enumerate(data["resources"]):
            if not isinstance(resource, dict) or str(resource.get("type", "")).lower() != "microsoft.logic/workflows":
                continue
            props = resource.get("properties") if isinstance(resource.get("properties"), dict) else {}
            values = props.get("parameters") if isinstance(props.get("parameters"), dict) else {}
            values = {k: _arm_value(v.get("value") if isinstance(v, dict) else v, arm_params) for k, v in values.items()}
            name = _arm_value(resource.get("name"), arm_params)
            found.append((f"/resources/{i}/properties/definition", props.get("definition"), values,
                          name if isinstance(name, str) and not name.startswith("[") else None))
        if not found:
            raise ConversionError.at("/resources", "the ARM template has no resource of type"
                                     " 'Microsoft.Logic/workflows'", "export the template of a Logic App")
        return found
    for path, holder in (("", data), ("/properties", data.get("properties"))):
        if isinstance(holder, dict) and "definition" in holder:
            raw = holder.get("parameters") if isinstance(holder.get("parameters"), dict) else {}
            values = {k: v.get("value") if isinstance(v, dict) else v for k, v in raw.items()}
            name = data.get("name") if isinstance(data.get("name"), str) else None
            return [(f"{path}/definition", holder["definition"], values, name)]
    return [("", data, {}, None)]


def _check(definition: Any, path: str) -> dict[str, Any]:
    if not isinstance(definition, dict):
        raise ConversionError.at(path, f"the definition must be an object, got {short_json(definition)}",
                                 f"e.g. {_SCHEMA_HINT}")
    for key in ("triggers", "actions", "parameters"):
        if key in definition and not isinstance(definition[key], dict):
            raise ConversionError.at(pointer_join(path, key), f"'{key}' must be an object of named {key},"
                                     f" got {short_json(definition[key])}", f'write it like {{"Name": {{...}}}}')
    if not definition.get("actions") and not definition.get("triggers"):
        raise ConversionError.at(path, "the definition has neither triggers nor actions",
                                 f"is this a Logic Apps workflow definition? e.g. {_SCHEMA_HINT}")
    return definition


def convert_logicapps(data: Any, *, filename: str = "", name: str | None = None) -> list[tuple[dict[str, Any],
                                                                                               list[ReportItem]]]:
    """Each workflow of a Logic Apps file as ``(document, report items)``; raises :class:`ConversionError`."""
    found = _definitions(data)
    out, taken = [], set()
    for path, definition, values, own_name in found:
        fallback = name_from_file(filename, "logic-app")
        wanted = name or own_name
        doc_name = base = slug(wanted, fallback) if wanted else fallback
        n = 2
        while doc_name in taken:  # several workflows in one template never share a name
            doc_name, n = f"{base[:60]}-{n}", n + 1
        taken.add(doc_name)
        report = Report(doc_name)
        doc = _convert_one(_check(definition, path), path, values, doc_name, own_name, filename, report)
        out.append((doc, report.items))
    return out


def _convert_one(definition: dict[str, Any], path: str, values: dict[str, Any], doc_name: str,
                 own_name: str | None, filename: str, report: Report) -> dict[str, Any]:
    param_ids = Ids()
    params, names = _params(definition.get("parameters") or {}, values, path, report, param_ids)
    ids = Ids()
    ctx = LaContext(ids, names)
    trigger_ids = Ids()
    triggers, starts, settings = _triggers(definition.get("triggers") or {}, path, report, trigger_ids, ids, ctx)
    actions = definition.get("actions") or {}
    ctx.index(actions)
    graph = ActionGraph(ctx, report)
    for task in starts:
        graph.tasks.append(task)
    graph.block(actions, pointer_join(path, "actions"), [(t["id"], "success") for t in starts])
    if any(t.get("type") == "webhook" for t in triggers) and _has_response(actions):
        for trigger in triggers:
            if trigger["type"] == "webhook":
                trigger["respond"] = "run"
    for key in ("outputs", "staticResults"):
        if definition.get(key):
            report.flagged(pointer_join(path, key), f"'{key}' of the definition has no Taskloom equivalent;"
                           " not imported", "")
    if not graph.tasks:
        graph.tasks.append({"id": ids.take("start"), "type": "noop", "title": "Start"})
        report.flagged(pointer_join(path, "actions"), "the definition has no actions; a no-op task stands in",
                       "add the tasks the workflow should run")
    title = own_name or ""
    description = "Imported from Azure Logic Apps" + (f" ({PurePath(filename).name})" if filename else "")
    return finish(doc_name, title=title if title and title != doc_name else "", description=description,
                  params=params, triggers=triggers, tasks=graph.tasks, edges=graph.edges, settings=settings)


def _has_response(actions: dict[str, Any]) -> bool:
    for action in actions.values():
        if not isinstance(action, dict):
            continue
        if str(action.get("type", "")).lower() == "response":
            return True
        nested = [action.get("actions"), (action.get("else") or {}).get("actions") if isinstance(action.get("else"),
                                                                                                  dict) else None]
        if any(isinstance(n, dict) and _has_response(n) for n in nested):
            return True
    return False


def _params(spec: Any, values: dict[str, Any], path: str, report: Report, ids: Ids) -> tuple[dict[str, Any],
                                                                                             dict[str, str]]:
    params: dict[str, Any] = {}
    names: dict[str, str] = {}
    if not isinstance(spec, dict):
        return params, names
    for raw_name, entry in spec.items():
        where = pointer_join(path, "parameters", raw_name)
        if raw_name == "$connections":
            report.flagged(where, "the connections of managed connectors are not imported", "")
            continue
        if not isinstance(entry, dict):
            report.flagged(where, f"parameter '{raw_name}' is not an object; not imported", "declare it by hand")
            continue
        kind = str(entry.get("type", "String")).lower()
        if kind.startswith("secure"):
            secret = ids.take(raw_name, "secret").upper()
            names[raw_name] = f"secrets.{secret}"
            report.flagged(where, f"secure parameter '{raw_name}' -> secret {secret}: its value is not imported",
                           f"store it with 'taskloom secrets set {secret}'; templates read {{{{ secrets.{secret} }}}}")
            continue
        pid = ids.take(raw_name, "param")
        out: dict[str, Any] = {"type": _PARAM_TYPES.get(kind, "string")}
        default = values.get(raw_name, entry.get("defaultValue"))
        described = (entry.get("metadata") or {}).get("description") if isinstance(entry.get("metadata"), dict) else None
        if isinstance(described, str) and described:
            out["description"] = described
        if default is not None and type_matches(out["type"], default):
            out["default"] = default
        elif default is not None:
            report.flagged(where, f"the value {short_json(default)} of parameter '{raw_name}' is not of type"
                           f" {out['type']}; not imported", "give the param a default")
        if "default" not in out:
            report.flagged(where, f"parameter '{raw_name}' has no value: every run must give it",
                           f"give it a default, or pass -p {pid}=VALUE")
        if kind not in _PARAM_TYPES:
            report.flagged(where, f"parameter type {entry.get('type')!r} is unknown; string is used", "")
        params[pid] = out
        names[raw_name] = f"params.{pid}"
        report.mapped(where, f"parameter '{raw_name}' -> param '{pid}' ({out['type']})")
    return params, names


def _triggers(triggers: dict[str, Any], path: str, report: Report, trigger_ids: Ids, task_ids: Ids,
              ctx: LaContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    out: list[dict[str, Any]] = []
    starts: list[dict[str, Any]] = []
    settings: dict[str, Any] = {}
    if not triggers:
        report.mapped(pointer_join(path, "triggers"), "no trigger: the workflow runs when started by hand")
    for tname, trigger in triggers.items():
        where = pointer_join(path, "triggers", tname)
        if not isinstance(trigger, dict):
            raise ConversionError.at(where, f"trigger '{tname}' must be an object with a 'type'",
                                     'e.g. {"type": "Recurrence", "recurrence": {...}}')
        kind = str(trigger.get("type", "")).lower()
        if kind in ("recurrence", "slidingwindow", "http") or (kind not in ("request",) and "recurrence" in trigger):
            made = _schedule(tname, trigger, where, report, trigger_ids)
            out += made
            if kind == "slidingwindow":
                settings["catchup"] = "all"
                report.mapped(where, "SlidingWindow: missed windows are run later (settings.catchup 'all')")
        if kind == "request":
            trigger_id = trigger_ids.take(tname, "webhook")
            out.append({"id": trigger_id, "type": "webhook"})
            report.mapped(where, f"Request trigger '{tname}' -> webhook trigger '{trigger_id}': POST the JSON body"
                          " to the URL that 'taskloom webhooks NAME' prints; it becomes trigger.payload")
            method = ((trigger.get("inputs") or {}).get("method") if isinstance(trigger.get("inputs"), dict) else None)
            if isinstance(method, str) and method.upper() != "POST":
                report.flagged(where, f"the trigger accepted {method.upper()}; Taskloom webhooks take POST", "")
        elif kind == "http":
            task_id = task_ids.take(tname, "poll")
            step = convert_step({"type": "Http", "inputs": trigger.get("inputs") or {}}, StepContext(ctx, task_id))
            assert step is not None
            starts.append({"id": task_id, "type": "http", "title": tname.replace("_", " "), "params": step.params,
                           **step.settings})
            report.flagged(where, f"HTTP polling trigger '{tname}': the schedule fires every time and the first task"
                           f" '{task_id}' calls {short_json((trigger.get('inputs') or {}).get('uri'), 60)}",
                           "Logic Apps started a run only when the call returned news; add a condition task after"
                           f" '{task_id}' if that matters", task=task_id)
        elif kind not in ("recurrence", "slidingwindow"):
            task_id = task_ids.take(tname, "trigger")
            what = f"Logic Apps trigger '{tname}' ({trigger.get('type')})"
            todo = ("replace it with a Taskloom trigger (webhook, file, git, workflow, cron or interval) and delete"
                    " this task")
            starts.append(placeholder_task(task_id, source="logicapps", what=what,
                                           reason="this trigger type has no Taskloom equivalent", todo=todo,
                                           original=trigger, title=tname.replace("_", " ")))
            report.placeholder(where, f"{what} has no Taskloom equivalent", for_task(todo, task_id), task=task_id)
        _trigger_options(tname, trigger, where, report, settings)
    return out, starts, settings


def _schedule(tname: str, trigger: dict[str, Any], where: str, report: Report, ids: Ids) -> list[dict[str, Any]]:
    result = recurrence_triggers(trigger.get("recurrence"))
    made = []
    for i, spec in enumerate(result.triggers):
        made.append({"id": ids.take(tname if i == 0 else f"{tname}_{i + 1}", "schedule"), **spec})
    if made:
        report.mapped(where, f"{trigger.get('type')} trigger '{tname}' -> {result.summary}")
    for note in result.notes:
        report.flagged(pointer_join(where, "recurrence"), f"trigger '{tname}': {note}", "check the trigger")
    return made


def _trigger_options(tname: str, trigger: dict[str, Any], where: str, report: Report, settings: dict[str, Any]) -> None:
    if trigger.get("conditions"):
        report.flagged(pointer_join(where, "conditions"), f"trigger '{tname}' has conditions; Taskloom fires"
                       " without them", "check the condition in a condition task at the start")
    if trigger.get("splitOn"):
        report.flagged(pointer_join(where, "splitOn"), f"trigger '{tname}' starts one run per item of"
                       f" {short_json(trigger['splitOn'], 50)}; Taskloom starts one run",
                       "loop over the items with a foreach task")
    runtime = trigger.get("runtimeConfiguration")
    runs = (runtime or {}).get("concurrency", {}).get("runs") if isinstance(runtime, dict) else None
    single = str(trigger.get("operationOptions", "")).lower() == "singleinstance"
    if single or runs == 1:
        settings["overlap"] = "queue"
        report.mapped(where, "one run at a time: settings.overlap 'queue'")
    elif isinstance(runs, int) and runs > 1:
        settings.update(overlap="allow", max_active_runs=min(runs, 100))
        report.mapped(where, f"up to {runs} runs at a time: settings.overlap 'allow'")
