"""Every ``CONSENT_*`` option, read once into one typed, validated object.

Adapters pass a plain mapping (Flask's ``app.config``, the keyword arguments
of the ASGI middleware); :meth:`Settings.from_mapping` fills in the defaults
of :data:`DEFAULTS`, checks every value with one reader that names the key and
says what is wrong, and returns a frozen :class:`Settings`. A setting that
cannot work raises :class:`~consent.exceptions.ConfigurationError` when the
app starts, never on a visitor's request.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import logging
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone

from .enforce import UNDECLARED_ACTIONS
from .enforce import UndeclaredAction
from .exceptions import ConfigurationError
from .gcm import effective_mapping
from .gpc import PROFILES
from .gpc import Profile
from .i18n import DEFAULT_LANGUAGE
from .i18n import available_languages
from .i18n import load_catalog
from .model import DEFAULT_RETENTION
from .model import LONGEST_MAX_AGE
from .model import Policy
from .ratelimit import DEFAULT_LIMIT
from .security import CSRF_MAX_AGE

logger = logging.getLogger(__name__)

#: Where the banner sits: a bar at the bottom, a box in a corner, a dialog in
#: the centre, or in the page flow at the top of ``<body>``.
Layout = t.Literal["bar", "box", "center", "inline"]
LAYOUTS: tuple[Layout, ...] = ("bar", "box", "center", "inline")
#: Values of ``CONSENT_FRAME_ANCESTORS``.
FRAME_ANCESTORS = ("'self'", "'none'", None)

#: The banner's colours: light, dark, or following ``prefers-color-scheme``.
Theme = t.Literal["light", "dark", "auto"]
THEMES: tuple[Theme, ...] = ("light", "dark", "auto")

#: How IP addresses are kept in receipts.
IPMode = t.Literal["truncate", "hash", "none"]
IP_MODES: tuple[IPMode, ...] = ("truncate", "hash", "none")

SameSite = t.Literal["Strict", "Lax", "None"]
_SAMESITE: tuple[SameSite, ...] = ("Strict", "Lax", "None")

SecretKey = str | bytes

#: Every setting with its default. Adapters apply them with ``setdefault``, so
#: a value the app set is never overwritten; the configuration docs list them
#: all (a test checks).
DEFAULTS: dict[str, t.Any] = {
    # None: the framework's key (Flask: SECRET_KEY, with SECRET_KEY_FALLBACKS
    # as older keys).
    "CONSENT_SECRET_KEY": None,
    "CONSENT_COOKIE_NAME": "consent",
    "CONSENT_COOKIE_DOMAIN": None,
    "CONSENT_COOKIE_PATH": "/",
    # None: Secure when the request came over HTTPS.
    "CONSENT_COOKIE_SECURE": None,
    "CONSENT_COOKIE_SAMESITE": "Lax",
    # None: the policy's max_age (182 days unless the policy says otherwise).
    "CONSENT_MAX_AGE": None,
    "CONSENT_URL_PREFIX": "/consent",
    "CONSENT_AUTO_INJECT": True,
    # While the banner shows, put its CSS and script in the page instead of
    # linking consent.css and consent.js: a first visit makes no request for
    # them. A strict CSP allows them by nonce or by html.csp_sources().
    "CONSENT_INLINE_ASSETS": True,
    # None: every shipped language.
    "CONSENT_LANGUAGES": None,
    "CONSENT_DEFAULT_LANGUAGE": DEFAULT_LANGUAGE,
    # A callable returning the language of the current request, or None.
    "CONSENT_LANGUAGE_SELECTOR": None,
    # {language or "*": {message key: text}}
    "CONSENT_TEXTS": {},
    # What to do with Set-Cookie for undeclared cookies: allow, warn, block.
    "CONSENT_UNDECLARED": "warn",
    # A Profile or a profile name ("eu", "uk", "us", "notice"); None: the
    # policy's mode.
    "CONSENT_PROFILE": None,
    # A callable returning this request's Profile or profile name, or None.
    "CONSENT_PROFILE_SELECTOR": None,
    # Serve /.well-known/gpc.json.
    "CONSENT_GPC_SUPPORT": True,
    # The "lastUpdate" of gpc.json (YYYY-MM-DD); None: the day the app started.
    "CONSENT_GPC_LAST_UPDATE": None,
    # A callable returning the CSP nonce of this request.
    "CONSENT_CSP_NONCE": None,
    # Who may frame the library's own pages (frame-ancestors): "'self'",
    # "'none'", or None to leave framing headers to the app.
    "CONSENT_FRAME_ANCESTORS": "'self'",
    "CONSENT_LAYOUT": "bar",
    "CONSENT_THEME": "auto",
    # The receipts dashboard: a callable returning True when the current user
    # may see it; None (the default) leaves it off.
    "CONSENT_ADMIN_ACCESS": None,
    # Google Consent Mode: {key: [consent types]}; None: the default mapping.
    "CONSENT_GCM_MAPPING": None,
    # wait_for_update of the Consent Mode default, in milliseconds.
    "CONSENT_GCM_WAIT_MS": 500,
    # Seconds a form's CSRF token stays valid.
    "CONSENT_CSRF_MAX_AGE": CSRF_MAX_AGE,
    # Consent posts per client ("limits" notation); None: no limit.
    "CONSENT_RATE_LIMIT": DEFAULT_LIMIT,
    # Where the counts are kept: memory://, redis://host:6379, memcached://...
    "CONSENT_RATE_LIMIT_STORAGE": "memory://",
    # "sqlite" (a file in the app's folder), any SQLAlchemy URL or Engine, or
    # None to keep no receipts.
    "CONSENT_RECEIPTS_URL": "sqlite",
    # How IP addresses are kept: "truncate" (/24, /48), "hash" (HMAC with
    # CONSENT_RECEIPTS_PEPPER) or "none".
    "CONSENT_RECEIPTS_IP": "truncate",
    "CONSENT_RECEIPTS_PEPPER": None,
    # Days (or a timedelta) receipts are kept before they are purged.
    "CONSENT_RECEIPTS_RETENTION": DEFAULT_RETENTION,
    # Seconds a receipt waits for the database when the spool cannot be
    # written, and a reader in the process waits for receipts just answered.
    "CONSENT_RECEIPTS_TIMEOUT": 2.0,
    # Where each process keeps its spool; None: the app's folder.
    "CONSENT_RECEIPTS_SPOOL_DIR": None,
    # Seconds between two looks for spools of dead processes to replay.
    "CONSENT_RECEIPTS_ADOPT_INTERVAL": 10.0,
    # The database schema of the receipt tables; None: the connection's.
    "CONSENT_RECEIPTS_SCHEMA": None,
}


def _warn_unknown_texts(texts: cabc.Mapping[str, cabc.Mapping[str, str]]) -> None:
    """Log the keys of ``CONSENT_TEXTS`` that no text of the library has: a
    typo there would otherwise change nothing, silently."""
    known = load_catalog(DEFAULT_LANGUAGE).keys()
    unknown = sorted({key for own in texts.values() for key in own} - known)
    if unknown:
        logger.warning(
            "CONSENT_TEXTS names texts the library does not have, which change"
            " nothing: %s. The keys are those of consent/translations/en.json.",
            ", ".join(unknown),
        )


class _Reader:
    """Read ``CONSENT_*`` values from a mapping, with the defaults, and say
    exactly which key is wrong when one cannot work."""

    def __init__(self, config: cabc.Mapping[str, t.Any]) -> None:
        self._config = config

    def get(self, key: str) -> t.Any:
        return self._config.get(key, DEFAULTS[key])

    def fail(self, key: str, problem: str) -> t.NoReturn:
        raise ConfigurationError(f"{key} {problem}")

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            self.fail(key, f"must be True or False, not {value!r}.")
        return value

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string, not {value!r}.")
        return value

    def choice(self, key: str, allowed: cabc.Sequence[t.Any]) -> t.Any:
        value = self.get(key)
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            self.fail(key, f"must be one of {shown}, not {value!r}.")
        return value

    def function(self, key: str, purpose: str) -> cabc.Callable[..., t.Any] | None:
        value = self.get(key)
        if value is not None and not callable(value):
            self.fail(key, f"must be a callable {purpose}, or None.")
        return t.cast("cabc.Callable[..., t.Any] | None", value)

    def number(self, key: str, *, minimum: float) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, not {value!r}.")
        if value < minimum:
            self.fail(key, f"must be at least {minimum}, not {value!r}.")
        return float(value)

    def duration(self, key: str, unit: str) -> timedelta | None:
        value = self.get(key)
        if value is None or isinstance(value, timedelta):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number of {unit} or a timedelta, not {value!r}.")
        return timedelta(**{unit: value})


def _secret_keys(
    reader: _Reader, fallback: cabc.Sequence[SecretKey]
) -> tuple[SecretKey, ...]:
    configured = reader.get("CONSENT_SECRET_KEY")
    if configured:
        keys = [configured] if isinstance(configured, str | bytes) else configured
    else:
        keys = list(fallback)
    keys = [k for k in keys if k]
    if not keys:
        raise ConfigurationError(
            "Consent signs its cookie: set CONSENT_SECRET_KEY (or the app's"
            " SECRET_KEY) to a long random secret."
        )
    for key in keys:
        if not isinstance(key, str | bytes):
            reader.fail(
                "CONSENT_SECRET_KEY",
                "must be a string, bytes, or a list of them from oldest to newest.",
            )
    return tuple(keys)


def _languages(
    reader: _Reader, texts: cabc.Mapping[str, cabc.Mapping[str, str]]
) -> tuple[str, ...]:
    """``CONSENT_LANGUAGES``: every shipped catalogue when unset; otherwise
    each language must have a shipped catalogue or its own ``CONSENT_TEXTS``,
    or its visitors would get English texts marked as another language."""
    key = "CONSENT_LANGUAGES"
    value = reader.get(key)
    shipped = available_languages()
    if value is None:
        return shipped
    # Read once: the value may be an iterator.
    tags = (
        None
        if isinstance(value, str | bytes) or not isinstance(value, cabc.Iterable)
        else tuple(value)
    )
    if tags is None or not all(isinstance(tag, str) and tag for tag in tags):
        reader.fail(
            key, f"must be a list of languages such as ['en', 'fr'], not {value!r}."
        )
    languages = tuple(dict.fromkeys(tags))
    if not languages:
        reader.fail(key, "must name at least one language, or be None for all.")
    unknown = [tag for tag in languages if tag not in shipped and tag not in texts]
    if unknown:
        which = "which has" if len(unknown) == 1 else "which have"
        reader.fail(
            key,
            f"names {', '.join(map(repr, unknown))}, {which} no catalogue and no"
            " CONSENT_TEXTS: translate the texts there, or use a shipped"
            f" catalogue ({', '.join(shipped)}).",
        )
    return languages


def _profile(reader: _Reader, key: str) -> Profile | None:
    value = reader.get(key)
    if value is None or isinstance(value, Profile):
        return value
    return profile_named(value, key)


def profile_named(value: object, setting: str) -> Profile:
    """The built-in profile called ``value``.

    :raises ConfigurationError: naming ``setting`` when there is none.
    """
    try:
        return PROFILES[t.cast(str, value)]
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"{setting}: unknown profile {value!r}; use a consent.Profile or one of"
            f" {', '.join(PROFILES)}."
        ) from None


def _check_notice(profile: Profile | None, policy: Policy, setting: str) -> None:
    if profile is not None and profile.mode == "notice" and policy.optional_categories:
        raise ConfigurationError(
            f"{setting}: the notice profile informs only, but the policy has"
            " optional categories; use 'eu', 'uk' or 'us', or declare only"
            " strictly necessary cookies."
        )


@dataclasses.dataclass(frozen=True)
class Settings:
    """One site's consent settings, validated.

    Build it with :meth:`from_mapping`. Field names are the settings' names
    without the ``CONSENT_`` prefix, in lower case; the configuration docs
    describe each.
    """

    #: The policy in force, with ``CONSENT_MAX_AGE`` applied.
    policy: Policy
    #: Signing keys, oldest first; the newest signs.
    secret_keys: tuple[SecretKey, ...]
    cookie_name: str
    cookie_domain: str | None
    cookie_path: str
    #: ``None``: Secure when the request came over HTTPS.
    cookie_secure: bool | None
    cookie_samesite: SameSite | None
    url_prefix: str
    auto_inject: bool
    inline_assets: bool
    languages: tuple[str, ...]
    default_language: str
    language_selector: cabc.Callable[..., t.Any] | None
    texts: cabc.Mapping[str, cabc.Mapping[str, str]]
    undeclared: UndeclaredAction
    profile: Profile | None
    profile_selector: cabc.Callable[..., t.Any] | None
    gpc_support: bool
    gpc_last_update: str
    csp_nonce: cabc.Callable[..., t.Any] | None
    #: ``None``: the app sets the framing headers of the library's pages.
    frame_ancestors: str | None
    layout: Layout
    theme: Theme
    admin_access: cabc.Callable[..., t.Any] | None
    #: The Consent Mode mapping restricted to the policy's keys.
    gcm_mapping: dict[str, list[str]]
    gcm_wait_ms: int
    csrf_max_age: int
    #: ``None``: posts are not counted.
    rate_limit: str | None
    rate_limit_storage: str
    #: ``None`` keeps no receipts.
    receipts_url: t.Any
    receipts_ip: IPMode
    receipts_pepper: bytes | None
    receipts_retention: timedelta
    receipts_timeout: float
    receipts_spool_dir: str | None
    receipts_schema: str | None
    receipts_adopt_interval: float = 10.0

    @property
    def csrf_cookie_name(self) -> str:
        """The CSRF cookie: the consent cookie's name with ``_csrf``."""
        return f"{self.cookie_name}_csrf"

    @classmethod
    def from_mapping(
        cls,
        config: cabc.Mapping[str, t.Any],
        policy: Policy,
        *,
        secret_keys: cabc.Sequence[SecretKey] = (),
    ) -> Settings:
        """Read and check every ``CONSENT_*`` setting of ``config``.

        :param config: The settings; missing keys take their default.
        :param policy: The declared policy.
        :param secret_keys: The framework's keys, oldest first, used when
            ``CONSENT_SECRET_KEY`` is not set.
        :raises ConfigurationError: naming the first setting that cannot
            work, and why.
        """
        read = _Reader(config)
        unknown = sorted(
            key for key in config if key.startswith("CONSENT_") and key not in DEFAULTS
        )
        if unknown:
            raise ConfigurationError(
                f"Unknown setting {unknown[0]}: check its spelling against the"
                " configuration table in the docs."
            )
        max_age = read.duration("CONSENT_MAX_AGE", "seconds")
        if max_age is not None:
            if max_age <= timedelta(0) or max_age > LONGEST_MAX_AGE:
                read.fail(
                    "CONSENT_MAX_AGE",
                    f"is {max_age.days} days: a choice must last between 1 second"
                    " and 395 days (13 months); 182 days is the usual value.",
                )
            policy = dataclasses.replace(policy, max_age=max_age)

        name = t.cast(str, read.text("CONSENT_COOKIE_NAME"))
        domain = read.text("CONSENT_COOKIE_DOMAIN", optional=True)
        path = t.cast(str, read.text("CONSENT_COOKIE_PATH"))
        secure = read.get("CONSENT_COOKIE_SECURE")
        if secure is not None and not isinstance(secure, bool):
            read.fail(
                "CONSENT_COOKIE_SECURE", f"must be True, False or None, not {secure!r}."
            )
        samesite = read.choice("CONSENT_COOKIE_SAMESITE", (*_SAMESITE, None))
        if samesite == "None" and secure is False:
            read.fail(
                "CONSENT_COOKIE_SAMESITE",
                "is 'None', which browsers refuse without Secure: set"
                " CONSENT_COOKIE_SECURE to True or None, or use 'Lax'.",
            )
        if name.startswith("__Host-") and (domain or path != "/" or secure is False):
            read.fail(
                "CONSENT_COOKIE_NAME",
                "has the __Host- prefix, so the cookie must be Secure, have Path=/"
                " and no Domain: remove CONSENT_COOKIE_DOMAIN, set"
                " CONSENT_COOKIE_PATH to '/' and leave CONSENT_COOKIE_SECURE on,"
                " or choose a name without the prefix.",
            )

        prefix = read.get("CONSENT_URL_PREFIX")
        if (
            not isinstance(prefix, str)
            or not prefix.startswith("/")
            or prefix == "/"
            or prefix.endswith("/")
        ):
            read.fail(
                "CONSENT_URL_PREFIX",
                f"must be a path such as '/consent' (not '/', no trailing"
                f" slash), not {prefix!r}.",
            )

        texts = read.get("CONSENT_TEXTS")
        if not isinstance(texts, cabc.Mapping) or not all(
            isinstance(v, cabc.Mapping) for v in texts.values()
        ):
            read.fail(
                "CONSENT_TEXTS",
                "must map a language (or '*') to {message key: text}, such as"
                " {'en': {'banner.title': 'Cookies on Example'}}.",
            )
        languages = _languages(read, texts)
        default_language = read.get("CONSENT_DEFAULT_LANGUAGE")
        if default_language not in languages:
            read.fail(
                "CONSENT_DEFAULT_LANGUAGE",
                f"{default_language!r} is not one of CONSENT_LANGUAGES"
                f" ({', '.join(languages)}).",
            )
        _warn_unknown_texts(texts)

        profile = _profile(read, "CONSENT_PROFILE")
        _check_notice(profile, policy, "CONSENT_PROFILE")
        try:
            gcm_mapping = effective_mapping(policy, read.get("CONSENT_GCM_MAPPING"))
        except ValueError as err:
            read.fail("CONSENT_GCM_MAPPING", f"is not valid: {err}")
        last_update = read.text("CONSENT_GPC_LAST_UPDATE", optional=True)
        if last_update is None:
            last_update = datetime.now(timezone.utc).date().isoformat()

        ip_mode = read.choice("CONSENT_RECEIPTS_IP", IP_MODES)
        pepper = read.get("CONSENT_RECEIPTS_PEPPER")
        if ip_mode == "hash" and not pepper:
            read.fail(
                "CONSENT_RECEIPTS_IP",
                "is 'hash', which needs CONSENT_RECEIPTS_PEPPER: a long random"
                " secret (a plain hash of an IPv4 address is reversible).",
            )
        retention = read.duration("CONSENT_RECEIPTS_RETENTION", "days")
        if retention is None or retention <= timedelta(0):
            read.fail(
                "CONSENT_RECEIPTS_RETENTION", "must be a positive number of days."
            )

        return cls(
            policy=policy,
            secret_keys=_secret_keys(read, secret_keys),
            cookie_name=name,
            cookie_domain=domain,
            cookie_path=path,
            cookie_secure=secure,
            cookie_samesite=samesite,
            url_prefix=prefix,
            auto_inject=read.flag("CONSENT_AUTO_INJECT"),
            inline_assets=read.flag("CONSENT_INLINE_ASSETS"),
            languages=languages,
            default_language=default_language,
            language_selector=read.function(
                "CONSENT_LANGUAGE_SELECTOR",
                "returning a language tag (such as flask_babel.get_locale)",
            ),
            texts=texts,
            undeclared=read.choice("CONSENT_UNDECLARED", UNDECLARED_ACTIONS),
            profile=profile,
            profile_selector=read.function(
                "CONSENT_PROFILE_SELECTOR", "returning a Profile or its name"
            ),
            gpc_support=read.flag("CONSENT_GPC_SUPPORT"),
            gpc_last_update=last_update,
            csp_nonce=read.function("CONSENT_CSP_NONCE", "returning the CSP nonce"),
            frame_ancestors=read.choice("CONSENT_FRAME_ANCESTORS", FRAME_ANCESTORS),
            layout=read.choice("CONSENT_LAYOUT", LAYOUTS),
            theme=read.choice("CONSENT_THEME", THEMES),
            admin_access=read.function(
                "CONSENT_ADMIN_ACCESS",
                "that returns True for users allowed to see the receipts dashboard",
            ),
            gcm_mapping=gcm_mapping,
            gcm_wait_ms=int(read.number("CONSENT_GCM_WAIT_MS", minimum=0)),
            csrf_max_age=int(read.number("CONSENT_CSRF_MAX_AGE", minimum=60)),
            rate_limit=read.text("CONSENT_RATE_LIMIT", optional=True),
            rate_limit_storage=t.cast(str, read.text("CONSENT_RATE_LIMIT_STORAGE")),
            receipts_url=read.get("CONSENT_RECEIPTS_URL"),
            receipts_ip=ip_mode,
            receipts_pepper=pepper.encode() if isinstance(pepper, str) else pepper,
            receipts_retention=retention,
            receipts_timeout=read.number("CONSENT_RECEIPTS_TIMEOUT", minimum=0.01),
            receipts_spool_dir=read.text("CONSENT_RECEIPTS_SPOOL_DIR", optional=True),
            receipts_schema=read.text("CONSENT_RECEIPTS_SCHEMA", optional=True),
            receipts_adopt_interval=read.number(
                "CONSENT_RECEIPTS_ADOPT_INTERVAL", minimum=0.1
            ),
        )
