"""The staff template engine refuses what could hurt a worker and names what went wrong."""

from __future__ import annotations

from typing import Any

import pytest

from notify.compose.engine import SOURCE_MAX_CHARS, check_template, render_template
from notify.errors import TemplateError

CTX = {"resident": {"ward": "川崎区", "language": "ja"}, "city": {"name": "川崎市"}}


def refused(source: str, **kw: Any) -> str:
    with pytest.raises(TemplateError) as info:
        render_template(source, CTX, field="content.ja.body", **kw)
    assert list(info.value.fields) == ["content.ja.body"]
    return info.value.fields["content.ja.body"]


def test_renders_variables_conditions_and_allowed_filters() -> None:
    source = (
        "{{ city.name }}{% if resident.ward %}{{ resident.ward }}{% else %}全区{% endif %}の皆様"
        " {{ resident.language|upper }} {{ 'abcdef'|truncate(5, leeway=0) }}"
        " {{ resident.nick|default('—') if resident.nick is defined else '' }}"
    )
    assert render_template(source, CTX, field="f") == "川崎市川崎区の皆様 JA ab... "


def test_unknown_variable_is_an_error_not_an_empty_string() -> None:
    assert "is undefined" in refused("こんにちは {{ resident_name }}")
    assert "no attribute 'name'" in refused("{{ resident.name }}")


def test_syntax_error_names_the_line() -> None:
    reason = refused("一行目\n{% if resident.ward %}閉じていない")
    assert "syntax error (line 2)" in reason


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{% for i in range(10**9) %}x{% endfor %}", "loops"),
        ("{{ 'x' * 1000000000 }}", "*"),
        ("{{ 9 ** 999999 }}", "**"),
        ("{{ '%099999999d' % 1 }}", "%"),
        ("{% set a = 'x' %}{{ a ~ a }}", "set"),
        ("{{ resident.ward.center(10**9) }}", "calls"),
        ("{{ resident.ward|center(1000000000) }}", "filter"),
        ("{{ resident.ward|join('x') }}", "filter"),
        ("{% macro m() %}{% endmacro %}", "macros"),
        ("{% include 'email_layout.html' %}", "include"),
        ("{{ lipsum() }}", "calls"),
        ("{% if resident is callable %}{% endif %}", "test"),
    ],
)
def test_dangerous_constructs_are_refused_before_running(source: str, words: str) -> None:
    with pytest.raises(TemplateError) as info:
        check_template(source, field="content.ja.body")
    assert words in info.value.fields["content.ja.body"]


def test_sandbox_blocks_private_attributes() -> None:
    assert "unsafe" in refused("{{ resident.__class__.__mro__ }}")


def test_source_and_output_are_size_limited() -> None:
    assert "template longer" in refused("x" * (SOURCE_MAX_CHARS + 1))
    assert "output longer than 100" in refused("{{ city.name }}" + "y" * 200, max_chars=100)


def test_html_templates_autoescape_values_but_keep_markup() -> None:
    ctx = {"resident": {"ward": "<script>alert(1)</script>"}}
    out = render_template("<p>{{ resident.ward }}</p>", ctx, field="f", html=True)
    assert out == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert render_template("{{ resident.ward }}", ctx, field="f") == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",  # the parser itself recurses too deep
        "{{ " + "-" * 3000 + "1 }}",
        "{{ a" + ".b" * 3000 + " }}",
        "{% if " + "not " * 3000 + "a %}x{% endif %}",
        "{{ [" * 2000 + "]" * 2000 + " }}",
        "{{ a" + ".b" * 70 + " }}",  # parses, but deeper than MAX_NESTING
    ],
    ids=["parentheses", "minus", "attributes", "not", "lists", "past-the-limit"],
)
def test_a_deeply_nested_template_is_refused_with_a_field_message(source: str) -> None:
    # A RecursionError from jinja2's parser or compiler was a 500 when a draft was saved.
    with pytest.raises(TemplateError, match="nested deeper than 64") as caught:
        check_template(source, field="content.ja.body")
    assert set(caught.value.fields) == {"content.ja.body"}


def test_nesting_within_the_limit_renders() -> None:
    value: Any = "深い"
    for _ in range(40):
        value = {"b": value}
    assert render_template("{{ a" + ".b" * 40 + " }}", {"a": value}, field="body") == "深い"
