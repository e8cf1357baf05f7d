"""Views guarded with ``requires(key)``: a 403 page that offers the choice,
then the view once the visitor allows it."""

from __future__ import annotations

from tests.conformance.conftest import View
from tests.conformance.enforcement_app import POLICY
from tests.conformance.pages import choose
from tests.conformance.pages import forms

VIEWS = {
    "/map/3": View("the map at zoom 3", requires="westlake_map"),
    "/map/7": View("the map at zoom 7", requires="westlake_map"),
    "/video": View("the video", requires="video"),
}


#: How the ASGI adapter treats an HTML answer without <body>.


def make_required_app(adapter):
    return adapter.make_app(POLICY, VIEWS, CONSENT_RECEIPTS_URL=None)


def _grant_form(response) -> dict:
    return next(
        f
        for f in forms(response.text)
        if f["fields"].getlist("choice") == ["westlake_map"]
    )


def test_requires_without_consent_explains_with_403(adapter) -> None:
    client = make_required_app(adapter).client()
    response = client.get("/map/3")
    assert response.status_code == 403
    assert "the map" not in response.text
    assert "This page needs your permission" in response.text
    assert "This page uses West Lake map, which you have not allowed." in (
        response.text
    )
    assert response.cache_control.private
    assert "Cookie" in response.vary
    grant = _grant_form(response)
    assert grant["attrs"]["action"] == "/consent"
    assert grant["fields"]["action"] == "save"
    assert 'href="/consent/preferences' in response.text
    posted = client.post("/consent", data=grant["fields"].to_dict())
    assert posted.status_code == 303
    assert posted.headers["Location"] == "/map/3"


def test_granting_from_the_403_page_runs_the_view(adapter) -> None:
    client = make_required_app(adapter).client()
    grant = _grant_form(client.get("/map/3"))
    client.post("/consent", data=grant["fields"].to_dict())
    after = client.get("/map/3")
    assert after.status_code == 200
    assert after.text == "the map at zoom 3"


def test_requires_with_consent_runs_the_view(adapter) -> None:
    client = make_required_app(adapter).client()
    choose(client, "save", "westlake_map")
    assert client.get("/map/7").text == "the map at zoom 7"
    # Another service of the same category stays refused.
    assert client.get("/video").status_code == 403
    choose(client, "accept_all")
    assert client.get("/video").text == "the video"
