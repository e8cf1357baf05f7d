"""Reading and writing compressed response bodies, to put the banner in.

A compression layer can run before the adapter sees a response (Flask-Compress
in ``after_request``, Starlette's ``GZipMiddleware`` inside the consent
middleware). The banner still belongs in the page: :class:`Recoder` decodes
the body chunk by chunk, lets the adapter insert the banner, and encodes it
again with the same algorithm. gzip and deflate come with Python; ``br``
needs ``brotli`` (or ``brotlicffi``) and ``zstd`` needs ``backports.zstd``
(or Python 3.14's ``compression.zstd``), which Flask-Compress installs.
"""

from __future__ import annotations

import importlib
import typing as t
import zlib


class _Decoder(t.Protocol):
    def decompress(self, data: bytes) -> bytes: ...


class _Encoder(t.Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Brotli:
    """brotli's and brotlicffi's streaming objects, behind zlib's method names."""

    def __init__(self, module: t.Any, compress: bool) -> None:
        self._object = module.Compressor() if compress else module.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        process = getattr(self._object, "process", None) or self._object.decompress
        return t.cast(bytes, process(data))

    def compress(self, data: bytes) -> bytes:
        process = getattr(self._object, "process", None) or self._object.compress
        return t.cast(bytes, process(data))

    def flush(self) -> bytes:
        return t.cast(bytes, self._object.finish())


class _Zstd:
    """A zstd stream (compression.zstd or backports.zstd), behind zlib's
    method names."""

    def __init__(self, module: t.Any, compress: bool) -> None:
        self._module = module
        self._object = (
            module.ZstdCompressor() if compress else module.ZstdDecompressor()
        )

    def decompress(self, data: bytes) -> bytes:
        return t.cast(bytes, self._object.decompress(data))

    def compress(self, data: bytes) -> bytes:
        return t.cast(bytes, self._object.compress(data))

    def flush(self) -> bytes:
        return t.cast(
            bytes, self._object.flush(self._module.ZstdCompressor.FLUSH_FRAME)
        )


def _module(*names: str) -> t.Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _pair(
    encoding: str,
) -> tuple[t.Callable[[], _Decoder], t.Callable[[], _Encoder]] | None:
    if encoding in ("gzip", "x-gzip"):
        return (
            lambda: zlib.decompressobj(wbits=31),
            lambda: zlib.compressobj(wbits=31),
        )
    if encoding == "deflate":
        # HTTP's "deflate" is the zlib format (RFC 9110 section 8.4.1.2).
        return (lambda: zlib.decompressobj(), lambda: zlib.compressobj())
    if encoding == "br":
        brotli = _module("brotli", "brotlicffi")
        if brotli is not None:
            return (lambda: _Brotli(brotli, False), lambda: _Brotli(brotli, True))
    if encoding == "zstd":
        zstd = _module("compression.zstd", "backports.zstd")
        if zstd is not None:
            return (lambda: _Zstd(zstd, False), lambda: _Zstd(zstd, True))
    return None


def can_recode(encoding: str) -> bool:
    """True when a body in ``encoding`` can be decoded and encoded again
    (``identity``, no encoding, always can)."""
    encoding = encoding.strip().lower()
    return encoding in ("", "identity") or _pair(encoding) is not None


class Recoder:
    """Decode a compressed body and encode it again, chunk by chunk.

    :param encoding: The ``Content-Encoding``: ``gzip``, ``deflate``, ``br``
        or ``zstd``.
    :raises LookupError: for an encoding it cannot handle (see
        :func:`can_recode`).
    """

    def __init__(self, encoding: str) -> None:
        pair = _pair(encoding.strip().lower())
        if pair is None:
            raise LookupError(f"No codec for Content-Encoding {encoding!r}.")
        self._decoder = pair[0]()
        self._encoder = pair[1]()

    def decode(self, chunk: bytes) -> bytes:
        """The plain bytes of a compressed chunk (possibly none yet)."""
        return self._decoder.decompress(chunk)

    def encode(self, data: bytes, *, final: bool = False) -> bytes:
        """Compressed bytes of plain ``data``; ``final`` ends the stream."""
        out = self._encoder.compress(data) if data else b""
        return out + self._encoder.flush() if final else out


def content_coding(header: str | None) -> str | None:
    """The compression of a body from its ``Content-Encoding`` header, or
    ``None`` for none (``identity``)."""
    coding = (header or "").strip().lower()
    return None if coding in ("", "identity") else coding


def recode(
    body: bytes, encoding: str, change: t.Callable[[bytes], bytes | None]
) -> bytes | None:
    """``body`` decoded, changed by ``change`` and encoded again; ``None``
    when ``change`` returns ``None`` (nothing to change)."""
    recoder = Recoder(encoding)
    changed = change(recoder.decode(body))
    if changed is None:
        return None
    return recoder.encode(changed, final=True)
