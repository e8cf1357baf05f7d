"""What only the Flask extension does with its views: signals sent with the
Flask app as sender, ``SECRET_KEY_FALLBACKS`` and the blueprint's static
files. Everything else the views do is tested on every adapter by the
conformance suite (``tests/conformance``)."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import re
import typing as t
from datetime import datetime
from datetime import timezone

from flask import Flask

from consent import CookieCodec
from consent.flask import consent_changed
from consent.flask import consent_given
from consent.flask import consent_withdrawn

SCRIPT = '<script src="/static/analytics.js"></script>'
BANNER = 'id="cookie-consent"'
HALF_YEAR = 182 * 86400
OLD_KEY = "the previous secret key of the test app, now rotated"
NEW_KEY = "the current secret key of the test app after rotating"


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


@contextlib.contextmanager
def recorded(signal: t.Any, app: Flask) -> cabc.Iterator[list[dict[str, t.Any]]]:
    """Record every send of ``signal`` by ``app`` (the real app, not a proxy)."""
    calls: list[dict[str, t.Any]] = []

    def record(sender: t.Any, **kwargs: t.Any) -> None:
        calls.append({"sender": sender, **kwargs})

    with signal.connected_to(record, sender=app):
        yield calls


def _accepted_cookie(client: t.Any, csrf_token: cabc.Callable[[str], str]) -> str:
    choose(client, csrf_token, "accept_all")
    cookie = client.get_cookie("consent")
    assert cookie is not None
    value: str = cookie.value
    return value


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


def test_unversioned_and_unknown_static_files_keep_flasks_answers(client) -> None:
    with client.get("/consent/static/consent.js") as plain:
        assert plain.status_code == 200
        assert plain.cache_control.max_age != 365 * 24 * 3600
    # Flask's own answer for a file the blueprint does not have.
    with client.get("/consent/static/missing.js") as missing:
        assert missing.status_code == 404
