from __future__ import annotations

import collections.abc as cabc
import re
import typing as t
from datetime import date
from datetime import datetime
from datetime import timezone
from pathlib import Path

import pytest
from flask import Flask
from flask import Response
from flask import jsonify
from flask import make_response
from flask import render_template_string
from flask import request

from consent import Category
from consent import ConfigurationError
from consent import ConsentState
from consent import Policy
from consent.flask import Consent
from consent.flask import current_consent as current
from consent.gpc import Profile
from consent.gpc import profile_for_country
from consent.testing import read_page
from tests.factories import gpc_policy

SECRET_KEY = "a secret key for the privacy signal tests, long enough"
HONORED = "Opt-out request honored"
GPC = {"Sec-GPC": "1"}
OPTIONAL = ("analytics", "marketing", "media", "westlake_map", "video")

PAGE = """\
<!doctype html>
<html lang="en"><head><title>West Lake</title></head>
<body><main>An article about the lake.</main>
{{ consent_script("analytics", "/static/analytics.js") }}
{{ consent_script("marketing", "/static/ads.js") }}
</body></html>
"""


make_policy = gpc_policy


POLICY = make_policy()
NOTICE_POLICY = Policy(
    categories=(Category("necessary", "Strictly necessary", required=True),),
    mode="notice",
)


def make_app(tmp_path: Path, policy: Policy = POLICY, **config: t.Any) -> Flask:
    app = Flask("test", instance_path=str(tmp_path))
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY, CONSENT_RECEIPTS_URL=None)
    app.config.update(config)
    Consent(app, policy)

    @app.get("/")
    def index() -> Response:
        response = make_response(render_template_string(PAGE))
        response.set_cookie("_ads", "campaign")
        response.set_cookie("_hz_analytics", "visitor")
        return response

    @app.get("/article")
    def article() -> str:
        return "<!doctype html><html><body><main>Only an article.</main></body></html>"

    @app.get("/decisions")
    def decisions() -> Response:
        profile = current.profile
        return jsonify(
            profile=profile.name if profile is not None else None,
            mode=current.mode,
            choices=current.choices() if current.policy.choice_keys else {},
            gpc=current.gpc_honored,
        )

    return app


@pytest.fixture
def receipts_app(tmp_path: Path) -> cabc.Iterator[Flask]:
    app = make_app(tmp_path, CONSENT_RECEIPTS_URL="sqlite")
    yield app
    keeper = app.extensions["consent"].site(app).receipts
    assert keeper is not None
    keeper.close()


def choose(client: t.Any, action: str, *choices: str, **data: str) -> t.Any:
    token = client.get("/consent").get_json()["csrf_token"]
    form = {"action": action, "csrf_token": token, "choice": list(choices), **data}
    response = client.post("/consent", data=form)
    assert response.status_code == 303, response.status_code
    return response


def decisions(client: t.Any, **kwargs: t.Any) -> dict[str, t.Any]:
    data: dict[str, t.Any] = client.get("/decisions", **kwargs).get_json()
    return data


def stored_state(app: Flask, client: t.Any) -> ConsentState:
    cookie = client.get_cookie("consent")
    assert cookie is not None, "no consent cookie"
    codec = app.extensions["consent"].site(app).codec
    state: ConsentState | None = codec.decode(cookie.value, datetime.now(timezone.utc))
    assert state is not None
    return state


