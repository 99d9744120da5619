"""Built-in task type ``notify``: tell people something, by webhook, email or the run's log.

One type with a ``channel`` rather than three types, so switching a workflow
from the demo channel ``log`` to a real one is a one-word change. What each
channel needs is written as JSON Schema ``if``/``then`` (a webhook needs
``url``, an email ``to``), so validation reports a missing one at
``/tasks/N/params`` before anything runs. SMTP settings are configuration
(``taskloom config set smtp.host ...``), not parameters: they belong to the
machine, not to each workflow, and the password is a secret.

Only the subset of JSON Schema that :mod:`taskloom.core.fastschema` compiles is used.
"""

from __future__ import annotations

from typing import Any

from taskloom.core.registry import STRING_MAP, TaskType
from taskloom.core.specs.http import URL_PATTERN

__all__ = ["TYPES", "NOTIFY", "CHANNELS", "DEFAULT_SUBJECT"]

CHANNELS = ("webhook", "email", "log")
DEFAULT_SUBJECT = "Taskloom notification"

_ADDRESSES: dict[str, Any] = {
    "type": ["string", "array"],
    "minLength": 3,
    "minItems": 1,
    "items": {"type": "string", "minLength": 3},
}


def _needs(channel: str, name: str, why: str) -> dict[str, Any]:
    """``if channel == channel then name is required``, with the reason as the hint."""
    return {
        "if": {"properties": {"channel": {"const": channel}}, "required": ["channel"]},
        "then": {"required": [name], "properties": {name: {"description": why}}},
    }


NOTIFY = TaskType(
    name="notify",
    title="Notify",
    description="Send a message: to a webhook (Slack-compatible by default), by email through the configured"
    " SMTP server, or to the run's log.",
    category="Notify",
    icon="bell",
    entry="taskloom.runtime.tasks.notify:run",
    params_schema={
        "type": "object",
        "required": ["message"],
        "additionalProperties": False,
        "properties": {
            "channel": {
                "title": "Channel",
                "description": "webhook: POST to a URL; email: mail through the SMTP server (taskloom config);"
                " log: a line in the run's log (for demos and tests).",
                "enum": list(CHANNELS),
                "default": "log",
            },
            "message": {
                "type": "string",
                "minLength": 1,
                "title": "Message",
                "description": "The text to send; templates welcome, e.g. 'Score {{ tasks.score.output.max }}'.",
            },
            "url": {
                "type": "string",
                "pattern": URL_PATTERN,
                "title": "Webhook URL",
                "description": "Where a webhook is POSTed, e.g. a Slack incoming-webhook URL (channel 'webhook').",
            },
            "payload": {
                "type": "object",
                "title": "Payload",
                "description": "JSON object POSTed to the webhook; default {\"text\": message}, which Slack,"
                " Mattermost and Rocket.Chat accept.",
            },
            "headers": {
                **STRING_MAP,
                "title": "Headers",
                "description": "Extra request headers for the webhook.",
                "default": {},
            },
            "to": {
                **_ADDRESSES,
                "title": "To",
                "description": "Recipient address, or a list of them (channel 'email').",
            },
            "cc": {
                **_ADDRESSES,
                "title": "Cc",
                "description": "Copy recipients: an address or a list of them (channel 'email').",
            },
            "subject": {
                "type": "string",
                "title": "Subject",
                "description": "Subject line of the email.",
                "default": DEFAULT_SUBJECT,
            },
        },
        "allOf": [
            _needs("webhook", "url", "channel 'webhook' needs the URL to POST to"),
            _needs("email", "to", "channel 'email' needs at least one recipient address"),
        ],
    },
)

TYPES: tuple[TaskType, ...] = (NOTIFY,)
