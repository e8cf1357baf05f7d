"""Template helpers known by name without being Jinja globals
(:func:`consent.html.add_template_names`)."""

from __future__ import annotations

import asyncio
import typing as t

import jinja2
import pytest
from jinja2.runtime import Context

from consent.html import add_template_names


def _greet(name: str) -> str:
    return f"hello {name}"


def _env(**options: t.Any) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(
            {
                "base.html": "[{% block body %}{% endblock %}]",
                "page.html": (
                    '{% extends "base.html" %}'
                    '{% block body %}{{ greet("page") }}{% endblock %}'
                ),
                "part.html": '{{ greet("part") }}',
                "macros.html": '{% macro m() %}{{ greet("macro") }}{% endmacro %}',
                "uses.html": (
                    '{% include "part.html" %} {% import "macros.html" as x %}'
                    "{{ x.m() }} {% if greet is defined %}defined{% endif %}"
                ),
            }
        ),
        **options,
    )
    add_template_names(env, {"greet": _greet})
    return env


def test_templates_find_the_names_without_globals() -> None:
    env = _env()
    assert "greet" not in env.globals
    assert env.from_string('{{ greet("you") }}').render() == "hello you"
    assert env.get_template("page.html").render() == "[hello page]"
    assert env.get_template("uses.html").render() == ("hello part hello macro defined")


def test_async_templates_find_the_names() -> None:
    env = _env(enable_async=True)
    rendered = asyncio.run(env.get_template("uses.html").render_async())
    assert rendered == "hello part hello macro defined"


def test_context_variables_and_globals_come_first() -> None:
    env = _env()
    template = env.from_string('{{ greet("you") }}')
    assert template.render(greet=str.upper) == "YOU"
    env.globals["greet"] = str.title
    assert env.from_string('{{ greet("you") }}').render() == "You"


def test_unknown_names_stay_undefined() -> None:
    env = _env(undefined=jinja2.StrictUndefined)
    with pytest.raises(jinja2.UndefinedError, match="'nobody' is undefined"):
        env.from_string("{{ nobody }}").render()


def test_the_app_context_class_is_kept_and_names_add_up() -> None:
    class Counting(Context):
        lookups: t.ClassVar[list[str]] = []

        def resolve_or_missing(self, key: str) -> t.Any:
            self.lookups.append(key)
            return super().resolve_or_missing(key)

    env = jinja2.Environment()
    env.context_class = Counting
    add_template_names(env, {"greet": _greet})
    add_template_names(env, {"shout": str.upper})
    assert issubclass(env.context_class, Counting)
    rendered = env.from_string('{{ greet("you") }} {{ shout("hi") }}').render()
    assert rendered == "hello you HI"
    assert Counting.lookups == ["greet", "shout"]


def test_a_name_in_the_context_is_visible_to_context_functions() -> None:
    @jinja2.pass_context
    def has_greet(context: Context) -> bool:
        return "greet" in context and context["greet"] is _greet

    env = _env()
    env.globals["has_greet"] = has_greet
    assert env.from_string("{{ has_greet() }}").render() == "True"
