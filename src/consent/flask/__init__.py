"""The Flask extension: ``from consent.flask import Consent``."""

from .extension import Consent as Consent
from .extension import RequestConsent as RequestConsent
from .extension import banner_style_hash as banner_style_hash
from .extension import consent_banner as consent_banner
from .extension import consent_head as consent_head
from .extension import consent_mode_head as consent_mode_head
from .extension import consent_settings_link as consent_settings_link
from .extension import csp_nonce as csp_nonce
from .extension import current as current
from .markup import consent_embed as consent_embed
from .markup import consent_script as consent_script
from .security import ConsentBadRequest as ConsentBadRequest
from .security import safe_next as safe_next
from .signals import consent_changed as consent_changed
from .signals import consent_given as consent_given
from .signals import consent_withdrawn as consent_withdrawn
from .views import ConsentNotRecorded as ConsentNotRecorded
