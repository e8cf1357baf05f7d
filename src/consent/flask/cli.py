"""``flask consent ...``: the operator's commands."""

from __future__ import annotations

from flask.cli import AppGroup

#: The ``flask consent`` command group.
consent_cli = AppGroup("consent", help="Consent receipts and policy tools.")
