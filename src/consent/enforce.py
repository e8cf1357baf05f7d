"""Enforcement: which cookies a response may set, which ones to expire.

JavaScript banners can only hope that tags were marked correctly. Here the
server decides: a ``Set-Cookie`` for a category or service the visitor has
not allowed is removed from the response, whoever added it (a view, another
extension, an HttpOnly cookie no script could touch), and a choice that
takes something back expires the cookies the visitor still holds for it.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import logging
import typing as t
from datetime import datetime
from datetime import timezone

if t.TYPE_CHECKING:
    from .model import Cookie
    from .model import Policy

logger = logging.getLogger(__name__)

#: What to do with a cookie the policy does not declare.
UndeclaredAction = t.Literal["allow", "warn", "block"]

UNDECLARED_ACTIONS: tuple[UndeclaredAction, ...] = ("allow", "warn", "block")


def set_cookie_name(header: str) -> str:
    """The cookie name of a ``Set-Cookie`` header value.

    RFC 6265 section 5.2: the name is everything before the first ``=`` of
    the first ``;``-separated part, trimmed.
    """
    return header.split(";", 1)[0].split("=", 1)[0].strip()


def is_deletion(header: str) -> bool:
    """True when a ``Set-Cookie`` header value removes its cookie.

    That is ``Max-Age`` of zero or less, or an ``Expires`` date in the past
    (RFC 6265 section 5.2.2): what ``delete_cookie`` of Flask, Starlette and
    Django sends. Removing a cookie never needs consent.
    """
    for attribute in header.split(";")[1:]:
        name, _, value = attribute.partition("=")
        name = name.strip().lower()
        if name == "max-age":
            try:
                return int(value.strip()) <= 0
            except ValueError:
                continue
        if name == "expires":
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value.strip())
            except (TypeError, ValueError, IndexError):
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            if when <= datetime.now(timezone.utc):
                return True
    return False


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether one cookie may be set, and why.

    :param name: The cookie's name.
    :param allowed: True when it may be set.
    :param key: The service or category key that declares it, or ``None``
        when it is undeclared.
    """

    name: str
    allowed: bool
    key: str | None


class CookieGate:
    """Decide cookie by cookie what a response may set.

    Built once per policy; each decision takes the request's ``allows``.

    :param policy: The declarations to classify cookies by.
    :param undeclared: ``"allow"``, ``"warn"`` (allow, and log one warning per
        name saying where to declare it) or ``"block"``.
    :param always_allowed: Names that are always allowed (the consent
        cookies themselves).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        undeclared: UndeclaredAction = "warn",
        always_allowed: cabc.Iterable[str] = (),
    ) -> None:
        self.policy = policy
        self.undeclared = undeclared
        self._always = frozenset(always_allowed)
        self._warned: set[str] = set()
        self._cache: dict[str, str | None] = {}

    def key_of(self, name: str) -> str | None:
        """The service or category key that declares cookie ``name``."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        found = self.policy.classify(name)
        key = None
        if found is not None:
            category, service = found
            key = service.key if service is not None else category.key
        if len(self._cache) < 4096:
            # Bounded: cookie names can come from visitors.
            self._cache[name] = key
        return key

    def verdict(self, name: str, allows: cabc.Callable[[str], bool]) -> Verdict:
        """Decide whether a response may set cookie ``name``."""
        if name in self._always:
            return Verdict(name, True, None)
        key = self.key_of(name)
        if key is not None:
            return Verdict(name, allows(key), key)
        if self.undeclared == "block":
            return Verdict(name, False, None)
        if self.undeclared == "warn" and name not in self._warned:
            self._warned.add(name)
            logger.warning(
                "The response sets the undeclared cookie %r. Declare it with"
                " Cookie(name=%r, provider=..., purpose=..., duration=...) in the"
                " category it belongs to, or set CONSENT_UNDECLARED to 'block'.",
                name,
                name,
            )
        return Verdict(name, True, None)

    def filter(
        self,
        headers: cabc.Iterable[str],
        allows: cabc.Callable[[str], bool],
    ) -> tuple[list[str], list[Verdict]]:
        """Split ``Set-Cookie`` header values into kept ones and refusals.

        A header that deletes its cookie is always kept.
        """
        kept: list[str] = []
        removed: list[Verdict] = []
        for header in headers:
            verdict = self.verdict(set_cookie_name(header), allows)
            if verdict.allowed or is_deletion(header):
                kept.append(header)
            else:
                removed.append(verdict)
        return kept, removed

    def optional_names(self, names: cabc.Iterable[str]) -> list[str]:
        """The names among ``names`` that are declared in an optional
        category or service: the only ones that may need expiring."""
        policy = self.policy
        return [
            name
            for name in names
            if name not in self._always
            and (key := self.key_of(name)) is not None
            and not policy.is_required(key)
        ]

    def to_expire(
        self,
        sent: cabc.Iterable[str],
        allows: cabc.Callable[[str], bool],
    ) -> list[tuple[str, Cookie]]:
        """The cookies the visitor sent that are no longer allowed.

        :param sent: Names of the cookies the request carried.
        :return: Each name with its declaration, whose domain and path the
            expiring ``Set-Cookie`` must repeat.
        """
        expire: list[tuple[str, Cookie]] = []
        for name in sent:
            if name in self._always:
                continue
            key = self.key_of(name)
            if key is None or allows(key):
                continue
            declaration = self._declaration(name)
            if declaration is not None:
                expire.append((name, declaration))
        return expire

    def _declaration(self, name: str) -> Cookie | None:
        for category in self.policy.categories:
            for cookie in category.all_cookies():
                if cookie.matches(name):
                    return cookie
        return None
