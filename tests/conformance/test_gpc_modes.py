"""Global Privacy Control, the consent modes and the regional profiles."""

from __future__ import annotations

import re
import typing as t
from datetime import date

import pytest

from consent import Category
from consent import Policy
from consent.gpc import Profile
from consent.gpc import profile_for_country
from consent.testing import read_page
from tests.conformance.conftest import View
from tests.conformance.pages import choose
from tests.conformance.pages import set_cookie_names
from tests.factories import gpc_policy as make_policy

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

POLICY = make_policy()
NOTICE_POLICY = Policy(
    categories=(Category("necessary", "Strictly necessary", required=True),),
    mode="notice",
)


def _decisions(current: t.Any) -> dict[str, t.Any]:
    profile = current.profile
    return {
        "profile": profile.name if profile is not None else None,
        "mode": current.mode,
        "choices": current.choices() if current.policy.choice_keys else {},
        "gpc": current.gpc_honored,
    }


VIEWS = {
    "/": View(
        PAGE, cookies=(("_ads", "campaign", {}), ("_hz_analytics", "visitor", {}))
    ),
    "/article": View(
        "<!doctype html><html><body><main>Only an article.</main></body></html>"
    ),
    "/decisions": View(data=_decisions),
}


def make_app(adapter, policy: Policy = POLICY, **config: t.Any):
    config.setdefault("CONSENT_RECEIPTS_URL", None)
    return adapter.make_app(policy, VIEWS, **config)


def decisions(client, path: str = "/decisions", **kwargs: t.Any) -> dict[str, t.Any]:
    data: dict[str, t.Any] = client.get(path, **kwargs).json()
    return data


# Global Privacy Control.


def test_gpc_refuses_sale_on_the_very_first_request(adapter) -> None:
    app = make_app(adapter, CONSENT_PROFILE="us")
    client = app.client()
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
    state = app.stored_state(client)
    assert (state.method, state.gpc, state.granted) == ("gpc", True, frozenset())


def test_without_gpc_the_us_profile_allows_sale(adapter) -> None:
    client = make_app(adapter, CONSENT_PROFILE="us").client()
    response = client.get("/")
    assert read_page(response.text).live == [
        ("script", "analytics"),
        ("script", "marketing"),
    ]
    assert "_ads" in set_cookie_names(response)
    assert "consent" not in set_cookie_names(response)
    assert HONORED not in response.text


def test_gpc_opt_out_persists_without_the_header(adapter) -> None:
    client = make_app(adapter, CONSENT_PROFILE="us").client()
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


def test_gpc_is_recorded_in_the_eu_profile_too(adapter) -> None:
    app = make_app(adapter)
    client = app.client()
    response = client.get("/", headers=GPC)
    assert read_page(response.text).inert == [
        ("script", "analytics"),
        ("script", "marketing"),
    ]
    assert HONORED in response.text
    assert app.stored_state(client).gpc is True
    assert client.get("/consent").json()["gpc"] is True


@pytest.mark.parametrize("value", ["0", "true", " 1 ", "", "yes", "1.0"])
def test_other_values_are_ignored(adapter, value: str) -> None:
    client = make_app(adapter, CONSENT_PROFILE="us").client()
    response = client.get("/", headers={"Sec-GPC": value})
    assert read_page(response.text).inert == []
    assert "_ads" in set_cookie_names(response)
    assert "consent" not in set_cookie_names(response)
    assert HONORED not in response.text


@pytest.mark.parametrize("values", [("0", "1"), ("1", "0")])
def test_one_of_several_headers_is_honoured(adapter, values: tuple[str, str]) -> None:
    client = make_app(adapter, CONSENT_PROFILE="us").client()
    headers = [("Sec-GPC", value) for value in values]
    response = client.get("/", headers=headers)
    assert read_page(response.text).inert == [("script", "marketing")]
    assert "_ads" not in set_cookie_names(response)
    assert HONORED in response.text


