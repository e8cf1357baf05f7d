"""Cookie consent decided, enforced and proven on the server.

The core API: declare a :class:`Policy`, decide with :func:`needs_banner` and
:func:`allows`, and keep the choice in a cookie with :class:`CookieCodec`.
The Flask extension lives in :mod:`consent.flask`.
"""

from .codec import CookieCodec as CookieCodec
from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import ConsentError as ConsentError
from .exceptions import UnknownCategoryError as UnknownCategoryError
from .model import Category as Category
from .model import Cookie as Cookie
from .model import Policy as Policy
from .model import Service as Service
from .state import ConsentState as ConsentState
from .state import allows as allows
from .state import decide as decide
from .state import needs_banner as needs_banner
