"""The designer's Alerts form (Workflow tab): the ``alerts`` section of ``taskloom/v1``.

Kinds as checkboxes, the late seconds, and the channels (email addresses, a
webhook URL or ``{{ secrets.NAME }}``, the log). Each widget changes only its
own part of the section through the pure functions below, so whatever the
form does not show (an email written as one string, the order of the
channels) is kept exactly, and a document opened and saved without touching
the form is byte-for-byte the same.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Sequence

from taskloom.core.alerts import TIME_TRIGGER_TYPES
from taskloom.core.issues import Issue
from taskloom.core.mail import addresses
from taskloom.core.model import ALERT_KINDS

__all__ = [
    "CHANNEL_KINDS", "KIND_LABELS", "set_enabled", "set_kind", "set_late", "use_default_channels", "add_channel",
    "set_channel", "remove_channel", "channel_text", "render_alerts",
]

CHANNEL_KINDS = ("email", "webhook", "owner", "log")
KIND_LABELS = {
    "failure": "On failure (a run ended failed)",
    "recovery": "On recovery (the first success after failures)",
    "late": "When late (a cron or interval run did not start or finish in time)",
}


def _section(doc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A copy of ``doc`` and its (new, when absent) alerts section, to change in place."""
    out = copy.deepcopy(dict(doc))
    section = out.setdefault("alerts", {})
    if not isinstance(section, dict):
        section = out["alerts"] = {}
    return out, section


