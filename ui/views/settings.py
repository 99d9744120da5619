"""Settings page: secrets, configuration values and the scheduler's status.

* **Secrets**: names with when they were created and updated; set a value
  (a password field, emptied after saving: a value is never shown again, not
  even to whoever set it) and delete one after a confirmation tick.
* **Configuration**: every known key of :data:`storage.config.KEYS` with its
  value (stored or default), type and meaning; set one from text (parsed as
  ``taskloom config set`` does) or unset it back to its default.
* **Scheduler**: who holds the scheduler lease and whether it is still live.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import streamlit as st

from storage.config import KEYS, Config, ConfigError
from storage.scheduling import lease_info
from storage.secrets import NAME_RULE, SecretError, SecretStore
from ui.webstate import flash, show_flashes, workspace


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
    try:
        new = _store().set(name, value)
    except SecretError as exc:
        flash(str(exc), "error")
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
    if not st.session_state.get("secret_delete_confirm"):
        flash(f"tick 'yes, delete {name}' first", "warning")
        return
    try:
        _store().delete(name)
    except SecretError as exc:
        flash(str(exc), "error")
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
        st.error(str(exc))
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
    try:
        value = Config(workspace().db).set_text(key, text)
    except ConfigError as exc:
        flash(str(exc), "error")
        return
    flash(f"{key} set to {json.dumps(value, ensure_ascii=False)}")


def _unset_config(key: str) -> None:
    try:
        Config(workspace().db).unset(key)
    except ConfigError as exc:
        flash(str(exc), "error")
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
    stored = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM config")}
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
        st.success(f"Active: {info['holder']} on {info['host']} (pid {info['pid']}), Taskloom {info['version']}")
    else:
        st.warning(f"Not running: the last scheduler ({info['holder']} on {info['host']}, pid {info['pid']}) "
                   f"let its lease lapse at {_utc(info['expires'])}")
    st.dataframe(
        [{"holder": info["holder"], "host": info["host"], "pid": info["pid"], "version": info["version"],
          "active": active, "lease expires": _utc(info["expires"]), "acquired": _utc(info["acquired"]),
          "last renewed": _utc(info["renewed"]), "takeovers (token)": info["token"]}],
        hide_index=True,
    )


def main() -> None:
    st.title("Settings")
    show_flashes()
    render_secrets()
    render_config()
    render_scheduler()


main()
