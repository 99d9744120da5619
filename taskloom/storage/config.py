"""Configuration values kept in the database (``taskloom config``), with environment overrides.

Known keys are declared here with their type, default and meaning, so a typo
is an error ("did you mean 'smtp.host'?") rather than a setting nobody reads.
``TASKLOOM_FILE_ROOTS`` (folders separated by ``os.pathsep``) adds to
``file_roots``.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import sqlite_utils

from taskloom.core.errors import UserMistake
from taskloom.core import alerts, mail
from taskloom.core.fastschema import predicate
from taskloom.core.schema import ALERT_CHANNEL_SCHEMA
from taskloom.core.logtext import (
    DEFAULT_MAX_BYTES_PER_ATTEMPT, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_LINES_PER_ATTEMPT, LogLimits,
)
from taskloom.core.params import type_matches

from taskloom.storage.db import write_txn

__all__ = ["ConfigError", "ConfigKey", "KEYS", "Config", "log_limits", "smtp_settings"]


class ConfigError(UserMistake, ValueError):
    """An unknown key or a value of the wrong type; the message says which and what is expected."""


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str  # a params type: string, integer, number, boolean, array, object
    default: Any
    description: str
    minimum: int | None = None  # the smallest value a number key takes


KEYS: dict[str, ConfigKey] = {
    k.name: k
    for k in (
        ConfigKey("file_roots", "array", [], "Folders file tasks may read and write, besides the working directory."),
        ConfigKey("notify.webhook_url", "string", None,
                  "Default webhook URL of the notification channels (Settings sends test messages to it)."),
        ConfigKey("smtp.host", "string", None, "SMTP server for notify tasks with channel 'email'."),
        ConfigKey("smtp.port", "integer", 25, "SMTP port (465 with smtp.ssl, 587 with smtp.starttls)."),
        ConfigKey("smtp.username", "string", None, "SMTP login name, when the server needs one."),
        ConfigKey("smtp.password_secret", "string", None, "Name of the secret that holds the SMTP password."),
        ConfigKey("smtp.from", "string", "taskloom@localhost", "Sender address of notification mail."),
        ConfigKey("smtp.starttls", "boolean", False, "Upgrade the connection with STARTTLS."),
        ConfigKey("smtp.ssl", "boolean", False, "Connect with TLS from the start (SMTPS)."),
        ConfigKey("smtp.timeout", "number", 30, "Seconds to wait for the SMTP server."),
        ConfigKey("logs.max_line_bytes", "integer", DEFAULT_MAX_LINE_BYTES,
                  "Longest log line stored, in bytes; a longer one is cut and ends with '… [cut N bytes]'."
                  " Also the longest last line a shell task can hand on as its output.", minimum=1),
        ConfigKey("logs.max_lines_per_attempt", "integer", DEFAULT_MAX_LINES_PER_ATTEMPT,
                  "Log lines stored per task attempt; later lines are counted, not stored (the task goes on)"
                  " and a system line says how many.", minimum=1),
        ConfigKey("logs.max_bytes_per_attempt", "integer", DEFAULT_MAX_BYTES_PER_ATTEMPT,
                  "Log bytes stored per task attempt; later lines are counted, not stored (the task goes on)"
                  " and a system line says how many.", minimum=1),
        ConfigKey("alerts.on", "array", [],
                  "Alerts every workflow without an alerts section gets: 'failure' and/or 'recovery'"
                  " (sent to alerts.to)."),
        ConfigKey("alerts.to", "array", [],
                  "Default alert channels, e.g. [{\"email\": [\"ops@example.com\"]}, {\"webhook\": URL},"
                  " {\"owner\": true}, {\"log\": true}]: for alerts sections without 'to', and for alerts.on; empty: the"
                  " workflow's owner and the log."),
        ConfigKey("web.url", "string", None,
                  "The web app's address as its users reach it (e.g. https://taskloom.example.com), for the run"
                  " links in alerts."),
        ConfigKey("web.session_hours", "number", 12,
                  "Hours a login to the web app lasts; then it asks for the password again.", minimum=0),
    )
}


def _key(name: str) -> ConfigKey:
    if name not in KEYS:
        close = difflib.get_close_matches(name, list(KEYS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
        raise ConfigError(f"unknown configuration key {name!r}{hint}")
    return KEYS[name]


def _value(name: str, key: ConfigKey, stored: str | None) -> Any:
    value = key.default if stored is None else json.loads(stored)
    if name == "file_roots":
        extra = [p for p in os.environ.get("TASKLOOM_FILE_ROOTS", "").split(os.pathsep) if p]
        value = [*value, *extra]
    return value


class Config:
    """The ``config`` table."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def get(self, name: str) -> Any:
        return self.get_many(name)[0]

    def get_many(self, *names: str) -> list[Any]:
        """The values of ``names``, in order, read in one query (a run's start and end read several)."""
        keys = [_key(name) for name in names]
        marks = ", ".join("?" * len(names))
        stored = dict(self.db.execute(f"SELECT key, value FROM config WHERE key IN ({marks})", names).fetchall())
        return [_value(name, key, stored.get(name)) for name, key in zip(names, keys)]

    def set(self, name: str, value: Any) -> None:
        key = _key(name)
        if not type_matches(key.type, value):
            raise ConfigError(f"{name} takes a value of type {key.type}, not {json.dumps(value)}")
        if key.minimum is not None and value < key.minimum:
            raise ConfigError(f"{name} must be at least {key.minimum}, not {json.dumps(value)}")
        _check_alert_key(name, value)
        with write_txn(self.db):
            self.db.execute(
                "INSERT INTO config (key, value, updated) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                [name, json.dumps(value), time.time()],
            )

    def set_text(self, name: str, text: str) -> Any:
        """Set from command-line text: JSON when it parses as the key's type, else the text itself."""
        key = _key(name)
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        if key.type == "string" and not isinstance(value, str):
            value = text
        self.set(name, value)
        return value

    def unset(self, name: str) -> None:
        _key(name)
        with write_txn(self.db):
            self.db.execute("DELETE FROM config WHERE key = ?", [name])

    def items(self) -> list[dict[str, Any]]:
        stored = {k for (k,) in self.db.execute("SELECT key FROM config")}
        return [
            {"key": k.name, "value": self.get(k.name), "set": k.name in stored, "type": k.type,
             "description": k.description}
            for k in KEYS.values()
        ]

    def stored(self) -> dict[str, Any]:
        """The values set in the table, by key: no defaults, nothing from the environment (``file_roots``)."""
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM config")}


