"""Structural checks against JSON Schemas, with jsonschema's errors made human.

A :class:`SchemaChecker` first asks a compiled predicate
(:mod:`taskloom.core.fastschema`) whether an instance is valid; only when it is not
does jsonschema's ``Draft202012Validator.iter_errors`` run, and each error is
rewritten into an :class:`~taskloom.core.issues.Issue`: ``additionalProperties``
becomes "unknown key 'retrys'" with "did you mean 'retries'?", a ``oneOf`` of
required keys becomes "give either 'callable' or 'code'", and so on.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from taskloom.core.fastschema import predicate
from taskloom.core.issues import Issue, did_you_mean, json_type, pointer
from taskloom.core.model import FORMAT
from taskloom.core.registry import TaskType
from taskloom.core.schema import IDENTIFIER_PATTERN, SLUG_PATTERN, TIME_OF_DAY_PATTERN, WORKFLOW_SCHEMA

__all__ = ["SchemaChecker", "section_checkers", "type_checker", "describe_error"]

Path = tuple[Any, ...]


class SchemaChecker:
    """Issues of an instance under one schema; fast when it is valid."""

    def __init__(self, schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> None:
        full = dict(schema) if defs is None else {**schema, "$defs": defs}
        self.is_valid = predicate(full)
        self.validator = Draft202012Validator(full)

    def issues(self, instance: Any, base: Path, params_of: str | None = None) -> list[Issue]:
        """Issues with paths under ``base``; ``params_of`` names the task type whose params these are."""
        if self.is_valid(instance):
            return []
        out: list[Issue] = []
        for error in self.validator.iter_errors(instance):
            out += describe_error(error, base, params_of)
        return out


_SECTIONS = {"tasks": "task", "edges": "edge", "triggers": "trigger"}
_SECTION_CACHE: list[tuple[SchemaChecker, dict[str, SchemaChecker]]] = []


def section_checkers() -> tuple[SchemaChecker, dict[str, SchemaChecker]]:
    """The checker of the top level (without list items) and one per list section (built once)."""
    if not _SECTION_CACHE:
        top = copy.deepcopy(WORKFLOW_SCHEMA)
        for section in _SECTIONS:
            top["properties"][section].pop("items")
        defs = WORKFLOW_SCHEMA["$defs"]
        items = {section: SchemaChecker(defs[name], defs) for section, name in _SECTIONS.items()}
        _SECTION_CACHE.append((SchemaChecker(top), items))
    return _SECTION_CACHE[0]


_TYPE_CACHE: dict[int, tuple[TaskType, SchemaChecker | None]] = {}


def type_checker(task_type: TaskType) -> SchemaChecker | None:
    """The checker of a task type's params (built once per type); None if its schema is invalid."""
    cached = _TYPE_CACHE.get(id(task_type))
    if cached is not None and cached[0] is task_type:
        return cached[1]
    try:
        Draft202012Validator.check_schema(task_type.params_schema)
        checker: SchemaChecker | None = SchemaChecker(task_type.params_schema)
    except SchemaError:
        checker = None
    _TYPE_CACHE[id(task_type)] = (task_type, checker)
    return checker


# -- turning jsonschema errors into issues -------------------------------------


def describe_error(error: ValidationError, base: Path, params_of: str | None = None) -> list[Issue]:
    """One or more issues for a jsonschema error found in the instance at ``base``."""
    path = base + tuple(error.absolute_path)
    handler = _HANDLERS.get(str(error.validator), _generic)
    return handler(error, path, _Context(base, params_of))


class _Context:
    def __init__(self, base: Path, params_of: str | None) -> None:
        self.base = base
        self.params_of = params_of

    def in_params_root(self, path: Path) -> bool:
        """True for the params object itself."""
        return self.params_of is not None and path == self.base


def _short(value: Any, limit: int = 50) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _label(path: Path, ctx: _Context | None = None) -> str:
    """How a message names the value at ``path``."""
    if not path:
        return "the document"
    last = path[-1]
    if len(path) == 3 and path[0] == "params" and last == "default":
        return f"the default of parameter '{path[1]}'"
    if ctx is not None and ctx.params_of and len(path) == len(ctx.base) + 1:
        return f"parameter '{last}'"
    if isinstance(last, int):
        return f"{path[-2]}[{last}]" if len(path) > 1 else f"item {last}"
    if last == "id" and len(path) >= 3 and path[-3] in ("tasks", "triggers"):
        return f"{path[-3][:-1]} id"
    if last == "name" and len(path) == 1:
        return "name"
    return f"'{last}'"


