"""Triggers in the designer: a plain-language cron describer, next firings, webhook URLs, and the panel.

The describer covers the common shapes (every N minutes, hourly at :MM,
daily at HH:MM, weekdays, days of the month, months, lists, ranges, steps and
the ``@daily``-style aliases); anything else is described field by field. The
raw expression is always shown next to it.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote

from taskloom.core.errors import UserMistake
from taskloom.core.firing import FiringError, next_firings
from taskloom.core.model import Trigger
from taskloom.core.schema import TRIGGER_TYPES, WORKFLOW_SCHEMA

from taskloom.ui.web.designer.docops import is_identifier
from taskloom.ui.web.designer.flowstate import md_escape
from taskloom.ui.web.designer.forms import FieldSpec, apply_change, field_specs, render_fields

__all__ = [
    "TRIGGER_ICONS",
    "WEBHOOK_BASE",
    "describe_cron",
    "trigger_firings",
    "webhook_url",
    "fresh_trigger_id",
    "new_trigger",
    "add_trigger",
    "remove_trigger",
    "rename_trigger",
    "set_trigger_field",
    "trigger_specs",
    "render_triggers",
]

WEBHOOK_BASE = "http://127.0.0.1:8765"

TRIGGER_ICONS = {
    "cron": "🕒", "interval": "🔂", "manual": "✋", "webhook": "🪝",
    "file": "📂", "git": "🔖", "workflow": "⛓️",
}

_TRIGGER_DEFAULTS: dict[str, dict[str, Any]] = {
    "cron": {"cron": "0 * * * *"},
    "interval": {"every": 1, "unit": "hours"},
    "manual": {},
    "webhook": {},
    "file": {"path": ""},
    "git": {"repo": ""},
    "workflow": {"workflow": "", "states": ["succeeded"]},
}

# -- cron ----------------------------------------------------------------------

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["", "January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_DAY_NAMES = {d[:3].lower(): i for i, d in enumerate(_DAYS[:7])}
_MONTH_NAMES = {m[:3].lower(): i for i, m in enumerate(_MONTHS) if m}
_ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


class _Unreadable(UserMistake, ValueError):
    """A cron field token the panel cannot spell out in words."""


def _value(token: str, names: Mapping[str, int]) -> int:
    token = token.strip().lower()
    if token.isdigit():
        return int(token)
    if token in names:
        return names[token]
    raise _Unreadable(token)


def _items(field: str, names: Mapping[str, int]) -> list[tuple[int, int, int]]:
    """``field`` as ``[(first, last, step)]``; ``*`` gives ``[]``."""
    out = []
    for part in field.split(","):
        rng, _, step = part.partition("/")
        step_n = int(step) if step.isdigit() else 1
        if step and not step.isdigit():
            raise _Unreadable(part)
        if rng == "*":
            out.append((-1, -1, step_n))
        elif "-" in rng:
            a, b = rng.split("-", 1)
            out.append((_value(a, names), _value(b, names), step_n))
        else:
            v = _value(rng, names)
            out.append((v, v, step_n))
    return out


def _phrase(field: str, unit: str, show: Callable[[int], str], names: Mapping[str, int] = {}) -> str:
    """A field other than ``*`` in words: ``Monday to Friday``, ``every 15 minutes``, ``9, 12 and 18``."""
    parts = []
    for first, last, step in _items(field, names):
        if first == -1:
            parts.append(f"every {step} {unit}s" if step > 1 else f"every {unit}")
        elif first == last:
            parts.append(show(first))
        elif step > 1:
            parts.append(f"every {step} {unit}s from {show(first)} to {show(last)}")
        else:
            parts.append(f"{show(first)} to {show(last)}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _single(field: str) -> int | None:
    return int(field) if field.isdigit() else None


def describe_cron(expression: str) -> str:
    """A plain-language description of a five-field cron expression ("at 08:00 on Monday to Friday")."""
    text = " ".join(str(expression).split())
    text = _ALIASES.get(text.lower(), text)
    fields = text.split(" ")
    if len(fields) != 5:
        return "not a five-field cron expression (minute hour day-of-month month day-of-week)"
    minute, hour, dom, month, dow = fields
    try:
        m, h = _single(minute), _single(hour)
        if m is not None and h is not None:
            when = f"at {h:02d}:{m:02d}"
        elif minute == "*" and hour == "*":
            when = "every minute"
        elif m is not None and hour == "*":
            when = "every hour" if m == 0 else f"every hour at minute {m}"
        elif m is not None:
            when = f"at minute {m} past hour " + _phrase(hour, "hour", str)
            if hour.startswith("*/"):
                when = f"at minute {m} of " + _phrase(hour, "hour", str)
        elif hour == "*":
            minutes = _phrase(minute, "minute", str)
            when = minutes if minute.startswith("*") else "at minutes " + minutes
        elif h is not None and all(p.isdigit() for p in minute.split(",")):
            when = "at " + _phrase(minute, "minute", lambda v: f"{h:02d}:{v:02d}")
        else:
            when = f"minutes {_phrase(minute, 'minute', str)}, hours {_phrase(hour, 'hour', str)}"
        days = []
        if dom != "*":
            days.append("on day " + _phrase(dom, "day", str) + " of the month")
        if dow != "*":
            days.append("on " + _phrase(dow, "day", lambda v: _DAYS[v] if 0 <= v <= 7 else str(v), _DAY_NAMES))
        out = when
        if days:
            out += " " + " or ".join(days)
        elif h is not None and m is not None:
            out += " every day"
        if month != "*":
            out += " in " + _phrase(month, "month", lambda v: _MONTHS[v] if 1 <= v <= 12 else str(v), _MONTH_NAMES)
        return out
    except (_Unreadable, ValueError, IndexError):
        return f"minute {minute}, hour {hour}, day of month {dom}, month {month}, day of week {dow}"


# -- firings and webhooks ------------------------------------------------------


def _config(trigger: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in trigger.items() if k not in ("id", "type")}


def trigger_firings(trigger: Mapping[str, Any], now: float, count: int = 5) -> tuple[list[dict[str, str]], str | None]:
    """The next ``count`` firings of a cron/interval trigger as rows (local, UTC, moved), or an error message."""
    try:
        firings = next_firings(Trigger(str(trigger.get("id")), str(trigger.get("type")), _config(trigger)), now, count)
    except FiringError as exc:
        return [], str(exc)
    except (ValueError, TypeError, KeyError) as exc:
        return [], f"cannot compute the firings: {exc}"
    rows = []
    for firing in firings:
        local = firing.wall.replace("T", " ")
        utc = datetime.fromtimestamp(firing.instant, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append({"local time": local, "UTC": utc, "DST": f"⚠ moved: {firing.moved}" if firing.moved else ""})
    return rows, None


def webhook_url(workflow: str, trigger_id: str, base: str = WEBHOOK_BASE) -> str:
    return f"{base}/hooks/{quote(str(workflow), safe='')}/{quote(str(trigger_id), safe='')}"


# -- edits ---------------------------------------------------------------------


def fresh_trigger_id(doc: Mapping[str, Any], type_name: str) -> str:
    taken = {t.get("id") for t in doc.get("triggers", [])}
    n = 1
    while f"{type_name}_{n}" in taken:
        n += 1
    return f"{type_name}_{n}"


def new_trigger(doc: Mapping[str, Any], type_name: str) -> dict[str, Any]:
    if type_name not in TRIGGER_TYPES:
        raise ValueError(f"unknown trigger type {type_name!r}")
    return {"id": fresh_trigger_id(doc, type_name), "type": type_name, **copy.deepcopy(_TRIGGER_DEFAULTS[type_name])}


def add_trigger(doc: Mapping[str, Any], type_name: str) -> tuple[dict[str, Any], str]:
    out = copy.deepcopy(dict(doc))
    trigger = new_trigger(out, type_name)
    out.setdefault("triggers", []).append(trigger)
    return out, trigger["id"]


def remove_trigger(doc: Mapping[str, Any], index: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(doc))
    triggers = out.get("triggers", [])
    if 0 <= index < len(triggers):
        del triggers[index]
    return out


def rename_trigger(doc: Mapping[str, Any], index: int, new: str) -> dict[str, Any]:
    triggers = doc.get("triggers", [])
    if not is_identifier(new):
        raise ValueError(f"'{new}' is not a valid trigger id: use letters, digits and '_', not starting with a digit")
    if any(t.get("id") == new for i, t in enumerate(triggers) if i != index):
        raise ValueError(f"there is already a trigger '{new}'")
    out = copy.deepcopy(dict(doc))
    out["triggers"][index]["id"] = new
    return out


def set_trigger_field(
    doc: Mapping[str, Any], index: int, path: Sequence[str], action: str, value: Any
) -> dict[str, Any]:
    out = copy.deepcopy(dict(doc))
    out["triggers"][index] = apply_change(out["triggers"][index], path, action, value)
    return out


def trigger_specs(type_name: str) -> list[FieldSpec]:
    """The form of a trigger type, from the workflow schema (id and type are edited apart)."""
    schema = WORKFLOW_SCHEMA["$defs"].get(f"{type_name}Trigger")
    return field_specs(schema, skip=("id", "type")) if schema else []


# -- panel ---------------------------------------------------------------------


def render_triggers(
    get_doc: Callable[[], dict[str, Any]],
    set_doc: Callable[[dict[str, Any]], None],
    prefix: str,
    *,
    secrets: Sequence[str] = (),
    token_of: Callable[[str], str | None] = lambda trigger_id: None,
    saved: bool = False,
    now: float | None = None,
) -> None:
    """The Triggers panel: add/remove triggers, their fields, cron descriptions, next firings, webhook URLs."""
    import time

    import streamlit as st

    doc = get_doc()
    now = time.time() if now is None else now
    triggers = doc.get("triggers", [])

    def add() -> None:
        new_doc, _ = add_trigger(get_doc(), st.session_state[f"{prefix}:new_type"])
        set_doc(new_doc)

    def remove(index: int) -> None:
        set_doc(remove_trigger(get_doc(), index))

    def renamed(index: int, key: str) -> None:
        try:
            set_doc(rename_trigger(get_doc(), index, str(st.session_state[key]).strip()))
            st.session_state.pop(key + ":err", None)
        except ValueError as exc:
            st.session_state[key + ":err"] = str(exc)

    if not triggers:
        st.caption("No triggers: runs start only by hand (Run now) or through the API.")
    for index, trigger in enumerate(triggers):
        kind = str(trigger.get("type"))
        tid = str(trigger.get("id"))
        base = f"{prefix}:{index}:{tid}"
        with st.expander(f"{TRIGGER_ICONS.get(kind, '❔')} {md_escape(tid)} ({md_escape(kind)})", expanded=True):
            id_key = f"{base}:id"
            st.text_input("Trigger id", value=tid, key=id_key, on_change=renamed, args=(index, id_key))
            if st.session_state.get(id_key + ":err"):
                st.error(st.session_state[id_key + ":err"])

            def on_set(path: tuple[str, ...], action: str, value: Any, index: int = index) -> None:
                set_doc(set_trigger_field(get_doc(), index, path, action, value))

            render_fields(trigger_specs(kind), trigger, f"{base}:f", on_set, secrets=secrets)
            if kind == "cron":
                expression = str(trigger.get("cron", "")).replace("`", "'")
                st.markdown(f"**Runs** {md_escape(describe_cron(expression))} "
                            f"({md_escape(trigger.get('timezone', 'UTC'))}); expression `{expression}`")
            if kind in ("cron", "interval"):
                rows, error = trigger_firings(trigger, now)
                if error:
                    st.error(error)
                elif rows:
                    st.caption("Next five firings")
                    st.table(rows)
                else:
                    st.caption("No upcoming firings (disabled, or past its end).")
            elif kind == "webhook":
                st.caption("POST here to start a run (JSON body = trigger.payload):")
                st.code(webhook_url(str(doc.get("name", "")), tid), language=None)
                if trigger.get("token_secret"):
                    st.caption(f"Bearer token: the value of secret {trigger['token_secret']}.")
                elif trigger.get("secret"):
                    st.caption(f"Signed with secret {trigger['secret']} (X-Hub-Signature-256).")
                else:
                    token = token_of(tid) if saved else None
                    if token:
                        st.caption("Bearer token (Authorization: Bearer ...):")
                        st.code(token, language=None)
                    else:
                        st.caption("A bearer token is generated when the workflow is saved.")
            elif kind == "manual":
                st.caption("Runs only when started by hand (Run now) or through the API.")
            st.button("Remove trigger", key=f"{base}:remove", on_click=remove, args=(index,))
    cols = st.columns([2, 1], vertical_alignment="bottom")
    cols[0].selectbox("New trigger", list(TRIGGER_TYPES), key=f"{prefix}:new_type",
                      format_func=lambda t: f"{TRIGGER_ICONS.get(t, '')} {t}")
    cols[1].button("Add trigger", key=f"{prefix}:add", on_click=add)