def test_profile_that_ignores_gpc(adapter) -> None:
    profile = Profile("lenient", "opt-out", honors_gpc=False)
    client = make_app(adapter, CONSENT_PROFILE=profile).client()
    response = client.get("/", headers=GPC)
    assert read_page(response.text).inert == []
    assert HONORED not in response.text
    assert decisions(client, headers=GPC)["profile"] == "lenient"


def test_accept_all_under_gpc_keeps_sale_refused(adapter) -> None:
    app = make_app(adapter, CONSENT_PROFILE="us")
    client = app.client()
    client.get("/", headers=GPC)
    choose(client, "accept_all")
    state = app.stored_state(client)
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


def test_explicit_save_in_preferences_can_grant_sale(adapter) -> None:
    app = make_app(adapter)
    client = app.client()
    client.get("/", headers=GPC)
    choose(client, "accept_all")
    choose(client, "save", "analytics", "marketing", method="preferences")
    state = app.stored_state(client)
    assert (state.method, state.gpc) == ("preferences", True)
    assert state.granted == frozenset({"analytics", "marketing"})
    response = client.get("/", headers=GPC)
    assert read_page(response.text).live == [
        ("script", "analytics"),
        ("script", "marketing"),
    ]
    assert "_ads" in set_cookie_names(response)


def test_gpc_wins_over_an_earlier_opt_in(adapter) -> None:
    app = make_app(adapter)
    client = app.client()
    choose(client, "accept_all")
    assert decisions(client)["choices"]["marketing"] is True
    response = client.get("/", headers=GPC)
    assert read_page(response.text).inert == [("script", "marketing")]
    assert "_ads" not in set_cookie_names(response)
    state = app.stored_state(client)
    assert state.gpc is True
    assert state.method == "banner"
    assert state.granted == frozenset({"analytics", "media", "westlake_map"})


def test_gpc_after_an_opt_in_expires_sale_cookies(adapter) -> None:
    # The signal withdraws what was sold or shared: the cookies the visitor
    # holds for it go in the same response, as after any withdrawal.
    client = make_app(adapter).client()
    choose(client, "accept_all")
    client.set_cookie("_ads", "campaign")
    client.set_cookie("_hz_analytics", "visitor")
    response = client.get("/decisions", headers=GPC)
    assert response.json()["choices"]["marketing"] is False
    expiring = [
        h.split("=", 1)[0] for h in response.set_cookie_headers if "Max-Age=0" in h
    ]
    assert expiring == ["_ads"]


def test_gpc_support_resource(adapter) -> None:
    client = make_app(adapter).client()
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.json()
    assert set(data) == {"gpc", "lastUpdate"}
    assert data["gpc"] is True
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["lastUpdate"])
    date.fromisoformat(data["lastUpdate"])
    assert response.cache_control.public
    assert "consent" not in set_cookie_names(response)


def test_gpc_support_resource_last_update_is_configurable(adapter) -> None:
    app = make_app(adapter, CONSENT_GPC_LAST_UPDATE="2026-01-15")
    data = app.client().get("/.well-known/gpc.json").json()
    assert data == {"gpc": True, "lastUpdate": "2026-01-15"}


def test_gpc_support_resource_can_be_turned_off(adapter) -> None:
    app = make_app(adapter, CONSENT_GPC_SUPPORT=False)
    assert app.client().get("/.well-known/gpc.json").status_code == 404


