from __future__ import annotations

import collections.abc as cabc
import itertools
import re
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask import render_template_string

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service
from consent.flask import Consent

#: The signing key of the test apps (long enough for any key-length check).
SECRET_KEY = "test secret key, long enough to sign consent cookies"

PAGE = """\
<!doctype html>
<html lang="en">
<head><title>Home</title></head>
<body>
<main><h1>West Lake</h1><p>An article about the lake.</p></main>
<footer>{{ consent_settings_link() }}</footer>
{% if consent.allows("analytics") -%}
<script src="/static/analytics.js"></script>
{%- endif %}
</body>
</html>
"""

_CSRF_INPUT = re.compile(
    r'<input type="hidden" name="csrf_token" value="(?P<token>[^"]+)">'
)


def make_policy(*extra: Cookie) -> Policy:
    """The test policy; ``extra`` cookies are added to analytics."""
    return Policy(
        categories=(
            Category(
                key="necessary",
                title="Strictly necessary",
                description="Keep the site working.",
                required=True,
            ),
            Category(
                key="analytics",
                title="Analytics",
                description="Count page views.",
                cookies=(
                    Cookie(
                        name="_hz_analytics",
                        provider="This site",
                        purpose="Tells repeat visits apart.",
                        duration="13 months",
                    ),
                    *extra,
                ),
            ),
            Category(
                key="media",
                title="Embedded media",
                description="Show content from other sites.",
                services=(
                    Service(
                        key="westlake_map",
                        title="West Lake map",
                        description="A map of the lake.",
                        provider="West Lake Maps",
                        cookies=(
                            Cookie(
                                name="wl_map_pref",
                                provider="West Lake Maps",
                                purpose="Remembers the map view.",
                                duration="1 year",
                                party="third",
                            ),
                        ),
                    ),
                ),
            ),
        ),
        controller="Hangzhou Digital",
    )


def make_app(policy: Policy, instance_path: Path, **config: t.Any) -> Flask:
    """A test app with ``Consent`` set up and two views.

    ``/`` renders an HTML page that asks for analytics consent; ``/plain``
    answers text without consulting consent. Receipts go to the instance
    folder, a temporary directory.
    """
    app = Flask("test", instance_path=str(instance_path))
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY)
    app.config.update(config)
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return render_template_string(PAGE)

    @app.get("/plain")
    def plain() -> tuple[str, int, dict[str, str]]:
        return "plain text", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app


def csrf_token_in(html: str) -> str:
    """The CSRF token of the first consent form in ``html``."""
    match = _CSRF_INPUT.search(html)
    assert match is not None, "the page has no consent form"
    return match["token"]


@pytest.fixture(scope="session")
def policy() -> Policy:
    return make_policy()


@pytest.fixture
def app(policy: Policy, tmp_path: Path) -> Flask:
    return make_app(policy, tmp_path / "instance")


@pytest.fixture
def client(app: Flask) -> t.Any:
    return app.test_client()


@pytest.fixture
def app_factory(tmp_path: Path) -> cabc.Callable[..., Flask]:
    """Build another test app: ``app_factory(policy, **config)``."""
    count = itertools.count()

    def factory(policy: Policy, **config: t.Any) -> Flask:
        return make_app(policy, tmp_path / f"instance-{next(count)}", **config)

    return factory


@pytest.fixture
def csrf_token() -> cabc.Callable[[str], str]:
    """Read the CSRF token from a rendered page: ``csrf_token(response.text)``."""
    return csrf_token_in


@pytest.fixture
def policy_factory() -> cabc.Callable[..., Policy]:
    """The test policy with more analytics cookies: ``policy_factory(*cookies)``."""
    return make_policy
