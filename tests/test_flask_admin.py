from __future__ import annotations

import csv
import io
import typing as t
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask

from consent import Policy
from consent.flask import Consent
from consent.flask.admin import PER_PAGE
from consent.flask.testing import choose
from consent.receipts import CSV_COLUMNS
from consent.receipts import Receipt
from consent.receipts import ReceiptStore
from tests.factories import receipt

SECRET_KEY = "test secret key, long enough to sign consent cookies"
PAGE = "<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>"
ADMIN = "/consent/admin/"


def make_app(policy: Policy, instance: Path, **config: t.Any) -> Flask:
    app = Flask("test", instance_path=str(instance))
    app.config.update(
        TESTING=True,
        SECRET_KEY=SECRET_KEY,
        CONSENT_RECEIPTS_URL="sqlite",
        CONSENT_ADMIN_ACCESS=lambda: True,
    )
    app.config.update(config)
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return PAGE

    return app


def store_of(app: Flask) -> ReceiptStore:
    keeper = app.extensions["consent"].site(app).receipts
    store: ReceiptStore = keeper.store()
    return store


make_receipt = receipt


def day_start(days_ago: int) -> datetime:
    """A minute past midnight UTC, ``days_ago`` days ago."""
    today = datetime.now(timezone.utc).date()
    return datetime.combine(today - timedelta(days=days_ago), time(0, 1), timezone.utc)


@pytest.fixture
def app(policy: Policy, tmp_path: Path) -> t.Iterator[Flask]:
    app = make_app(policy, tmp_path)
    yield app
    app.extensions["consent"].site(app).receipts.close()


@pytest.fixture
def client(app: Flask) -> t.Any:
    return app.test_client()