def _check_alert_key(name: str, value: Any) -> None:
    """``alerts.on`` holds default kinds, ``alerts.to`` channels as in a workflow's ``alerts.to``."""
    if name == "alerts.on":
        problems = alerts.check_default_kinds(value)
        if problems:
            raise ConfigError(f"alerts.on: {'; '.join(problems)}")
    elif name == "alerts.to":
        shaped = predicate(ALERT_CHANNEL_SCHEMA)
        for i, item in enumerate(value):
            if not shaped(item):
                raise ConfigError(f"alerts.to[{i}] is {json.dumps(item)}; each channel is one of"
                                  ' {"email": ["ops@example.com"]}, {"webhook": "https://..."}, {"owner": true},'
                                  ' {"log": true}')
        issues = alerts.check_channels(value, ())
        if issues:
            raise ConfigError("alerts.to: " + "; ".join(f"{i.path[1:]}: {i.message} ({i.hint})" for i in issues))


def log_limits(config: Config) -> LogLimits:
    """The caps on stored log lines that runners of this home apply (``logs.*`` keys)."""
    line, lines, total = config.get_many("logs.max_line_bytes", "logs.max_lines_per_attempt",
                                         "logs.max_bytes_per_attempt")
    return LogLimits(max_line_bytes=line, max_lines_per_attempt=lines, max_bytes_per_attempt=total)


def smtp_settings(config: Config, secret: Callable[[str], str]) -> mail.SmtpSettings:
    """The SMTP settings of this store's configuration (the ``smtp.*`` keys), the password from ``secret(name)``.

    The rules are :func:`taskloom.core.mail.smtp_settings`'s, which raises
    :class:`taskloom.core.mail.MailSettingsError` saying what to set. A key
    that reads None (unset, without a default) takes the rules' fallback, as
    in a task's configuration lookups, so the page's test message and the
    ``notify`` task read the same settings.
    """
    def value(key: str, default: Any) -> Any:
        found = config.get(key)
        return default if found is None else found

    return mail.smtp_settings(value, secret)
