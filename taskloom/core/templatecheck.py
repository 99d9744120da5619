"""Checks of the templates inside task parameters.

Every string anywhere in a task's ``params`` may hold ``{{ ... }}``; the
parameters a task type lists in ``expression_params`` are bare expressions.
A template must parse, use only known names (:data:`taskloom.core.templates.ROOT_NAMES`
and Jinja's own globals), read ``tasks.X`` only for an X upstream of the task,
and ``params.X`` only for a declared parameter.

Parsing with Jinja costs ~0.1 ms per string, too much for workflows with
thousands of templates, so the common shape ``{{ root.name.more[0] | filter }}``
is read with a regular expression (:func:`template_references`) and only
anything else goes to :func:`taskloom.core.templates.references`; the two agree on
every string the fast path accepts (the tests compare them).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Iterator, Mapping

from jinja2.defaults import DEFAULT_NAMESPACE

from taskloom.core.issues import Issue, did_you_mean, pointer
from taskloom.core.registry import TaskType
from taskloom.core.templates import ROOT_NAMES, Reference, TemplateError, expression_references, references

__all__ = ["ALLOWED_NAMES", "template_references", "check_task_templates"]

#: Names a template may read: ours, Jinja's globals, and loop/macro locals.
#: Names the per-item params of a task (foreach's ``task``) may use besides the usual ones.
ITEM_NAMES = frozenset({"item", "index"})

ALLOWED_NAMES = frozenset(ROOT_NAMES | set(DEFAULT_NAMESPACE) | {"loop", "caller", "varargs", "kwargs"})

_SIMPLE = re.compile(
    r"\{\{-?\s*(?P<root>[A-Za-z_]\w*)"
    r"(?P<rest>(?:\.[A-Za-z_]\w*|\[\d+\])*)"
    r"(?:\s*\|\s*[A-Za-z_]\w*)*\s*-?\}\}",
    re.ASCII,
)
_MEMBER = re.compile(r"\.([A-Za-z_]\w*)", re.ASCII)


def _fast_references(value: str) -> set[Reference] | None:
    """References of a string made only of simple ``{{ root.path }}`` parts, else None."""
    if "{%" in value or "{#" in value or "{{{" in value:
        return None
    refs: set[Reference] = set()
    count = 0
    for match in _SIMPLE.finditer(value):
        root = match["root"]
        if root not in ROOT_NAMES:
            return None  # keywords (true, none), filters, locals: let Jinja decide
        member = _MEMBER.match(match["rest"])
        refs.add(Reference(root, member[1] if member else None))
        count += 1
    if value.count("{{") != count:
        return None
    return refs


@lru_cache(maxsize=8192)
def template_references(value: str, expression: bool = False) -> frozenset[Reference]:
    """The references of a template (or of a bare expression); raises TemplateError."""
    if expression:
        return frozenset(expression_references(value))
    fast = _fast_references(value)
    return frozenset(fast if fast is not None else references(value))


def _strings(
    value: Any, path: tuple[Any, ...], max_depth: int
) -> Iterator[tuple[str | None, tuple[Any, ...]]]:
    """Every template-bearing string inside ``value`` with its path; iterative.

    A container nested deeper than ``max_depth`` yields ``(None, its path)``
    and is not entered.
    """
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "{{" in item or "{%" in item:
                yield item, where
        elif len(where) >= max_depth:
            yield None, where
        elif isinstance(item, dict):
            stack.extend((v, where + (k,)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, where + (k,)) for k, v in reversed(list(enumerate(item))))


def check_task_templates(
    index: int,
    task_id: str,
    params: Mapping[str, Any],
    task_type: TaskType | None,
    context: "TemplateContext",
) -> list[Issue]:
    """Issues of the templates in ``params`` of the task at ``/tasks/index``."""
    issues: list[Issue] = []
    base = ("tasks", index, "params")
    expressions = set(task_type.expression_params) if task_type else set()
    for name in expressions:
        value = params.get(name)
        if isinstance(value, str):
            issues += _check_string(value, base + (name,), task_id, True, context)
    per_item = set(task_type.item_params) if task_type else set()
    for value, path in _strings(params, base, context.max_depth):
        if value is None:
            issues.append(_too_deep(path, context.max_depth))
            continue
        if len(path) == len(base) + 1 and path[-1] in expressions:
            continue
        local = ITEM_NAMES if len(path) > len(base) and path[len(base)] in per_item else frozenset()
        issues += _check_string(value, path, task_id, False, context, local)
    return issues


def _too_deep(path: tuple[Any, ...], max_depth: int) -> Issue:
    return Issue(
        pointer(*path),
        f"nesting too deep: more than {max_depth} levels of arrays and objects",
        "flatten this value",
    )


class TemplateContext:
    """What template checks need to know about the workflow."""

    def __init__(
        self,
        task_ids: Mapping[str, Any],
        declared_params: set[str] | None,
        is_upstream: Callable[[str, str], bool] | None,
        max_depth: int,
    ) -> None:
        self.task_ids = task_ids
        self.declared_params = declared_params
        #: None when the graph is unknown or incomplete: "not upstream" is not reported then
        self.is_upstream = is_upstream
        self.max_depth = max_depth
        self.suggestions_left = 50


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _check_string(
    value: str,
    path: tuple[Any, ...],
    task_id: str,
    expression: bool,
    context: TemplateContext,
    local: frozenset[str] = frozenset(),
) -> list[Issue]:
    try:
        refs = template_references(value, expression)
    except TemplateError as exc:
        kind = "expression" if expression else "template"
        detail = str(exc).split(": ", 1)[-1]
        example = "tasks.score.output.max > params.threshold" if expression else "{{ tasks.extract.output.rows }}"
        return [
            Issue(
                pointer(*path),
                f"{kind} {_short(value)} does not parse: {detail}",
                f"{_article(kind)} looks like {example}; check brackets, quotes and operators",
            )
        ]
    issues: list[Issue] = []
    for ref in refs:
        if ref.root in local:
            continue
        issue = _check_reference(ref, path, task_id, context)
        if issue is not None:
            issues.append(issue)
    if len(issues) > 1:
        issues.sort(key=lambda i: i.message)
    return issues


def _check_reference(
    ref: Reference, path: tuple[Any, ...], task_id: str, context: TemplateContext
) -> Issue | None:
    root, name = ref.root, ref.name
    if root not in ALLOWED_NAMES:
        return Issue(
            pointer(*path),
            f"template uses unknown name '{root}'",
            did_you_mean(root, ROOT_NAMES, listing="templates can use")
            or "templates can use " + ", ".join(sorted(ROOT_NAMES)),
        )
    if root == "tasks" and name is not None:
        return _check_task_reference(name, path, task_id, context)
    declared = context.declared_params
    if root == "params" and name is not None and declared is not None and name not in declared:
        return Issue(
            pointer(*path),
            f"template reads params.{name}, but the workflow declares no parameter '{name}'",
            did_you_mean(name, declared)
            or f'declare it under "params", e.g. "{name}": {{"type": "string"}}',
        )
    return None


def _check_task_reference(
    name: str, path: tuple[Any, ...], task_id: str, context: TemplateContext
) -> Issue | None:
    if name in context.task_ids and name != task_id and context.is_upstream is not None:
        if context.is_upstream(name, task_id):
            return None  # the common case: no pointer to build
    where = pointer(*path)
    if name == task_id:
        return Issue(
            where,
            f"task '{task_id}' reads its own output (tasks.{name})",
            "a task cannot see its own output; read an upstream task instead",
        )
    if name not in context.task_ids:
        hint = "use the id of an upstream task"
        if context.suggestions_left > 0:
            context.suggestions_left -= 1
            hint = did_you_mean(name, context.task_ids) or hint
        return Issue(where, f"template reads tasks.{name}, but there is no task '{name}'", hint)
    if context.is_upstream is not None and not context.is_upstream(name, task_id):
        return Issue(
            where,
            f"template reads tasks.{name}, but '{name}' is not upstream of '{task_id}'",
            f"add an edge from '{name}' to '{task_id}' (or a path through other tasks)",
        )
    return None
