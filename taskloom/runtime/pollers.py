"""Polling event triggers: new files, new git commits, runs of another workflow that ended.

Each poller takes the trigger's config and its saved cursor and returns the
events since then plus the new cursor. The first poll only takes stock (no
events), so existing files or old commits never fire; the cursor is saved
with the runs it starts, so a restart neither re-fires nor misses anything.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping

import sqlite_utils

from taskloom.core.errors import UserMistake

from taskloom.storage.runs import last_run_end, runs_ended_after

__all__ = ["poll_files", "poll_git", "poll_workflow", "PollError"]

GIT_TIMEOUT = 120


class PollError(UserMistake, RuntimeError):
    """A poll failed (missing folder, git error); the message says what and where."""


def poll_files(config: Mapping[str, Any], cursor: Any) -> tuple[list[dict[str, Any]], Any]:
    """New or changed files matching ``pattern`` under ``path``: one event per file."""
    root = Path(os.path.expanduser(config["path"]))
    if not root.is_dir():
        raise PollError(f"file trigger: folder {root} does not exist")
    current: dict[str, int] = {}
    for path in sorted(root.glob(config.get("pattern", "*"))):
        if path.is_file():
            current[path.relative_to(root).as_posix()] = path.stat().st_mtime_ns
    if cursor is None:
        return [], {"seen": current}
    seen = cursor.get("seen", {})
    events = [
        {"path": str(root / name), "name": name, "mtime": mtime / 1e9, "size": (root / name).stat().st_size,
         "change": "changed" if name in seen else "new"}
        for name, mtime in current.items()
        if seen.get(name) != mtime
    ]
    return events, {"seen": current}


def _git(args: list[str], cwd: Path | None = None) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
           "HOME": os.environ.get("HOME", "/")}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PollError(f"git {' '.join(args[:2])} failed: {exc}") from None
    if done.returncode != 0:
        raise PollError(f"git {' '.join(args[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def poll_git(config: Mapping[str, Any], cursor: Any, cache: Path) -> tuple[list[dict[str, Any]], Any]:
    """New commits on ``branch`` of ``repo``, oldest first: one event per commit.

    The repository is mirrored under ``cache`` (a bare clone, fetched on every
    poll), so local paths and URLs work the same way.
    """
    repo = config["repo"]
    mirror = cache / hashlib.sha256(repo.encode()).hexdigest()[:16]
    if not (mirror / "HEAD").exists():
        cache.mkdir(parents=True, exist_ok=True)
        _git(["clone", "--mirror", "--quiet", repo, str(mirror)])
    else:
        _git(["fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/heads/*"], cwd=mirror)
    branch = config.get("branch") or _git(["symbolic-ref", "--short", "HEAD"], cwd=mirror).strip()
    head = _git(["rev-parse", f"refs/heads/{branch}"], cwd=mirror).strip()
    last = (cursor or {}).get("commit")
    if cursor is None or last == head:
        return [], {"commit": head, "branch": branch}
    span = f"{last}..{head}" if last else head
    log = _git(["log", "--reverse", "--format=%H%x1f%an <%ae>%x1f%s", span], cwd=mirror)
    events = []
    for line in log.splitlines():
        commit, author, message = line.split("\x1f", 2)
        events.append({"commit": commit, "author": author, "message": message, "branch": branch, "repo": repo})
    return events, {"commit": head, "branch": branch}


def poll_workflow(db: sqlite_utils.Database, config: Mapping[str, Any], cursor: Any) -> tuple[list[dict[str, Any]], Any]:
    """Runs of ``workflow`` that ended in one of ``states`` since the last poll."""
    states = list(config.get("states") or ["succeeded"])
    if cursor is None:
        return [], {"ended_after": last_run_end(db, config["workflow"]) or 0.0}
    rows = runs_ended_after(db, config["workflow"], states, cursor["ended_after"])
    events = [{"run_id": r[0], "workflow": config["workflow"], "status": r[1]} for r in rows]
    return events, {"ended_after": rows[-1][2] if rows else cursor["ended_after"]}
