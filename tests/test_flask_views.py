from __future__ import annotations

import collections.abc as cabc
import contextlib
import hashlib
import re
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from html.parser import HTMLParser
from importlib import resources
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask import render_template_string
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from itsdangerous import Signer

from consent import ConsentState
from consent import Cookie
from consent import CookieCodec
from consent import Policy
from consent.codec import SALT
from consent.flask import Consent
from consent.flask import consent_changed
from consent.flask import consent_given
from consent.flask import consent_withdrawn
from consent.html import asset_version

SCRIPT = '<script src="/static/analytics.js"></script>'
BANNER = 'id="cookie-consent"'
ARTICLE = "<!doctype html><html><body><main>Article</main></body></html>"
HALF_YEAR = 182 * 86400
OLD_KEY = "the previous secret key of the test app, now rotated"
NEW_KEY = "the current secret key of the test app after rotating"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str, name: str) -> list[dict[str, str | None]]:
    parser = _Tags()
    parser.feed(html)
    return [attrs for tag, attrs in parser.tags if tag == name]


def banner_of(html: str) -> str:
    match = re.search(r'<aside id="cookie-consent".*?</aside>', html, re.DOTALL)
    assert match is not None, "no banner on the page"
    return match[0]


def set_cookies(response: t.Any) -> dict[str, str]:
    """The response's ``Set-Cookie`` headers by cookie name."""
    return {
        header.split("=", 1)[0]: header
        for header in response.headers.getlist("Set-Cookie")
    }


def max_age_of(header: str) -> int:
    match = re.search(r"Max-Age=(\d+)", header)
    assert match is not None
    return int(match[1])


def choose(
    client: t.Any, csrf_token: cabc.Callable[[str], str], action: str, **data: t.Any
) -> t.Any:
    token = csrf_token(client.get("/consent/preferences").text)
    return client.post("/consent", data={"action": action, "csrf_token": token, **data})


def state_of(client: t.Any) -> dict[str, t.Any]:
    response = client.get("/consent")
    assert response.status_code == 200
    data: dict[str, t.Any] = response.get_json()
    return data


@contextlib.contextmanager
def recorded(signal: t.Any, app: Flask) -> cabc.Iterator[list[dict[str, t.Any]]]:
    """Record every send of ``signal`` by ``app`` (the real app, not a proxy)."""
    calls: list[dict[str, t.Any]] = []

    def record(sender: t.Any, **kwargs: t.Any) -> None:
        calls.append({"sender": sender, **kwargs})

    with signal.connected_to(record, sender=app):
        yield calls


