"""Bootstrap of a ``python`` task's child process (stdlib only, run as a script).

Usage: ``python -I pychild.py SPEC RESULT``. SPEC is a JSON file with
``callable`` ("module:function") or ``code`` (source defining ``main``),
``args`` and ``cwd``. The function's return value is written to RESULT as
``{"ok": true, "output": ...}``; an exception is printed to stderr as a
traceback and written as ``{"ok": false, "error": "..."}``.
"""

import importlib
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
    module_name, _, attr = spec["callable"].partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise LookupError(f"module {module_name!r} has no function {attr!r}") from None


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
