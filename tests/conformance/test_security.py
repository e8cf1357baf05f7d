"""What an attacker or a broken client sends: forged and stale cookies,
cross-site posts, missing tokens; and rotating the signing key."""

from __future__ import annotations

import collections.abc as cabc
import hashlib
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from itsdangerous import Signer
from itsdangerous import URLSafeTimedSerializer

from consent import ConsentState
from consent import Cookie
from consent import CookieCodec
from consent import Policy
from consent.codec import SALT
from tests.conformance.conftest import View
from tests.conformance.pages import BANNER
from tests.conformance.pages import HALF_YEAR
from tests.conformance.pages import SCRIPT
from tests.conformance.pages import max_age_of
from tests.conformance.pages import post_choice
from tests.conformance.pages import set_cookies
from tests.conformance.pages import state_of
from tests.conformance.pages import token_of
from tests.conftest import SECRET_KEY
from tests.conftest import make_policy

OLD_KEY = "the previous secret key of the test app, now rotated"
NEW_KEY = "the current secret key of the test app after rotating"


def _accepted_cookie(client) -> str:
    post_choice(client, "accept_all")
    value = client.get_cookie("consent")
    assert value is not None
    return value


def _state(policy: Policy, given_at: datetime, *granted: str) -> ConsentState:
    return ConsentState(
        granted=frozenset(granted),
        given_at=given_at,
        revision=policy.revision,
        consent_id="kc7gGIfk3ZKWwFDSM0a4Qw",
    )


def _flip_signature(value: str) -> str:
    payload, signature = value.rsplit(".", 1)
    swapped = "B" if signature[10] == "A" else "A"
    return f"{payload}.{signature[:10]}{swapped}{signature[11:]}"


def _grant_other_bits(value: str) -> str:
    fields = value.split(".")
    fields[3] = "1" if fields[3] != "1" else "2"
    return ".".join(fields)


def _guessed_key(value: str) -> str:
    payload = value.rsplit(".", 1)[0]
    signer = Signer("guessed key", salt=SALT, digest_method=hashlib.sha256)
    return signer.sign(payload).decode()


