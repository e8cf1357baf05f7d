"""The Flask extension: ``from consent.flask import Consent``."""

from .extension import Consent as Consent
from .extension import RequestConsent as RequestConsent
from .extension import current as current
from .security import ConsentBadRequest as ConsentBadRequest
from .security import safe_next as safe_next
from .signals import consent_changed as consent_changed
from .signals import consent_given as consent_given
from .signals import consent_withdrawn as consent_withdrawn
