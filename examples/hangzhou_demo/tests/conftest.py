"""The demo's tests run on both twins: the Flask app and the ASGI app."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import re
import types
import typing as t
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from consent.asgi import testing as asgi_testing
from consent.flask import testing as flask_testing
from examples.hangzhou_demo import create_app
from examples.hangzhou_demo.asgi import create_asgi_app
from examples.hangzhou_demo.mapapp import create_map_app
from tests.conformance.conftest import ASGIClient
from tests.conformance.conftest import Client
from tests.conformance.conftest import FlaskClient as FlaskTestClient
from tests.conformance.conftest import Response

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

SECRET_KEY = "test key for the demo, not for production use"


@dataclasses.dataclass
class Twin:
    """One twin of the demo, built for a test."""

    name: str
    app: t.Any
    site: t.Any
    #: ``consent.flask.testing`` or ``consent.asgi.testing``.
    testing: types.ModuleType

    def client(self) -> Client:
        if self.name == "flask":
            return FlaskTestClient(self.app)
        return ASGIClient(self.app)


def make_twin(name: str, tmp_path: Path, **config: t.Any) -> Twin:
    settings = {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "CONSENT_RECEIPTS_URL": f"sqlite:///{tmp_path}/receipts.db",
        "CONSENT_RECEIPTS_SPOOL_DIR": str(tmp_path),
        **config,
    }
    if name == "flask":
        app = create_app(settings)
        return Twin(name, app, app.extensions["consent"].site(app), flask_testing)
    asgi = create_asgi_app(settings)
    return Twin(name, asgi, asgi_testing.find_middleware(asgi).site, asgi_testing)


@pytest.fixture(params=["flask", "asgi"])
def twin(request: pytest.FixtureRequest, tmp_path: Path) -> cabc.Iterator[Twin]:
    made = make_twin(request.param, tmp_path)
    yield made
    made.site.close()


@pytest.fixture
def client(twin: Twin) -> Client:
    return twin.client()


@pytest.fixture
def map_client() -> FlaskClient:
    return create_map_app().test_client()


def csrf_token(html: str) -> str:
    """The CSRF token of the first consent form on a page."""
    match = _CSRF.search(html)
    assert match is not None, "no consent form on the page"
    return match.group(1)


@pytest.fixture
def choose(client: Client) -> t.Callable[..., Response]:
    """Make a choice, as a visitor without JavaScript would.

    The form is taken from ``page``: the banner on the home page by default.
    """

    def choose(action: str, *choices: str, page: str = "/") -> Response:
        token = csrf_token(client.get(page).text)
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
