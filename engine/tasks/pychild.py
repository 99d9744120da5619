"""Bootstrap of a ``python`` task's child process (stdlib only, run as a script).

Usage: ``python -I pychild.py SPEC RESULT``. SPEC is a JSON file with
``callable`` ("module:function" or "path/to/file.py:function", relative to
``cwd``) or ``code`` (source defining ``main``),
``args`` and ``cwd``. The function's return value is written to RESULT as
``{"ok": true, "output": ...}``; an exception is printed to stderr as a
traceback and written as ``{"ok": false, "error": "..."}``.
"""

import importlib
import importlib.util
import os
import json
import sys
import traceback


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


def main(spec_path, result_path):
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    sys.path.insert(0, spec.get("cwd") or ".")
    try:
        output = _load(spec)(**(spec.get("args") or {}))
        try:
            text = json.dumps({"ok": True, "output": output}, allow_nan=False)
        except (TypeError, ValueError) as exc:
            result = {"ok": False, "error": f"the return value is not JSON-serializable: {exc}"}
        else:
            with open(result_path, "w", encoding="utf-8") as f:
                f.write(text)
            return 0
    except BaseException as exc:  # report anything the user's code raised, SystemExit included
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
