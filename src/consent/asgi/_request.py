"""The ASGI scope as the core reads it, and a small sender of responses."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

if t.TYPE_CHECKING:
    from starlette.types import Message
    from starlette.types import Scope
    from starlette.types import Send


class ScopeRequest:
    """An HTTP scope as a :class:`consent.visitor.RequestInfo`.

    Cookies are read from the scope on first use; a cookie sent twice (as a
    sibling subdomain can make a browser do) keeps both values.
    """

    __slots__ = ("_scope", "_cookies")

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._cookies: list[tuple[str, str]] | None = None

    @property
    def is_secure(self) -> bool:
        return self._scope.get("scheme") in ("https", "wss")

    def header(self, name: str) -> str | None:
        # ASGI servers give header names in lower case; a visitor asks for a
        # few headers, so a scan beats building a map of them all.
        key = name.lower().encode("latin-1")
        values = [v for k, v in self._scope["headers"] if k == key]
        if not values:
            return None
        return ", ".join(v.decode("latin-1") for v in values)

    def _pairs(self) -> list[tuple[str, str]]:
        if self._cookies is None:
            pairs = []
            for key, value in self._scope["headers"]:
                # ASGI gives header names in lower case.
                if key != b"cookie":
                    continue
                # RFC 6265 section 5.4: "name=value" pairs joined by "; ".
                for part in value.decode("latin-1").split(";"):
                    name, sep, text = part.partition("=")
                    if not sep:
                        continue
                    text = text.strip()
                    if len(text) >= 2 and text[0] == text[-1] == '"':
                        text = text[1:-1]
                    pairs.append((name.strip(), text))
            self._cookies = pairs
        return self._cookies

    def cookie_values(self, name: str) -> list[str]:
        return [value for key, value in self._pairs() if key == name]

    def cookie_names(self) -> cabc.Iterable[str]:
        return dict.fromkeys(key for key, _ in self._pairs())


class Sender:
    """Sends one response, remembering whether it has started, with
    ``headers`` added to its start."""

    __slots__ = ("_send", "started", "_headers")

    def __init__(
        self, send: Send, headers: cabc.Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        self._send = send
        #: True once the response's start went out.
        self.started = False
        self._headers = headers

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if self._headers:
                headers = [*message.get("headers", ()), *self._headers]
                message = {**message, "headers": headers}
        await self._send(message)

    async def respond(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: cabc.Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Send a whole response that needs nothing of consent."""
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})
