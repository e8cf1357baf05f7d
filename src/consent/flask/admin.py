"""The receipts dashboard: an optional blueprint at ``<prefix>/admin``."""

from __future__ import annotations

from flask import Blueprint

admin_bp = Blueprint(
    "consent_admin",
    __name__,
    template_folder="../templates",
)