def test_first_visit_shows_the_banner(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert html.count(BANNER) == 1
    banner = banner_of(html)
    buttons = tags(banner, "button")
    assert len(buttons) == 3
    assert banner.count('<button type="submit" class="consent-button"') == 3
    assert [b.get("value") for b in buttons[:2]] == ["accept_all", "reject_all"]
    # Customize submits the form that leads to the preferences.
    assert buttons[2].get("form") == "consent-customize"
    assert all(b["type"] == "submit" for b in buttons)
    assert all(b["class"] == "consent-button" for b in buttons)
    # Accept and reject are in the same form, which posts to the endpoint.
    form = banner.split("<form", 2)[1]
    assert 'value="accept_all"' in form and 'value="reject_all"' in form
    assert tags(banner, "form")[0]["action"] == "/consent"
    assert SCRIPT not in html
    assert "Cookie" in response.vary
    assert response.cache_control.private
    assert "consent" not in set_cookies(response)
    assert "consent_csrf" in set_cookies(response)


def test_settings_link_opens_the_preferences(client) -> None:
    html = client.get("/").text
    links = [a for a in tags(html, "a") if a.get("class") == "consent-settings-link"]
    assert len(links) == 1
    assert links[0]["href"] == "/consent/preferences?next=/"


def test_reject_all_sets_the_cookie_and_redirects(client, csrf_token) -> None:
    token = csrf_token(client.get("/").text)
    response = client.post(
        "/consent",
        data={"action": "reject_all", "csrf_token": token, "next": "/article?p=2"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/article?p=2"
    assert response.cache_control.no_store
    header = set_cookies(response)["consent"]
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/" in header
    assert "Domain=" not in header
    assert "Secure" not in header  # plain HTTP
    assert abs(max_age_of(header) - HALF_YEAR) <= 2
    cookie = client.get_cookie("consent")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"

    page = client.get("/")
    assert BANNER not in page.text
    assert SCRIPT not in page.text
    assert "consent" not in set_cookies(page)
    assert state_of(client)["choices"] == {
        "analytics": False,
        "media": False,
        "westlake_map": False,
    }


def test_accept_all_shows_the_analytics_script(client, csrf_token) -> None:
    response = choose(client, csrf_token, "accept_all")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert SCRIPT in page.text
    assert BANNER not in page.text
    assert state_of(client)["choices"] == {
        "analytics": True,
        "media": True,
        "westlake_map": True,
    }


def test_save_grants_exactly_the_chosen_category(client, csrf_token) -> None:
    response = choose(client, csrf_token, "save", choice="analytics")
    assert response.status_code == 303
    assert SCRIPT in client.get("/").text
    assert state_of(client)["choices"] == {
        "analytics": True,
        "media": False,
        "westlake_map": False,
    }


def test_save_a_category_brings_its_services(client, csrf_token) -> None:
    choose(client, csrf_token, "save", choice=["media"])
    assert state_of(client)["choices"] == {
        "analytics": False,
        "media": True,
        "westlake_map": True,
    }
    assert SCRIPT not in client.get("/").text


def test_page_that_depends_on_consent_is_private_after_a_choice(
    client, csrf_token
) -> None:
    choose(client, csrf_token, "accept_all")
    page = client.get("/")
    assert SCRIPT in page.text
    assert "Cookie" in page.vary
    # A shared cache must not hand this page (with its tracker) to others.
    assert page.cache_control.private


def _accepted_cookie(client: t.Any, csrf_token: cabc.Callable[[str], str]) -> str:
    choose(client, csrf_token, "accept_all")
    cookie = client.get_cookie("consent")
    assert cookie is not None
    value: str = cookie.value
    return value


def _flip_signature(value: str, app: Flask) -> str:
    payload, signature = value.rsplit(".", 1)
    swapped = "B" if signature[10] == "A" else "A"
    return f"{payload}.{signature[:10]}{swapped}{signature[11:]}"


def _grant_other_bits(value: str, app: Flask) -> str:
    fields = value.split(".")
    fields[3] = "1" if fields[3] != "1" else "2"
    return ".".join(fields)


def _guessed_key(value: str, app: Flask) -> str:
    payload = value.rsplit(".", 1)[0]
    signer = Signer("guessed key", salt=SALT, digest_method=hashlib.sha256)
    return signer.sign(payload).decode()


def _session_cookie(value: str, app: Flask) -> str:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    dumped: str = serializer.dumps({"consent": "accept_all"})
    return dumped


TAMPERED: dict[str, cabc.Callable[[str, Flask], str]] = {
    "changed signature": _flip_signature,
    "changed payload, old signature": _grant_other_bits,
    "signed with a guessed key": _guessed_key,
    "Flask session cookie": _session_cookie,
    "empty": lambda value, app: "",
    "dot": lambda value, app: ".",
    "upper-cased": lambda value, app: value.upper(),
    "truncated": lambda value, app: value[:-3],
}


@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_cookie_shows_the_banner_and_is_deleted(
    app, client, csrf_token, tamper
) -> None:
    value = _accepted_cookie(client, csrf_token)
    assert SCRIPT in client.get("/").text
    client.set_cookie("consent", tamper(value, app))
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


@pytest.fixture(scope="module")
def raw_client(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    """A client that sends only the ``Cookie`` header it is given."""
    app = Flask("test", instance_path=str(tmp_path_factory.mktemp("instance")))
    app.config.update(TESTING=True, SECRET_KEY=NEW_KEY)
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return render_template_string(
            '<html><body>{% if consent.allows("analytics") %}' + SCRIPT + "{% endif %}"
            "</body></html>"
        )

    return app.test_client(use_cookies=False)


_COOKIE_CHARS = st.characters(
    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'
)


@settings(max_examples=60)
@given(value=st.text(_COOKIE_CHARS, max_size=200))
def test_any_cookie_value_is_no_consent_and_no_error(raw_client, value: str) -> None:
    response = raw_client.get("/", headers={"Cookie": f"consent={value}"})
    assert response.status_code == 200
    assert BANNER in response.text
    assert SCRIPT not in response.text


@settings(max_examples=60)
@given(data=st.data())
def test_any_change_to_a_real_cookie_is_no_consent(raw_client, policy, data) -> None:
    now = datetime.now(timezone.utc)
    value = CookieCodec([NEW_KEY], policy).encode(_state(policy, now, "analytics"))
    # Not the last character: its two low bits are base64 padding, which the
    # decoder ignores, so three other characters spell the same signature.
    index = data.draw(st.integers(0, len(value) - 2))
    char = data.draw(_COOKIE_CHARS.filter(lambda c: c != value[index]))
    changed = value[:index] + char + value[index + 1 :]
    response = raw_client.get("/", headers={"Cookie": f"consent={changed}"})
    assert response.status_code == 200
    assert SCRIPT not in response.text
    # The genuine value does grant analytics: the check above is not vacuous.
    genuine = raw_client.get("/", headers={"Cookie": f"consent={value}"})
    assert SCRIPT in genuine.text


def test_the_valid_one_of_duplicate_cookies_counts(raw_client, policy) -> None:
    # A sibling subdomain can add a second cookie of the same name: the
    # valid one is used, wherever it comes, and nothing is deleted.
    now = datetime.now(timezone.utc)
    value = CookieCodec([NEW_KEY], policy).encode(_state(policy, now, "analytics"))
    forged = value.upper()
    for header in (
        f"consent={forged}; consent={value}",
        f"consent={value}; consent={forged}",
    ):
        response = raw_client.get("/", headers={"Cookie": header})
        assert SCRIPT in response.text
        assert not [
            h
            for h in response.headers.getlist("Set-Cookie")
            if h.startswith("consent=")
        ]
    only_forged = raw_client.get("/", headers={"Cookie": f"consent={forged}"})
    assert SCRIPT not in only_forged.text


def _encode(app: Flask, state: ConsentState) -> str:
    policy = app.extensions["consent"].policy_for(app)
    return CookieCodec([app.secret_key], policy).encode(state)


def _state(policy: Policy, given_at: datetime, *granted: str) -> ConsentState:
    return ConsentState(
        granted=frozenset(granted),
        given_at=given_at,
        revision=policy.revision,
        consent_id="kc7gGIfk3ZKWwFDSM0a4Qw",
    )


def test_expired_cookie_shows_the_banner_and_is_deleted(app, client, policy) -> None:
    now = datetime.now(timezone.utc)
    expired = _state(policy, now - policy.max_age - timedelta(seconds=1), "analytics")
    client.set_cookie("consent", _encode(app, expired))
    response = client.get("/")
    assert BANNER in response.text
    assert SCRIPT not in response.text
    assert "Max-Age=0" in set_cookies(response)["consent"]


def test_cookie_from_the_future_is_not_trusted(app, client, policy) -> None:
    future = _state(
        policy, datetime.now(timezone.utc) + timedelta(days=30), "analytics"
    )
    client.set_cookie("consent", _encode(app, future))
    response = client.get("/")
    assert BANNER in response.text
    assert SCRIPT not in response.text


def test_cookie_of_another_revision_asks_again(
    client, csrf_token, app_factory, policy_factory
) -> None:
    value = _accepted_cookie(client, csrf_token)
    consent_id = state_of(client)["consent_id"]
    extra = Cookie(
        name="_hz_visit", provider="This site", purpose="X", duration="1 day"
    )
    revised = app_factory(policy_factory(extra))
    other = revised.test_client()
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
    choose(other, csrf_token, "accept_all")
    assert state_of(other)["consent_id"] == consent_id
    assert SCRIPT in other.get("/").text


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
def test_missing_or_wrong_csrf_token_is_refused(client, token) -> None:
    client.get("/")
    data = {"action": "accept_all"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/consent", data=data)
    assert response.status_code == 403
    assert "security token" in response.text
    assert "reload the page and choose again" in response.text
    assert client.get_cookie("consent") is None


def test_token_of_another_visitor_is_refused(app, client, csrf_token) -> None:
    other = app.test_client()
    token = csrf_token(other.get("/").text)
    client.get("/")
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}
    )
    assert response.status_code == 403
    assert "is not valid" in response.text
    assert client.get_cookie("consent") is None


def test_post_without_the_csrf_cookie_is_refused(app, csrf_token) -> None:
    token = csrf_token(app.test_client().get("/").text)
    fresh = app.test_client()
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
        {"Referer": "http://evil.example/page"},
        {"Referer": "http://localhost.evil.example/"},
    ],
    ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()),
)
def test_cross_site_post_is_refused(client, csrf_token, headers) -> None:
    token = csrf_token(client.get("/").text)
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
def test_same_origin_post_is_accepted(client, csrf_token, headers) -> None:
    token = csrf_token(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}, headers=headers
    )
    assert response.status_code == 303
    assert client.get_cookie("consent") is not None


