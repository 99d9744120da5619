"""Where Taskloom keeps its files: ``$TASKLOOM_HOME`` (default ``~/.taskloom``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resolve_home", "database_path"]


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home folder: ``home`` if given, else ``$TASKLOOM_HOME``, else ``~/.taskloom``."""
    if home:
        return Path(home).expanduser()
    env = os.environ.get("TASKLOOM_HOME")
    return Path(env).expanduser() if env else Path.home() / ".taskloom"


def database_path(home: Path) -> Path:
    return home / "taskloom.db"
