"""The Flask extension: ``from consent.flask import Consent``."""

from ..security import safe_next as safe_next
from ._context import current_consent as current_consent
from .errors import ConsentBadRequestError as ConsentBadRequestError
from .errors import ConsentForbiddenError as ConsentForbiddenError
from .errors import ConsentHTTPError as ConsentHTTPError
from .errors import ConsentNotRecordedError as ConsentNotRecordedError
from .errors import ConsentRateLimitedError as ConsentRateLimitedError
from .errors import ConsentTooLargeError as ConsentTooLargeError
from .extension import Consent as Consent
from .helpers import banner_script_hash as banner_script_hash
from .helpers import banner_style_hash as banner_style_hash
from .helpers import consent_banner as consent_banner
from .helpers import consent_embed as consent_embed
from .helpers import consent_head as consent_head
from .helpers import consent_mode_head as consent_mode_head
from .helpers import consent_script as consent_script
from .helpers import consent_settings_link as consent_settings_link
from .helpers import csp_nonce as csp_nonce
from .helpers import csp_sources as csp_sources
from .signals import consent_changed as consent_changed
from .signals import consent_given as consent_given
from .signals import consent_withdrawn as consent_withdrawn
