"""n8n workflow exports to ``taskloom/v1`` documents.

An export is ``{name, nodes, connections, settings, ...}`` (or a list of
them). Trigger nodes (Schedule, Webhook, Manual, and the older Cron and
Interval) become triggers; other nodes become tasks at their n8n
positions (:mod:`.n8n_nodes`); ``connections`` (by source node name, then
output index) become edges: an If node's output 0 is ``true`` and 1 is
``false``, the error output of a node set to "continue (using error
output)" is ``failure``. A node with inputs from several nodes gets
``join: any``, since n8n runs it when any input delivers.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from taskloom.core.importers.common import Ids, as_dict, as_list, for_task, finish, name_from_file, placeholder_task, pointer_join, short_json, slug
from taskloom.core.importers.n8n_nodes import CONVERTERS, NAMED, NodeContext, placeholder_todo, short_type
from taskloom.core.importers.report import ConversionError, Report, ReportItem
from taskloom.core.importers.wdl import Untranslatable
from taskloom.core.importers.windows_tz import iana_zone

__all__ = ["convert_n8n", "looks_like_n8n"]

_TRIGGERS = {"scheduletrigger", "cron", "interval", "webhook", "manualtrigger"}
_PASS_THROUGH = {"if", "wait", "noop"}
_DOW = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def looks_like_n8n(data: Any) -> bool:
    """Whether a parsed JSON value is an n8n export (a workflow with nodes and connections, or a list)."""
    if isinstance(data, list):
        return bool(data) and all(looks_like_n8n(d) for d in data if not isinstance(d, list))
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and isinstance(
        data.get("connections", {}), dict) and "format" not in data


def _check(workflow: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        raise ConversionError.at(path, "an n8n workflow must be an object with a 'nodes' list",
                                 'export it from n8n (Download), e.g. {"name": ..., "nodes": [...], "connections": {}}')
    if not isinstance(workflow.get("connections", {}), dict):
        raise ConversionError.at(pointer_join(path, "connections"), "'connections' must be an object keyed by"
                                 " node name", 'e.g. {"Get scores": {"main": [[{"node": "If", "type": "main",'
                                 ' "index": 0}]]}}')
    seen: dict[str, int] = {}
    for i, node in enumerate(workflow["nodes"]):
        where = pointer_join(path, "nodes", i)
        if not isinstance(node, dict) or not isinstance(node.get("name"), str) or not isinstance(node.get("type"), str):
            raise ConversionError.at(where, "each node must be an object with a 'name' and a 'type'",
                                     'e.g. {"name": "Get scores", "type": "n8n-nodes-base.httpRequest", ...}')
        if node["name"] in seen:
            raise ConversionError.at(pointer_join(where, "name"), f"duplicate node name {node['name']!r} (also"
                                     f" {pointer_join(path, 'nodes', seen[node['name']])})",
                                     "node names are unique in an n8n workflow; rename one")
        seen[node["name"]] = i
    return workflow["nodes"]


def convert_n8n(data: Any, *, filename: str = "", name: str | None = None) -> list[tuple[dict[str, Any],
                                                                                         list[ReportItem]]]:
    """Each workflow of an n8n export as ``(document, report items)``; raises :class:`ConversionError`."""
    workflows = data if isinstance(data, list) else [data]
    if not workflows:
        raise ConversionError.at("", "the file holds an empty list, no n8n workflow", "export a workflow from n8n")
    out, taken = [], set()
    for index, workflow in enumerate(workflows):
        path = f"/{index}" if isinstance(data, list) else ""
        nodes = _check(workflow, path)
        wanted = name or workflow.get("name")
        doc_name = slug(wanted, "n8n-workflow") if isinstance(wanted, str) and wanted.strip() else name_from_file(
            filename, "n8n-workflow")
        base, n = doc_name, 2
        while doc_name in taken:
            doc_name, n = f"{base}-{n}", n + 1
        taken.add(doc_name)
        report = Report(doc_name)
        out.append((_Converter(workflow, nodes, path, report).document(doc_name, filename), report.items))
    return out


class _Converter:
    def __init__(self, workflow: dict[str, Any], nodes: list[dict[str, Any]], path: str, report: Report) -> None:
        self.workflow, self.nodes, self.path, self.report = workflow, nodes, path, report
        self.index = {n["name"]: i for i, n in enumerate(nodes)}
        self.ids = Ids()
        self.task_ids: dict[str, str] = {}
        self.upstream: dict[str, list[str]] = {n["name"]: [] for n in nodes}
        settings = workflow.get("settings") if isinstance(workflow.get("settings"), dict) else {}
        self.settings = settings
        for source, outputs in self._main_connections():
            for targets in outputs:
                for target in as_list(targets):
                    if isinstance(target, dict) and isinstance(target.get("node"), str) and \
                            target["node"] in self.upstream:
                        if source not in self.upstream[target["node"]]:
                            self.upstream[target["node"]].append(source)

    def _kind(self, node: dict[str, Any]) -> str:
        short = short_type(node["type"]).lower()
        if short == "stickynote":
            return "note"
        if short in _TRIGGERS:
            return "trigger"
        return "task"

    def _main_connections(self) -> list[tuple[str, list[Any]]]:
        connections = self.workflow.get("connections") or {}
        return [(s, c["main"]) for s, c in connections.items()
                if s in self.index and isinstance(c, dict) and isinstance(c.get("main"), list)]

    # -- what downstream expressions can read ------------------------------------

    def base(self, node_name: str, seen: frozenset[str] = frozenset()) -> tuple[str, str | None] | None:
        """How templates read a node's item JSON (see :data:`.n8n_expr.Base`); None when they cannot."""
        if node_name not in self.index or node_name in seen:
            return None
        node = self.nodes[self.index[node_name]]
        short = short_type(node["type"]).lower()
        task_id = self.task_ids.get(node_name)
        if short == "webhook":
            return "trigger.payload", "body"
        if task_id is None:
            return None
        if node.get("disabled") or short in _PASS_THROUGH:
            ups = self._data_upstream(node_name)
            return self.base(ups[0], seen | {node_name}) if len(ups) == 1 else None
        if short == "httprequest":
            return f"tasks.{task_id}.output.json", None
        if short == "set":
            return f"tasks.{task_id}.output", None
        if short == "code" and str(as_dict(node.get("parameters")).get("language", "")).lower().startswith("python"):
            return f"tasks.{task_id}.output[0]", None
        return None

    def _ancestors(self, node_name: str) -> set[str]:
        """Every node that runs before ``node_name`` (through connections)."""
        seen: set[str] = set()
        stack = list(self.upstream[node_name])
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.upstream.get(name, []))
        return seen

    def _data_upstream(self, node_name: str) -> list[str]:
        """The upstream nodes whose items ``$json`` may mean: triggers other than a webhook bring no data."""
        out = []
        for name in self.upstream[node_name]:
            short = short_type(self.nodes[self.index[name]]["type"]).lower()
            if short in _TRIGGERS and short != "webhook":
                continue
            out.append(name)
        return out

    def items_of(self, node_name: str, seen: frozenset[str] = frozenset()) -> Any:
        """The template of the items a node emits, for a Code node downstream."""
        if node_name not in self.index or node_name in seen:
            return ""
        node = self.nodes[self.index[node_name]]
        short = short_type(node["type"]).lower()
        if short == "webhook":
            return {"json": {"body": "{{ trigger.payload }}"}}
        if node.get("disabled") or short in _PASS_THROUGH:
            ups = self._data_upstream(node_name)
            return self.items_of(ups[0], seen | {node_name}) if len(ups) == 1 else ""
        found = self.base(node_name)
        if found is None:
            return ""
        text = found[0].removesuffix("[0]")
        return "{{ " + text + " }}"

    # -- the document ----------------------------------------------------------

    def document(self, doc_name: str, filename: str) -> dict[str, Any]:
        """The converted workflow; the report fills as it goes."""
        for node in self.nodes:
            if self._kind(node) == "task":
                self.task_ids[node["name"]] = self.ids.take(node["name"], "node")
        triggers: list[dict[str, Any]] = []
        tasks: list[dict[str, Any]] = []
        trigger_ids = Ids()
        for i, node in enumerate(self.nodes):
            where = pointer_join(self.path, "nodes", i)
            kind = self._kind(node)
            if kind == "note":
                self.report.mapped(where, f"sticky note {node['name']!r}: not imported")
            elif kind == "trigger":
                triggers += self._trigger(node, where, trigger_ids)
            else:
                tasks.append(self._task(node, where))
        edges = self._edges(tasks)
        settings: dict[str, Any] = {}
        timeout = self.settings.get("executionTimeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            settings["timeout"] = timeout
            self.report.mapped(pointer_join(self.path, "settings", "executionTimeout"),
                               f"execution timeout {timeout} s -> settings.timeout")
        if self.settings.get("errorWorkflow"):
            self.report.flagged(pointer_join(self.path, "settings", "errorWorkflow"), "the error workflow is not"
                                " imported", "add failure edges to a notify task, or a workflow trigger with"
                                " states ['failed'] on the error workflow")
        if self.workflow.get("pinData"):
            self.report.flagged(pointer_join(self.path, "pinData"), "pinned test data is not imported", "")
        if not tasks:
            tasks.append({"id": self.ids.take("start"), "type": "noop", "title": "Start"})
            self.report.flagged(pointer_join(self.path, "nodes"), "the workflow has no nodes besides triggers;"
                                " a no-op task stands in", "add the tasks the workflow should run")
        title = self.workflow.get("name") if isinstance(self.workflow.get("name"), str) else ""
        description = "Imported from n8n" + (f" ({PurePath(filename).name})" if filename else "")
        return finish(doc_name, title=title if title != doc_name else "", description=description,
                      triggers=triggers, tasks=tasks, edges=edges, settings=settings)

    def _task(self, node: dict[str, Any], where: str) -> dict[str, Any]:
        name = node["name"]
        task_id = self.task_ids[name]
        short = short_type(node["type"]).lower()
        params = node.get("parameters") if isinstance(node.get("parameters"), dict) else {}
        try:
            version = float(node.get("typeVersion", 1))
        except (TypeError, ValueError):
            version = 1.0
        ups = self._data_upstream(name)
        before = self._ancestors(name)

        def base(other: str) -> tuple[str, str | None] | None:
            """Like :meth:`base`, for nodes that run before this one only."""
            if other not in before:
                raise Untranslatable(f"node {other!r} does not run before {name!r}")
            return self.base(other)

        ctx = NodeContext(ups, base, task_id, self.items_of(ups[0]) if len(ups) == 1 else "")
        task: dict[str, Any] = {"id": task_id, "title": name}
        if isinstance(node.get("notes"), str) and node["notes"].strip():
            task["description"] = node["notes"].strip()
        what = f"n8n node '{name}' ({node['type']})"
        if node.get("disabled"):
            task.update(type="noop")
            self.report.flagged(where, f"{what} is disabled: a no-op keeps its place in the graph",
                                "delete it, or replace it with the converted node", task=task_id)
        else:
            converter = CONVERTERS.get(short)
            unreadable = ""
            try:
                step = converter(params, version, ctx) if converter else (
                    NAMED[short](params, version, ctx, name) if short in NAMED else None)
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
                # a hand-edited node whose parameters have an unexpected shape: keep it, never crash
                step, unreadable = None, f"its parameters have an unexpected shape ({type(exc).__name__}: {exc})"
            if step is None:
                todo = placeholder_todo(node["type"])
                original = {k: v for k, v in node.items() if k != "position"}
                reason = unreadable or "no Taskloom equivalent for this node (or these settings)"
                task = {**placeholder_task(task_id, source="n8n", what=what, reason=reason, todo=todo,
                                           original=original),
                        **{k: v for k, v in task.items() if k != "id"}}
                self.report.placeholder(where, f"{what}: {reason}", for_task(todo, task_id),
                                        task=task_id)
            else:
                task.update(type=step.type, params=step.params)
                self.report.mapped(where, f"{what} -> {step.type} task '{task_id}': {step.summary}", task=task_id)
                for note in step.notes:
                    self.report.flagged(where, f"{what}: {note}", f"review task '{task_id}'", task=task_id)
        task.update(self._retries(node, where, task_id))
        position = node.get("position")
        if isinstance(position, list) and len(position) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in position):
            task["position"] = {"x": position[0], "y": position[1]}
        return task

    def _retries(self, node: dict[str, Any], where: str, task_id: str) -> dict[str, Any]:
        if not node.get("retryOnFail"):
            return {}
        tries = node.get("maxTries", 3)
        wait = node.get("waitBetweenTries", 1000)
        tries = tries if isinstance(tries, int) and tries >= 1 else 3
        wait = wait if isinstance(wait, (int, float)) and wait >= 0 else 1000
        self.report.mapped(where, f"retry on fail: {tries} tries, {wait} ms apart -> retries {tries - 1},"
                           f" retry_delay {wait / 1000:g} s", task=task_id)
        delay = wait / 1000
        return {"retries": tries - 1, "retry_delay": int(delay) if delay.is_integer() else delay, "retry_backoff": 1}

    def _on(self, source: dict[str, Any], output: int) -> str:
        short = short_type(source["type"]).lower()
        regular = 2 if short == "if" and not source.get("disabled") else 1
        on_error = source.get("onError")
        if on_error == "continueErrorOutput" and output == regular:
            return "failure"
        if short == "if" and not source.get("disabled") and output < 2:
            return "true" if output == 0 else "false"
        if on_error == "continueRegularOutput" or source.get("continueOnFail"):
            return "always"
        return "success"

    def _edges(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        edges: list[dict[str, Any]] = []
        pairs: dict[tuple[str, str], int] = {}
        connections = self.workflow.get("connections") or {}
        for source_name, by_type in connections.items():
            where = pointer_join(self.path, "connections", source_name)
            if source_name not in self.index:
                self.report.flagged(where, f"connections from {source_name!r}, which is not a node; ignored", "")
                continue
            if not isinstance(by_type, dict):
                continue
            for kind in by_type:
                if kind != "main":
                    self.report.flagged(pointer_join(where, kind), f"{kind!r} connections (AI sub-nodes) are not"
                                        " imported", "")
            source = self.nodes[self.index[source_name]]
            from_task = self.task_ids.get(source_name)
            for output, targets in enumerate(as_list(by_type.get("main"))):
                for target in as_list(targets):
                    target_name = target.get("node") if isinstance(target, dict) else None
                    target_name = target_name if isinstance(target_name, str) else None
                    if target_name not in self.task_ids:
                        if target_name not in self.index:
                            self.report.flagged(pointer_join(where, "main", output), f"a connection to"
                                                f" {short_json(target_name)}, which is not a node; ignored", "")
                        continue
                    if from_task is None:
                        continue  # from a trigger: the task starts the run
                    on = self._on(source, output)
                    key = (from_task, self.task_ids[target_name])
                    if key in pairs:
                        if edges[pairs[key]].get("on", "success") != on:
                            edges[pairs[key]]["on"] = "always"
                        continue
                    pairs[key] = len(edges)
                    edges.append({"from": key[0], "to": key[1]} if on == "success" else
                                 {"from": key[0], "to": key[1], "on": on})
                    if on in ("always", "failure"):
                        self.report.mapped(pointer_join(where, "main", output), f"{source_name!r} continues on"
                                           f" error: the edge to {target_name!r} is '{on}'", task=key[1])
        incoming: dict[str, int] = {}
        for edge in edges:
            incoming[edge["to"]] = incoming.get(edge["to"], 0) + 1
        for task in tasks:
            if incoming.get(task["id"], 0) > 1:
                task["join"] = "any"
                self.report.flagged(pointer_join(self.path, "nodes", self.index[task["title"]]),
                                    f"{task['title']!r} has several inputs: n8n runs it when any delivers; here"
                                    " it runs once, after all its inputs ended, when at least one succeeded"
                                    " (join 'any')", "use join 'all' if it needs every input", task=task["id"])
        return edges

    # -- triggers ----------------------------------------------------------------

    def _zone(self) -> dict[str, Any]:
        zone = self.settings.get("timezone")
        if isinstance(zone, str) and zone and zone.upper() != "DEFAULT":
            found = iana_zone(zone)
            if found and found != "UTC":
                return {"timezone": found}
        return {}

    def _trigger(self, node: dict[str, Any], where: str, ids: Ids) -> list[dict[str, Any]]:
        name = node["name"]
        short = short_type(node["type"]).lower()
        params = node.get("parameters") if isinstance(node.get("parameters"), dict) else {}
        if node.get("disabled"):
            self.report.flagged(where, f"trigger node {name!r} is disabled; not imported", "")
            return []
        if short == "manualtrigger":
            self.report.mapped(where, f"manual trigger {name!r} -> runs started by hand (taskloom run, Run now)")
            return [{"id": ids.take(name, "manual"), "type": "manual"}]
        if short == "webhook":
            trigger: dict[str, Any] = {"id": ids.take(name, "webhook"), "type": "webhook"}
            if params.get("responseMode") in ("lastNode", "responseNode"):
                trigger["respond"] = "run"
            self.report.mapped(where, f"webhook {name!r} -> webhook trigger '{trigger['id']}'")
            method = str(params.get("httpMethod", "GET")).upper()
            self.report.flagged(where, f"webhook {name!r} listened for {method} on path {params.get('path', '')!r};"
                                " Taskloom webhooks take a POST with a JSON body at /hooks/NAME/TRIGGER",
                                "point callers at the URL 'taskloom webhooks NAME' prints")
            return [trigger]
        specs = self._schedule(short, params, where, name)
        zone = self._zone()
        out = [{"id": ids.take(name if i == 0 else f"{name}_{i + 1}", "schedule"), **spec, **zone}
               for i, spec in enumerate(specs)]
        for spec in out:
            if spec["type"] == "interval" and spec["unit"] in ("seconds", "minutes", "hours"):
                spec.pop("timezone", None)
        if out:
            self.report.mapped(where, f"{node['type']} {name!r} -> " + "; ".join(
                f"cron '{t['cron']}'" if t["type"] == "cron" else f"every {t['every']} {t['unit']}" for t in out)
                + (f" ({zone['timezone']})" if zone else ""))
            if not zone and any(t["type"] == "cron" or t.get("unit") in ("days", "weeks") for t in out):
                self.report.flagged(where, "the workflow sets no time zone (n8n used the instance's); UTC is used",
                                    "set each trigger's timezone")
        return out

    def _schedule(self, short: str, params: dict[str, Any], where: str, name: str) -> list[dict[str, Any]]:
        if short == "interval":
            unit = str(params.get("unit", "seconds"))
            every = params.get("interval", 1)
            return [{"type": "interval", "every": int(every) if isinstance(every, (int, float)) else 1,
                     "unit": unit if unit in ("seconds", "minutes", "hours") else "seconds"}]
        if short == "cron":
            items = (params.get("triggerTimes") or {}).get("item") if isinstance(params.get("triggerTimes"),
                                                                                 dict) else None
            return [t for item in items or [] for t in self._legacy_cron(item, where, name)]
        rule = params.get("rule") if isinstance(params.get("rule"), dict) else {}
        intervals = rule.get("interval") if isinstance(rule.get("interval"), list) else [{}]
        return [t for item in intervals for t in self._rule(item if isinstance(item, dict) else {}, where, name)]

    def _rule(self, item: dict[str, Any], where: str, name: str) -> list[dict[str, Any]]:
        field = item.get("field", "days")
        minute, hour = _int(item.get("triggerAtMinute"), 0), _int(item.get("triggerAtHour"), 0)
        if field == "cronExpression":
            return self._cron_text(str(item.get("expression", "")), where, name)
        if field in ("seconds", "minutes"):
            every = _int(item.get(f"{field}Interval"), 30 if field == "seconds" else 5)
            return [{"type": "interval", "every": max(every, 1), "unit": field}]
        if field == "hours":
            every = max(_int(item.get("hoursInterval"), 1), 1)
            return [{"type": "cron", "cron": f"{minute} {'*' if every == 1 else f'*/{every}'} * * *"}]
        if field == "days":
            every = max(_int(item.get("daysInterval"), 1), 1)
            if every == 1:
                return [{"type": "cron", "cron": f"{minute} {hour} * * *"}]
            return [{"type": "interval", "every": every, "unit": "days", "at": f"{hour:02d}:{minute:02d}"}]
        if field == "weeks":
            every = max(_int(item.get("weeksInterval"), 1), 1)
            days = item.get("triggerAtDay") if isinstance(item.get("triggerAtDay"), list) else [0]
            days = sorted({d for d in (_int(d, -1) for d in days) if 0 <= d <= 6}) or [0]
            if every == 1:
                return [{"type": "cron", "cron": f"{minute} {hour} * * {','.join(map(str, days))}"}]
            return [{"type": "interval", "every": every, "unit": "weeks", "weekday": _DOW[d],
                     "at": f"{hour:02d}:{minute:02d}"} for d in days]
        if field == "months":
            every = max(_int(item.get("monthsInterval"), 1), 1)
            day = _int(item.get("triggerAtDayOfMonth"), 1)
            return [{"type": "cron", "cron": f"{minute} {hour} {day} {'*' if every == 1 else f'*/{every}'} *"}]
        self.report.flagged(where, f"schedule rule {short_json(item)} of {name!r} is not understood; no trigger",
                            "add a cron or interval trigger")
        return []

    def _legacy_cron(self, item: Any, where: str, name: str) -> list[dict[str, Any]]:
        if not isinstance(item, dict):
            return []
        mode = item.get("mode", "everyDay")
        minute, hour = _int(item.get("minute"), 0), _int(item.get("hour"), 0)
        crons = {"everyMinute": "* * * * *", "everyHour": f"{minute} * * * *", "everyDay": f"{minute} {hour} * * *",
                 "everyWeek": f"{minute} {hour} * * {_int(item.get('weekday'), 1)}",
                 "everyMonth": f"{minute} {hour} {_int(item.get('dayOfMonth'), 1)} * *"}
        if mode in crons:
            return [{"type": "cron", "cron": crons[mode]}]
        if mode == "everyX":
            unit = str(item.get("unit", "hours"))
            return [{"type": "interval", "every": max(_int(item.get("value"), 2), 1),
                     "unit": unit if unit in ("minutes", "hours") else "hours"}]
        if mode == "custom":
            return self._cron_text(str(item.get("cronExpression", "")), where, name)
        self.report.flagged(where, f"cron mode {mode!r} of {name!r} is not understood; no trigger", "")
        return []

    def _cron_text(self, expression: str, where: str, name: str) -> list[dict[str, Any]]:
        fields = expression.split()
        if len(fields) == 6:
            if fields[0] not in ("0", "00"):
                self.report.flagged(where, f"cron {expression!r} of {name!r} has a seconds field; Taskloom fires at"
                                    " whole minutes, the seconds are dropped", "check the schedule")
            fields = fields[1:]
        return [{"type": "cron", "cron": " ".join(fields)}]


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default

