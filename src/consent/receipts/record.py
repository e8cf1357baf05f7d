"""The record of one decision (:class:`Receipt`) and of what it was shown
(:class:`ShownTexts`).

A site must be able to show that a visitor agreed, to what and when (GDPR
Art. 7(1)), so every decision is written down as a receipt. A receipt names
the texts and declarations shown by their hash; the texts themselves are
kept once per version, as :class:`ShownTexts`, so that the hash leads back
to the words the visitor read.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import hashlib
import json
import typing as t
import uuid
from datetime import datetime

from ..state import METHODS
from .privacy import clean_text
from .privacy import reduce_user_agent
from .times import require_aware

if t.TYPE_CHECKING:
    from ..model import Policy
    from ..state import ConsentState
    from ..state import Method

#: The longest id, revision or hash a receipt holds.
MAX_ID = 64
#: The longest path a receipt holds (2 KB): the page, not a payload.
MAX_PATH = 2048
#: The longest user agent a receipt holds. New receipts hold a reduced one
#: (:func:`~consent.receipts.privacy.reduce_user_agent`), far shorter.
MAX_USER_AGENT = 200
MAX_LANGUAGE = 64

#: The fields of a receipt that are plain text, in the order exports show
#: them (``ip``, which may be empty, and ``choices`` come after them).
TEXT_FIELDS = (
    "receipt_id",
    "consent_id",
    "created_at",
    "revision",
    "texts_hash",
    "method",
    "language",
    "path",
    "user_agent",
)

_JSON_FORMAT = 1
# One encoder for every line: json.dumps with options builds a new one.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _require_id(name: str, value: object) -> None:
    if not (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID
        and value.isascii()
        and value.isprintable()
    ):
        raise ValueError(
            f"{name} must be 1 to {MAX_ID} printable ASCII characters; got {value!r}."
        )


def cut_path(path: str) -> str:
    """A path as a receipt keeps it: without its query string and fragment,
    which can carry tokens and personal data, and at most 2 KB long."""
    return path.split("?", 1)[0].split("#", 1)[0][:MAX_PATH]


@dataclasses.dataclass(frozen=True)
class Receipt:
    """The record of one decision, kept as proof of consent.

    Build it with :meth:`from_state`. Text that comes from the visitor is
    cleaned when the receipt is built (control characters removed, the query
    string cut from the path, lengths bounded), so that whatever a receipt
    holds can be stored.

    :param receipt_id: A random UUID4 in hex, which names this receipt in
        exports and in ``consent receipts receipt``.
    :param consent_id: The visitor's random consent id, which links the
        receipts of one browser. The consent cookie carries it, and the
        visitor sees it on the preferences page.
    :param created_at: When the decision was made (aware, UTC).
    :param revision: The policy revision the visitor decided on.
    :param texts_hash: SHA-256 (hex) of the exact banner texts and
        declarations shown (:class:`ShownTexts`), which proves what the
        visitor was told.
    :param choices: Each optional category and service key with whether it
        was granted, in policy order.
    :param method: How the choice was made (banner, preferences, api, gpc,
        embed).
    :param language: The language the texts were shown in.
    :param path: The page the choice was made on, without its query string.
    :param user_agent: The reduced user agent, such as ``"Firefox 133 /
        Linux"`` (:func:`~consent.receipts.privacy.reduce_user_agent`).
    :param ip: The IP address as reduced by
        :func:`~consent.receipts.privacy.anonymize_ip`, or ``None``.

    .. versionchanged:: 0.1
        :meth:`from_state` reduces the user agent to its browser and system
        families; the constructor only cleans it, so receipts read back
        from a store are kept as they were written.
    """

    receipt_id: str
    consent_id: str
    created_at: datetime
    revision: str
    texts_hash: str
    choices: tuple[tuple[str, bool], ...]
    method: Method
    language: str
    path: str
    user_agent: str
    ip: str | None

    def __post_init__(self) -> None:
        _require_id("receipt_id", self.receipt_id)
        _require_id("consent_id", self.consent_id)
        if self.method not in METHODS:
            raise ValueError(
                f"method must be one of {', '.join(METHODS)}; got {self.method!r}."
            )
        set_ = object.__setattr__
        set_(self, "created_at", require_aware("created_at", self.created_at))
        pairs: cabc.Iterable[tuple[str, bool]] = (
            self.choices.items()
            if isinstance(self.choices, cabc.Mapping)
            else self.choices
        )
        set_(self, "choices", tuple((str(k), bool(v)) for k, v in pairs))
        set_(self, "revision", clean_text(self.revision, MAX_ID))
        set_(self, "texts_hash", clean_text(self.texts_hash, MAX_ID))
        set_(self, "language", clean_text(self.language, MAX_LANGUAGE))
        set_(self, "path", clean_text(cut_path(self.path), MAX_PATH))
        set_(self, "user_agent", clean_text(self.user_agent, MAX_USER_AGENT).strip())
        if self.ip is not None:
            set_(self, "ip", clean_text(self.ip, MAX_ID) or None)

    @classmethod
    def from_state(
        cls,
        state: ConsentState,
        policy: Policy,
        *,
        texts_hash: str,
        language: str,
        path: str,
        user_agent: str | None,
        ip: str | None,
        now: datetime | None = None,
    ) -> Receipt:
        """Build the receipt of a decision.

        :param state: The state the decision produced.
        :param policy: The policy it was made under; its optional keys are
            listed in :attr:`choices`, refused ones as ``False``.
        :param texts_hash: SHA-256 (hex) of the texts and declarations shown.
        :param language: The language of those texts.
        :param path: The request path; a query string is removed.
        :param user_agent: The raw User-Agent header; it is reduced here to
            its browser and system families.
        :param ip: The IP address, already reduced by
            :func:`~consent.receipts.privacy.anonymize_ip`.
        :param now: When the receipt is made; ``state.given_at`` by default.
        """
        # Every consent post builds one: the checks of __post_init__ are
        # made here once, on the values that come from outside (the
        # consent id, the language, the path, the IP), and the object is
        # filled without running them again.
        _require_id("consent_id", state.consent_id)
        receipt = object.__new__(cls)
        fields = receipt.__dict__
        fields["receipt_id"] = uuid.uuid4().hex
        fields["consent_id"] = state.consent_id
        fields["created_at"] = require_aware(
            "created_at", state.given_at if now is None else now
        )
        fields["revision"] = clean_text(state.revision, MAX_ID)
        fields["texts_hash"] = clean_text(texts_hash, MAX_ID)
        granted = state.granted
        fields["choices"] = tuple((key, key in granted) for key in policy.choice_keys)
        fields["method"] = state.method
        fields["language"] = clean_text(language, MAX_LANGUAGE)
        fields["path"] = clean_text(cut_path(path), MAX_PATH)
        fields["user_agent"] = clean_text(
            reduce_user_agent(user_agent), MAX_USER_AGENT
        ).strip()
        fields["ip"] = (clean_text(ip, MAX_ID) or None) if ip is not None else None
        return receipt

    def choices_dict(self) -> dict[str, bool]:
        """The choices as a new dict, key to granted."""
        return dict(self.choices)

    def to_json(self) -> str:
        """Serialize to one line of JSON, as written to the spool."""
        return _ENCODER.encode(
            {
                "v": _JSON_FORMAT,
                "receipt_id": self.receipt_id,
                "consent_id": self.consent_id,
                "created_at": self.created_at.isoformat(),
                "revision": self.revision,
                "texts_hash": self.texts_hash,
                "choices": dict(self.choices),
                "method": self.method,
                "language": self.language,
                "path": self.path,
                "user_agent": self.user_agent,
                "ip": self.ip,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        """Read a receipt written by :meth:`to_json`.

        :raises ValueError: when ``text`` is not such a receipt.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != _JSON_FORMAT:
            raise ValueError("Not a receipt in JSON format 1.")
        strings = {name: data.get(name) for name in TEXT_FIELDS}
        for name, value in strings.items():
            if not isinstance(value, str):
                raise ValueError(f"Receipt field {name!r} must be a string.")
        choices = data.get("choices")
        if not isinstance(choices, dict) or not all(
            isinstance(v, bool) for v in choices.values()
        ):
            raise ValueError("Receipt field 'choices' must map keys to booleans.")
        ip = data.get("ip")
        if ip is not None and not isinstance(ip, str):
            raise ValueError("Receipt field 'ip' must be a string or null.")
        return cls(
            receipt_id=t.cast(str, strings["receipt_id"]),
            consent_id=t.cast(str, strings["consent_id"]),
            created_at=datetime.fromisoformat(t.cast(str, strings["created_at"])),
            revision=t.cast(str, strings["revision"]),
            texts_hash=t.cast(str, strings["texts_hash"]),
            choices=tuple(choices.items()),
            method=t.cast("Method", strings["method"]),
            language=t.cast(str, strings["language"]),
            path=t.cast(str, strings["path"]),
            user_agent=t.cast(str, strings["user_agent"]),
            ip=ip,
        )


