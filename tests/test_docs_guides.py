"""The guides stay true: every sample compiles, type-checks and runs."""

from __future__ import annotations

import base64
import hashlib
import re
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from starlette.testclient import TestClient

from consent.flask.testing import choose
from tests.docs_samples import bash_syntax_errors
from tests.docs_samples import code_blocks
from tests.docs_samples import mypy_strict_errors
from tests.docs_samples import run_sample

ROOT = Path(__file__).parent.parent
GUIDES = ROOT / "docs" / "guides"
PAGES = sorted(GUIDES.glob("*.md"))
SAMPLE_PAGES = [page for page in PAGES if code_blocks(page, "python")]

_TAG = re.compile(r"<(script|style|iframe)\b([^>]*)>(.*?)</\1>", re.DOTALL)
_NONCE = re.compile(r"'nonce-([^']+)'")


def _python(name: str) -> list[str]:
    return code_blocks(GUIDES / name, "python")


def _run(
    block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, t.Any]:
    """Execute a sample as a module would run: in ``tmp_path``, so an app's
    instance folder (SQLite receipts, spools) is made there."""
    monkeypatch.chdir(tmp_path)
    return run_sample(block)


def _flask_app(namespace: dict[str, t.Any]) -> Flask:
    app = namespace["app"]
    assert isinstance(app, Flask)
    app.config["TESTING"] = True
    return app


def _tags(html: str, name: str) -> list[tuple[str, str]]:
    """The attributes and content of every ``name`` element of ``html``."""
    return [(attrs, body) for tag, attrs, body in _TAG.findall(html) if tag == name]


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _directive(policy: str, name: str) -> list[str]:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    raise AssertionError(f"no {name} in {policy!r}")


# Every page.


def test_every_guide_is_in_the_index() -> None:
    index = (GUIDES / "index.md").read_text(encoding="utf-8")
    (toctree,) = code_blocks(GUIDES / "index.md", "{toctree}")
    listed = [line for line in toctree.splitlines()[2:] if line.strip()]
    pages = sorted(p.stem for p in PAGES if p.name != "index.md")
    assert sorted(listed) == pages
    for page in pages:
        assert f"]({page}.md)" in index


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_one_title_and_no_skipped_heading_level(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    levels = [len(m) for m in re.findall(r"^(#+) ", text, flags=re.MULTILINE)]
    assert levels.count(1) == 1
    assert levels[0] == 1
    for before, after in zip(levels, levels[1:], strict=False):
        assert after <= before + 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_lead_to_pages(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        assert (page.parent / target).is_file(), target


@pytest.mark.parametrize("page", SAMPLE_PAGES, ids=lambda p: p.name)
def test_python_samples_compile(page: Path) -> None:
    for block in code_blocks(page, "python"):
        compile(block, str(page), "exec")


def test_python_samples_pass_mypy_strict(tmp_path: Path) -> None:
    blocks = [b for page in SAMPLE_PAGES for b in code_blocks(page, "python")]
    assert len(blocks) >= 13
    assert mypy_strict_errors(blocks, tmp_path) == ""


def test_shell_samples_parse() -> None:
    blocks = [block for page in PAGES for block in code_blocks(page, "sh")]
    assert blocks
    for block in blocks:
        assert bash_syntax_errors(block) == ""


# Google Analytics.


def _gcm_data(html: str) -> dict[str, t.Any]:
    import json

    found = re.search(r'<script type="application/json" id="consent-gcm">(.*?)<', html)
    assert found is not None
    data: dict[str, t.Any] = json.loads(found[1])
    return data


def test_google_analytics_waits_for_consent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample,) = _python("google-analytics.md")
    app = _flask_app(_run(sample, tmp_path, monkeypatch))
    client = app.test_client()
    html = client.get("/").text
    gcm = _gcm_data(html)
    assert gcm["default"]["analytics_storage"] == "denied"
    assert gcm["default"]["ad_storage"] == "denied"
    assert gcm["default"]["security_storage"] == "granted"
    assert gcm["update"] is None
    # gcm.js comes before any Google tag, and the tags are inert.
    scripts = [attrs for attrs, _ in _tags(html, "script")]
    first_google = next(i for i, a in enumerate(scripts) if "googletagmanager" in a)
    first_gcm = next(i for i, a in enumerate(scripts) if "gcm.js" in a)
    assert first_gcm < first_google
    gated = [a for a in scripts if 'data-consent-key="analytics"' in a]
    assert len(gated) == 2
    assert all('type="text/plain"' in a and " src=" not in a for a in gated)

    assert choose(client, "accept_all", "/").status_code == 303
    html = client.get("/").text
    assert _gcm_data(html)["update"]["analytics_storage"] == "granted"
    assert re.search(r'<script src="https://www\.googletagmanager\.com/gtag/js', html)


def test_google_analytics_stays_off_after_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample,) = _python("google-analytics.md")
    client = _flask_app(_run(sample, tmp_path, monkeypatch)).test_client()
    choose(client, "reject_all", "/")
    html = client.get("/").text
    assert 'id="cookie-consent"' not in html
    assert _gcm_data(html)["update"]["analytics_storage"] == "denied"
    assert not re.search(r"<script src=\"https://www\.googletagmanager", html)


