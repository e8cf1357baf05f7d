"""``ConsentMiddleware``: cookie consent for any ASGI app.

A pure ASGI middleware, as Starlette's own ``SessionMiddleware``: it reads
the consent cookie from the scope, answers the consent endpoints itself, and
wraps ``send`` to apply the core's decisions when the app's response starts:
the cookie plan, the ``Set-Cookie`` filter and the cache headers. It puts
the banner into HTML responses, streamed ones included, holding back only
the bytes before ``<body>``. Database work runs in a thread, never on the
event loop.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import json
import logging
import os
import typing as t
from urllib.parse import parse_qs
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .. import signals
from ..assets import static_files
from ..choice import ChoiceRequest
from ..choice import apply_choice
from ..choice import check_request
from ..choice import parse_body
from ..choice import record_gpc
from ..choice import state_json
from ..declaration import declaration_json
from ..encoding import can_recode
from ..encoding import content_coding
from ..exceptions import ChoiceError
from ..exceptions import ChoiceTooLargeError
from ..exceptions import ConfigurationError
from ..exceptions import RateLimitedError
from ..gpc import gpc_support_resource
from ..headers import framing_headers
from ..html import Page
from ..html import Urls
from ..security import safe_next
from ..settings import Settings
from ..site import Site
from ..visitor import Visitor
from ._context import CURRENT
from ._context import HELPERS
from ._context import RequestState
from ._context import current_consent
from ._exchange import Exchange
from ._exchange import mark_private
from ._request import ScopeRequest
from ._request import Sender
from .errors import ConsentRequiredError

if t.TYPE_CHECKING:
    from starlette.types import ASGIApp
    from starlette.types import Message
    from starlette.types import Receive
    from starlette.types import Scope
    from starlette.types import Send

    from ..model import Policy
    from ..settings import SecretKey

logger = logging.getLogger(__name__)

_YEAR = 365 * 24 * 3600
_SKIP_STATUS = frozenset({204, 304})


def _environment(templates: t.Any) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The app's template environment (with the helpers added) and the one
    the library renders its own pages with: autoescaped always, finding the
    app's overrides of ``consent/*.html`` first."""
    package = jinja2.PackageLoader("consent", "templates")
    app_env: jinja2.Environment | None = getattr(templates, "env", templates)
    if app_env is not None and not isinstance(app_env, jinja2.Environment):
        raise ConfigurationError(
            "templates must be a starlette Jinja2Templates or a jinja2.Environment."
        )
    loader: jinja2.BaseLoader = package
    if app_env is not None:
        HELPERS.install(app_env, consent=current_consent)
        if app_env.loader is not None:
            loader = jinja2.ChoiceLoader([app_env.loader, package])
        # The app's templates can import the library's macros too
        # ("consent/macros.html"), as a Flask blueprint's templates allow.
        app_env.loader = loader
    own = jinja2.Environment(loader=loader, autoescape=True)
    HELPERS.install(own, consent=current_consent)
    return own, app_env or own


