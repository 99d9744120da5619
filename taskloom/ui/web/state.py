"""What the app's pages share: the store of this session, messages that survive a rerun, and how an error reads.

A page that catches a Taskloom exception (:mod:`taskloom.core.errors`) shows it with
:func:`show_error`: its message, then its validation issues and its hint, as one line.
"""

from __future__ import annotations

import os

import streamlit as st

from taskloom.core.errors import TaskloomError
from taskloom.storage.store import Workspace

__all__ = ["workspace", "flash", "show_flashes", "error_text", "show_error"]


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


def error_text(exc: TaskloomError) -> str:
    """An error as a page shows it: ``message: issue; issue`` when it has validation issues, then its hint."""
    text = str(exc)
    issues = getattr(exc, "issues", None)
    if issues:
        text = f"{text}: " + "; ".join(str(i) for i in issues)
    hint = getattr(exc, "hint", "")
    return f"{text} ({hint})" if hint else text


def show_error(exc: TaskloomError, doing: str = "", *, now: bool = False) -> None:
    """Show what went wrong, after ``doing`` ("cannot restore x") when given.

    Flashed on the next run of the page (the usual case: a button's callback), or at once with ``now``.
    """
    text = f"{doing}: {error_text(exc)}" if doing else error_text(exc)
    if now:
        st.error(text)
    else:
        flash(text, "error")
