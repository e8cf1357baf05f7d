"""Google Consent Mode: the data block and gcm.js, before and after a
choice."""

from __future__ import annotations

import json
import typing as t
from html.parser import HTMLParser

from consent import Category
from consent import Cookie
from consent import Policy
from consent.gcm import CONSENT_TYPES
from consent.gcm import effective_mapping
from tests.conformance.conftest import View

GTAG = "https://www.googletagmanager.com/gtag/js?id=G-TEST"
ADS = ["ad_storage", "ad_user_data", "ad_personalization"]
OPTIONAL_TYPES = [name for name in CONSENT_TYPES if name != "security_storage"]

PAGE = """\
<!doctype html>
<html><head>
{{ consent_mode_head(**gcm_args) }}
{{ consent_script("analytics", gtag, async=True) }}
</head><body><main>Article</main></body></html>
"""


def _cookie(name: str) -> Cookie:
    return Cookie(name=name, provider="A provider", purpose="A purpose", duration="1 y")


def make_policy(mode: str = "opt-in", exemption: str | None = None) -> Policy:
    return Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category(
                "analytics",
                "Analytics",
                cookies=(_cookie("_ga"),),
                exemption=exemption,  # type: ignore[arg-type]
            ),
            Category("marketing", "Marketing", cookies=(_cookie("_gcl_au"),)),
            Category("preferences", "Preferences", cookies=(_cookie("theme"),)),
            Category("media", "Embedded media", cookies=(_cookie("yt"),)),
        ),
        mode=mode,  # type: ignore[arg-type]
    )


POLICY = make_policy()

VIEWS = {
    "/": View(PAGE, context={"gtag": GTAG, "gcm_args": {}}),
    "/region": View(PAGE, context={"gtag": GTAG, "gcm_args": {"region": ["DE", "FR"]}}),
}


def make_app(adapter, policy: Policy = POLICY, **config: t.Any):
    return adapter.make_app(policy, VIEWS, CONSENT_RECEIPTS_URL=None, **config)


