"""Compiled templates are cached by their source text: compiled once, bounded, sandbox rules unchanged."""

from __future__ import annotations

import pytest

from taskloom.core import templates
from taskloom.core.templates import TemplateError, evaluate_expression, references, render_value


@pytest.fixture(autouse=True)
def empty_caches():
    for cached in (templates._compiled_expression, templates._compiled_template, templates._references):
        cached.cache_clear()
    yield


def test_the_same_source_is_compiled_once_and_renders_against_each_context():
    source = "{{ tasks.a.output.n * 2 }}"
    assert render_value(source, {"tasks": {"a": {"output": {"n": 3}}}}) == 6
    assert render_value(source, {"tasks": {"a": {"output": {"n": 5}}}}) == 10
    info = templates._compiled_expression.cache_info()
    assert (info.misses, info.hits) == (1, 1)

    text = "n is {{ params.n }}"
    assert [render_value(text, {"params": {"n": n}}) for n in (1, 2, 3)] == ["n is 1", "n is 2", "n is 3"]
    info = templates._compiled_template.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_a_condition_and_the_validator_share_the_cache():
    assert evaluate_expression("tasks.a.output > 1", {"tasks": {"a": {"output": 2}}}) is True
    assert evaluate_expression("{{ tasks.a.output > 1 }}", {"tasks": {"a": {"output": 0}}}) is False
    assert templates._compiled_expression.cache_info().misses == 1
    first = references("{{ tasks.a.output }} and {{ params.x }}")
    first.add("mutated by the caller")  # the cached set must not change with it
    assert {(r.root, r.name) for r in references("{{ tasks.a.output }} and {{ params.x }}")} == {
        ("tasks", "a"), ("params", "x")}
    assert templates._references.cache_info().hits == 1


def test_the_cache_is_bounded():
    for n in range(templates.CACHE_SIZE + 50):
        render_value(f"{{{{ {n} + 1 }}}}", {})
    assert templates._compiled_expression.cache_info().currsize == templates.CACHE_SIZE


def test_errors_are_raised_every_time_and_the_sandbox_still_refuses():
    for _ in range(2):
        with pytest.raises(TemplateError, match="invalid expression"):
            render_value("{{ 1 + }}", {})
        with pytest.raises(TemplateError, match="sandbox"):
            render_value("{{ params.__class__.__mro__ }}", {"params": {}})
        with pytest.raises(TemplateError, match="undefined|no"):
            render_value("{{ tasks.missing.output }}", {"tasks": {}})
