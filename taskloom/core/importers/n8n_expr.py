"""n8n expressions (``"={{ $json.id }}"``) to Taskloom templates.

A parameter string that starts with ``=`` holds JavaScript inside
``{{ }}``. References to an upstream node's item translate when the node
became a task whose output Taskloom can name:

================================================  ===============================================
n8n                                               Taskloom
================================================  ===============================================
``$json.x``, ``$input.item.json.x``               the one upstream node's output, e.g. ``tasks.Get.output.json.x``
``$('Get').item.json.x``, ``$node["Get"].json.x``  ``tasks.Get.output.json.x``
``$json.body.x`` after a Webhook trigger          ``trigger.payload.x``
``$execution.id``                                 ``run.id``
================================================  ===============================================

Anything else (other JavaScript, ``$now``, methods) keeps the whole string
verbatim, as literal text, and is named in ``Translation.verbatim``.
"""

from __future__ import annotations

import re
from typing import Callable

from taskloom.core.importers.common import literal
from taskloom.core.importers.wdl import Translation, Untranslatable

__all__ = ["Base", "translate_n8n", "to_expression", "is_expression"]

#: the Jinja expression of a node's item JSON, and the first key it needs ("body" after a webhook), or None
Base = Callable[[str], "tuple[str, str | None] | None"]

_PATH = r"((?:\??\.[A-Za-z_$][\w$]*|\[\s*(?:\d+|\"[^\"]*\"|'[^']*')\s*\])*)"
_NODE = r"""(?:\$\(\s*(?P<q1>["'])(?P<n1>.+?)(?P=q1)\s*\)\.(?:item|first\(\)|last\(\)|all\(\)\[0\])"""
_NODE += r"""|\$node\[\s*(?P<q2>["'])(?P<n2>.+?)(?P=q2)\s*\]|\$items\(\s*(?P<q3>["'])(?P<n3>.+?)(?P=q3)\s*\)\[0\])"""
_REFERENCE = re.compile(
    rf"^(?:(?P<json>\$json|\$input\.(?:item|first\(\)|last\(\)|all\(\)\[0\])\.json)|{_NODE}\.json){_PATH}$"
)
_EXECUTION = re.compile(r"^\$execution\.id$")
_STEP = re.compile(r"\??\.([A-Za-z_$][\w$]*)|\[\s*(\d+|\"[^\"]*\"|'[^']*')\s*\]")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_BRACES = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def is_expression(value: object) -> bool:
    """Whether a parameter value is an n8n expression (a string starting with '=')."""
    return isinstance(value, str) and value.startswith("=")


def _steps(path: str) -> list[str | int]:
    out: list[str | int] = []
    for match in _STEP.finditer(path):
        if match[1] is not None:
            out.append(match[1])
        else:
            key = match[2]
            out.append(int(key) if key.isdigit() else key[1:-1])
    return out


def to_expression(js: str, upstream: list[str], base: Base) -> str:
    """A Jinja expression for one JavaScript expression; raises :class:`Untranslatable`."""
    js = js.strip()
    if _EXECUTION.match(js):
        return "run.id"
    match = _REFERENCE.match(js)
    if not match:
        raise Untranslatable(f"{js!r} is JavaScript that has no Taskloom equivalent")
    if match["json"]:
        if len(upstream) != 1:
            raise Untranslatable(f"{js!r}: $json needs exactly one upstream node, this node has {len(upstream)}")
        node = upstream[0]
    else:
        node = match["n1"] or match["n2"] or match["n3"]
    found = base(node)
    if found is None:
        raise Untranslatable(f"{js!r}: the output of node {node!r} has no Taskloom equivalent")
    text, first = found
    steps = _steps(match[len(match.groups())] or "")
    if first is not None:
        if not steps or steps[0] != first:
            raise Untranslatable(f"{js!r}: only .{first} of {node!r} reaches Taskloom")
        steps = steps[1:]
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _IDENT.match(step):
            text += f".{step}"
        else:
            text += "['" + step.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return text


def translate_n8n(value: str, upstream: list[str], base: Base) -> Translation:
    """One parameter string as a template; verbatim (literal text) with the reason when it does not translate."""
    result = Translation(value)
    if not is_expression(value):
        result.value = literal(value)
        return result
    text = value[1:]
    out, last = [], 0
    try:
        for match in _BRACES.finditer(text):
            out.append(literal(text[last:match.start()]))
            out.append("{{ " + to_expression(match[1], upstream, base) + " }}")
            last = match.end()
        out.append(literal(text[last:]))
    except Untranslatable as exc:
        result.value = literal(value)
        result.verbatim.append(str(exc))
        return result
    result.value = "".join(out)
    return result
