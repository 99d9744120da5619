"""``taskloom config``: known keys, typed values, environment roots."""

from __future__ import annotations

import pytest

import json

from clitools import taskloom

pytestmark = pytest.mark.both_backends


def test_set_get_list_unset(home):
    assert taskloom(home, "config", "set", "smtp.port", "587").returncode == 0
    assert json.loads(taskloom(home, "config", "get", "smtp.port").stdout) == 587
    assert taskloom(home, "config", "set", "smtp.host", "mail.example.com").returncode == 0
    assert taskloom(home, "config", "set", "file_roots", '["/data"]').returncode == 0
    items = {i["key"]: i for i in json.loads(taskloom(home, "config", "list", "--json").stdout)}
    assert items["smtp.host"]["value"] == "mail.example.com" and items["smtp.host"]["set"]
    assert items["smtp.ssl"]["value"] is False and not items["smtp.ssl"]["set"]
    assert items["file_roots"]["value"] == ["/data"]
    assert taskloom(home, "config", "unset", "smtp.port").returncode == 0
    assert json.loads(taskloom(home, "config", "get", "smtp.port").stdout) == 25


def test_unknown_keys_and_wrong_types_are_refused(home):
    typo = taskloom(home, "config", "set", "smtp.hots", "x")
    assert typo.returncode == 1 and "did you mean 'smtp.host'" in typo.stderr
    wrong = taskloom(home, "config", "set", "smtp.port", "many")
    assert wrong.returncode == 1 and "smtp.port takes a value of type integer" in wrong.stderr


def test_list_prints_descriptions_and_values_as_text_not_markup(home):
    """``[cut N bytes]`` in a description (and brackets in a value) once vanished as a rich markup tag."""
    assert taskloom(home, "config", "set", "smtp.from", "[bold]ops[/bold] <ops@example.com>").returncode == 0
    listed = taskloom(home, "config", "list")
    assert listed.returncode == 0
    assert "'… [cut N bytes]'" in listed.stdout
    assert 'smtp.from = "[bold]ops[/bold] <ops@example.com>"' in listed.stdout
    again = taskloom(home, "config", "set", "smtp.from", "[red]x")
    assert again.stdout.strip() == 'smtp.from = "[red]x"'