def _session_cookie(value: str) -> str:
    # Signed with the app's own key, as Flask signs its session cookie.
    serializer = URLSafeTimedSerializer(
        SECRET_KEY,
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return serializer.dumps({"consent": "accept_all"})


TAMPERED: dict[str, cabc.Callable[[str], str]] = {
    "changed signature": _flip_signature,
    "changed payload, old signature": _grant_other_bits,
    "signed with a guessed key": _guessed_key,
    "session cookie signed with the app's key": _session_cookie,
    "empty": lambda value: "",
    "dot": lambda value: ".",
    "upper-cased": lambda value: value.upper(),
    "truncated": lambda value: value[:-3],
}


@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_cookie_shows_the_banner_and_is_deleted(adapter, tamper) -> None:
    client = adapter.make_app().client()
    value = _accepted_cookie(client)
    assert SCRIPT in client.get("/").text
    client.set_cookie("consent", tamper(value))
    response = client.get("/")
    assert response.status_code == 200
    assert BANNER in response.text
    assert SCRIPT not in response.text
    header = set_cookies(response)["consent"]
    assert header.startswith("consent=;")
    assert "Max-Age=0" in header
    assert "Path=/" in header
    assert client.get_cookie("consent") is None
    assert state_of(client)["needs_banner"] is True


#: A page that shows whether analytics is allowed, signed with NEW_KEY.
RAW_VIEWS = {
    "/": View(
        '<html><body>{% if consent.allows("analytics") %}' + SCRIPT + "{% endif %}"
        "</body></html>"
    )
}


@pytest.fixture
def raw_client(adapter):
    """A client that sends only the ``Cookie`` header it is given (one app
    per test, shared by the examples of a property test)."""
    app = adapter.make_app(views=RAW_VIEWS, CONSENT_SECRET_KEY=NEW_KEY)
    return app.client(use_cookies=False)


_COOKIE_CHARS = st.characters(
    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'
)

_TWINS = {"-": "+", "_": "/"}

# One app per test, not per example; no deadline: the machine is shared,
# and the time of one example is not what these tests check.
_ONE_APP = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_ONE_APP
@given(value=st.text(_COOKIE_CHARS, max_size=200))
def test_any_cookie_value_is_no_consent_and_no_error(raw_client, value: str) -> None:
    response = raw_client.get("/", headers={"Cookie": f"consent={value}"})
    assert response.status_code == 200
    assert BANNER in response.text
    assert SCRIPT not in response.text


@_ONE_APP
@given(data=st.data())
def test_any_change_to_a_real_cookie_is_no_consent(raw_client, data) -> None:
    policy = make_policy()
    now = datetime.now(timezone.utc)
    value = CookieCodec([NEW_KEY], policy).encode(_state(policy, now, "analytics"))
    # Not the last character: its two low bits are base64 padding, which the
    # decoder ignores, so three other characters spell the same signature.
    # Nor a character's twin of standard base64 ("+" for "-", "/" for "_"):
    # the URL-safe decoder reads both as the same bits, so the value is not
    # changed.
    index = data.draw(st.integers(0, len(value) - 2))
    same = {value[index], _TWINS.get(value[index], value[index])}
    char = data.draw(_COOKIE_CHARS.filter(lambda c: c not in same))
    changed = value[:index] + char + value[index + 1 :]
    response = raw_client.get("/", headers={"Cookie": f"consent={changed}"})
    assert response.status_code == 200
    assert SCRIPT not in response.text
    # The genuine value does grant analytics: the check above is not vacuous.
    genuine = raw_client.get("/", headers={"Cookie": f"consent={value}"})
    assert SCRIPT in genuine.text


def test_the_valid_one_of_duplicate_cookies_counts(raw_client) -> None:
    # A sibling subdomain can add a second cookie of the same name: the
    # valid one is used, wherever it comes, and nothing is deleted.
    client = raw_client
    policy = make_policy()
    now = datetime.now(timezone.utc)
    value = CookieCodec([NEW_KEY], policy).encode(_state(policy, now, "analytics"))
    forged = value.upper()
    for header in (
        f"consent={forged}; consent={value}",
        f"consent={value}; consent={forged}",
    ):
        response = client.get("/", headers={"Cookie": header})
        assert SCRIPT in response.text
        assert not [h for h in response.set_cookie_headers if h.startswith("consent=")]
    only_forged = client.get("/", headers={"Cookie": f"consent={forged}"})
    assert SCRIPT not in only_forged.text


def test_expired_cookie_shows_the_banner_and_is_deleted(adapter) -> None:
    app = adapter.make_app()
    client = app.client()
    policy = app.site.policy
    now = datetime.now(timezone.utc)
    expired = _state(policy, now - policy.max_age - timedelta(seconds=1), "analytics")
    client.set_cookie("consent", app.encode(expired))
    response = client.get("/")
    assert BANNER in response.text
    assert SCRIPT not in response.text
    assert "Max-Age=0" in set_cookies(response)["consent"]


def test_cookie_from_the_future_is_not_trusted(adapter) -> None:
    app = adapter.make_app()
    client = app.client()
    future = _state(
        app.site.policy, datetime.now(timezone.utc) + timedelta(days=30), "analytics"
    )
    client.set_cookie("consent", app.encode(future))
    response = client.get("/")
    assert BANNER in response.text
    assert SCRIPT not in response.text


def test_cookie_of_another_revision_asks_again(adapter) -> None:
    client = adapter.make_app().client()
    value = _accepted_cookie(client)
    consent_id = state_of(client)["consent_id"]
    extra = Cookie(
        name="_hz_visit", provider="This site", purpose="X", duration="1 day"
    )
    other = adapter.make_app(make_policy(extra)).client()
    other.set_cookie("consent", value)
    response = other.get("/")
    assert response.status_code == 200
    assert BANNER in response.text
    assert SCRIPT not in response.text
    assert state_of(other)["choices"] == {
        "analytics": False,
        "media": False,
        "westlake_map": False,
    }
    # Asked again, the visitor keeps their consent id.
    post_choice(other, "accept_all")
    assert state_of(other)["consent_id"] == consent_id
    assert SCRIPT in other.get("/").text


# Forms from elsewhere.


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_missing_or_wrong_csrf_token_is_refused(adapter, token) -> None:
    client = adapter.make_app().client()
    client.get("/")
    data = {"action": "accept_all"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/consent", data=data)
    assert response.status_code == 403
    assert "security token" in response.text
    assert "reload the page and choose again" in response.text
    assert client.get_cookie("consent") is None


def test_token_of_another_visitor_is_refused(adapter) -> None:
    app = adapter.make_app()
    client = app.client()
    other = app.client()
    token = token_of(other.get("/").text)
    client.get("/")
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}
    )
    assert response.status_code == 403
    assert "is not valid" in response.text
    assert client.get_cookie("consent") is None


def test_post_without_the_csrf_cookie_is_refused(adapter) -> None:
    app = adapter.make_app()
    token = token_of(app.client().get("/").text)
    fresh = app.client()
    response = fresh.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}
    )
    assert response.status_code == 403
    assert "allow cookies for this site" in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://localhost"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        # A grant from a frame on another site (clickjacking, R40).
        {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"},
        {"Referer": "http://evil.example/page"},
        {"Referer": "http://localhost.evil.example/"},
    ],
    ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()),
)
def test_cross_site_post_is_refused(adapter, headers) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}, headers=headers
    )
    assert response.status_code == 403
    assert "make it on this site" in response.text
    assert client.get_cookie("consent") is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Referer": "http://localhost/article"},
        {},
    ],
)
def test_same_origin_post_is_accepted(adapter, headers) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}, headers=headers
    )
    assert response.status_code == 303
    assert client.get_cookie("consent") is not None


