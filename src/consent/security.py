"""Checks on a posted choice: CSRF token, origin, and where to go next.

The token is bound to the visitor with the double-submit pattern: a random
nonce lives in a strictly necessary, HttpOnly cookie, and the form carries
that nonce signed by itsdangerous with the site's keys, a salt of its own and
a time, so a token also expires. A forged form from another site can neither
read the nonce nor sign it.
"""

from __future__ import annotations

import collections.abc as cabc
import hmac
import secrets
import typing as t
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from itsdangerous import BadData
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeTimedSerializer

from .exceptions import ExpiredFormError
from .exceptions import ForbiddenChoiceError

#: Salt for CSRF tokens, apart from the consent cookie's.
CSRF_SALT = "consent.csrf"

#: How long a form's token is accepted by default, in seconds (one hour, as
#: Flask-WTF's ``WTF_CSRF_TIME_LIMIT``).
CSRF_MAX_AGE = 3600

#: Longest ``next`` accepted; anything longer goes to the site's root.
MAX_NEXT_LENGTH = 2048

_NONCE_LENGTH = 22


class CSRFProtection:
    """Issue and check CSRF tokens for one site.

    :param secret_keys: The site's keys, oldest first; the newest signs.
    :param max_age: Seconds a token stays valid.
    """

    def __init__(
        self, secret_keys: cabc.Sequence[str | bytes], max_age: int = CSRF_MAX_AGE
    ) -> None:
        keys: list[t.Any] = list(secret_keys)
        self._serializer = URLSafeTimedSerializer(keys, salt=CSRF_SALT)
        self.max_age = max_age

    @staticmethod
    def new_nonce() -> str:
        """A fresh random nonce for the CSRF cookie."""
        return secrets.token_urlsafe(16)

    @staticmethod
    def is_nonce(value: str | None) -> bool:
        """True when ``value`` has the shape of a nonce this class issued."""
        return value is not None and len(value) == _NONCE_LENGTH and value.isascii()

    def token(self, nonce: str) -> str:
        """The form token for ``nonce``."""
        token: str = self._serializer.dumps(nonce)
        return token

    def check(self, token: str | None, nonce: str | None) -> None:
        """Refuse unless ``token`` signs ``nonce`` and is recent enough.

        :raises ForbiddenChoiceError: for a missing cookie or token, or a
            token that does not match.
        :raises ExpiredFormError: for a valid token older than
            :attr:`max_age`.
        """
        if not nonce:
            raise ForbiddenChoiceError(
                "The cookie that protects this form is missing: allow cookies for"
                " this site, reload the page and choose again."
            )
        if not token:
            raise ForbiddenChoiceError(
                "The form is missing its security token: reload the page and"
                " choose again."
            )
        try:
            signed = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as err:
            if isinstance(err.payload, str) and _same(err.payload, nonce):
                raise ExpiredFormError(
                    "The form was open for too long and has expired: choose again."
                ) from None
            signed = None
        except BadData:
            signed = None
        if not isinstance(signed, str) or not _same(signed, nonce):
            raise ForbiddenChoiceError(
                "The form's security token is not valid (the page may be old):"
                " reload the page and choose again."
            )


def _same(signed: str, nonce: str) -> bool:
    """Compare in constant time, as bytes: the nonce comes from a cookie,
    which may hold any character, and :func:`hmac.compare_digest` refuses
    text beyond ASCII."""
    return hmac.compare_digest(
        signed.encode("utf-8", "surrogatepass"), nonce.encode("utf-8", "surrogatepass")
    )


def check_same_origin(
    site: str,
    *,
    fetch_site: str | None,
    origin: str | None,
    referrer: str | None,
) -> None:
    """Refuse a post that a browser says came from another origin.

    Browsers send ``Sec-Fetch-Site`` and ``Origin`` with posts; an older one
    may send only ``Referer``. When none is sent (scripts, old clients), the
    CSRF token alone decides.

    :param site: This site's origin, ``scheme://host[:port]``.
    :raises ForbiddenChoiceError: when the request came from elsewhere.
    """
    if fetch_site is not None and fetch_site != "same-origin":
        raise ForbiddenChoiceError(
            f"The choice was sent from another site ({fetch_site[:32]}); make it"
            " on this site's own banner."
        )
    if origin is not None:
        if origin != site:
            raise ForbiddenChoiceError(
                "The choice was sent from another origin; make it on this site's"
                " own banner."
            )
        return
    if referrer:
        try:
            parts = urlsplit(referrer)
        except ValueError:  # such as "http://[": no page of this site
            parts = None
        if parts is None or f"{parts.scheme}://{parts.netloc}" != site:
            raise ForbiddenChoiceError(
                "The choice was sent from another site's page; make it on this"
                " site's own banner."
            )


def safe_next(target: str | None, root: str = "/") -> str:
    """Return ``target`` when it is a path on this site (without an empty
    query or fragment), else ``root``.

    Accepted: a path starting with a single ``/`` (no scheme, no host, no
    backslash, no control character), at most 2 KB, under ``root``. Anything
    else, such as ``//evil.example`` or ``/\\evil.example``, could send the
    visitor to another site.
    """
    if not target or len(target) > MAX_NEXT_LENGTH:
        return root
    if not target.startswith("/") or target.startswith("//"):
        return root
    if "\\" in target or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in target):
        return root
    try:
        parts = urlsplit(target)
    except ValueError:
        return root
    if parts.scheme or parts.netloc:
        return root
    if not target.startswith(root.rstrip("/") + "/") and target != root:
        return root
    # Without an empty query or fragment ("/#" is "/"), as werkzeug writes
    # every Location header: each adapter sends the same one.
    return urlunsplit(parts)
