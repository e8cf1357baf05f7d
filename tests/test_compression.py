"""The banner reaches pages that a compression layer encoded first:
Flask-Compress on Flask, Starlette's GZipMiddleware under ASGI."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import brotli
import pytest
from backports import zstd
from flask import Flask
from flask import render_template_string
from flask import stream_template_string
from flask_compress import Compress
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from consent.asgi import ConsentMiddleware
from consent.encoding import Recoder
from consent.encoding import can_recode
from consent.flask import Consent
from tests.conftest import SECRET_KEY
from tests.conftest import make_policy

BANNER = b'id="cookie-consent"'
#: Long enough for every compressor to bother.
PAGE = "<!doctype html><html><head><title>Lake</title></head><body>{}</body></html>"
ARTICLE = "<p>West Lake lies on the western edge of the old city.</p>" * 60

DECODE = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "zstd": zstd.decompress,
}


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_recoder_round_trip(coding: str) -> None:
    assert can_recode(coding)
    plain = ARTICLE.encode() * 5
    encoder = Recoder(coding)
    encoded = b"".join(
        [encoder.encode(plain[:1000]), encoder.encode(plain[1000:], final=True)]
    )
    assert DECODE[coding](encoded) == plain
    decoder = Recoder(coding)
    decoded = b"".join(
        decoder.decode(encoded[i : i + 100]) for i in range(0, len(encoded), 100)
    )
    assert decoded == plain


def test_unknown_codings_are_not_recoded() -> None:
    assert not can_recode("compress")
    assert can_recode("identity") and can_recode("")
    with pytest.raises(LookupError):
        Recoder("compress")


def _flask_app(tmp_path: Path, algorithm: str) -> Flask:
    app = Flask("compressed", instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SECRET_KEY=SECRET_KEY,
        CONSENT_RECEIPTS_URL=None,
        COMPRESS_ALGORITHM=[algorithm],
        COMPRESS_ALGORITHM_STREAMING=[algorithm],
        COMPRESS_STREAMS=True,
    )
    # Consent first, Flask-Compress second: its hook runs before ours.
    Consent(app, make_policy())
    Compress(app)

    @app.get("/")
    def index() -> str:
        return render_template_string(PAGE.format(ARTICLE))

    @app.get("/stream")
    def stream() -> object:
        return app.response_class(
            stream_template_string(PAGE.format(ARTICLE)), mimetype="text/html"
        )

    return app


@pytest.mark.parametrize(
    ("path", "algorithm"),
    [
        *(("/", a) for a in ("gzip", "deflate", "br", "zstd")),
        # Flask-Compress streams with these (never with gzip).
        *(("/stream", a) for a in ("deflate", "br", "zstd")),
    ],
)
def test_flask_compress_keeps_the_banner(
    tmp_path: Path, algorithm: str, path: str
) -> None:
    client = _flask_app(tmp_path, algorithm).test_client()
    response = client.get(path, headers={"Accept-Encoding": algorithm})
    assert response.headers["Content-Encoding"] == algorithm
    page = DECODE[algorithm](response.get_data())
    assert BANNER in page
    assert page.index(BANNER) < page.index(b"<p>West Lake")
    assert page.count(b"<p>West Lake") == 60


def _asgi_app(tmp_path: Path) -> Starlette:
    async def index(request: object) -> HTMLResponse:
        return HTMLResponse(PAGE.format(ARTICLE))

    async def stream(request: object) -> StreamingResponse:
        html = PAGE.format(ARTICLE)

        async def chunks() -> object:
            for start in range(0, len(html), 700):
                yield html[start : start + 700].encode()

        return StreamingResponse(chunks(), media_type="text/html")  # type: ignore[arg-type]

    return Starlette(
        routes=[Route("/", index), Route("/stream", stream)],
        # The first middleware is the outermost: consent sees gzip bytes.
        middleware=[
            Middleware(
                ConsentMiddleware,
                policy=make_policy(),
                secret_key=SECRET_KEY,
                config={"CONSENT_RECEIPTS_URL": None},
                folder=tmp_path,
            ),
            Middleware(GZipMiddleware, minimum_size=100),
        ],
    )


@pytest.mark.parametrize("path", ["/", "/stream"])
def test_asgi_gzip_keeps_the_banner(tmp_path: Path, path: str) -> None:
    client = TestClient(_asgi_app(tmp_path), base_url="http://localhost")
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    page = response.content  # httpx decodes gzip
    assert BANNER in page
    assert page.index(BANNER) < page.index(b"<p>West Lake")
    assert page.count(b"<p>West Lake") == 60
