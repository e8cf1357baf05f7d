"""The Flask extension: configuration, per-request state, Jinja, hooks."""

from __future__ import annotations

import base64
import collections.abc as cabc
import dataclasses
import functools
import hashlib
import logging
import re
import typing as t
import weakref
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from importlib import resources

from flask import current_app
from flask import g
from flask import jsonify
from flask import render_template
from flask import request
from flask import url_for
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from markupsafe import escape
from werkzeug.local import LocalProxy

from ..codec import CookieCodec
from ..enforce import UNDECLARED_ACTIONS
from ..enforce import CookieGate
from ..exceptions import ConfigurationError
from ..exceptions import ReceiptNotKeptError
from ..gcm import ALWAYS_GRANTED
from ..gcm import CONSENT_TYPES
from ..gcm import consent_types
from ..gcm import default_command
from ..gcm import effective_mapping
from ..gpc import PROFILES
from ..gpc import Profile
from ..gpc import gpc_support_resource
from ..gpc import has_gpc
from ..i18n import DEFAULT_LANGUAGE
from ..i18n import Translator
from ..i18n import available_languages
from ..i18n import negotiate
from ..model import LONGEST_MAX_AGE
from ..model import Cookie
from ..model import Policy
from ..receipts.keeper import RECEIPT_DEFAULTS
from ..receipts.keeper import ReceiptKeeper
from ..state import ConsentState
from ..state import allows as core_allows
from ..state import gpc_state
from ..state import needs_banner as core_needs_banner
from .security import CSRFProtection

if t.TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from flask import Flask
    from flask import Response
    from flask.typing import ResponseReturnValue

_View = t.TypeVar("_View", bound=cabc.Callable[..., t.Any])

#: Every setting with its default; applied with ``setdefault``.
DEFAULT_CONFIG: dict[str, t.Any] = {
    # None: SECRET_KEY, plus SECRET_KEY_FALLBACKS as older keys.
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
    # While the banner shows, put its CSS in the page instead of linking
    # consent.css: no render-blocking request on a first visit. A strict CSP
    # must allow it (the request's nonce, or banner_style_hash()).
    "CONSENT_INLINE_CSS": True,
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
    # A callable returning the CSP nonce of this request; None: Flask-Talisman's
    # request.csp_nonce when present.
    "CONSENT_CSP_NONCE": None,
    # Where the banner sits: "bar" (bottom), "box" (corner), "center", or
    # "inline" (in the page flow, at the top of <body>).
    "CONSENT_LAYOUT": "bar",
    # "light", "dark" or "auto" (follows prefers-color-scheme).
    "CONSENT_THEME": "auto",
    # The receipts dashboard at <prefix>/admin: a callable returning True when
    # the current user may see it; None (the default) leaves it off.
    "CONSENT_ADMIN_ACCESS": None,
    # Google Consent Mode: {key: [consent types]}; None: the default mapping.
    "CONSENT_GCM_MAPPING": None,
    # wait_for_update of the Consent Mode default, in milliseconds.
    "CONSENT_GCM_WAIT_MS": 500,
}

logger = logging.getLogger(__name__)

# "Not looked up yet", where None is a valid answer.
_UNSET = object()

DEFAULT_CONFIG.update(RECEIPT_DEFAULTS)

_SAMESITE = ("Strict", "Lax", "None")
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
_BODY_START = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
_LAYOUTS = ("bar", "box", "center", "inline")
_THEMES = ("light", "dark", "auto")


@dataclasses.dataclass(frozen=True)
class _AppSettings:
    """What ``init_app`` derived from one app's config; read per request."""

    policy: Policy
    codec: CookieCodec
    csrf: CSRFProtection
    cookie_name: str
    csrf_cookie_name: str
    domain: str | None
    path: str
    secure: bool | None
    samesite: str | None
    auto_inject: bool
    inline_css: bool
    languages: tuple[str, ...]
    default_language: str
    language_selector: cabc.Callable[[], str | None] | None
    texts: cabc.Mapping[str, cabc.Mapping[str, str]]
    gate: CookieGate
    layout: str
    theme: str
    vary: tuple[str, ...]
    receipts: ReceiptKeeper | None
    profile: Profile | None
    profile_selector: cabc.Callable[[], Profile | str | None] | None
    csp_nonce: cabc.Callable[[], str | None] | None


