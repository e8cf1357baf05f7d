"""One site's consent machinery, built once from its settings.

Adapters build a :class:`Site` when the app starts and hand it to every
request's :class:`~consent.visitor.Visitor`: the signer, the CSRF tokens,
the cookie gate and the receipt keeper are prepared here, not per request.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import typing as t

from .codec import CookieCodec
from .enforce import CookieGate
from .i18n import Translator
from .model import Cookie
from .ratelimit import RateLimiter
from .security import CSRFProtection

if t.TYPE_CHECKING:
    from .model import Policy
    from .receipts import ReceiptKeeper
    from .settings import Settings


logger = logging.getLogger(__name__)

#: The shortest signing key that does not get a warning at start.
MIN_KEY_BYTES = 32


class Site:
    """What serving visitors of one site needs, derived from its settings.

    :param settings: The site's validated settings.
    :param folder: The site's own folder (Flask: the instance folder), where
        the default SQLite receipts file and the spools go.
    :param debug: The app runs in debug or testing mode: a short secret key
        is not worth a warning there.
    """

    def __init__(self, settings: Settings, *, folder: str, debug: bool = False) -> None:
        #: The settings this site was built from.
        self.settings = settings
        #: The policy in force.
        self.policy: Policy = settings.policy
        #: The site's own folder.
        self.folder = folder
        #: Encodes and decodes the consent cookie.
        self.codec = CookieCodec(settings.secret_keys, settings.policy)
        #: Issues and checks the form tokens.
        self.csrf = CSRFProtection(settings.secret_keys, settings.csrf_max_age)
        #: Decides which ``Set-Cookie`` headers a response keeps.
        self.gate = CookieGate(
            settings.policy,
            undeclared=settings.undeclared,
            always_allowed=(settings.cookie_name, settings.csrf_cookie_name),
        )
        newest = settings.secret_keys[-1]
        newest = newest.encode() if isinstance(newest, str) else newest
        if len(newest) < MIN_KEY_BYTES and not debug:
            logger.warning(
                "The secret key that signs consent cookies is %d bytes long: use"
                " at least %d random bytes, such as secrets.token_hex(32), in"
                " CONSENT_SECRET_KEY or the app's secret key.",
                len(newest),
                MIN_KEY_BYTES,
            )
        #: Counts consent posts per client.
        self.limiter = RateLimiter(
            settings.rate_limit,
            settings.rate_limit_storage,
            hashlib.sha256(b"consent.ratelimit" + newest).digest(),
        )
        #: What a response that depends on consent varies on.
        self.vary: tuple[str, ...] = (
            ("Cookie", "Sec-GPC")
            if settings.policy.sale_or_sharing_keys
            else ("Cookie",)
        )
        #: Keeps a receipt of every decision; ``None`` when receipts are off.
        self.receipts: ReceiptKeeper | None = None
        if settings.receipts_url is not None:
            from .receipts import ReceiptKeeper

            self.receipts = ReceiptKeeper(
                settings.policy,
                url=settings.receipts_url,
                folder=folder,
                spool_dir=settings.receipts_spool_dir,
                ip_mode=settings.receipts_ip,
                pepper=settings.receipts_pepper,
                retention=settings.receipts_retention,
                timeout=settings.receipts_timeout,
                texts=settings.texts,
                schema=settings.receipts_schema,
                adopt_interval=settings.receipts_adopt_interval,
            )

    def translator(self, language: str) -> Translator:
        """Texts in ``language`` with the site's overrides (cached)."""
        return _translator(self, language)

    def builtin_cookies(self, language: str) -> tuple[Cookie, Cookie]:
        """The strictly necessary cookies the library itself sets, described
        in ``language``: the consent cookie and the CSRF cookie."""
        return _builtin_cookies(self, language)

    def close(self) -> None:
        """Release what the site holds open (the receipt store)."""
        if self.receipts is not None:
            self.receipts.close()


@functools.lru_cache(maxsize=256)
def _translator(site: Site, language: str) -> Translator:
    return Translator(language, site.settings.texts)


@functools.lru_cache(maxsize=256)
def _builtin_cookies(site: Site, language: str) -> tuple[Cookie, Cookie]:
    settings = site.settings
    tr = site.translator(language)
    return (
        Cookie(
            name=settings.cookie_name,
            provider=tr("builtin.provider"),
            purpose=tr("builtin.consent.purpose"),
            duration=tr("builtin.consent.duration", days=site.policy.max_age.days),
            domain=settings.cookie_domain,
            path=settings.cookie_path,
        ),
        Cookie(
            name=settings.csrf_cookie_name,
            provider=tr("builtin.provider"),
            purpose=tr("builtin.csrf.purpose"),
            duration=tr("builtin.csrf.duration"),
            domain=settings.cookie_domain,
            path=settings.cookie_path,
        ),
    )
