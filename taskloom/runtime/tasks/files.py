"""The ``file`` task type: copy, move, delete or list the files of a folder that match a glob.

Every path the task touches must resolve inside one of the allowed roots
(``ctx.services.file_roots()``: the runner's working directory plus the
configured ``file_roots`` and ``TASKLOOM_FILE_ROOTS``). Paths are resolved
with :func:`os.path.realpath`, so ``..`` and symbolic links are followed
before the check, and containment is decided by :mod:`taskloom.core.pathguard` on
path components. A source, destination or matched file that leads outside
refuses the whole task before anything is changed (not retriable): a link in
the source folder can never be used to read or delete a file elsewhere.

The task works in two phases. Planning globs the source, resolves and checks
every match and its target, applies the ``only_new`` watermark and finds
overwrite conflicts; only a clean plan is carried out, file by file, with the
cancel event and the timeout checked between files. Copies are written to a
temporary name in the destination folder and renamed into place, so a crash
never leaves a half-written file under the final name.

``only_new`` keeps a watermark in the task's memory (per workflow and task):
the newest modification time acted on, in nanoseconds, and the paths acted on
at exactly that time, so a file written in the same instant as the last one
is not missed. It is advanced only when the task succeeds.

:func:`resolve_in_roots` is shared with other tasks that take paths (``git``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskloom.core.errors import TaskFailure
from taskloom.core.pathguard import containing_root, is_within, outside_roots_message, pattern_problem
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptContext, AttemptResult

__all__ = ["run", "resolve_in_roots", "TaskProblem", "PathRefused", "TEMP_PREFIX", "TEMP_SUFFIX"]

#: Names of copies in progress; files named like this are never matched.
TEMP_PREFIX = ".taskloom-"
TEMP_SUFFIX = ".part"

_WATERMARK = "watermark"
_CONFLICTS_SHOWN = 5


class TaskProblem(TaskFailure):
    """Why the task cannot go on; ``retriable`` says whether another attempt could help."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class PathRefused(TaskProblem):
    """A path outside the allowed roots; never retriable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=False)


def resolve_in_roots(value: str, *, cwd: str, roots: list[str], what: str) -> str:
    """The real path of ``value`` (relative to ``cwd``), or :class:`PathRefused` naming ``what``.

    ``what`` names the path in the message: ``"source"``, ``"path"``... The
    path need not exist; the existing part of it is resolved through links.
    """
    if "\x00" in value:
        raise PathRefused(f"{what} {value!r} holds a NUL byte, which no file name can contain; remove it")
    expanded = os.path.expanduser(value)
    real = os.path.realpath(os.path.join(cwd, expanded))
    if containing_root(real, roots) is None:
        lexical = os.path.normpath(os.path.join(os.path.realpath(cwd), expanded))
        raise PathRefused(
            outside_roots_message(f"{what} {value!r}", real, roots, folder=real, via_symlink=real != lexical)
        )
    return real


@dataclass
class _Match:
    """One matched file: where it is, where it goes, what is known of it."""

    rel: str  # relative to the source folder, with '/' separators
    path: str  # the path below the (real) source folder, not resolved
    size: int
    mtime_ns: int
    target: str | None = None  # copy and move: the path below the destination folder
    already_there: bool = False  # copy: an identical file is already at the target


@dataclass
class _Plan:
    action: str
    source: str
    destination: str | None
    matched: int
    files: list[_Match] = field(default_factory=list)
    watermark: dict[str, Any] | None = None  # the one that applied to this run, if any


def run(ctx: AttemptContext) -> AttemptResult:
    """Plan, then carry out, one ``file`` action (see the module docstring)."""
    started = time.monotonic()
    try:
        plan = _plan(ctx)
    except TaskProblem as exc:
        return AttemptResult(TaskState.FAILED, error=str(exc), retriable=exc.retriable)
    except OSError as exc:
        return AttemptResult(TaskState.FAILED, error=f"could not look at the files to {ctx.params.get('action')}: {exc}")
    if plan is None:
        return AttemptResult(TaskState.CANCELLED, error="cancelled while matching files")
    ctx.log("system", _plan_note(plan))
    done: list[_Match] = []
    for match in plan.files:
        stopped = _stopped(ctx, started, len(done), len(plan.files))
        if stopped is not None:
            return stopped
        try:
            _act(plan.action, match, ctx)
        except OSError as exc:
            return AttemptResult(TaskState.FAILED, error=_act_error(plan.action, match, exc, len(done)))
        done.append(match)
    _keep_watermark(ctx, plan, done)
    return AttemptResult(TaskState.SUCCEEDED, output=_output(plan, done))


# -- planning ------------------------------------------------------------------


def _plan(ctx: AttemptContext) -> _Plan | None:
    """Everything to do, checked; None when cancelled while matching."""
    params = ctx.params
    action = str(params["action"])
    pattern = str(params.get("pattern") or "*")
    problem = pattern_problem(pattern)
    if problem is not None:
        raise TaskProblem(f"pattern {pattern!r} {problem}", retriable=False)
    roots = list(ctx.services.file_roots())
    cwd = os.path.abspath(ctx.cwd)
    source = _source_folder(params, cwd, roots)
    destination = _destination_folder(params, action, cwd, roots)
    matches = _matches(ctx, source, pattern, roots, destination)
    if matches is None:
        return None
    plan = _Plan(action, source, destination, matched=len(matches))
    if params.get("only_new"):
        plan.watermark = _applicable_watermark(ctx, source, pattern)
        matches = [m for m in matches if _is_new(m, plan.watermark)]
    if destination is not None:
        _set_targets(matches, destination, roots, overwrite=bool(params.get("overwrite")), copy=action == "copy")
    plan.files = matches
    return plan


def _source_folder(params: Any, cwd: str, roots: list[str]) -> str:
    given = str(params["source"])
    source = resolve_in_roots(given, cwd=cwd, roots=roots, what="source")
    if not os.path.exists(source):
        raise TaskProblem(
            f"source folder {given!r} ({source}) does not exist; create it or fix 'source'", retriable=True
        )
    if not os.path.isdir(source):
        raise TaskProblem(
            f"source {given!r} ({source}) is a file, not a folder; "
            "set 'source' to its folder and 'pattern' to its name",
            retriable=False,
        )
    return source


def _destination_folder(params: Any, action: str, cwd: str, roots: list[str]) -> str | None:
    if action not in ("copy", "move"):
        return None
    given = params.get("destination")
    if not given:
        raise TaskProblem(
            f"action {action!r} needs 'destination': the folder to {action} the files into", retriable=False
        )
    destination = resolve_in_roots(str(given), cwd=cwd, roots=roots, what="destination")
    if os.path.exists(destination) and not os.path.isdir(destination):
        raise TaskProblem(
            f"destination {given!r} ({destination}) is a file, not a folder; choose a folder for 'destination'",
            retriable=False,
        )
    return destination


def _matches(
    ctx: AttemptContext, source: str, pattern: str, roots: list[str], destination: str | None
) -> list[_Match] | None:
    """The files below ``source`` matching ``pattern``, sorted; each checked to resolve inside the roots.

    A match of any kind that leads outside the roots (a link to a file or a
    folder elsewhere) refuses the task. Folders, dangling links and other
    non-files are not acted on; neither are files below the destination
    (when it lies inside the source) nor copies in progress.
    """
    found: list[_Match] = []
    for n, path in enumerate(Path(source).glob(pattern)):
        if n % 256 == 0 and ctx.cancel.is_set():
            return None
        lexical = str(path)
        rel = path.relative_to(source).as_posix()
        real = os.path.realpath(lexical)
        if containing_root(real, roots) is None:
            raise PathRefused(
                outside_roots_message(
                    f"file {rel!r} in 'source'", real, roots,
                    folder=real if os.path.isdir(real) else os.path.dirname(real), via_symlink=True,
                )
                + "; or remove the link from the source folder"
            )
        if not os.path.isfile(real) or _is_temp(path.name):
            continue
        if destination is not None and destination != source and is_within(lexical, destination):
            continue
        st = os.stat(real)
        found.append(_Match(rel, lexical, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda m: m.rel)
    return found


def _is_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def _set_targets(matches: list[_Match], destination: str, roots: list[str], *, overwrite: bool, copy: bool) -> None:
    """Give each match its target; refuse targets outside the roots; fail on conflicts unless ``overwrite``."""
    conflicts: list[str] = []
    for match in matches:
        target = os.path.join(destination, *match.rel.split("/"))
        real = os.path.realpath(target)
        if containing_root(real, roots) is None:
            raise PathRefused(
                outside_roots_message(
                    f"destination file {target!r}", real, roots, folder=os.path.dirname(real), via_symlink=True
                )
            )
        match.target = target
        if not os.path.lexists(target):
            continue
        if os.path.isdir(target):
            raise TaskProblem(
                f"cannot put file {match.rel!r} at {target}: a folder of that name exists in 'destination'",
                retriable=False,
            )
        if real == os.path.realpath(match.path):
            raise TaskProblem(
                f"file {match.rel!r} is its own destination ({real}); choose a 'destination' other than 'source'",
                retriable=False,
            )
        if copy and _same_content_marks(match, real):
            match.already_there = True  # a retried or resumed copy does not trip over its own work
        elif not overwrite:
            conflicts.append(f"{match.rel!r} ({target})")
    if conflicts:
        shown = ", ".join(conflicts[:_CONFLICTS_SHOWN])
        more = f" and {len(conflicts) - _CONFLICTS_SHOWN} more" if len(conflicts) > _CONFLICTS_SHOWN else ""
        one = len(conflicts) == 1
        what = "a destination file already exists" if one else f"{len(conflicts)} destination files already exist"
        them = "it" if one else "them"
        raise TaskProblem(
            f"{what}: {shown}{more}; set \"overwrite\": true to replace {them}, or remove {them}; nothing was changed",
            retriable=False,
        )


def _same_content_marks(match: _Match, target: str) -> bool:
    """Whether the file at ``target`` has the size and modification time a copy of ``match`` would have."""
    st = os.stat(target)
    return st.st_size == match.size and st.st_mtime_ns == match.mtime_ns


# -- the only_new watermark ----------------------------------------------------


def _applicable_watermark(ctx: AttemptContext, source: str, pattern: str) -> dict[str, Any] | None:
    """The watermark of an earlier run over the same source and pattern, if any."""
    stored = ctx.services.memory_get(ctx.task_id, _WATERMARK, None)
    if not isinstance(stored, dict) or stored.get("source") != source or stored.get("pattern") != pattern:
        if stored is not None:
            ctx.log("system", "only_new: the source or pattern changed since the watermark was kept; starting over")
        return None
    return stored


def _is_new(match: _Match, watermark: dict[str, Any] | None) -> bool:
    if watermark is None:
        return True
    mark = int(watermark.get("mtime_ns", 0))
    return match.mtime_ns > mark or (match.mtime_ns == mark and match.rel not in watermark.get("paths", ()))


def _keep_watermark(ctx: AttemptContext, plan: _Plan, done: list[_Match]) -> None:
    """Advance the watermark past the files acted on (only called when the task succeeded)."""
    if not ctx.params.get("only_new") or not done:
        return
    newest = max(m.mtime_ns for m in done)
    paths = {m.rel for m in done if m.mtime_ns == newest}
    old = plan.watermark
    if old is not None and int(old.get("mtime_ns", 0)) == newest:
        paths |= set(old.get("paths", ()))
    value = {"source": plan.source, "pattern": str(ctx.params.get("pattern") or "*"),
             "mtime_ns": newest, "paths": sorted(paths)}
    try:
        ctx.services.memory_set(ctx.task_id, _WATERMARK, value)
    except LookupError as exc:
        ctx.log("system", f"only_new: the watermark could not be kept ({exc}); the next run acts on these files again")


# -- carrying out --------------------------------------------------------------


def _stopped(ctx: AttemptContext, started: float, done: int, total: int) -> AttemptResult | None:
    """A result when the task must stop before the next file (cancelled, or out of time)."""
    if ctx.cancel.is_set():
        return AttemptResult(TaskState.CANCELLED, error=f"cancelled after {done} of {total} files")
    if time.monotonic() - started > ctx.timeout:
        return AttemptResult(
            TaskState.TIMED_OUT, error=f"timed out after {ctx.timeout:g} s, {done} of {total} files done"
        )
    return None


def _act(action: str, match: _Match, ctx: AttemptContext) -> None:
    if action == "list":
        return
    if action == "delete":
        os.unlink(match.path)
        ctx.log("system", f"deleted {match.rel}")
        return
    assert match.target is not None
    if action == "move":
        _move(match.path, match.target)
        ctx.log("system", f"moved {match.rel} -> {match.target}")
    elif match.already_there:
        ctx.log("system", f"{match.rel}: an identical copy is already at {match.target}")
    else:
        _copy_atomic(match.path, match.target)
        ctx.log("system", f"copied {match.rel} -> {match.target}")


def _copy_atomic(source: str, target: str) -> None:
    """Copy contents and times to a temporary name beside ``target``, then rename it into place."""
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    os.close(fd)
    try:
        shutil.copy2(source, temp)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _move(source: str, target: str) -> None:
    """Rename when on the same file system, else copy then delete; a link is replaced by a copy of its file."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.islink(source):
        try:
            os.replace(source, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    _copy_atomic(source, target)
    os.unlink(source)


def _act_error(action: str, match: _Match, exc: OSError, done: int) -> str:
    where = f" to {match.target}" if match.target else ""
    reason = exc.strerror or str(exc)
    return f"could not {action} {match.rel!r}{where}: {reason} ({done} files were done before it)"


def _plan_note(plan: _Plan) -> str:
    note = f"{plan.action}: {plan.matched} files matched in {plan.source}"
    if plan.watermark is not None or len(plan.files) != plan.matched:
        note += f", {len(plan.files)} new since the last successful run"
    return note


def _output(plan: _Plan, done: list[_Match]) -> dict[str, Any]:
    out: dict[str, Any] = {"files": [m.rel for m in done], "count": len(done), "action": plan.action,
                           "source": plan.source}
    if plan.destination is not None:
        out["destination"] = plan.destination
    if plan.action == "list":
        out["details"] = [{"path": m.rel, "size": m.size, "mtime": m.mtime_ns / 1e9} for m in done]
    return out
