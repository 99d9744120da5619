"""Audit: who did what, to what, when and from where, newest first (admins only).

The rows of :mod:`taskloom.storage.audit`, filtered by user, workflow, action
and a first day, in pages of :data:`PAGE` (``Older`` pages back by row id, so
rows written meanwhile never shift a page). The same trail as ``taskloom
audit`` and ``GET /audit``.
"""

from __future__ import annotations

from datetime import date, datetime, time as clock_time, timezone
from typing import Any

import streamlit as st

from taskloom.core.access import Action, Forbidden, check
from taskloom.storage.audit import AuditEntry, entries
from taskloom.ui.web.auth import signed_in
from taskloom.ui.web.state import show_error, workspace

PAGE = 100
#: the actions Taskloom records, offered in the filter (any other name can still be typed as "other")
KNOWN_ACTIONS = ("login", "logout", "save", "import", "restore", "delete", "trigger", "cancel", "rerun",
                 "resume run", "pause", "resume", "secret set", "secret delete", "config set", "config unset",
                 "user add", "user remove", "user set-role", "token create", "token revoke")
ANY = "(any)"
CURSOR = "audit_before"  # None, or the smallest id of the page shown before this one


def since_epoch(day: date | None) -> float | None:
    """The start of ``day`` (UTC) as epoch seconds; None for no day."""
    if day is None:
        return None
    return datetime.combine(day, clock_time(0, 0), tzinfo=timezone.utc).timestamp()


def rows(found: list[AuditEntry]) -> list[dict[str, Any]]:
    """The table's rows: the entry's fields with the time as ISO 8601 UTC."""
    return [e.to_dict() for e in found]


def _reset() -> None:
    st.session_state[CURSOR] = None


def _filters() -> dict[str, Any]:
    cols = st.columns(4)
    user = cols[0].text_input("User", key="audit_user", on_change=_reset, placeholder="any user").strip()
    workflow = cols[1].text_input("Workflow", key="audit_workflow", on_change=_reset,
                                  placeholder="any workflow").strip()
    action = cols[2].selectbox("Action", [ANY, *KNOWN_ACTIONS], key="audit_action", on_change=_reset)
    day = cols[3].date_input("Since (UTC)", value=None, key="audit_since", on_change=_reset)
    return {"user": user or None, "workflow": workflow or None, "action": None if action == ANY else action,
            "since": since_epoch(day)}


def main() -> None:
    st.title("Audit trail")
    ws = workspace()
    who = signed_in(ws)
    if who is None:  # the app's login runs first; this page never shows without it
        st.error("log in first")
        return
    try:
        check(who, Action.AUDIT)
    except Forbidden as exc:
        show_error(exc, now=True)
        return
    st.caption("Every login, change, run started and refusal, newest first; nothing in it is ever changed or "
               "removed. The same rows as 'taskloom audit' and GET /audit.")
    filters = _filters()
    before = st.session_state.get(CURSOR)
    found = entries(ws.db, **filters, before_id=before, limit=PAGE + 1)
    more, found = len(found) > PAGE, found[:PAGE]
    if not found:
        st.info("No audit rows match." if any(filters.values()) or before else "No audit rows yet.")
    else:
        st.dataframe(rows(found), hide_index=True, key="audit_table")
    left, right = st.columns(2)
    if before is not None:
        left.button("Newest", key="audit_newest", on_click=_reset, icon=":material/first_page:")
    if more:
        right.button("Older", key="audit_older", icon=":material/navigate_next:",
                     on_click=lambda: st.session_state.__setitem__(CURSOR, found[-1].id))


main()
