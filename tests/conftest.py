from __future__ import annotations

import collections.abc as cabc
import itertools
import re
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import render_template_string

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service
from consent.flask import Consent
from consent.receipts import SQLiteReceiptStore
from consent.receipts import SQLReceiptStore
from tests.pgproxy import TCPProxy

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


# PostgreSQL: a throwaway role per test, with a schema of its own.

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def wait_for_postgres(limit: float = 30.0) -> None:
    """Wait for the server, in case `make postgres` has only just started it.

    No test stops the shared server: outages are made with a proxy of the
    test's own (``tests/pgproxy.py``).
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready = subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL on 127.0.0.1:5432 did not answer in time.")


@pytest.fixture
def pg_role() -> t.Iterator[str]:
    """A role with a schema of the same name: its default search path
    ("$user", public) puts the keeper's tables there, apart from the tables
    of other tests, and dropping both cleans up."""
    name = f"consent_role_{uuid.uuid4().hex[:12]}"
    wait_for_postgres()
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
        conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {name}"))
        # Only its own schema: tables another app left in "public" are not
        # its tables.
        conn.execute(sa.text(f"ALTER ROLE {name} SET search_path = {name}"))
    admin.dispose()
    try:
        yield name
    finally:
        wait_for_postgres()
        with admin.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE usename = :name"
                ),
                {"name": name},
            )
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
            conn.execute(sa.text(f"DROP ROLE {name}"))
        admin.dispose()


@pytest.fixture
def pg_schema() -> t.Iterator[str]:
    """A schema of its own on the shared server, dropped afterwards."""
    wait_for_postgres()
    name = f"consent_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    engine.dispose()
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND datname = 'test'"
                    " AND query LIKE :schema"
                ),
                {"schema": f"%{name}.%"},
            )
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()


@pytest.fixture
def pg_proxy() -> t.Iterator[TCPProxy]:
    """A TCP proxy to the shared server that the test can cut and restore."""
    wait_for_postgres()
    with TCPProxy(("127.0.0.1", 5432)) as proxy:
        yield proxy


@pytest.fixture(
    params=[
        "sqlite3",
        "sqlalchemy",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[t.Any]:
    """Each store on the same tests: the standard library's SQLite, SQLite
    through SQLAlchemy, and PostgreSQL (a role of its own, whose search path
    is its own schema)."""
    made: t.Any
    if request.param == "sqlite3":
        made = SQLiteReceiptStore(tmp_path / "receipts.db")
    elif request.param == "sqlalchemy":
        made = SQLReceiptStore(f"sqlite:///{tmp_path / 'receipts.db'}")
    else:
        role = request.getfixturevalue("pg_role")
        made = SQLReceiptStore(f"postgresql+psycopg://{role}@127.0.0.1:5432/test")
    yield made
    made.close()
