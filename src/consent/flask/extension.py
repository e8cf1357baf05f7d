"""The Flask extension: ``Consent(app, policy)``.

It reads the settings from ``app.config`` into the core's
:class:`~consent.settings.Settings`, registers the blueprint, the template
helpers and the CLI, and applies, after every request, what the core
decided: the cookie plan, the banner, the ``Set-Cookie`` filter and the
cache headers.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import logging
import typing as t
import weakref

from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request

from ..choice import record_gpc
from ..encoding import Recoder
from ..encoding import can_recode
from ..encoding import content_coding
from ..encoding import recode
from ..exceptions import ConfigurationError
from ..gpc import gpc_support_resource
from ..headers import merge_vary
from ..headers import private_cache_control
from ..injection import StreamInjector
from ..injection import inject
from ..settings import DEFAULTS
from ..settings import Settings
from ..site import Site
from ._context import EXTENSION
from ._context import AppState
from ._context import current_consent
from ._context import current_visitor
from ._context import page
from ._context import visitor
from .helpers import HELPERS

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Response
    from flask.typing import ResponseReturnValue

    from ..model import Policy
    from ..visitor import Visitor

_View = t.TypeVar("_View", bound=cabc.Callable[..., t.Any])

logger = logging.getLogger(__name__)

#: Every setting with its default; applied with ``setdefault``.
DEFAULT_CONFIG: dict[str, t.Any] = DEFAULTS


class Consent:
    """Cookie consent for a Flask app.

    ``Consent(app, policy)``, or ``consent = Consent(policy=policy)`` and
    later ``consent.init_app(app)`` in an app factory. The extension
    registers the ``consent`` blueprint, the template helpers
    (``consent_banner()``, ``consent_head()``, ``consent_settings_link()``,
    ``consent_script()``, ``consent_embed()``, ``consent_mode_head()`` and
    ``consent``), the ``flask consent`` commands, and an ``after_request``
    hook that writes the consent cookie and shows the banner on HTML pages.

    :param app: The app to set up now, if any.
    :param policy: The declared categories, services and cookies.
    """

    def __init__(self, app: Flask | None = None, policy: Policy | None = None) -> None:
        #: The policy, shared by every app this extension is set up on.
        self.policy = policy
        self._states: weakref.WeakKeyDictionary[Flask, AppState] = (
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
        from .cli import consent_cli
        from .views import bp

        policy = policy or self.policy
        if policy is None:
            raise ConfigurationError(
                "Consent needs a policy: Consent(app, Policy([...])) or"
                " init_app(app, policy)."
            )
        for key in sorted(set(self.required.values())):
            policy.category_of(key)  # a @requires key the policy lacks
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        settings = Settings.from_mapping(
            app.config, policy, secret_keys=_flask_keys(app)
        )
        site = Site(settings, folder=app.instance_path, debug=app.debug or app.testing)
        self._states[app] = AppState(site)
        app.extensions[EXTENSION] = self
        app.register_blueprint(bp, url_prefix=settings.url_prefix)
        # Neither globals nor a context processor: a render that does not
        # use them pays nothing for them.
        HELPERS.install(app.jinja_env, consent=current_consent)
        # Flask runs after_request hooks last-registered first: put ours at
        # the end of that order, so it sees the cookies every other hook and
        # extension set, including those set up before this one.
        app.after_request_funcs.setdefault(None, []).insert(0, _response_hook(site))
        app.cli.add_command(consent_cli)
        if settings.admin_access is not None:
            from .admin import admin_bp

            app.register_blueprint(admin_bp, url_prefix=f"{settings.url_prefix}/admin")
        if settings.gpc_support:
            app.add_url_rule(
                "/.well-known/gpc.json",
                "consent_gpc",
                functools.partial(_gpc_support, settings.gpc_last_update),
            )

    def state(self, app: Flask) -> AppState:
        """The extension's state for ``app``.

        :raises RuntimeError: when :meth:`init_app` was not called for it.
        """
        try:
            return self._states[app]
        except KeyError:
            raise RuntimeError(
                "Consent was not set up on this app: call init_app(app) first."
            ) from None

    def site(self, app: Flask) -> Site:
        """The core :class:`~consent.site.Site` of ``app``: its settings,
        policy, codec and receipt keeper."""
        return self.state(app).site

    def policy_for(self, app: Flask) -> Policy:
        """The policy in force on ``app``, with the configured max age."""
        return self.site(app).policy

    def requires(
        self,
        key: str,
        *,
        fallback: cabc.Callable[..., ResponseReturnValue] | str | None = None,
    ) -> cabc.Callable[[_View], _View]:
        """Decorate a view that cannot work without ``key``.

        Without consent the view does not run: the visitor gets a page that
        explains and offers the choice, with status 403, or the response of
        ``fallback`` (a view function, or the endpoint name of one). Async
        views work too (through ``current_app.ensure_sync``). The key is
        checked against the policy now when it is known, else in
        :meth:`init_app`.

        :param key: A category or service key of the policy.
        :param fallback: What to answer instead of the 403 page.
        """
        if self.policy is not None:
            self.policy.category_of(key)  # fail at import for a typo

        def decorator(view: _View) -> _View:
            self.required[f"{view.__module__}.{view.__qualname__}"] = key

            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                if visitor().allows(key):
                    return current_app.ensure_sync(view)(*args, **kwargs)
                if isinstance(fallback, str):
                    target = current_app.view_functions[fallback]
                    return current_app.ensure_sync(target)(*args, **kwargs)
                if fallback is not None:
                    return current_app.ensure_sync(fallback)(*args, **kwargs)
                return _requires_page(key)

            return t.cast(_View, wrapper)

        return decorator


def _flask_keys(app: Flask) -> list[str | bytes]:
    """Flask's keys, oldest first: the fallbacks, then the current key."""
    keys = list(app.config.get("SECRET_KEY_FALLBACKS") or [])
    if app.secret_key:
        keys.append(app.secret_key)
    return keys


