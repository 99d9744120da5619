"""Settings page: secrets, configuration values and the scheduler's status.

* **Secrets**: names with when they were created and updated; set a value
  (a password field, emptied after saving: a value is never shown again, not
  even to whoever set it) and delete one after a confirmation tick.
* **Configuration**: every known key of :data:`taskloom.storage.config.KEYS` with its
  value (stored or default), type and meaning; set one from text (parsed as
  ``taskloom config set`` does) or unset it back to its default.
* **Notification channels**: the default webhook URL (``notify.webhook_url``)
  and the SMTP settings (``smtp.*``), each with a "send test message" button.
* **Allowed file roots**: the roots in effect (stored ``file_roots`` plus
  ``$TASKLOOM_FILE_ROOTS``; the scheduler's working directory is allowed too,
  but the app does not know it) with add and remove.
* **Scheduler**: who holds the scheduler lease (host, pid, version), when it
  last renewed it (its heartbeat) and whether it is still live.

Everything but the scheduler's status is for admins (when the home has
accounts): other roles do not see it, and each change checks the role again.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import time
from datetime import datetime, timezone
from email.utils import formatdate, make_msgid
from typing import Any

import httpx
import streamlit as st

from taskloom.core.mail import SMTP_KEYS, addresses, build_email, deliver, message_domain
from taskloom.storage.config import KEYS, Config, ConfigError, smtp_settings
from taskloom.storage.scheduling import lease_info
from taskloom.storage.secrets import NAME_RULE, SecretError, SecretStore
from taskloom.core.access import Action
from taskloom.ui.web.auth import allowed, authorize
from taskloom.ui.web.state import flash, show_error, show_flashes, workspace


def _utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _store() -> SecretStore:
    ws = workspace()
    return SecretStore(ws.db, ws.home)


# -- secrets ---------------------------------------------------------------------


def _set_secret() -> None:
    name = (st.session_state.get("secret_name") or "").strip()
    value = st.session_state.get("secret_value") or ""
    if authorize("secret set", f"secret {name}") is None:
        st.session_state["secret_value"] = ""
        return
    try:
        new = _store().set(name, value)
        workspace().audit("secret set", f"secret {name}", detail="created" if new else "replaced")
    except SecretError as exc:
        show_error(exc)
        return
    finally:
        # the value leaves the session at once, stored or not: it is never sent back to a browser
        st.session_state["secret_value"] = ""
    st.session_state["secret_name"] = ""
    flash(f"secret {name} {'stored' if new else 'replaced'}; templates read it as {{{{ secrets.{name} }}}}")


def _delete_secret() -> None:
    name = st.session_state.get("secret_delete_name")
    if not name:
        return
    if authorize("secret delete", f"secret {name}") is None:
        return
    if not st.session_state.get("secret_delete_confirm"):
        flash(f"tick 'yes, delete {name}' first", "warning")
        return
    try:
        _store().delete(name)
        workspace().audit("secret delete", f"secret {name}")
    except SecretError as exc:
        show_error(exc)
        return
    st.session_state["secret_delete_confirm"] = False
    flash(f"secret {name} deleted")


def render_secrets() -> None:
    st.subheader("Secrets")
    st.caption("Values are encrypted in the database, with the key in secret.key next to it; "
               "they are used by runs and masked in their logs, and never shown here.")
    try:
        rows = _store().list()
    except SecretError as exc:
        show_error(exc, now=True)
        rows = []
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.caption("No secrets stored.")

    with st.container(border=True):
        st.markdown("**Set a secret**")
        name_col, value_col = st.columns(2)
        name_col.text_input("Name", key="secret_name", help=NAME_RULE)
        value_col.text_input("Value", key="secret_value", type="password",
                             help="Stored encrypted; it is not shown again. "
                                  "Setting an existing name replaces its value.")
        st.button("Save secret", key="secret_save", on_click=_set_secret)

    if rows:
        with st.container(border=True):
            st.markdown("**Delete a secret**")
            names = [r["name"] for r in rows]
            name = st.selectbox("Secret", names, key="secret_delete_name")
            confirmed = st.checkbox(f"yes, delete {name}", key="secret_delete_confirm",
                                    help="Runs that use it will fail until it is set again")
            st.button("Delete secret", key="secret_delete", disabled=not confirmed, on_click=_delete_secret)


# -- configuration ---------------------------------------------------------------


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "string" and isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _set_config(key: str) -> None:
    text = st.session_state.get(f"cfg_in_{key}")
    if text is None or text == "":
        flash(f"{key}: enter a value, or use Unset to go back to the default", "warning")
        return
    if authorize("config set", f"config {key}") is None:
        return
    try:
        value = Config(workspace().db).set_text(key, text)
        workspace().audit("config set", f"config {key}", detail=json.dumps(value)[:200])
    except ConfigError as exc:
        show_error(exc)
        return
    flash(f"{key} set to {json.dumps(value, ensure_ascii=False)}")


def _unset_config(key: str) -> None:
    if authorize("config unset", f"config {key}") is None:
        return
    try:
        Config(workspace().db).unset(key)
        workspace().audit("config unset", f"config {key}")
    except ConfigError as exc:
        show_error(exc)
        return
    st.session_state[f"cfg_in_{key}"] = ""
    flash(f"{key} unset: back to its default {json.dumps(KEYS[key].default)}")


def render_config() -> None:
    st.subheader("Configuration")
    st.caption("Read by tasks and the scheduler; the same values as 'taskloom config'. Text is read as JSON when "
               "it parses as the key's type (numbers, true/false, [\"a\", \"b\"]), otherwise as plain text. "
               "The table shows the values in effect (file_roots includes $TASKLOOM_FILE_ROOTS).")
    db = workspace().db
    items = Config(db).items()
    stored = Config(db).stored()
    st.dataframe(
        [{"key": i["key"], "value": _shown(i["value"], i["type"]), "set": "set" if i["set"] else "default",
          "type": i["type"], "description": i["description"]} for i in items],
        hide_index=True,
    )
    for item in items:
        key = item["key"]
        with st.container(border=True):
            label, field, set_col, unset_col = st.columns([3, 4, 1, 1], vertical_alignment="bottom")
            label.markdown(f"**{key}** · {item['type']}")
            label.caption(item["description"])
            if f"cfg_in_{key}" not in st.session_state and key in stored:
                # the stored value, not the effective one (file_roots adds $TASKLOOM_FILE_ROOTS, never stored)
                st.session_state[f"cfg_in_{key}"] = _shown(stored[key], item["type"])
            default = KEYS[key].default
            field.text_input(key, key=f"cfg_in_{key}", label_visibility="collapsed",
                             placeholder=f"default: {_shown(default, item['type']) or 'not set'}")
            set_col.button("Set", key=f"cfg_set_{key}", on_click=_set_config, args=(key,))
            unset_col.button("Unset", key=f"cfg_unset_{key}", on_click=_unset_config, args=(key,),
                             disabled=not item["set"])



# -- notification channels -------------------------------------------------------

TEST_TEXT = "Taskloom test message"
WEBHOOK_TEST_TIMEOUT = 10.0


def send_test_webhook(url: str) -> str:
    """POST the test message to ``url``; the outcome as text. Raises httpx.HTTPError or ValueError."""
    reply = httpx.post(url, json={"text": TEST_TEXT}, timeout=WEBHOOK_TEST_TIMEOUT)
    if reply.status_code >= 400:
        raise ValueError(f"{url} answered {reply.status_code} {reply.reason_phrase}: {reply.text[:200]}")
    return f"{url} answered {reply.status_code} {reply.reason_phrase}"


def send_test_email(to: str) -> str:
    """Send the test message to ``to`` with the smtp.* settings (password from smtp.password_secret).

    The same settings and SMTP conversation as the ``notify`` task's (:mod:`taskloom.core.mail`).
    """
    recipients = addresses(to)
    if not recipients:
        raise ValueError("enter the address to send the test message to")
    ws = workspace()
    settings = smtp_settings(Config(ws.db), SecretStore(ws.db, ws.home).get)
    mail = build_email(settings, recipients, [], TEST_TEXT, f"{TEST_TEXT}: the SMTP settings of Taskloom work.",
                       date=formatdate(localtime=True), message_id=make_msgid(domain=message_domain(settings)))
    refused = deliver(settings, mail, recipients, smtp=smtplib, tls=ssl.create_default_context(),
                      timeout=settings.timeout)
    if refused:
        raise ValueError(f"the server refused: {', '.join(refused)}")
    return f"test message sent to {', '.join(recipients)} via {settings.server}"


def _error_text(exc: Exception) -> str:
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return f"{type(exc).__name__}: {text}" if isinstance(exc, (OSError, smtplib.SMTPException, httpx.HTTPError)) \
        else text


def _save_webhook_url() -> None:
    url = (st.session_state.get("notify_webhook_url") or "").strip()
    if authorize("config set", "config notify.webhook_url") is None:
        return
    try:
        if url:
            Config(workspace().db).set("notify.webhook_url", url)
        else:
            Config(workspace().db).unset("notify.webhook_url")
    except ConfigError as exc:
        show_error(exc)
        return
    workspace().audit("config set" if url else "config unset", "config notify.webhook_url", detail=url[:200])
    flash(f"notify.webhook_url set to {url}" if url else "notify.webhook_url unset")


def _test_webhook() -> None:
    if authorize("test message", "webhook") is None:
        return
    url = (st.session_state.get("notify_webhook_url") or "").strip() or Config(workspace().db).get(
        "notify.webhook_url")
    if not url:
        st.session_state["notify_webhook_result"] = ("warning", "enter a webhook URL first")
        return
    try:
        st.session_state["notify_webhook_result"] = ("success", send_test_webhook(url))
    except Exception as exc:  # noqa: BLE001 - every failure is shown
        st.session_state["notify_webhook_result"] = ("error", f"webhook test to {url} failed: {_error_text(exc)}")


def _test_email() -> None:
    if authorize("test message", "email") is None:
        return
    to = (st.session_state.get("notify_smtp_to") or "").strip()
    try:
        st.session_state["notify_smtp_result"] = ("success", send_test_email(to))
    except Exception as exc:  # noqa: BLE001 - every failure is shown
        st.session_state["notify_smtp_result"] = ("error", f"test email failed: {_error_text(exc)}")


def render_notifications() -> None:
    st.subheader("Notification channels")
    config = Config(workspace().db)
    with st.container(border=True):
        st.markdown("**Webhook**")
        st.caption("notify.webhook_url: the test POSTs {\"text\": \"Taskloom test message\"} (10 s timeout).")
        if "notify_webhook_url" not in st.session_state:
            st.session_state["notify_webhook_url"] = config.get("notify.webhook_url") or ""
        st.text_input("Default webhook URL", key="notify_webhook_url", placeholder="https://hooks.example.com/...")
        save_col, test_col = st.columns(2)
        save_col.button("Save webhook URL", key="notify_webhook_save", on_click=_save_webhook_url)
        test_col.button("Send test message", key="notify_webhook_test", on_click=_test_webhook)
        result = st.session_state.pop("notify_webhook_result", None)
        if result:
            getattr(st, result[0])(result[1])
    with st.container(border=True):
        st.markdown("**Email (SMTP)**")
        st.caption("Change these under Configuration below (the smtp.* keys); the password is the secret "
                   "named by smtp.password_secret.")
        st.dataframe([{"key": k, "value": _shown(config.get(k), KEYS[k].type)} for k in SMTP_KEYS],
                     hide_index=True, key="notify_smtp_table")
        st.text_input("Send a test message to", key="notify_smtp_to", placeholder="you@example.com")
        st.button("Send test email", key="notify_smtp_test", on_click=_test_email)
        result = st.session_state.pop("notify_smtp_result", None)
        if result:
            getattr(st, result[0])(result[1])


# -- file roots ------------------------------------------------------------------


def _stored_roots() -> list[str]:
    """The roots stored in ``file_roots`` (not those of ``$TASKLOOM_FILE_ROOTS``)."""
    return list(Config(workspace().db).stored().get("file_roots", []))


def _add_root() -> None:
    path = (st.session_state.get("roots_new") or "").strip()
    if authorize("config set", "config file_roots") is None:
        return
    if not path:
        flash("enter a folder to add", "warning")
        return
    roots = _stored_roots()
    if path in roots:
        flash(f"{path} is already an allowed root", "warning")
        return
    Config(workspace().db).set("file_roots", [*roots, path])
    workspace().audit("config set", "config file_roots", detail=f"added {path}"[:200])
    st.session_state["roots_new"] = ""
    st.session_state.pop("cfg_in_file_roots", None)
    flash(f"file root {path} added" + ("" if os.path.isdir(os.path.expanduser(path)) else
                                       " (it does not exist on this machine)"))


def _remove_root() -> None:
    path = st.session_state.get("roots_remove")
    if authorize("config set", "config file_roots") is None:
        return
    roots = _stored_roots()
    if path not in roots:
        return
    roots.remove(path)
    config = Config(workspace().db)
    if roots:
        config.set("file_roots", roots)
    else:
        config.unset("file_roots")
    workspace().audit("config set", "config file_roots", detail=f"removed {path}"[:200])
    st.session_state.pop("cfg_in_file_roots", None)
    flash(f"file root {path} removed")


def render_file_roots() -> None:
    st.subheader("Allowed file roots")
    st.caption("Folders file tasks may read and write. The scheduler's working directory is allowed too; "
               "the app does not know it, so it is not listed.")
    stored = _stored_roots()
    env = [p for p in os.environ.get("TASKLOOM_FILE_ROOTS", "").split(os.pathsep) if p]
    rows = [{"root": p, "from": "file_roots"} for p in stored]
    rows += [{"root": p, "from": "$TASKLOOM_FILE_ROOTS"} for p in env]
    if rows:
        st.dataframe(rows, hide_index=True, key="roots_table")
    else:
        st.caption("No roots besides the working directory.")
    add_in, add_btn = st.columns([4, 1], vertical_alignment="bottom")
    add_in.text_input("Add a folder", key="roots_new", placeholder="/srv/data")
    add_btn.button("Add root", key="roots_add", on_click=_add_root)
    if stored:
        rm_in, rm_btn = st.columns([4, 1], vertical_alignment="bottom")
        rm_in.selectbox("Remove a folder", stored, key="roots_remove")
        rm_btn.button("Remove root", key="roots_remove_btn", on_click=_remove_root)
    if env:
        st.caption("Roots from $TASKLOOM_FILE_ROOTS are set in the environment and cannot be removed here.")


# -- scheduler -------------------------------------------------------------------


def render_scheduler() -> None:
    st.subheader("Scheduler")
    info = lease_info(workspace().db)
    if info is None:
        st.info("No scheduler has run yet: start one with 'taskloom scheduler' or 'taskloom serve'.")
        return
    now = time.time()
    active = info["expires"] > now
    if active:
        st.success(f"Active: {info['holder']} on {info['host']} (pid {info['pid']}), Taskloom {info['version']}; "
                   f"heartbeat (lease renewed) {_utc(info['renewed'])}")
    else:
        st.warning(f"Not running: the last scheduler ({info['holder']} on {info['host']}, pid {info['pid']}) "
                   f"let its lease lapse at {_utc(info['expires'])}; last heartbeat {_utc(info['renewed'])}, "
                   f"Taskloom {info['version']}")
    st.dataframe(
        [{"holder": info["holder"], "host": info["host"], "pid": info["pid"], "version": info["version"],
          "active": active, "lease expires": _utc(info["expires"]), "acquired": _utc(info["acquired"]),
          "last renewed": _utc(info["renewed"]), "takeovers (token)": info["token"]}],
        hide_index=True,
    )


def main() -> None:
    st.title("Settings")
    show_flashes()
    if allowed(Action.SECRETS):
        render_secrets()
    if allowed(Action.CONFIG):
        render_notifications()
        render_file_roots()
        render_config()
    else:
        st.caption("Secrets, notification channels, file roots and the configuration are for admins.")
    render_scheduler()


main()
