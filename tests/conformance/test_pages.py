"""The library's own pages: preferences, the cookie declaration (HTML and
JSON) and the versioned static files."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from consent import Cookie
from consent import Policy
from consent.assets import asset_version
from consent.assets import static_files
from tests.conformance.pages import BANNER
from tests.conformance.pages import post_choice
from tests.conformance.pages import state_of
from tests.conformance.pages import tags


def test_preferences_page(adapter) -> None:
    response = adapter.make_app().client().get("/consent/preferences")
    assert response.status_code == 200
    assert response.cache_control.no_store
    html = response.text
    assert BANNER not in html
    boxes = tags(html, "input")
    boxes = [b for b in boxes if b.get("type") == "checkbox"]
    choices = [b for b in boxes if b.get("name") == "choice"]
    categories = [b["value"] for b in choices if b["value"] in ("analytics", "media")]
    assert categories == ["analytics", "media"]
    # Nothing is pre-ticked (Planet49), and every switch can be used.
    assert all("checked" not in b for b in choices)
    assert all("disabled" not in b for b in choices)
    (necessary,) = [b for b in boxes if b.get("id") == "consent-necessary"]
    assert "checked" in necessary and "disabled" in necessary
    assert "name" not in necessary
    assert "Always on" in html
    assert (
        '<button type="submit" class="consent-button" name="action" value="save">'
        in (html)
    )
    assert "You have not made a choice yet" in html


def test_preferences_page_shows_the_choice(adapter) -> None:
    client = adapter.make_app().client()
    post_choice(client, "save", choice="analytics")
    consent_id = state_of(client)["consent_id"]
    html = client.get("/consent/preferences").text
    assert consent_id in html
    checked = {
        b["value"]
        for b in tags(html, "input")
        if b.get("name") == "choice" and "checked" in b
    }
    assert checked == {"analytics"}


def test_preferences_keep_a_safe_next(adapter) -> None:
    client = adapter.make_app().client()
    html = client.get("/consent/preferences?next=/article").text
    (field,) = [i for i in tags(html, "input") if i.get("name") == "next"]
    assert field["value"] == "/article"
    html = client.get("/consent/preferences?next=//evil.example").text
    (field,) = [i for i in tags(html, "input") if i.get("name") == "next"]
    assert field["value"] == "/"


def _declared(policy: Policy) -> list[Cookie]:
    return [c for category in policy.categories for c in category.all_cookies()]


def test_declaration_lists_every_cookie(adapter) -> None:
    app = adapter.make_app()
    response = app.client().get("/consent/declaration")
    assert response.status_code == 200
    html = response.text
    cells = re.findall(
        r"<tr>\s*<td><code>(.*?)</code></td>.*?<td>(.*?)</td>\s*"
        r"<td>(.*?)</td>\s*<td>(.*?)</td>",
        html,
        re.DOTALL,
    )
    rows = {name: duration for name, _provider, _purpose, duration in cells}
    for cookie in _declared(app.site.policy):
        assert rows[cookie.label] == cookie.duration
    assert rows["consent"] == "182 days"
    assert "consent_csrf" in rows
    assert len(rows) == len(_declared(app.site.policy)) + 2


def test_declaration_json_lists_every_cookie(adapter) -> None:
    app = adapter.make_app()
    policy = app.site.policy
    response = app.client().get("/consent/declaration.json")
    assert response.status_code == 200
    data = response.json()
    assert data["revision"] == policy.revision
    assert data["controller"] == "Hangzhou Digital"
    assert [c["key"] for c in data["categories"]] == ["necessary", "analytics", "media"]
    rows = {
        cookie["name"]: cookie
        for category in data["categories"]
        for cookie in category["cookies"]
    }
    for cookie in _declared(policy):
        assert rows[cookie.label]["duration"] == cookie.duration
        assert rows[cookie.label]["provider"] == cookie.provider
        assert rows[cookie.label]["party"] == cookie.party
    assert rows["consent"]["duration"] == "182 days"
    assert rows["consent"]["party"] == "first"
    assert set(rows) == {c.label for c in _declared(policy)} | {
        "consent",
        "consent_csrf",
    }
    necessary = data["categories"][0]
    assert necessary["required"] is True
    assert {c["name"] for c in necessary["cookies"]} == {"consent", "consent_csrf"}


@pytest.mark.parametrize(
    ("filename", "mimetype"),
    [("consent.js", "text/javascript"), ("consent.css", "text/css")],
)
def test_versioned_static_files_are_the_files_cached_for_a_year(
    adapter, filename: str, mimetype: str
) -> None:
    client = adapter.make_app().client()
    path = f"/consent/static/{filename}?v={asset_version(filename)}"
    file = resources.files("consent") / "static" / "consent" / filename
    response = client.get(path)
    assert response.status_code == 200
    # The file as the library read it, minified: smaller than its source.
    assert response.content == static_files()[filename][0]
    assert len(response.content) < len(file.read_bytes())
    assert response.mimetype == mimetype
    assert response.cache_control.public
    assert response.cache_control.max_age == 365 * 24 * 3600
    etag = response.headers["ETag"]
    assert etag == f'"{asset_version(filename)}"'
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/consent/static/missing.js?v=1",
        "/consent/static/../extension.py?v=1",
        "/consent/static/%2e%2e/flask/views.py?v=1",
    ],
)
def test_unknown_static_files_are_not_found(adapter, path: str) -> None:
    assert adapter.make_app().client().get(path).status_code == 404