def test_gpc_js_post_records_a_gpc_state(adapter) -> None:
    app = make_app(adapter)
    client = app.client()
    token = client.get("/consent").json()["csrf_token"]
    response = client.post(
        "/consent",
        json={"action": "accept_all", "method": "gpc_js"},
        headers={"X-Consent-CSRF": token},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["gpc"] is True
    assert data["needs_banner"] is True
    assert data["choices"] == dict.fromkeys(OPTIONAL, False)
    state = app.stored_state(client)
    assert (state.method, state.gpc, state.granted) == ("gpc", True, frozenset())
    assert HONORED in client.get("/").text


def test_gpc_js_is_for_scripts_only(adapter) -> None:
    app = make_app(adapter)
    client = app.client()
    choose(client, "accept_all", method="gpc_js")
    state = app.stored_state(client)
    assert (state.method, state.gpc) == ("banner", False)


def test_vary_includes_sec_gpc_when_the_policy_has_sale_keys(adapter) -> None:
    response = make_app(adapter).client().get("/")
    assert {"Cookie", "Sec-GPC"} <= set(response.vary)
    no_sale = make_app(adapter, make_policy(sale=False))
    response = no_sale.client().get("/")
    assert "Cookie" in response.vary
    assert "Sec-GPC" not in response.vary


# Modes.


def test_opt_in_refuses_before_a_choice(adapter) -> None:
    client = make_app(adapter).client()
    response = client.get("/")
    assert read_page(response.text).live == []
    assert not {"_ads", "_hz_analytics"} & set(set_cookie_names(response))
    data = decisions(client)
    assert (data["profile"], data["mode"]) == (None, "opt-in")
    assert data["choices"] == dict.fromkeys(OPTIONAL, False)


def test_opt_out_allows_until_refused(adapter) -> None:
    client = make_app(adapter, make_policy("opt-out")).client()
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


def test_opt_out_with_gpc_refuses_sale(adapter) -> None:
    client = make_app(adapter, make_policy("opt-out")).client()
    response = client.get("/", headers=GPC)
    assert read_page(response.text).live == [("script", "analytics")]
    assert decisions(client)["choices"] == {
        "analytics": True,
        "marketing": False,
        "media": True,
        "westlake_map": True,
        "video": False,
    }


def test_notice_banner_has_one_button(adapter) -> None:
    client = make_app(adapter, NOTICE_POLICY).client()
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


def test_uk_profile_exemption_until_objection(adapter) -> None:
    client = make_app(adapter, CONSENT_PROFILE="uk").client()
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


def test_uk_exemption_needs_the_category_marked(adapter) -> None:
    policy = Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category("analytics", "Analytics"),
            Category("marketing", "Marketing"),
        )
    )
    client = make_app(adapter, policy, CONSENT_PROFILE="uk").client()
    assert decisions(client)["choices"] == {"analytics": False, "marketing": False}


def _country(request) -> Profile:
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
    adapter,
    country: str | None,
    profile: str,
    mode: str,
    analytics: bool,
    marketing: bool,
) -> None:
    app = make_app(adapter, CONSENT_PROFILE_SELECTOR=adapter.selector(_country))
    client = app.client()
    headers = {"CF-IPCountry": country} if country is not None else {}
    data = decisions(client, headers=headers)
    assert (data["profile"], data["mode"]) == (profile, mode)
    assert data["choices"]["analytics"] is analytics
    assert data["choices"]["marketing"] is marketing
    page = read_page(client.get("/", headers=headers).text)
    assert (("script", "analytics") in page.live) is analytics


def test_us_visitor_with_gpc(adapter) -> None:
    app = make_app(adapter, CONSENT_PROFILE_SELECTOR=adapter.selector(_country))
    client = app.client()
    data = decisions(client, headers={"CF-IPCountry": "US", **GPC})
    assert data["gpc"] is True
    assert data["choices"]["marketing"] is False
    assert data["choices"]["analytics"] is True


def test_selector_may_return_a_name_or_none(adapter) -> None:
    app = make_app(
        adapter,
        CONSENT_PROFILE="uk",
        CONSENT_PROFILE_SELECTOR=adapter.selector(lambda r: r.args.get("profile")),
    )
    client = app.client()
    assert decisions(client, "/decisions?profile=us")["profile"] == "us"
    assert decisions(client)["profile"] == "uk"