def set_cookie_names(response: t.Any) -> list[str]:
    return [h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")]


# Global Privacy Control.


def test_gpc_refuses_sale_on_the_very_first_request(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_PROFILE="us")
    client = app.test_client()
    response = client.get("/", headers=GPC)
    page = read_page(response.text)
    assert page.live == [("script", "analytics")]
    assert page.inert == [("script", "marketing")]
    names = set_cookie_names(response)
    assert "_ads" not in names
    assert "_hz_analytics" in names
    assert "consent" in names
    assert page.has_banner
    assert HONORED in response.text
    state = stored_state(app, client)
    assert (state.method, state.gpc, state.granted) == ("gpc", True, frozenset())


def test_without_gpc_the_us_profile_allows_sale(tmp_path: Path) -> None:
    client = make_app(tmp_path, CONSENT_PROFILE="us").test_client()
    response = client.get("/")
    assert read_page(response.text).live == [
        ("script", "analytics"),
        ("script", "marketing"),
    ]
    assert "_ads" in set_cookie_names(response)
    assert "consent" not in set_cookie_names(response)
    assert HONORED not in response.text


def test_gpc_opt_out_persists_without_the_header(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_PROFILE="us")
    client = app.test_client()
    client.get("/", headers=GPC)
    response = client.get("/")
    assert read_page(response.text).inert == [("script", "marketing")]
    assert "_ads" not in set_cookie_names(response)
    assert "consent" not in set_cookie_names(response)
    assert HONORED in response.text
    assert decisions(client)["choices"] == {
        "analytics": True,
        "marketing": False,
        "media": True,
        "westlake_map": True,
        "video": False,
    }


def test_gpc_is_recorded_in_the_eu_profile_too(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    response = client.get("/", headers=GPC)
    assert read_page(response.text).inert == [
        ("script", "analytics"),
        ("script", "marketing"),
    ]
    assert HONORED in response.text
    assert stored_state(app, client).gpc is True
    assert client.get("/consent").get_json()["gpc"] is True


@pytest.mark.parametrize("value", ["0", "true", " 1 ", "", "yes", "1.0"])
def test_other_values_are_ignored(tmp_path: Path, value: str) -> None:
    client = make_app(tmp_path, CONSENT_PROFILE="us").test_client()
    response = client.get("/", headers={"Sec-GPC": value})
    assert read_page(response.text).inert == []
    assert "_ads" in set_cookie_names(response)
    assert "consent" not in set_cookie_names(response)
    assert HONORED not in response.text


@pytest.mark.parametrize("values", [("0", "1"), ("1", "0")])
def test_one_of_several_headers_is_honoured(
    tmp_path: Path, values: tuple[str, str]
) -> None:
    client = make_app(tmp_path, CONSENT_PROFILE="us").test_client()
    headers = [("Sec-GPC", value) for value in values]
    response = client.get("/", headers=headers)
    assert read_page(response.text).inert == [("script", "marketing")]
    assert "_ads" not in set_cookie_names(response)
    assert HONORED in response.text


def test_profile_that_ignores_gpc(tmp_path: Path) -> None:
    profile = Profile("lenient", "opt-out", honors_gpc=False)
    client = make_app(tmp_path, CONSENT_PROFILE=profile).test_client()
    response = client.get("/", headers=GPC)
    assert read_page(response.text).inert == []
    assert HONORED not in response.text
    assert decisions(client, headers=GPC)["profile"] == "lenient"


def test_accept_all_under_gpc_keeps_sale_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_PROFILE="us")
    client = app.test_client()
    client.get("/", headers=GPC)
    choose(client, "accept_all")
    state = stored_state(app, client)
    assert (state.method, state.gpc) == ("banner", True)
    assert decisions(client)["choices"] == {
        "analytics": True,
        "marketing": False,
        "media": True,
        "westlake_map": True,
        "video": False,
    }
    response = client.get("/")
    assert not read_page(response.text).has_banner
    assert "_ads" not in set_cookie_names(response)


def test_explicit_save_in_preferences_can_grant_sale(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    client.get("/", headers=GPC)
    choose(client, "accept_all")
    choose(client, "save", "analytics", "marketing", method="preferences")
    state = stored_state(app, client)
    assert (state.method, state.gpc) == ("preferences", True)
    assert state.granted == frozenset({"analytics", "marketing"})
    response = client.get("/", headers=GPC)
    assert read_page(response.text).live == [
        ("script", "analytics"),
        ("script", "marketing"),
    ]
    assert "_ads" in set_cookie_names(response)


def test_gpc_wins_over_an_earlier_opt_in(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    choose(client, "accept_all")
    assert decisions(client)["choices"]["marketing"] is True
    response = client.get("/", headers=GPC)
    assert read_page(response.text).inert == [("script", "marketing")]
    assert "_ads" not in set_cookie_names(response)
    state = stored_state(app, client)
    assert state.gpc is True
    assert state.method == "banner"
    assert state.granted == frozenset({"analytics", "media", "westlake_map"})


def test_gpc_after_an_opt_in_expires_sale_cookies(tmp_path: Path) -> None:
    # The signal withdraws what was sold or shared: the cookies the visitor
    # holds for it go in the same response, as after any withdrawal.
    client = make_app(tmp_path).test_client()
    choose(client, "accept_all")
    client.set_cookie("_ads", "campaign")
    client.set_cookie("_hz_analytics", "visitor")
    response = client.get("/decisions", headers=GPC)
    assert response.get_json()["choices"]["marketing"] is False
    expiring = [
        h.split("=", 1)[0]
        for h in response.headers.getlist("Set-Cookie")
        if "Max-Age=0" in h
    ]
    assert expiring == ["_ads"]


def _receipts(app: Flask, consent_id: str) -> list[t.Any]:
    keeper = app.extensions["consent"].site(app).receipts
    receipts: list[t.Any] = keeper.store().for_consent_id(consent_id)
    return receipts


def test_gpc_receipt_is_written(receipts_app: Flask) -> None:
    client = receipts_app.test_client()
    client.get("/", headers=GPC)
    state = stored_state(receipts_app, client)
    (receipt,) = _receipts(receipts_app, state.consent_id)
    assert receipt.method == "gpc"
    assert receipt.path == "/"
    assert dict(receipt.choices) == dict.fromkeys(OPTIONAL, False)
    # The stored opt-out is not recorded again on later pages.
    client.get("/")
    client.get("/", headers=GPC)
    assert len(_receipts(receipts_app, state.consent_id)) == 1
    choose(client, "accept_all")
    methods = [r.method for r in _receipts(receipts_app, state.consent_id)]
    assert sorted(methods) == ["banner", "gpc"]


def test_gpc_on_a_consent_post_is_receipted_once_each(receipts_app: Flask) -> None:
    client = receipts_app.test_client()
    token = client.get("/consent").get_json()["csrf_token"]
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}, headers=GPC
    )
    assert response.status_code == 303
    state = stored_state(receipts_app, client)
    assert state.gpc is True
    assert "marketing" not in state.granted
    receipts = _receipts(receipts_app, state.consent_id)
    assert sorted(r.method for r in receipts) == ["banner", "gpc"]


def test_gpc_support_resource(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert set(data) == {"gpc", "lastUpdate"}
    assert data["gpc"] is True
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["lastUpdate"])
    date.fromisoformat(data["lastUpdate"])
    assert response.cache_control.public
    assert "consent" not in set_cookie_names(response)


def test_gpc_support_resource_last_update_is_configurable(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_GPC_LAST_UPDATE="2026-01-15")
    data = app.test_client().get("/.well-known/gpc.json").get_json()
    assert data == {"gpc": True, "lastUpdate": "2026-01-15"}


def test_gpc_support_resource_can_be_turned_off(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_GPC_SUPPORT=False)
    assert app.test_client().get("/.well-known/gpc.json").status_code == 404


def test_gpc_js_post_records_a_gpc_state(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    token = client.get("/consent").get_json()["csrf_token"]
    response = client.post(
        "/consent",
        json={"action": "accept_all", "method": "gpc_js"},
        headers={"X-Consent-CSRF": token},
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["gpc"] is True
    assert data["needs_banner"] is True
    assert data["choices"] == dict.fromkeys(OPTIONAL, False)
    state = stored_state(app, client)
    assert (state.method, state.gpc, state.granted) == ("gpc", True, frozenset())
    assert HONORED in client.get("/").text


def test_gpc_js_is_for_scripts_only(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    choose(client, "accept_all", method="gpc_js")
    state = stored_state(app, client)
    assert (state.method, state.gpc) == ("banner", False)


def test_vary_includes_sec_gpc_when_the_policy_has_sale_keys(tmp_path: Path) -> None:
    response = make_app(tmp_path / "sale").test_client().get("/")
    assert {"Cookie", "Sec-GPC"} <= set(response.vary)
    no_sale = make_app(tmp_path / "none", make_policy(sale=False))
    response = no_sale.test_client().get("/")
    assert "Cookie" in response.vary
    assert "Sec-GPC" not in response.vary


# Modes.


def test_opt_in_refuses_before_a_choice(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    response = client.get("/")
    assert read_page(response.text).live == []
    assert not {"_ads", "_hz_analytics"} & set(set_cookie_names(response))
    data = decisions(client)
    assert (data["profile"], data["mode"]) == (None, "opt-in")
    assert data["choices"] == dict.fromkeys(OPTIONAL, False)


def test_opt_out_allows_until_refused(tmp_path: Path) -> None:
    client = make_app(tmp_path, make_policy("opt-out")).test_client()
    response = client.get("/")
    page = read_page(response.text)
    assert page.live == [("script", "analytics"), ("script", "marketing")]
    assert page.has_banner
    assert "You can refuse them now" in response.text
    assert {"_ads", "_hz_analytics"} <= set(set_cookie_names(response))
    choose(client, "reject_all")
    response = client.get("/")
    assert read_page(response.text).live == []
    assert not {"_ads", "_hz_analytics"} & set(set_cookie_names(response))


def test_opt_out_with_gpc_refuses_sale(tmp_path: Path) -> None:
    client = make_app(tmp_path, make_policy("opt-out")).test_client()
    response = client.get("/", headers=GPC)
    assert read_page(response.text).live == [("script", "analytics")]
    assert decisions(client)["choices"] == {
        "analytics": True,
        "marketing": False,
        "media": True,
        "westlake_map": True,
        "video": False,
    }


def test_notice_mode_with_optional_categories_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="notice"):
        make_policy("notice")


def test_notice_banner_has_one_button(tmp_path: Path) -> None:
    client = make_app(tmp_path, NOTICE_POLICY).test_client()
    assert decisions(client)["mode"] == "notice"
    response = client.get("/article")
    page = read_page(response.text)
    assert page.has_banner
    assert page.buttons == [("action", "reject_all", "Understood")]
    banner = response.text.split('id="cookie-consent"', 1)[1].split("</aside>")[0]
    assert banner.count("<button") == 1
    assert "Accept all" not in banner
    assert "only cookies that are needed" in banner
    posted = client.post("/consent", data={**page.form, "action": "reject_all"})
    assert posted.status_code == 303
    assert not read_page(client.get("/article").text).has_banner


def test_uk_profile_exemption_until_objection(tmp_path: Path) -> None:
    client = make_app(tmp_path, CONSENT_PROFILE="uk").test_client()
    response = client.get("/")
    page = read_page(response.text)
    assert page.live == [("script", "analytics")]
    assert page.inert == [("script", "marketing")]
    assert "_hz_analytics" in set_cookie_names(response)
    # The banner offers the objection in one click.
    assert ("action", "reject_all", "Reject all") in page.buttons
    assert decisions(client)["profile"] == "uk"
    choose(client, "reject_all")
    response = client.get("/")
    assert read_page(response.text).live == []
    assert "_hz_analytics" not in set_cookie_names(response)
    assert decisions(client)["choices"]["analytics"] is False


def test_uk_exemption_needs_the_category_marked(tmp_path: Path) -> None:
    policy = Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category("analytics", "Analytics"),
            Category("marketing", "Marketing"),
        )
    )
    client = make_app(tmp_path, policy, CONSENT_PROFILE="uk").test_client()
    assert decisions(client)["choices"] == {"analytics": False, "marketing": False}


def _country_selector() -> Profile:
    return profile_for_country(request.headers.get("CF-IPCountry"))


@pytest.mark.parametrize(
    ("country", "profile", "mode", "analytics", "marketing"),
    [
        ("DE", "eu", "opt-in", False, False),
        ("FR", "eu", "opt-in", False, False),
        ("GB", "uk", "opt-in", True, False),
        ("US", "us", "opt-out", True, True),
        ("XX", "eu", "opt-in", False, False),
        (None, "eu", "opt-in", False, False),
    ],
)
def test_profile_selector_from_a_country_header(
    tmp_path: Path,
    country: str | None,
    profile: str,
    mode: str,
    analytics: bool,
    marketing: bool,
) -> None:
    app = make_app(tmp_path, CONSENT_PROFILE_SELECTOR=_country_selector)
    client = app.test_client()
    headers = {"CF-IPCountry": country} if country is not None else {}
    data = decisions(client, headers=headers)
    assert (data["profile"], data["mode"]) == (profile, mode)
    assert data["choices"]["analytics"] is analytics
    assert data["choices"]["marketing"] is marketing
    page = read_page(client.get("/", headers=headers).text)
    assert (("script", "analytics") in page.live) is analytics


def test_us_visitor_with_gpc(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_PROFILE_SELECTOR=_country_selector)
    client = app.test_client()
    data = decisions(client, headers={"CF-IPCountry": "US", **GPC})
    assert data["gpc"] is True
    assert data["choices"]["marketing"] is False
    assert data["choices"]["analytics"] is True


def test_selector_may_return_a_name_or_none(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        CONSENT_PROFILE="uk",
        CONSENT_PROFILE_SELECTOR=lambda: request.args.get("profile"),
    )
    client = app.test_client()
    assert decisions(client, query_string={"profile": "us"})["profile"] == "us"
    assert decisions(client)["profile"] == "uk"


def test_unknown_profile_name_fails_in_init_app(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_PROFILE"):
        make_app(tmp_path, CONSENT_PROFILE="california")


def test_profile_selector_must_be_callable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_PROFILE_SELECTOR"):
        make_app(tmp_path, CONSENT_PROFILE_SELECTOR="us")
