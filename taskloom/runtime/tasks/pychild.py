"""Bootstrap of a ``python`` task's child process (stdlib only, run as a script).

Two modes:

``python -I pychild.py SPEC RESULT``
    One attempt in a fresh interpreter. SPEC is a JSON file with ``callable``
    ("module:function" or "path/to/file.py:function", relative to ``cwd``) or
    ``code`` (source defining ``main``), ``args`` and ``cwd``. The function's
    return value is written to RESULT as ``{"ok": true, "output": ...}``; an
    exception is printed to stderr as a traceback and written as
    ``{"ok": false, "error": "..."}``.

``python -I pychild.py --serve JOBS REPLIES LIFELINE``
    A worker of :class:`taskloom.runtime.executors.pool.PythonPool`: it reads one job
    per line from file descriptor JOBS (the same fields as SPEC plus ``id``
    and ``env``), runs it with that environment and working directory, then
    writes an end marker to stdout and stderr (so the pool knows every line
    of the job has been read) and the reply line to REPLIES. Imported
    modules stay warm between jobs, which is what makes a worker fast; the
    modules of the task's own folder are forgotten when a job runs in
    another folder or one of their files changed, so edited code is picked
    up. When LIFELINE reaches end of file the pool's process is gone, and
    the worker kills its process group (itself and whatever the task started).
"""

import importlib
import importlib.util
import json
import os
import signal
import sys
import threading
import traceback

#: Written to stdout and stderr after each job; the pool cuts the stream there.
END_MARKER = b"\x00\x1etaskloom-end\x1e\x00"


def _load(spec):
    if spec.get("code") is not None:
        namespace = {"__name__": "__taskloom_task__"}
        exec(compile(spec["code"], "<task code>", "exec"), namespace)
        if not callable(namespace.get("main")):
            raise LookupError("the task's code must define a function main(**args)")
        return namespace["main"]
    module_name, _, attr = spec["callable"].rpartition(":")
    if module_name.endswith(".py"):
        module = _from_file(os.path.join(spec.get("cwd") or ".", module_name))
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise LookupError(f"module {module_name!r} has no function {attr!r}") from None


