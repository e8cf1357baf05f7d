"""First or third party: hosts and registrable domains.

Two hosts are the same site when they share a registrable domain (the
public suffix plus one label, "eTLD+1"), which is how browsers draw the
line for cookies and ``SameSite``. The suffixes come from the Public Suffix
List snapshot bundled with tldextract, private section included as browsers
do (``a.github.io`` and ``b.github.io`` are two sites); it is never fetched,
so a scan contacts no host the site itself does not load.
"""

from __future__ import annotations

import functools
import ipaddress
import typing as t
from urllib.parse import urlsplit

if t.TYPE_CHECKING:
    import tldextract

#: ``"first"`` when a host belongs to the scanned site, ``"third"`` otherwise.
Party = t.Literal["first", "third"]


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # Imported on first use, like Playwright: both come with the extra.
    import tldextract

    # No URLs and no cache folder: the bundled snapshot only, read once.
    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
    )


def host_of(url: str) -> str:
    """The lowercase host name of ``url``, without port or IPv6 brackets.

    :param url: An absolute URL; anything else gives ``""``.
    """
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def site_of(host: str) -> str:
    """The registrable domain of ``host``: ``news.example.co.uk`` gives
    ``example.co.uk``.

    An IP address, ``localhost`` or any host without a public suffix is its
    own site, as in browsers.

    :param host: A host name or a cookie domain (a leading dot is ignored).
    """
    host = host.strip().lstrip(".").rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    domain = _extractor()(host).top_domain_under_public_suffix
    return domain or host


def party_of(host: str, site: str) -> Party:
    """Whether ``host`` belongs to ``site`` (a value of :func:`site_of`).

    :param host: A host name or a cookie domain.
    :param site: The scanned site's registrable domain.
    """
    return "first" if site_of(host) == site else "third"


def is_web_url(url: str) -> bool:
    """True for ``http``, ``https``, ``ws`` and ``wss`` URLs, the ones that
    reach a server (``data:``, ``blob:`` and the like do not).
    """
    try:
        return urlsplit(url).scheme in ("http", "https", "ws", "wss")
    except ValueError:
        return False