def _gpc_support(last_update: str) -> Response:
    response = jsonify(gpc_support_resource(last_update))
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


def _requires_page(key: str) -> Response:
    response = current_app.make_response(
        (render_template("consent/requires.html", **page().requires_context(key)), 403)
    )
    response.cache_control.private = True
    return response


_SKIP_STATUS = frozenset({204, 304})


def _response_hook(site: Site) -> cabc.Callable[[Response], Response]:
    """The ``after_request`` hook of the app of ``site``: a plain function,
    which Flask calls without looking further (a partial it unwraps)."""

    def finish_consent(response: Response) -> Response:
        return _finish_response(site, response)

    return finish_consent


def _finish_response(site: Site, response: Response) -> Response:
    """Write cookies, show the banner and mark responses for caches (the
    ``after_request`` hook of the app of ``site``)."""
    current = current_visitor()
    receipts = site.receipts
    if receipts is not None and not receipts.is_started:
        # The first response of each worker process: replay what dead
        # workers left in their spools, from now on.
        receipts.start()
    if (
        current is None
        and not site.settings.auto_inject
        # getlist, not `in`: a missing header costs `in` an exception.
        and not response.headers.getlist("Set-Cookie")
    ):
        return response  # nothing of this response depended on consent
    if (
        site.settings.auto_inject
        and response.mimetype == "text/html"
        and response.status_code not in _SKIP_STATUS
        and response.status_code // 100 != 3
        and not response.direct_passthrough
        and can_recode(response.headers.get("Content-Encoding", "identity"))
    ):
        current = current or visitor()
        _inject(response)
    # One pass over the headers instead of a lookup per header (a missing
    # header costs werkzeug an exception).
    present = {key.lower() for key, _ in response.headers.items()}
    if "set-cookie" in present:
        current = current or visitor()
        _filter_set_cookies(current, response)
    if current is None:
        return response
    if current.gpc_recorded is not None:
        record_gpc(
            current,
            path=request.path,
            user_agent=request.environ.get("HTTP_USER_AGENT"),
            remote_addr=request.remote_addr,
        )
    for spec in current.cookie_plan():
        if spec.is_deletion:
            response.delete_cookie(
                spec.name,
                path=spec.path,
                domain=spec.domain,
                secure=spec.secure,
                httponly=spec.httponly,
                samesite=spec.samesite,
            )
        else:
            response.set_cookie(
                spec.name,
                spec.value,
                max_age=spec.max_age,
                path=spec.path,
                domain=spec.domain,
                secure=spec.secure,
                httponly=spec.httponly,
                samesite=spec.samesite,
            )
    if current.consulted:
        _mark_private(response, site.vary, present)
    return response


def _inject(response: Response) -> None:
    """Put the banner (or ``consent.js`` alone) into an HTML page that did
    not render it; streamed pages get it on the way out, and a body that a
    compression hook (Flask-Compress) already encoded is decoded for it."""
    # Decided now, in the request's context: the stream runs after it ends.
    found = page().injection()
    if found is None:
        return
    encoding = content_coding(response.headers.get("Content-Encoding"))
    if response.is_streamed:
        injector = StreamInjector(lambda: found)
        recoder = Recoder(encoding) if encoding else None
        chunks = response.response

        def stream() -> cabc.Iterator[bytes]:
            for chunk in chunks:
                data = chunk if isinstance(chunk, bytes) else chunk.encode()
                out = injector.feed(recoder.decode(data) if recoder else data)
                if recoder:
                    out = recoder.encode(out)
                if out:
                    yield out
            tail = injector.close()
            yield recoder.encode(tail, final=True) if recoder else tail

        response.response = stream()
        response.headers.pop("Content-Length", None)
        return
    body = response.get_data()
    if encoding:
        changed = recode(body, encoding, lambda plain: inject(plain, *found))
    else:
        changed = inject(body, *found)
    if changed is not None:
        response.set_data(changed)


def _mark_private(
    response: Response, vary: tuple[str, ...], present: cabc.Set[str]
) -> None:
    """Mark a response that depends on the visitor's consent: ``Vary`` and
    ``Cache-Control: private``.

    :param present: The lower-cased names of the headers already set.
    """
    headers = response.headers
    if "vary" in present:
        headers["Vary"] = merge_vary(headers.get("Vary"), vary)
    else:
        headers.add("Vary", ", ".join(vary))
    if "cache-control" in present:
        headers["Cache-Control"] = private_cache_control(headers.get("Cache-Control"))
    else:
        headers.add("Cache-Control", "private")


def _filter_set_cookies(current: Visitor, response: Response) -> None:
    """Remove ``Set-Cookie`` headers of what the visitor has not allowed."""
    headers = response.headers.getlist("Set-Cookie")
    kept, removed = current.site.gate.filter(headers, current.allows)
    if removed:
        del response.headers["Set-Cookie"]
        for header in kept:
            response.headers.add("Set-Cookie", header)
        logger.debug(
            "Removed Set-Cookie for %s: not allowed by the visitor.",
            ", ".join(v.name for v in removed),
        )
