"""The ``consent`` blueprint: the choice endpoint, preferences, declaration.

Each view translates the request for the core (:mod:`consent.choice`,
:mod:`consent.declaration`) and its answer back; no decision is taken here.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request

from .. import signals
from ..assets import static_files
from ..choice import ChoiceRequest
from ..choice import receive
from ..choice import state_json
from ..declaration import declaration_json as declaration_body
from ..exceptions import ChoiceError
from ..exceptions import RateLimitedError
from ..headers import framing_headers
from ..security import safe_next
from ._context import page
from ._context import site_of
from ._context import visitor
from .errors import http_error

if t.TYPE_CHECKING:
    from flask import Response
    from flask.typing import ResponseReturnValue

#: How long a browser keeps a versioned static file.
_YEAR = 365 * 24 * 3600


class ConsentBlueprint(Blueprint):
    """The blueprint, serving versioned static files for a year.

    ``consent.css`` and ``consent.js`` are linked with ``?v=<content hash>``:
    a new release changes the URL, so the browser can keep each version
    without asking again. Those responses come from memory, with a strong
    ETag of the content. Unversioned requests keep Flask's default.
    """

    def send_static_file(self, filename: str) -> Response:
        asset = static_files().get(filename) if request.args.get("v") else None
        if asset is None:
            return super().send_static_file(filename)
        body, mimetype, etag = asset
        response = current_app.response_class(body, mimetype=mimetype)
        response.set_etag(etag)
        response.cache_control.public = True
        response.cache_control.max_age = _YEAR
        response.make_conditional(request)
        return response


bp = ConsentBlueprint(
    "consent",
    __name__,
    template_folder="../templates",
    static_folder="../static/consent",
    static_url_path="/static",
)


@bp.after_request
def _no_framing(response: Response) -> Response:
    # Other sites may not frame the choice (CONSENT_FRAME_ANCESTORS).
    ancestors = site_of().settings.frame_ancestors
    if ancestors is not None:
        for name, value in framing_headers(ancestors):
            if name not in response.headers or name == "Content-Security-Policy":
                response.headers.add(name, value)
    return response


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
    current = visitor()
    data = state_json(current)
    data["csrf_token"] = current.csrf_token()
    return _no_store(jsonify(data))


def _choice_request() -> ChoiceRequest:
    headers = request.headers
    return ChoiceRequest(
        origin_of_site=f"{request.scheme}://{request.host}",
        content_type=request.content_type,
        content_length=request.content_length,
        fetch_site=headers.get("Sec-Fetch-Site"),
        origin=headers.get("Origin"),
        referrer=headers.get("Referer"),
        csrf_header=headers.get("X-Consent-CSRF"),
        root=request.root_path + "/",
        path=request.path,
        user_agent=headers.get("User-Agent"),
        # What request.remote_addr reads, after any ProxyFix.
        remote_addr=request.remote_addr,
    )


@bp.post("", endpoint="update")
def update() -> ResponseReturnValue:
    """Record a choice: ``accept_all``, ``reject_all`` or ``save``.

    Form posts answer 303 to a same-site ``next``; JSON posts answer the new
    state as JSON. Both need the CSRF token and a same-origin request.
    """
    current = visitor()
    choice_request = _choice_request()
    try:
        outcome = receive(current, choice_request, request.stream.read)
    except ChoiceError as err:
        raise http_error(err, _error_response(err, choice_request)) from err
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for name in outcome.signals:
        signals.BY_NAME[name].send(app, state=outcome.state, previous=outcome.previous)
    if outcome.is_json:
        return _no_store(jsonify(state_json(current)))
    return _no_store(current_app.make_response(redirect(outcome.target, code=303)))


def _error_response(error: ChoiceError, choice_request: ChoiceRequest) -> Response:
    """A readable answer: JSON for scripts; for forms a page that says why,
    with a fresh form when the old one can no longer be sent."""
    if choice_request.is_json:
        response = jsonify({"error": error.description})
    else:
        context = page().error_context(error, choice_request.back())
        response = current_app.make_response(
            render_template("consent/error.html", **context)
        )
    response.status_code = error.status
    if isinstance(error, RateLimitedError):
        response.headers["Retry-After"] = str(error.retry_after)
    return _no_store(response)


@bp.get("/preferences", endpoint="preferences")
def preferences() -> ResponseReturnValue:
    """The full preferences page: works without JavaScript."""
    next_path = safe_next(request.args.get("next"), request.root_path + "/")
    context = page().preferences_context(next_path)
    # consent.js asks for the form alone, to show it in a dialog.
    template = (
        "consent/_preferences.html"
        if request.args.get("fragment")
        else "consent/preferences.html"
    )
    response = current_app.make_response(render_template(template, **context))
    return _no_store(response)


@bp.get("/declaration", endpoint="declaration")
def declaration() -> ResponseReturnValue:
    """The cookie declaration, generated from the policy."""
    return render_template("consent/declaration.html", **page().declaration_context())


@bp.get("/declaration.json", endpoint="declaration_json")
def declaration_json() -> ResponseReturnValue:
    """The cookie declaration as JSON, in the visitor's language."""
    current = visitor()
    response = jsonify(declaration_body(site_of(), current.language))
    # The language comes from Accept-Language, or from the app's selector,
    # which may read a cookie.
    response.vary.add("Accept-Language")
    if site_of().settings.language_selector is not None:
        response.vary.add("Cookie")
        response.cache_control.private = True
    else:
        response.cache_control.public = True
    response.cache_control.max_age = 300
    return response
