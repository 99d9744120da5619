"""Where Taskloom keeps its files: ``$TASKLOOM_HOME`` (default ``~/.taskloom``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resolve_home", "database_path", "resolve_database", "DATABASE_URL_ENV"]

#: The environment variable that points every command at a PostgreSQL store (``--database`` wins over it).
DATABASE_URL_ENV = "TASKLOOM_DATABASE_URL"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home folder: ``home`` if given, else ``$TASKLOOM_HOME``, else ``~/.taskloom``."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get("TASKLOOM_HOME")
    return Path(env).expanduser() if env else Path.home() / ".taskloom"


def database_path(home: Path) -> Path:
    return home / "taskloom.db"


def resolve_database(home: Path, database: str | os.PathLike[str] | None = None) -> str | Path:
    """The store a command works on: ``database`` if given, else ``$TASKLOOM_DATABASE_URL``, else ``HOME/taskloom.db``.

    A ``postgresql://`` URL stays a string; anything else is the path of a
    SQLite file. Raises ``ValueError`` (with what to give instead) for a URL of another kind.
    """
    value = database if database else os.environ.get(DATABASE_URL_ENV) or None
    if value is None:
        return database_path(home)
    text = os.fspath(value)
    if text.startswith(("postgresql://", "postgres://")):
        return text
    if "://" in text:
        where = "--database" if database else DATABASE_URL_ENV
        raise ValueError(f"{where}={text!r} names no database Taskloom can use: give a postgresql:// URL"
                         " (postgresql://USER@HOST/DB) or the path of a SQLite file")
    return Path(text).expanduser()


def files_folder(home: Path) -> Path:
    """``HOME/files``: a folder every workflow may use for its own files (``{{ run.home }}/files``).

    File tasks may always touch it, unlike the home itself, which holds the
    database and the secret key. Created on first use.
    """
    folder = Path(home) / "files"
    if not folder.is_dir():  # checked first: mkdir(exist_ok=True) raises and catches on every run
        folder.mkdir(parents=True, exist_ok=True)
    return folder
