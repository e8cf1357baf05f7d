"""The ``consent`` blueprint: the choice endpoint, preferences, declaration."""

from __future__ import annotations

import functools
import logging
import mimetypes
import typing as t

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import ServiceUnavailable

from ..exceptions import ReceiptNotKeptError
from ..exceptions import UnknownCategoryError
from ..receipts.keeper import grants_anything
from ..state import ACTIONS
from ..state import ConsentState
from ..state import decide
from ..state import gpc_state
from .extension import RequestConsent
from .extension import _page_context
from .extension import _request_consent
from .extension import _static_folder
from .extension import asset_version
from .security import ConsentBadRequest
from .security import check_same_origin
from .security import safe_next
from .signals import consent_changed
from .signals import consent_given
from .signals import consent_withdrawn

if t.TYPE_CHECKING:
    from flask import Response
    from flask.typing import ResponseReturnValue

    from ..model import Cookie
    from ..model import Policy

logger = logging.getLogger(__name__)


#: How long a browser keeps a versioned static file.
_YEAR = 365 * 24 * 3600


class ConsentBlueprint(Blueprint):
    """The blueprint, serving versioned static files for a year.

    ``consent.css`` and ``consent.js`` are linked with ``?v=<content hash>``:
    a new release changes the URL, so the browser can keep each version
    without asking again. Those responses come from memory, with a strong
    ETag of the content: they are asked for on a visitor's first page, next
    to the page's own files. Unversioned requests keep Flask's default.
    """

    def send_static_file(self, filename: str) -> Response:
        asset = _static_assets().get(filename) if request.args.get("v") else None
        if asset is None:
            return super().send_static_file(filename)
        body, mimetype, etag = asset
        response = current_app.response_class(body, mimetype=mimetype)
        response.set_etag(etag)
        response.cache_control.public = True
        response.cache_control.max_age = _YEAR
        response.make_conditional(request)
        return response


@functools.cache
def _static_assets() -> dict[str, tuple[bytes, str, str]]:
    """The content, type and ETag of each of the library's static files, by
    name: read once, and never keyed by a name a request made up."""
    return {
        entry.name: (
            entry.read_bytes(),
            mimetypes.guess_type(entry.name)[0] or "application/octet-stream",
            asset_version(entry.name),
        )
        for entry in _static_folder().iterdir()
        if entry.is_file()
    }


bp = ConsentBlueprint(
    "consent",
    __name__,
    template_folder="../templates",
    static_folder="../static/consent",
    static_url_path="/static",
)

#: Choices posted by a form or JSON; form methods only.
_FORM_METHODS = ("banner", "preferences", "embed")


def _state_json(rc: RequestConsent) -> dict[str, t.Any]:
    state = rc.state
    current = state is not None and not rc.needs_banner
    return {
        "gpc": rc.gpc_honored,
        "needs_banner": rc.needs_banner,
        "revision": rc.policy.revision,
        "choices": rc.choices(),
        "consent_id": state.consent_id if state and current else None,
        "given_at": state.given_at.isoformat() if state and current else None,
        "method": state.method if state and current else None,
    }


def _no_store(response: Response) -> Response:
    response.cache_control.no_store = True
    response.vary.add("Cookie")
    return response


@bp.get("", endpoint="state")
def state_view() -> ResponseReturnValue:
    """The visitor's current choice as JSON, with a CSRF token for scripts.

    Another origin cannot read this response (no CORS), so the token stays
    with the page that asked.
    """
    rc = _request_consent()
    data = _state_json(rc)
    data["csrf_token"] = rc.csrf_token()
    return _no_store(jsonify(data))


@bp.post("", endpoint="update")
def update() -> ResponseReturnValue:
    """Record a choice: ``accept_all``, ``reject_all`` or ``save``.

    Form posts answer 303 to a same-site ``next``; JSON posts answer the new
    state as JSON. Both need the CSRF token and a same-origin request.
    """
    rc = _request_consent()
    data, is_json = _posted_data()
    check_same_origin(request)
    token = data.get("csrf_token") or request.headers.get("X-Consent-CSRF")
    rc.check_csrf(token)
    action = data.get("action")
    if action not in ACTIONS:
        raise ConsentBadRequest(
            f"Unknown action {action!r}: send action=accept_all, reject_all or save."
        )
    method = data.get("method")
    if method == "gpc_js" and not is_json:
        method = None
    if method not in _FORM_METHODS and method != "gpc_js":
        method = "api" if is_json else "banner"
    previous = rc.state
    if method == "gpc_js":
        # consent.js saw navigator.globalPrivacyControl: record the opt-out
        # exactly as the Sec-GPC header would, whatever the action says.
        state = gpc_state(rc.policy, now=rc.now, previous=previous)
    else:
        state = _decide(rc, action, data, previous, method)
    _keep_receipt(rc, state, previous, data.get("next"))
    rc.remember(state)
    _send_signals(rc.policy, previous, state, rc)
    if is_json:
        return _no_store(jsonify(_state_json(rc)))
    target = safe_next(data.get("next"), request.root_path + "/")
    return _no_store(current_app.make_response(redirect(target, code=303)))


