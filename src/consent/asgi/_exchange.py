"""The app's response on its way out of the ASGI middleware.

:class:`Exchange` is the ``send`` the app gets: it applies the core's
decisions when the response starts and puts the banner into an HTML body,
holding back only what comes before ``<body>``.
"""

from __future__ import annotations

import functools
import typing as t

from ..encoding import Recoder
from ..headers import merge_vary
from ..headers import private_cache_control
from ..injection import StreamInjector

if t.TYPE_CHECKING:
    from starlette.types import Message
    from starlette.types import Scope
    from starlette.types import Send

    from ._context import RequestState
    from .middleware import ConsentMiddleware


class Exchange:
    """One response of the app on its way out: the ``send`` the app gets.

    It applies the core's decisions when the response starts, and puts the
    banner into an HTML body, holding back only what comes before
    ``<body>``. A response nothing of consent touched goes out as it is.
    """

    __slots__ = (
        "_mw",
        "_scope",
        "_send",
        "_state",
        "started",
        "_held",
        "_injector",
        "_recoder",
    )

    def __init__(
        self,
        middleware: ConsentMiddleware,
        scope: Scope,
        send: Send,
        state: RequestState,
    ) -> None:
        self._mw = middleware
        self._scope = scope
        self._send = send
        self._state = state
        #: True once the response's start went out.
        self.started = False
        self._held: Message | None = None
        self._injector: StreamInjector | None = None
        self._recoder: Recoder | None = None

    async def _start(self, message: Message, added: int = 0) -> None:
        self.started = True
        visitor = self._state.visitor
        headers = message.get("headers", ())
        if not visitor.touched and not added and self._recoder is None:
            for name, _ in headers:
                if name.lower() == b"set-cookie":
                    break
            else:
                # Nothing of this response depended on consent: as it is.
                await self._send(message)
                return
        headers = list(headers)
        if self._recoder is not None:
            # The encoded length is known only at the end: send chunked.
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers = await self._mw.finish_headers(self._scope, visitor, headers, added)
        await self._send({**message, "headers": headers})

    async def send(self, message: Message) -> None:
        """What the app calls to send a message of its response."""
        injector = self._injector
        if injector is None:
            if message["type"] != "http.response.start":
                await self._send(message)
                return
            injects, coding = self._mw.injects(message)
            if not injects:
                await self._start(message)
                return
            self._held = message
            self._injector = StreamInjector(self._state.page.injection)
            self._recoder = Recoder(coding) if coding else None
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        recoder = self._recoder
        more = message.get("more_body", False)
        body = message.get("body", b"")
        out = injector.feed(recoder.decode(body) if recoder else body)
        if not more:
            out += injector.close()
        if recoder is not None:
            out = recoder.encode(out, final=not more)
        held = self._held
        if held is not None and (injector.decided or not more):
            self._held = None
            await self._start(held, 0 if recoder else injector.added)
        if self._held is None and (out or not more):
            await self._send(
                {"type": "http.response.body", "body": out, "more_body": more}
            )


def mark_private(headers: list[tuple[bytes, bytes]], vary: tuple[str, ...]) -> None:
    """Mark a response that depends on the visitor's consent: ``Vary`` and
    ``Cache-Control: private`` (merged with those the app set)."""
    values: dict[bytes, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"vary" or lowered == b"cache-control":
            known = values.get(lowered)
            text = value.decode("latin-1")
            values[lowered] = f"{known}, {text}" if known else text
    if values:
        headers[:] = [
            (k, v) for k, v in headers if k.lower() not in (b"vary", b"cache-control")
        ]
    headers.append((b"vary", _vary_value(values.get(b"vary"), vary)))
    control = values.get(b"cache-control")
    headers.append(
        (
            b"cache-control",
            private_cache_control(control).encode("latin-1") if control else b"private",
        )
    )


@functools.lru_cache(maxsize=64)
def _vary_value(existing: str | None, vary: tuple[str, ...]) -> bytes:
    return merge_vary(existing, vary).encode("latin-1")
