"""Forms generated from JSON Schemas: task params, task settings, triggers, workflow settings.

:func:`field_specs` turns a schema's ``properties`` into :class:`FieldSpec` s:

=====================================  =========================================
property                               field
=====================================  =========================================
string                                 text input
string with ``format: code`` / ``sql``  text area labelled as code
string named like ``*secret*``          selectbox of stored secret names + "(none)"
string whose description says secret   text input plus an "insert a secret" picker
integer / number                       number input
boolean                                checkbox
``enum``                               selectbox ("(default: X)" when optional)
array of an ``enum``                   multiselect
string or another type                 text input read as JSON when it is one
object with fixed ``properties``        nested fields, behind a checkbox when optional
object, array, anything else            JSON text area, parsed on change
=====================================  =========================================

:func:`widget_value` and :func:`parse_widget` convert between document values
and widget values (pure); :func:`render_fields` draws the widgets and reports
each change as ``on_set(path, action, value)`` with ``action`` ``"set"`` or
``"remove"``, so only what the user changes is written to the document.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from taskloom.core.issues import json_type

from taskloom.ui.web.designer.docops import default_params

__all__ = [
    "MISSING",
    "UNSET",
    "NO_SECRET",
    "FieldSpec",
    "Change",
    "field_specs",
    "widget_value",
    "parse_widget",
    "field_key",
    "render_fields",
    "get_path",
    "apply_change",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
UNSET = "(not set)"
NO_SECRET = "(none)"
_CODE_LANGUAGE = {"code": "code", "sql": "SQL code"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    path: tuple[str, ...]
    label: str
    help: str
    kind: str  # text | textarea | code | secret | number | bool | enum | multi | smart | json | object
    required: bool = False
    default: Any = MISSING
    options: tuple[Any, ...] = ()
    integer: bool = False
    language: str = ""
    types: tuple[str, ...] = ()
    secret_hint: bool = False
    children: tuple["FieldSpec", ...] = ()
    schema: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Change:
    action: str  # set | remove | error
    value: Any = None
    error: str = ""


def _types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    value = schema.get("type")
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else ()


def _kind(name: str, prop: Mapping[str, Any], depth: int) -> tuple[str, dict[str, Any]]:
    types = _types(prop)
    description = str(prop.get("description", ""))
    extra: dict[str, Any] = {}
    if "enum" in prop:
        return "enum", {"options": tuple(prop["enum"])}
    if types == ("string",):
        if "secret" in name.lower():
            return "secret", extra
        if prop.get("format") in _CODE_LANGUAGE:
            return "code", {"language": _CODE_LANGUAGE[prop["format"]]}
        if name == "description":
            return "textarea", extra
        return "text", {"secret_hint": "secret" in description.lower()}
    if types in (("integer",), ("number",)):
        return "number", {"integer": types == ("integer",)}
    if types == ("boolean",):
        return "bool", extra
    if types == ("array",) and isinstance(prop.get("items"), dict) and "enum" in prop["items"]:
        return "multi", {"options": tuple(prop["items"]["enum"])}
    if (
        types == ("object",)
        and isinstance(prop.get("properties"), dict)
        and prop.get("additionalProperties") is False
        and depth < 2
    ):
        return "object", extra
    if "string" in types and len(types) > 1:
        return "smart", extra
    return "json", extra


def field_specs(
    schema: Mapping[str, Any],
    path: tuple[str, ...] = (),
    *,
    skip: Sequence[str] = (),
    type_names: Sequence[str] = (),
    nested_task_param: str | None = None,
) -> list[FieldSpec]:
    """One :class:`FieldSpec` per property of ``schema``, in the schema's order.

    ``nested_task_param`` names a property holding a task definition (foreach's
    ``task``); its ``type`` becomes a selectbox of ``type_names``.
    """
    required = set(schema.get("required", []))
    specs = []
    for name, prop in (schema.get("properties") or {}).items():
        if name in skip or not isinstance(prop, dict):
            continue
        kind, extra = _kind(name, prop, len(path))
        if path and path[-1] == nested_task_param and name == "type" and type_names:
            kind, extra = "enum", {"options": tuple(type_names)}
        children: tuple[FieldSpec, ...] = ()
        if kind == "object":
            children = tuple(field_specs(prop, (*path, name), type_names=type_names,
                                         nested_task_param=nested_task_param))
        specs.append(
            FieldSpec(
                name=name,
                path=(*path, name),
                label=str(prop.get("title") or name),
                help=str(prop.get("description", "")),
                kind=kind,
                required=name in required,
                default=copy.deepcopy(prop["default"]) if "default" in prop else MISSING,
                types=_types(prop),
                children=children,
                schema=prop,
                **extra,
            )
        )
    return specs


# -- values --------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def widget_value(spec: FieldSpec, value: Any) -> Any:
    """What the widget shows for the document value ``value`` (:data:`MISSING` when the key is absent)."""
    shown = spec.default if value is MISSING else value
    if spec.kind in ("text", "textarea", "code"):
        if isinstance(shown, str):
            return shown
        return "" if shown is MISSING else _dumps(shown)
    if spec.kind == "secret":
        return value if isinstance(value, str) and value else NO_SECRET
    if spec.kind == "number":
        if isinstance(shown, (int, float)) and not isinstance(shown, bool):
            if spec.integer:
                return int(shown) if float(shown).is_integer() else shown
            return float(shown)
        return None
    if spec.kind == "bool":
        return bool(shown) if isinstance(shown, bool) else False
    if spec.kind == "enum":
        return UNSET if value is MISSING else value
    if spec.kind == "multi":
        return list(shown) if isinstance(shown, list) else []
    if spec.kind == "smart":
        if value is MISSING:
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if spec.kind == "json":
        return "" if value is MISSING else _dumps(value)
    return value


def _number(value: float, integer: bool) -> int | float:
    if integer:
        return int(value)
    value = float(value)
    return int(value) if value.is_integer() else value


def parse_widget(spec: FieldSpec, shown: Any) -> Change:
    """The document change for the widget value ``shown``."""
    optional_remove = Change("remove")
    if spec.kind in ("text", "textarea", "code"):
        text = "" if shown is None else str(shown)
        if text == "" and not spec.required:
            return optional_remove
        return Change("set", text)
    if spec.kind == "secret":
        if shown in (None, NO_SECRET, ""):
            return Change("set", "") if spec.required else optional_remove
        return Change("set", str(shown))
    if spec.kind == "number":
        if shown is None:
            return Change("error", error=f"{spec.label} needs a value") if spec.required else optional_remove
        return Change("set", _number(shown, spec.integer))
    if spec.kind == "bool":
        return Change("set", bool(shown))
    if spec.kind == "enum":
        if shown == UNSET:
            return optional_remove
        return Change("set", shown)
    if spec.kind == "multi":
        items = list(shown or [])
        if not items and not spec.required:
            return optional_remove
        return Change("set", items)
    if spec.kind == "smart":
        text = "" if shown is None else str(shown)
        if text.strip() == "":
            return Change("set", "") if spec.required else optional_remove
        try:
            parsed = json.loads(text)
        except ValueError:
            return Change("set", text)
        kind = json_type(parsed)
        allowed = set(spec.types) | ({"integer"} if "number" in spec.types else set())
        if kind != "string" and kind in allowed:
            return Change("set", parsed)
        return Change("set", text)
    if spec.kind == "json":
        text = "" if shown is None else str(shown)
        if text.strip() == "":
            return Change("error", error=f"{spec.label} needs a JSON value") if spec.required else optional_remove
        try:
            return Change("set", json.loads(text))
        except ValueError as exc:
            return Change("error", error=f"{spec.label} is not valid JSON: {exc}")
    return Change("set", shown)


def get_path(values: Any, path: Sequence[str]) -> Any:
    """``values[path[0]][path[1]]...``, or :data:`MISSING`."""
    node = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def apply_change(values: Mapping[str, Any], path: Sequence[str], action: str, value: Any = None) -> dict[str, Any]:
    """A copy of ``values`` with ``path`` set to ``value`` (``"set"``) or deleted (``"remove"``)."""
    out = copy.deepcopy(dict(values))
    node = out
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            if action == "remove":
                return out
            node[part] = {}
        node = node[part]
    if action == "set":
        node[path[-1]] = copy.deepcopy(value)
    elif action == "remove":
        node.pop(path[-1], None)
    return out


# -- widgets -------------------------------------------------------------------


def field_key(prefix: str, path: Sequence[str]) -> str:
    return f"{prefix}:{'.'.join(path)}"


def _label(spec: FieldSpec) -> str:
    return f"{spec.label} *" if spec.required else spec.label


def render_fields(
    specs: Sequence[FieldSpec],
    values: Mapping[str, Any],
    prefix: str,
    on_set: Callable[[tuple[str, ...], str, Any], None],
    *,
    secrets: Sequence[str] = (),
) -> None:
    """Draw the widgets of ``specs`` showing ``values``; each change calls ``on_set(path, action, value)``."""
    import streamlit as st

    def changed(spec: FieldSpec, key: str) -> None:
        change = parse_widget(spec, st.session_state.get(key))
        if change.action == "error":
            st.session_state[key + ":err"] = change.error
            return
        st.session_state.pop(key + ":err", None)
        on_set(spec.path, change.action, change.value)

    def insert_secret(spec: FieldSpec, key: str, picker: str) -> None:
        name = st.session_state.get(picker)
        if name:
            text = "{{ secrets." + name + " }}"
            st.session_state[key] = text
            st.session_state[picker] = ""
            on_set(spec.path, "set", text)

    def object_toggled(spec: FieldSpec, key: str) -> None:
        if st.session_state.get(key):
            on_set(spec.path, "set", default_params(spec.schema))
        else:
            on_set(spec.path, "remove", None)

    def initial(key: str, **kwargs: Any) -> dict[str, Any]:
        # a widget that already has state keeps it (passing a value too makes Streamlit warn)
        return {} if key in st.session_state else kwargs

    for spec in specs:
        key = field_key(prefix, spec.path)
        current = get_path(values, spec.path)
        shown = widget_value(spec, current)
        common = {"key": key, "help": spec.help or None, "on_change": changed, "args": (spec, key)}
        # text fields show their description as the placeholder instead of a help icon, so that the label is
        # the only thing named after the field (a "Help for ..." button would come first in the page)
        typed = {**common, "help": None}
        default_note = "" if spec.default is MISSING else f"default: {json.dumps(spec.default, ensure_ascii=False)}"
        placeholder = " — ".join(p for p in (spec.help, default_note) if p) or None
        label = _label(spec)
        if spec.kind == "text":
            st.text_input(label, placeholder=placeholder, **initial(key, value=shown), **typed)
            if spec.secret_hint and secrets:
                picker = key + ":secret"
                st.selectbox(
                    f"Insert a secret into {spec.label}", ["", *secrets], key=picker,
                    format_func=lambda s: "(pick a stored secret)" if s == "" else s,
                    on_change=insert_secret, args=(spec, key, picker),
                )
        elif spec.kind == "textarea":
            st.text_area(label, height=80, placeholder=placeholder, **initial(key, value=shown), **typed)
        elif spec.kind == "code":
            st.text_area(f"{label} ({spec.language})", height=140, placeholder=placeholder,
                         **initial(key, value=shown), **typed)
        elif spec.kind == "secret":
            options = [NO_SECRET, *secrets]
            if shown not in options:
                options.append(shown)
            st.selectbox(
                label, options, **initial(key, index=options.index(shown)),
                format_func=lambda s: s if s == NO_SECRET or s in secrets else f"{s} (not stored)",
                **common,
            )
        elif spec.kind == "number":
            if spec.integer:
                st.number_input(label, step=1, **initial(key, value=shown), **common)
            else:
                st.number_input(label, format="%g", **initial(key, value=shown), **common)
        elif spec.kind == "bool":
            st.checkbox(label, **initial(key, value=shown), **common)
        elif spec.kind == "enum":
            options = list(spec.options)
            if not spec.required or current is MISSING:
                options.insert(0, UNSET)
            if shown not in options:
                options.append(shown)
            default = spec.default

            def show(option: Any, default: Any = default) -> str:
                if option == UNSET:
                    return "(not set)" if default is MISSING else f"(default: {default})"
                return str(option)

            st.selectbox(label, options, format_func=show, **initial(key, index=options.index(shown)), **common)
        elif spec.kind == "multi":
            options = list(spec.options) + [v for v in shown if v not in spec.options]
            st.multiselect(label, options, **initial(key, default=shown), **common)
        elif spec.kind == "smart":
            st.text_input(f"{label} ({' or '.join(spec.types)})", placeholder=placeholder,
                          **initial(key, value=shown), **typed)
        elif spec.kind == "object":
            present = isinstance(current, dict)
            if not spec.required:
                st.checkbox(f"Set {spec.label}", **initial(key + ":on", value=present), key=key + ":on",
                            help=spec.help or None,
                            on_change=object_toggled, args=(spec, key + ":on"))
            if present or spec.required:
                with st.container(border=True):
                    if spec.required:
                        st.markdown(f"**{spec.label}**")
                    render_fields(spec.children, values, prefix, on_set, secrets=secrets)
            continue
        else:  # json
            st.text_area(f"{label} (JSON)", height=90, placeholder=placeholder, **initial(key, value=shown), **typed)
        error = st.session_state.get(key + ":err")
        if error:
            st.error(error)
