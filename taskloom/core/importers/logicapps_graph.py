"""Logic Apps actions and their ``runAfter`` as Taskloom tasks, edges and join rules.

``runAfter`` names sibling actions (keys, all required) and the end states
each may have (``Succeeded``, ``Failed``, ``Skipped``, ``TimedOut``, any of
them). An action with ``{}`` starts first in its container. A sibling that
is a plain task gives one edge:

=================================  ==========================================
runAfter statuses                  edge ``on``
=================================  ==========================================
Succeeded                          ``success``
Failed, TimedOut                   ``failure`` (Failed alone or TimedOut alone too, flagged)
all four                           ``always``
anything else                      ``always`` (the closest; flagged)
=================================  ==========================================

Control actions are flattened: a **Scope** becomes a no-op where its actions
start; an **If** a ``condition`` task whose ``true``/``false`` edges start its
branches. When a later action runs after the Scope or If, a no-op junction
stands for the container's end state (made only when needed, named after it):
``X_done`` (all its last actions succeeded; for an If, the branch taken),
``X_failed`` (``join: any`` over ``failure`` edges from every action inside:
the try/catch pattern) and ``X_ended`` (``always`` edges from every action).
A **For each** with one action becomes a ``foreach`` task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from taskloom.core.importers.common import Ids, for_task, placeholder_task, pointer_join, short_json
from taskloom.core.importers.logicapps_steps import CONVERTERS, VALUE_TYPES, StepContext, convert_step, placeholder_todo
from taskloom.core.importers.report import ConversionError, Report
from taskloom.core.importers.wdl import translate_condition, translate_string, translate_value

__all__ = ["LaContext", "ActionGraph", "loop_body"]

STATUSES = ("succeeded", "failed", "skipped", "timedout")
_COVERS = {"success": {"succeeded"}, "failure": {"failed", "timedout"}, "always": set(STATUSES)}
_SAYS = {"succeeded": "succeeded", "failed": "failed", "skipped": "was skipped", "timedout": "timed out"}
_VARIABLE_CHANGES = {"setvariable", "incrementvariable", "decrementvariable", "appendtoarrayvariable",
                     "appendtostringvariable"}


def _type(action: Any) -> str:
    return str(action.get("type", "")).lower() if isinstance(action, dict) else ""


def _children(action: dict[str, Any], key: str = "actions") -> dict[str, Any]:
    value = action.get(key)
    return value if isinstance(value, dict) else {}


def _else_actions(action: dict[str, Any]) -> dict[str, Any]:
    other = action.get("else")
    return _children(other) if isinstance(other, dict) else {}


def loop_body(action: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The one action of a For each that can become a ``foreach`` task's inner task, else None."""
    inner = _children(action)
    if len(inner) != 1:
        return None
    (name, body), = inner.items()
    return (name, body) if isinstance(body, dict) and _type(body) in CONVERTERS else None