# Embeds.


def test_embeds_are_placeholders_until_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample,) = _python("embeds.md")
    client = _flask_app(_run(sample, tmp_path, monkeypatch)).test_client()
    html = client.get("/").text
    assert _tags(html, "iframe") == []
    assert 'data-consent-key="youtube"' in html
    assert 'data-consent-src="https://www.youtube-nocookie.com/embed/VIDEO_ID"' in html
    assert "VISITOR_INFO1_LIVE" in html
    assert "Example Maps" in html

    # "Always allow" on the video's placeholder: a plain form post.
    start = html.index('data-consent-key="youtube"')
    form = html[start : html.index("</form>", start)]
    action = re.search(r'<form[^>]* action="([^"]+)"', form)
    assert action is not None
    data: dict[str, list[str]] = {}
    for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form):
        data.setdefault(name, []).append(value)
    assert data["method"] == ["embed"]
    assert client.post(action[1], data=data).status_code == 303

    html = client.get("/").text
    iframes = [attrs for attrs, _ in _tags(html, "iframe")]
    assert len(iframes) == 1
    assert 'src="https://www.youtube-nocookie.com/embed/VIDEO_ID"' in iframes[0]
    assert "allowfullscreen" in iframes[0]
    assert 'data-consent-key="lake_map"' in html


# Content-Security-Policy.


def test_csp_nonce_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = _python("csp.md")[0]
    client = _flask_app(_run(sample, tmp_path, monkeypatch)).test_client()
    nonces = []
    for _ in range(2):
        response = client.get("/")
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy
        (nonce,) = set(_NONCE.findall(policy))
        nonces.append(nonce)
        html = response.text
        inline = [a for a, body in _tags(html, "script") + _tags(html, "style") if body]
        assert len(inline) >= 2  # the banner's style and consent.js
        for attrs, _ in _tags(html, "script") + _tags(html, "style"):
            assert f'nonce="{nonce}"' in attrs
        assert "'self'" in _directive(policy, "connect-src")
        assert "'self'" in _directive(policy, "form-action")
    assert nonces[0] != nonces[1]


def test_csp_hash_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = _run(_python("csp.md")[2], tmp_path, monkeypatch)
    response = _flask_app(namespace).test_client().get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "nonce-" not in policy
    html = response.text
    ((_, style),) = _tags(html, "style")
    scripts = [
        body for attrs, body in _tags(html, "script") if "data-consent-api" in attrs
    ]
    assert len(scripts) == 1
    assert _sha256_source(style) in _directive(policy, "style-src")
    assert _sha256_source(scripts[0]) in _directive(policy, "script-src")
    assert _directive(policy, "frame-ancestors") == ["'none'"]
    assert _directive(policy, "default-src") == ["'self'"]


