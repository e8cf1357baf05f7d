"""Cookie consent decided, enforced and proven on the server.

The core API, with no web framework in it: declare a :class:`Policy`, decide
with :func:`needs_banner` and :func:`allows`, keep the choice in a cookie with
:class:`CookieCodec`, enforce it on ``Set-Cookie`` with :class:`CookieGate`,
serve one request's :class:`Visitor` of a :class:`Site` built from
:class:`Settings`, and keep receipts in a :class:`ReceiptStore`. The adapters
live in :mod:`consent.flask` (Flask) and :mod:`consent.asgi` (Starlette,
FastAPI and any ASGI app).
"""

import typing as _t

from .codec import CookieCodec as CookieCodec
from .enforce import CookieGate as CookieGate
from .enforce import Verdict as Verdict
from .exceptions import BadChoiceError as BadChoiceError
from .exceptions import ChoiceError as ChoiceError
from .exceptions import ChoiceNotRecordedError as ChoiceNotRecordedError
from .exceptions import ChoiceTooLargeError as ChoiceTooLargeError
from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import ConsentError as ConsentError
from .exceptions import ExpiredFormError as ExpiredFormError
from .exceptions import ForbiddenChoiceError as ForbiddenChoiceError
from .exceptions import RateLimitedError as RateLimitedError
from .exceptions import ReceiptNotKeptError as ReceiptNotKeptError
from .exceptions import UnknownCategoryError as UnknownCategoryError
from .gpc import EU as EU
from .gpc import NOTICE as NOTICE
from .gpc import UK as UK
from .gpc import US as US
from .gpc import Profile as Profile
from .gpc import has_gpc as has_gpc
from .gpc import profile_for_country as profile_for_country
from .headers import framing_headers as framing_headers
from .model import Category as Category
from .model import Cookie as Cookie
from .model import Policy as Policy
from .model import Service as Service
from .state import ConsentState as ConsentState
from .state import allows as allows
from .state import decide as decide
from .state import gpc_state as gpc_state
from .state import needs_banner as needs_banner

# The receipt stores load on first use: sqlite3, threads and locks are not
# worth an import for apps that keep no receipts.
if _t.TYPE_CHECKING:
    __version__: str
    from .receipts import DurableRecorder as DurableRecorder
    from .receipts import Receipt as Receipt
    from .receipts import ReceiptKeeper as ReceiptKeeper
    from .receipts import ReceiptStore as ReceiptStore
    from .receipts import ShownTexts as ShownTexts
    from .receipts import SQLiteReceiptStore as SQLiteReceiptStore
    from .receipts import SQLReceiptStore as SQLReceiptStore
    from .receipts import anonymize_ip as anonymize_ip
    from .receipts import open_store as open_store
    from .settings import Settings as Settings
    from .site import Site as Site
    from .visitor import Visitor as Visitor

_RECEIPTS = frozenset(
    {
        "DurableRecorder",
        "Receipt",
        "ReceiptKeeper",
        "ReceiptStore",
        "ShownTexts",
        "SQLiteReceiptStore",
        "SQLReceiptStore",
        "anonymize_ip",
        "open_store",
    }
)


# The request machinery loads on first use too: adapters import it
# themselves, and `import consent` for a policy or a codec stays light.
_LAZY = {"Settings": "settings", "Site": "site", "Visitor": "visitor"}


def __getattr__(name: str) -> object:
    if name == "__version__":
        # The installed distribution's version: the version lives only in
        # pyproject.toml.
        from importlib.metadata import version

        return version("cookie-consent")
    if name in _RECEIPTS:
        from . import receipts

        return getattr(receipts, name)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'consent' has no attribute {name!r}")
