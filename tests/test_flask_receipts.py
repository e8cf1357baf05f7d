"""Receipts through the Flask extension: what a post keeps, and what it does
when a receipt cannot be kept."""

from __future__ import annotations

import logging
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from consent import Policy
from consent.exceptions import ConfigurationError
from tests.conftest import make_app
from tests.isolated import run_isolated

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def keeper_of(app: Flask) -> t.Any:
    return app.extensions["consent"].site(app).receipts


def post(client: t.Any, action: str, **headers: str) -> t.Any:
    token = client.get("/consent").get_json()["csrf_token"]
    return client.post(
        "/consent",
        data={"action": action, "csrf_token": token, "next": "/page?q=secret"},
        headers={"User-Agent": FIREFOX, **headers},
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )


@pytest.fixture
def app(policy: Policy, tmp_path: Path) -> t.Iterator[Flask]:
    app = make_app(policy, tmp_path / "instance")
    yield app
    keeper_of(app).close()


def test_a_post_keeps_a_reduced_receipt_and_what_was_shown(app: Flask) -> None:
    client = app.test_client()
    assert post(client, "accept_all").status_code == 303
    (receipt,) = keeper_of(app).store().iter_receipts()
    assert receipt.user_agent == "Firefox 133 / Linux"
    assert receipt.ip == "198.51.100.0/24"
    assert receipt.path == "/page"
    texts = keeper_of(app).store().get_texts(receipt.texts_hash)
    assert texts is not None and texts.is_intact
    assert texts.content()["texts"]["button.accept_all"] == "Accept all"


def test_one_client_repeating_one_choice_writes_one_receipt(app: Flask) -> None:
    client = app.test_client()
    answers = [post(client, "accept_all").status_code for _ in range(25)]
    assert answers == [303] * 25
    assert keeper_of(app).store().count() == 1
    assert post(client, "reject_all").status_code == 303
    assert keeper_of(app).store().count() == 2


def test_an_instance_folder_that_cannot_be_made(
    policy: Policy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="consent")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the instance folder would go")
    app = make_app(policy, blocker / "instance")
    client = app.test_client()
    # A grant that cannot be demonstrated is not given effect: the documented
    # 503, not a 500, and no grant in the cookie.
    refused = post(client, "accept_all")
    assert refused.status_code == 503
    assert "could not be recorded" in refused.get_data(as_text=True)
    assert client.get("/consent").get_json()["choices"]["analytics"] is False
    # A refusal always is.
    assert post(client, "reject_all").status_code == 303
    assert post(app.test_client(), "reject_all").status_code == 303
    folder_messages = [
        r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()
    ]
    assert len(folder_messages) == 1
    assert str(blocker / "instance") in folder_messages[0]
    assert "198.51.100" not in caplog.text


def test_an_engine_as_the_receipts_url(policy: Policy, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    pool = engine.pool
    app = make_app(policy, tmp_path / "instance", CONSENT_RECEIPTS_URL=engine)
    assert post(app.test_client(), "accept_all").status_code == 303
    keeper_of(app).close()
    assert engine.pool is pool
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT COUNT(*) FROM consent_receipts"))
        assert count.scalar_one() == 1
    engine.dispose()


def test_a_schema_on_sqlite_is_refused_at_start(policy: Policy, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_RECEIPTS_SCHEMA"):
        make_app(policy, tmp_path, CONSENT_RECEIPTS_SCHEMA="consent")


@pytest.mark.parametrize("blocked", ["sqlalchemy", "psycopg"])
def test_a_missing_extra_stops_the_app_at_start(tmp_path: Path, blocked: str) -> None:
    result = run_isolated(
        f"""
        from flask import Flask
        from consent.exceptions import ConfigurationError
        from consent.flask import Consent
        from tests.factories import gpc_policy
        app = Flask("site", instance_path={str(tmp_path)!r})
        app.config.update(
            SECRET_KEY="x" * 40,
            CONSENT_RECEIPTS_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
        )
        try:
            Consent(app, gpc_policy())
        except ConfigurationError as err:
            print("refused:", err)
        """,
        blocked=(blocked,),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:")
    assert "pip install" in result.stdout
    assert 'cookie-consent[sql]"' in result.stdout
