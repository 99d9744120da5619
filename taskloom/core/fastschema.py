"""A fast yes/no check for the subset of JSON Schema that taskloom uses.

jsonschema is the authority on a document's errors and their messages, but it
needs over a second to walk a 10,000-task workflow. :func:`compile_predicate`
turns a schema into nested closures that only answer "valid?" and run an
order of magnitude faster; validation asks jsonschema for details only about
the parts the predicate rejects.

The predicate must never accept what jsonschema rejects. Keywords outside the
supported subset make :func:`compile_predicate` raise :class:`Unsupported`;
:func:`predicate` then falls back to jsonschema's own ``is_valid``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from jsonschema import Draft202012Validator

from taskloom.core.errors import InternalError

__all__ = ["Unsupported", "Predicate", "compile_predicate", "predicate"]

Predicate = Callable[[Any], bool]

#: Keywords that never affect validity.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
     "format", "readOnly", "writeOnly", "deprecated"}
)


_OBJECT_KEYWORDS = frozenset({"required", "properties", "additionalProperties"})


def _all(checks: list[Predicate]) -> Predicate:
    """A predicate true when every one of ``checks`` is."""
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)

    def check(x: Any) -> bool:
        for c in checks:
            if not c(x):
                return False
        return True

    return check


class Unsupported(InternalError, ValueError):
    """The schema uses a keyword the fast predicate does not implement (:func:`predicate` falls back on it)."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_integer(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


_TYPES: dict[str, Predicate] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
}


def _equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema sees it: ``True`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Predicate] = {}

    def ref(self, ref: str) -> Predicate:
        if not ref.startswith("#/"):
            raise Unsupported(f"$ref {ref!r}")
        if ref not in self.refs:
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            slot: list[Predicate] = []
            self.refs[ref] = lambda x: slot[0](x)  # resolves recursive refs
            slot.append(self.compile(target))
        return self.refs[ref]

    def compile(self, schema: Any) -> Predicate:
        if schema is True or schema == {}:
            return lambda x: True
        if schema is False:
            return lambda x: False
        if not isinstance(schema, Mapping):
            raise Unsupported(f"schema {schema!r}")
        checks: list[Predicate] = []
        if any(k in schema for k in _OBJECT_KEYWORDS):
            checks.append(self.object_keywords(schema))
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in _OBJECT_KEYWORDS or key in ("then", "else"):
                continue
            method = getattr(self, "k_" + key.lstrip("$"), None)
            if method is None:
                raise Unsupported(f"keyword {key!r}")
            checks.append(method(value, schema))
        return _all(checks)

    def object_keywords(self, schema: Mapping[str, Any]) -> Predicate:
        """``required``, ``properties`` and ``additionalProperties`` in one pass over the instance's keys."""
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        required = tuple(schema.get("required", ()))
        props = {k: self.compile(v) for k, v in schema.get("properties", {}).items()}
        additional = schema.get("additionalProperties", True)
        closed = additional is False
        extra = None if additional is True or closed else self.compile(additional)

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for key in required:
                if key not in x:
                    return False
            for key, value in x.items():
                pred = props.get(key)
                if pred is None:
                    if closed or (extra is not None and not extra(value)):
                        return False
                elif not pred(value):
                    return False
            return True

        return check

    # -- keywords: each returns a predicate for one keyword ------------------

    def k_ref(self, value: str, schema: Mapping[str, Any]) -> Predicate:
        return self.ref(value)

    def k_type(self, value: Any, schema: Mapping[str, Any]) -> Predicate:
        if isinstance(value, str):
            return _TYPES[value]
        preds = [_TYPES[v] for v in value]
        return lambda x: any(p(x) for p in preds)

    def k_enum(self, value: list[Any], schema: Mapping[str, Any]) -> Predicate:
        if all(isinstance(v, str) for v in value):
            allowed = frozenset(value)
            return lambda x: isinstance(x, str) and x in allowed
        return lambda x: any(_equal(x, v) for v in value)

    def k_const(self, value: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: _equal(x, value)

    def k_pattern(self, value: str, schema: Mapping[str, Any]) -> Predicate:
        search = re.compile(value).search
        return lambda x: not isinstance(x, str) or search(x) is not None

    def k_minLength(self, value: int, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not isinstance(x, str) or len(x) >= value

    def k_maxLength(self, value: int, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not isinstance(x, str) or len(x) <= value

    def k_minimum(self, value: float, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not _is_number(x) or x >= value

    def k_maximum(self, value: float, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not _is_number(x) or x <= value

    def k_exclusiveMinimum(self, value: float, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not _is_number(x) or x > value

    def k_exclusiveMaximum(self, value: float, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not _is_number(x) or x < value

    def k_propertyNames(self, value: Any, schema: Mapping[str, Any]) -> Predicate:
        pred = self.compile(value)
        return lambda x: not isinstance(x, dict) or all(pred(k) for k in x)

    def k_items(self, value: Any, schema: Mapping[str, Any]) -> Predicate:
        if "prefixItems" in schema:
            raise Unsupported("prefixItems")
        pred = self.compile(value)
        return lambda x: not isinstance(x, list) or all(pred(v) for v in x)

    def k_minItems(self, value: int, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not isinstance(x, list) or len(x) >= value

    def k_maxItems(self, value: int, schema: Mapping[str, Any]) -> Predicate:
        return lambda x: not isinstance(x, list) or len(x) <= value

    def k_allOf(self, value: list[Any], schema: Mapping[str, Any]) -> Predicate:
        return _all([self.compile(v) for v in value])

    def k_anyOf(self, value: list[Any], schema: Mapping[str, Any]) -> Predicate:
        preds = [self.compile(v) for v in value]
        return lambda x: any(p(x) for p in preds)

    def k_oneOf(self, value: list[Any], schema: Mapping[str, Any]) -> Predicate:
        preds = [self.compile(v) for v in value]
        return lambda x: sum(1 for p in preds if p(x)) == 1

    def k_not(self, value: Any, schema: Mapping[str, Any]) -> Predicate:
        pred = self.compile(value)
        return lambda x: not pred(x)

    def k_if(self, value: Any, schema: Mapping[str, Any]) -> Predicate:
        cond = self.compile(value)
        then = self.compile(schema.get("then", True))
        other = self.compile(schema.get("else", True))
        return lambda x: then(x) if cond(x) else other(x)


def compile_predicate(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Predicate:
    """A function answering whether an instance is valid under ``schema``.

    ``root`` is the document local ``$ref``s resolve against (default: ``schema``).
    Raises :class:`Unsupported` for keywords outside the subset.
    """
    return _Compiler(schema if root is None else root).compile(schema)


def predicate(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Predicate:
    """:func:`compile_predicate`, or jsonschema's ``is_valid`` when the schema needs more."""
    try:
        return compile_predicate(schema, root)
    except Unsupported:
        full = schema if root is None else {**schema, "$defs": root.get("$defs", {})}
        return Draft202012Validator(full).is_valid
