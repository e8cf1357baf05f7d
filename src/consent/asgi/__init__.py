"""The ASGI adapter: ``from consent.asgi import ConsentMiddleware``.

For Starlette, FastAPI and any ASGI app (Quart and Litestar should work);
install the extra ``cookie-consent[asgi]``.
"""

from ..assets import csp_sources as csp_sources
from ..security import safe_next as safe_next
from ..signals import consent_changed as consent_changed
from ..signals import consent_given as consent_given
from ..signals import consent_withdrawn as consent_withdrawn
from ._context import current_consent as current_consent
from .dependencies import requires as requires
from .errors import ConsentRequiredError as ConsentRequiredError
from .middleware import ConsentMiddleware as ConsentMiddleware