def _description(schema: Any, name: str | None = None) -> str:
    """The description of ``schema`` (or of its property ``name``), for hints."""
    if not isinstance(schema, Mapping):
        return ""
    if name is not None:
        schema = schema.get("properties", {}).get(name, {})
        if not isinstance(schema, Mapping):
            return ""
        if "$ref" in schema:  # the only reference target is a $def with its own help
            schema = WORKFLOW_SCHEMA["$defs"].get(schema["$ref"].rsplit("/", 1)[-1], schema)
    return str(schema.get("description", ""))


def _required(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    names = [n for n in error.validator_value if error.message.startswith(repr(n))]
    name = names[0] if names else str(error.validator_value)
    where = pointer(*path)
    help_text = _description(error.schema, name)
    if ctx.in_params_root(path):
        hint = f'add "{name}" to params' + (f": {help_text}" if help_text else "")
        return [Issue(where, f"missing required parameter '{name}'", hint)]
    if not path and name == "format":
        return [Issue(where, 'missing "format"', f'"format": "{FORMAT}"')]
    owner = "" if not path else f" in {_label(path)}"
    hint = f'add "{name}"' + (f": {help_text}" if help_text else "")
    return [Issue(where, f"missing required key '{name}'{owner}", hint)]


def _additional(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    known = list(error.schema.get("properties", {}))
    noun = "parameter" if ctx.in_params_root(path) else "key"
    listing = f"known {noun}s: " + (", ".join(known) if known else "none")
    issues = []
    for key in error.instance:
        if key in known:
            continue
        close = did_you_mean(key, known)
        if not path:  # top level: always show what exists
            hint = f"{close} {listing}" if close else listing
        else:
            hint = close or listing
        what = f"unknown parameter '{key}' for a {ctx.params_of} task" if noun == "parameter" else f"unknown key '{key}'"
        issues.append(Issue(pointer(*path, key), what, hint))
    return issues


def _const(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    if path == ("format",):
        return [
            Issue(
                pointer(*path),
                f"format is {_short(error.instance)}, expected '{FORMAT}'",
                f'"format": "{FORMAT}"',
            )
        ]
    return [
        Issue(
            pointer(*path),
            f"{_label(path, ctx)} must be {error.validator_value!r}, got {_short(error.instance)}",
            _description(error.schema),
        )
    ]


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _type(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    expected = error.validator_value
    wanted = (
        _article(expected)
        if isinstance(expected, str)
        else " or ".join(_article(e) for e in expected)
    )
    message = f"{_label(path, ctx)} must be {wanted}, got {json_type(error.instance)} {_short(error.instance)}"
    if len(path) == 3 and path[0] == "params" and path[2] == "default":
        hint = f"make the default {wanted}, or change the parameter's \"type\""
    else:
        hint = _description(error.schema)
    return [Issue(pointer(*path), message, hint)]


def _enum(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    allowed = error.validator_value
    options = ", ".join(f"'{a}'" if isinstance(a, str) else repr(a) for a in allowed)
    value = error.instance
    if path and path[-1] == "type" and len(path) == 3 and path[0] == "triggers":
        message = f"unknown trigger type {_short(value)}"
    else:
        message = f"{_label(path, ctx)} is {_short(value)}"
    hint = did_you_mean(value, [a for a in allowed if isinstance(a, str)]) or _description(error.schema)
    return [Issue(pointer(*path), f"{message}; expected one of {options}", hint)]


def _slug_example(value: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-_")[:64]
    return slug if re.match(SLUG_PATTERN, slug) else "hourly-scores"


def _identifier_example(value: str) -> str:
    ident = re.sub(r"\W+", "_", value, flags=re.ASCII).strip("_") or "step"
    return ident if re.match(IDENTIFIER_PATTERN, ident) else f"t_{ident}"


_PATTERNS: dict[str, tuple[str, Callable[[str], str]]] = {
    IDENTIFIER_PATTERN: (
        "is not an identifier",
        lambda v: f"use letters, digits and '_', not starting with a digit, e.g. '{_identifier_example(v)}'",
    ),
    SLUG_PATTERN: (
        "is not a valid name",
        lambda v: "use lowercase letters, digits, '-' and '_', at most 64 characters, "
        f"e.g. '{_slug_example(v)}'",
    ),
    TIME_OF_DAY_PATTERN: ("is not a time of day", lambda v: "write it as HH:MM, 24 hours, e.g. '09:30'"),
}


def _pattern(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    value = error.instance
    if "propertyNames" in error.absolute_schema_path:
        path = path + (value,)
        label = "parameter name" if path[:1] == ("params",) and len(path) == 2 else "key"
    else:
        label = _label(path, ctx)
    known = _PATTERNS.get(error.validator_value)
    if known is not None:
        text, hint = known[0], known[1](value)
    else:
        text, hint = f"does not match the pattern {error.validator_value}", _description(error.schema)
    return [Issue(pointer(*path), f"{label} {_short(value)} {text}", hint)]


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _bound(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    op = _BOUNDS[str(error.validator)]
    limits = [f"{_BOUNDS[k]} {error.schema[k]}" for k in _BOUNDS if k in error.schema]
    help_text = _description(error.schema)
    hint = "use a value " + " and ".join(limits) + (f" ({help_text})" if help_text else "")
    return [
        Issue(
            pointer(*path),
            f"{_label(path, ctx)} must be {op} {error.validator_value}, got {_short(error.instance)}",
            hint,
        )
    ]


def _min_items(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    if path == ("tasks",):
        return [
            Issue(
                "/tasks",
                "a workflow needs at least one task",
                'add a task, e.g. {"id": "hello", "type": "shell", "params": {"command": "echo hello"}}',
            )
        ]
    n = error.validator_value
    return [Issue(pointer(*path), f"{_label(path, ctx)} needs at least {n} item{'s' if n != 1 else ''}", "")]


def _min_length(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    n = error.validator_value
    text = "must not be empty" if n == 1 else f"must have at least {n} characters"
    return [Issue(pointer(*path), f"{_label(path, ctx)} {text}", _description(error.schema))]


def _one_of(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    branches = error.validator_value
    if all(isinstance(b, Mapping) and set(b) == {"required"} and len(b["required"]) == 1 for b in branches):
        names = [b["required"][0] for b in branches]
        given = [n for n in names if isinstance(error.instance, dict) and n in error.instance]
        quoted = [f"'{n}'" for n in names]
        choice = " or ".join(quoted) if len(names) == 2 else "exactly one of " + ", ".join(quoted)
        message = f"give either {choice}" + (", not both" if len(given) > 1 else "")
        hint = "; ".join(f"'{n}': {_description(error.schema, n)}" for n in names if _description(error.schema, n))
        return [Issue(pointer(*path), message, hint)]
    return _best_of(error, path, ctx)


def _best_of(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    best = best_match(error.context) if error.context else None
    if best is None:
        return _generic(error, path, ctx)
    return describe_error(best, ctx.base, ctx.params_of)


def _not(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    if error.validator_value in ({}, True) and path and isinstance(path[-1], str):
        return [Issue(pointer(*path), f"'{path[-1]}' is not allowed here", _description(error.schema))]
    return _generic(error, path, ctx)


def _generic(error: ValidationError, path: Path, ctx: _Context) -> list[Issue]:
    return [Issue(pointer(*path), error.message, _description(error.schema))]


_HANDLERS: dict[str, Callable[[ValidationError, Path, _Context], list[Issue]]] = {
    "required": _required,
    "additionalProperties": _additional,
    "const": _const,
    "type": _type,
    "enum": _enum,
    "pattern": _pattern,
    "minimum": _bound,
    "maximum": _bound,
    "exclusiveMinimum": _bound,
    "exclusiveMaximum": _bound,
    "minItems": _min_items,
    "minLength": _min_length,
    "oneOf": _one_of,
    "anyOf": _best_of,
    "not": _not,
}
