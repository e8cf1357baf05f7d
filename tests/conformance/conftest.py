"""One conformance suite, every adapter.

Each test here takes the ``adapter`` fixture, which runs it once on the Flask
extension and once on the ASGI middleware (a Starlette app), and builds its
app with ``adapter.make_app(policy, views, **config)`` from adapter-neutral
:class:`View` declarations. Tests talk to the app through :class:`Client`,
which gives both frameworks' test clients one shape.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import itertools
import json
import typing as t
from pathlib import Path

import pytest

from consent import Policy
from tests.conftest import PAGE
from tests.conftest import SECRET_KEY
from tests.conftest import make_policy

#: The default views: ``/`` renders :data:`PAGE`, ``/plain`` answers text
#: without asking about consent.
PLAIN = "plain text"


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
    """

    body: str = ""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    cookies: tuple[tuple[str, str, dict[str, t.Any]], ...] = ()
    deletes: tuple[str, ...] = ()
    requires: str | None = None
    data: cabc.Callable[[t.Any], t.Any] | None = None
    stream: bool = False
    headers: tuple[tuple[str, str], ...] = ()


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


@dataclasses.dataclass
class Response:
    """A test response, as either framework's test client returned it."""

    status_code: int
    text: str
    headers: Headers

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


class Client(t.Protocol):
    """A test client of one visitor, the same for every adapter."""

    def get(
        self, path: str, *, headers: cabc.Mapping[str, str] | None = None
    ) -> Response: ...

    def post(
        self,
        path: str,
        *,
        data: cabc.Mapping[str, t.Any] | None = None,
        json: t.Any = None,
        headers: cabc.Mapping[str, str] | None = None,
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

    def delete_cookie(self, name: str) -> None: ...


class FlaskClient:
    def __init__(self, app: t.Any, *, use_cookies: bool = True) -> None:
        self._client = app.test_client(use_cookies=use_cookies)

    @staticmethod
    def _request_kwargs(headers: cabc.Mapping[str, str] | None) -> dict[str, t.Any]:
        # The test client computes Content-Length from the body it sends; a
        # WSGI server passes on what the client declared, even a lie.
        sent = dict(headers or {})
        kwargs: dict[str, t.Any] = {"headers": sent}
        for name in [n for n in sent if n.lower() == "content-length"]:
            kwargs["environ_overrides"] = {"CONTENT_LENGTH": sent.pop(name)}
        return kwargs

    @staticmethod
    def _wrap(response: t.Any) -> Response:
        # Closed as a WSGI server closes what it sent: a static file's too.
        with response:
            return Response(
                response.status_code,
                response.get_data(as_text=True),
                Headers(response.headers.items()),
            )

    def get(
        self, path: str, *, headers: cabc.Mapping[str, str] | None = None
    ) -> Response:
        return self._wrap(self._client.get(path, **self._request_kwargs(headers)))

    def post(
        self,
        path: str,
        *,
        data: cabc.Mapping[str, t.Any] | None = None,
        json: t.Any = None,
        headers: cabc.Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Response:
        kwargs = self._request_kwargs(headers)
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
        kwargs = self._request_kwargs(headers)
        return self._wrap(
            self._client.open(path, method=method, data=content, **kwargs)
        )

    def set_cookie(self, name: str, value: str, *, path: str = "/") -> None:
        self._client.set_cookie(name, value, path=path)

    def get_cookie(self, name: str) -> str | None:
        cookie = self._client.get_cookie(name)
        return None if cookie is None else cookie.value

    def delete_cookie(self, name: str) -> None:
        self._client.delete_cookie(name)


class ASGIClient:
    def __init__(self, app: t.Any, *, use_cookies: bool = True) -> None:
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

        self._client = TestClient(with_raw_headers, base_url="http://localhost")
        self._use_cookies = use_cookies

    def _wire(self, headers: cabc.Mapping[str, str] | None) -> dict[str, str]:
        """The headers for the test client; those with values beyond ASCII
        go into the scope as their Latin-1 bytes instead."""
        sent = dict(headers or {})
        self._raw = [
            (name.lower().encode("latin-1"), sent.pop(name).encode("latin-1"))
            for name in [n for n, v in sent.items() if not v.isascii()]
        ]
        return sent

    def _wrap(self, response: t.Any) -> Response:
        if not self._use_cookies:
            self._client.cookies.clear()
        return Response(
            response.status_code, response.text, Headers(response.headers.multi_items())
        )

    def get(
        self, path: str, *, headers: cabc.Mapping[str, str] | None = None
    ) -> Response:
        return self._wrap(
            self._client.get(path, headers=self._wire(headers), follow_redirects=False)
        )

    def post(
        self,
        path: str,
        *,
        data: cabc.Mapping[str, t.Any] | None = None,
        json: t.Any = None,
        headers: cabc.Mapping[str, str] | None = None,
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
        return self._wrap(self._client.post(path, **kwargs))

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
            path,
            headers=self._wire(headers),
            content=content,
            follow_redirects=False,
        )
        return self._wrap(response)

    def set_cookie(self, name: str, value: str, *, path: str = "/") -> None:
        self._client.cookies.set(name, value, domain="localhost", path=path)

    def get_cookie(self, name: str) -> str | None:
        for cookie in self._client.cookies.jar:
            if cookie.name == name:
                return t.cast(str, cookie.value)
        return None

    def delete_cookie(self, name: str) -> None:
        for cookie in list(self._client.cookies.jar):
            if cookie.name == name:
                self._client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)


@dataclasses.dataclass
class App:
    """A test app of one adapter."""

    adapter: Adapter
    native: t.Any
    site: t.Any

    def client(self, *, use_cookies: bool = True) -> Client:
        """A new visitor (``use_cookies=False``: a client that keeps no
        cookies, for requests that send their own ``Cookie`` header)."""
        if self.adapter.name == "flask":
            return FlaskClient(self.native, use_cookies=use_cookies)
        return ASGIClient(self.native, use_cookies=use_cookies)


class Adapter:
    """Builds test apps of one adapter."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self._folder = folder
        self._count = itertools.count()
        self.apps: list[App] = []

    def make_app(
        self,
        policy: Policy | None = None,
        views: cabc.Mapping[str, View] | None = None,
        **config: t.Any,
    ) -> App:
        """An app with ``views`` (``/`` and ``/plain`` by default) and the
        given ``CONSENT_*`` settings; receipts go to a temporary folder."""
        policy = policy or make_policy()
        routes = dict(DEFAULT_VIEWS if views is None else views)
        folder = self._folder / f"{self.name}-{next(self._count)}"
        make = _flask_app if self.name == "flask" else _asgi_app
        app = make(self, policy, routes, folder, config)
        self.apps.append(app)
        return app

    def close(self) -> None:
        """Close every app's receipt store."""
        for app in self.apps:
            app.site.close()


def _flask_app(
    adapter: Adapter,
    policy: Policy,
    routes: dict[str, View],
    folder: Path,
    config: dict[str, t.Any],
) -> App:
    from flask import Flask
    from flask import Response as FlaskResponse
    from flask import jsonify
    from flask import render_template_string
    from flask import stream_template_string

    from consent.flask import Consent
    from consent.flask import current_consent

    app = Flask("conformance", instance_path=str(folder))
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY)
    app.config.update(config)
    consent = Consent(app, policy)

    def make_view(view: View) -> cabc.Callable[..., t.Any]:
        def handler() -> t.Any:
            if view.data is not None:
                response = jsonify(view.data(current_consent))
            elif view.stream:
                response = FlaskResponse(
                    stream_template_string(view.body), content_type=view.content_type
                )
            else:
                response = FlaskResponse(
                    render_template_string(view.body), content_type=view.content_type
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
    return App(adapter, app, consent.site(app))


def _asgi_app(
    adapter: Adapter,
    policy: Policy,
    routes: dict[str, View],
    folder: Path,
    config: dict[str, t.Any],
) -> App:
    import jinja2
    from starlette.applications import Starlette
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

    env = jinja2.Environment(autoescape=True)

    def make_view(view: View) -> cabc.Callable[..., t.Any]:
        async def handler(request: Request) -> StarletteResponse:
            if view.requires is not None:
                await requires(view.requires)()
            response: StarletteResponse
            if view.data is not None:
                response = JSONResponse(view.data(current_consent))
            elif view.stream:
                chunks = env.from_string(view.body).generate()
                response = StreamingResponse(
                    (chunk.encode() for chunk in chunks), media_type=view.content_type
                )
            else:
                response = StarletteResponse(
                    env.from_string(view.body).render(), media_type=view.content_type
                )
            response.status_code = view.status
            if view.content_type:
                response.headers["content-type"] = view.content_type
            for name, value, options in view.cookies:
                response.set_cookie(name, value, **options)
            for name in view.deletes:
                response.delete_cookie(name)
            for name, value in view.headers:
                response.headers.append(name, value)
            return response

        return handler

    debug = config.pop("TESTING", True) or config.pop("DEBUG", False)
    settings = {
        key: value for key, value in config.items() if key.startswith("CONSENT_")
    }
    app = Starlette(
        routes=[Route(path, make_view(view)) for path, view in routes.items()],
        middleware=[
            Middleware(
                ConsentMiddleware,
                policy=policy,
                secret_key=SECRET_KEY,
                config=settings,
                folder=folder,
                templates=env,
                debug=debug,
            )
        ],
    )
    return App(adapter, app, find_middleware(app).site)


@pytest.fixture(params=["flask", "asgi"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> cabc.Iterator[Adapter]:
    made = Adapter(request.param, tmp_path)
    yield made
    made.close()
