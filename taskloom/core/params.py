"""Run parameters: declared defaults plus ``-p key=value`` overrides, type-checked.

Values given on a command line are text; each is converted to the type the
workflow declares (``integer`` "3" -> 3, ``boolean`` "yes" -> true, ``array``
and ``object`` as JSON). Every problem is reported before anything runs.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Mapping

from taskloom.core.errors import UserMistake
from taskloom.core.model import Workflow

__all__ = ["ParamError", "resolve_params", "parse_assignments", "convert", "type_matches"]

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class ParamError(UserMistake, ValueError):
    """Bad run parameters; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def type_matches(kind: str, value: Any) -> bool:
    """Whether a JSON value has the declared parameter type."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return False


def convert(kind: str, text: str) -> Any:
    """Convert command-line text to ``kind``; raise ValueError with a readable reason."""
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if kind == "number":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite number")
        return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (use true or false)")
    if kind in ("array", "object"):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"{text!r} is not JSON; give the {kind} as JSON") from None
        if not type_matches(kind, value):
            raise ValueError(f"{text!r} is not a JSON {kind}")
        return value
    raise ValueError(f"unknown parameter type {kind!r}")


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; raise ParamError on items without '='."""
    out: dict[str, str] = {}
    bad = [f"parameter {i!r} must be written key=value" for i in items if "=" not in i]
    # A command-line argument that is not UTF-8 arrives with its bytes as lone surrogates.
    bad += [
        f"parameter '{i.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')}'"
        " is not UTF-8 text; write it in UTF-8"
        for i in items
        if any("\ud800" <= c <= "\udfff" for c in i)
    ]
    if bad:
        raise ParamError(bad)
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip()] = value
    return out


def resolve_params(
    workflow: Workflow, given: Mapping[str, Any], *, from_text: bool = True
) -> dict[str, Any]:
    """Declared defaults overlaid with ``given``; raise :class:`ParamError` listing every problem.

    With ``from_text`` the given values are strings to convert; otherwise they
    are JSON values that must already have the declared type.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, raw in given.items():
        param = workflow.params.get(key)
        if param is None:
            close = difflib.get_close_matches(key, list(workflow.params), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else (
                f"; declared: {', '.join(sorted(workflow.params))}" if workflow.params
                else "; the workflow declares no params"
            )
            problems.append(f"unknown parameter {key!r}{hint}")
            continue
        try:
            if from_text and isinstance(raw, str):
                values[key] = convert(param.type, raw)
            elif type_matches(param.type, raw):
                values[key] = raw
            else:
                raise ValueError(f"{raw!r} is not of type {param.type}")
        except ValueError as exc:
            problems.append(f"parameter {key!r} ({param.type}): {exc}")
    for name, param in workflow.params.items():
        if name in values or name in given:
            continue
        if param.required:
            problems.append(f"parameter {name!r} ({param.type}) is required: pass -p {name}=VALUE")
        else:
            values[name] = param.default
    if problems:
        raise ParamError(problems)
    return values