class Consent:
    """Cookie consent for a Flask app.

    ``Consent(app, policy)``, or ``ext = Consent(policy=policy)`` and later
    ``ext.init_app(app)`` in an app factory. The extension registers the
    ``consent`` blueprint, the Jinja helpers ``consent_banner()``,
    ``consent_head()``, ``consent_settings_link()`` and ``consent``, and an
    ``after_request`` hook that writes the consent cookie and shows the banner
    on HTML pages.

    :param app: The app to set up now, if any.
    :param policy: The declared categories, services and cookies.
    """

    def __init__(self, app: Flask | None = None, policy: Policy | None = None) -> None:
        #: The policy, shared by every app this extension is set up on.
        self.policy = policy
        self._settings: weakref.WeakKeyDictionary[Flask, _AppSettings] = (
            weakref.WeakKeyDictionary()
        )
        #: Views decorated with :meth:`requires`: qualified name to key.
        self.required: dict[str, str] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, policy: Policy | None = None) -> None:
        """Set the extension up on ``app``.

        :param policy: Overrides the policy given to the constructor.
        :raises ConfigurationError: when the configuration cannot work.
        """
        from .views import bp

        policy = policy or self.policy
        if policy is None:
            raise ConfigurationError(
                "Consent needs a policy: Consent(app, Policy([...])) or"
                " init_app(app, policy)."
            )
        for key, value in DEFAULT_CONFIG.items():
            app.config.setdefault(key, value)
        self._settings[app] = _settings_from(app, policy)
        app.extensions["consent"] = self
        prefix = app.config["CONSENT_URL_PREFIX"]
        app.register_blueprint(bp, url_prefix=prefix)
        app.context_processor(_template_context)
        from .markup import consent_embed
        from .markup import consent_script

        app.jinja_env.globals.update(
            consent_script=consent_script,
            consent_embed=consent_embed,
            consent_settings_link=consent_settings_link,
        )
        # Flask runs after_request hooks last-registered first: put ours at
        # the end of that order, so it sees the cookies every other hook and
        # extension set, including those set up before this one.
        app.after_request_funcs.setdefault(None, []).insert(0, _finish_response)
        from .cli import consent_cli

        app.cli.add_command(consent_cli)
        access = app.config["CONSENT_ADMIN_ACCESS"]
        if access is not None:
            if not callable(access):
                raise ConfigurationError(
                    "CONSENT_ADMIN_ACCESS must be a callable that returns True"
                    " for users allowed to see the receipts dashboard."
                )
            from .admin import admin_bp

            app.register_blueprint(admin_bp, url_prefix=f"{prefix}/admin")
        if app.config["CONSENT_GPC_SUPPORT"]:
            last_update = app.config["CONSENT_GPC_LAST_UPDATE"] or (
                datetime.now(timezone.utc).date().isoformat()
            )
            app.add_url_rule(
                "/.well-known/gpc.json",
                "consent_gpc",
                functools.partial(_gpc_support, last_update),
            )

    def requires(
        self,
        key: str,
        *,
        fallback: cabc.Callable[..., ResponseReturnValue] | str | None = None,
    ) -> cabc.Callable[[_View], _View]:
        """Decorate a view that cannot work without ``key``.

        Without consent the view does not run: the visitor gets a page that
        explains and offers the choice, with status 403, or the response of
        ``fallback`` (a view function, or the endpoint name of one).

        :param key: A category or service key of the policy.
        :param fallback: What to answer instead of the 403 page.
        """
        if self.policy is not None:
            self.policy.category_of(key)  # fail at import for a typo

        def decorator(view: _View) -> _View:
            self.required[f"{view.__module__}.{view.__qualname__}"] = key

            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                rc = _request_consent()
                if rc.allows(key):
                    return view(*args, **kwargs)
                if callable(fallback):
                    return fallback(*args, **kwargs)
                if isinstance(fallback, str):
                    return current_app.view_functions[fallback](*args, **kwargs)
                return _requires_page(rc, key)

            return t.cast(_View, wrapper)

        return decorator

    def settings(self, app: Flask) -> _AppSettings:
        """The settings derived for ``app`` (for the views and hooks)."""
        try:
            return self._settings[app]
        except KeyError:
            raise RuntimeError(
                "Consent was not set up on this app: call init_app(app) first."
            ) from None

    def policy_for(self, app: Flask) -> Policy:
        """The policy in force on ``app``, with the configured max age."""
        return self.settings(app).policy

    def builtin_cookies(self, app: Flask) -> tuple[Cookie, ...]:
        """The strictly necessary cookies the extension itself sets."""
        settings = self.settings(app)
        t_ = Translator(settings.default_language, settings.texts)
        days = settings.policy.max_age.days
        return (
            Cookie(
                name=settings.cookie_name,
                provider=t_("builtin.provider"),
                purpose=t_("builtin.consent.purpose"),
                duration=t_("builtin.consent.duration", days=days),
                domain=settings.domain,
                path=settings.path,
            ),
            Cookie(
                name=settings.csrf_cookie_name,
                provider=t_("builtin.provider"),
                purpose=t_("builtin.csrf.purpose"),
                duration=t_("builtin.csrf.duration"),
                domain=settings.domain,
                path=settings.path,
            ),
        )


