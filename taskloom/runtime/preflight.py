"""What a valid workflow still needs from the machine that runs it: ``taskloom validate --check-runtime``.

Validation says whether a document is well formed; it cannot know whether
``callable: "model:score"`` will import, or whether ``{{ secrets.API_TOKEN }}``
is set, because both depend on the folder the workflow runs in and on the
store. These checks look (read only: the file system and the installed
packages, never executing user code) and report each gap as an
:class:`~taskloom.core.issues.Issue` with the task's JSON path and the fix, before a
run spends its retries finding out.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Collection, Iterator, Mapping

from taskloom.core.issues import Issue, did_you_mean, pointer
from taskloom.core.templatecheck import _strings, template_references
from taskloom.core.templates import TemplateError

__all__ = ["check_runtime", "secret_references", "module_problem"]

_MAX_DEPTH = 64


def check_runtime(doc: Mapping[str, Any], *, folder: str, secret_names: Collection[str]) -> list[Issue]:
    """Every python callable that cannot be found from ``folder``, and every secret not in ``secret_names``."""
    issues: list[Issue] = []
    for index, task in enumerate(doc.get("tasks") or []):
        if isinstance(task, dict) and task.get("type") == "python":
            issues += _python_issues(index, task, folder)
    known = set(secret_names)
    for name, where in secret_references(doc):
        if name not in known:
            hint = did_you_mean(name, known, listing="stored secrets:") if known else "no secret is stored yet"
            issues.append(Issue(where, f"secret {name!r} is not set in this Taskloom home",
                                f"set it with: taskloom secrets set {name} ({hint})"))
    return issues


def secret_references(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(name, JSON pointer)`` of every secret the document reads: in templates and in trigger settings."""
    for index, task in enumerate(doc.get("tasks") or []):
        if not isinstance(task, dict):
            continue
        for value, path in _strings(task.get("params") or {}, ("tasks", index, "params"), _MAX_DEPTH):
            if value is None:
                continue
            try:
                refs = template_references(value)
            except TemplateError:
                continue  # validation reports it
            for root, name in sorted(refs, key=str):
                if root == "secrets" and name:
                    yield name, pointer(*path)
    for index, trigger in enumerate(doc.get("triggers") or []):
        if not isinstance(trigger, dict):
            continue
        for key in ("secret", "token_secret"):
            if isinstance(trigger.get(key), str):
                yield trigger[key], pointer("triggers", index, key)


def _python_issues(index: int, task: Mapping[str, Any], folder: str) -> list[Issue]:
    params = task.get("params") or {}
    target = params.get("callable")
    if not isinstance(target, str) or "{{" in target or ":" not in target:
        return []
    cwd = params.get("cwd")
    where = os.path.join(folder, cwd) if isinstance(cwd, str) and "{{" not in cwd else folder
    problem = module_problem(target.rpartition(":")[0], where)
    if problem is None:
        return []
    return [Issue(pointer("tasks", index, "params", "callable"), problem,
                  f"put it in {where} (the folder the workflow's relative paths resolve against: the one it was "
                  "imported from), set the task's cwd, or install the package into Taskloom's environment")]


def module_problem(module: str, folder: str) -> str | None:
    """Why ``module`` (``pkg.mod`` or ``path/to/file.py``) cannot be imported from ``folder``, or None."""
    if module.endswith(".py"):
        path = os.path.join(folder, module)
        return None if os.path.isfile(path) else f"no Python file {path}"
    top = module.split(".")[0]
    base = os.path.join(folder, *module.split("."))
    if os.path.isfile(base + ".py") or os.path.isdir(base) or os.path.isdir(os.path.join(folder, top)):
        return None
    if os.path.isfile(os.path.join(folder, top + ".py")):
        return None  # a submodule of a module file: the import itself will say if it is wrong
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    if found or top in sys.builtin_module_names:
        return None
    return f"module {top!r} is not in {folder} nor installed"
