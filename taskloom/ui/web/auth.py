"""Who uses the web app: the login, the session's principal and its expiry, and the check before each action.

A home without accounts works as it always has: nobody logs in and the
principal is :data:`~taskloom.core.access.LOCAL_ADMIN`. Once the home has an
account, :func:`gate` shows the login form (and nothing else) until a user
signs in; the session then holds the user's name and when the login ends
(``web.session_hours`` after it, 12 by default). The role is read from the
accounts on every run, so a changed role or a removed user takes effect at
the next click, not at the next login.

Single sign-on (:mod:`taskloom.ui.web.sso`) is the other way in: the
identity provider's user is signed in as the account with that e-mail address.

Widget callbacks run before the page's script (and before :func:`gate`), so
a button a role may not use being hidden is not enough: each handler asks
:func:`authorize` first, which refuses an ended session or a role without
the action, shows why and records the refusal in the audit trail.
"""

from __future__ import annotations

import time
from typing import Callable

import streamlit as st

from taskloom.core.access import LOCAL_ADMIN, AccessError, Action, Forbidden, Principal, check
from taskloom.storage.accounts import Accounts, LoginRefused
from taskloom.storage.audit import record
from taskloom.storage.config import Config, ConfigError
from taskloom.storage.store import Workspace
from taskloom.ui.web import sso
from taskloom.ui.web.state import flash, show_error, workspace

__all__ = ["LOGIN", "ACTIONS", "now", "signed_in", "gate", "authorize", "allowed", "render_identity",
           "session_seconds"]

#: session state: ``{"name", "via", "expires"}`` of the signed-in user (tests set ``expires`` to end a session)
LOGIN = "_taskloom_login"
_ENDED = "_taskloom_login_ended"  # why the last session ended, shown above the login form
_SSO_OUT = "_taskloom_sso_sign_out"  # end the identity provider's session at the next run (logout, expiry)
_SSO_REFUSED = "_taskloom_sso_refused"  # (e-mail, why) of the provider's user refused: recorded once, shown
_SOURCE = "web"

#: what each audited action of the pages needs (:data:`taskloom.core.access.REQUIRED` says which role)
ACTIONS: dict[str, Action] = {
    "save": Action.SAVE, "import": Action.SAVE, "restore": Action.RESTORE, "delete": Action.DELETE,
    "trigger": Action.TRIGGER, "cancel": Action.CANCEL, "rerun": Action.RERUN, "resume run": Action.RERUN,
    "pause": Action.PAUSE, "resume": Action.PAUSE, "secret set": Action.SECRETS, "secret delete": Action.SECRETS,
    "config set": Action.CONFIG, "config unset": Action.CONFIG, "test message": Action.CONFIG,
}

#: the clock of logins and their expiry (tests replace it)
now: Callable[[], float] = time.time


def session_seconds(ws: Workspace) -> float:
    """How long a login lasts: ``web.session_hours`` (12 by default) in seconds."""
    try:
        hours = float(Config(ws.db).get("web.session_hours"))
    except (ConfigError, TypeError, ValueError):
        hours = 12.0
    return hours * 3600.0


def signed_in(ws: Workspace) -> Principal | None:
    """This session's principal: LOCAL_ADMIN without accounts, else the signed-in user, else None.

    An expired login, or one of a user who no longer exists, is forgotten here (and None returned).
    """
    accounts = Accounts(ws.db)
    if not accounts.exist():
        return LOCAL_ADMIN
    entry = st.session_state.get(LOGIN)
    if not entry:
        return None
    if now() >= entry["expires"]:
        _end(f"your session ended after {session_seconds(ws) / 3600:g} hour(s); log in again",
             sso=entry.get("via") == "sso")
        return None
    try:
        return accounts.principal(entry["name"], entry["via"])
    except AccessError:  # the user was removed: the session ends with it
        _end(f"the account {entry['name']} no longer exists; ask an admin")
        return None


def _end(reason: str, *, sso: bool = False) -> None:
    st.session_state.pop(LOGIN, None)
    st.session_state[_ENDED] = reason
    if sso:  # else the provider's cookie would sign the user straight back in
        st.session_state[_SSO_OUT] = True


def _acting(ws: Workspace) -> Principal | None:
    """The principal, set as the workspace's actor (what its audit rows and new runs record)."""
    who = signed_in(ws)
    ws.actor = who
    ws.source = _SOURCE
    return who


def gate() -> Principal:
    """The principal of this session; when nobody is signed in, show the login form and stop the page."""
    ws = workspace()
    if st.session_state.pop(_SSO_OUT, False):
        sso.sign_out()
    elif st.session_state.get(LOGIN) is None:
        _sign_in_with_sso(ws)
    who = _acting(ws)
    if who is not None:
        return who
    _login_form()
    st.stop()
    raise AssertionError("st.stop() returned")  # pragma: no cover


def _login_form() -> None:
    with st.columns([1, 2, 1])[1]:
        _login_fields()


