"""Validation of ``taskloom/v1`` documents: every problem, where it is, how to fix it.

The editor, the CLI and the API all load workflows through here, so a user
sees every issue of a document at once, each with a JSON pointer, a message
naming the bad value and a hint. Validation runs in layers, each skipping what
an earlier one already reported so that one mistake yields one issue:

1. :func:`parse_document`: size cap, nesting cap, JSON syntax, UTF-8, repeated keys;
2. values no stored document can hold (NaN, infinities, numbers beyond a
   double, unpaired surrogates), and the document's structure against
   :data:`taskloom.core.schema.WORKFLOW_SCHEMA`;
3. task types and each task's ``params`` against its type's params schema;
4. alerts (:mod:`taskloom.core.alerts`), triggers (:mod:`taskloom.core.triggercheck`), edges and cycles
   (:mod:`taskloom.core.graphcheck`), templates (:mod:`taskloom.core.templatecheck`).

jsonschema phrases the structural messages; they are rewritten here where its
wording is cryptic. For speed, jsonschema only looks at the parts a compiled
predicate (:mod:`taskloom.core.fastschema`) rejects.

Pure: it receives text or a dict; no files, no database, no environment.
"""

from __future__ import annotations

import json
import re
import sys
from itertools import accumulate, repeat
from typing import Any, Iterable

from taskloom.core.alerts import check_alerts
from taskloom.core.errors import UserMistake
from taskloom.core.graphcheck import check_cycles, check_edges
from taskloom.core.issues import DocumentError, Issue, did_you_mean, json_type, pointer
from taskloom.core.model import Workflow
from taskloom.core.registry import Registry, default_registry
from taskloom.core.schemaerrors import SchemaChecker, section_checkers, type_checker
from taskloom.core.templatecheck import TemplateContext, check_task_templates
from taskloom.core.triggercheck import check_triggers

__all__ = [
    "Issue",
    "DocumentError",
    "MAX_DOCUMENT_BYTES",
    "MAX_DEPTH",
    "parse_document",
    "validate_document",
    "load_workflow",
]

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 64

_SKELETON = '{"format": "taskloom/v1", "name": "my-workflow", "tasks": [...]}'


# -- parsing -----------------------------------------------------------------


def parse_document(text: str | bytes) -> tuple[Any, list[Issue]]:
    """Parse JSON text into a document; ``(None, issues)`` when it cannot be read."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_DOCUMENT_BYTES:
            return None, [_too_big(len(text))]
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, [_bad_utf8(bytes(text), exc)]
    else:
        size = len(text) if len(text) * 4 <= MAX_DOCUMENT_BYTES else _utf8_size(text)
        if size > MAX_DOCUMENT_BYTES:
            return None, [_too_big(size)]
        text = text.removeprefix("\ufeff")
    depth_issue = _depth_issue(text)
    if depth_issue is not None:
        return None, [depth_issue]
    try:
        repeated: list[_Duplicates] = []
        doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=lambda p: _object(p, repeated))
    except json.JSONDecodeError as exc:
        return None, [
            Issue(
                "",
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                "check the brackets, commas and quotes just before that point",
            )
        ]
    except _ConstantError as exc:
        return None, [Issue("", f"invalid JSON: {exc} is not a JSON value", "use a number or null")]
    except ValueError as exc:  # an integer literal longer than Python's int conversion limit (4,300 digits)
        reason = str(exc).split("; use sys.")[0]
        return None, [Issue("", f"invalid JSON: a number is too long ({reason})", "use a smaller number")]
    except RecursionError:
        return None, [_nesting_issue()]
    if repeated:
        return None, _duplicate_key_issues(doc)
    return doc, []


class _Duplicates(dict):  # type: ignore[type-arg]
    """An object whose text repeated a key; ``repeated`` holds every value given for each such key."""

    repeated: dict[str, list[Any]]


def _object(pairs: list[tuple[str, Any]], repeated: list[_Duplicates]) -> dict[str, Any]:
    """``json.loads``'s object hook: a plain dict, unless a key repeats (JSON would keep only the last)."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _Duplicates(obj)
    repeated.append(marked)
    marked.repeated = {}
    for key, value in pairs:
        marked.repeated.setdefault(key, []).append(value)
    marked.repeated = {k: v for k, v in marked.repeated.items() if len(v) > 1}
    return marked


