"""The designer's state in ``st.session_state``: the document, what it is compared to, the canvas protocol.

Everything lives in session state, so it survives reruns and page switches
(unsaved edits stay when the user visits another page and comes back).

Keys
----
``designer_doc``       the document being edited (the source of truth)
``designer_base``      canonical JSON of the stored version it started from / was saved as (None: never saved)
``designer_loaded``    ``(name, version)`` of that stored version, or None
``designer_selected``  the selected task id or edge id (``from->to``), or None
``designer_flow``      the flow component's value, as the browser (or a test) sets it
``designer_rev``       revision (timestamp) of the graph last sent to the browser
``designer_sig``       signature of that graph (a change is sent again with a new revision)
``designer_seen``      timestamp of the last component value applied
``designer_acked``     the last revision the browser sent back (it has drawn that graph)
``designer_gen``       generation of the form widgets' keys; bumped when the document is replaced
``designer_open``      set by other pages (then ``st.switch_page``): open this stored workflow
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from taskloom.core.model import canonical_json
from taskloom.storage.workflows import NotFound, get_document, list_workflows
from taskloom.storage.store import Workspace

from taskloom.ui.web.designer import docops, flowstate

__all__ = [
    "FLOW_KEY", "DOC", "BASE", "LOADED", "SELECTED", "REV", "SIG", "SEEN", "GEN", "OPEN",
    "get_doc", "set_doc", "replace_doc", "load_stored", "start_new", "is_unsaved", "prefix",
    "apply_flow_value", "next_revision", "force_push", "stored_version", "QP_SEEN",
]

FLOW_KEY = "designer_flow"
DOC = "designer_doc"
BASE = "designer_base"
LOADED = "designer_loaded"
SELECTED = "designer_selected"
REV = "designer_rev"
SIG = "designer_sig"
SEEN = "designer_seen"
GEN = "designer_gen"
OPEN = "designer_open"
QP_SEEN = "designer_qp"
ACKED = "designer_acked"


def get_doc() -> dict[str, Any]:
    return st.session_state[DOC]


def set_doc(doc: dict[str, Any]) -> None:
    st.session_state[DOC] = doc


def prefix() -> str:
    """Prefix of the form widgets' keys for the current generation."""
    return f"dz{st.session_state.get(GEN, 0)}"


def force_push() -> None:
    """Send the graph to the browser again on this run (positions changed on the Python side)."""
    st.session_state[SIG] = None


def replace_doc(doc: dict[str, Any], base: str | None, loaded: tuple[str, int] | None) -> None:
    """Start editing ``doc`` (new forms, nothing selected, graph sent again)."""
    st.session_state[DOC] = doc
    st.session_state[BASE] = base
    st.session_state[LOADED] = loaded
    st.session_state[SELECTED] = None
    st.session_state[GEN] = st.session_state.get(GEN, 0) + 1
    force_push()


def is_unsaved() -> bool:
    base = st.session_state.get(BASE)
    return base is None or canonical_json(st.session_state[DOC]) != base


def stored_version(ws: Workspace, name: str) -> tuple[str | None, tuple[str, int] | None]:
    """Canonical JSON and ``(name, version)`` of the current stored version of ``name``, or ``(None, None)``."""
    try:
        info, doc = get_document(ws.db, name)
    except NotFound:
        return None, None
    return canonical_json(doc), (name, info.version)


def load_stored(ws: Workspace, name: str) -> bool:
    """Open the current version of a stored workflow; False (and a message) when there is none."""
    from taskloom.ui.web.state import flash, show_error

    try:
        info, doc = get_document(ws.db, name)
    except NotFound as exc:
        show_error(exc)
        return False
    current = st.session_state.get(DOC)
    if current is not None and is_unsaved() and current.get("tasks"):
        flash(f"unsaved changes to '{current.get('name')}' were discarded", "warning")
    replace_doc(doc, canonical_json(doc), (name, info.version))
    return True


def start_new(ws: Workspace) -> None:
    names = [w.name for w in list_workflows(ws.db)]
    replace_doc(docops.new_document(docops.default_name(names)), None, None)


def next_revision(raw_timestamp: Any = None) -> int:
    """A revision newer than both the last one sent and the browser's last timestamp (clocks may differ)."""
    candidates = [int(time.time() * 1000), int(st.session_state.get(REV) or 0) + 1]
    if isinstance(raw_timestamp, (int, float)):
        candidates.append(int(raw_timestamp) + 1)
    return max(candidates)


def apply_flow_value() -> flowstate.FlowUpdate | None:
    """Apply the component's value when it is new and current; None when there is nothing to apply."""
    raw = st.session_state.get(FLOW_KEY)
    if not isinstance(raw, dict):
        return None
    stamp = raw.get("timestamp")
    if stamp == st.session_state.get(SEEN):
        return None
    st.session_state[SEEN] = stamp
    rev = st.session_state.get(REV)
    if not flowstate.is_current(raw, rev, st.session_state.get(ACKED)):
        return None  # from before the browser received the last graph: it is about to be replaced
    if rev in flowstate.revisions(raw):
        st.session_state[ACKED] = rev
    update = flowstate.flow_to_doc(st.session_state[DOC], raw)
    if update.changed:
        st.session_state[DOC] = update.doc
    if update.selected is not None:
        st.session_state[SELECTED] = update.selected
    return update