class LaContext:
    """Names in a definition: action -> task id and kind, parameters, variables, the current loop."""

    def __init__(self, ids: Ids, params: dict[str, str]) -> None:
        self.ids = ids
        self.params = params
        self.task_ids: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        self.changed: set[str] = set()
        self.current_loop: str | None = None

    def index(self, actions: dict[str, Any]) -> None:
        """Give every action that becomes a task its id, in document order, depth first."""
        for name, action in actions.items():
            if not isinstance(action, dict):
                continue
            kind = _type(action)
            self.task_ids[name] = self.ids.take(name, "action")
            if kind == "http":
                self.kinds[name] = "http"
            elif kind in VALUE_TYPES and (kind != "foreach" or loop_body(action)):
                self.kinds[name] = "value"
            else:
                self.kinds[name] = "other"
            if kind == "initializevariable":
                for variable in (action.get("inputs") or {}).get("variables") or []:
                    if isinstance(variable, dict) and isinstance(variable.get("name"), str):
                        self.variables.setdefault(variable["name"], self.task_ids[name])
                        break
            if kind == "scope":
                self.index(_children(action))
            elif kind == "if":
                self.index(_children(action))
                self.index(_else_actions(action))
        self._scan_changes(actions)

    def _scan_changes(self, actions: dict[str, Any]) -> None:
        for action in actions.values():
            if not isinstance(action, dict):
                continue
            if _type(action) in _VARIABLE_CHANGES:
                name = (action.get("inputs") or {}).get("name") if isinstance(action.get("inputs"), dict) else None
                if isinstance(name, str):
                    self.changed.add(name)
            self._scan_changes(_children(action))
            self._scan_changes(_else_actions(action))
            if isinstance(action.get("default"), dict):
                self._scan_changes(_children(action["default"]))
            for case in (action.get("cases") or {}).values() if isinstance(action.get("cases"), dict) else ():
                if isinstance(case, dict):
                    self._scan_changes(_children(case))

    # wdl.Context
    def action(self, name: str) -> tuple[str, str] | None:
        """See :class:`.wdl.Context`."""
        if name not in self.task_ids:
            return None
        return self.task_ids[name], self.kinds[name]

    def param(self, name: str) -> str | None:
        """See :class:`.wdl.Context`."""
        return self.params.get(name)

    def variable(self, name: str) -> str | None:
        """See :class:`.wdl.Context`."""
        return None if name in self.changed else self.variables.get(name)

    def loop(self, name: str | None) -> bool:
        """See :class:`.wdl.Context`."""
        return self.current_loop is not None and (name is None or name == self.current_loop)


@dataclass
class _Ref:
    """A converted action as later actions see it through their runAfter."""

    kind: str  # "task" | "scope" | "if"
    task_id: str
    title: str
    members: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)
    branches: list[tuple[str, list[str]]] = field(default_factory=list)
    junctions: dict[str, tuple[str, str]] = field(default_factory=dict)