def test_csp_sources_printout_matches() -> None:
    from consent.assets import csp_sources

    sample = _python("csp.md")[1]
    assert "print(csp_sources())" in sample
    assert sorted(csp_sources()) == sorted(
        ["script-src", "style-src", "connect-src", "form-action"]
    )


def test_csp_asgi_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = _run(_python("csp.md")[3], tmp_path, monkeypatch)
    with TestClient(namespace["app"]) as client:
        response = client.get("/")
    policy = response.headers["content-security-policy"]
    (nonce,) = set(_NONCE.findall(policy))
    html = response.text
    assert 'id="cookie-consent"' in html
    tags = _tags(html, "script") + _tags(html, "style")
    assert tags
    for attrs, _ in tags:
        assert f'nonce="{nonce}"' in attrs


# PostgreSQL and key rotation: nothing here connects to a database.


def test_postgresql_url_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "a secret key of the docs, long enough to sign")
    monkeypatch.delenv("CONSENT_RECEIPTS_URL", raising=False)
    namespace = _run(_python("postgresql.md")[0], tmp_path, monkeypatch)
    app = _flask_app(namespace)
    site = namespace["consent"].site(app)
    assert site.settings.receipts_schema == "consent"
    keeper = site.receipts
    assert keeper is not None
    assert keeper.url == "postgresql+psycopg://consent@127.0.0.1/site"
    assert keeper.schema == "consent"
    assert keeper.spool_dir == app.instance_path


def test_postgresql_engine_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    monkeypatch.setenv("SECRET_KEY", "a secret key of the docs, long enough to sign")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    namespace = _run(_python("postgresql.md")[1], tmp_path, monkeypatch)
    engine = namespace["engine"]
    assert isinstance(engine, sa.Engine)
    assert engine.dialect.name == "postgresql"
    keeper = namespace["consent"].site(_flask_app(namespace)).receipts
    assert keeper is not None
    assert keeper.url is engine


def test_gunicorn_hook_starts_the_keeper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _run(_python("postgresql.md")[2], tmp_path, monkeypatch)["post_worker_init"]
    # Any app of the guides with receipts on: SQLite in tmp_path.
    app = _flask_app(_run(_python("embeds.md")[0], tmp_path, monkeypatch))
    keeper = app.extensions["consent"].site(app).receipts
    assert not keeper.is_started

    class Worker:
        wsgi = app

    try:
        hook(Worker())
        assert keeper.is_started
    finally:
        keeper.close()


def _rotation_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, fallbacks: str = ""
) -> Flask:
    monkeypatch.setenv("SECRET_KEY", key)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", fallbacks)
    return _flask_app(_run(_python("postgresql.md")[3], tmp_path, monkeypatch))


def test_key_rotation_keeps_the_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hex keys, as the guide makes them: the fallbacks are split on spaces.
    old, new = "0123456789abcdef" * 4, "fedcba9876543210" * 4
    before = _rotation_app(tmp_path, monkeypatch, old).test_client()
    assert choose(before, "accept_all", "/").status_code == 303
    cookie = before.get_cookie("consent")
    assert cookie is not None
    signed_with_old = cookie.value

    during = _rotation_app(tmp_path, monkeypatch, new, fallbacks=old).test_client()
    during.set_cookie("consent", signed_with_old)
    response = during.get("/")
    assert 'id="cookie-consent"' not in response.text
    rewritten = during.get_cookie("consent")
    assert rewritten is not None and rewritten.value != signed_with_old
    # The time of the choice is kept: the payload differs only in signature.
    assert rewritten.value.rsplit(".", 1)[0] == signed_with_old.rsplit(".", 1)[0]

    after = _rotation_app(tmp_path, monkeypatch, new).test_client()
    after.set_cookie("consent", rewritten.value)
    assert 'id="cookie-consent"' not in after.get("/").text
    dropped = _rotation_app(tmp_path, monkeypatch, new).test_client()
    dropped.set_cookie("consent", signed_with_old)
    assert 'id="cookie-consent"' in dropped.get("/").text