class Page(HTMLParser):
    """What the dashboard shows: charts and their bars, tables, links."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        #: data-consent-key of each chart -> its bars' attributes.
        self.bars: dict[str, list[dict[str, str]]] = {}
        self.svgs: dict[str, dict[str, str]] = {}
        self.links: list[str] = []
        self.scripts = 0
        #: Rows of the receipts table: their cells' text.
        self.receipt_rows: list[list[str]] = []
        #: Method -> the number in its row.
        self.methods: dict[str, str] = {}
        self.data_rows: list[str] = []
        self._svg: str | None = None
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg" and "data-consent-key" in a:
            self._svg = a["data-consent-key"]
            self.svgs[self._svg] = a
            self.bars[self._svg] = []
        if tag == "rect" and self._svg and "consent-admin-bar" in a.get("class", ""):
            self.bars[self._svg].append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            classes = a.get("class", "")
            self._table = next(
                (
                    name
                    for name in ("receipts", "methods", "data")
                    if f"consent-admin-{name}" in classes
                ),
                "data",
            )
        if tag == "thead":
            self._in_head = True
        if tag == "tr" and self._table and not self._in_head:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        if tag == "thead":
            self._in_head = False
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            row, self._row = self._row, None
            if self._table == "receipts":
                self.receipt_rows.append(row)
            elif self._table == "methods":
                self.methods[row[0]] = row[1]
            else:
                self.data_rows.append(row[0])
        if tag == "table":
            self._table = None


def read(response: t.Any) -> Page:
    assert response.status_code == 200, response.status_code
    return Page(response.get_data(as_text=True))


# Access


@pytest.mark.parametrize(
    "path", [ADMIN, ADMIN + "export.csv", ADMIN + "export.jsonl", ADMIN + "?page=2"]
)
def test_every_view_asks_the_access_check(
    policy: Policy, tmp_path: Path, path: str
) -> None:
    calls: list[bool] = []
    allowed = False

    def access() -> bool:
        calls.append(allowed)
        return allowed

    app = make_app(policy, tmp_path, CONSENT_ADMIN_ACCESS=access)
    client = app.test_client()
    denied = client.get(path)
    assert denied.status_code == 403
    assert denied.headers["X-Frame-Options"] == "DENY"
    assert denied.headers["Cache-Control"] == "no-store"
    assert b"cookie-consent" not in denied.data
    allowed = True
    assert client.get(path).status_code == 200
    assert calls == [False, True]


def test_access_check_sees_the_request(policy: Policy, tmp_path: Path) -> None:
    from flask import request

    app = make_app(
        policy,
        tmp_path,
        CONSENT_ADMIN_ACCESS=lambda: request.headers.get("X-Admin") == "yes",
    )
    client = app.test_client()
    assert client.get(ADMIN).status_code == 403
    assert client.get(ADMIN, headers={"X-Admin": "yes"}).status_code == 200


def test_dashboard_is_off_by_default(policy: Policy, tmp_path: Path) -> None:
    app = make_app(policy, tmp_path, CONSENT_ADMIN_ACCESS=None)
    assert "consent_admin" not in app.blueprints
    assert app.test_client().get(ADMIN).status_code == 404


def test_dashboard_headers(client: t.Any) -> None:
    response = client.get(ADMIN)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_dashboard_is_a_page_of_its_own(client: t.Any) -> None:
    # No banner, no consent.js: the dashboard needs no JavaScript.
    page = client.get(ADMIN).get_data(as_text=True)
    assert 'id="cookie-consent"' not in page
    assert Page(page).scripts == 0
    assert "/consent/static/admin.css" in page
    with client.get("/consent/static/admin.css") as css:
        assert css.status_code == 200


def test_dashboard_with_receipts_off(policy: Policy, tmp_path: Path) -> None:
    app = make_app(policy, tmp_path, CONSENT_RECEIPTS_URL=None)
    client = app.test_client()
    response = client.get(ADMIN)
    assert response.status_code == 200
    assert "Receipts are off" in response.get_data(as_text=True)
    assert client.get(ADMIN + "export.csv").status_code == 404


def test_dashboard_when_the_store_does_not_answer(
    policy: Policy, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    app = make_app(
        policy, tmp_path, CONSENT_RECEIPTS_URL=f"sqlite:///{tmp_path}/file/r.db"
    )
    response = app.test_client().get(ADMIN)
    assert response.status_code == 503
    assert "The receipt store did not answer" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


# The chart


def test_chart_has_a_bar_per_day_with_receipts(app: Flask, client: t.Any) -> None:
    store_of(app).add_many(
        [
            make_receipt(day_start(0), choices={"analytics": True, "media": True}),
            make_receipt(day_start(0), choices={"analytics": False, "media": True}),
            make_receipt(day_start(2), choices={"analytics": True, "media": False}),
            make_receipt(day_start(5), choices={"analytics": False, "media": False}),
            # Outside a 7-day window, inside the default 30 days.
            make_receipt(day_start(9), choices={"analytics": True, "media": True}),
        ]
    )
    week = read(client.get(ADMIN + "?days=7"))
    assert set(week.bars) == {"analytics", "media", "westlake_map"}
    analytics = {bar["data-day"]: bar for bar in week.bars["analytics"]}
    today = datetime.now(timezone.utc).date()
    assert sorted(analytics) == [
        (today - timedelta(days=n)).isoformat() for n in (5, 2, 0)
    ]
    assert len(week.bars["media"]) == 3
    assert week.bars["westlake_map"] == []  # no receipt listed it
    # 100% reaches the top of the plot, 50% half of it, 0% keeps a sliver.
    full = float(analytics[(today - timedelta(days=2)).isoformat()]["height"])
    half = float(analytics[today.isoformat()]["height"])
    none = float(analytics[(today - timedelta(days=5)).isoformat()]["height"])
    assert half == pytest.approx(full / 2, abs=0.02)
    assert 0 < none < 2
    svg = week.svgs["analytics"]
    assert svg["role"] == "img"
    title_id, desc_id = svg["aria-labelledby"].split()
    html = client.get(ADMIN + "?days=7").get_data(as_text=True)
    assert f'<title id="{title_id}">Opt-in rate of Analytics per day</title>' in html
    assert "50% overall, 2 of 4 receipts, on 3 days with receipts." in html
    # The same numbers as a table, in a <details>.
    assert "<details" in html and "Show the numbers as a table" in html
    assert week.data_rows == [
        (today - timedelta(days=n)).isoformat() for n in (0, 2, 5)
    ]

    month = read(client.get(ADMIN))
    assert len(month.bars["analytics"]) == 4


def test_chart_of_real_choices(app: Flask, client: t.Any) -> None:
    choose(app.test_client(), "accept_all")
    choose(app.test_client(), "reject_all")
    choose(app.test_client(), "accept_all")
    page = read(client.get(ADMIN))
    assert [len(page.bars[key]) for key in ("analytics", "media", "westlake_map")] == [
        1,
        1,
        1,
    ]
    assert "67%" in client.get(ADMIN).get_data(as_text=True)


def test_totals_by_method(app: Flask, client: t.Any) -> None:
    methods = ["banner"] * 3 + ["preferences"] * 2 + ["gpc", "embed"]
    store_of(app).add_many(make_receipt(day_start(1), method=m) for m in methods)
    store_of(app).add(make_receipt(day_start(40), method="api"))
    page = read(client.get(ADMIN))
    assert page.methods == {
        "banner": "3",
        "preferences": "2",
        "api": "0",
        "gpc": "1",
        "embed": "1",
    }
    assert read(client.get(ADMIN + "?days=90")).methods["api"] == "1"


# Latest receipts


@pytest.fixture
def many(app: Flask) -> list[Receipt]:
    """120 receipts a minute apart, newest first."""
    start = datetime.now(timezone.utc) - timedelta(days=1)
    receipts = [make_receipt(start + timedelta(minutes=n)) for n in range(120)]
    store_of(app).add_many(receipts)
    return receipts[::-1]


def test_latest_receipts_are_paginated_newest_first(
    client: t.Any, many: list[Receipt]
) -> None:
    html = client.get(ADMIN).get_data(as_text=True)
    first = read(client.get(ADMIN))
    assert [row[1] for row in first.receipt_rows] == [
        r.consent_id for r in many[:PER_PAGE]
    ]
    assert "Page 1 of 3" in html
    assert "/consent/admin/?page=2&amp;days=30" in html
    row = first.receipt_rows[0]
    assert row[0] == many[0].created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert row[2:4] == ["banner", "de"]
    assert row[4] == ("✓ analytics: granted ✕ media: refused ✕ westlake_map: refused")

    second = read(client.get(ADMIN + "?page=2"))
    assert [row[1] for row in second.receipt_rows] == [
        r.consent_id for r in many[PER_PAGE : 2 * PER_PAGE]
    ]
    third = read(client.get(ADMIN + "?page=3"))
    assert [row[1] for row in third.receipt_rows] == [
        r.consent_id for r in many[2 * PER_PAGE :]
    ]
    # Beyond the last page: the last page.
    assert read(client.get(ADMIN + "?page=99")).receipt_rows == third.receipt_rows
    assert read(client.get(ADMIN + "?page=-3")).receipt_rows == first.receipt_rows


def test_no_receipts_yet(client: t.Any) -> None:
    html = client.get(ADMIN).get_data(as_text=True)
    assert "No receipts yet." in html
    assert "No receipts in this period" in html


# Exports


def test_export_links_stream_the_right_rows(app: Flask, client: t.Any) -> None:
    receipts = [make_receipt(day_start(n)) for n in (40, 20, 3, 1)]
    store_of(app).add_many(receipts)
    page = read(client.get(ADMIN))
    assert ADMIN + "export.csv" in page.links
    assert ADMIN + "export.jsonl" in page.links
    since = (datetime.now(timezone.utc).date() - timedelta(days=29)).isoformat()
    assert f"{ADMIN}export.csv?since={since}" in page.links

    response = client.get(ADMIN + "export.csv")
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="consent-receipts-'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["receipt_id"] for r in rows] == [r.receipt_id for r in receipts]
    assert list(rows[0]) == list(CSV_COLUMNS)

    recent = client.get(f"{ADMIN}export.jsonl?since={since}")
    assert recent.is_streamed
    assert recent.mimetype == "application/x-ndjson"
    lines = recent.get_data(as_text=True).splitlines()
    assert [Receipt.from_json(line) for line in lines] == receipts[1:]

    until = day_start(2).date().isoformat()
    window = client.get(f"{ADMIN}export.jsonl?since={since}&until={until}")
    lines = window.get_data(as_text=True).splitlines()
    assert [Receipt.from_json(line) for line in lines] == receipts[1:3]


def test_export_refuses_a_bad_date(client: t.Any) -> None:
    response = client.get(ADMIN + "export.csv?since=last+week")
    assert response.status_code == 400
    assert b"is not a date" in response.data


def test_export_of_many_receipts_comes_in_chunks(app: Flask, client: t.Any) -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    store_of(app).add_many(
        make_receipt(start + timedelta(seconds=n)) for n in range(3000)
    )
    response = client.get(ADMIN + "export.jsonl")
    chunks = list(response.response)
    assert len(chunks) > 3
    assert sum(chunk.count(b"\n") for chunk in chunks) == 3000
    response.close()


# PostgreSQL


@pytest.mark.postgres
def test_dashboard_on_postgresql(policy: Policy, tmp_path: Path, pg_role: str) -> None:
    url = f"postgresql+psycopg://{pg_role}@127.0.0.1:5432/test"
    app = make_app(policy, tmp_path, CONSENT_RECEIPTS_URL=url)
    try:
        start = datetime.now(timezone.utc) - timedelta(days=2)
        receipts = [
            make_receipt(
                start + timedelta(minutes=n * 30),
                choices={"analytics": n % 3 == 0, "media": True},
            )
            for n in range(70)
        ]
        store_of(app).add_many(receipts)
        client = app.test_client()
        page = read(client.get(ADMIN + "?days=7"))
        days = {r.created_at.date() for r in receipts}
        assert len(page.bars["analytics"]) == len(days)
        assert page.methods["banner"] == "70"
        newest = receipts[::-1]
        assert [row[1] for row in page.receipt_rows] == [
            r.consent_id for r in newest[:PER_PAGE]
        ]
        second = read(client.get(ADMIN + "?page=2"))
        assert [row[1] for row in second.receipt_rows] == [
            r.consent_id for r in newest[PER_PAGE:]
        ]
        lines = client.get(ADMIN + "export.jsonl").get_data(as_text=True)
        assert [Receipt.from_json(x) for x in lines.splitlines()] == receipts
    finally:
        app.extensions["consent"].site(app).receipts.close()
