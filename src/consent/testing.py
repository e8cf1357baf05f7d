"""Compliance checks for an app's own test suite, for any adapter.

The checks in :mod:`consent.flask.testing` and :mod:`consent.asgi.testing`
keep the promises a banner makes in a few lines of a test::

    from consent.flask.testing import (
        assert_nothing_optional_before_consent,
        assert_reject_takes_one_click,
    )

    def test_consent(app):
        assert_nothing_optional_before_consent(app, ["/", "/about"])
        assert_reject_takes_one_click(app, "/")

They drive the app's own test client; nothing is mocked. This module holds
what they share: :func:`read_page`, which finds the banner, its form and the
gated and third-party tags in a page, and :class:`ConsentChecks`, the checks
themselves over a small :class:`Client` protocol that each adapter
implements. A failed check raises ``AssertionError`` with what was found.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t
from html.parser import HTMLParser
from urllib.parse import urlsplit

from .enforce import is_deletion
from .enforce import set_cookie_name

if t.TYPE_CHECKING:
    from .site import Site

#: The id of the banner element.
BANNER_ID = "cookie-consent"

#: Tags that load something from their ``src`` the moment they are parsed.
_LOADING_TAGS = ("script", "iframe", "img")


@dataclasses.dataclass
class Page:
    """What a rendered page shows of consent."""

    #: True when the banner is in the page.
    has_banner: bool = False
    #: Where the banner's choice form posts.
    action: str = ""
    #: The fields of the banner's choice form (``csrf_token``, ``next``...).
    form: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Submit buttons of the banner form: (name, value, label).
    buttons: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    #: Gated tags rendered live: (tag, key).
    live: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: Gated tags kept inert: (tag, key).
    inert: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: Scripts, iframes and images that load from another host without any
    #: gating: (tag, URL).
    third_party: list[tuple[str, str]] = dataclasses.field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self, host: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._host = host
        self._depth = 0
        self._in_form = False
        self._button: tuple[str, str] | None = None
        self._label: list[str] = []

    def _is_third_party(self, url: str) -> bool:
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return False
        if not parts.netloc or parts.scheme not in ("", "http", "https"):
            return False
        return parts.hostname != self._host

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id") == BANNER_ID:
            self.page.has_banner = True
            self._depth = 1
        elif self._depth and tag not in ("input", "br", "img", "meta", "link"):
            self._depth += 1
        key = a.get("data-consent-key")
        if key and tag in ("script", "iframe"):
            inert = tag == "script" and a.get("type") == "text/plain"
            (self.page.inert if inert else self.page.live).append((tag, key))
        elif tag in _LOADING_TAGS and a.get("src") and self._is_third_party(a["src"]):
            self.page.third_party.append((tag, a["src"]))
        if key and tag == "div" and "data-consent-embed" in a:
            self.page.inert.append(("iframe", key))
        if not self._depth:
            return
        if tag == "form" and a.get("method", "").lower() == "post":
            self._in_form = True
            self.page.action = self.page.action or a.get("action", "")
        if self._in_form and tag == "input" and a.get("type") == "hidden":
            self.page.form[a.get("name", "")] = a.get("value", "")
        if self._in_form and tag == "button" and a.get("name"):
            self._button = (a.get("name", ""), a.get("value", ""))
            self._label = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._label.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            name, value = self._button
            self.page.buttons.append((name, value, "".join(self._label).strip()))
            self._button = None
        if tag == "form":
            self._in_form = False
        if self._depth:
            self._depth -= 1


def read_page(html: str, host: str | None = None) -> Page:
    """Parse what ``html`` shows of consent: banner, form, gated tags.

    :param host: The page's own host; tags that load from another host are
        listed in :attr:`Page.third_party`. ``None`` counts every absolute
        URL as another host's.
    """
    parser = _PageParser(host)
    parser.feed(html)
    parser.close()
    return parser.page


def set_cookie_names(headers: cabc.Iterable[str]) -> list[str]:
    """Names of the cookies ``Set-Cookie`` headers set (deletions excluded)."""
    return [set_cookie_name(h) for h in headers if not is_deletion(h)]


class Response(t.Protocol):
    """A response of an adapter's test client, as the checks read it."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def set_cookie_headers(self) -> list[str]:
        """Every ``Set-Cookie`` header value."""


class Client(t.Protocol):
    """An adapter's test client, as the checks drive it: one visitor."""

    def get(self, path: str) -> Response: ...

    def post(self, path: str, data: cabc.Mapping[str, t.Any]) -> Response: ...

    def get_cookie(self, name: str) -> str | None: ...

    def set_cookie(self, name: str, value: str) -> None: ...


