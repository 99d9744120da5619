"""Pure path checks for tasks that touch files: containment in the allowed roots, glob patterns.

Tasks such as ``file`` and ``git`` may only read and write inside a few
folders (the runner's working directory plus the configured ``file_roots``).
The tasks resolve paths themselves (``os.path.realpath`` needs the file
system); this module only decides, from already resolved absolute paths,
whether one lies inside another, and words the refusals. Containment uses
:func:`os.path.commonpath` on path components, never a string prefix test,
so ``/data2`` is not taken to be inside ``/data``.
"""

from __future__ import annotations

import os
from typing import Iterable

__all__ = [
    "ALLOW_HINT",
    "is_within",
    "containing_root",
    "pattern_problem",
    "outside_roots_message",
]

#: How an operator widens the allowed folders; ``{folder}`` is filled in.
ALLOW_HINT = (
    "to allow it, add the folder to the allowed roots (keeping any already configured): "
    "taskloom config set file_roots '[\"{folder}\"]', or set TASKLOOM_FILE_ROOTS={folder} for the runner"
)


def is_within(path: str, root: str) -> bool:
    """Whether absolute, normalised ``path`` is ``root`` or lies below it (by components)."""
    if not (os.path.isabs(path) and os.path.isabs(root)):
        return False
    try:
        return os.path.commonpath([path, root]) == os.path.normpath(root)
    except ValueError:  # nothing in common (cannot happen for two absolute POSIX paths)
        return False


def containing_root(path: str, roots: Iterable[str]) -> str | None:
    """The first of ``roots`` that holds ``path``, or None when none does."""
    for root in roots:
        if is_within(path, root):
            return root
    return None


def pattern_problem(pattern: str) -> str | None:
    """Why a glob ``pattern`` cannot be used below a source folder, or None when it can.

    A pattern must be relative and may not climb out with ``..``: matches are
    acted on relative to the source folder (and re-created relative to the
    destination), so they must stay below it.
    """
    if not pattern:
        return "is empty; use '*' for every file of the folder or '**/*' for every file below it"
    if pattern.startswith(("/", "~")):
        return "must be relative to 'source', e.g. '*.csv' or 'reports/**/*.csv'"
    if ".." in pattern.replace("\\", "/").split("/"):
        return "may not contain '..': it would leave 'source'; point 'source' at the folder instead"
    return None


def outside_roots_message(subject: str, resolved: str, roots: list[str], *, folder: str, via_symlink: bool) -> str:
    """The refusal for a path outside every root.

    ``subject`` says what was given (``"source '../x'"``), ``resolved`` where it
    leads, and the hint says how to allow ``folder``.
    """
    how = " through a symbolic link" if via_symlink else ""
    roots_text = ", ".join(roots) if roots else "none"
    return (
        f"{subject} resolves{how} to {resolved}, which is outside the folders file tasks may use "
        f"({roots_text}); {ALLOW_HINT.format(folder=folder)}"
    )