def test_json_post_without_the_csrf_header_is_refused(adapter) -> None:
    client = adapter.make_app().client()
    client.get("/")
    response = client.post("/consent", json={"action": "accept_all"})
    assert response.status_code == 403
    assert client.get_cookie("consent") is None


# Rotating the key: CONSENT_SECRET_KEY lists the keys, oldest first.


def test_cookie_signed_with_an_older_key_is_reissued(adapter) -> None:
    policy = make_policy()
    old_client = adapter.make_app(policy, CONSENT_SECRET_KEY=OLD_KEY).client()
    value = _accepted_cookie(old_client)
    now = datetime.now(timezone.utc)
    original = CookieCodec([OLD_KEY], policy).decode(value, now)
    assert original is not None

    client = adapter.make_app(policy, CONSENT_SECRET_KEY=[OLD_KEY, NEW_KEY]).client()
    client.set_cookie("consent", value)
    response = client.get("/")
    assert BANNER not in response.text
    assert SCRIPT in response.text
    header = set_cookies(response)["consent"]
    assert max_age_of(header) <= HALF_YEAR
    new_value = client.get_cookie("consent")
    assert new_value is not None
    assert new_value != value
    newest_only = CookieCodec([NEW_KEY], policy)
    reissued = newest_only.decode(new_value, now)
    assert reissued == original
    assert not newest_only.needs_resign(new_value)
    # Once re-signed, it is not written again.
    assert "consent" not in set_cookies(client.get("/"))


def test_reissue_keeps_the_original_time(adapter) -> None:
    policy = make_policy()
    given_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=100)
    value = CookieCodec([OLD_KEY], policy).encode(_state(policy, given_at, "analytics"))
    client = adapter.make_app(policy, CONSENT_SECRET_KEY=[OLD_KEY, NEW_KEY]).client()
    client.set_cookie("consent", value)
    response = client.get("/")
    assert SCRIPT in response.text
    remaining = max_age_of(set_cookies(response)["consent"])
    assert abs(remaining - 82 * 86400) <= 60
    reissued = CookieCodec([NEW_KEY], policy).decode(
        client.get_cookie("consent"), datetime.now(timezone.utc)
    )
    assert reissued is not None and reissued.given_at == given_at


def test_cookie_signed_with_a_dropped_key_shows_the_banner(adapter) -> None:
    policy = make_policy()
    value = _accepted_cookie(
        adapter.make_app(policy, CONSENT_SECRET_KEY=OLD_KEY).client()
    )
    client = adapter.make_app(policy, CONSENT_SECRET_KEY=NEW_KEY).client()
    client.set_cookie("consent", value)
    response = client.get("/")
    assert BANNER in response.text
    assert SCRIPT not in response.text
    assert "Max-Age=0" in set_cookies(response)["consent"]


# Clickjacking (R40): other sites may not frame the choice.


@pytest.mark.parametrize(
    "path", ["/consent", "/consent/preferences", "/consent/declaration"]
)
def test_the_library_pages_may_not_be_framed_by_other_sites(adapter, path) -> None:
    response = adapter.make_app().client().get(path)
    assert response.status_code == 200
    assert "frame-ancestors 'self'" in response.headers.getlist(
        "Content-Security-Policy"
    )
    assert response.headers.get("X-Frame-Options") == "SAMEORIGIN"


def test_a_refused_post_may_not_be_framed_either(adapter) -> None:
    response = adapter.make_app().client().post("/consent", data={"action": "x"})
    assert response.status_code in (400, 403)
    assert response.headers.get("X-Frame-Options") == "SAMEORIGIN"


def test_framing_can_be_denied_to_every_page(adapter) -> None:
    client = adapter.make_app(CONSENT_FRAME_ANCESTORS="'none'").client()
    response = client.get("/consent/preferences")
    assert "frame-ancestors 'none'" in response.headers.getlist(
        "Content-Security-Policy"
    )
    assert response.headers.get("X-Frame-Options") == "DENY"


def test_framing_headers_can_be_left_to_the_app(adapter) -> None:
    client = adapter.make_app(CONSENT_FRAME_ANCESTORS=None).client()
    response = client.get("/consent/preferences")
    assert response.headers.get("X-Frame-Options") is None
    assert response.headers.getlist("Content-Security-Policy") == []


def test_the_app_pages_keep_their_own_framing_rules(adapter) -> None:
    # The app decides for its own pages (framing_headers() helps it).
    response = adapter.make_app().client().get("/")
    assert response.headers.get("X-Frame-Options") is None