@pytest.mark.parametrize("action", ["accept", "", "ACCEPT_ALL", None])
def test_unknown_action_is_refused(client, csrf_token, action) -> None:
    token = csrf_token(client.get("/").text)
    data = {"csrf_token": token}
    if action is not None:
        data["action"] = action
    response = client.post("/consent", data=data)
    assert response.status_code == 400
    assert "Unknown action" in response.text
    assert client.get_cookie("consent") is None


@pytest.mark.parametrize("choice", ["marketing", "necessary"])
def test_save_with_an_unknown_category_is_refused(client, csrf_token, choice) -> None:
    response = choose(client, csrf_token, "save", choice=["analytics", choice])
    assert response.status_code == 400
    assert choice in response.text
    assert client.get_cookie("consent") is None


def test_json_post_answers_json(client, csrf_token) -> None:
    token = csrf_token(client.get("/").text)
    response = client.post(
        "/consent",
        json={"action": "save", "choices": ["analytics"]},
        headers={"X-Consent-CSRF": token},
    )
    assert response.status_code == 200
    assert response.is_json
    assert response.cache_control.no_store
    data = response.get_json()
    assert data["choices"] == {"analytics": True, "media": False, "westlake_map": False}
    assert data["needs_banner"] is False
    assert data["method"] == "api"
    assert data["consent_id"]
    assert "consent" in set_cookies(response)
    assert SCRIPT in client.get("/").text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (["accept_all"], "must be an object"),
        ({"action": "save", "choices": "analytics"}, "must be a list of keys"),
        ({"action": "save", "choices": [1]}, "must be a list of keys"),
    ],
)
def test_bad_json_post_is_refused(client, csrf_token, body, reason) -> None:
    token = csrf_token(client.get("/").text)
    response = client.post("/consent", json=body, headers={"X-Consent-CSRF": token})
    assert response.status_code == 400
    assert reason in response.text


