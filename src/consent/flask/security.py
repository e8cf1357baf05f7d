"""Request checks for the consent endpoint: CSRF token, origin, ``next``.

The token is bound to the visitor with the double-submit pattern: a random
nonce lives in a strictly necessary, HttpOnly cookie, and the form carries
that nonce signed by itsdangerous with the app's keys and a salt of its own.
A forged form from another site can neither read the nonce nor sign it.
"""

from __future__ import annotations

import collections.abc as cabc
import hmac
import secrets
import typing as t
from urllib.parse import urlsplit

from flask import Request
from itsdangerous import BadData
from itsdangerous import URLSafeSerializer
from werkzeug.exceptions import BadRequest

#: Salt for CSRF tokens, apart from the consent cookie's.
CSRF_SALT = "consent.csrf"

#: Longest ``next`` accepted; anything longer goes to ``/``.
MAX_NEXT_LENGTH = 2048


class ConsentBadRequest(BadRequest):
    """A consent post that cannot be accepted; ``description`` says why.

    A subclass of :class:`~werkzeug.exceptions.BadRequest`, so the visitor
    gets a 400 and an app can style it with ``errorhandler(ConsentBadRequest)``.
    """


class CSRFProtection:
    """Issue and check CSRF tokens for one app.

    :param secret_keys: The app's keys, oldest first; the newest signs.
    """

    def __init__(self, secret_keys: cabc.Sequence[str | bytes]) -> None:
        keys: list[t.Any] = list(secret_keys)
        self._serializer = URLSafeSerializer(keys, salt=CSRF_SALT)

    @staticmethod
    def new_nonce() -> str:
        """A fresh random nonce for the CSRF cookie."""
        return secrets.token_urlsafe(16)

    @staticmethod
    def is_nonce(value: str | None) -> bool:
        """True when ``value`` has the shape of a nonce this class issued."""
        return bool(value) and len(value or "") == 22 and (value or "").isascii()

    def token(self, nonce: str) -> str:
        """The form token for ``nonce``."""
        token: str = self._serializer.dumps(nonce)
        return token

    def check(self, token: str | None, nonce: str | None) -> None:
        """Raise :class:`ConsentBadRequest` unless ``token`` signs ``nonce``."""
        if not nonce:
            raise ConsentBadRequest(
                "The cookie that protects this form is missing: allow cookies for"
                " this site, reload the page and choose again."
            )
        if not token:
            raise ConsentBadRequest(
                "The form is missing its security token: reload the page and"
                " choose again."
            )
        try:
            signed = self._serializer.loads(token)
        except BadData:
            signed = None
        if not isinstance(signed, str) or not hmac.compare_digest(signed, nonce):
            raise ConsentBadRequest(
                "The form's security token is not valid (the page may be old):"
                " reload the page and choose again."
            )


def check_same_origin(request: Request) -> None:
    """Refuse a post that a browser says came from another origin.

    Browsers send ``Sec-Fetch-Site`` and ``Origin`` with posts; an older one
    may send only ``Referer``. When none is sent (scripts, old clients), the
    CSRF token alone decides.
    """
    site = f"{request.scheme}://{request.host}"
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        raise ConsentBadRequest(
            f"The choice was sent from another site ({fetch_site}); make it on"
            " this site's own banner."
        )
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin != site:
            raise ConsentBadRequest(
                "The choice was sent from another origin; make it on this site's"
                " own banner."
            )
        return
    referrer = request.headers.get("Referer")
    if referrer:
        parts = urlsplit(referrer)
        if f"{parts.scheme}://{parts.netloc}" != site:
            raise ConsentBadRequest(
                "The choice was sent from another site's page; make it on this"
                " site's own banner."
            )


def safe_next(target: str | None, root: str = "/") -> str:
    """Return ``target`` when it is a path on this site, else ``root``.

    Accepted: a path starting with a single ``/`` (no scheme, no host, no
    backslash, no control character), at most 2 KB, under ``root``. Anything
    else, such as ``//evil.example`` or ``/\\evil.example``, could send the
    visitor to another site.
    """
    if not target or len(target) > MAX_NEXT_LENGTH:
        return root
    if not target.startswith("/") or target.startswith("//"):
        return root
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return root
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return root
    if not target.startswith(root.rstrip("/") + "/") and target != root:
        return root
    return target