def _secret_keys(app: Flask) -> list[str | bytes]:
    configured = app.config["CONSENT_SECRET_KEY"]
    if configured:
        keys = [configured] if isinstance(configured, str | bytes) else configured
        return [k for k in keys if k]
    if not app.secret_key:
        raise ConfigurationError(
            "Consent signs its cookie: set CONSENT_SECRET_KEY or SECRET_KEY."
        )
    # Flask's own order: fallbacks (older keys) first, the current key last.
    return [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]


def _settings_from(app: Flask, policy: Policy) -> _AppSettings:
    config = app.config
    max_age = config["CONSENT_MAX_AGE"]
    if max_age is not None:
        if not isinstance(max_age, timedelta):
            max_age = timedelta(seconds=max_age)
        if max_age > LONGEST_MAX_AGE:
            raise ConfigurationError(
                f"CONSENT_MAX_AGE is {max_age.days} days: a choice may last at most"
                " 395 days (13 months); 182 days is the usual value."
            )
        policy = dataclasses.replace(policy, max_age=max_age)
    name = config["CONSENT_COOKIE_NAME"]
    samesite = config["CONSENT_COOKIE_SAMESITE"]
    if samesite is not None and samesite not in _SAMESITE:
        raise ConfigurationError(
            f"CONSENT_COOKIE_SAMESITE must be 'Lax', 'Strict', 'None' or None,"
            f" not {samesite!r}; 'Lax' is the right value for nearly every site."
        )
    if samesite == "None" and config["CONSENT_COOKIE_SECURE"] is False:
        raise ConfigurationError(
            "Browsers refuse SameSite=None cookies without Secure: set"
            " CONSENT_COOKIE_SECURE to True or None, or use SameSite 'Lax'."
        )
    if name.startswith("__Host-") and (
        config["CONSENT_COOKIE_DOMAIN"]
        or config["CONSENT_COOKIE_PATH"] != "/"
        or config["CONSENT_COOKIE_SECURE"] is False
    ):
        raise ConfigurationError(
            "A __Host- cookie must be Secure, have Path=/ and no Domain: remove"
            " CONSENT_COOKIE_DOMAIN, set CONSENT_COOKIE_PATH to '/' and leave"
            " CONSENT_COOKIE_SECURE on, or choose a name without the prefix."
        )
    prefix = config["CONSENT_URL_PREFIX"]
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix == "/":
        raise ConfigurationError(
            f"CONSENT_URL_PREFIX must be a path such as '/consent', not {prefix!r}."
        )
    shipped = available_languages()
    languages = tuple(config["CONSENT_LANGUAGES"] or shipped)
    default_language = config["CONSENT_DEFAULT_LANGUAGE"]
    if default_language not in languages:
        raise ConfigurationError(
            f"CONSENT_DEFAULT_LANGUAGE {default_language!r} is not one of"
            f" CONSENT_LANGUAGES ({', '.join(languages)})."
        )
    selector = config["CONSENT_LANGUAGE_SELECTOR"]
    if selector is not None and not callable(selector):
        raise ConfigurationError(
            "CONSENT_LANGUAGE_SELECTOR must be a callable returning a language"
            " tag (or None), such as flask_babel.get_locale."
        )
    undeclared = config["CONSENT_UNDECLARED"]
    if undeclared not in UNDECLARED_ACTIONS:
        raise ConfigurationError(
            f"CONSENT_UNDECLARED must be one of {', '.join(UNDECLARED_ACTIONS)},"
            f" not {undeclared!r}."
        )
    for setting in (
        "CONSENT_PROFILE_SELECTOR",
        "CONSENT_CSP_NONCE",
    ):
        if config[setting] is not None and not callable(config[setting]):
            raise ConfigurationError(f"{setting} must be a callable or None.")
    try:
        effective_mapping(policy, config["CONSENT_GCM_MAPPING"])
    except ValueError as err:
        raise ConfigurationError(f"CONSENT_GCM_MAPPING: {err}") from err
    profile = _profile(config["CONSENT_PROFILE"], "CONSENT_PROFILE")
    _check_profile(profile, policy, "CONSENT_PROFILE")
    keys = _secret_keys(app)
    return _AppSettings(
        policy=policy,
        codec=CookieCodec(keys, policy),
        csrf=CSRFProtection(keys),
        cookie_name=name,
        csrf_cookie_name=f"{name}_csrf",
        domain=config["CONSENT_COOKIE_DOMAIN"],
        path=config["CONSENT_COOKIE_PATH"],
        secure=config["CONSENT_COOKIE_SECURE"],
        samesite=samesite,
        auto_inject=bool(config["CONSENT_AUTO_INJECT"]),
        inline_css=bool(config["CONSENT_INLINE_CSS"]),
        languages=languages,
        default_language=default_language,
        language_selector=selector,
        texts=config["CONSENT_TEXTS"],
        receipts=ReceiptKeeper.from_config(policy, config, folder=app.instance_path)
        if config["CONSENT_RECEIPTS_URL"] is not None
        else None,
        vary=("Cookie", "Sec-GPC") if policy.sale_or_sharing_keys else ("Cookie",),
        layout=_choice(config, "CONSENT_LAYOUT", _LAYOUTS),
        theme=_choice(config, "CONSENT_THEME", _THEMES),
        gate=CookieGate(
            policy, undeclared=undeclared, always_allowed=(name, f"{name}_csrf")
        ),
        profile=profile,
        profile_selector=config["CONSENT_PROFILE_SELECTOR"],
        csp_nonce=config["CONSENT_CSP_NONCE"],
    )


