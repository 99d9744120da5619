"""The ``git`` task type: clone a repository, or update a working copy, to a branch or a commit.

The working copy (``path``) must resolve inside the allowed roots, like the
paths of the ``file`` task; the repository (``repo``) is only read, so it may
be anywhere. The working copy belongs to the task: an update fetches from
``origin`` and force-checks-out the wanted commit, discarding changes to
tracked files (untracked files are left alone). A folder that is not a git
working copy, or is one of another repository, is never touched.

Every git command runs through :func:`taskloom.runtime.process.run_process`, in its own
process group with the attempt's remaining time and cancel event, and its
output is logged. Git never prompts (``GIT_TERMINAL_PROMPT=0``, no terminal),
ignores the system-wide configuration (``GIT_CONFIG_NOSYSTEM=1``) and speaks
English (``LC_ALL=C``) so its messages can be classified: an unknown branch or
commit, a missing repository or refused credentials are not retriable; other
failures (the network) are.

Output: ``{"commit", "branch", "message", "author", "updated", "previous"}``
where ``updated`` says whether the commit differs from the one the last
successful run of this task reported (kept in the task's memory).
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any

from taskloom.core.errors import TaskFailure
from taskloom.runtime.process import run_process
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult, result_from_process
from taskloom.runtime.tasks.files import TaskProblem, resolve_in_roots

__all__ = ["run", "git_env", "is_url", "same_repository"]

_MEMORY_KEY = "commit"

#: Fragments of git's messages (lowercase) for failures another attempt cannot fix.
_PERMANENT = (
    "couldn't find remote ref",
    "not found in upstream",
    "unknown revision",
    "not a valid object name",
    "is not a valid branch name",
    "invalid refspec",
    "does not appear to be a git repository",
    "does not exist",  # a local repository path that is not there
    "repository not found",
    "not a git repository",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied (publickey",
    "dubious ownership",
)
_SCP_LIKE = re.compile(r"^[^/]*:")  # user@host:path, as git reads it: a colon before any slash


class _Stop(TaskFailure):
    """Ends the attempt with ``result``."""

    def __init__(self, result: AttemptResult) -> None:
        super().__init__(result.error)
        self.result = result


def _fail(message: str, *, retriable: bool) -> _Stop:
    return _Stop(AttemptResult(TaskState.FAILED, error=message, retriable=retriable))


def git_env(base: dict[str, str] | Any) -> dict[str, str]:
    """The environment git runs with: the task's minimal one, never prompting, in English."""
    return {**base, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


def is_url(repo: str) -> bool:
    """Whether ``repo`` names a remote (``scheme://`` or ``host:path``) rather than a local path."""
    return "://" in repo or bool(_SCP_LIKE.match(repo))


def same_repository(origin: str, repo: str) -> bool:
    """Whether a working copy's ``origin`` URL is ``repo`` (local paths compared by real path)."""
    if not is_url(origin) and not is_url(repo):
        return os.path.realpath(origin) == os.path.realpath(repo)

    def norm(url: str) -> str:
        url = url.rstrip("/")
        return url[:-4] if url.endswith(".git") else url

    return norm(origin) == norm(repo)


@dataclass
class _Ran:
    returncode: int
    stdout: list[str]
    stderr: list[str]


class _Git:
    """Runs git commands for one attempt, sharing its deadline, cancel event and log."""

    def __init__(self, ctx: AttemptContext) -> None:
        self.ctx = ctx
        self.env = git_env(ctx.env)
        self.deadline = time.monotonic() + ctx.timeout

    def run(self, *args: str, cwd: str) -> _Ran:
        """Run ``git ARGS`` in ``cwd``; a timeout, cancel or start failure ends the attempt."""
        ctx = self.ctx
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _Stop(AttemptResult(TaskState.TIMED_OUT, error=f"timed out after {ctx.timeout:g} s"))
        out: list[str] = []
        err: list[str] = []

        def on_line(stream: str, line: str) -> None:
            (out if stream == "stdout" else err).append(line)
            ctx.log(stream, line)

        ctx.log("system", "$ " + shlex.join(["git", *args]))
        result = run_process(
            ["git", *args], env=self.env, cwd=cwd, timeout=remaining, on_line=on_line,
            cancel=ctx.cancel, grace=ctx.grace, on_start=ctx.on_process,
        )
        if result.start_error:
            raise _fail(f"cannot run git: {result.start_error}; install git and make sure it is on PATH",
                        retriable=False)
        if result.returncode is None or result.cancelled or result.timed_out:
            stopped = result_from_process(result, ctx.timeout)
            assert stopped is not None
            raise _Stop(stopped)
        return _Ran(result.returncode, out, err)

    def must(self, *args: str, cwd: str, doing: str) -> _Ran:
        """Run git; a non-zero exit fails the attempt with git's own message."""
        ran = self.run(*args, cwd=cwd)
        if ran.returncode != 0:
            message = _git_message(ran)
            raise _fail(f"{doing} failed: {message}", retriable=_retriable(message))
        return ran


def _git_message(ran: _Ran) -> str:
    """What git said went wrong: its fatal/error lines, else its last line, else the exit status."""
    lines = [line.strip() for line in ran.stderr if line.strip()]
    wanted = [line for line in lines if line.startswith(("fatal:", "error:"))]
    chosen = wanted or lines[-1:]
    return "; ".join(chosen) if chosen else f"git exited with status {ran.returncode}"


def _retriable(message: str) -> bool:
    lowered = message.lower()
    return not any(fragment in lowered for fragment in _PERMANENT)


# -- the task ------------------------------------------------------------------


@dataclass
class _Request:
    repo: str  # as given to git clone: a URL, or an absolute local path
    given_path: str
    path: str  # the working copy, real and inside the roots
    branch: str | None
    commit: str | None


def run(ctx: AttemptContext) -> AttemptResult:
    """Clone or update the working copy, check out the wanted commit, report it."""
    try:
        request = _request(ctx)
        git = _Git(ctx)
        if _needs_clone(git, request):
            git.must("clone", "--no-checkout", "--", request.repo, request.path, cwd=os.path.abspath(ctx.cwd),
                     doing=f"cloning {request.repo}")
        branch = _fetch_and_checkout(git, request)
        head = _head(git, request.path)
    except TaskProblem as exc:
        return AttemptResult(TaskState.FAILED, error=str(exc), retriable=exc.retriable)
    except _Stop as stop:
        return stop.result
    previous = ctx.services.memory_get(ctx.task_id, _MEMORY_KEY, None)
    _remember(ctx, head["commit"])
    output = {
        "commit": head["commit"], "branch": branch, "message": head["message"], "author": head["author"],
        "updated": head["commit"] != previous, "previous": previous,
    }
    ctx.log("system", f"at {head['commit'][:12]} ({'updated' if output['updated'] else 'unchanged'})")
    return AttemptResult(TaskState.SUCCEEDED, output=output)


def _request(ctx: AttemptContext) -> _Request:
    params = ctx.params
    cwd = os.path.abspath(ctx.cwd)
    repo = str(params["repo"]).strip()
    if repo.startswith("-"):
        raise _fail(f"repo {repo!r} starts with '-'; give a URL or a path", retriable=False)
    if not is_url(repo):
        repo = os.path.abspath(os.path.join(cwd, os.path.expanduser(repo)))
    given_path = str(params["path"])
    path = resolve_in_roots(given_path, cwd=cwd, roots=list(ctx.services.file_roots()), what="path")
    branch = str(params.get("branch") or "").strip() or None
    commit = str(params.get("commit") or "").strip() or None
    if branch and commit:
        raise _fail(f"give either 'branch' ({branch!r}) or 'commit' ({commit!r}), not both", retriable=False)
    for name, value in (("branch", branch), ("commit", commit)):
        if value is not None and value.startswith("-"):
            raise _fail(f"{name} {value!r} starts with '-'; give a {name} name", retriable=False)
    return _Request(repo, given_path, path, branch, commit)


def _needs_clone(git: _Git, request: _Request) -> bool:
    """True for a missing or empty folder; False for a working copy of ``repo``; else the task fails."""
    path, given = request.path, request.given_path
    if not os.path.lexists(path):
        return True
    if not os.path.isdir(path):
        raise _fail(f"path {given!r} ({path}) is a file, not a folder; choose another 'path'", retriable=False)
    if not os.listdir(path):
        return True
    top = git.run("rev-parse", "--show-toplevel", cwd=path)
    if top.returncode != 0 or not top.stdout or os.path.realpath(top.stdout[0]) != path:
        raise _fail(
            f"path {given!r} ({path}) exists and is not a git working copy; empty or remove it, "
            "or choose another 'path'",
            retriable=False,
        )
    origin = git.run("config", "--get", "remote.origin.url", cwd=path)
    url = origin.stdout[0].strip() if origin.returncode == 0 and origin.stdout else None
    if url is None or not same_repository(url, request.repo):
        raise _fail(
            f"path {given!r} ({path}) is a working copy of {url or 'a repository without origin'}, "
            f"not of {request.repo}; remove it or choose another 'path'",
            retriable=False,
        )
    return False


def _fetch_and_checkout(git: _Git, request: _Request) -> str | None:
    """Bring the wanted commit in from origin and check it out; return the branch (None: detached)."""
    path = request.path
    if request.commit is not None:
        git.must("fetch", "--prune", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*", cwd=path,
                 doing="fetching from origin")
        found = git.run("rev-parse", "--verify", "--quiet", f"{request.commit}^{{commit}}", cwd=path)
        if found.returncode != 0 or not found.stdout:
            raise _fail(
                f"commit {request.commit!r} was not found in {request.repo} (all branches and tags were fetched); "
                "check 'commit'",
                retriable=False,
            )
        git.must("checkout", "--force", "--detach", found.stdout[0].strip(), cwd=path,
                 doing=f"checking out {request.commit}")
        return None
    branch = request.branch or _default_branch(git, request)
    git.must("fetch", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}", cwd=path,
             doing=f"fetching branch {branch!r}")
    git.must("checkout", "--force", "-B", branch, f"refs/remotes/origin/{branch}", "--", cwd=path,
             doing=f"checking out branch {branch!r}")
    return branch


def _default_branch(git: _Git, request: _Request) -> str:
    """The branch the repository's HEAD points to."""
    ran = git.must(
        "ls-remote", "--symref", "origin", "HEAD", cwd=request.path, doing=f"asking {request.repo} for its HEAD"
    )
    for line in ran.stdout:
        ref, _, name = line.partition("\t")
        if ref.startswith("ref: refs/heads/") and name.strip() == "HEAD":
            return ref.removeprefix("ref: refs/heads/").strip()
    raise _fail(
        f"cannot tell the default branch of {request.repo} (it is empty or its HEAD is detached); set 'branch'",
        retriable=False,
    )


def _head(git: _Git, path: str) -> dict[str, str]:
    ran = git.must("log", "-1", "--format=%H%n%an <%ae>%n%B", "HEAD", cwd=path, doing="reading the commit")
    lines = ran.stdout + ["", "", ""]
    return {"commit": lines[0].strip(), "message": lines[2].strip(), "author": lines[1].strip()}


def _remember(ctx: AttemptContext, commit: str) -> None:
    try:
        ctx.services.memory_set(ctx.task_id, _MEMORY_KEY, commit)
    except LookupError as exc:
        ctx.log("system", f"the commit could not be kept for the next run ({exc}); it will count as updated")
