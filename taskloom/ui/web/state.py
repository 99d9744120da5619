"""What the app's pages share: the store of this session, and messages that survive a rerun."""

from __future__ import annotations

import os

import streamlit as st

from taskloom.storage.store import Workspace

__all__ = ["workspace", "flash", "show_flashes"]


def workspace() -> Workspace:
    """This browser session's workspace (``$TASKLOOM_HOME``), opened once per session."""
    ws = st.session_state.get("_taskloom_ws")
    if ws is None:
        ws = Workspace(os.environ.get("TASKLOOM_HOME"))
        st.session_state["_taskloom_ws"] = ws
    return ws


def flash(message: str, kind: str = "success") -> None:
    """Show ``message`` on the next run of the page (after st.rerun or a page switch)."""
    st.session_state.setdefault("_flashes", []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop("_flashes", []):
        getattr(st, kind)(message)
