"""The receipts dashboard: an optional blueprint at ``<prefix>/admin``.

Off by default. ``CONSENT_ADMIN_ACCESS`` turns it on: a callable that
returns True for the users allowed to see it, asked before every view. The
dashboard shows the opt-in rate per category and service and per day, as an
SVG chart drawn on the server (no JavaScript), the receipts per method, the
latest receipts, and streaming exports. Receipts are personal data, so every
response is ``no-store`` and may not be framed.
"""

from __future__ import annotations

import logging
import math
import typing as t
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone

from flask import Blueprint
from flask import Response
from flask import abort
from flask import render_template
from flask import request
from flask import stream_with_context

from ..receipts.export import MEDIA_TYPES
from ..receipts.export import export_chunks
from ..receipts.stats import CHART_HEIGHT
from ..receipts.stats import CHART_LEFT
from ..receipts.stats import CHART_RIGHT
from ..receipts.stats import CHART_WIDTH
from ..receipts.stats import charts
from ..receipts.store import is_store_error
from ..receipts.times import parse_utc
from ..state import METHODS
from ._context import site_of
from ._context import visitor

if t.TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from ..model import Policy
    from ..receipts.export import ExportFormat
    from ..receipts.keeper import ReceiptKeeper

logger = logging.getLogger(__name__)

admin_bp = Blueprint(
    "consent_admin",
    __name__,
    template_folder="../templates",
)

#: Receipts per page of the "latest receipts" table.
PER_PAGE = 50
#: The periods the charts can show, in days.
WINDOWS = (7, 14, 30, 90, 365)
DEFAULT_WINDOW = 30

#: The dashboard needs its stylesheet and nothing else; nothing may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@admin_bp.before_request
def _check_access() -> None:
    """Ask ``CONSENT_ADMIN_ACCESS`` first; answer 403 unless it says yes."""
    current = visitor()
    # The dashboard is not a page of the site: no banner, no consent.js.
    current.banner_suppressed = True
    current.head_rendered = True
    access = current.site.settings.admin_access
    if access is None or not access():
        abort(403)


@admin_bp.after_request
def _protect(response: Response) -> Response:
    response.cache_control.no_store = True
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _keeper() -> ReceiptKeeper | None:
    return site_of().receipts


def _policy() -> Policy:
    return site_of().policy


def _window() -> int:
    days = request.args.get("days", DEFAULT_WINDOW, type=int)
    return days if days in WINDOWS else DEFAULT_WINDOW


@admin_bp.get("/", endpoint="index")
def index() -> ResponseReturnValue:
    """The dashboard."""
    keeper = _keeper()
    policy = _policy()
    if keeper is None:
        return render_template(
            "consent/admin/index.html", is_enabled=False, policy=policy
        )
    window = _window()
    now = datetime.now(timezone.utc)
    today = now.date()
    days = [today - timedelta(days=n) for n in range(window - 1, -1, -1)]
    since = datetime.combine(days[0], time.min, tzinfo=timezone.utc)
    try:
        store = keeper.store()
        stats = store.stats(since=since)
        total = store.count()
        pages = max(1, math.ceil(total / PER_PAGE))
        page = min(max(request.args.get("page", 1, type=int), 1), pages)
        receipts = store.latest(PER_PAGE, offset=(page - 1) * PER_PAGE)
    except Exception as err:
        if not is_store_error(err):
            raise
        logger.error("The receipts dashboard could not read the store: %r", err)
        page_html = render_template(
            "consent/admin/index.html", is_enabled=False, policy=policy, is_down=True
        )
        return page_html, 503
    made = charts(policy, stats, days)
    methods = [*METHODS, *sorted(set(stats.by_method) - set(METHODS))]
    return render_template(
        "consent/admin/index.html",
        is_enabled=True,
        policy=policy,
        retention_days=keeper.retention.days,
        window=window,
        windows=WINDOWS,
        days=days,
        stats=stats,
        total=total,
        methods=[(m, stats.by_method.get(m, 0)) for m in methods],
        largest_method=max([stats.by_method.get(m, 0) for m in methods] + [1]),
        charts=made,
        table_keys=[c for c in made if c.total],
        daily={
            (rate.day, rate.key): (rate.granted, rate.total) for rate in stats.daily
        },
        receipts=receipts,
        page=page,
        pages=pages,
        chart_width=CHART_WIDTH,
        chart_height=CHART_HEIGHT,
        chart_left=CHART_LEFT,
        chart_right=CHART_WIDTH - CHART_RIGHT,
    )


def _range() -> tuple[datetime | None, datetime | None]:
    bounds = []
    for name in ("since", "until"):
        value = request.args.get(name)
        try:
            bounds.append(parse_utc(value) if value else None)
        except ValueError:
            abort(
                400,
                description=f"{name}={value!r} is not a date: use YYYY-MM-DD or an"
                " ISO datetime such as 2025-03-01T12:00:00Z.",
            )
    return bounds[0], bounds[1]


def _export(fmt: ExportFormat) -> Response:
    keeper = _keeper()
    if keeper is None:
        abort(404, description="Receipts are off (CONSENT_RECEIPTS_URL is None).")
    since, until = _range()
    store = keeper.store()
    receipts = store.iter_receipts(since, until)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    response = Response(
        stream_with_context(export_chunks(receipts, fmt)),
        mimetype=MEDIA_TYPES[fmt],
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="consent-receipts-{stamp}.{fmt}"'
    )
    return response


@admin_bp.get("/export.csv", endpoint="export_csv")
def export_csv() -> ResponseReturnValue:
    """Every receipt (or those between ``since`` and ``until``) as CSV."""
    return _export("csv")


@admin_bp.get("/export.jsonl", endpoint="export_jsonl")
def export_jsonl() -> ResponseReturnValue:
    """Every receipt (or those between ``since`` and ``until``) as JSON Lines."""
    return _export("jsonl")