# Global Privacy Control and regions.

_GATED = re.compile(r'<script\b[^>]*data-consent-key="(analytics|advertising)"[^>]*>')


def _live(html: str) -> dict[str, bool]:
    """Whether each gated script of the page runs (not ``text/plain``)."""
    return {
        found[1]: 'type="text/plain"' not in found[0] for found in _GATED.finditer(html)
    }


@pytest.mark.parametrize(
    ("headers", "analytics", "advertising", "honored"),
    [
        ({"CF-IPCountry": "DE"}, False, False, False),
        ({"CF-IPCountry": "GB"}, True, False, False),
        ({"CF-IPCountry": "US"}, True, True, False),
        ({"CF-IPCountry": "US", "Sec-GPC": "1"}, True, False, True),
        ({"CF-IPCountry": "US", "Sec-GPC": "true"}, True, True, False),
        ({}, False, False, False),
    ],
)
def test_regions_table(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    analytics: bool,
    advertising: bool,
    honored: bool,
) -> None:
    (sample,) = _python("gpc-and-regions.md")
    client = _flask_app(_run(sample, tmp_path, monkeypatch)).test_client()
    response = client.get("/", headers=headers)
    assert _live(response.text) == {"analytics": analytics, "advertising": advertising}
    assert ("Opt-out request honored" in response.text) is honored
    assert 'id="cookie-consent"' in response.text
    assert "Sec-GPC" in response.headers["Vary"]


def test_gpc_opt_out_outlives_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample,) = _python("gpc-and-regions.md")
    client = _flask_app(_run(sample, tmp_path, monkeypatch)).test_client()
    client.get("/", headers={"CF-IPCountry": "US", "Sec-GPC": "1"})
    later = client.get("/", headers={"CF-IPCountry": "US"}).text
    assert _live(later) == {"analytics": True, "advertising": False}
    assert "Opt-out request honored" in later
    # Accept all under GPC still leaves sale and sharing refused.
    choose(client, "accept_all", "/")
    after = client.get("/", headers={"CF-IPCountry": "US"}).text
    assert _live(after) == {"analytics": True, "advertising": False}
    assert client.get("/.well-known/gpc.json").json == {
        "gpc": True,
        "lastUpdate": "2026-01-15",
    }


# Translating.


def _banner_language(html: str) -> str:
    found = re.search(r'<aside id="cookie-consent"[^>]* lang="([^"]+)"', html)
    assert found is not None, "no banner"
    return found[1]


def test_translating_sample_negotiates_and_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = _python("translating.md")[0]
    app = _flask_app(_run(sample, tmp_path, monkeypatch))
    client = app.test_client()

    german = client.get("/", headers={"Accept-Language": "de-CH,de;q=0.9"}).text
    assert _banner_language(german) == "de"
    assert '<html lang="de" dir="ltr">' in german
    assert "Cookies bei Example" in german
    assert "Alle ablehnen" in german

    japanese = client.get("/", headers={"Accept-Language": "ja"}).text
    assert _banner_language(japanese) == "en"
    assert "Cookies on Example" in japanese
    assert ">Cookies</a>" in japanese  # the "*" override of settings_link

    client.set_cookie("lang", "fr")
    french = client.get("/", headers={"Accept-Language": "de"}).text
    assert _banner_language(french) == "fr"
    assert "Tout refuser" in french


def test_translating_sample_adds_a_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from consent.i18n import load_catalog

    english = load_catalog("en")
    folder = tmp_path / "translations"
    folder.mkdir()
    swahili = {key: f"[sw] {text}" for key, text in english.items()}
    (folder / "sw.json").write_text(json.dumps(swahili), encoding="utf-8")
    app = _flask_app(_run(_python("translating.md")[1], tmp_path, monkeypatch))
    html = app.test_client().get("/", headers={"Accept-Language": "sw"}).text
    assert _banner_language(html) == "sw"
    assert f"[sw] {english['button.reject_all']}" in html
