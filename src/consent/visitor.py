"""The visitor behind one request, sans-IO.

An adapter gives a :class:`Visitor` what it needs of the request through a
:class:`RequestInfo` (the consent cookie's values, the names of the cookies
sent, a few headers) and asks it what the page may show: :meth:`allows`,
:attr:`needs_banner`, :attr:`language`, :attr:`gpc_honored`. At the end of
the request, :meth:`Visitor.cookie_plan` says which cookies to set, re-sign,
delete or expire; the adapter only applies that plan to its response.

Everything is computed lazily and at most once: a request that never asks
about consent never decodes the cookie.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import http.cookies
import logging
import typing as t
from datetime import datetime
from datetime import timezone

from .exceptions import UnknownCategoryError
from .gpc import has_gpc
from .i18n import negotiate
from .settings import profile_named
from .state import ConsentState
from .state import allows as core_allows
from .state import gpc_state
from .state import needs_banner as core_needs_banner

if t.TYPE_CHECKING:
    from .gpc import Profile
    from .i18n import Translator
    from .model import Cookie
    from .model import Policy
    from .site import Site

logger = logging.getLogger(__name__)

# "Not looked up yet", where None is a valid answer.
_UNSET: t.Any = object()

_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


class RequestInfo(t.Protocol):
    """What a visitor needs to know about its request; each adapter has one."""

    @property
    def is_secure(self) -> bool:
        """True when the request came over HTTPS."""

    def cookie_values(self, name: str) -> cabc.Sequence[str]:
        """Every value of the cookie ``name``, in the order sent."""

    def cookie_names(self) -> cabc.Iterable[str]:
        """The names of the cookies the request carried."""

    def header(self, name: str) -> str | None:
        """A header's value, repeated headers joined with ``", "``."""


@dataclasses.dataclass(frozen=True)
class CookieSpec:
    """One cookie to set on the response, or to delete (``max_age == 0``).

    Adapters apply it with their framework's ``set_cookie`` or
    ``delete_cookie``, or add :meth:`header` as a ``Set-Cookie`` header.
    """

    name: str
    value: str
    #: Seconds; ``None`` for a session cookie, 0 to delete.
    max_age: int | None
    domain: str | None
    path: str
    secure: bool
    httponly: bool
    samesite: str | None

    @property
    def is_deletion(self) -> bool:
        """True when this removes the cookie from the browser."""
        return self.max_age == 0

    def header(self) -> str:
        """The ``Set-Cookie`` header value (formatted by :mod:`http.cookies`)."""
        morsel: http.cookies.Morsel[str] = http.cookies.Morsel()
        morsel.set(self.name, self.value, self.value)
        morsel["path"] = self.path
        if self.domain:
            # User agents ignore a leading dot (RFC 6265 section 5.2.3).
            morsel["domain"] = self.domain.lstrip(".")
        if self.max_age is not None:
            morsel["max-age"] = str(self.max_age)
        if self.is_deletion:
            morsel["expires"] = _EXPIRED
        morsel["secure"] = self.secure
        morsel["httponly"] = self.httponly
        if self.samesite:
            morsel["samesite"] = self.samesite
        # http.cookies alone writes "expires" in lower case; the attribute
        # is case-insensitive, and every other framework writes "Expires".
        return morsel.OutputString().replace("; expires=", "; Expires=", 1)