def _login_fields() -> None:
    st.title("Taskloom")
    ended = st.session_state.get(_ENDED)
    if ended:
        st.info(ended)
    refused = st.session_state.pop("_taskloom_login_refused", None)
    with st.form("login", border=True):
        st.markdown("**Log in**")
        st.text_input("User name", key="login_user", autocomplete="username")
        st.text_input("Password", key="login_password", type="password", autocomplete="current-password")
        st.form_submit_button("Log in", key="login_submit", type="primary", on_click=_login)
    if refused:
        st.error(refused)
    sso.render_button()
    sso_refused = st.session_state.get(_SSO_REFUSED)
    if sso_refused:
        st.error(f"single sign-on as {sso_refused[0] or 'this user'} refused: {sso_refused[1]}")
        if st.button("Sign out of single sign-on", key="login_sso_out"):
            st.session_state.pop(_SSO_REFUSED, None)
            sso.sign_out()
    st.caption("Accounts are managed with taskloom users"
               " (an admin adds one with: taskloom users add NAME --role ROLE).")


def _login() -> None:
    """The login form's callback: check the password (rate limited by the accounts), record the attempt."""
    ws = workspace()
    name = str(st.session_state.get("login_user") or "").strip().lower()
    password = str(st.session_state.get("login_password") or "")
    st.session_state["login_password"] = ""  # the password never stays in the session
    if not name or not password:
        st.session_state["_taskloom_login_refused"] = "enter your user name and password"
        return
    at = now()
    try:
        who = Accounts(ws.db).login(name, password, now=at, source=_SOURCE)
    except LoginRefused as exc:
        record(ws.db, name, "login", f"user {name}", result="refused", source=_SOURCE, detail=str(exc), at=at)
        st.session_state["_taskloom_login_refused"] = str(exc)
        return
    st.session_state[LOGIN] = {"name": who.name, "via": who.via, "expires": at + session_seconds(ws)}
    st.session_state.pop(_ENDED, None)
    record(ws.db, who, "login", f"user {who.name}", source=_SOURCE, at=at)


def _sign_in_with_sso(ws: Workspace) -> None:
    """Sign in the identity provider's user of this browser session, when one matches an account."""
    claims = sso.identity()
    if claims is None:
        return
    accounts = Accounts(ws.db)
    if not accounts.exist():
        return
    name, why = sso.account_for(accounts, claims)
    email = str(claims.get("email") or "")
    at = now()
    if name is None:
        if st.session_state.get(_SSO_REFUSED) != (email, why):  # one audit row per refused identity, not per rerun
            st.session_state[_SSO_REFUSED] = (email, why)
            record(ws.db, email or "?", "login", f"user {email}", result="refused", source=_SOURCE,
                   detail=f"single sign-on: {why}", at=at)
        return
    # a reload starts a new session that the provider's cookie signs in again: the session is counted from when
    # the provider signed the user in (the ID token's iat), so reloading never extends it
    expires = _issued(claims, at) + session_seconds(ws)
    if expires <= at:
        _end(f"your session ended after {session_seconds(ws) / 3600:g} hour(s); sign in again", sso=True)
        return
    who = accounts.principal(name, "sso")
    st.session_state[LOGIN] = {"name": who.name, "via": who.via, "expires": expires}
    st.session_state.pop(_ENDED, None)
    st.session_state.pop(_SSO_REFUSED, None)
    record(ws.db, who, "login", f"user {who.name}", source=_SOURCE, detail=f"single sign-on as {email}", at=at)


def _issued(claims: dict, default: float) -> float:
    try:
        return min(float(claims["iat"]), default)
    except (KeyError, TypeError, ValueError):
        return default


def _logout() -> None:
    ws = workspace()
    who = signed_in(ws)
    if who is not None and who is not LOCAL_ADMIN:
        record(ws.db, who, "logout", f"user {who.name}", source=_SOURCE)
    _end("you logged out", sso=who is not None and who.via == "sso")


def render_identity(who: Principal) -> None:
    """In the sidebar: who is signed in, with which role, and the logout button (nothing without accounts)."""
    if who is LOCAL_ADMIN or who.via == "local":
        return
    entry = st.session_state.get(LOGIN) or {}
    left = max(0.0, float(entry.get("expires", 0.0)) - now())
    with st.sidebar:
        st.caption(f"Signed in as **{who.name}** ({who.role.label}); the session ends in {left / 3600:.1f} h")
        st.button("Log out", key="logout", icon=":material/logout:", on_click=_logout)


def allowed(action: Action) -> bool:
    """Whether this session may do ``action`` (to decide what to show; handlers still :func:`authorize`)."""
    who = signed_in(workspace())
    return who is not None and who.can(action)


def authorize(action: str, target: str = "", *, workflow: str | None = None,
              version: int | None = None) -> Workspace | None:
    """The workspace to do ``action`` (an audit action name: "save", "trigger"...) with, acting as the
    signed-in user; None after showing why not: an ended session, or a role that does not allow it (then
    an audit row with result ``refused`` records the attempt)."""
    ws = workspace()
    entry = st.session_state.get(LOGIN)
    who = _acting(ws)
    if who is None:
        name = entry["name"] if entry else "?"
        record(ws.db, name, action, target, workflow=workflow, version=version, result="refused",
               source=_SOURCE, detail="not logged in (the session ended)")
        flash(f"not done: {st.session_state.get(_ENDED) or 'log in first'}", "error")
        return None
    try:
        check(who, ACTIONS[action])
    except Forbidden as exc:
        ws.audit(action, target, workflow=workflow, version=version, result="refused", detail=str(exc))
        show_error(exc, f"not allowed to {action}")
        return None
    return ws