def test_json_post_without_the_csrf_header_is_refused(client) -> None:
    client.get("/")
    response = client.post("/consent", json={"action": "accept_all"})
    assert response.status_code == 403
    assert client.get_cookie("consent") is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("//evil.example", "/"),
        ("///evil.example", "/"),
        ("https://evil.example", "/"),
        ("http:/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil", "/"),
        ("%2F%2Fevil", "/"),
        ("javascript:alert(1)", "/"),
        (" //evil.example", "/"),
        ("/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"),
        ("/page\x01", "/"),
        ("/page\r\nSet-Cookie: x=1", "/"),
        ("/\t/evil.example", "/"),
        ("/page\x7f", "/"),
        ("/" + "a" * 3000, "/"),
        ("", "/"),
        ("/article?p=2#top", "/article?p=2#top"),
        ("/.//evil.example", "/.//evil.example"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_next_never_leaves_the_site(client, csrf_token, target, expected) -> None:
    token = csrf_token(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token, "next": target}
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == expected
    assert urlsplit(location).netloc == ""
    assert urlsplit(location).scheme == ""


def test_banner_returns_to_the_page(app, client) -> None:
    @app.get("/article")
    def article() -> str:
        return render_template_string(ARTICLE)

    html = client.get("/article?p=2").text
    data = {i["name"]: i["value"] for i in tags(banner_of(html), "input")}
    response = client.post("/consent", data={**data, "action": "reject_all"})
    assert response.headers["Location"] == "/article?p=2"


def test_banner_returns_to_the_page_under_a_script_root(app, client) -> None:
    @app.get("/article")
    def article() -> str:
        return render_template_string(ARTICLE)

    mounted = "http://localhost/shop/"
    html = client.get("/article?p=2", base_url=mounted).text
    assert 'action="/shop/consent"' in html
    data = {i["name"]: i["value"] for i in tags(banner_of(html), "input")}
    response = client.post(
        "/consent", data={**data, "action": "reject_all"}, base_url=mounted
    )
    assert response.status_code == 303
    # Back to the page the visitor was reading, inside the mounted app.
    assert response.headers["Location"] == "/shop/article?p=2"


def test_state_json(client, csrf_token, policy) -> None:
    response = client.get("/consent")
    assert response.cache_control.no_store
    assert "Cookie" in response.vary
    data = response.get_json()
    token = data["csrf_token"]
    expected = {
        "needs_banner": True,
        "revision": policy.revision,
        "choices": {"analytics": False, "media": False, "westlake_map": False},
        "consent_id": None,
        "given_at": None,
        "method": None,
    }
    assert {key: data[key] for key in expected} == expected
    # Scripts use the token of the JSON state to post a choice.
    response = client.post(
        "/consent",
        json={"action": "save", "choices": ["media"], "method": "preferences"},
        headers={"X-Consent-CSRF": token},
    )
    assert response.status_code == 200
    data = state_of(client)
    assert data["needs_banner"] is False
    assert data["choices"] == {"analytics": False, "media": True, "westlake_map": True}
    assert data["method"] == "preferences"
    assert len(data["consent_id"]) == 22
    given_at = datetime.fromisoformat(data["given_at"])
    assert abs(datetime.now(timezone.utc) - given_at) < timedelta(minutes=1)


def test_preferences_page(client) -> None:
    response = client.get("/consent/preferences")
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


def test_preferences_page_shows_the_choice(client, csrf_token) -> None:
    choose(client, csrf_token, "save", choice="analytics")
    consent_id = state_of(client)["consent_id"]
    html = client.get("/consent/preferences").text
    assert consent_id in html
    checked = {
        b["value"]
        for b in tags(html, "input")
        if b.get("name") == "choice" and "checked" in b
    }
    assert checked == {"analytics"}


def test_preferences_keep_a_safe_next(client) -> None:
    html = client.get("/consent/preferences?next=/article").text
    (field,) = [i for i in tags(html, "input") if i.get("name") == "next"]
    assert field["value"] == "/article"
    html = client.get("/consent/preferences?next=//evil.example").text
    (field,) = [i for i in tags(html, "input") if i.get("name") == "next"]
    assert field["value"] == "/"


def _declared(policy: Policy) -> list[Cookie]:
    return [c for category in policy.categories for c in category.all_cookies()]


def test_declaration_lists_every_cookie(client, policy) -> None:
    response = client.get("/consent/declaration")
    assert response.status_code == 200
    html = response.text
    cells = re.findall(
        r"<tr>\s*<td><code>(.*?)</code></td>.*?<td>(.*?)</td>\s*"
        r"<td>(.*?)</td>\s*<td>(.*?)</td>",
        html,
        re.DOTALL,
    )
    rows = {name: duration for name, _provider, _purpose, duration in cells}
    for cookie in _declared(policy):
        assert rows[cookie.label] == cookie.duration
    assert rows["consent"] == "182 days"
    assert "consent_csrf" in rows
    assert len(rows) == len(_declared(policy)) + 2


def test_declaration_json_lists_every_cookie(client, policy) -> None:
    response = client.get("/consent/declaration.json")
    assert response.status_code == 200
    data = response.get_json()
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


def test_cookie_signed_with_a_fallback_key_is_reissued(
    app_factory, policy, csrf_token
) -> None:
    old_app = app_factory(policy, SECRET_KEY=OLD_KEY)
    old_client = old_app.test_client()
    value = _accepted_cookie(old_client, csrf_token)
    now = datetime.now(timezone.utc)
    original = CookieCodec([OLD_KEY], policy).decode(value, now)
    assert original is not None

    app = app_factory(policy, SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY])
    client = app.test_client()
    client.set_cookie("consent", value)
    response = client.get("/")
    assert BANNER not in response.text
    assert SCRIPT in response.text
    header = set_cookies(response)["consent"]
    assert max_age_of(header) <= HALF_YEAR
    new_value = client.get_cookie("consent").value
    assert new_value != value
    newest_only = CookieCodec([NEW_KEY], policy)
    reissued = newest_only.decode(new_value, now)
    assert reissued == original
    assert not newest_only.needs_resign(new_value)
    # Once re-signed, it is not written again.
    assert "consent" not in set_cookies(client.get("/"))


