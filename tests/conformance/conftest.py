"""One conformance suite, every adapter.

Each test here takes the ``adapter`` fixture, which runs it once on the Flask
extension and once on the ASGI middleware (a Starlette app), and builds its
app with ``adapter.make_app(policy, views, **config)`` from adapter-neutral
:class:`View` declarations. Tests talk to the app through :class:`Client`,
which gives both frameworks' test clients one shape.

Settings that are callables (``CONSENT_CSP_NONCE``, the selectors) are
called without arguments by Flask and with the Starlette ``Request`` by the
middleware: write them as ``lambda *_: ...``, or wrap a function of the
request with :meth:`Adapter.selector`.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import itertools
import json
import typing as t
from datetime import datetime
from datetime import timezone
from pathlib import Path

import pytest

from consent import Policy
from tests.conftest import PAGE
from tests.conftest import SECRET_KEY
from tests.conftest import make_policy

if t.TYPE_CHECKING:
    from consent import ConsentState
    from consent.receipts import Receipt

#: The default views: ``/`` renders :data:`PAGE`, ``/plain`` answers text
#: without asking about consent.
PLAIN = "plain text"

#: Request headers: a mapping, or pairs when a name repeats.
RequestHeaders = cabc.Mapping[str, str] | cabc.Sequence[tuple[str, str]]

#: Cookies to set: (name, value, options of ``set_cookie``).
CookieSpecs = tuple[tuple[str, str, dict[str, t.Any]], ...]


@dataclasses.dataclass(frozen=True)
class View:
    """A route of a test app, the same in every adapter.

    :param body: A Jinja template rendered with the consent helpers
        (``consent``, ``consent_banner()``...), or plain text.
    :param content_type: The response's ``Content-Type``.
    :param status: The response's status.
    :param cookies: Cookies the view sets: (name, value, options).
    :param deletes: Names of cookies the view deletes.
    :param requires: Guard the view with the adapter's ``requires(key)``.
    :param data: Answer JSON computed from the current visitor instead.
    :param stream: Send the rendered body in several chunks.
    :param headers: More response headers.
    :param context: Variables the template is rendered with.
    """

    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    cookies: CookieSpecs = ()
    deletes: tuple[str, ...] = ()
    requires: str | None = None
    data: cabc.Callable[[t.Any], t.Any] | None = None
    stream: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    context: cabc.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)


DEFAULT_VIEWS: dict[str, View] = {
    "/": View(PAGE),
    "/plain": View(PLAIN, content_type="text/plain; charset=utf-8"),
}


class Headers:
    """Response headers, case-insensitive, with repeated names kept."""

    def __init__(self, items: cabc.Iterable[tuple[str, str]]) -> None:
        self._items = [(k.lower(), v) for k, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.getlist(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name.lower()]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.getlist(name))

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@dataclasses.dataclass(frozen=True)
class CacheControl:
    """The directives of a ``Cache-Control`` header, as werkzeug reads them:
    a flag is ``True`` or ``None``, ``max_age`` a number or ``None``."""

    directives: dict[str, str | None]

    @classmethod
    def parse(cls, value: str | None) -> CacheControl:
        found: dict[str, str | None] = {}
        for part in (value or "").split(","):
            name, sep, arg = part.strip().partition("=")
            if name:
                found[name.lower()] = arg.strip('"') if sep else None
        return cls(found)

    def _flag(self, name: str) -> bool | None:
        return True if name in self.directives else None

    @property
    def private(self) -> bool | None:
        return self._flag("private")

    @property
    def public(self) -> bool | None:
        return self._flag("public")

    @property
    def no_store(self) -> bool | None:
        return self._flag("no-store")

    @property
    def max_age(self) -> int | None:
        value = self.directives.get("max-age")
        return int(value) if value is not None else None


@dataclasses.dataclass
class Response:
    """A test response, as either framework's test client returned it."""

    status_code: int
    content: bytes
    headers: Headers

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> t.Any:
        return json.loads(self.text)

    def get_json(self) -> t.Any:
        return self.json()

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @property
    def set_cookie_headers(self) -> list[str]:
        return self.headers.getlist("Set-Cookie")

    @property
    def mimetype(self) -> str:
        value = self.headers.get("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()

    @property
    def is_json(self) -> bool:
        return self.mimetype == "application/json"

    @property
    def vary(self) -> list[str]:
        """The names of every ``Vary`` header."""
        return [
            name.strip()
            for value in self.headers.getlist("Vary")
            for name in value.split(",")
            if name.strip()
        ]

    @property
    def cache_control(self) -> CacheControl:
        return CacheControl.parse(", ".join(self.headers.getlist("Cache-Control")))


@dataclasses.dataclass(frozen=True)
class StoredCookie:
    """A cookie as the test client keeps it."""

    value: str
    http_only: bool
    same_site: str | None
    secure: bool


class Client(t.Protocol):
    """A test client of one visitor, the same for every adapter.

    A path may be a whole URL (``https://localhost/consent``) to change the
    scheme of one request.
    """

    def get(self, path: str, *, headers: RequestHeaders | None = None) -> Response: ...

    def post(
        self,
        path: str,
        *,
        data: cabc.Mapping[str, t.Any] | None = None,
        json: t.Any = None,
        headers: RequestHeaders | None = None,
        content: bytes | None = None,
    ) -> Response: ...

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: cabc.Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Response: ...

    def set_cookie(self, name: str, value: str, *, path: str = "/") -> None: ...

    def get_cookie(self, name: str) -> str | None: ...

    def stored_cookie(self, name: str) -> StoredCookie | None: ...

    def delete_cookie(self, name: str) -> None: ...


def _headers(headers: RequestHeaders | None) -> t.Any:
    if headers is None:
        return {}
    if isinstance(headers, cabc.Mapping):
        return dict(headers)
    return list(headers)


class FlaskClient:
    def __init__(self, app: t.Any, *, use_cookies: bool = True, root_path: str = ""):
        self._client = app.test_client(use_cookies=use_cookies)
        self._base_url = f"http://localhost{root_path}/"

    def _request_kwargs(
        self, path: str, headers: RequestHeaders | None
    ) -> dict[str, t.Any]:
        # The test client computes Content-Length from the body it sends; a
        # WSGI server passes on what the client declared, even a lie.
        sent = _headers(headers)
        kwargs: dict[str, t.Any] = {"headers": sent, "base_url": self._base(path)}
        if isinstance(sent, dict):
            for name in [n for n in sent if n.lower() == "content-length"]:
                kwargs["environ_overrides"] = {"CONTENT_LENGTH": sent.pop(name)}
        return kwargs

    @staticmethod
    def _wrap(response: t.Any) -> Response:
        # Closed as a WSGI server closes what it sent: a static file's too.
        with response:
            return Response(
                response.status_code,
                response.get_data(),
                Headers(response.headers.items()),
            )

    def _base(self, path: str) -> str | None:
        return None if "://" in path else self._base_url

    def get(self, path: str, *, headers: RequestHeaders | None = None) -> Response:
        return self._wrap(self._client.get(path, **self._request_kwargs(path, headers)))

    def post(
        self,
        path: str,
        *,
        data: cabc.Mapping[str, t.Any] | None = None,
        json: t.Any = None,
        headers: RequestHeaders | None = None,
        content: bytes | None = None,
    ) -> Response:
        kwargs = self._request_kwargs(path, headers)
        if json is not None:
            kwargs["json"] = json
        elif content is not None:
            kwargs["data"] = content
        else:
            kwargs["data"] = dict(data or {})
        return self._wrap(self._client.post(path, **kwargs))

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: cabc.Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Response:
        kwargs = self._request_kwargs(path, headers)
        return self._wrap(
            self._client.open(path, method=method, data=content, **kwargs)
        )

    def set_cookie(self, name: str, value: str, *, path: str = "/") -> None:
        self._client.set_cookie(name, value, path=path)

    def get_cookie(self, name: str) -> str | None:
        cookie = self._client.get_cookie(name)
        return None if cookie is None else cookie.value

    def stored_cookie(self, name: str) -> StoredCookie | None:
        cookie = self._client.get_cookie(name)
        if cookie is None:
            return None
        return StoredCookie(
            cookie.value, cookie.http_only, cookie.same_site, cookie.secure
        )

    def delete_cookie(self, name: str) -> None:
        self._client.delete_cookie(name)


class ASGIClient:
    def __init__(self, app: t.Any, *, use_cookies: bool = True, root_path: str = ""):
        from starlette.testclient import TestClient

        self._raw: list[tuple[bytes, bytes]] = []

        async def with_raw_headers(scope: t.Any, receive: t.Any, send: t.Any) -> None:
            # The test client sends header values as UTF-8; a server passes
            # on the bytes the client sent, which the app reads as Latin-1.
            if scope["type"] == "http" and self._raw:
                names = {name for name, _ in self._raw}
                kept = [(k, v) for k, v in scope["headers"] if k not in names]
                scope = {**scope, "headers": kept + self._raw}
            await app(scope, receive, send)

        self._client = TestClient(
            with_raw_headers, base_url="http://localhost", root_path=root_path
        )
        self._use_cookies = use_cookies
        self._root_path = root_path

    def _url(self, path: str) -> str:
        # ASGI: the path of a mounted app's request includes its root path.
        return path if "://" in path else self._root_path + path

    def _wire(self, headers: RequestHeaders | None) -> t.Any:
        """The headers for the test client; those with values beyond ASCII
        go into the scope as their Latin-1 bytes instead."""
        sent = _headers(headers)
        pairs = list(sent.items()) if isinstance(sent, dict) else sent
        self._raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in pairs
            if not value.isascii()
        ]
        kept = [(name, value) for name, value in pairs if value.isascii()]
        return dict(kept) if isinstance(sent, dict) else kept

    def _wrap(self, response: t.Any) -> Response:
        if not self._use_cookies:
            self._client.cookies.clear()
        return Response(
            response.status_code,
            response.content,
            Headers(response.headers.multi_items()),
        )

    def get(self, path: str, *, headers: RequestHeaders | None = None) -> Response:
        return self._wrap(
            self._client.get(
                self._url(path), headers=self._wire(headers), follow_redirects=False
            )
        )

    def post(
        self,
        path: str,
        *,
        data: cabc.Mapping[str, t.Any] | None = None,
        json: t.Any = None,
        headers: RequestHeaders | None = None,
        content: bytes | None = None,
    ) -> Response:
        kwargs: dict[str, t.Any] = {
            "headers": self._wire(headers),
            "follow_redirects": False,
        }
        if json is not None:
            kwargs["json"] = json
        elif content is not None:
            kwargs["content"] = content
        else:
            kwargs["data"] = dict(data or {})
        return self._wrap(self._client.post(self._url(path), **kwargs))

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: cabc.Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Response:
        response = self._client.request(
            method,
            self._url(path),
            headers=self._wire(headers),
            content=content,
            follow_redirects=False,
        )
        return self._wrap(response)

    def set_cookie(self, name: str, value: str, *, path: str = "/") -> None:
        # The jar keeps what the app set under "localhost.local" (its name
        # for a host without a dot): replace that cookie, as a browser would.
        self._client.cookies.set(name, value, domain="localhost.local", path=path)

    def _cookie(self, name: str) -> t.Any:
        for cookie in self._client.cookies.jar:
            if cookie.name == name:
                return cookie
        return None

    def get_cookie(self, name: str) -> str | None:
        cookie = self._cookie(name)
        return None if cookie is None else t.cast(str, cookie.value)

    def stored_cookie(self, name: str) -> StoredCookie | None:
        cookie = self._cookie(name)
        if cookie is None:
            return None
        rest = {key.lower(): value for key, value in cookie._rest.items()}
        return StoredCookie(
            cookie.value, "httponly" in rest, rest.get("samesite"), bool(cookie.secure)
        )

    def delete_cookie(self, name: str) -> None:
        for cookie in list(self._client.cookies.jar):
            if cookie.name == name:
                self._client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)


