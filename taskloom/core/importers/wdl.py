"""Logic Apps expressions (the workflow definition language) to Taskloom templates.

A string that starts with ``@`` is one expression (``"@body('Get')?['id']"``),
``@{...}`` interpolates expressions into text, ``@@`` is a literal ``@``.
:func:`translate_value` rewrites each string of a JSON value: an expression
made only of what has a Taskloom equivalent becomes a template
(``{{ tasks.Get.output.json.id }}``); a string holding anything else is kept
verbatim (as literal text) and named in ``Translation.verbatim`` so the
importer can flag it. What translates:

==============================  ===========================================
``triggerBody()``               ``trigger.payload``
``body('X')``                   ``tasks.X.output.json`` (Http), ``tasks.X.output`` (Compose...)
``outputs('X')``                ``tasks.X.output`` (``['body']``, ``['statusCode']``, ``['headers']`` of Http)
``parameters('p')``             ``params.p`` (``secrets.P`` for a secure parameter)
``variables('v')``              ``tasks.V.output`` (a variable that is only initialised)
``item()``, ``items('Loop')``   ``item`` inside a converted For each
``equals``, ``not``, ``and``...  Jinja operators; ``concat`` -> ``~``; ``length``, ``first``... -> filters
``utcNow()``                    ``run.logical_time`` (approximate: the run's scheduled instant)
==============================  ===========================================

``?['key']`` (null-safe) becomes plain indexing: a missing key fails the
task with a message naming it, where Logic Apps would give null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from taskloom.core.errors import UserMistake
from taskloom.core.importers.common import literal

__all__ = ["Context", "Translation", "Untranslatable", "translate_value", "translate_string",
           "translate_condition", "to_jinja", "parse"]


class Untranslatable(UserMistake, ValueError):
    """An expression (or part of one) with no Taskloom equivalent; the message says which part."""


class Context(Protocol):
    """What the translator needs to know about the workflow being converted."""

    def action(self, name: str) -> tuple[str, str] | None:
        """``(task id, kind)`` of a converted action; kind is ``http``, ``value`` or ``other``."""

    def param(self, name: str) -> str | None:
        """What a Logic Apps parameter reads in a template: ``params.p``, or ``secrets.P`` for a secure one."""

    def variable(self, name: str) -> str | None:
        """The id of the task that initialises a variable that is never changed afterwards."""

    def loop(self, name: str | None) -> bool:
        """Whether ``item()`` (name None) or ``items(name)`` is the item of the converted For each."""


@dataclass
class Translation:
    """A translated value and what could not be translated exactly."""

    value: Any
    #: expressions kept verbatim, each with the reason
    verbatim: list[str] = field(default_factory=list)
    #: expressions translated approximately, each with how
    approximate: list[str] = field(default_factory=list)


# -- parsing -------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>\?\[|\?\.|[()\[\],.]))"
)


@dataclass(frozen=True)
class _Node:
    kind: str  # str | num | name | call | index | member
    value: Any = None
    args: tuple["_Node", ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise Untranslatable(f"cannot read the expression at {text[pos:pos + 12]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match[kind]))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise Untranslatable(f"expected {value or 'more'} in the expression")
        self.pos += 1
        return token

    def expression(self) -> _Node:
        kind, value = self.take()
        if kind == "str":
            node = _Node("str", value[1:-1].replace("''", "'"))
        elif kind == "num":
            node = _Node("num", float(value) if any(c in value for c in ".eE") else int(value))
        elif kind == "name":
            if self.peek() == ("punct", "("):
                self.take("(")
                args: list[_Node] = []
                if self.peek() != ("punct", ")"):
                    args.append(self.expression())
                    while self.peek() == ("punct", ","):
                        self.take(",")
                        args.append(self.expression())
                self.take(")")
                node = _Node("call", value, tuple(args))
            else:
                node = _Node("name", value)
        else:
            raise Untranslatable(f"unexpected {value!r} in the expression")
        while self.peek() in (("punct", "["), ("punct", "?["), ("punct", "."), ("punct", "?.")):
            _, punct = self.take()
            if punct.endswith("["):
                node = _Node("index", None, (node, self.expression()))
                self.take("]")
            else:
                node = _Node("member", self.take()[1], (node,))
        return node


def parse(text: str) -> _Node:
    """The syntax tree of one expression (without the leading ``@``); raises :class:`Untranslatable`."""
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek() is not None:
        raise Untranslatable(f"unexpected {parser.peek()[1]!r} after the expression")  # type: ignore[index]
    return node


# -- translating -------------------------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BINARY = {"equals": "==", "greater": ">", "greaterOrEquals": ">=", "less": "<", "lessOrEquals": "<=",
           "add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
_FILTERS = {"length": "length", "first": "first", "last": "last", "string": "string", "int": "int",
            "float": "float", "toLower": "lower", "toUpper": "upper", "trim": "trim"}
_HTTP_OUTPUTS = {"body": "json", "statusCode": "status", "headers": "headers"}


def _string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _key(node: _Node) -> Any:
    return node.value if node.kind in ("str", "num") else None


class _Translator:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.approximate: list[str] = []

    def expr(self, node: _Node) -> str:
        if node.kind == "str":
            return _string_literal(node.value)
        if node.kind == "num":
            return repr(node.value)
        if node.kind == "name":
            words = {"true": "true", "false": "false", "null": "none"}
            if node.value.lower() in words:
                return words[node.value.lower()]
            raise Untranslatable(f"unknown name {node.value!r}")
        if node.kind in ("index", "member"):
            return self.access(node)
        return self.call(node)

    def access(self, node: _Node) -> str:
        chain: list[_Node] = []
        base = node
        while base.kind in ("index", "member"):
            chain.append(base)
            base = base.args[0]
        chain.reverse()
        text, rest = self.base_with_keys(base, chain)
        for step in rest:
            text += self.step(step)
        return text

    def step(self, step: _Node) -> str:
        if step.kind == "member":
            return f".{step.value}" if _IDENT.match(step.value) else f"[{_string_literal(step.value)}]"
        key = step.args[1]
        if key.kind == "str" and _IDENT.match(key.value):
            return f".{key.value}"
        return f"[{self.expr(key)}]"

    def base_with_keys(self, base: _Node, chain: list[_Node]) -> tuple[str, list[_Node]]:
        """The base of an access chain; ``outputs('X')['body']`` and friends consume their first key."""
        first = _key(chain[0].args[1]) if chain and chain[0].kind == "index" else (
            chain[0].value if chain else None)
        if base.kind == "call" and base.value in ("outputs", "triggerOutputs") and first is not None:
            if base.value == "triggerOutputs":
                if first == "body":
                    return "trigger.payload", chain[1:]
                raise Untranslatable(f"triggerOutputs()['{first}'] (only the body reaches a Taskloom run)")
            task_id, kind = self.action_of(base)
            if kind == "http":
                if first in _HTTP_OUTPUTS:
                    return f"tasks.{task_id}.output.{_HTTP_OUTPUTS[first]}", chain[1:]
                raise Untranslatable(f"outputs of an HTTP action have no '{first}' in Taskloom")
        return self.expr(base), chain

    def action_of(self, node: _Node) -> tuple[str, str]:
        if len(node.args) != 1 or node.args[0].kind != "str":
            raise Untranslatable(f"{node.value}() needs one action name")
        found = self.ctx.action(node.args[0].value)
        if found is None:
            raise Untranslatable(f"{node.value}('{node.args[0].value}'): no converted action of that name")
        return found

    def call(self, node: _Node) -> str:  # noqa: C901 (a flat table of functions)
        name, args = node.value, node.args
        if name == "triggerBody" and not args:
            return "trigger.payload"
        if name in ("body", "outputs"):
            task_id, kind = self.action_of(node)
            if kind == "http" and name == "body":
                return f"tasks.{task_id}.output.json"
            if kind == "value":
                return f"tasks.{task_id}.output"
            raise Untranslatable(f"{name}('{args[0].value}') of this kind of action")
        if name == "parameters" and len(args) == 1 and args[0].kind == "str":
            param = self.ctx.param(args[0].value)
            if param is None:
                raise Untranslatable(f"parameters('{args[0].value}') is not a declared parameter")
            return param
        if name == "variables" and len(args) == 1 and args[0].kind == "str":
            task_id = self.ctx.variable(args[0].value)
            if task_id is None:
                raise Untranslatable(f"variables('{args[0].value}') (a variable that is changed; Taskloom has none)")
            return f"tasks.{task_id}.output"
        if name in ("item", "items"):
            loop = args[0].value if args and args[0].kind == "str" else None
            if (name == "item" and not args) or (name == "items" and loop is not None):
                if self.ctx.loop(loop):
                    return "item"
            raise Untranslatable(f"{name}() outside a converted For each")
        if name in _BINARY and len(args) == 2:
            return f"({self.expr(args[0])} {_BINARY[name]} {self.expr(args[1])})"
        if name in ("and", "or") and len(args) >= 2:
            return "(" + f" {name} ".join(self.expr(a) for a in args) + ")"
        if name == "not" and len(args) == 1:
            return f"(not {self.expr(args[0])})"
        if name == "concat" and args:
            return "(" + " ~ ".join(self.expr(a) for a in args) + ")"
        if name in _FILTERS and len(args) == 1:
            return f"({self.expr(args[0])} | {_FILTERS[name]})"
        if name == "empty" and len(args) == 1:
            return f"(not {self.expr(args[0])})"
        if name == "contains" and len(args) == 2:
            return f"({self.expr(args[1])} in {self.expr(args[0])})"
        if name == "join" and len(args) == 2:
            return f"({self.expr(args[0])} | join({self.expr(args[1])}))"
        if name == "coalesce" and args:
            text = self.expr(args[-1])
            for arg in reversed(args[:-1]):
                value = self.expr(arg)
                text = f"({value} if {value} is not none else {text})"
            return text
        if name == "if" and len(args) == 3:
            return f"({self.expr(args[1])} if {self.expr(args[0])} else {self.expr(args[2])})"
        if name == "utcNow" and not args:
            self.approximate.append("utcNow() became run.logical_time, the instant the run was scheduled for")
            return "run.logical_time"
        raise Untranslatable(f"{name}() has no Taskloom equivalent")


def to_jinja(expression: str, ctx: Context, approximate: list[str] | None = None) -> str:
    """A Jinja expression for one Logic Apps expression (without ``@``); raises :class:`Untranslatable`."""
    translator = _Translator(ctx)
    text = translator.expr(parse(expression))
    if approximate is not None:
        approximate.extend(translator.approximate)
    return text


def _strip_parens(text: str) -> str:
    """``(a == b)`` -> ``a == b`` when the parentheses enclose the whole expression."""
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, char in enumerate(text):
            depth += char == "("
            depth -= char == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1]
    return text


def _interpolations(text: str) -> list[tuple[bool, str]]:
    """``"a @{x} b"`` -> ``[(False, "a "), (True, "x"), (False, " b")]``; ``@@`` is a literal ``@``."""
    parts: list[tuple[bool, str]] = []
    buf, i = "", 0
    while i < len(text):
        if text.startswith("@@", i):
            buf += "@"
            i += 2
        elif text.startswith("@{", i):
            depth, j, quoted = 1, i + 2, False
            while j < len(text) and depth:
                char = text[j]
                if char == "'":
                    quoted = not quoted
                elif not quoted:
                    depth += char == "{"
                    depth -= char == "}"
                j += 1
            if depth:
                raise Untranslatable("an @{ without its closing }")
            if buf:
                parts.append((False, buf))
                buf = ""
            parts.append((True, text[i + 2:j - 1]))
            i = j
        else:
            buf += text[i]
            i += 1
    if buf:
        parts.append((False, buf))
    return parts


def translate_string(text: str, ctx: Context) -> Translation:
    """One string of a definition as a template, or verbatim (as literal text) with the reason."""
    result = Translation(text)
    try:
        if text.startswith("@") and not text.startswith("@@") and not text.startswith("@{"):
            result.value = "{{ " + _strip_parens(to_jinja(text[1:], ctx, result.approximate)) + " }}"
            return result
        if "@" not in text:
            result.value = literal(text)
            return result
        out = []
        for is_expression, part in _interpolations(text):
            out.append("{{ " + _strip_parens(to_jinja(part, ctx, result.approximate)) + " }}" if is_expression
                       else literal(part))
        result.value = "".join(out)
    except Untranslatable as exc:
        result.value = literal(text)
        result.verbatim.append(f"{text!r}: {exc}")
        result.approximate.clear()
    return result


def translate_value(value: Any, ctx: Context) -> Translation:
    """Every string inside a JSON value translated (:func:`translate_string`); keys are kept."""
    result = Translation(None)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            one = translate_string(item, ctx)
            result.verbatim += one.verbatim
            result.approximate += one.approximate
            return one.value
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    result.value = walk(value)
    return result


_CONDITIONS = {"and": "and", "or": "or"}
_COMPARISONS = {"equals": "==", "greater": ">", "greaterOrEquals": ">=", "less": "<", "lessOrEquals": "<="}


def _operand(value: Any, ctx: Context, approximate: list[str]) -> str:
    if isinstance(value, str):
        if value.startswith("@") and not value.startswith("@@") and not value.startswith("@{"):
            return to_jinja(value[1:], ctx, approximate)
        if "@{" in value:
            parts = [to_jinja(p, ctx, approximate) if e else _string_literal(p) for e, p in _interpolations(value)]
            return "(" + " ~ ".join(parts) + ")"
        return _string_literal(value.replace("@@", "@"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return repr(value)
    raise Untranslatable(f"operand {value!r} is not a value Taskloom can compare")


def _structured(node: Any, ctx: Context, approximate: list[str]) -> str:
    if not isinstance(node, dict) or len(node) != 1:
        raise Untranslatable("a condition must be an object with one operator")
    (op, args), = node.items()
    if op in _CONDITIONS and isinstance(args, list) and args:
        return "(" + f" {_CONDITIONS[op]} ".join(_structured(a, ctx, approximate) for a in args) + ")"
    if op == "not":
        inner = args[0] if isinstance(args, list) and len(args) == 1 else args
        return f"(not {_structured(inner, ctx, approximate)})"
    if op in _COMPARISONS and isinstance(args, list) and len(args) == 2:
        a, b = (_operand(x, ctx, approximate) for x in args)
        return f"({a} {_COMPARISONS[op]} {b})"
    if op == "contains" and isinstance(args, list) and len(args) == 2:
        a, b = (_operand(x, ctx, approximate) for x in args)
        return f"({b} in {a})"
    raise Untranslatable(f"condition operator {op!r} has no Taskloom equivalent")


def translate_condition(expression: Any, ctx: Context) -> Translation:
    """An ``If`` expression (a string or Logic Apps' structured form) as a Jinja expression.

    ``value`` is None when it does not translate (``verbatim`` says why).
    """
    result = Translation(None)
    try:
        if isinstance(expression, str):
            text = expression[1:] if expression.startswith("@") else expression
            if expression.startswith("@{"):
                text = expression[2:-1] if expression.endswith("}") else text
            result.value = _strip_parens(to_jinja(text, ctx, result.approximate))
        else:
            result.value = _strip_parens(_structured(expression, ctx, result.approximate))
    except Untranslatable as exc:
        result.verbatim.append(str(exc))
        result.value = None
    return result