def _from_file(path):
    """Import a module from a file path (``scripts/score.py:predict``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no Python file {path}")
    name = "taskloom_task_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its sibling modules import too
    module_spec.loader.exec_module(module)
    return module


#: Failures to load the function that another attempt cannot mend: reported with ``"retriable": false``.
_CANNOT_LOAD = (ImportError, FileNotFoundError, LookupError, SyntaxError)


def _call(spec):
    """Run the spec's function; return ``(ok, reply)``, the reply as JSON text."""
    try:
        function = _load(spec)
    except BaseException as exc:  # the module's own top-level code may raise anything
        traceback.print_exc()
        if isinstance(exc, _CANNOT_LOAD):
            return _failed(_load_error(spec, exc), retriable=False)
        return _failed(f"{type(exc).__name__}: {exc}")
    try:
        output = function(**(spec.get("args") or {}))
    except BaseException as exc:  # report anything the user's code raised, SystemExit included
        traceback.print_exc()
        return _failed(f"{type(exc).__name__}: {exc}")
    try:
        return True, json.dumps({"ok": True, "output": output}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return _failed(f"the return value is not JSON-serializable: {exc}")


def _load_error(spec, exc):
    """The error of a function that cannot be loaded, with where it was looked for and the fix."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError) and spec.get("callable"):
        folder = os.path.realpath(spec.get("cwd") or ".")
        text += (f" (looked in {folder}, the task's folder, and the installed packages; put the module there,"
                 " set the task's cwd, or install the package; `taskloom validate --check-runtime FILE` finds"
                 " this before a run)")
    return text + "; not retried: another attempt would fail the same way"


def _failed(error, retriable=True):
    reply = {"ok": False, "error": error}
    if not retriable:
        reply["retriable"] = False
    return False, json.dumps(reply)


def main(spec_path, result_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    sys.path.insert(0, spec.get("cwd") or ".")
    ok, reply = _call(spec)
    with open(result_path, "w", encoding="utf-8") as f:
        f.write(reply)
    return 0 if ok else 1


# -- pool worker ---------------------------------------------------------------


def serve(jobs_fd, replies_fd, lifeline_fd):
    """Run jobs until the pool closes the job pipe."""
    for fd in (jobs_fd, replies_fd, lifeline_fd):
        os.set_inheritable(fd, False)  # the task's own subprocesses must not hold our pipes
    threading.Thread(target=_watch_lifeline, args=(lifeline_fd,), daemon=True).start()
    _become_subreaper()
    base_environ, base_path, base_cwd = dict(os.environ), list(sys.path), os.getcwd()
    with os.fdopen(jobs_fd, "rb") as jobs, os.fdopen(replies_fd, "wb") as replies:
        for line in jobs:
            job = json.loads(line)
            try:
                _, reply = _run_job(job)
            finally:
                _end_leftovers()
                _restore(base_environ, base_path, base_cwd, job.get("cwd"))
            sys.stdout.flush()
            sys.stderr.flush()
            os.write(1, END_MARKER)
            os.write(2, END_MARKER)
            replies.write(reply.encode() + b"\n")
            replies.flush()
    return 0


def _run_job(job):
    os.environ.clear()
    os.environ.update(job.get("env") or {})
    cwd = job.get("cwd") or "."
    try:
        os.chdir(cwd)
    except OSError as exc:
        return _failed(f"cannot enter working directory {cwd}: {exc.strerror or exc}")
    _prepare_modules(os.path.realpath(cwd))
    sys.path.insert(0, cwd)
    return _call(job)


def _restore(environ, path, cwd, job_cwd):
    """Undo what a job changed in this process, and forget the modules of its folder."""
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    os.chdir(cwd)
    if job_cwd:
        _sort_modules(os.path.realpath(job_cwd))


#: Modules judged to be libraries (kept between jobs); only modules new since are looked at.
_KEPT = set(sys.modules)
#: Where installed libraries live: modules from there are never the user's, whatever the folder.
_INSTALLED = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
#: Modules of the task's folder kept warm: name -> (file, (mtime_ns, size)) when imported.
_USER = {}
_user_folder = [None]


def _prepare_modules(folder):
    """Before a job: forget the user's modules if the folder changed or one of their files did."""
    if _user_folder[0] != folder or any(_stamp(path) != stamp for path, stamp in _USER.values()):
        for name in _USER:
            sys.modules.pop(name, None)
        _USER.clear()
    _user_folder[0] = folder


def _sort_modules(folder):
    """After a job: note which new modules are the user's (checked for edits) and which are libraries."""
    prefix = folder.rstrip(os.sep) + os.sep
    installed = _INSTALLED
    for name in [n for n in sys.modules if n not in _KEPT and n not in _USER]:
        path = getattr(sys.modules[name], "__file__", None)
        real = os.path.realpath(path) if path else ""
        if name.startswith("taskloom_task_") or (real.startswith(prefix) and not real.startswith(installed)):
            _USER[name] = (path, _stamp(path))
        else:
            _KEPT.add(name)


def _stamp(path):
    try:
        st = os.stat(path)
    except (OSError, TypeError):
        return None
    return (st.st_mtime_ns, st.st_size)


def _become_subreaper():
    """Make processes the task leaves behind our children, so they can be ended after the job."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _end_leftovers():
    """Kill the processes a job left running (our children, thanks to the subreaper) and reap them."""
    for _ in range(10):  # a killed process's children are reparented to us: loop until none
        children = _children()
        if not children:
            break
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _children():
    pids = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as f:
                pids.extend(int(p) for p in f.read().split())
    except OSError:
        return []
    return pids


def _watch_lifeline(fd):
    while True:
        try:
            if not os.read(fd, 1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        sys.exit(serve(*(int(a) for a in sys.argv[2:5])))
    sys.exit(main(sys.argv[1], sys.argv[2]))
