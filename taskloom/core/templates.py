"""Templates in task parameters, rendered in jinja2's sandbox.

Parameters may hold ``{{ ... }}`` templates that see ``params``, ``tasks``
(each upstream task's ``output`` and ``status``), ``run`` (``id``,
``logical_time`` and, for a runner backed by a store, ``home``: the Taskloom
home folder) and ``trigger`` (``payload``). A string that is exactly one
``{{ expression }}`` keeps the expression's JSON type, so a list stays a list;
any other string renders to text, with lists and objects written as JSON.

Rendering never reaches Python internals: the sandbox refuses unsafe
attributes and the failure surfaces as :class:`TemplateError`. Like the
sandbox's own cap on ``range()``, ``**`` and repeating a string or list with
``*`` are capped (:data:`MAX_POWER_BITS`, :data:`MAX_REPEAT`): rendering runs
on the runner's own thread, where no task timeout can stop it, so
``{{ 9 ** 9 ** 9 }}`` or ``{{ '=' * tasks.count.output }}`` with a huge
count must fail the task, not hang the run. (The sandbox does not bound every
way to spend memory, e.g. ``'x'.ljust(n)``; templates are written by workflow
authors, who can run commands anyway.)
"""

from __future__ import annotations

import json
import re
import shlex
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from taskloom.core.errors import UserMistake

__all__ = [
    "TemplateError",
    "MAX_POWER_BITS",
    "MAX_REPEAT",
    "ROOT_NAMES",
    "Reference",
    "render_value",
    "evaluate_expression",
    "references",
    "expression_references",
    "has_template",
    "SecretsNamespace",
]

#: The names a template may use.
ROOT_NAMES = frozenset({"params", "tasks", "run", "trigger", "secrets"})

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class TemplateError(UserMistake, ValueError):
    """A template that does not parse or cannot be rendered; the message says why."""