@dataclasses.dataclass
class App:
    """A test app of one adapter."""

    adapter: Adapter
    #: The Flask app, or the Starlette app.
    native: t.Any
    #: The core :class:`consent.site.Site`.
    site: t.Any
    #: Whether unknown keys raise (Flask: debug or testing; ASGI: ``debug``).
    debug: bool

    def client(self, *, use_cookies: bool = True, root_path: str = "") -> Client:
        """A new visitor (``use_cookies=False``: a client that keeps no
        cookies, for requests that send their own ``Cookie`` header;
        ``root_path``: the app is mounted under that prefix, and paths are
        given within the app)."""
        if self.adapter.name == "flask":
            return FlaskClient(
                self.native, use_cookies=use_cookies, root_path=root_path
            )
        return ASGIClient(self.native, use_cookies=use_cookies, root_path=root_path)

    def native_client(self) -> t.Any:
        """The framework's own test client (what ``consent.*.testing.choose``
        takes)."""
        if self.adapter.name == "flask":
            return self.native.test_client()
        from starlette.testclient import TestClient

        return TestClient(self.native, base_url="http://localhost")

    @property
    def testing(self) -> t.Any:
        """The adapter's compliance checks: ``consent.flask.testing`` or
        ``consent.asgi.testing``; they take :attr:`native`."""
        if self.adapter.name == "flask":
            from consent.flask import testing
        else:
            from consent.asgi import testing
        return testing

    def stored_state(self, client: Client) -> ConsentState:
        """The consent state in ``client``'s cookie, decoded by this app."""
        value = client.get_cookie(self.site.settings.cookie_name)
        assert value is not None, "no consent cookie"
        state: ConsentState | None = self.site.codec.decode(
            value, datetime.now(timezone.utc)
        )
        assert state is not None, "the consent cookie does not decode"
        return state

    def encode(self, state: ConsentState) -> str:
        """A consent cookie value of ``state``, signed by this app."""
        value: str = self.site.codec.encode(state)
        return value

    def receipts(self, consent_id: str) -> list[Receipt]:
        """The receipts this app kept for ``consent_id``, oldest first."""
        keeper = self.site.receipts
        assert keeper is not None, "receipts are off (CONSENT_RECEIPTS_URL=None)"
        found: list[Receipt] = keeper.store().for_consent_id(consent_id)
        return found