class ActionGraph:
    """Builds tasks and edges from the actions of a definition."""

    def __init__(self, ctx: LaContext, report: Report) -> None:
        self.ctx = ctx
        self.report = report
        self.tasks: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.refs: dict[str, _Ref] = {}
        self._failable: list[str] = []
        self._pairs: dict[tuple[str, str], int] = {}

    # -- building blocks --------------------------------------------------------

    def add_edge(self, source: str, target: str, on: str) -> None:
        """An edge; a second one between the same tasks widens the first (one edge per pair)."""
        index = self._pairs.get((source, target))
        if index is None:
            self._pairs[(source, target)] = len(self.edges)
            self.edges.append({"from": source, "to": target} if on == "success" else
                              {"from": source, "to": target, "on": on})
        elif self.edges[index].get("on", "success") != on:
            self.edges[index]["on"] = "always"

    def _add_task(self, task: dict[str, Any], incoming: list[tuple[str, str]], *, failable: bool = True) -> None:
        self.tasks.append(task)
        if failable:
            self._failable.append(task["id"])
        for source, on in incoming:
            self.add_edge(source, task["id"], on)

    def block(self, actions: Any, path: str, entry: list[tuple[str, str]]) -> list[str]:
        """Convert the actions of one container; return the names of its last actions."""
        if not isinstance(actions, dict):
            raise ConversionError.at(path, f"'actions' must be an object of named actions, got {short_json(actions)}",
                                     'write it like {"Get_rows": {"type": "Http", ...}}')
        names = [n for n, a in actions.items() if self._checked(n, a, path)]
        for name in self._order(actions, names, path):
            self.action(name, actions[name], pointer_join(path, name), entry, set(names))
        after = {p for n in names for p in self._run_after(actions[n])}
        return [n for n in names if n not in after]

    def _checked(self, name: str, action: Any, path: str) -> bool:
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            raise ConversionError.at(pointer_join(path, name), f"action '{name}' must be an object with a 'type'",
                                     'e.g. {"type": "Http", "inputs": {...}, "runAfter": {}}')
        return True

    @staticmethod
    def _run_after(action: dict[str, Any]) -> dict[str, Any]:
        value = action.get("runAfter")
        return value if isinstance(value, dict) else {}

    def _order(self, actions: dict[str, Any], names: list[str], path: str) -> list[str]:
        """Siblings in dependency order (document order among equals); a cycle is an error."""
        pending = {n: {p for p in self._run_after(actions[n]) if p in names and p != n} for n in names}
        order: list[str] = []
        while pending:
            ready = [n for n in names if n in pending and not pending[n]]
            if not ready:
                cycle = " -> ".join(sorted(pending))
                raise ConversionError.at(path, f"the runAfter of these actions form a cycle: {cycle}",
                                         "an action cannot run after one that runs after it; fix runAfter")
            for name in ready:
                order.append(name)
                del pending[name]
            for deps in pending.values():
                deps.difference_update(ready)
        return order

    # -- one action -------------------------------------------------------------

    def action(self, name: str, action: dict[str, Any], path: str, entry: list[tuple[str, str]],
               siblings: set[str]) -> None:
        """Convert one action of a container: its task (or the tasks of a Scope or If) and the edges into it."""
        incoming = self._incoming(name, action, path, entry, siblings)
        task_id = self.ctx.task_ids[name]
        title = name.replace("_", " ")
        kind = _type(action)
        if kind == "scope":
            self._scope(name, action, path, task_id, title, incoming)
            return
        if kind == "if":
            self._if(name, action, path, task_id, title, incoming)
            return
        task: dict[str, Any] = {"id": task_id, "title": title}
        if isinstance(action.get("description"), str) and action["description"]:
            task["description"] = action["description"]
        body = loop_body(action) if kind == "foreach" else None
        unreadable = ""
        try:
            step = self._foreach(name, action, body, task_id) if body else (
                None if kind == "foreach" else convert_step(action, StepContext(self.ctx, task_id)))
        except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
            # a hand-edited action whose inputs have an unexpected shape: keep it, never crash
            step, unreadable = None, f"its inputs have an unexpected shape ({type(exc).__name__}: {exc})"
        if step is None:
            reason, todo = placeholder_todo(action)
            reason = unreadable or reason
            what = f"Logic Apps action '{name}' ({action.get('type')})"
            task = {**placeholder_task(task_id, source="logicapps", what=what, reason=reason, todo=todo,
                                       original=action, title=title), **{k: v for k, v in task.items() if k != "id"}}
            self.report.placeholder(path, f"{what}: {reason}", for_task(todo, task_id), task=task_id)
        else:
            task.update({"type": step.type, "params": step.params, **step.settings})
            what = f"{action.get('type')} action '{name}'"
            self.report.mapped(path, f"{what} -> {step.type} task '{task_id}': {step.summary}", task=task_id)
            for note in step.notes:
                self.report.flagged(path, f"{what}: {note}", f"review task '{task_id}'", task=task_id)
        self._add_task(task, incoming)
        self.refs[name] = _Ref("task", task_id, title, members=[task_id])

    def _incoming(self, name: str, action: dict[str, Any], path: str, entry: list[tuple[str, str]],
                  siblings: set[str]) -> list[tuple[str, str]]:
        run_after = action.get("runAfter", {})
        if not isinstance(run_after, dict):
            self.report.flagged(pointer_join(path, "runAfter"), f"runAfter of '{name}' is not an object; ignored",
                                "check the edges into this task", task=self.ctx.task_ids[name])
            run_after = {}
        out = []
        for pred, statuses in run_after.items():
            where = pointer_join(path, "runAfter", pred)
            if pred not in siblings or pred not in self.refs:
                self.report.flagged(where, f"'{name}' runs after '{pred}', which is not an action of the same"
                                    " container; that dependency is ignored", "add the edge by hand if it matters",
                                    task=self.ctx.task_ids[name])
                continue
            out.append(self._outcome(pred, statuses, where, name))
        return out or list(entry)

    def _statuses(self, raw: Any, where: str, name: str) -> set[str]:
        items = raw if isinstance(raw, list) else [raw]
        statuses = {str(s).lower() for s in items if str(s).lower() in STATUSES}
        unknown = [s for s in items if str(s).lower() not in STATUSES]
        if unknown or not statuses:
            self.report.flagged(where, f"runAfter statuses {short_json(raw)}: only Succeeded, Failed, Skipped and"
                                f" TimedOut are known; {'Succeeded is used' if not statuses else 'the rest is used'}",
                                "check the edge", task=self.ctx.task_ids[name])
        return statuses or {"succeeded"}

    def _outcome(self, pred: str, raw: Any, where: str, name: str) -> tuple[str, str]:
        """The edge source and condition for 'name runs after pred in these states'."""
        statuses = self._statuses(raw, where, name)
        ref = self.refs[pred]
        on = "success" if statuses == {"succeeded"} else "failure" if statuses <= {"failed", "timedout"} else "always"
        extra = sorted(_COVERS[on] - statuses, key=STATUSES.index)
        if extra:
            said = " or ".join(_SAYS[s] for s in extra)
            self.report.flagged(where, f"'{name}' runs after '{pred}' {'/'.join(sorted(statuses))}: the closest"
                                f" Taskloom edge is '{on}', which also lets it run when '{pred}' {said}",
                                "check that this is acceptable", task=self.ctx.task_ids[name])
        if ref.kind == "task":
            return ref.task_id, on
        return self._container({"success": "done", "failure": "failed", "always": "ended"}[on], ref)

    # -- containers ----------------------------------------------------------------

    def _members_since(self, mark: int) -> list[str]:
        return self._failable[mark:]

    def _scope(self, name: str, action: dict[str, Any], path: str, task_id: str, title: str,
               incoming: list[tuple[str, str]]) -> None:
        self._add_task({"id": task_id, "type": "noop", "title": f"{title} (scope)"}, incoming, failable=False)
        self.report.mapped(path, f"Scope '{name}' flattened: a no-op '{task_id}' where its actions start;"
                           " actions that run after the scope wait for its actions", task=task_id)
        mark = len(self._failable)
        leaves = self.block(action.get("actions", {}), pointer_join(path, "actions"), [(task_id, "success")])
        self.refs[name] = _Ref("scope", task_id, title, members=self._members_since(mark), leaves=leaves)

    def _if(self, name: str, action: dict[str, Any], path: str, task_id: str, title: str,
            incoming: list[tuple[str, str]]) -> None:
        condition = translate_condition(action.get("expression"), self.ctx)
        expression = condition.value
        if expression is None:
            raw = action.get("expression")
            expression = raw if isinstance(raw, str) and raw else json.dumps(raw, ensure_ascii=False)
            self.report.flagged(pointer_join(path, "expression"), f"the condition of If '{name}' is kept verbatim"
                                f" ({'; '.join(condition.verbatim)}); the workflow does not validate until it is"
                                " rewritten", "write it as a Jinja expression, e.g. tasks.X.output.json.max > 0.9",
                                task=task_id)
        for how in condition.approximate:
            self.report.flagged(pointer_join(path, "expression"), f"If '{name}': {how}", "check the condition",
                                task=task_id)
        self._add_task({"id": task_id, "type": "condition", "title": title, "params": {"expression": expression}},
                       incoming)
        self.report.mapped(path, f"If '{name}' -> condition task '{task_id}' ({expression}); its actions follow"
                           " the 'true' and 'false' edges", task=task_id)
        mark = len(self._failable)
        true_leaves = self.block(action.get("actions", {}), pointer_join(path, "actions"), [(task_id, "true")])
        other = action.get("else") if isinstance(action.get("else"), dict) else {}
        false_leaves = self.block(other.get("actions", {}), pointer_join(path, "else", "actions"),
                                  [(task_id, "false")])
        self.refs[name] = _Ref("if", task_id, title, members=[task_id, *self._members_since(mark)],
                               branches=[("true", true_leaves), ("false", false_leaves)])

    def _foreach(self, name: str, action: dict[str, Any], body: tuple[str, dict[str, Any]], task_id: str) -> Any:
        from taskloom.core.importers.logicapps_steps import Step

        notes: list[str] = []
        raw_items = action.get("foreach")
        items = translate_string(raw_items, self.ctx) if isinstance(raw_items, str) else translate_value(
            raw_items if isinstance(raw_items, list) else [], self.ctx)
        notes += [f"foreach: kept verbatim, {r}" for r in items.verbatim]
        inner_name, inner = body
        self.ctx.current_loop = name
        try:
            step = convert_step(inner, StepContext(self.ctx, task_id))
        finally:
            self.ctx.current_loop = None
        assert step is not None  # loop_body only accepts types with a converter
        notes += [f"{inner_name}: {n}" for n in step.notes]
        if step.settings:
            notes.append(f"'{inner_name}' had retries or a timeout; a foreach runs its inner task once per item"
                         " without them (retrying the foreach task would run every item again)")
        concurrency = 20
        runtime = action.get("runtimeConfiguration")
        repetitions = (runtime or {}).get("concurrency", {}).get("repetitions") if isinstance(runtime, dict) else None
        if isinstance(repetitions, int) and repetitions > 0:
            concurrency = repetitions
        if str(action.get("operationOptions", "")).lower() == "sequential":
            concurrency = 1
        params = {"items": items.value, "task": {"type": step.type, "params": step.params},
                  "concurrency": min(concurrency, 64)}
        return Step("foreach", params, f"'{inner_name}' ({inner.get('type')}) per item of {short_json(raw_items, 50)}",
                    notes=notes)

    def _container(self, which: str, ref: _Ref) -> tuple[str, str]:
        """The source standing for a Scope's or If's end state: done, failed or ended."""
        if which in ref.junctions:
            return ref.junctions[which]
        members = ref.members or [ref.task_id]
        if which == "failed":
            result = self._join([(m, "failure") for m in members], "any", ref, "failed", "one of its actions failed")
        elif which == "ended":
            result = self._join([(m, "always") for m in members], "all", ref, "ended", "all its actions ended")
        elif ref.kind == "scope":
            sources = [self._success_of(leaf) for leaf in ref.leaves] or [(ref.task_id, "success")]
            result = self._join(sources, "all", ref, "done", "all its actions succeeded")
        else:
            sides = []
            for on, leaves in ref.branches:
                if not leaves:
                    sides.append((ref.task_id, on))
                else:
                    sides.append(self._join([self._success_of(leaf) for leaf in leaves], "all", ref, f"{on}_done",
                                            f"the '{on}' branch succeeded"))
            result = self._join(sides, "any", ref, "done", "the branch taken succeeded")
        ref.junctions[which] = result
        return result

    def _success_of(self, name: str) -> tuple[str, str]:
        ref = self.refs[name]
        return (ref.task_id, "success") if ref.kind == "task" else self._container("done", ref)

    def _join(self, sources: list[tuple[str, str]], mode: str, ref: _Ref, suffix: str, what: str) -> tuple[str, str]:
        if len(sources) == 1:
            return sources[0]
        junction = self.ctx.ids.take(f"{ref.task_id}_{suffix}")
        task: dict[str, Any] = {"id": junction, "type": "noop", "title": f"{ref.title}: {what}"}
        if mode == "any":
            task["join"] = "any"
        self._add_task(task, sources, failable=False)
        return junction, "success"