def set_enabled(doc: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
    """Add an alerts section (failure and recovery, to the home's channels) or remove it."""
    out = copy.deepcopy(dict(doc))
    if not enabled:
        out.pop("alerts", None)
    elif not isinstance(out.get("alerts"), dict):
        out["alerts"] = {"on": ["failure", "recovery"]}
    return out


def set_kind(doc: Mapping[str, Any], kind: str, on: bool) -> dict[str, Any]:
    """Turn one kind on or off; ``on`` is written out (in the canonical order) from then on."""
    out, section = _section(doc)
    current = section.get("on")
    if not isinstance(current, list):
        current = ["failure", "recovery"] + (["late"] if isinstance(section.get("late"), dict) else [])
    kinds = [k for k in current if k != kind] + ([kind] if on else [])
    section["on"] = [k for k in ALERT_KINDS if k in kinds] + [k for k in kinds if k not in ALERT_KINDS]
    return out


def set_late(doc: Mapping[str, Any], which: str, seconds: float | None) -> dict[str, Any]:
    """Set ``late.start_within`` or ``late.finish_within`` (None removes it, and ``late`` once empty)."""
    out, section = _section(doc)
    late = section.get("late") if isinstance(section.get("late"), dict) else {}
    if seconds is None:
        late.pop(which, None)
    else:
        late[which] = int(seconds) if float(seconds).is_integer() else float(seconds)
    if late:
        section["late"] = late
    else:
        section.pop("late", None)
    return out


def use_default_channels(doc: Mapping[str, Any], default: bool) -> dict[str, Any]:
    """Send to the home's ``alerts.to`` (no ``to``), or to channels of the workflow's own (starting with the log)."""
    out, section = _section(doc)
    if default:
        section.pop("to", None)
    elif not isinstance(section.get("to"), list) or not section["to"]:
        section["to"] = [{"log": True}]
    return out


def _channel(kind: str, text: str, was: Any = None) -> dict[str, Any]:
    if kind == "email":
        found = addresses(text)
        return {"email": found[0] if isinstance(was, str) and len(found) == 1 else found}
    if kind == "webhook":
        return {"webhook": text.strip()}
    return {kind: True}


def add_channel(doc: Mapping[str, Any], kind: str, text: str = "") -> dict[str, Any]:
    """Append a channel: ``email`` (addresses separated by commas), ``webhook`` (URL), ``owner`` or ``log``."""
    out, section = _section(doc)
    to = section.get("to") if isinstance(section.get("to"), list) else []
    section["to"] = [*to, _channel(kind, text)]
    return out


def set_channel(doc: Mapping[str, Any], index: int, text: str) -> dict[str, Any]:
    """Change the addresses or the URL of channel ``index`` (its kind stays)."""
    out, section = _section(doc)
    channel = section["to"][index]
    kind = next((k for k in CHANNEL_KINDS if k in channel), "log")
    section["to"][index] = _channel(kind, text, channel.get(kind))
    return out


def remove_channel(doc: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Remove channel ``index``; without channels left the home's defaults apply again."""
    out, section = _section(doc)
    del section["to"][index]
    if not section["to"]:
        section.pop("to")
    return out


def channel_text(channel: Mapping[str, Any]) -> tuple[str, str]:
    """``(kind, what the form shows)``: the addresses joined by commas, the URL, or '' for the owner and the log."""
    if "email" in channel:
        value = channel["email"]
        return "email", value if isinstance(value, str) else ", ".join(str(v) for v in value or [])
    if "webhook" in channel:
        return "webhook", str(channel["webhook"])
    return ("owner", "") if "owner" in channel else ("log", "")


def render_alerts(get_doc: Callable[[], dict[str, Any]], set_doc: Callable[[dict[str, Any]], None], prefix: str,
                  *, issues: Sequence[Issue] = ()) -> None:
    """The form; every change goes through ``set_doc`` (the page validates the document on each rerun)."""
    import streamlit as st

    doc = get_doc()
    section = doc.get("alerts")
    enabled = isinstance(section, dict)
    st.checkbox("Alerts for this workflow", value=enabled, key=f"{prefix}:enabled",
                on_change=lambda: set_doc(set_enabled(get_doc(), bool(st.session_state[f"{prefix}:enabled"]))),
                help="Without an alerts section, the home's alerts.on configuration decides (taskloom config).")
    if not enabled:
        return
    assert isinstance(section, dict)
    on = section.get("on")
    kinds = on if isinstance(on, list) else ["failure", "recovery", *(["late"] if "late" in section else [])]
    for kind in ALERT_KINDS:
        key = f"{prefix}:on:{kind}"
        st.checkbox(KIND_LABELS[kind], value=kind in kinds, key=key,
                    on_change=lambda kind=kind, key=key: set_doc(set_kind(get_doc(), kind, bool(st.session_state[key]))))
    if "late" in kinds or "late" in section:
        _late_fields(st, get_doc, set_doc, prefix, section, doc)
    _channel_fields(st, get_doc, set_doc, prefix, section)
    for issue in issues:
        if issue.path == "/alerts" or issue.path.startswith("/alerts/"):
            st.warning(f"{issue.path}: {issue.message}" + (f" ({issue.hint})" if issue.hint else ""))


def _late_fields(st: Any, get_doc: Callable[[], dict[str, Any]], set_doc: Callable[[dict[str, Any]], None],
                 prefix: str, section: Mapping[str, Any], doc: Mapping[str, Any]) -> None:
    late = section.get("late") if isinstance(section.get("late"), dict) else {}
    cols = st.columns(2)
    for col, which, label in ((cols[0], "start_within", "Start within (s)"),
                              (cols[1], "finish_within", "Finish within (s)")):
        key = f"{prefix}:late:{which}"
        value = late.get(which)
        col.number_input(label, value=float(value) if isinstance(value, (int, float)) else None, min_value=1.0,
                         step=1.0, key=key, placeholder="not watched",
                         on_change=lambda which=which, key=key: set_doc(set_late(get_doc(), which, st.session_state[key])))
    triggers = doc.get("triggers") if isinstance(doc.get("triggers"), list) else []
    if not any(isinstance(t, dict) and t.get("type") in TIME_TRIGGER_TYPES for t in triggers):
        st.caption("Late alerts watch cron and interval triggers: add one on the Triggers tab.")


def _channel_fields(st: Any, get_doc: Callable[[], dict[str, Any]], set_doc: Callable[[dict[str, Any]], None],
                    prefix: str, section: Mapping[str, Any]) -> None:
    to = section.get("to") if isinstance(section.get("to"), list) else None
    st.checkbox("Send to the home's default channels (alerts.to)", value=to is None, key=f"{prefix}:default_to",
                on_change=lambda: set_doc(use_default_channels(get_doc(),
                                                               bool(st.session_state[f"{prefix}:default_to"]))))
    if to is None:
        return
    for index, channel in enumerate(to):
        if not isinstance(channel, dict):
            continue
        kind, text = channel_text(channel)
        cols = st.columns([4, 1], vertical_alignment="bottom")
        key = f"{prefix}:to:{index}:{kind}"
        if kind in ("log", "owner"):
            cols[0].markdown("**log**: the service log" if kind == "log"
                             else "**owner**: the email address of the workflow owner's account")
        else:
            cols[0].text_input(
                "Email addresses" if kind == "email" else "Webhook URL (or {{ secrets.NAME }})", value=text, key=key,
                on_change=lambda index=index, key=key: set_doc(set_channel(get_doc(), index,
                                                                           str(st.session_state[key]))))
        cols[1].button("Remove", key=f"{prefix}:to:{index}:remove",
                       on_click=lambda index=index: set_doc(remove_channel(get_doc(), index)))
    cols = st.columns([1, 3, 1], vertical_alignment="bottom")
    cols[0].selectbox("New channel", list(CHANNEL_KINDS), key=f"{prefix}:new_kind")
    cols[1].text_input("Addresses or URL", key=f"{prefix}:new_text", placeholder="ops@example.com")
    cols[2].button("Add channel", key=f"{prefix}:add",
                   on_click=lambda: set_doc(add_channel(get_doc(), str(st.session_state[f"{prefix}:new_kind"]),
                                                        str(st.session_state.get(f"{prefix}:new_text") or ""))))