class Adapter:
    """Builds test apps of one adapter."""

    def __init__(
        self, name: str, folder: Path, request: pytest.FixtureRequest | None = None
    ) -> None:
        self.name = name
        self._folder = folder
        self._request = request
        self._count = itertools.count()
        self.apps: list[App] = []

    def make_app(
        self,
        policy: Policy | None = None,
        views: cabc.Mapping[str, View] | None = None,
        *,
        other_cookies: CookieSpecs = (),
        templates: Path | None = None,
        **config: t.Any,
    ) -> App:
        """An app with ``views`` (``/`` and ``/plain`` by default) and the
        given ``CONSENT_*`` settings (``TESTING`` and ``DEBUG`` too);
        receipts go to a temporary folder.

        :param other_cookies: Cookies another part of the app sets on every
            response, after the view (a Flask ``after_request`` hook, an ASGI
            middleware inside the consent middleware).
        :param templates: A folder of the app's templates, which may override
            the library's (``consent/banner.html``...).
        """
        policy = policy or make_policy()
        routes = dict(DEFAULT_VIEWS if views is None else views)
        folder = self._folder / f"{self.name}-{next(self._count)}"
        make = _flask_app if self.name == "flask" else _asgi_app
        app = make(self, policy, routes, folder, other_cookies, templates, config)
        self.apps.append(app)
        return app

    def selector(
        self, select: cabc.Callable[[RequestView], t.Any]
    ) -> cabc.Callable[..., t.Any]:
        """A ``CONSENT_*`` selector that calls ``select`` with the current
        request's headers and query arguments, on this adapter."""
        if self.name == "flask":

            def flask_selector() -> t.Any:
                from flask import request

                return select(RequestView(request.headers, request.args))

            return flask_selector

        def asgi_selector(request: t.Any) -> t.Any:
            return select(RequestView(request.headers, request.query_params))

        return asgi_selector

    def close(self) -> None:
        """Close every app's receipt store."""
        for app in self.apps:
            app.site.close()


