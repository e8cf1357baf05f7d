"""The JSON report, and the JSON Schema it follows.

The document carries ``schema_version``; a change that could break a
reader (a field removed, renamed or given another type) raises it, while
new fields may appear in any version. ``schema.json`` beside this module is
the JSON Schema (draft 2020-12) of the current version.
"""

from __future__ import annotations

import json
import typing as t
from importlib import metadata
from importlib import resources

from .records import CookieRecord
from .records import ScanResult
from .records import VisitRecord

#: The version of the report's layout.
SCHEMA_VERSION = 1


def load_schema() -> dict[str, t.Any]:
    """The JSON Schema of the report, as shipped with the package."""
    text = (resources.files("consent.scan") / "schema.json").read_text("utf-8")
    schema: dict[str, t.Any] = json.loads(text)
    return schema


def _cookie(cookie: CookieRecord) -> dict[str, t.Any]:
    return {
        "name": cookie.name,
        "domain": cookie.domain,
        "path": cookie.path,
        "expires": cookie.expires.isoformat() if cookie.expires else None,
        "http_only": cookie.http_only,
        "secure": cookie.secure,
        "same_site": cookie.same_site,
        "partitioned": cookie.partitioned,
        "party": cookie.party,
        "set_by": cookie.set_by,
        "phases": list(cookie.phases),
        "first_seen": cookie.first_seen,
    }


def _visit(visit: VisitRecord) -> dict[str, t.Any]:
    return {
        "name": visit.name,
        "banner": {
            "shown": visit.banner.shown,
            "ours": visit.banner.ours,
            "has_accept": visit.banner.has_accept,
            "has_reject": visit.banner.has_reject,
        },
        "choice_made": visit.choice_made,
        "pages": [
            {
                "url": p.url,
                "phase": p.phase,
                "status": p.status,
                "final_url": p.final_url,
                "error": p.error,
            }
            for p in visit.pages
        ],
        "cookies": [_cookie(c) for c in visit.cookies],
        "requests": [
            {
                "url": r.url,
                "host": r.host,
                "resource_type": r.resource_type,
                "phase": r.phase,
                "page": r.page,
            }
            for r in visit.requests
        ],
        "storage": [
            {
                "origin": s.origin,
                "area": s.area,
                "key": s.key,
                "party": s.party,
                "phases": list(s.phases),
                "first_seen": s.first_seen,
            }
            for s in visit.storage
        ],
    }


def to_document(result: ScanResult) -> dict[str, t.Any]:
    """The report as a JSON-ready mapping, following :func:`load_schema`.

    :param result: What the scan found.
    """
    declaration = result.declaration
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": {
            "name": "consent scan",
            "version": metadata.version("cookie-consent"),
        },
        "url": result.url,
        "site": result.site,
        "started_at": result.started_at.isoformat(),
        "duration_seconds": round(result.duration, 3),
        "browser": {"path": result.browser[0], "version": result.browser[1]},
        "declaration": {
            "url": result.declaration_url,
            "found": declaration is not None,
            "error": result.declaration_error,
            "revision": declaration.revision if declaration else None,
            "categories": [
                {"key": key, "required": key in declaration.required}
                for key in declaration.categories
            ]
            if declaration
            else [],
        },
        "pages": list(result.pages),
        "clean": result.is_clean,
        "findings": [
            {
                "code": f.code,
                "subject": f.subject,
                "message": f.message,
                "locations": [
                    {"visit": loc.visit, "page": loc.page} for loc in f.locations
                ],
            }
            for f in result.findings
        ],
        "visits": [_visit(v) for v in result.visits],
    }


def render_json(result: ScanResult) -> str:
    """The report as JSON text, indented, ending with a newline.

    :param result: What the scan found.
    """
    return json.dumps(to_document(result), indent=2, ensure_ascii=False) + "\n"