#: What marks a line of the spool as texts rather than a receipt.
TEXTS_KIND = "texts"
_TEXTS_PREFIX = b'{"v":1,"kind":"texts"'


@dataclasses.dataclass(frozen=True)
class ShownTexts:
    """One version of what visitors were shown, kept once per version.

    A receipt names what its visitor was shown by :attr:`texts_hash`; this
    keeps the canonical JSON that hash was made from, so the hash leads back
    to every text and declaration the visitor could read (the CNIL's proof
    of the version of the consent interface). The hash is SHA-256 of
    :attr:`canonical` in UTF-8, so anyone can check that the two match.

    Build it with :meth:`from_content`.

    :param texts_hash: SHA-256 (hex) of ``canonical``.
    :param canonical: The canonical JSON (sorted keys, UTF-8 text) of what
        was shown.
    :param first_seen: When a receipt first named this version (aware, UTC).

    .. versionadded:: 0.1
    """

    texts_hash: str
    canonical: str
    first_seen: datetime

    def __post_init__(self) -> None:
        _require_id("texts_hash", self.texts_hash)
        object.__setattr__(
            self, "first_seen", require_aware("first_seen", self.first_seen)
        )

    @classmethod
    def from_content(
        cls, content: cabc.Mapping[str, t.Any], *, first_seen: datetime
    ) -> ShownTexts:
        """Make the canonical JSON of ``content`` and its hash.

        :param content: What was shown: texts, declarations, revision and
            library version, as JSON-serializable values.
        :param first_seen: When it was first shown.
        """
        canonical = canonical_json(content)
        return cls(
            texts_hash=hash_texts(canonical), canonical=canonical, first_seen=first_seen
        )

    @property
    def is_intact(self) -> bool:
        """True when :attr:`canonical` still hashes to :attr:`texts_hash`."""
        return hash_texts(self.canonical) == self.texts_hash

    def content(self) -> dict[str, t.Any]:
        """What was shown, as the mapping the hash was made from."""
        data: dict[str, t.Any] = json.loads(self.canonical)
        return data

    def to_json(self) -> str:
        """Serialize to one line of JSON, as written to the spool."""
        return json.dumps(
            {
                "v": _JSON_FORMAT,
                "kind": TEXTS_KIND,
                "texts_hash": self.texts_hash,
                "canonical": self.canonical,
                "first_seen": self.first_seen.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ShownTexts:
        """Read texts written by :meth:`to_json`.

        :raises ValueError: when ``text`` is not such texts, or its
            canonical JSON does not match its hash.
        """
        data = json.loads(text)
        if (
            not isinstance(data, dict)
            or data.get("v") != _JSON_FORMAT
            or data.get("kind") != TEXTS_KIND
        ):
            raise ValueError("Not shown texts in JSON format 1.")
        fields = {name: data.get(name) for name in ("texts_hash", "canonical")}
        first_seen = data.get("first_seen")
        if not all(isinstance(v, str) for v in (*fields.values(), first_seen)):
            raise ValueError("Shown texts need a hash, a text and a time.")
        texts = cls(
            texts_hash=t.cast(str, fields["texts_hash"]),
            canonical=t.cast(str, fields["canonical"]),
            first_seen=datetime.fromisoformat(t.cast(str, first_seen)),
        )
        if not texts.is_intact:
            raise ValueError("The shown texts do not match their hash.")
        return texts


def canonical_json(content: cabc.Mapping[str, t.Any]) -> str:
    """The canonical JSON of what was shown: sorted keys, text not escaped
    to ASCII, so that the same content always gives the same hash."""
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


def hash_texts(canonical: str) -> str:
    """SHA-256 (hex) of canonical JSON, as :attr:`Receipt.texts_hash` holds it."""
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_texts_line(line: bytes) -> bool:
    """Tell a spooled texts line from a spooled receipt without parsing it:
    :meth:`ShownTexts.to_json` names the kind right after the format."""
    return line.startswith(_TEXTS_PREFIX)
