"""The demo under real servers, and visitors that use it as a browser does.

Fault tests (``test_receipts_outage.py``) and the load test
(``bench/loadtest.py``) run the demo with several worker processes:
gunicorn for the Flask app, uvicorn for its ASGI twin, on 127.0.0.1 only.
Settings come from ``CONSENT_*`` environment variables, as the demo reads
them; the secret key is fixed here, so that every worker signs alike.
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: The demo's secret key under these servers (not for production).
SECRET_KEY = "demo key for the fault and load tests, never for production"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

Adapter = t.Literal["flask", "asgi"]


def flask_app() -> t.Any:
    """The demo's Flask app (a gunicorn factory)."""
    from examples.hangzhou_demo import create_app

    return create_app({"SECRET_KEY": SECRET_KEY})


def asgi_app() -> t.Any:
    """The demo's ASGI twin (a uvicorn factory)."""
    from examples.hangzhou_demo.asgi import create_asgi_app

    return create_asgi_app({"SECRET_KEY": SECRET_KEY})


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class DemoServer:
    """The demo served by ``workers`` processes on a free port of 127.0.0.1.

    ``flask``: gunicorn, gthread workers of 4 threads; ``asgi``: uvicorn.
    Use it as a context manager: the server and every worker are stopped
    and reaped on exit.

    :param adapter: Which twin.
    :param workers: Worker processes.
    :param env: Environment variables (``CONSENT_*`` settings) on top of
        this process's.
    """

    def __init__(
        self, adapter: Adapter, *, workers: int, env: cabc.Mapping[str, str]
    ) -> None:
        self.adapter = adapter
        self.workers = workers
        self.port = free_port()
        #: The server's base URL.
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self._log = tempfile.TemporaryFile()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DemoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self) -> list[str]:
        bind = f"127.0.0.1:{self.port}"
        if self.adapter == "flask":
            return [
                str(BIN / "gunicorn"),
                f"--workers={self.workers}",
                "--worker-class=gthread",
                "--threads=4",
                f"--bind={bind}",
                "--graceful-timeout=5",
                "--log-level=warning",
                "tests.servers:flask_app()",
            ]
        return [
            str(BIN / "uvicorn"),
            "--factory",
            "tests.servers:asgi_app",
            f"--workers={self.workers}",
            "--host=127.0.0.1",
            f"--port={self.port}",
            "--log-level=warning",
            "--no-access-log",
            "--timeout-graceful-shutdown=5",
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start the server; return once it answers ``GET /``."""
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"The server exited:\n{self.log()}")
            try:
                with Visitor(self.url) as visitor:
                    if visitor.get("/")[0] == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"The server did not answer:\n{self.log()}")
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The worker processes running now."""
        assert self.proc is not None
        pids = _children(self.proc.pid)
        # uvicorn starts its workers through multiprocessing, which may add
        # a resource tracker.
        return sorted(p for p in pids if "resource_tracker" not in _cmdline(p))

    def log(self) -> str:
        """What the server printed so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Stop the server and its workers, and reap them."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            workers = _children(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in workers:
                # A worker the server could not stop in time.
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        self._log.close()


class Visitor:
    """One browser: its own cookies and connection, a page, then a choice.

    :param url: The site's base URL, ``http://127.0.0.1:PORT``.
    :param timeout: Seconds a request may take.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.origin = url
        self.cookies: dict[str, str] = {}
        self._conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=timeout
        )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Visitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, str]:
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self._conn.request(method, path, body=body, headers=headers)
            response = self._conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self._conn.close()
            raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        if response.getheader("Connection", "").lower() == "close":
            self._conn.close()
        return response.status, text

    def get(self, path: str) -> tuple[int, str]:
        """``GET path``: the status and the page."""
        return self._request("GET", path)

    @staticmethod
    def csrf_token(html: str) -> str:
        """The CSRF token of the banner form in ``html``.

        :raises ValueError: when the page has no banner form.
        """
        match = _CSRF.search(html)
        if match is None:
            raise ValueError("The page has no banner form.")
        return match[1]

    def post_choice(
        self,
        action: str,
        token: str,
        *,
        chosen: cabc.Iterable[str] = (),
        page: str = "/",
    ) -> int:
        """Post ``action`` (and, for ``save``, the ``chosen`` keys) from the
        banner of ``page``, as its form does; the status (303 when kept)."""
        fields = [("action", action), ("csrf_token", token), ("next", page)]
        if action == "save":
            fields += [("choice", key) for key in chosen]
        status, _ = self._request(
            "POST",
            "/consent",
            urllib.parse.urlencode(fields).encode(),
            **{
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.origin,
                "Sec-Fetch-Site": "same-origin",
            },
        )
        return status

    def choose(self, action: str = "accept_all", page: str = "/") -> int:
        """Load ``page``, take the CSRF token of its banner, and post
        ``action`` from it; the status of the post (303 when kept).

        :raises ValueError: when the page has no banner form.
        """
        status, html = self.get(page)
        if status != 200:
            raise ValueError(f"GET {page} answered {status}.")
        return self.post_choice(action, self.csrf_token(html), page=page)