def _choice(
    config: cabc.Mapping[str, t.Any], setting: str, allowed: tuple[str, ...]
) -> str:
    value = config[setting]
    if value not in allowed:
        raise ConfigurationError(
            f"{setting} must be one of {', '.join(allowed)}, not {value!r}."
        )
    return str(value)


def _check_profile(profile: Profile | None, policy: Policy, setting: str) -> None:
    if profile is not None and profile.mode == "notice" and policy.optional_categories:
        raise ConfigurationError(
            f"{setting}: the notice profile informs only, but the policy has"
            " optional categories; use 'eu', 'uk' or 'us', or declare only"
            " strictly necessary cookies."
        )


def _profile(value: Profile | str | None, setting: str) -> Profile | None:
    if value is None or isinstance(value, Profile):
        return value
    try:
        return PROFILES[value]
    except KeyError:
        raise ConfigurationError(
            f"{setting}: unknown profile {value!r}; use a consent.gpc.Profile or"
            f" one of {', '.join(PROFILES)}."
        ) from None


class RequestConsent:
    """The consent of the visitor behind the current request.

    Templates reach it as ``consent`` and code as :data:`consent.flask.current`.
    The cookie is decoded lazily, at most once per request: a view that never
    asks pays nothing.
    """

    def __init__(self, settings: _AppSettings) -> None:
        self._settings = settings
        #: The policy in force.
        self.policy = settings.policy
        #: The time every decision of this request is taken at.
        self.now = datetime.now(timezone.utc)
        #: True once the response depends on the consent cookie.
        self.consulted = False
        #: True once the banner was rendered into the response.
        self.banner_rendered = False
        #: True once the stylesheet link was rendered in ``<head>``.
        self.head_rendered = False
        #: True on pages that are the choice themselves (preferences).
        self.banner_suppressed = False
        self._new_state: ConsentState | None = None
        self._raw: str | None = None
        self._profile: object = _UNSET
        self._gpc: bool | None = None
        self._stored: ConsentState | None = None
        self._expire: list[tuple[str, Cookie]] = []
        #: The Global Privacy Control opt-out this request recorded, if any.
        self.gpc_recorded: ConsentState | None = None
        self._csrf_nonce: str | None = None
        self._set_csrf_cookie = False

    @property
    def stored(self) -> ConsentState | None:
        """The state in the visitor's cookie, even from another revision.

        Decoded on first use, at most once per request. (Plain attributes,
        not cached_property: this is on every page's path, and
        cached_property takes a lock.)
        """
        if not self.consulted:
            self.consulted = True
            self._raw = request.cookies.get(self._settings.cookie_name)
            self._stored = self._settings.codec.decode(self._raw, self.now)
        return self._stored

    @property
    def state(self) -> ConsentState | None:
        """The state in force for this request: a new choice or the cookie's.

        A ``Sec-GPC: 1`` request whose cookie does not record the opt-out yet
        records it now, before any banner (CCPA regs. 7025; Colorado 5.09).
        """
        if self._new_state is not None:
            return self._new_state
        stored = self.stored
        if self.gpc and (
            stored is None
            or not stored.gpc
            or not stored.is_current(self.policy, self.now)
        ):
            self._new_state = gpc_state(self.policy, now=self.now, previous=stored)
            #: The opt-out this request recorded from a GPC signal.
            self.gpc_recorded = self._new_state
            # What was allowed before and is sold or shared stops now.
            self._expire = self._settings.gate.to_expire(
                request.cookies.keys(), self.allows
            )
            return self._new_state
        return stored

    @property
    def profile(self) -> Profile | None:
        """The regional profile of this request (``None``: the policy's mode)."""
        if self._profile is _UNSET:
            profile = self._settings.profile
            selector = self._settings.profile_selector
            if selector is not None:
                chosen = _profile(selector(), "CONSENT_PROFILE_SELECTOR")
                if chosen is not None:
                    profile = chosen
            self._profile = profile
        return t.cast("Profile | None", self._profile)

    @property
    def gpc(self) -> bool:
        """True when the request carries a Global Privacy Control signal that
        this request's profile honours."""
        if self._gpc is None:
            profile = self.profile
            # WSGI servers join repeated headers with commas; has_gpc splits.
            value = request.environ.get("HTTP_SEC_GPC")
            self._gpc = (
                (profile is None or profile.honors_gpc)
                and value is not None
                and has_gpc((value,))
            )
        return self._gpc

    @property
    def gpc_honored(self) -> bool:
        """True when an opt-out signal is on record for this visitor."""
        state = self.state
        return state is not None and state.gpc

    @property
    def layout(self) -> str:
        """The banner layout: ``bar``, ``box``, ``center`` or ``inline``."""
        return self._settings.layout

    @property
    def mode(self) -> str:
        """``opt-in``, ``opt-out`` or ``notice`` for this request."""
        profile = self.profile
        return profile.mode if profile is not None else self.policy.mode

    @property
    def needs_banner(self) -> bool:
        """True when the visitor must be asked (again)."""
        return core_needs_banner(self.state, self.policy, self.now)

    @property
    def has_chosen(self) -> bool:
        """True when a current choice exists."""
        return not self.needs_banner

    def allows(self, key: str) -> bool:
        """True when the category or service ``key`` may run.

        :raises UnknownCategoryError: when ``key`` is not declared.
        """
        return core_allows(self.state, self.policy, key, self.now, self.profile)

    def choices(self) -> dict[str, bool]:
        """Every optional key mapped to whether it may run."""
        return {key: self.allows(key) for key in self.policy.choice_keys}

    @functools.cached_property
    def language(self) -> str:
        """The language of the banner for this request."""
        settings = self._settings
        if settings.language_selector is not None:
            chosen = settings.language_selector()
            if chosen:
                chosen = str(chosen).replace("_", "-")
                if chosen in settings.languages:
                    return chosen
                base = chosen.split("-")[0]
                if base in settings.languages:
                    return base
        return negotiate(
            request.headers.get("Accept-Language"),
            settings.languages,
            settings.default_language,
        )

    @functools.cached_property
    def translator(self) -> Translator:
        """Texts in :attr:`language`, with the app's overrides."""
        return Translator(self.language, self._settings.texts)

    def remember(self, state: ConsentState) -> None:
        """Make ``state`` this request's state and write it to the cookie.

        Cookies the visitor holds for what the new state refuses are expired
        in the same response, with their declared domain and path.
        """
        self._new_state = state
        self._expire = self._settings.gate.to_expire(
            request.cookies.keys(), self.allows
        )

    def csrf_token(self) -> str:
        """The CSRF token for forms in this response (sets the nonce cookie)."""
        if self._csrf_nonce is None:
            nonce = request.cookies.get(self._settings.csrf_cookie_name)
            if not CSRFProtection.is_nonce(nonce):
                nonce = CSRFProtection.new_nonce()
                self._set_csrf_cookie = True
            self._csrf_nonce = nonce
        assert self._csrf_nonce is not None
        return self._settings.csrf.token(self._csrf_nonce)

    def check_csrf(self, token: str | None) -> None:
        """Raise a 400 unless ``token`` belongs to this visitor."""
        nonce = request.cookies.get(self._settings.csrf_cookie_name)
        self._settings.csrf.check(token, nonce)

    def write(self, response: Response) -> None:
        """Write the cookies this request decided on to ``response``."""
        s = self._settings
        state = self._new_state
        drop = False
        if state is None and self._raw is not None:
            if self._stored is None:
                # Forged, expired or unreadable: drop it so it is not re-sent.
                drop = True
            elif s.codec.needs_resign(self._raw):
                # Signed with an older key: write it again with the newest one.
                state = self._stored
        if state is None and not drop and not self._set_csrf_cookie:
            if not self._expire:
                return  # the common case: nothing to write
        secure = request.is_secure if s.secure is None else s.secure
        cookie: dict[str, t.Any] = {
            "domain": s.domain,
            "path": s.path,
            "secure": secure,
            "httponly": True,
            "samesite": s.samesite,
        }
        if self._set_csrf_cookie and self._csrf_nonce:
            response.set_cookie(s.csrf_cookie_name, self._csrf_nonce, **cookie)
        for name, declared in self._expire:
            response.delete_cookie(
                name, domain=declared.domain, path=declared.path or "/"
            )
        if drop:
            response.delete_cookie(s.cookie_name, **cookie)
        if state is not None:
            remaining = state.given_at + self.policy.max_age - self.now
            response.set_cookie(
                s.cookie_name,
                s.codec.encode(state),
                max_age=max(int(remaining.total_seconds()), 0),
                **cookie,
            )


