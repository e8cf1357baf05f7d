"""Template helpers, for Jinja and for views: each renders the current
response's consent markup (see :class:`consent.html.Page`)."""

from __future__ import annotations

from ..assets import banner_script_hash as banner_script_hash
from ..assets import banner_style_hash as banner_style_hash
from ..assets import csp_sources as csp_sources
from ..html import TemplateHelpers
from ._context import csp_nonce as csp_nonce
from ._context import page

_helpers = TemplateHelpers(page)

#: The helpers every template gets as globals.
TEMPLATE_GLOBALS = _helpers.globals()

consent_banner = _helpers.consent_banner
consent_head = _helpers.consent_head
consent_settings_link = _helpers.consent_settings_link
consent_script = _helpers.consent_script
consent_embed = _helpers.consent_embed
consent_mode_head = _helpers.consent_mode_head