@dataclasses.dataclass(frozen=True)
class RequestView:
    """What a selector may read of the request, on any adapter."""

    headers: cabc.Mapping[str, str]
    args: cabc.Mapping[str, str]


def _flask_app(
    adapter: Adapter,
    policy: Policy,
    routes: dict[str, View],
    folder: Path,
    other_cookies: CookieSpecs,
    templates: Path | None,
    config: dict[str, t.Any],
) -> App:
    from flask import Flask
    from flask import Response as FlaskResponse
    from flask import jsonify
    from flask import render_template_string
    from flask import stream_template_string

    from consent.flask import Consent
    from consent.flask import current_consent

    app = Flask(
        "conformance",
        instance_path=str(folder),
        template_folder=str(templates) if templates else "templates",
    )
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY)
    app.config.update(config)
    consent = Consent(app, policy)

    def make_view(view: View) -> cabc.Callable[..., t.Any]:
        def handler() -> t.Any:
            if view.data is not None:
                response = jsonify(view.data(current_consent))
            elif view.stream:
                response = FlaskResponse(
                    stream_template_string(view.body, **view.context),
                    content_type=view.content_type,
                )
            else:
                response = FlaskResponse(
                    render_template_string(view.body, **view.context),
                    content_type=view.content_type,
                )
            response.status_code = view.status
            for name, value, options in view.cookies:
                response.set_cookie(name, value, **options)
            for name in view.deletes:
                response.delete_cookie(name)
            for name, value in view.headers:
                response.headers.add(name, value)
            return response

        if view.requires is not None:
            handler = consent.requires(view.requires)(handler)
        return handler

    for index, (path, view) in enumerate(routes.items()):
        app.add_url_rule(path, f"view_{index}", make_view(view))
    if other_cookies:

        def set_other_cookies(response: FlaskResponse) -> FlaskResponse:
            for name, value, options in other_cookies:
                response.set_cookie(name, value, **options)
            return response

        app.after_request(set_other_cookies)
    return App(adapter, app, consent.site(app), app.debug or app.testing)