def choice_form(
    html: str, action: str, choices: cabc.Iterable[str] = (), where: str = "the page"
) -> tuple[str, dict[str, t.Any]]:
    """Where to post a choice made on the banner of ``html``, and the fields.

    :param action: ``accept_all``, ``reject_all`` or ``save``.
    """
    page = read_page(html)
    assert page.has_banner, f"{where} shows no banner to choose on."
    data: dict[str, t.Any] = dict(page.form)
    data["action"] = action
    data["choice"] = list(choices)
    return page.action, data


class ConsentChecks:
    """The compliance checks, over an adapter's test client.

    :param site: The app's consent site (its policy and cookie names).
    :param new_client: Makes a fresh client: a new visitor.
    :param host: The app's host as its test client requests it.
    """

    def __init__(
        self, site: Site, new_client: cabc.Callable[[], Client], host: str = "localhost"
    ) -> None:
        self.site = site
        self.new_client = new_client
        self.host = host

    def _is_necessary(self, name: str) -> bool:
        settings = self.site.settings
        if name in (settings.cookie_name, settings.csrf_cookie_name):
            return True
        found = self.site.policy.classify(name)
        return found is not None and found[0].required

    def _optional_live(self, page: Page) -> list[tuple[str, str]]:
        """Live gated tags of keys that need consent (required ones may run)."""
        policy = self.site.policy
        return [(tag, key) for tag, key in page.live if not policy.is_required(key)]

    def _optional_cookies(self, response: Response) -> list[str]:
        names = set_cookie_names(response.set_cookie_headers)
        return [n for n in names if not self._is_necessary(n)]

    def choose(
        self,
        client: Client,
        action: str,
        path: str = "/",
        choices: cabc.Iterable[str] = (),
    ) -> Response:
        """Make a choice the way a visitor does: load ``path``, submit its
        banner."""
        url, data = choice_form(client.get(path).text, action, choices, path)
        return client.post(url, data)

    def nothing_optional_before_consent(self, paths: cabc.Iterable[str]) -> None:
        """No page sets a non-essential cookie, renders a live gated tag of an
        optional key, or loads a script, frame or pixel from another host,
        before the visitor has chosen, across several page views of one
        visitor."""
        client = self.new_client()
        for path in paths:
            response = client.get(path)
            optional = self._optional_cookies(response)
            assert not optional, f"{path} sets {optional} before any choice."
            page = read_page(response.text, self.host)
            live = self._optional_live(page)
            assert not live, f"{path} renders live gated tags {live}."
            assert not page.third_party, (
                f"{path} loads {page.third_party} from other sites before any"
                " choice; gate them with consent_script() or consent_embed()."
            )

    def reject_takes_one_click(self, path: str = "/") -> None:
        """Reject all is one button on the first layer, beside Accept all,
        and one click on it leaves nothing optional and no banner."""
        client = self.new_client()
        page = read_page(client.get(path).text)
        assert page.has_banner, f"{path} shows no banner."
        actions = [value for name, value, _ in page.buttons if name == "action"]
        assert "reject_all" in actions, f"No Reject all button on {path}: {actions}."
        assert "accept_all" in actions, f"No Accept all button on {path}: {actions}."
        response = self.choose(client, "reject_all", path)
        assert response.status_code == 303, response.status_code
        after = client.get(path)
        shown = read_page(after.text)
        assert not shown.has_banner, "The banner is still shown after Reject all."
        live = self._optional_live(shown)
        assert not live, f"Live gated tags after Reject all: {live}."
        optional = self._optional_cookies(after)
        assert not optional, f"{path} sets {optional} after Reject all."

    def banner_returns_after_revision_change(
        self, changed: ConsentChecks, path: str = "/"
    ) -> None:
        """A choice made under this app's policy is asked again under
        ``changed``'s (same keys, another revision)."""
        client = self.new_client()
        self.choose(client, "accept_all", path)
        assert not read_page(client.get(path).text).has_banner
        name = self.site.settings.cookie_name
        value = client.get_cookie(name)
        assert value is not None, "No consent cookie after accepting."
        other = changed.new_client()
        other.set_cookie(name, value)
        page = read_page(other.get(path).text)
        assert page.has_banner, "The banner did not return after the revision changed."
        live = changed._optional_live(page)
        assert not live, f"Live gated tags after a revision change: {live}."