def _request_consent() -> RequestConsent:
    rc: RequestConsent | None = g.get("_consent")
    if rc is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        rc = RequestConsent(app.extensions["consent"].settings(app))
        g._consent = rc
    return rc


#: The consent of the current request (a :class:`RequestConsent`).
current: RequestConsent = LocalProxy(_request_consent)  # type: ignore[assignment]


def _gpc_support(last_update: str) -> Response:
    response = jsonify(gpc_support_resource(last_update))
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


def _requires_page(rc: RequestConsent, key: str) -> Response:
    category = rc.policy.category_of(key)
    service = next((s for s in category.services if s.key == key), None)
    context = _page_context(rc)
    context.update(
        key=key,
        purpose=service.title if service else category.title,
        granted=[k for k in rc.policy.choice_keys if rc.allows(k)],
    )
    response = current_app.make_response(
        (render_template("consent/requires.html", **context), 403)
    )
    response.cache_control.private = True
    return response


def _asset_url(filename: str) -> str:
    # A version in the URL lets browsers keep the file for a year (see
    # views.ConsentBlueprint) and still fetch a new release at once.
    return url_for("consent.static", filename=filename, v=asset_version(filename))


@functools.cache
def asset_version(filename: str) -> str:
    """A short hash of a static file's content, for cache-busting URLs."""
    content = (_static_folder() / filename).read_bytes()
    return hashlib.sha256(content).hexdigest()[:10]


