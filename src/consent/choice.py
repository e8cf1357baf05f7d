"""Applying a posted choice, the same way in every adapter.

The consent endpoint is the one place where a visitor changes state, so its
order is fixed here once: the request is checked (size, origin, CSRF token)
before its body is parsed, the choice is decided, its receipt is kept, and
only then does it take effect (the cookie) and are the signals sent. A grant
whose receipt cannot be kept does not take effect (GDPR Art. 7(1)); a
refusal always does.

An adapter builds a :class:`ChoiceRequest` from its request, reads at most
:attr:`ChoiceRequest.max_body` bytes of body, and calls :func:`receive`;
it answers a :class:`~consent.exceptions.ChoiceError` with its status and
description, and a :class:`ChoiceOutcome` with JSON or a 303 redirect.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import json
import logging
import typing as t
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

from .exceptions import BadChoiceError
from .exceptions import ChoiceNotRecordedError
from .exceptions import ChoiceTooLargeError
from .exceptions import ReceiptNotKeptError
from .exceptions import UnknownCategoryError
from .security import check_same_origin
from .security import safe_next
from .state import ACTIONS
from .state import Action
from .state import ConsentState
from .state import Method
from .state import decide
from .state import gpc_state

if t.TYPE_CHECKING:
    from .receipts import Receipt
    from .visitor import Visitor

logger = logging.getLogger(__name__)

#: The largest body the consent endpoint reads, in bytes. A choice is a few
#: hundred bytes; the app's own upload limit does not apply here.
MAX_BODY = 8 * 1024

#: The deepest nesting of arrays and objects read from a JSON body.
MAX_JSON_DEPTH = 4

#: Fields read from a form, and values per field.
MAX_FIELDS = 200

#: Methods a posted form may name; anything else is recorded as ``banner``
#: (forms) or ``api`` (JSON).
FORM_METHODS: tuple[Method, ...] = ("banner", "preferences", "embed")

#: The signal names of :attr:`ChoiceOutcome.signals`.
Signal = t.Literal["given", "changed", "withdrawn"]

_FORM_TYPE = "application/x-www-form-urlencoded"
_JSON_TYPE = "application/json"


@dataclasses.dataclass(frozen=True)
class ChoiceRequest:
    """What the consent endpoint needs to know about a post, before its body.

    :param origin_of_site: This site's origin, ``scheme://host[:port]``.
    :param content_type: The ``Content-Type`` header.
    :param content_length: The declared body length, if any.
    :param fetch_site: ``Sec-Fetch-Site``.
    :param origin: ``Origin``.
    :param referrer: ``Referer``.
    :param csrf_header: ``X-Consent-CSRF``, the token scripts send.
    :param root: The app's root path, where an unsafe ``next`` leads.
    :param path: The request path, for the receipt when ``next`` is absent.
    :param user_agent: ``User-Agent``, reduced before it is kept.
    :param remote_addr: The client's address, reduced before it is kept.
    """

    origin_of_site: str
    content_type: str | None
    content_length: int | None
    fetch_site: str | None = None
    origin: str | None = None
    referrer: str | None = None
    csrf_header: str | None = None
    root: str = "/"
    path: str = "/"
    user_agent: str | None = None
    remote_addr: str | None = None
    max_body: int = MAX_BODY

    @property
    def is_json(self) -> bool:
        """True for a JSON post (from ``consent.js`` or another script)."""
        return _media_type(self.content_type) == _JSON_TYPE

    def back(self) -> str:
        """The page the post came from when it is on this site (its path and
        query from ``Referer``), else :attr:`root`: where a visitor goes back
        to after a refused post."""
        if self.referrer:
            try:
                parts = urlsplit(self.referrer)
            except ValueError:
                return self.root
            if f"{parts.scheme}://{parts.netloc}" == self.origin_of_site:
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                return safe_next(path, self.root)
        return self.root


@dataclasses.dataclass(frozen=True)
class PostedChoice:
    """The fields of a posted choice, validated."""

    action: Action
    choices: tuple[str, ...] = ()
    method: str | None = None
    services_explicit: bool = False
    next: str | None = None
    csrf_token: str | None = None
    is_json: bool = False


@dataclasses.dataclass(frozen=True)
class ChoiceOutcome:
    """What a choice did: the adapter answers with it and sends the signals.

    :param state: The state now in force (and in the cookie).
    :param previous: The state before, or ``None``.
    :param receipt: The receipt kept, or ``None`` (receipts off, or a
        refusal whose receipt could not be kept).
    :param signals: Which of ``given``, ``changed`` and ``withdrawn`` to
        send, in that order.
    :param target: Where a form post goes next: a path on this site.
    :param is_json: True when the post was JSON (answer JSON, not 303).
    """

    state: ConsentState
    previous: ConsentState | None
    receipt: Receipt | None
    signals: tuple[Signal, ...]
    target: str
    is_json: bool


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_request(visitor: Visitor, request: ChoiceRequest) -> None:
    """Refuse a post before its body is read: too large, from another origin,
    or a script's post without its token header.

    :raises ChoiceTooLargeError: for a declared body over the limit.
    :raises ForbiddenChoiceError: for another origin, or a JSON post whose
        ``X-Consent-CSRF`` header does not carry this visitor's token.
    :raises RateLimitedError: for a client over ``CONSENT_RATE_LIMIT``.
    """
    if request.content_length is not None and request.content_length > request.max_body:
        raise ChoiceTooLargeError(
            f"A choice is at most {request.max_body} bytes; this request sent"
            f" {request.content_length}."
        )
    check_same_origin(
        request.origin_of_site,
        fetch_site=request.fetch_site,
        origin=request.origin,
        referrer=request.referrer,
    )
    visitor.site.limiter.check(request.remote_addr)
    if request.is_json:
        # A script must prove itself in a header, before its body is parsed:
        # only a same-origin page can read the token and set the header.
        visitor.check_csrf(request.csrf_header)


def parse_body(request: ChoiceRequest, body: bytes) -> PostedChoice:
    """Read the fields of a posted choice from a form or a JSON body.

    :raises ChoiceTooLargeError: for a body over the limit.
    :raises BadChoiceError: for a body that is not a choice.
    """
    if len(body) > request.max_body:
        raise ChoiceTooLargeError(f"A choice is at most {request.max_body} bytes.")
    media_type = _media_type(request.content_type)
    if media_type == _JSON_TYPE:
        fields = _json_fields(body)
        fields["csrf_token"] = [request.csrf_header or ""]
    elif media_type in (_FORM_TYPE, ""):
        fields = _form_fields(body)
    else:
        raise BadChoiceError(
            f"Send the choice as {_FORM_TYPE} (a form) or {_JSON_TYPE}, not"
            f" {media_type[:64]}."
        )
    return _posted(fields, is_json=media_type == _JSON_TYPE)


def _form_fields(body: bytes) -> dict[str, list[str]]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as err:
        raise BadChoiceError("The form could not be read: send it again.") from err
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def _json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text, strings
    skipped; computed before parsing, which recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def _json_fields(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadChoiceError("The JSON body must be UTF-8.") from err
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise BadChoiceError("The JSON body is nested too deeply to be a choice.")
    try:
        data = json.loads(text)
    except ValueError as err:
        raise BadChoiceError(
            'The body is not JSON: send an object such as {"action": "reject_all"}.'
        ) from err
    if not isinstance(data, dict):
        raise BadChoiceError(
            'The JSON body must be an object such as {"action": "reject_all"}.'
        )
    fields: dict[str, list[str]] = {}
    for key, value in data.items():
        if key == "choices":
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                raise BadChoiceError('"choices" must be a list of keys.')
            fields["choice"] = value
        elif isinstance(value, str):
            fields[key] = [value]
    return fields


def _posted(fields: cabc.Mapping[str, list[str]], *, is_json: bool) -> PostedChoice:
    def first(name: str) -> str | None:
        values = fields.get(name)
        return values[0] if values else None

    action = first("action")
    if action not in ACTIONS:
        shown = repr(action[:32]) if action else "none"
        raise BadChoiceError(
            f"Unknown action {shown}: send action=accept_all, reject_all or save."
        )
    choices = fields.get("choice", [])
    if len(choices) > MAX_FIELDS:
        raise BadChoiceError("Too many choices in one post.")
    return PostedChoice(
        action=action,
        choices=tuple(choices),
        method=first("method"),
        services_explicit=first("services") == "explicit",
        next=first("next"),
        csrf_token=first("csrf_token"),
        is_json=is_json,
    )


def grants_anything(state: ConsentState, previous: ConsentState | None) -> bool:
    """True when ``state`` allows something ``previous`` did not."""
    before: cabc.Set[str] = previous.granted if previous is not None else frozenset()
    return bool(state.granted - before)


def _signals(
    visitor: Visitor, previous: ConsentState | None, state: ConsentState
) -> tuple[Signal, ...]:
    was_current = (
        previous is not None
        and previous.method != "gpc"
        and previous.is_current(visitor.policy, visitor.now)
    )
    signals: list[Signal] = ["given"]
    if was_current:
        assert previous is not None
        if previous.granted != state.granted:
            signals.append("changed")
        if previous.granted - state.granted:
            signals.append("withdrawn")
    return tuple(signals)


def keep_receipt(
    visitor: Visitor,
    state: ConsentState,
    *,
    path: str,
    user_agent: str | None,
    remote_addr: str | None,
) -> Receipt | None:
    """Keep the receipt of ``state``; ``None`` when receipts are off.

    :raises ReceiptNotKeptError: when it could not be kept.
    """
    keeper = visitor.site.receipts
    if keeper is None:
        return None
    return keeper.keep(
        state,
        language=visitor.language,
        path=path,
        user_agent=user_agent,
        remote_addr=remote_addr,
    )


def apply_choice(
    visitor: Visitor, posted: PostedChoice, request: ChoiceRequest
) -> ChoiceOutcome:
    """Decide, keep the receipt, and make the choice this request's state.

    :raises ForbiddenChoiceError: without this visitor's CSRF token.
    :raises BadChoiceError: for keys the policy does not offer.
    :raises ChoiceNotRecordedError: for a grant whose receipt could not be
        kept; nothing was changed.
    """
    visitor.check_csrf(posted.csrf_token)
    previous = visitor.state
    method = posted.method
    if method == "gpc_js" and posted.is_json:
        # consent.js saw navigator.globalPrivacyControl: record the opt-out
        # exactly as the Sec-GPC header would, whatever the action says.
        state = gpc_state(visitor.policy, now=visitor.now, previous=previous)
    else:
        if method not in FORM_METHODS:
            method = "api" if posted.is_json else "banner"
        try:
            state = decide(
                visitor.policy,
                posted.action,
                now=visitor.now,
                chosen=posted.choices,
                services_explicit=posted.services_explicit,
                previous=previous,
                method=t.cast(Method, method),
            )
        except UnknownCategoryError as err:
            raise BadChoiceError(str(err)) from err
    path = safe_next(posted.next, "") or request.path
    receipt: Receipt | None = None
    try:
        receipt = keep_receipt(
            visitor,
            state,
            path=path,
            user_agent=request.user_agent,
            remote_addr=request.remote_addr,
        )
    except ReceiptNotKeptError as err:
        if grants_anything(state, previous):
            raise ChoiceNotRecordedError(
                "Your choice could not be recorded right now, so nothing optional"
                " was enabled. Please try again in a moment."
            ) from err
        logger.error("A refusal took effect without a receipt: %s", err)
    visitor.remember(state)
    return ChoiceOutcome(
        state=state,
        previous=previous,
        receipt=receipt,
        signals=_signals(visitor, previous, state),
        target=safe_next(posted.next, request.root),
        is_json=posted.is_json,
    )


def receive(
    visitor: Visitor, request: ChoiceRequest, read_body: cabc.Callable[[int], bytes]
) -> ChoiceOutcome:
    """Check, read, parse and apply one post to the consent endpoint.

    :param read_body: Reads at most the given number of bytes of the body
        (the adapter's stream); called only once the request passed
        :func:`check_request`.
    :raises ~consent.exceptions.ChoiceError: for anything that cannot be
        accepted.
    """
    check_request(visitor, request)
    body = read_body(request.max_body + 1)
    return apply_choice(visitor, parse_body(request, body), request)


def state_json(visitor: Visitor) -> dict[str, t.Any]:
    """The visitor's current choice, as ``GET /consent`` and JSON posts
    answer it."""
    state = visitor.state
    current = state is not None and not visitor.needs_banner
    return {
        "gpc": visitor.gpc_honored,
        "needs_banner": visitor.needs_banner,
        "revision": visitor.policy.revision,
        "choices": visitor.choices(),
        "consent_id": state.consent_id if state and current else None,
        "given_at": state.given_at.isoformat() if state and current else None,
        "method": state.method if state and current else None,
    }


def record_gpc(
    visitor: Visitor, *, path: str, user_agent: str | None, remote_addr: str | None
) -> None:
    """Keep the receipt of the opt-out a ``Sec-GPC`` signal recorded in this
    request, if any. A refusal takes effect even when it cannot be proven."""
    if visitor.gpc_recorded is None:
        return
    if not visitor.site.limiter.allows_gpc_receipt(remote_addr):
        # Honoured all the same: the cookie records the opt-out; a client
        # that keeps no cookie just does not get a receipt per page.
        return
    try:
        keep_receipt(
            visitor,
            visitor.gpc_recorded,
            path=path,
            user_agent=user_agent,
            remote_addr=remote_addr,
        )
    except ReceiptNotKeptError:
        logger.error("The receipt of a GPC opt-out could not be kept.")
