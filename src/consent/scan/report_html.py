"""The HTML report: one self-contained file, findings first, then a table
per visit. No script, stylesheet, font or image is loaded from anywhere.
"""

from __future__ import annotations

import jinja2

from .findings import describe
from .records import VISIT_TITLES
from .records import ScanResult


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("consent.scan", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(describe=describe, visit_titles=VISIT_TITLES)
    return env


def render_html(result: ScanResult) -> str:
    """The report as one HTML document.

    :param result: What the scan found.
    """
    template = _environment().get_template("report.html")
    return template.render(result=result)
