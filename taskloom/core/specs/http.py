"""Built-in task type ``http``: one HTTP request, its response as the task's output.

The parameter names (``method``, ``url``, ``headers``, ``query``, ``json``,
``body``, ``timeout``, ``expect_status``, ``auth``...) are part of the public
``taskloom/v1`` format. Every property carries a title, a description and,
where one applies, a default, because the browser editor builds its form from
this schema. Rules the form cannot show (``json`` or ``body``, not both; a
username for basic auth) are expressed in the schema too, so validation
reports them at ``/tasks/N/params`` before anything runs.

Only the subset of JSON Schema that :mod:`taskloom.core.fastschema` compiles is used.
"""

from __future__ import annotations

from typing import Any

from taskloom.core.registry import STRING_MAP, TaskType

__all__ = [
    "TYPES", "HTTP", "METHODS", "STATUS_PATTERN", "URL_PATTERN", "SECRET_NAME_PATTERN", "EXPECT_STATUS_SCHEMA",
    "DEFAULT_TIMEOUT", "DEFAULT_MAX_RESPONSE_BYTES",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

#: An http(s) URL, or a value with a template that renders to one (checked again at run time).
URL_PATTERN = r"^(?:https?://[^\s/?#]+[^\s]*|.*\{\{.*)$"

#: One status code or a class of them: "404", "2xx", "20x".
STATUS_PATTERN = r"^[1-5](?:[0-9]{2}|[0-9]x|xx)$"

#: The rule of secret names (``taskloom.storage.secrets``).
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

_STATUS = {"minimum": 100, "maximum": 599, "pattern": STATUS_PATTERN}

EXPECT_STATUS_SCHEMA: dict[str, Any] = {
    "title": "Expected status",
    "description": "Statuses that count as success: a code (404), a class ('2xx', '3xx') or a list of them."
    " Default: any 2xx.",
    "type": ["integer", "string", "array"],
    **_STATUS,
    "minItems": 1,
    "items": {"type": ["integer", "string"], **_STATUS},
    "default": "2xx",
}

_AUTH: dict[str, Any] = {
    "type": "object",
    "title": "Authentication",
    "description": "Credentials from a stored secret, never written in the document:"
    " {\"type\": \"bearer\", \"secret\": \"API_TOKEN\"} or"
    " {\"type\": \"basic\", \"username\": \"me\", \"secret\": \"API_PASSWORD\"}.",
    "required": ["type", "secret"],
    "additionalProperties": False,
    "properties": {
        "type": {
            "title": "Scheme",
            "description": "bearer: 'Authorization: Bearer <secret>'; basic: username and the secret as password.",
            "enum": ["bearer", "basic"],
            "default": "bearer",
        },
        "secret": {
            "type": "string",
            "pattern": SECRET_NAME_PATTERN,
            "title": "Secret",
            "description": "Name of the secret holding the token or password (taskloom secrets set NAME).",
        },
        "username": {
            "type": "string",
            "minLength": 1,
            "title": "Username",
            "description": "Login name for basic authentication.",
        },
    },
    "if": {"properties": {"type": {"const": "basic"}}, "required": ["type"]},
    "then": {
        "required": ["username"],
        "properties": {"username": {"description": "Basic authentication needs a username."}},
    },
}

HTTP = TaskType(
    name="http",
    title="HTTP request",
    description="Call a URL; the response status, headers and body (parsed when JSON) are the output."
    " An unexpected status fails the task; only connection errors, timeouts, 429 and 5xx are retried.",
    category="Connect",
    icon="globe",
    entry="taskloom.runtime.tasks.http:run",
    params_schema={
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "method": {
                "title": "Method",
                "description": "HTTP method.",
                "enum": list(METHODS),
                "default": "GET",
            },
            "url": {
                "type": "string",
                "pattern": URL_PATTERN,
                "title": "URL",
                "description": "An http:// or https:// address, e.g. https://api.example.com/v1/items.",
            },
            "headers": {
                **STRING_MAP,
                "title": "Headers",
                "description": "Request headers, e.g. {\"Accept\": \"application/json\"}. For credentials use 'auth'.",
                "default": {},
            },
            "query": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
                "title": "Query parameters",
                "description": "Added to the URL's query string, e.g. {\"page\": 2, \"q\": \"open\"}.",
                "default": {},
            },
            "json": {
                "title": "JSON body",
                "description": "Any JSON value, sent as the body with Content-Type: application/json.",
            },
            "body": {
                "type": "string",
                "title": "Body",
                "description": "Raw text sent as the body; set a Content-Type header to match.",
                "format": "code",
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "title": "Timeout",
                "description": "Seconds the whole request may take (also capped by the task's timeout).",
                "default": DEFAULT_TIMEOUT,
            },
            "expect_status": EXPECT_STATUS_SCHEMA,
            "auth": _AUTH,
            "follow_redirects": {
                "type": "boolean",
                "title": "Follow redirects",
                "description": "Follow 3xx redirects to the final response.",
                "default": True,
            },
            "max_response_bytes": {
                "type": "integer",
                "minimum": 1,
                "title": "Maximum response size",
                "description": "Bytes of the response body kept in the output; a longer body is cut"
                " and the output says \"truncated\": true.",
                "default": DEFAULT_MAX_RESPONSE_BYTES,
            },
        },
        # json and body are two ways to give the one body: reported at .../params/body
        "if": {"required": ["json"]},
        "then": {
            "properties": {
                "body": {
                    "not": {},
                    "description": "'json' is given too: send either 'json' (encoded as JSON) or 'body' (text),"
                    " not both",
                }
            }
        },
    },
)

TYPES: tuple[TaskType, ...] = (HTTP,)
