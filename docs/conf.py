"""Sphinx configuration of the consent documentation (Markdown through MyST)."""

import logging
from importlib.metadata import version as _version

project = "consent"
author = "The consent developers"
copyright = "The consent developers"
release = _version("cookie-consent")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Headings get anchors, so pages can link to each other's sections.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = "consent"
html_static_path = ["_static"]


class _GuidesMayBeEmpty(logging.Filter):
    """docs/guides/index.md lists whatever guides are there (a glob); no
    guide yet is not an error. Sphinx gives that warning no type, so
    ``suppress_warnings`` cannot name it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        location = str(getattr(record, "location", ""))
        return not (
            getattr(record, "subtype", None) == "empty_glob"
            and "guides" in location
        )


def setup(app: object) -> None:
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(
        _GuidesMayBeEmpty()
    )