def _decide(
    rc: RequestConsent,
    action: str,
    data: MultiDict[str, str],
    previous: ConsentState | None,
    method: str,
) -> ConsentState:
    try:
        return decide(
            rc.policy,
            t.cast(t.Any, action),
            now=rc.now,
            chosen=data.getlist("choice"),
            services_explicit=data.get("services") == "explicit",
            previous=previous,
            method=t.cast(t.Any, method),
        )
    except UnknownCategoryError as err:
        raise ConsentBadRequest(str(err)) from err


class ConsentNotRecorded(ServiceUnavailable):
    """A grant whose proof could not be kept: it is not given effect."""


def _keep_receipt(
    rc: RequestConsent,
    state: ConsentState,
    previous: ConsentState | None,
    next_path: str | None,
) -> None:
    """Record the receipt before the choice takes effect.

    A grant that cannot be demonstrated is not a grant (GDPR Art. 7(1)): the
    visitor gets a 503 and nothing optional is enabled. A refusal always
    takes effect.
    """
    keeper = (
        current_app.extensions["consent"]
        .settings(
            current_app._get_current_object()  # type: ignore[attr-defined]
        )
        .receipts
    )
    if keeper is None:
        return
    path = safe_next(next_path, "") or request.path
    try:
        keeper.keep(
            state,
            language=rc.language,
            path=path,
            user_agent=request.headers.get("User-Agent"),
            remote_addr=request.remote_addr,
        )
    except ReceiptNotKeptError as err:
        if grants_anything(state, previous):
            raise ConsentNotRecorded(
                "Your choice could not be recorded right now, so nothing optional"
                " was enabled. Please try again in a moment."
            ) from err
        logger.error("A refusal took effect without a receipt: %s", err)


def _posted_data() -> tuple[MultiDict[str, str], bool]:
    """The posted fields, from a form or a JSON object, as one shape."""
    if not request.is_json:
        return request.form, False
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ConsentBadRequest(
            'The JSON body must be an object such as {"action": "reject_all"}.'
        )
    data: MultiDict[str, str] = MultiDict()
    for key, value in body.items():
        if key == "choices":
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                raise ConsentBadRequest('"choices" must be a list of keys.')
            for item in value:
                data.add("choice", item)
        elif isinstance(value, str):
            data[key] = value
    return data, True


def _send_signals(
    policy: Policy,
    previous: ConsentState | None,
    state: ConsentState,
    rc: RequestConsent,
) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    was_current = (
        previous is not None
        and previous.method != "gpc"
        and previous.is_current(policy, rc.now)
    )
    consent_given.send(app, state=state, previous=previous)
    if was_current:
        assert previous is not None
        if previous.granted != state.granted:
            consent_changed.send(app, state=state, previous=previous)
        if previous.granted - state.granted:
            consent_withdrawn.send(app, state=state, previous=previous)


@bp.get("/preferences", endpoint="preferences")
def preferences() -> ResponseReturnValue:
    """The full preferences page: works without JavaScript."""
    rc = _request_consent()
    rc.banner_suppressed = True
    context = _page_context(rc)
    context["next"] = safe_next(request.args.get("next"), request.root_path + "/")
    context["choices"] = rc.choices()
    state = rc.state if rc.has_chosen else None
    context["state"] = state
    context["categories"] = _declaration(rc)
    # consent.js asks for the form alone, to show it in a dialog.
    template = (
        "consent/_preferences.html"
        if request.args.get("fragment")
        else "consent/preferences.html"
    )
    response = current_app.make_response(render_template(template, **context))
    return _no_store(response)


def _declaration(rc: RequestConsent) -> list[dict[str, t.Any]]:
    ext = current_app.extensions["consent"]
    builtin = ext.builtin_cookies(current_app._get_current_object())  # type: ignore[attr-defined]
    tr = rc.translator
    first_required = next(c.key for c in rc.policy.categories if c.required)

    def cookie_rows(cookies: t.Iterable[Cookie]) -> list[dict[str, t.Any]]:
        return [
            {
                "name": c.label,
                "pattern": bool(c.pattern),
                "provider": c.provider,
                "purpose": c.purpose,
                "duration": c.duration,
                "party": c.party,
                "party_label": tr(
                    "declaration.first_party"
                    if c.party == "first"
                    else "declaration.third_party"
                ),
            }
            for c in cookies
        ]

    rows = []
    for category in rc.policy.categories:
        cookies = list(category.all_cookies())
        if category.key == first_required:
            cookies = list(builtin) + cookies
        rows.append(
            {
                "key": category.key,
                "title": category.title,
                "description": category.description,
                "required": category.required,
                "cookies": cookie_rows(cookies),
                "services": [
                    {
                        "key": s.key,
                        "title": s.title,
                        "description": s.description,
                        "provider": s.provider,
                        "cookies": cookie_rows(s.cookies),
                    }
                    for s in category.services
                ],
            }
        )
    return rows


@bp.get("/declaration", endpoint="declaration")
def declaration() -> ResponseReturnValue:
    """The cookie declaration, generated from the policy."""
    rc = _request_consent()
    context = _page_context(rc)
    context["categories"] = _declaration(rc)
    return render_template("consent/declaration.html", **context)


@bp.get("/declaration.json", endpoint="declaration_json")
def declaration_json() -> ResponseReturnValue:
    """The cookie declaration as JSON."""
    rc = _request_consent()
    return jsonify(
        {
            "revision": rc.policy.revision,
            "controller": rc.policy.controller,
            "language": rc.language,
            "categories": _declaration(rc),
        }
    )