def _asgi_app(
    adapter: Adapter,
    policy: Policy,
    routes: dict[str, View],
    folder: Path,
    other_cookies: CookieSpecs,
    templates: Path | None,
    config: dict[str, t.Any],
) -> App:
    import jinja2
    from starlette.applications import Starlette
    from starlette.datastructures import MutableHeaders
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.responses import Response as StarletteResponse
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from consent.asgi import ConsentMiddleware
    from consent.asgi import current_consent
    from consent.asgi import requires
    from consent.asgi.testing import find_middleware

    # The app's own templates, as Jinja2Templates(directory=...) loads them.
    loader: jinja2.BaseLoader = (
        jinja2.FileSystemLoader(str(templates)) if templates else jinja2.DictLoader({})
    )
    env = jinja2.Environment(loader=loader, autoescape=True)

    def make_view(view: View) -> cabc.Callable[..., t.Any]:
        async def handler(request: Request) -> StarletteResponse:
            if view.requires is not None:
                await requires(view.requires)()
            response: StarletteResponse
            if view.data is not None:
                response = JSONResponse(view.data(current_consent))
            elif view.stream:
                chunks = env.from_string(view.body).generate(**view.context)
                response = StreamingResponse(
                    (chunk.encode() for chunk in chunks), media_type=view.content_type
                )
            else:
                response = StarletteResponse(
                    env.from_string(view.body).render(**view.context),
                    media_type=view.content_type,
                )
            response.status_code = view.status
            if view.content_type and view.data is None:
                response.headers["content-type"] = view.content_type
            for name, value, options in view.cookies:
                response.set_cookie(name, value, **options)
            for name in view.deletes:
                response.delete_cookie(name)
            for name, value in view.headers:
                response.headers.append(name, value)
            return response

        return handler

    class OtherCookies:
        """Another part of the app, inside the consent middleware, that sets
        cookies on every response."""

        def __init__(self, app: t.Any) -> None:
            self.app = app

        async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
            async def wrapped(message: t.Any) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableHeaders(scope=message)
                    for name, value, options in other_cookies:
                        cookie = StarletteResponse()
                        cookie.set_cookie(name, value, **options)
                        headers.append("set-cookie", cookie.headers["set-cookie"])
                await send(message)

            await self.app(scope, receive, wrapped)

    config = dict(config)
    testing = config.pop("TESTING", True)
    debug = config.pop("DEBUG", False)
    settings = {
        key: value for key, value in config.items() if key.startswith("CONSENT_")
    }
    middleware = [
        Middleware(
            ConsentMiddleware,
            policy=policy,
            secret_key=SECRET_KEY,
            config=settings,
            folder=folder,
            templates=env,
            debug=bool(testing or debug),
        )
    ]
    if other_cookies:
        middleware.append(Middleware(OtherCookies))
    app = Starlette(
        routes=[Route(path, make_view(view)) for path, view in routes.items()],
        middleware=middleware,
    )
    found = find_middleware(app)
    return App(adapter, app, found.site, found.debug)


@pytest.fixture(params=["flask", "asgi"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> cabc.Iterator[Adapter]:
    made = Adapter(request.param, tmp_path, request)
    yield made
    made.close()