def test_reissue_keeps_the_original_time(app_factory, policy) -> None:
    given_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=100)
    value = CookieCodec([OLD_KEY], policy).encode(_state(policy, given_at, "analytics"))
    app = app_factory(policy, SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY])
    client = app.test_client()
    client.set_cookie("consent", value)
    response = client.get("/")
    assert SCRIPT in response.text
    remaining = max_age_of(set_cookies(response)["consent"])
    assert abs(remaining - 82 * 86400) <= 60
    reissued = CookieCodec([NEW_KEY], policy).decode(
        client.get_cookie("consent").value, datetime.now(timezone.utc)
    )
    assert reissued is not None and reissued.given_at == given_at


def test_cookie_signed_with_a_dropped_key_shows_the_banner(
    app_factory, policy, csrf_token
) -> None:
    value = _accepted_cookie(
        app_factory(policy, SECRET_KEY=OLD_KEY).test_client(), csrf_token
    )
    client = app_factory(policy, SECRET_KEY=NEW_KEY).test_client()
    client.set_cookie("consent", value)
    response = client.get("/")
    assert BANNER in response.text
    assert SCRIPT not in response.text
    assert "Max-Age=0" in set_cookies(response)["consent"]


@pytest.mark.parametrize("with_choice", [False, True])
def test_plain_view_is_left_alone(client, csrf_token, with_choice) -> None:
    if with_choice:
        choose(client, csrf_token, "accept_all")
    response = client.get("/plain")
    assert response.status_code == 200
    assert response.text == "plain text"
    assert "Cookie" not in response.vary
    assert "Set-Cookie" not in response.headers
    assert response.cache_control.private is None