def _finalize(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    return value


class SecretsNamespace(dict):
    """The ``secrets`` a template sees; reading one that is not set says how to set it."""

    def missing(self, name: str) -> TemplateError:
        return TemplateError(f"secret {name!r} is not set; set it with: taskloom secrets set {name}")


class _DataFirstEnvironment(SandboxedEnvironment):
    """``x.key`` on a JSON object reads the key before any dict method.

    Without this, ``tasks.copy.output`` would find ``dict.copy`` for a task
    named ``copy`` (or ``items``, ``keys``, ``get``...), and an output key
    named ``items`` could not be read with a dot.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, SecretsNamespace):
            raise obj.missing(attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, SecretsNamespace) and argument not in obj:
            raise obj.missing(str(argument))
        return super().getitem(obj, argument)


#: The largest result of ``a ** b`` on integers, in bits (about 20,000 decimal digits).
MAX_POWER_BITS = 65_536
#: The longest string or list ``*`` may build, in characters or items.
MAX_REPEAT = 1_000_000


class _BoundedEnvironment(_DataFirstEnvironment):
    """``**`` and ``*`` that refuse results too large to compute in a moment (see the module docstring)."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            if right * (abs(left).bit_length() - 1) > MAX_POWER_BITS:
                raise SecurityError(f"{left} ** {right} would have more than {MAX_POWER_BITS:,} bits")
        if operator == "*":
            sequence, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(sequence, (str, list, tuple)) and _is_int(times) and len(sequence) * times > MAX_REPEAT:
                raise SecurityError(f"repeating a {type(sequence).__name__} of length {len(sequence):,} "
                                    f"{times:,} times would make more than {MAX_REPEAT:,} items")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_ENV = _BoundedEnvironment(
    undefined=StrictUndefined,
    finalize=_finalize,
    autoescape=False,
    keep_trailing_newline=True,
)


def _shell_quote(value: Any) -> str:
    """``shquote``: one shell word holding the value exactly (JSON text for objects and lists)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    elif value is None or isinstance(value, bool):
        value = json.dumps(value)
    return shlex.quote(str(value))


# Values from outside (a webhook payload, a param) must not become shell syntax in a command line.
_ENV.filters["shquote"] = _shell_quote


def has_template(value: str) -> bool:
    """True when ``value`` contains template syntax worth rendering."""
    return "{{" in value or "{%" in value


def _single_expression(value: str) -> str | None:
    """The inner expression when ``value`` is exactly one ``{{ ... }}``."""
    match = _SINGLE.match(value)
    if match and "{{" not in match["expr"] and "}}" not in match["expr"]:
        return match["expr"].strip()
    return None


#: How many compiled templates, expressions and parse trees each cache keeps (per process, least recently used
#: dropped first). Compiling costs about 40 times evaluating, and a run renders the same few sources again and
#: again: every attempt of a fan-out's tasks, every validation of a stored workflow.
CACHE_SIZE = 4096


@lru_cache(maxsize=CACHE_SIZE)
def _compiled_expression(expression: str) -> Any:
    """``expression`` compiled in the sandbox; cached by its text (a syntax error is raised again, not cached)."""
    return _ENV.compile_expression(expression, undefined_to_none=False)


@lru_cache(maxsize=CACHE_SIZE)
def _compiled_template(text: str) -> Any:
    return _ENV.from_string(text)


@lru_cache(maxsize=CACHE_SIZE)
def _references(text: str) -> frozenset["Reference"]:
    return frozenset(_walk_refs(_ENV.parse(text)))


@contextmanager
def _explained(kind: str, text: str) -> Iterator[None]:
    """Turn whatever rendering ``text`` raised into a :class:`TemplateError` that names it."""
    try:
        yield
    except TemplateSyntaxError as exc:
        raise TemplateError(f"invalid {kind} {text!r}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"unsafe {kind} {text!r} refused by the sandbox: {exc}") from None
    except UndefinedError as exc:
        raise TemplateError(f"{kind} {text!r}: {exc.message}") from None
    except TemplateError:
        raise
    except Exception as exc:  # user code may raise anything (1/0, a bad index)
        raise TemplateError(f"{kind} {text!r} failed: {type(exc).__name__}: {exc}") from None


def evaluate_expression(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a Jinja expression in the sandbox and return its native value."""
    inner = _single_expression(expression)
    if inner is not None:
        expression = inner
    with _explained("expression", expression):
        result = _compiled_expression(expression)(**context)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result


def _render_string(value: str, context: Mapping[str, Any]) -> Any:
    if not has_template(value):
        return value
    inner = _single_expression(value)
    if inner is not None:
        return evaluate_expression(inner, context)
    with _explained("template", value):
        return _compiled_template(value).render(**context)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (recursively through lists and objects)."""
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, context) for k, v in value.items()}
    return value


class Reference(tuple):
    """``(root, name)``: ``("tasks", "extract")``, ``("params", "threshold")``; name may be None."""

    __slots__ = ()

    def __new__(cls, root: str, name: str | None) -> "Reference":
        return super().__new__(cls, (root, name))

    @property
    def root(self) -> str:
        return self[0]

    @property
    def name(self) -> str | None:
        return self[1]


def _walk_refs(tree: nodes.Node) -> Iterator[Reference]:
    # Names bound inside the template ({% for x in ... %}, {% set %}) are local.
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    parents: dict[int, nodes.Node] = {}
    for parent in tree.find_all(nodes.Node):
        for child in parent.iter_child_nodes():
            parents[id(child)] = parent
    for child in tree.iter_child_nodes():
        parents[id(child)] = tree
    for name in tree.find_all(nodes.Name):
        if name.ctx != "load" or name.name in local:
            continue
        parent = parents.get(id(name))
        member: str | None = None
        if isinstance(parent, nodes.Getattr) and parent.node is name:
            member = parent.attr
        elif (
            isinstance(parent, nodes.Getitem)
            and parent.node is name
            and isinstance(parent.arg, nodes.Const)
            and isinstance(parent.arg.value, str)
        ):
            member = parent.arg.value
        yield Reference(name.name, member)


def references(value: str) -> set[Reference]:
    """Every ``(root, name)`` a template string reads; raises :class:`TemplateError` if it does not parse."""
    if not has_template(value):
        return set()
    try:
        return set(_references(value))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"invalid template: {exc.message}") from None


def expression_references(expression: str) -> set[Reference]:
    """Like :func:`references` for a bare expression (a condition's ``expression``)."""
    inner = _single_expression(expression)
    return references("{{ " + (inner if inner is not None else expression) + " }}")