def choose(client, action: str, *choices: str) -> None:
    token = client.get("/consent").json()["csrf_token"]
    data = {"action": action, "csrf_token": token, "choice": list(choices)}
    response = client.post("/consent", data=data)
    assert response.status_code == 303


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, t.Any]] = []
        self._current: dict[str, t.Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._current = {**dict(attrs), "text": ""}
            self.scripts.append(self._current)

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._current = None


def scripts(html: str) -> list[dict[str, t.Any]]:
    parser = _Scripts()
    parser.feed(html)
    return parser.scripts


def gcm_data(html: str) -> dict[str, t.Any]:
    found = [s for s in scripts(html) if s.get("id") == "consent-gcm"]
    assert len(found) == 1, "expected one Consent Mode data block"
    assert found[0]["type"] == "application/json"
    data: dict[str, t.Any] = json.loads(found[0]["text"])
    return data


def effective(data: dict[str, t.Any]) -> dict[str, str]:
    """What Google tags end up with: the default, then the update."""
    values = {k: v for k, v in data["default"].items() if k in CONSENT_TYPES}
    values.update(data["update"] or {})
    return values


def test_data_block_comes_before_gcm_js_and_any_tag(adapter) -> None:
    app = make_app(adapter)
    client = app.client()
    choose(client, "accept_all")
    found = scripts(client.get("/").text)
    ids = [s.get("id") or s.get("src") for s in found]
    data_at = ids.index("consent-gcm")
    gcm_at = next(
        i for i, src in enumerate(ids) if src.startswith("/consent/static/gcm.js?v=")
    )
    gtag_at = ids.index(GTAG)
    assert data_at < gcm_at < gtag_at
    assert data_at == 0
    assert "defer" not in found[gcm_at] and "async" not in found[gcm_at]


def test_default_before_a_choice(adapter) -> None:
    client = make_app(adapter).client()
    response = client.get("/")
    data = gcm_data(response.text)
    assert data["default"] == {
        **dict.fromkeys(OPTIONAL_TYPES, "denied"),
        "security_storage": "granted",
        "wait_for_update": 500,
    }
    assert "region" not in data["default"]
    assert data["update"] is None
    assert data["types"] == list(CONSENT_TYPES)
    assert data["always"] == ["security_storage"]
    assert data["mapping"] == effective_mapping(POLICY)
    # Basic mode: the tag itself is not live before consent.
    assert not any(s.get("src") == GTAG for s in scripts(response.text))
    assert "Cookie" in response.vary


def test_wait_for_update_is_configurable(adapter) -> None:
    client = make_app(adapter, CONSENT_GCM_WAIT_MS=2000).client()
    assert gcm_data(client.get("/").text)["default"]["wait_for_update"] == 2000


def test_region(adapter) -> None:
    client = make_app(adapter).client()
    assert gcm_data(client.get("/region").text)["default"]["region"] == ["DE", "FR"]


def test_update_after_accept_all(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "accept_all")
    response = client.get("/")
    data = gcm_data(response.text)
    assert data["default"]["analytics_storage"] == "denied"
    assert data["update"] == dict.fromkeys(CONSENT_TYPES, "granted")
    assert any(s.get("src") == GTAG for s in scripts(response.text))


def test_update_after_a_partial_choice(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "save", "analytics")
    update = gcm_data(client.get("/").text)["update"]
    assert update == {
        **dict.fromkeys(OPTIONAL_TYPES, "denied"),
        "analytics_storage": "granted",
        "security_storage": "granted",
    }


def test_update_after_reject_all(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "accept_all")
    choose(client, "reject_all")
    response = client.get("/")
    assert gcm_data(response.text)["update"] == {
        **dict.fromkeys(OPTIONAL_TYPES, "denied"),
        "security_storage": "granted",
    }
    assert not any(s.get("src") == GTAG for s in scripts(response.text))


def test_custom_mapping(adapter) -> None:
    mapping = {"analytics": ["analytics_storage"], "media": ["personalization_storage"]}
    client = make_app(adapter, CONSENT_GCM_MAPPING=mapping).client()
    choose(client, "save", "media", "marketing")
    data = gcm_data(client.get("/").text)
    assert data["mapping"] == {
        "analytics": ["analytics_storage"],
        "media": ["personalization_storage"],
    }
    # marketing is granted, but this mapping gives it no consent type.
    assert data["update"] == {
        **dict.fromkeys(OPTIONAL_TYPES, "denied"),
        "personalization_storage": "granted",
        "security_storage": "granted",
    }


def test_gcm_script_carries_the_csp_nonce(adapter) -> None:
    app = make_app(adapter, CONSENT_CSP_NONCE=lambda *_: "gcm-n0nce")
    found = scripts(app.client().get("/").text)
    gcm = next(
        s for s in found if s.get("src", "").startswith("/consent/static/gcm.js?v=")
    )
    assert gcm["nonce"] == "gcm-n0nce"


def test_data_block_is_safe_json_in_html(adapter) -> None:
    mapping = {"analytics": ["analytics_storage"]}
    client = make_app(adapter, CONSENT_GCM_MAPPING=mapping).client()
    html = client.get("/").text
    block = html.split('id="consent-gcm">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block
    assert json.loads(block)["mapping"] == mapping


def test_opt_out_mode_reports_what_already_runs(adapter) -> None:
    # In opt-out mode analytics runs before any choice; Consent Mode must not
    # tell the same tag that analytics_storage is denied.
    client = make_app(adapter, make_policy("opt-out")).client()
    response = client.get("/")
    assert any(s.get("src") == GTAG for s in scripts(response.text))
    assert effective(gcm_data(response.text))["analytics_storage"] == "granted"


def test_uk_exemption_is_reported_before_a_choice(adapter) -> None:
    policy = make_policy(exemption="statistics")
    client = make_app(adapter, policy, CONSENT_PROFILE="uk").client()
    response = client.get("/")
    assert any(s.get("src") == GTAG for s in scripts(response.text))
    values = effective(gcm_data(response.text))
    assert values["analytics_storage"] == "granted"
    assert {values[name] for name in ADS} == {"denied"}
    choose(client, "reject_all")
    values = effective(gcm_data(client.get("/").text))
    assert values["analytics_storage"] == "denied"


def test_opt_out_mode_after_reject_all(adapter) -> None:
    client = make_app(adapter, make_policy("opt-out")).client()
    choose(client, "reject_all")
    response = client.get("/")
    assert not any(s.get("src") == GTAG for s in scripts(response.text))
    values = effective(gcm_data(response.text))
    assert {values[name] for name in OPTIONAL_TYPES} == {"denied"}
