"""Receipts: one per decision, with what the visitor decided and how."""

from __future__ import annotations

from tests.conformance.pages import choose
from tests.conformance.test_gpc_modes import GPC
from tests.conformance.test_gpc_modes import OPTIONAL
from tests.conformance.test_gpc_modes import make_app


def receipts_app(adapter):
    return make_app(adapter, CONSENT_RECEIPTS_URL="sqlite")


def test_each_choice_writes_one_receipt(adapter) -> None:
    app = receipts_app(adapter)
    client = app.client()
    choose(client, "save", "analytics", method="preferences")
    choose(client, "reject_all")
    state = app.stored_state(client)
    by_method = {r.method: r for r in app.receipts(state.consent_id)}
    assert set(by_method) == {"preferences", "banner"}
    first, second = by_method["preferences"], by_method["banner"]
    assert dict(first.choices) == {
        **dict.fromkeys(OPTIONAL, False),
        "analytics": True,
    }
    assert dict(second.choices) == dict.fromkeys(OPTIONAL, False)
    assert first.revision == second.revision == app.site.policy.revision
    # Pages read the choice; they do not record it again.
    client.get("/")
    assert len(app.receipts(state.consent_id)) == 2


def test_gpc_receipt_is_written(adapter) -> None:
    app = receipts_app(adapter)
    client = app.client()
    client.get("/", headers=GPC)
    state = app.stored_state(client)
    (receipt,) = app.receipts(state.consent_id)
    assert receipt.method == "gpc"
    assert receipt.path == "/"
    assert dict(receipt.choices) == dict.fromkeys(OPTIONAL, False)
    # The stored opt-out is not recorded again on later pages.
    client.get("/")
    client.get("/", headers=GPC)
    assert len(app.receipts(state.consent_id)) == 1
    choose(client, "accept_all")
    methods = [r.method for r in app.receipts(state.consent_id)]
    assert sorted(methods) == ["banner", "gpc"]


def test_gpc_on_a_consent_post_is_receipted_once_each(adapter) -> None:
    app = receipts_app(adapter)
    client = app.client()
    token = client.get("/consent").json()["csrf_token"]
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}, headers=GPC
    )
    assert response.status_code == 303
    state = app.stored_state(client)
    assert state.gpc is True
    assert "marketing" not in state.granted
    receipts = app.receipts(state.consent_id)
    assert sorted(r.method for r in receipts) == ["banner", "gpc"]