class Visitor:
    """The consent of the visitor behind one request.

    :param site: The site the request is for.
    :param request: The adapter's view of the request.
    :param now: The time every decision of the request is taken at.
    :param strict: Raise on an undeclared key (debug and testing) instead of
        refusing it and logging an error.
    :param select_language: Returns the app's language for this request
        (``CONSENT_LANGUAGE_SELECTOR``, bound by the adapter), or ``None``.
    :param select_profile: Returns this request's profile or its name
        (``CONSENT_PROFILE_SELECTOR``, bound by the adapter), or ``None``.
    """

    __slots__ = (
        "site",
        "request",
        "policy",
        "_now",
        "strict",
        "_select_language",
        "_select_profile",
        "consulted",
        "banner_rendered",
        "head_rendered",
        "banner_suppressed",
        "gpc_recorded",
        "_stored",
        "_raw",
        "_is_junk",
        "_new_state",
        "_expire",
        "_profile",
        "_gpc",
        "_language",
        "_csrf_nonce",
        "_sets_csrf_cookie",
    )

    def __init__(
        self,
        site: Site,
        request: RequestInfo,
        *,
        now: datetime | None = None,
        strict: bool = False,
        select_language: cabc.Callable[[], t.Any] | None = None,
        select_profile: cabc.Callable[[], t.Any] | None = None,
    ) -> None:
        self.site = site
        self.request = request
        #: The policy in force.
        self.policy: Policy = site.policy
        self._now = now
        self.strict = strict
        self._select_language = select_language
        self._select_profile = select_profile
        #: True once the response depends on the consent cookie.
        self.consulted = False
        #: True once the banner was rendered into the response.
        self.banner_rendered = False
        #: True once ``consent_head()`` put the assets in ``<head>``.
        self.head_rendered = False
        #: True on pages that are the choice themselves (preferences).
        self.banner_suppressed = False
        #: The Global Privacy Control opt-out this request recorded, if any.
        self.gpc_recorded: ConsentState | None = None
        self._stored: ConsentState | None = None
        self._raw: str | None = None
        self._is_junk = False
        self._new_state: ConsentState | None = None
        self._expire: list[tuple[str, Cookie]] | None = None
        self._profile: t.Any = _UNSET
        self._gpc: bool | None = None
        self._language: str | None = None
        self._csrf_nonce: str | None = None
        self._sets_csrf_cookie = False

    @property
    def now(self) -> datetime:
        """The time every decision of this request is taken at (read once)."""
        if self._now is None:
            self._now = datetime.now(timezone.utc)
        return self._now

    def bind_selectors(
        self,
        select_language: cabc.Callable[[], t.Any] | None,
        select_profile: cabc.Callable[[], t.Any] | None,
    ) -> None:
        """Set the app's language and profile selectors for this request
        (for adapters that make the visitor before they can bind them)."""
        self._select_language = select_language
        self._select_profile = select_profile

    # What the visitor chose.

    @property
    def stored(self) -> ConsentState | None:
        """The state in the visitor's cookie, even from another revision.

        Decoded on first use, at most once. When the browser sent several
        cookies of that name (a sibling subdomain can add one), the first
        valid one counts.
        """
        if not self.consulted:
            self.consulted = True
            values = self.request.cookie_values(self.site.settings.cookie_name)
            codec = self.site.codec
            for value in values:
                state = codec.decode(value, self.now)
                if state is not None:
                    self._raw, self._stored = value, state
                    break
            else:
                # Forged, expired or unreadable: drop it so it is not re-sent.
                self._is_junk = bool(values)
        return self._stored

    @property
    def state(self) -> ConsentState | None:
        """The state in force: a choice made in this request, or the cookie's.

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
            self.gpc_recorded = gpc_state(self.policy, now=self.now, previous=stored)
            self.remember(self.gpc_recorded)
            return self.gpc_recorded
        return stored

    @property
    def profile(self) -> Profile | None:
        """The regional profile of this request (``None``: the policy's mode)."""
        if self._profile is _UNSET:
            profile = self.site.settings.profile
            if self._select_profile is not None:
                chosen = self._select_profile()
                if chosen is not None:
                    profile = (
                        chosen
                        if not isinstance(chosen, str)
                        else profile_named(chosen, "CONSENT_PROFILE_SELECTOR")
                    )
            self._profile = profile
        found: Profile | None = self._profile
        return found

    @property
    def gpc(self) -> bool:
        """True when the request carries a Global Privacy Control signal that
        this request's profile honours."""
        if self._gpc is None:
            value = self.request.header("Sec-GPC")
            profile = self.profile
            self._gpc = (
                value is not None
                and (profile is None or profile.honors_gpc)
                and has_gpc((value,))
            )
        return self._gpc

    @property
    def gpc_honored(self) -> bool:
        """True when an opt-out signal is on record for this visitor."""
        state = self.state
        return state is not None and state.gpc

    @property
    def mode(self) -> str:
        """``opt-in``, ``opt-out`` or ``notice`` for this request."""
        profile = self.profile
        return profile.mode if profile is not None else self.policy.mode

    @property
    def layout(self) -> str:
        """The banner layout: ``bar``, ``box``, ``center`` or ``inline``."""
        return self.site.settings.layout

    @property
    def needs_banner(self) -> bool:
        """True when the visitor must be asked (again)."""
        return core_needs_banner(self.state, self.policy, self.now)

    @property
    def has_chosen(self) -> bool:
        """True when a current choice exists."""
        return not self.needs_banner

    @property
    def touched(self) -> bool:
        """True once anything of this request depended on consent or changed
        it: its response then needs :meth:`cookie_plan` applied."""
        return self.consulted or self._sets_csrf_cookie or self._new_state is not None

    @property
    def shows_banner(self) -> bool:
        """True when this response should carry the banner."""
        return self.needs_banner and not self.banner_suppressed

    def allows(self, key: str) -> bool:
        """True when the category or service ``key`` may run.

        An undeclared key is a mistake in a template or a view: it raises
        :class:`~consent.UnknownCategoryError` when the visitor is
        ``strict`` (debug and testing), so the typo is seen at once; in
        production it is refused (fail closed) and an error is logged.
        """
        profile = self._profile if self._profile is not _UNSET else self.profile
        try:
            return core_allows(self.state, self.policy, key, self.now, profile)
        except UnknownCategoryError:
            if self.strict:
                raise
            logger.error("%r is not declared in the policy: refused.", key)
            return False

    def choices(self) -> dict[str, bool]:
        """Every optional key mapped to whether it may run."""
        return {key: self.allows(key) for key in self.policy.choice_keys}

    # Language.

    @property
    def language(self) -> str:
        """The language of the banner for this request: the app's choice when
        it is one of ``CONSENT_LANGUAGES``, else ``Accept-Language``."""
        if self._language is None:
            settings = self.site.settings
            chosen = self._select_language() if self._select_language else None
            if chosen:
                tag = str(chosen).replace("_", "-")
                chosen = negotiate(tag, settings.languages, "")
            self._language = chosen or negotiate(
                self.request.header("Accept-Language"),
                settings.languages,
                settings.default_language,
            )
        return self._language

    @property
    def translator(self) -> Translator:
        """Texts in :attr:`language`, with the site's overrides."""
        return self.site.translator(self.language)

    # Changing the choice.

    def remember(self, state: ConsentState) -> None:
        """Make ``state`` this request's state and write it to the cookie.

        Cookies the visitor holds for what the new state refuses are expired
        in the same response, with their declared domain and path.
        """
        self._new_state = state
        self._expire = self.site.gate.to_expire(
            self.request.cookie_names(), self.allows
        )

    # The CSRF token.

    def csrf_token(self) -> str:
        """The CSRF token for forms in this response (sets the nonce cookie
        when the visitor has none yet)."""
        if self._csrf_nonce is None:
            name = self.site.settings.csrf_cookie_name
            values = self.request.cookie_values(name)
            nonce = values[0] if values else None
            if nonce is None or not self.site.csrf.is_nonce(nonce):
                nonce = self.site.csrf.new_nonce()
                self._sets_csrf_cookie = True
            self._csrf_nonce = nonce
        return self.site.csrf.token(self._csrf_nonce)

    def check_csrf(self, token: str | None) -> None:
        """Refuse unless ``token`` belongs to this visitor.

        :raises ~consent.exceptions.ForbiddenChoiceError: when it does not.
        """
        values = self.request.cookie_values(self.site.settings.csrf_cookie_name)
        self.site.csrf.check(token, values[0] if values else None)

    # The response.

    def cookie_plan(self) -> list[CookieSpec]:
        """The cookies this response must set or delete; usually none.

        The new or re-signed consent cookie, a forged one dropped, the CSRF
        nonce cookie, and every cookie the visitor still holds for what is
        not allowed (after a withdrawal, an expired choice or a new policy
        revision), expired with its declared domain and path.
        """
        state = self._new_state
        if state is None and self._raw is not None:
            if self.site.codec.needs_resign(self._raw):
                # Signed with an older key: written again with the newest one,
                # with the time of the choice kept (rotation never extends it).
                state = self._stored
        leftovers = self._leftovers()
        sets_csrf = self._sets_csrf_cookie and self._csrf_nonce
        drops = self._is_junk and state is None
        if state is None and not leftovers and not sets_csrf and not drops:
            return []  # the common case
        settings = self.site.settings
        secure = (
            self.request.is_secure
            if settings.cookie_secure is None
            else settings.cookie_secure
        )
        plan: list[CookieSpec] = []
        if sets_csrf:
            plan.append(
                self._spec(settings.csrf_cookie_name, self._csrf_nonce, None, secure)
            )
        for name, declared in leftovers:
            # A prefixed cookie can only be deleted by a Secure Set-Cookie.
            prefixed = name.startswith(("__Secure-", "__Host-"))
            plan.append(
                CookieSpec(
                    name,
                    "",
                    0,
                    declared.domain,
                    declared.path or "/",
                    secure or prefixed,
                    False,
                    None,
                )
            )
        if drops:
            plan.append(self._spec(settings.cookie_name, "", 0, secure))
        if state is not None:
            remaining = state.given_at + self.policy.max_age - self.now
            plan.append(
                self._spec(
                    settings.cookie_name,
                    self.site.codec.encode(state),
                    max(int(remaining.total_seconds()), 0),
                    secure,
                )
            )
        return plan

    def _spec(
        self, name: str, value: str | None, max_age: int | None, secure: bool
    ) -> CookieSpec:
        settings = self.site.settings
        return CookieSpec(
            name,
            value or "",
            max_age,
            settings.cookie_domain,
            settings.cookie_path,
            secure,
            True,
            settings.cookie_samesite,
        )

    def _leftovers(self) -> list[tuple[str, Cookie]]:
        """Cookies the visitor sent for something not allowed now."""
        if self._expire is not None:
            return self._expire
        gate = self.site.gate
        # Only a request that carries a declared optional cookie pays for
        # decoding the consent cookie here.
        held = gate.optional_names(self.request.cookie_names())
        if not held:
            return []
        return gate.to_expire(held, self.allows)
