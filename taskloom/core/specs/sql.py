"""Built-in task types for databases: ``sql`` (run one statement) and ``sql_copy`` (copy a query's rows).

SQLite files are reached through the standard library; any other database
through a SQLAlchemy URL (the optional extra ``taskloom[sql]`` plus the
database's driver). Which database a task talks to is given by exactly one of
``database`` (a SQLite path) or ``url``; ``sql_copy`` names its target the same
way with ``target_database`` or ``target_url``. The ``oneOf`` branches make
validation report a missing or doubled choice at ``/tasks/N/params``.

Implementations: :mod:`taskloom.runtime.tasks.sql`.
"""

from __future__ import annotations

from typing import Any

from taskloom.core.registry import TaskType

__all__ = ["TYPES", "SQL", "SQL_COPY", "TABLE_PATTERN", "BIND_NAME_PATTERN", "DEFAULT_MAX_ROWS", "DEFAULT_BATCH_SIZE"]

#: ``table`` or ``schema.table``, letters, digits and ``_``; the task quotes it for the database.
TABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"

#: A name usable as a ``:name`` placeholder.
BIND_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

DEFAULT_MAX_ROWS = 1000
DEFAULT_BATCH_SIZE = 1000


def _query(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "title": "Query",
        "description": description,
        "format": "sql",
    }


def _database(title: str, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "title": title, "description": description}


def _url(title: str, role: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "title": title,
        "description": f"SQLAlchemy URL of {role} database, e.g. postgresql+psycopg://user@host/db; needs"
        " pip install 'taskloom[sql]' plus the driver. Keep passwords in a secret: {{ secrets.PG_URL }}.",
    }


_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": BIND_NAME_PATTERN},
    "title": "Parameters",
    "description": "Named values for the query's :name placeholders, sent to the database apart from the SQL"
    " (never pasted into it); values may be templates such as {{ params.since }}.",
    "default": {},
}


SQL = TaskType(
    name="sql",
    title="SQL statement",
    description="Run one SQL statement on a SQLite file or a SQLAlchemy URL; rows (or the row count) are the output.",
    category="Data",
    icon="database",
    entry="taskloom.runtime.tasks.sql:run",
    params_schema={
        "type": "object",
        "required": ["query"],
        "additionalProperties": False,
        "oneOf": [{"required": ["database"]}, {"required": ["url"]}],
        "properties": {
            "query": _query(
                "One SQL statement, e.g. SELECT id, name FROM users WHERE id > :min_id. Writes are committed."
            ),
            "database": _database(
                "SQLite database",
                "Path of a SQLite file; a relative path is resolved against the working directory."
                " A missing file is created.",
            ),
            "url": _url("Database URL", "the"),
            "parameters": _PARAMETERS,
            "max_rows": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_ROWS,
                "title": "Max rows",
                "description": "Rows kept in the output; 'count' still counts them all and 'truncated' says"
                " whether some were left out.",
            },
        },
    },
)

SQL_COPY = TaskType(
    name="sql_copy",
    title="Copy query results",
    description="Copy the rows of a query on one database into a table of another, in one all-or-nothing"
    " transaction.",
    category="Data",
    icon="copy",
    entry="taskloom.runtime.tasks.sql:run_copy",
    params_schema={
        "type": "object",
        "required": ["query", "table"],
        "additionalProperties": False,
        "allOf": [
            {"oneOf": [{"required": ["database"]}, {"required": ["url"]}]},
            {"oneOf": [{"required": ["target_database"]}, {"required": ["target_url"]}]},
        ],
        "properties": {
            "query": _query(
                "The SELECT run on the source, e.g. SELECT id, at, kind FROM events WHERE id > :mark;"
                " its column names are the target's column names."
            ),
            "database": _database(
                "Source SQLite database",
                "Path of the source SQLite file (it must exist); a relative path is resolved against the"
                " working directory.",
            ),
            "url": _url("Source database URL", "the source"),
            "target_database": _database(
                "Target SQLite database",
                "Path of the target SQLite file (created when missing); a relative path is resolved"
                " against the working directory.",
            ),
            "target_url": _url("Target database URL", "the target"),
            "table": {
                "type": "string",
                "pattern": TABLE_PATTERN,
                "maxLength": 128,
                "title": "Target table",
                "description": "Table the rows go into: letters, digits and _, optionally schema.table,"
                " e.g. events or analytics.events.",
            },
            "parameters": _PARAMETERS,
            "create": {
                "type": "boolean",
                "default": True,
                "title": "Create the table",
                "description": "Create the target table when it is missing, with the query's columns"
                " (typed from the first rows).",
            },
            "mode": {
                "type": "string",
                "enum": ["append", "replace"],
                "default": "append",
                "title": "Mode",
                "description": "append: add the rows; replace: delete the table's rows first, in the same"
                " transaction.",
            },
            "batch_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100000,
                "default": DEFAULT_BATCH_SIZE,
                "title": "Batch size",
                "description": "Rows read from the source and inserted into the target at a time.",
            },
        },
    },
)

TYPES: tuple[TaskType, ...] = (SQL, SQL_COPY)
