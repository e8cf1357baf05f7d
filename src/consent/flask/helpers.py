"""Template helpers, for Jinja and for views: each renders the current
response's consent markup (see :class:`consent.html.Page`)."""

from __future__ import annotations

from ..assets import banner_script_hash as banner_script_hash
from ..assets import banner_style_hash as banner_style_hash
from ..assets import csp_sources as csp_sources
from ..html import TemplateHelpers
from ._context import csp_nonce as csp_nonce
from ._context import page

#: The helpers every template of the app knows by name.
HELPERS = TemplateHelpers(page)

consent_banner = HELPERS.consent_banner
consent_head = HELPERS.consent_head
consent_settings_link = HELPERS.consent_settings_link
consent_script = HELPERS.consent_script
consent_embed = HELPERS.consent_embed
consent_mode_head = HELPERS.consent_mode_head
