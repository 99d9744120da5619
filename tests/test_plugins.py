"""A third-party package adds a task type through the ``taskloom.tasks`` entry-point group."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from clitools import TASKLOOM, env_for, write_flow
from conftest import make_doc

PLUGIN_MODULE = '''
"""A tiny Taskloom plugin: a task type that greets, loudly if asked."""

from taskloom.core.registry import TaskType
from taskloom.core.states import TaskState
from taskloom.runtime.tasks.base import AttemptResult

TASK_TYPE = TaskType(
    name="acme_greet",
    title="Greet",
    description="Say hello.",
    category="Acme",
    icon="smile",
    entry="acme_taskloom:run",
    params_schema={
        "type": "object",
        "required": ["who"],
        "additionalProperties": False,
        "properties": {"who": {"type": "string"}, "loud": {"type": "boolean", "default": False}},
    },
)


def run(ctx):
    text = f"hello {ctx.params['who']}"
    text = text.upper() if ctx.params.get("loud") else text
    ctx.log("stdout", text)
    return AttemptResult(TaskState.SUCCEEDED, output=text)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "acme-taskloom"
version = "0.1.0"

[project.entry-points."taskloom.tasks"]
acme_greet = "acme_taskloom:TASK_TYPE"

[tool.setuptools]
py-modules = ["acme_taskloom"]
'''


def install_plugin(tmp_path):
    source = tmp_path / "acme-taskloom"
    source.mkdir()
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (source / "acme_taskloom.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps", "--no-index",
         "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    return target


def test_an_installed_plugin_task_validates_and_runs(tmp_path, home):
    site = install_plugin(tmp_path)
    env = env_for(home, PYTHONPATH=str(site))
    doc = make_doc(
        [
            {"id": "greet", "type": "acme_greet", "params": {"who": "{{ params.who }}", "loud": True}},
            {"id": "echo", "type": "shell", "params": {"command": "echo got {{ tasks.greet.output }}"}},
        ],
        [{"from": "greet", "to": "echo"}],
        params={"who": {"type": "string", "default": "plugins"}},
    )
    flow = write_flow(tmp_path, doc)
    result = subprocess.run([TASKLOOM, "run", flow, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tasks"]["greet"]["output"] == "HELLO PLUGINS"
    assert data["tasks"]["echo"]["output"] == "got HELLO PLUGINS"
    bad = write_flow(tmp_path, make_doc([{"id": "g", "type": "acme_greet", "params": {}}]), "bad.json")
    checked = subprocess.run([TASKLOOM, "validate", bad, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 1
    assert json.loads(checked.stdout)[0]["path"] == "/tasks/0/params"
    schema = subprocess.run([TASKLOOM, "schema"], env=env, capture_output=True, text=True, timeout=60)
    assert "acme_greet" in schema.stdout
    # without the plugin on the path, the type is unknown
    plain = subprocess.run([TASKLOOM, "validate", flow, "--json"], env=env_for(home), capture_output=True, text=True, timeout=60)
    assert "unknown task type 'acme_greet'" in plain.stdout
