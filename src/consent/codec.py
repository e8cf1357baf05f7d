"""ConsentState <-> a compact, signed cookie value.

The value is a short dotted payload signed with :class:`itsdangerous.Signer`
(HMAC-SHA256, its own salt), for example::

    1.Xk3v_a9Q.Tq.1b.ZcPe0WJmZ2tHwq9Wd3QPAA.aVmqgA.b0.<signature>

format, revision, layout check, granted bits, consent id, time, method and
flags. Signing a few dozen ASCII bytes is several times cheaper than a JSON
serializer, and the whole cookie stays near 100 bytes.

Anything that is not a value this codec wrote with a key it still holds,
under the current policy layout, decodes to ``None``: "no consent". Nothing
raises to the caller.
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import logging
import re
import struct
import typing as t
from datetime import datetime
from datetime import timezone

from itsdangerous import BadData
from itsdangerous import BadSignature
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode
from itsdangerous.encoding import base64_encode
from itsdangerous.encoding import bytes_to_int
from itsdangerous.encoding import int_to_bytes

from .state import METHODS
from .state import ConsentState

if t.TYPE_CHECKING:
    from .model import Policy

logger = logging.getLogger(__name__)

#: The format number written first in every value.
FORMAT = "1"

#: The salt that keeps consent signatures apart from every other use of the
#: same secret key (sessions, CSRF tokens).
SALT = "consent.cookie"

#: Values longer than this are refused before any parsing (browsers keep at
#: most 4096 bytes per cookie).
MAX_SIZE = 4096

_METHOD_CODES = {m: m[0] for m in METHODS}
_METHODS_BY_CODE = {code: m for m, code in _METHOD_CODES.items()}
_FLAG_GPC = 1

_FIELD = re.compile(r"^[A-Za-z0-9_-]+$")
_CONSENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,32}$")

SecretKey = str | bytes


def layout_check(policy: Policy) -> str:
    """A two-character check of the order of ``policy.choice_keys``.

    The granted bits are positional. If a policy with a hand-written revision
    gains or reorders a category without a new revision, this check no longer
    matches and the old value means "no consent" instead of granting the
    wrong keys.
    """
    digest = hashlib.sha256(",".join(policy.choice_keys).encode()).digest()
    return base64_encode(digest[:2]).decode()[:2]


#: Length of a base64 SHA-256 signature without padding.
_SIGNATURE_LENGTH = 43


def _is_canonical(value: str) -> bool:
    """True when the signature is spelled exactly as this codec writes it.

    Base64 has several spellings of the same bytes (padding, unused low bits);
    only the one the codec writes is accepted, so that "anything the codec
    did not write means no consent" holds to the letter.
    """
    signature = value.rpartition(".")[2]
    if len(signature) != _SIGNATURE_LENGTH:
        return False
    try:
        return base64_encode(base64_decode(signature)).decode() == signature
    except BadData:
        return False


class CookieCodec:
    """Encode and decode consent cookie values for one policy.

    Build it once per app: the signer and the key order are prepared here,
    not per request.

    :param secret_keys: Signing keys, oldest first. The newest (last) key
        signs; every key verifies, so keys can be rotated without asking
        visitors again. Drop a key to invalidate the cookies it signed.
    :param policy: The policy whose revision and layout values must match.
    :param salt: Keeps these signatures apart from other uses of the keys.
    """

    def __init__(
        self,
        secret_keys: cabc.Sequence[SecretKey],
        policy: Policy,
        *,
        salt: str = SALT,
    ) -> None:
        keys: list[t.Any] = [k for k in secret_keys if k]
        if not keys:
            from .exceptions import ConfigurationError

            raise ConfigurationError("CookieCodec needs at least one secret key.")
        self.policy = policy
        self._signer = Signer(keys, salt=salt, digest_method=hashlib.sha256)
        self._newest = Signer(keys[-1], salt=salt, digest_method=hashlib.sha256)
        self._layout = layout_check(policy)
        self._keys = policy.choice_keys

    def encode(self, state: ConsentState) -> str:
        """Return the signed cookie value for ``state``."""
        bits = 0
        for index, key in enumerate(self._keys):
            if key in state.granted:
                bits |= 1 << index
        seconds = int(state.given_at.timestamp())
        flags = _FLAG_GPC if state.gpc else 0
        payload = ".".join(
            (
                FORMAT,
                state.revision,
                self._layout,
                format(bits, "x"),
                state.consent_id,
                base64_encode(int_to_bytes(seconds)).decode(),
                _METHOD_CODES[state.method] + str(flags),
            )
        )
        return self._newest.sign(payload).decode("ascii")

    def decode(self, value: str | None, now: datetime) -> ConsentState | None:
        """Return the state in ``value``, or ``None`` for "no consent".

        ``None`` for a missing, oversized, non-ASCII, forged, truncated or
        unknown-format value, one signed by a key that was dropped, one made
        under another policy layout, and one older than the policy's
        ``max_age``. A value from another policy revision decodes to a state
        that grants nothing, so the visitor keeps their consent id.
        """
        if not value or len(value) > MAX_SIZE or not value.isascii():
            return None
        if not _is_canonical(value):
            return None
        try:
            payload = self._signer.unsign(value).decode("ascii")
        except BadSignature:
            logger.info("Ignoring a consent cookie with a bad signature.")
            return None
        try:
            return self._parse(payload, now)
        except (BadData, ValueError, KeyError, OverflowError, OSError, struct.error):
            logger.info("Ignoring a consent cookie with an unreadable payload.")
            return None

    def needs_resign(self, value: str) -> bool:
        """True when ``value`` verifies, but not with the newest key.

        The caller can then write the same state again, signed with the newest
        key, so that the old key can be dropped soon. ``given_at`` is kept:
        re-signing never extends a choice.
        """
        return not self._newest.validate(value)

    def _parse(self, payload: str, now: datetime) -> ConsentState | None:
        fields = payload.split(".")
        if len(fields) != 7 or fields[0] != FORMAT:
            return None
        _, revision, layout, bits_hex, consent_id, stamp, tail = fields
        if not all(_FIELD.match(f) for f in fields) or len(tail) != 2:
            return None
        if not _CONSENT_ID.match(consent_id) or len(bits_hex) > 64:
            return None
        method = _METHODS_BY_CODE[tail[0]]
        flags = int(tail[1])
        given_at = datetime.fromtimestamp(
            bytes_to_int(base64_decode(stamp)), tz=timezone.utc
        )
        if now - given_at >= self.policy.max_age:
            return None
        bits = int(bits_hex, 16)
        if revision == self.policy.revision:
            if layout != self._layout or bits >> len(self._keys):
                logger.warning(
                    "A consent cookie has revision %r but another layout of"
                    " categories and services: change the policy revision"
                    " whenever you add, remove or reorder them.",
                    revision,
                )
                return None
            granted = frozenset(
                key for i, key in enumerate(self._keys) if bits >> i & 1
            )
        else:
            granted = frozenset()
        return ConsentState(
            granted=granted,
            given_at=given_at,
            revision=revision,
            consent_id=consent_id,
            method=method,
            gpc=bool(flags & _FLAG_GPC),
        )
