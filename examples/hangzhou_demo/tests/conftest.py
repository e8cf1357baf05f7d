from __future__ import annotations

import collections.abc as cabc
import re
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from examples.hangzhou_demo import create_app
from examples.hangzhou_demo.mapapp import create_map_app

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(tmp_path) -> cabc.Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test key for the demo, not for production use",
            "CONSENT_RECEIPTS_URL": f"sqlite:///{tmp_path}/receipts.db",
            "CONSENT_RECEIPTS_SPOOL_DIR": str(tmp_path),
        }
    )
    yield app
    app.extensions["consent"].site(app).receipts.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def map_client() -> FlaskClient:
    return create_map_app().test_client()


def csrf_token(html: str) -> str:
    """The CSRF token of the first consent form on a page."""
    match = _CSRF.search(html)
    assert match is not None, "no consent form on the page"
    return match.group(1)


@pytest.fixture
def choose(client: FlaskClient) -> t.Callable[..., TestResponse]:
    """Make a choice, as a visitor without JavaScript would.

    The form is taken from ``page``: the banner on the home page by default.
    """

    def choose(action: str, *choices: str, page: str = "/") -> TestResponse:
        token = csrf_token(client.get(page).get_data(as_text=True))
        response = client.post(
            "/consent",
            data={
                "csrf_token": token,
                "action": action,
                "choice": list(choices),
                "next": "/",
            },
        )
        assert response.status_code == 303
        return response

    return choose
