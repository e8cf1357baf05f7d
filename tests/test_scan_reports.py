"""The terminal, JSON and HTML reports of a scan."""

from __future__ import annotations

import copy
import json
import re
import typing as t

import click
import jsonschema
import pytest

from consent.scan.report_html import render_html
from consent.scan.report_json import SCHEMA_VERSION
from consent.scan.report_json import load_schema
from consent.scan.report_json import render_json
from consent.scan.report_json import to_document
from consent.scan.report_text import render_text
from tests.scan_records import clean_visits
from tests.scan_records import closed
from tests.scan_records import cookie
from tests.scan_records import request
from tests.scan_records import result
from tests.scan_records import storage
from tests.scan_records import visit


def busy_result() -> t.Any:
    """A result with something of every kind, findings included."""
    visits = [
        visit(
            "no_interaction",
            cookie("_ga", "before_choice"),
            cookie("map", "before_choice", domain="localhost", party="third"),
            request("static.hotjar.com", "before_choice"),
            storage("ab_test", "before_choice"),
        ),
        visit("reject_all", cookie("consent"), cookie("_fbp")),
        visit("accept_all", cookie("consent"), cookie("_ga")),
    ]
    return result(visits)


@pytest.mark.parametrize("make", [busy_result, lambda: result(clean_visits())])
def test_json_follows_its_schema_exactly(make: t.Callable[[], t.Any]) -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(render_json(make()))
    jsonschema.validate(document, closed(schema))


def test_schema_rejects_a_wrong_report() -> None:
    document = to_document(busy_result())
    broken = copy.deepcopy(document)
    broken["findings"][0]["code"] = "something_else"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_schema())
    broken = copy.deepcopy(document)
    del broken["visits"][0]["cookies"][0]["party"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_schema())


def test_json_content() -> None:
    document = to_document(busy_result())
    assert document["schema_version"] == SCHEMA_VERSION == 1
    assert document["clean"] is False
    assert [(f["code"], f["subject"]) for f in document["findings"]] == [
        ("cookie_before_choice", "_ga"),
        ("cookie_before_choice", "map"),
        ("storage_before_choice", "ab_test"),
        ("request_before_choice", "static.hotjar.com"),
        ("refused_cookie_after_reject", "_fbp"),
        ("undeclared_cookie", "map"),
    ]
    assert document["declaration"]["categories"] == [
        {"key": "necessary", "required": True},
        {"key": "analytics", "required": False},
        {"key": "marketing", "required": False},
    ]
    ga = document["visits"][0]["cookies"][0]
    assert ga["expires"] == "2030-01-01T00:00:00+00:00"
    assert ga["phases"] == ["before_choice"]
    assert [v["name"] for v in document["visits"]] == [
        "no_interaction",
        "reject_all",
        "accept_all",
    ]


def test_text_report_puts_findings_first() -> None:
    text = click.unstyle(render_text(busy_result()))
    assert text.index("6 findings") < text.index("No interaction:")
    assert "1. Non-essential cookie before a choice: _ga" in text
    assert "seen in No interaction: http://127.0.0.1:5000/" in text
    assert "map  localhost  third-party" in text


def test_text_report_when_clean() -> None:
    text = click.unstyle(render_text(result(clean_visits(), declaration=None)))
    assert "No findings." in text
    assert "checked against known" in text


def test_html_is_self_contained_and_escaped() -> None:
    visits = clean_visits()
    visits[2] = visit("accept_all", cookie("<script>alert(1)</script>"))
    html = render_html(result(visits))
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Nothing to fetch: no script, no external stylesheet, image or font.
    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html


def test_html_puts_findings_first() -> None:
    html = render_html(busy_result())
    assert html.index('id="findings"') < html.index('id="visit-no_interaction"')
    assert html.count('class="finding"') == 6