def _duplicate_key_issues(doc: Any) -> list[Issue]:
    """One issue per key given twice or more in one object, in document order.

    JSON parsers keep the last value of a repeated key and drop the others
    without a word, so ``"params": {"who": ..., "who": ...}`` would lose a
    declaration and two ``"tasks"`` lists would lose a whole list.
    """
    issues: list[Issue] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Duplicates):
            for key, values in value.repeated.items():
                shown = " and ".join(_short_json(v) for v in values)
                issues.append(Issue(
                    pointer(*path, key),
                    f"duplicate key '{key}' in {pointer(*path) or 'the document'}: given {len(values)} times "
                    f"({shown}); JSON keeps only the last and drops the others without a word",
                    f"keep one '{key}'; rename or merge the others",
                ))
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend((item, path + (key,)) for key, item in items if isinstance(item, (dict, list)))
    return _in_document_order(doc, issues)


def _short_json(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _too_big(size: int) -> Issue:
    return Issue(
        "",
        f"document is {size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,}",
        "split the workflow, or keep large data out of it (read it at run time)",
    )


def _bad_utf8(data: bytes, exc: UnicodeDecodeError) -> Issue:
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return Issue(
        "",
        f"invalid UTF-8 at line {line}, column {column} (byte {exc.start}: "
        f"{data[exc.start:exc.start + 1]!r})",
        "save the file as UTF-8",
    )


class _ConstantError(UserMistake, ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a document: not JSON."""


def _reject_constant(name: str) -> Any:
    raise _ConstantError(name)


_ESCAPE = re.compile(r"\\.", re.DOTALL)
_NOT_STRUCTURE = re.compile(r'[^\[\]{}"]+')
_STRING_BODY = re.compile(r'"[^"]*"')
#: str.translate table deleting every ASCII character but brackets, braces and quotes
_KEEP_STRUCTURE = {c: None for c in range(128) if chr(c) not in '[]{}"\\'}
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _depth_issue(text: str) -> Issue | None:
    """An issue when arrays and objects nest deeper than :data:`MAX_DEPTH`.

    Runs before parsing and without recursion: escapes are dropped, then
    everything but quotes and brackets, then the strings; the brackets left
    are summed. Only on failure is the position located, more slowly.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    skeleton = _ESCAPE.sub("", text) if "\\" in text else text
    skeleton = _NOT_STRUCTURE.sub("", skeleton.translate(_KEEP_STRUCTURE))
    brackets = _STRING_BODY.sub("", skeleton)
    if max(accumulate(map(_BRACKET_STEP.get, brackets, repeat(0))), default=0) <= MAX_DEPTH:
        return None
    return _nesting_issue(_too_deep_at(text))


def _too_deep_at(text: str) -> tuple[int, int] | None:
    """Line and column of the first bracket past the limit."""
    depth = 0
    for match in re.finditer(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', text):
        token = match.group()
        if token[0] == '"':
            continue
        depth += _BRACKET_STEP[token]
        if depth > MAX_DEPTH:
            start = match.start()
            return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1
    return None


def _nesting_issue(at: tuple[int, int] | None = None) -> Issue:
    where = f" at line {at[0]}, column {at[1]}" if at else ""
    return Issue(
        "",
        f"nesting too deep{where}: more than {MAX_DEPTH} levels of arrays and objects",
        "flatten the data; workflows never need this much nesting",
    )


# -- validation --------------------------------------------------------------


def validate_document(doc: Any, registry: Registry | None = None) -> list[Issue]:
    """Every problem of ``doc`` in one pass, in document order; ``[]`` when it is valid."""
    registry = default_registry() if registry is None else registry
    if not isinstance(doc, dict):
        return [
            Issue(
                "",
                f"a workflow must be a JSON object, got {json_type(doc)}",
                f"start from {_SKELETON}",
            )
        ]
    try:
        issues = _validate(doc, registry)
    except RecursionError:
        return [_nesting_issue()]
    return [_printable(i) for i in _in_document_order(doc, issues)]


def _validate(doc: dict[str, Any], registry: Registry) -> list[Issue]:
    issues = _value_issues(doc) + _structure_issues(doc)
    issues += check_alerts(doc)
    triggers = doc.get("triggers")
    if isinstance(triggers, list):
        issues += check_triggers(triggers)
    tasks = doc.get("tasks")
    if not isinstance(tasks, list):
        return issues
    ids, types, task_issues = _task_issues(tasks, registry)
    issues += task_issues
    edges = doc.get("edges", [])
    is_upstream = None
    if isinstance(edges, list):
        edge_issues, graph = check_edges(edges, list(ids), types, registry)
        issues += edge_issues
        issues += check_cycles(graph)
        if graph.complete:
            is_upstream = graph.is_upstream
    params = doc.get("params", {})
    declared = set(params) if isinstance(params, dict) else None  # None: unknown, not checked
    context = TemplateContext(ids, declared, is_upstream, MAX_DEPTH)
    for i, task in enumerate(tasks):
        if isinstance(task, dict) and isinstance(task.get("id"), str) and isinstance(task.get("params"), dict):
            task_type = registry.get(task["type"]) if isinstance(task.get("type"), str) else None
            if task_type is not None and task_type.placeholder:
                continue  # never rendered: its params keep the original definition as it was
            issues += check_task_templates(i, task["id"], task["params"], task_type, context)
    return issues


#: The largest magnitude a JSON number may have here: a double's (RFC 8259 section 6 interoperability).
_MAX_NUMBER = sys.float_info.max
_SURROGATE = re.compile("[\ud800-\udfff]")


def _value_issues(doc: dict[str, Any]) -> list[Issue]:
    """Values no stored JSON document can hold: odd numbers, and text with unpaired surrogates.

    ``json.loads`` turns ``1e400`` into ``inf`` and a Python caller may pass
    ``nan``; canonical JSON would write them as ``Infinity``/``NaN``, which no
    JSON parser (ours included) reads back, and ``float()`` of a 400-digit
    integer overflows when the model is built. A ``"\\ud800"`` escape is
    valid JSON but decodes to a lone surrogate, which cannot be encoded as
    UTF-8, so the document could not be stored. A cheap scan without paths
    runs first (about a tenth of the time of validating a 10,000-task
    workflow); the paths are worked out only when it finds something.
    """
    if not _has_odd_value(doc):
        return []
    issues: list[Issue] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            here = path + (key,)
            if isinstance(key, str) and _SURROGATE.search(key):
                issues.append(_surrogate_issue(here, key, "key"))
            if isinstance(item, (dict, list)):
                stack.append((item, here))
            elif isinstance(item, str):
                if _SURROGATE.search(item):
                    issues.append(_surrogate_issue(here, item, "text"))
            elif _odd_number(item):
                issues.append(_number_issue(here, item))
    return issues


def _has_odd_value(doc: Any) -> bool:
    stack = [doc]
    pop, push = stack.pop, stack.append
    while stack:
        value = pop()
        if isinstance(value, dict):
            try:
                keys = "".join(value)  # one check for all the keys
            except TypeError:  # a key that is not a string (a caller's dict): the schema reports it
                keys = ""
            if not keys.isascii() and _SURROGATE.search(keys):
                return True
            items: Iterable[Any] = value.values()
        else:
            items = value
        for item in items:
            kind = type(item)
            if kind is str:
                if not item.isascii() and _SURROGATE.search(item):
                    return True
            elif kind is dict or kind is list or isinstance(item, (dict, list)):
                push(item)
            elif isinstance(item, str):
                if _SURROGATE.search(item):
                    return True
            elif _odd_number(item):
                return True
    return False


def _odd_number(value: Any) -> bool:
    if isinstance(value, float):
        return value - value != 0.0  # true for NaN and both infinities, false for every finite value
    return isinstance(value, int) and not isinstance(value, bool) and not -_MAX_NUMBER <= value <= _MAX_NUMBER


def _number_issue(path: tuple[Any, ...], value: float | int) -> Issue:
    if isinstance(value, float):
        if value != value:
            message = "NaN is not a JSON number"
        else:
            sign = "-" if value < 0 else ""
            message = f"number too large: it overflows to {sign}Infinity, which is not a JSON number"
        return Issue(pointer(*path), message, "write a finite number, at most about 1.8e308 in size")
    digits = len(str(abs(value))) if abs(value).bit_length() < 14_000 else "thousands of"
    return Issue(
        pointer(*path),
        f"number with {digits} digits is too large: JSON numbers must fit a double (at most about 1.8e308)",
        "use a smaller number, or a string if it is an identifier",
    )


def _surrogate_issue(path: tuple[Any, ...], text: str, what: str) -> Issue:
    lone = _SURROGATE.search(text)
    shown = f"\\u{ord(lone.group()):04x}" if lone else "a surrogate"
    return Issue(
        pointer(*path),
        f"{what} holds an unpaired surrogate ({shown}), which is not a character and cannot be stored as UTF-8",
        "remove it; write the character itself, or both halves of its surrogate pair",
    )


def _printable(issue: Issue) -> Issue:
    """``issue`` with lone surrogates (echoed from the document) written as escapes, so it can be printed."""
    fields = (issue.path, issue.message, issue.hint)
    if all(f.isascii() or not _SURROGATE.search(f) for f in fields):
        return issue
    return Issue(*(f.encode("utf-8", "backslashreplace").decode("utf-8") for f in fields))


def _structure_issues(doc: dict[str, Any]) -> list[Issue]:
    """Schema violations: the top level, then each item of tasks, edges and triggers."""
    top, items = section_checkers()
    issues = top.issues(doc, ())
    for section, checker in items.items():
        values = doc.get(section)
        if isinstance(values, list):
            for i, value in enumerate(values):
                issues += checker.issues(value, (section, i))
    return issues


def _task_issues(
    tasks: list[Any], registry: Registry
) -> tuple[dict[str, int], dict[str, Any], list[Issue]]:
    """Duplicate ids, unknown types and params; returns (id -> index, id -> type, issues)."""
    ids: dict[str, int] = {}
    types: dict[str, Any] = {}
    issues: list[Issue] = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        task_id, type_name = task.get("id"), task.get("type")
        if isinstance(task_id, str):
            if task_id in ids:
                issues.append(
                    Issue(
                        pointer("tasks", i, "id"),
                        f"duplicate task id '{task_id}' (also {pointer('tasks', ids[task_id])})",
                        f"task ids must be unique; rename this one, e.g. '{_fresh(task_id, ids)}'",
                    )
                )
            else:
                ids[task_id] = i
                types[task_id] = type_name
        if isinstance(type_name, str):
            issues += _type_and_params_issues(i, task, type_name, registry)
    return ids, types, issues


def _fresh(task_id: str, taken: dict[str, int]) -> str:
    n = 2
    while f"{task_id}_{n}" in taken:
        n += 1
    return f"{task_id}_{n}"


def _type_and_params_issues(i: int, task: dict[str, Any], type_name: str, registry: Registry) -> list[Issue]:
    task_type = registry.get(type_name)
    if task_type is None:
        return [
            Issue(
                pointer("tasks", i, "type"),
                f"unknown task type '{type_name}'",
                did_you_mean(type_name, registry.names(), listing="known types:"),
            )
        ]
    params = task.get("params", {})
    if not isinstance(params, dict):
        return []  # the structure check reported it
    checker: SchemaChecker | None = type_checker(task_type)
    if checker is None:
        return [
            Issue(
                pointer("tasks", i, "type"),
                f"task type '{type_name}' has an invalid params schema",
                "this is a bug in the plugin that registered it",
            )
        ]
    issues = checker.issues(params, ("tasks", i, "params"), params_of=type_name)
    if task_type.placeholder:
        return issues + [_placeholder_issue(i, task, params)]
    nested = task_type.nested_task_param
    if not issues and nested and isinstance(params.get(nested), dict):
        issues = _nested_task_issues(params[nested], ("tasks", i, "params", nested), registry)
    return issues


def _placeholder_issue(i: int, task: dict[str, Any], params: dict[str, Any]) -> Issue:
    """A placeholder task is never valid: say what it stands for and what to replace it with."""
    what = params.get("what") if isinstance(params.get("what"), str) else "a step that was not converted"
    reason = params.get("reason") if isinstance(params.get("reason"), str) and params.get("reason") else ""
    todo = params.get("todo") if isinstance(params.get("todo"), str) and params.get("todo") else (
        "replace it with a task that does the same"
    )
    return Issue(
        pointer("tasks", i, "type"),
        f"task '{task.get('id')}' is a placeholder for {what}" + (f": {reason}" if reason else "")
        + "; it cannot run",
        f"{todo}; its original definition is in params.original",
    )


def _nested_task_issues(inner: dict[str, Any], path: tuple[Any, ...], registry: Registry) -> list[Issue]:
    """A task definition inside a task's params (foreach's ``task``): known type, valid params."""
    type_name = inner.get("type")
    inner_type = registry.get(type_name) if isinstance(type_name, str) else None
    if inner_type is None:
        return [
            Issue(
                pointer(*path, "type"),
                f"unknown task type {type_name!r}",
                did_you_mean(str(type_name), registry.names(), listing="known types:"),
            )
        ]
    params = inner.get("params", {})
    checker = type_checker(inner_type)
    if checker is None or not isinstance(params, dict):
        return []
    return checker.issues(params, (*path, "params"), params_of=type_name)


def _in_document_order(doc: Any, issues: Iterable[Issue]) -> list[Issue]:
    """Sort by where each path points in the document (stable for equal places)."""
    keys: dict[str, tuple[int, ...]] = {}
    for issue in issues:
        if issue.path not in keys:
            keys[issue.path] = _order_key(doc, issue.path)
    return sorted(issues, key=lambda issue: keys[issue.path])


def _order_key(doc: Any, path: str) -> tuple[int, ...]:
    key: list[int] = []
    node = doc
    for raw in path.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            key.append(int(part))
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            key.append(list(node).index(part))
            node = node[part]
        else:
            key.append(1 << 30)  # not in the document (a missing key): after what is
            break
    return tuple(key)


def load_workflow(text: str | bytes, registry: Registry | None = None) -> Workflow:
    """Parse, validate and build a :class:`Workflow`; raises :class:`DocumentError` with every issue."""
    doc, issues = parse_document(text)
    if not issues:
        issues = validate_document(doc, registry)
    if issues:
        raise DocumentError(issues)
    return Workflow.from_document(doc)
