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


def files_folder(home: Path) -> Path:
    """``HOME/files``: a folder every workflow may use for its own files (``{{ run.home }}/files``).

    File tasks may always touch it, unlike the home itself, which holds the
    database and the secret key. Created on first use.
    """
    folder = Path(home) / "files"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
