"""First or third party by registrable domain, from the bundled PSL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consent.scan.sites import host_of
from consent.scan.sites import is_web_url
from consent.scan.sites import party_of
from consent.scan.sites import site_of


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("www.example.com", "example.com"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        (".example.co.uk", "example.co.uk"),
        ("EXAMPLE.com.", "example.com"),
        # The private section counts, as in browsers: two GitHub Pages sites.
        ("alice.github.io", "alice.github.io"),
        ("region1.google-analytics.com", "google-analytics.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("localhost", "localhost"),
        ("intranet", "intranet"),
    ],
)
def test_site_of(host: str, site: str) -> None:
    assert site_of(host) == site


@pytest.mark.parametrize(
    ("host", "party"),
    [
        ("example.com", "first"),
        ("static.example.com", "first"),
        (".example.com", "first"),
        ("example.org", "third"),
        ("example.com.evil.net", "third"),
        ("bob.github.io", "third"),
    ],
)
def test_party_of(host: str, party: str) -> None:
    assert party_of(host, site_of("www.example.com")) == party


def test_loopback_names_are_two_sites() -> None:
    # The demo's map on localhost is a third party of the site on 127.0.0.1.
    assert party_of("localhost", site_of("127.0.0.1")) == "third"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:5000/a?b#c", "127.0.0.1"),
        ("https://User@Example.COM:8443/", "example.com"),
        ("http://[::1]:8080/", "::1"),
        ("http://[::1/", ""),
        ("/relative", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/", True),
        ("wss://a.example/socket", True),
        ("data:text/plain,hi", False),
        ("blob:https://a.example/1", False),
        ("http://[::1/", False),
    ],
)
def test_is_web_url(url: str, expected: bool) -> None:
    assert is_web_url(url) is expected


def test_public_suffix_list_is_never_fetched_nor_cached(tmp_path: Path) -> None:
    """The bundled snapshot only: no network, no cache folder written."""
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from consent.scan.sites import site_of\n"
        "assert site_of('a.b.example.co.uk') == 'example.co.uk'\n"
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TLDEXTRACT_CACHE": str(tmp_path / "tld"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