def test_banner_is_injected_first_in_the_body(client) -> None:
    # First in the document: keyboard and screen-reader users meet the choice
    # before the page; CSS places the fixed layouts.
    html = client.get("/").text
    assert html.count(BANNER) == 1
    assert re.search(
        r"<body[^>]*>\s*(<style>[^<]*</style>\s*)?(<script[^>]*></script>\s*)?"
        r"<aside id=\"cookie-consent\"",
        html,
    )
    assert html.index(BANNER) < html.index("</footer>")


def test_page_without_a_banner_gets_only_the_script(client, csrf_token) -> None:
    token = csrf_token(client.get("/").text)
    client.post("/consent", data={"csrf_token": token, "action": "reject_all"})
    html = client.get("/").text
    assert BANNER not in html
    assert re.search(
        r'<script src="/consent/static/consent.js\?v=\w+" defer>'
        r"</script></body>",
        html,
    )


def test_banner_rendered_by_the_template_is_not_injected_again(app, client) -> None:
    @app.get("/manual")
    def manual() -> str:
        return render_template_string(
            "<!doctype html><html><head>{{ consent_head() }}</head><body>"
            "<header>{{ consent_banner() }}</header><main>Text</main>"
            "</body></html>"
        )

    html = client.get("/manual").text
    assert html.count(BANNER) == 1
    assert html.index(BANNER) < html.index("</header>")
    # The banner's styles come once, in the head, inline while it shows.
    assert html.count("<style>") == 1
    assert html.index("<style>") < html.index("</head>")
    assert 'rel="stylesheet"' not in html


def test_no_injection_when_turned_off(app_factory, policy) -> None:
    client = app_factory(policy, CONSENT_AUTO_INJECT=False).test_client()
    assert BANNER not in client.get("/").text


def test_no_banner_once_chosen_even_from_the_template(app, client, csrf_token) -> None:
    @app.get("/manual")
    def manual() -> str:
        return render_template_string("<body>{{ consent_banner() }}</body>")

    choose(client, csrf_token, "reject_all")
    assert BANNER not in client.get("/manual").text


def test_cookie_is_secure_over_https(client, csrf_token) -> None:
    token = csrf_token(client.get("/consent/preferences").text)
    response = client.post(
        "/consent",
        data={"action": "reject_all", "csrf_token": token},
        base_url="https://localhost",
    )
    assert response.status_code == 303
    assert "Secure" in set_cookies(response)["consent"]