def _static_folder() -> Traversable:
    """The folder of the library's static files."""
    return resources.files("consent") / "static" / "consent"


def consent_head() -> Markup:
    """The ``<head>`` part: the banner's styles and the deferred ``consent.js``.

    Optional: without it, the banner carries its own tags. The script is
    deferred, so it never delays first paint. While the banner shows, its CSS
    is in the page (``CONSENT_INLINE_CSS``): a first visit then waits for no
    stylesheet request; other pages link the cached ``consent.css``.
    """
    rc = _request_consent()
    rc.head_rendered = True
    inline = rc._settings.inline_css and rc.needs_banner and not rc.banner_suppressed
    return _asset_tags(inline=inline)


@functools.cache
def banner_css() -> str:
    """The content of ``consent.css``, as the page carries it inline."""
    return (_static_folder() / "consent.css").read_text(encoding="utf-8")


def banner_style_hash() -> str:
    """The CSP source that allows the inline banner styles.

    For an app whose ``style-src`` allows neither ``'unsafe-inline'`` nor the
    request's nonce: add this (``'sha256-…'``) to ``style-src``. It changes
    only with a release of the library.
    """
    digest = hashlib.sha256(banner_css().encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _asset_tags(css: bool = True, inline: bool = False) -> Markup:
    nonce = csp_nonce()
    nonce_attr = f' nonce="{escape(nonce)}"' if nonce else ""
    script = escape(_asset_url("consent.js"))
    tags = f'<script src="{script}" defer{nonce_attr}></script>'
    if css and inline:
        tags = f"<style{nonce_attr}>{banner_css()}</style>{tags}"
    elif css:
        sheet = escape(_asset_url("consent.css"))
        tags = f'<link rel="stylesheet" href="{sheet}">{tags}'
    return Markup(tags)


def consent_banner() -> Markup:
    """The banner when the visitor must choose, else nothing.

    Renders ``consent/banner.html``; an app overrides it by providing a
    template at the same path.
    """
    rc = _request_consent()
    if rc.banner_rendered or rc.banner_suppressed or not rc.needs_banner:
        return Markup("")
    rc.banner_rendered = True
    return Markup(render_template("consent/banner.html", **_banner_context(rc)))


def consent_mode_head(region: cabc.Sequence[str] | None = None) -> Markup:
    """Google Consent Mode v2, for ``<head>`` before any Google tag.

    Renders the default (everything denied that the visitor has not allowed,
    ``wait_for_update``, optional ``region``) and, when the visitor has
    chosen, the ``update``, as data for ``gcm.js``, a same-origin script: no
    inline script, so ``script-src 'self'`` is enough. ``consent.js`` sends
    the next ``update`` without a reload when the choice changes.

    :param region: ISO 3166 codes the default applies to.
    """
    rc = _request_consent()
    config = current_app.config
    mapping = effective_mapping(rc.policy, config["CONSENT_GCM_MAPPING"])
    data = {
        "default": default_command(
            wait_for_update=config["CONSENT_GCM_WAIT_MS"], region=region
        ),
        "update": _consent_update(rc, mapping),
        "mapping": mapping,
        "types": list(CONSENT_TYPES),
        "always": list(ALWAYS_GRANTED),
    }
    rc.consulted = True
    nonce = csp_nonce()
    nonce_attr = Markup(' nonce="{}"').format(nonce) if nonce else Markup("")
    return Markup(
        '<script type="application/json" id="consent-gcm">{}</script>'
        '<script src="{}"{}></script>'
    ).format(htmlsafe_json_dumps(data), _asset_url("gcm.js"), nonce_attr)


def _consent_update(
    rc: RequestConsent, mapping: cabc.Mapping[str, cabc.Sequence[str]]
) -> dict[str, str] | None:
    """The update to send after the default: after a choice, and whenever
    something already runs without one (opt-out mode, UK exemptions)."""
    update = consent_types(mapping, rc.allows)
    if rc.needs_banner and update == consent_types(mapping, lambda key: False):
        return None
    return update


def consent_settings_link(label: str | None = None) -> Markup:
    """A link to the preferences page, for the footer of every page.

    Withdrawing must be as easy as consenting, and possible at any time
    (GDPR Art. 7(3)): this link is how, even without JavaScript.

    :param label: The link text; "Cookie settings" in the visitor's language
        by default.
    """
    rc = _request_consent()
    href = url_for("consent.preferences", next=_here())
    text = label if label is not None else rc.translator("settings_link")
    return Markup(
        '<a class="consent-settings-link" href="{}" data-consent-open>{}</a>'
    ).format(href, text)


def _here() -> str:
    """The current page as a path the visitor's browser can go back to,
    including the script root of an app mounted under a prefix."""
    path = request.full_path if request.query_string else request.path
    return request.script_root + path


def _banner_context(rc: RequestConsent) -> dict[str, t.Any]:
    """What the banner needs to render."""
    policy = rc.policy
    purposes = ", ".join(c.title for c in policy.optional_categories)
    return {
        "t": rc.translator,
        "policy": policy,
        "purposes": purposes,
        "csrf_token": rc.csrf_token(),
        "next": _here() if request.blueprint != "consent" else None,
        "head_rendered": rc.head_rendered,
        "gpc_honored": rc.gpc_honored,
        "layout": rc.layout,
        "theme": rc._settings.theme,
        # Only a page without consent_head() needs the tags in the banner.
        "asset_tags": (
            Markup("")
            if rc.head_rendered
            else _asset_tags(inline=rc._settings.inline_css)
        ),
        "mode": rc.mode,
        "update_url": url_for("consent.update"),
        "preferences_url": url_for("consent.preferences"),
        "declaration_url": url_for("consent.declaration"),
    }


def _page_context(rc: RequestConsent) -> dict[str, t.Any]:
    """What the banner and the library's pages need to render."""
    context = _banner_context(rc)
    context["css_url"] = _asset_url("consent.css")
    return context


def _template_context() -> dict[str, t.Any]:
    return {
        "consent": current,
        "consent_banner": consent_banner,
        "consent_head": consent_head,
        "consent_settings_link": consent_settings_link,
        "consent_mode_head": consent_mode_head,
    }


def _finish_response(response: Response) -> Response:
    """Write cookies, show the banner and mark responses for caches."""
    rc: RequestConsent | None = g.get("_consent")
    settings = current_app.extensions["consent"].settings(
        current_app._get_current_object()  # type: ignore[attr-defined]
    )
    if (
        settings.auto_inject
        and response.mimetype == "text/html"
        and not response.direct_passthrough
        and not response.is_streamed
        and response.status_code not in (204, 304)
        and response.status_code // 100 != 3
    ):
        rc = rc or _request_consent()
        _inject_banner(rc, response)
    # One pass over the headers instead of a lookup per header.
    present = {key.lower() for key, _ in response.headers.items()}
    if "set-cookie" in present:
        rc = rc or _request_consent()
        _filter_set_cookies(
            rc, settings.gate, response, response.headers.getlist("Set-Cookie")
        )
    if rc is None:
        return response
    if rc.gpc_recorded is not None and settings.receipts is not None:
        try:
            settings.receipts.keep(
                rc.gpc_recorded,
                language=rc.language,
                path=request.path,
                user_agent=request.headers.get("User-Agent"),
                remote_addr=request.remote_addr,
            )
        except ReceiptNotKeptError:
            # A refusal takes effect even when it cannot be proven.
            logger.error("The receipt of a GPC opt-out could not be kept.")
    rc.write(response)
    if rc.consulted:
        _mark_private(response, settings.vary, present)
    return response


def _mark_private(
    response: Response, vary: tuple[str, ...], present: cabc.Set[str]
) -> None:
    """Mark a response that depends on the visitor's consent.

    A shared cache must never hand one visitor's page to another: the page of
    someone who accepted carries live tags and no banner.

    :param present: The lower-cased names of the headers already set.
    """
    headers = response.headers
    if "vary" not in present:
        headers.add("Vary", ", ".join(vary))
    else:
        response.vary.update(vary)
    if "cache-control" not in present:
        headers.add("Cache-Control", "private")
    elif not response.cache_control.no_store:
        response.cache_control.private = True


def _filter_set_cookies(
    rc: RequestConsent, gate: CookieGate, response: Response, headers: list[str]
) -> None:
    """Remove ``Set-Cookie`` headers of what the visitor has not allowed."""
    kept, removed = gate.filter(headers, rc.allows)
    if removed:
        del response.headers["Set-Cookie"]
        for header in kept:
            response.headers.add("Set-Cookie", header)
        logger.debug(
            "Removed Set-Cookie for %s: not allowed by the visitor.",
            ", ".join(v.name for v in removed),
        )


def csp_nonce() -> str | None:
    """The CSP nonce of the current request, if the app uses one."""
    settings = _request_consent()._settings
    if settings.csp_nonce is not None:
        return settings.csp_nonce()
    nonce = getattr(request, "csp_nonce", None) or g.get("csp_nonce")
    return str(nonce) if nonce else None


def _inject_banner(rc: RequestConsent, response: Response) -> None:
    """Put the banner (or, when none is needed, ``consent.js`` alone, for the
    "Cookie settings" links) into an HTML page that did not render it."""
    if rc.banner_rendered:
        return
    shows_banner = rc.needs_banner and not rc.banner_suppressed
    if not shows_banner and rc.head_rendered:
        return  # consent_head() already loads consent.js
    body = response.get_data()
    if not shows_banner:
        markup = _asset_tags(css=False)
        at = _last_body_end(body)
    else:
        # First in <body>, whatever the layout (CSS places the fixed ones):
        # keyboard and screen-reader users meet the choice before the page
        # (WCAG 2.4.3), and the inline layout is in the flow from first paint.
        markup = consent_banner()
        found = _BODY_START.search(body)
        at = found.end() if found else _last_body_end(body)
    if at is None:
        return
    response.set_data(body[:at] + str(markup).encode() + body[at:])


def _last_body_end(body: bytes) -> int | None:
    matches = list(_BODY_END.finditer(body))
    return matches[-1].start() if matches else None
