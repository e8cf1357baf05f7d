"""Hostile input and floods, answered without a 500 and without a flood of
receipts, on every adapter."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.factories import gpc_policy

RECEIPTS = "CONSENT_RECEIPTS_URL"


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "no consent form"
    return match[1]


def receipts_in(app) -> int:
    return int(app.site.receipts.store().count())


def test_one_client_posting_in_a_loop_is_limited(adapter) -> None:
    app = adapter.make_app()
    client = app.client()
    token = token_of(client.get("/").text)
    statuses = []
    for _ in range(1000):
        response = client.post(
            "/consent",
            data={"action": "reject_all", "csrf_token": token},
        )
        statuses.append(response.status_code)
    assert statuses[:30] == [303] * 30
    assert set(statuses[30:]) == {429}
    # Identical repeated choices of one visitor write one receipt.
    assert receipts_in(app) <= 30
    limited = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many choices" in limited.text
    assert "<html" in limited.text.lower()


def test_a_script_over_the_limit_gets_json(adapter) -> None:
    app = adapter.make_app(CONSENT_RATE_LIMIT="2/minute")
    client = app.client()
    token = client.get("/consent").json()["csrf_token"]
    headers = {"X-Consent-CSRF": token}
    answers = [
        client.post("/consent", json={"action": "reject_all"}, headers=headers)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Too many choices" in answers[-1].json()["error"]
    assert answers[-1].headers["Retry-After"]


def test_the_limit_can_be_turned_off(adapter) -> None:
    app = adapter.make_app(CONSENT_RATE_LIMIT=None, **{RECEIPTS: None})
    client = app.client()
    token = token_of(client.get("/").text)
    for _ in range(40):
        response = client.post(
            "/consent", data={"action": "accept_all", "csrf_token": token}
        )
        assert response.status_code == 303


@pytest.mark.redis
def test_a_shared_storage_counts_across_processes(adapter) -> None:
    # Two apps with one Redis: as two machines behind one load balancer.
    config = {
        "CONSENT_RATE_LIMIT": "6/minute",
        "CONSENT_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379",
        # A key of its own, so that no other run shares these counts.
        "CONSENT_SECRET_KEY": secrets.token_hex(32),
        RECEIPTS: None,
    }
    first, second = adapter.make_app(**config), adapter.make_app(**config)
    clients = [first.client(), second.client()]
    tokens = [token_of(c.get("/").text) for c in clients]
    statuses = []
    for _ in range(5):
        for client, token in zip(clients, tokens, strict=True):
            response = client.post(
                "/consent", data={"action": "reject_all", "csrf_token": token}
            )
            statuses.append(response.status_code)
    assert statuses == [303] * 6 + [429] * 4


def test_an_unreachable_shared_storage_counts_nothing(adapter, caplog) -> None:
    config = {
        "CONSENT_RATE_LIMIT": "1/minute",
        # Nothing listens on port 9 of loopback.
        "CONSENT_RATE_LIMIT_STORAGE": "redis://127.0.0.1:9",
        RECEIPTS: None,
    }
    client = adapter.make_app(**config).client()
    token = token_of(client.get("/").text)
    for _ in range(3):
        response = client.post(
            "/consent", data={"action": "reject_all", "csrf_token": token}
        )
        assert response.status_code == 303
    assert "rate limit storage failed" in caplog.text


def test_a_gpc_flood_without_cookies_writes_few_receipts(adapter) -> None:
    app = adapter.make_app(gpc_policy())
    for _ in range(50):
        # A client that keeps no cookie: a new visitor every time.
        response = app.client().get("/", headers={"Sec-GPC": "1"})
        assert response.status_code == 200
        assert any(h.startswith("consent=") for h in response.set_cookie_headers)
    assert 1 <= receipts_in(app) <= 10


@pytest.mark.parametrize("size", [9 * 1024, 300 * 1024])
def test_a_large_body_is_refused_before_it_is_read(adapter, size) -> None:
    app = adapter.make_app()
    client = app.client()
    token = token_of(client.get("/").text)
    body = f"action=accept_all&csrf_token={token}&next=/".encode() + b"x" * size
    response = client.post(
        "/consent",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert client.get_cookie("consent") is None


def test_deeply_nested_json_is_a_400(adapter) -> None:
    client = adapter.make_app().client()
    token = client.get("/consent").json()["csrf_token"]
    response = client.post(
        "/consent",
        content=b"[" * 5000,
        headers={"Content-Type": "application/json", "X-Consent-CSRF": token},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]


def test_origin_and_token_are_checked_before_the_body(adapter) -> None:
    client = adapter.make_app().client()
    client.get("/consent")
    nested = b"[" * 5000
    forged = client.post(
        "/consent",
        content=nested,
        headers={"Content-Type": "application/json", "X-Consent-CSRF": "forged"},
    )
    assert forged.status_code == 403
    cross = client.post(
        "/consent",
        content=nested,
        headers={"Content-Type": "application/json", "Origin": "http://evil.example"},
    )
    assert cross.status_code == 403