def test_first_choice_sends_consent_given(app, client, csrf_token) -> None:
    with (
        recorded(consent_given, app) as given,
        recorded(consent_changed, app) as changed,
        recorded(consent_withdrawn, app) as withdrawn,
    ):
        choose(client, csrf_token, "save", choice="analytics")
    assert len(given) == 1
    assert given[0]["sender"] is app
    assert given[0]["previous"] is None
    assert given[0]["state"].granted == {"analytics"}
    assert changed == []
    assert withdrawn == []


def test_withdrawal_sends_every_signal(app, client, csrf_token) -> None:
    choose(client, csrf_token, "accept_all")
    with (
        recorded(consent_given, app) as given,
        recorded(consent_changed, app) as changed,
        recorded(consent_withdrawn, app) as withdrawn,
    ):
        choose(client, csrf_token, "save", choice="media")
    assert len(given) == len(changed) == len(withdrawn) == 1
    call = withdrawn[0]
    assert call["sender"] is app
    assert call["previous"].granted == {"analytics", "media", "westlake_map"}
    assert call["state"].granted == {"media", "westlake_map"}
    assert call["state"].consent_id == call["previous"].consent_id
    assert changed[0]["state"] == call["state"]


def test_granting_more_is_a_change_not_a_withdrawal(app, client, csrf_token) -> None:
    choose(client, csrf_token, "reject_all")
    with (
        recorded(consent_changed, app) as changed,
        recorded(consent_withdrawn, app) as withdrawn,
    ):
        choose(client, csrf_token, "accept_all")
    assert len(changed) == 1 and changed[0]["sender"] is app
    assert withdrawn == []


def test_same_choice_again_is_no_change(app, client, csrf_token) -> None:
    choose(client, csrf_token, "reject_all")
    with (
        recorded(consent_given, app) as given,
        recorded(consent_changed, app) as changed,
    ):
        choose(client, csrf_token, "reject_all")
    assert len(given) == 1
    assert changed == []


def test_refused_post_sends_no_signal(app, client) -> None:
    client.get("/")
    with recorded(consent_given, app) as given:
        client.post("/consent", data={"action": "accept_all"})
    assert given == []


def test_banner_styles_are_inline_only_while_it_shows(client, csrf_token) -> None:
    from consent.flask import banner_style_hash
    from consent.html import banner_css

    first = client.get("/").text
    assert f"<style>{banner_css()}</style>" in first
    assert banner_style_hash().startswith("'sha256-")
    token = csrf_token(first)
    client.post("/consent", data={"csrf_token": token, "action": "reject_all"})
    after = client.get("/").text
    assert "<style>" not in after


def test_inline_css_can_be_turned_off(app_factory, policy) -> None:
    app = app_factory(policy, CONSENT_INLINE_CSS=False)
    html = app.test_client().get("/").text
    assert "<style>" not in html
    assert re.search(
        r'<link rel="stylesheet" href="/consent/static/consent.css\?v=', html
    )


@pytest.mark.parametrize(
    ("filename", "mimetype"),
    [("consent.js", "text/javascript"), ("consent.css", "text/css")],
)
def test_versioned_static_files_are_the_files_cached_for_a_year(
    client, filename: str, mimetype: str
) -> None:
    path = f"/consent/static/{filename}?v={asset_version(filename)}"
    file = resources.files("consent") / "static" / "consent" / filename
    with client.get(path) as response:
        assert response.status_code == 200
        assert response.data == file.read_bytes()
        assert response.mimetype == mimetype
        assert response.cache_control.public
        assert response.cache_control.max_age == 365 * 24 * 3600
        etag = response.headers["ETag"]
    assert etag == f'"{asset_version(filename)}"'
    with client.get(path, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304
        assert again.data == b""


def test_unversioned_and_unknown_static_files_keep_flasks_answers(client) -> None:
    with client.get("/consent/static/consent.js") as plain:
        assert plain.status_code == 200
        assert plain.cache_control.max_age != 365 * 24 * 3600
    for path in (
        "/consent/static/missing.js?v=1",
        "/consent/static/../extension.py?v=1",
        "/consent/static/%2e%2e/flask/views.py?v=1",
    ):
        with client.get(path) as response:
            assert response.status_code == 404, path