class ConsentMiddleware:
    """Cookie consent for an ASGI app (Starlette, FastAPI, any ASGI app).

    ::

        app.add_middleware(ConsentMiddleware, policy=policy, secret_key=KEY,
                           templates=templates)

    Settings are the ``CONSENT_*`` options of the configuration table, in a
    ``config`` mapping by their full names, as a Flask app's config holds
    them (``config={"CONSENT_LAYOUT": "box"}``). Selectors
    (``CONSENT_LANGUAGE_SELECTOR``, ``CONSENT_PROFILE_SELECTOR``,
    ``CONSENT_CSP_NONCE``) are called with the Starlette ``Request``.

    :param app: The ASGI app to wrap.
    :param policy: The declared categories, services and cookies.
    :param secret_key: Signs the consent cookie and the CSRF tokens: a key,
        or a list from oldest to newest.
    :param config: ``CONSENT_*`` settings by their full names.
    :param folder: Where the SQLite receipts and the spools go; ``instance``
        in the working directory by default.
    :param templates: The app's ``Jinja2Templates`` (or a Jinja
        ``Environment``): its templates get the helpers (``consent``,
        ``consent_banner()``, ``consent_script()``...) and may override the
        library's (``consent/banner.html``...).
    :param debug: Raise on undeclared keys instead of refusing them.
    :raises ConfigurationError: when a setting cannot work.
    """

    def __init__(
        self,
        app: cabc.Callable[[t.Any, t.Any, t.Any], cabc.Awaitable[None]],
        policy: Policy,
        *,
        secret_key: SecretKey | cabc.Sequence[SecretKey] | None = None,
        config: cabc.Mapping[str, t.Any] | None = None,
        folder: str | os.PathLike[str] | None = None,
        templates: t.Any = None,
        debug: bool = False,
    ) -> None:
        mapping = dict(config or {})
        if secret_key is not None:
            mapping.setdefault("CONSENT_SECRET_KEY", secret_key)
        if mapping.get("CONSENT_ADMIN_ACCESS") is not None:
            raise ConfigurationError(
                "The receipts dashboard is part of the Flask extension; under ASGI"
                " use the `consent receipts` commands instead."
            )
        #: The wrapped app.
        self.app: ASGIApp = app
        #: The validated settings.
        self.settings = Settings.from_mapping(mapping, policy)
        #: The core machinery: codec, CSRF, cookie gate, receipts.
        self.site = Site(
            self.settings,
            folder=os.fspath(folder or os.path.join(os.getcwd(), "instance")),
            debug=debug,
        )
        self.debug = debug
        self._env, self.templates = _environment(templates)
        # The app's context processors (Jinja2Templates) run for the
        # library's pages too, which may extend the app's layout.
        self._processors: list[cabc.Callable[[Request], dict[str, t.Any]]] = list(
            getattr(templates, "context_processors", None) or ()
        )
        self._urls: dict[str, Urls] = {}
        self._prefix = self.settings.url_prefix
        self._auto_inject = self.settings.auto_inject
        ancestors = self.settings.frame_ancestors
        # Other sites may not frame the choice (CONSENT_FRAME_ANCESTORS).
        self._framing = [
            (name.lower().encode(), value.encode())
            for name, value in (framing_headers(ancestors) if ancestors else ())
        ]
        self._has_selectors = (
            self.settings.language_selector is not None
            or self.settings.profile_selector is not None
        )

    def _render(self, scope: Scope, template: str, context: dict[str, t.Any]) -> str:
        if self._processors:
            request = Request(scope)
            extra: dict[str, t.Any] = {"request": request}
            for processor in self._processors:
                extra.update(processor(request))
            context = {**extra, **context}
        return self._env.get_template(template).render(context)

    def _urls_for(self, root: str) -> Urls:
        found = self._urls.get(root)
        if found is None:
            base = root + self._prefix
            found = self._urls[root] = Urls(
                update=base,
                preferences=f"{base}/preferences",
                declaration=f"{base}/declaration",
                static=f"{base}/static",
            )
        return found

    def _bind(
        self, selector: cabc.Callable[..., t.Any] | None, scope: Scope
    ) -> cabc.Callable[[], t.Any] | None:
        if selector is None:
            return None
        return lambda: selector(Request(scope))

    def _nonce(self, scope: Scope) -> str | None:
        selector = self.settings.csp_nonce
        if selector is not None:
            nonce = selector(Request(scope))
        else:
            nonce = scope.get("state", {}).get("csp_nonce")
        return str(nonce) if nonce else None

    def make_page(self, scope: Scope, visitor: Visitor) -> Page:
        """The consent markup of a request to this app."""
        route = _route_path(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        return Page(
            visitor,
            self._urls_for(scope.get("root_path", "")),
            functools.partial(self._render, scope),
            here=scope["path"] + (f"?{query}" if query else ""),
            is_own_page=route == self._prefix or route.startswith(self._prefix + "/"),
            nonce=functools.partial(self._nonce, scope),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keeper = self.site.receipts
        if keeper is not None and not keeper.is_started:
            # When each worker process starts (lifespan) or serves its first
            # request: replay what dead workers left in their spools.
            if scope["type"] in ("http", "lifespan"):
                await run_in_threadpool(keeper.start)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings
        visitor = Visitor(self.site, ScopeRequest(scope), strict=self.debug)
        if self._has_selectors:
            visitor.bind_selectors(
                self._bind(settings.language_selector, scope),
                self._bind(settings.profile_selector, scope),
            )
        state = RequestState(visitor, self, scope)
        scope_state = scope.setdefault("state", {})
        scope_state["consent"] = visitor
        token = CURRENT.set(state)
        try:
            path: str = scope["path"]
            root = scope.get("root_path")
            if root and path.startswith(root):
                path = path[len(root) :] or "/"
            prefix = self._prefix
            if path == prefix or path.startswith(prefix + "/"):
                await self._endpoint(
                    scope, receive, send, state.page, path[len(prefix) :]
                )
            elif path == "/.well-known/gpc.json" and settings.gpc_support:
                body = json.dumps(gpc_support_resource(settings.gpc_last_update))
                await Sender(send).respond(
                    200,
                    body.encode(),
                    "application/json",
                    [(b"cache-control", b"public, max-age=86400")],
                )
            else:
                exchange = Exchange(self, scope, send, state)
                try:
                    await self.app(scope, receive, exchange.send)
                except ConsentRequiredError as err:
                    if exchange.started:
                        raise
                    page = state.page
                    context = page.requires_context(err.key)
                    await self._page(
                        Sender(send), scope, page, "consent/requires.html", context, 403
                    )
        finally:
            CURRENT.reset(token)
            # The visitor refers to the scope: without this, every request
            # would leave a reference cycle for the garbage collector.
            if scope_state.get("consent") is visitor:
                del scope_state["consent"]

    # The app's responses.

    def injects(self, message: Message) -> tuple[bool, str | None]:
        """Whether the banner goes into this response, and the body's
        compression (when a compression middleware inside this one already
        encoded it)."""
        if not self._auto_inject:
            return False, None
        status = message["status"]
        if status in _SKIP_STATUS or status // 100 == 3:
            return False, None
        content_type = b""
        coding: str | None = None
        for name, value in message.get("headers", ()):
            lowered = name.lower()
            if lowered == b"content-encoding":
                coding = content_coding(value.decode("latin-1"))
            elif lowered == b"content-type":
                content_type = value
        if content_type.split(b";", 1)[0].strip().lower() != b"text/html":
            return False, None
        if coding is not None and not can_recode(coding):
            return False, None
        return True, coding

    async def finish_headers(
        self,
        scope: Scope,
        visitor: Visitor,
        headers: list[tuple[bytes, bytes]],
        added: int = 0,
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with the core's decisions applied: the
        ``Set-Cookie`` filter, the cookie plan, the cache headers, and the
        length of what was inserted."""
        cookies = [
            v.decode("latin-1") for k, v in headers if k.lower() == b"set-cookie"
        ]
        if cookies:
            kept, removed = self.site.gate.filter(cookies, visitor.allows)
            if removed:
                headers = [(k, v) for k, v in headers if k.lower() != b"set-cookie"]
                headers.extend((b"set-cookie", c.encode("latin-1")) for c in kept)
        if added:
            headers = [
                (
                    k,
                    str(int(v) + added).encode()
                    if k.lower() == b"content-length"
                    else v,
                )
                for k, v in headers
            ]
        if not visitor.touched:
            return headers
        if visitor.gpc_recorded is not None and self.site.receipts is not None:
            await run_in_threadpool(
                record_gpc,
                visitor,
                path=scope["path"],
                user_agent=_header(scope, b"user-agent"),
                remote_addr=_client(scope),
            )
        headers.extend(
            (b"set-cookie", spec.header().encode("latin-1"))
            for spec in visitor.cookie_plan()
        )
        if visitor.consulted:
            mark_private(headers, self.site.vary)
        return headers

    # The library's own endpoints.

    async def _endpoint(
        self, scope: Scope, receive: Receive, send: Send, page: Page, sub: str
    ) -> None:
        sender = Sender(send, self._framing)
        method = scope["method"]
        if sub.startswith("/static/"):
            if method not in ("GET", "HEAD"):
                await sender.respond(405, b"", "text/plain", [(b"allow", b"GET, HEAD")])
                return
            await self._static(sender, scope, sub[len("/static/") :])
            return
        allowed = {"": ("GET", "HEAD", "POST")}.get(sub, ("GET", "HEAD"))
        if sub not in ("", "/preferences", "/declaration", "/declaration.json"):
            await sender.respond(404, b"Not Found", "text/plain; charset=utf-8")
            return
        if method not in allowed:
            allow = ", ".join(allowed).encode()
            await sender.respond(405, b"", "text/plain", [(b"allow", allow)])
            return
        visitor = page.visitor
        if sub == "" and method == "POST":
            await self._choose(scope, receive, sender, page)
        elif sub == "":
            data = state_json(visitor)
            data["csrf_token"] = visitor.csrf_token()
            await self._json(sender, scope, page, data, no_store=True)
        elif sub == "/preferences":
            params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            root = scope.get("root_path", "") + "/"
            next_path = safe_next(params.get("next", [None])[0], root)
            template = (
                "consent/_preferences.html"
                if params.get("fragment")
                else "consent/preferences.html"
            )
            context = page.preferences_context(next_path)
            await self._page(sender, scope, page, template, context, no_store=True)
        elif sub == "/declaration":
            context = page.declaration_context()
            await self._page(sender, scope, page, "consent/declaration.html", context)
        else:
            body = declaration_json(self.site, visitor.language)
            if self.settings.language_selector is not None:
                cache = [(b"vary", b"Accept-Language, Cookie")]
                cache.append((b"cache-control", b"private, max-age=300"))
            else:
                cache = [(b"vary", b"Accept-Language")]
                cache.append((b"cache-control", b"public, max-age=300"))
            await sender.respond(
                200, json.dumps(body).encode(), "application/json", cache
            )

    async def _choose(
        self, scope: Scope, receive: Receive, sender: Sender, page: Page
    ) -> None:
        visitor = page.visitor
        length = _header(scope, b"content-length")
        choice_request = ChoiceRequest(
            origin_of_site=f"{scope.get('scheme', 'http')}://{_header(scope, b'host')}",
            content_type=_header(scope, b"content-type"),
            content_length=int(length)
            if length and length.isascii() and length.isdigit()
            else None,
            fetch_site=_header(scope, b"sec-fetch-site"),
            origin=_header(scope, b"origin"),
            referrer=_header(scope, b"referer"),
            csrf_header=_header(scope, b"x-consent-csrf"),
            root=scope.get("root_path", "") + "/",
            path=scope["path"],
            user_agent=_header(scope, b"user-agent"),
            remote_addr=_client(scope),
        )
        try:
            if self.site.limiter.is_local:
                check_request(visitor, choice_request)
            else:
                # A shared counter (Redis, Memcached) is a network call.
                await run_in_threadpool(check_request, visitor, choice_request)
            body = await _read_body(receive, choice_request.max_body)
            posted = parse_body(choice_request, body)
            outcome = await run_in_threadpool(
                apply_choice, visitor, posted, choice_request
            )
        except ChoiceError as err:
            await self._error(sender, scope, page, err, choice_request)
            return
        for name in outcome.signals:
            signals.BY_NAME[name].send(
                self.app, state=outcome.state, previous=outcome.previous
            )
        if outcome.is_json:
            await self._json(sender, scope, page, state_json(visitor), no_store=True)
            return
        headers = await self.finish_headers(
            scope,
            page.visitor,
            [
                (b"location", _location(outcome.target)),
                (b"cache-control", b"no-store"),
                (b"content-length", b"0"),
            ],
        )
        await sender.send(
            {"type": "http.response.start", "status": 303, "headers": headers}
        )
        await sender.send({"type": "http.response.body", "body": b""})

    async def _error(
        self,
        sender: Sender,
        scope: Scope,
        page: Page,
        error: ChoiceError,
        choice_request: ChoiceRequest,
    ) -> None:
        extra = []
        if isinstance(error, RateLimitedError):
            extra.append((b"retry-after", str(error.retry_after).encode()))
        if choice_request.is_json:
            await self._json(
                sender,
                scope,
                page,
                {"error": error.description},
                status=error.status,
                no_store=True,
                extra=extra,
            )
            return
        context = page.error_context(error, choice_request.back())
        await self._page(
            sender,
            scope,
            page,
            "consent/error.html",
            context,
            error.status,
            no_store=True,
            extra=extra,
        )

    async def _page(
        self,
        sender: Sender,
        scope: Scope,
        page: Page,
        template: str,
        context: dict[str, t.Any],
        status: int = 200,
        *,
        no_store: bool = False,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = page.render(template, context).encode()
        await self._respond(
            sender,
            scope,
            page,
            status,
            body,
            "text/html; charset=utf-8",
            no_store,
            extra,
        )

    async def _json(
        self,
        sender: Sender,
        scope: Scope,
        page: Page,
        data: t.Any,
        *,
        status: int = 200,
        no_store: bool = False,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = json.dumps(data).encode()
        await self._respond(
            sender, scope, page, status, body, "application/json", no_store, extra
        )

    async def _respond(
        self,
        sender: Sender,
        scope: Scope,
        page: Page,
        status: int,
        body: bytes,
        content_type: str,
        no_store: bool,
        extra: list[tuple[bytes, bytes]] | None,
    ) -> None:
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *(extra or ()),
        ]
        if no_store:
            headers.append((b"cache-control", b"no-store"))
        headers = await self.finish_headers(scope, page.visitor, headers)
        await sender.send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await sender.send({"type": "http.response.body", "body": body})

    async def _static(self, sender: Sender, scope: Scope, filename: str) -> None:
        asset = static_files().get(filename)
        if asset is None:
            await sender.respond(404, b"Not Found", "text/plain; charset=utf-8")
            return
        content, media_type, version = asset
        etag = f'"{version}"'.encode()
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cache = f"public, max-age={_YEAR}" if params.get("v") else "no-cache"
        headers = [(b"etag", etag), (b"cache-control", cache.encode())]
        if _header(scope, b"if-none-match") == etag.decode():
            await sender.send(
                {"type": "http.response.start", "status": 304, "headers": headers}
            )
            await sender.send({"type": "http.response.body", "body": b""})
            return
        if scope["method"] == "HEAD":
            content = b""
        await sender.respond(200, content, media_type, headers)


def _route_path(scope: Scope) -> str:
    """The path the app routes on: without the root path it is mounted at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _location(target: str) -> bytes:
    """A ``Location`` header for a path on this site, in ASCII: other
    characters percent-encoded as UTF-8, as werkzeug's ``redirect`` does."""
    return quote(target, safe="%!$&'()*+,/:;=?@#").encode("ascii")


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v for k, v in scope["headers"] if k == name]
    if not values:
        return None
    return ", ".join(v.decode("latin-1") for v in values)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused beyond ``limit`` bytes without reading more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ChoiceTooLargeError(f"A choice is at most {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
