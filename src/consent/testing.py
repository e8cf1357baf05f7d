"""Compliance checks for an app's own test suite.

A few lines in your tests keep the promises a banner makes::

    from consent.testing import (
        assert_nothing_optional_before_consent,
        assert_reject_takes_one_click,
    )

    def test_consent(app):
        assert_nothing_optional_before_consent(app, ["/", "/about"])
        assert_reject_takes_one_click(app, "/")

Each helper takes a Flask app set up with :class:`consent.flask.Consent` and
uses its test client; nothing is mocked. A failed check raises
``AssertionError`` with what was found.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t
from html.parser import HTMLParser

from .enforce import set_cookie_name

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.test import TestResponse

#: The id of the banner element.
BANNER_ID = "cookie-consent"


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


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._depth = 0
        self._in_form = False
        self._button: tuple[str, str] | None = None
        self._label: list[str] = []

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


def read_page(html: str) -> Page:
    """Parse what ``html`` shows of consent: banner, form, gated tags."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.page


def _necessary_names(app: Flask) -> set[str]:
    ext = app.extensions["consent"]
    policy = ext.policy_for(app)
    names = {c.name for c in ext.builtin_cookies(app)}
    return names | {
        c.name for cat in policy.categories if cat.required for c in cat.all_cookies()
    }


def _optional_live(app: Flask, page: Page) -> list[tuple[str, str]]:
    """Live gated tags of keys that need consent (required ones may run)."""
    policy = app.extensions["consent"].policy_for(app)
    return [(tag, key) for tag, key in page.live if not policy.is_required(key)]


def _is_necessary(app: Flask, name: str) -> bool:
    ext = app.extensions["consent"]
    if name in _necessary_names(app):
        return True
    found = ext.policy_for(app).classify(name)
    return found is not None and found[0].required


def set_cookies(response: TestResponse) -> list[str]:
    """Names of the cookies ``response`` sets (expiring ones excluded)."""
    return [
        set_cookie_name(h)
        for h in response.headers.getlist("Set-Cookie")
        if "Max-Age=0" not in h
    ]


def assert_nothing_optional_before_consent(
    app: Flask, paths: cabc.Iterable[str] = ("/",)
) -> None:
    """No page sets a non-essential cookie or renders a live gated tag before
    the visitor has chosen, across several page views of one visitor."""
    client = app.test_client()
    for path in paths:
        response = client.get(path)
        optional = [n for n in set_cookies(response) if not _is_necessary(app, n)]
        assert not optional, f"{path} sets {optional} before any choice."
        page = read_page(response.get_data(as_text=True))
        live = _optional_live(app, page)
        assert not live, f"{path} renders live gated tags {live}."


def choose(
    client: t.Any, action: str, path: str = "/", choices: cabc.Iterable[str] = ()
) -> TestResponse:
    """Make a choice the way a visitor does: load ``path``, submit its banner.

    :param action: ``accept_all``, ``reject_all`` or ``save``.
    """
    page = read_page(client.get(path).get_data(as_text=True))
    assert page.has_banner, f"{path} shows no banner to choose on."
    data: dict[str, t.Any] = dict(page.form)
    data["action"] = action
    data["choice"] = list(choices)
    response: TestResponse = client.post(page.action, data=data)
    return response


def assert_reject_takes_one_click(app: Flask, path: str = "/") -> None:
    """Reject all is one button on the first layer, beside Accept all, and
    one click on it leaves nothing optional and no banner."""
    client = app.test_client()
    page = read_page(client.get(path).get_data(as_text=True))
    assert page.has_banner, f"{path} shows no banner."
    actions = [value for name, value, _ in page.buttons if name == "action"]
    assert "reject_all" in actions, f"No Reject all button on {path}: {actions}."
    assert "accept_all" in actions, f"No Accept all button on {path}: {actions}."
    response = choose(client, "reject_all", path)
    assert response.status_code == 303, response.status_code
    after = client.get(path)
    shown = read_page(after.get_data(as_text=True))
    assert not shown.has_banner, "The banner is still shown after Reject all."
    live = _optional_live(app, shown)
    assert not live, f"Live gated tags after Reject all: {live}."
    optional = [n for n in set_cookies(after) if not _is_necessary(app, n)]
    assert not optional, f"{path} sets {optional} after Reject all."


def assert_banner_returns_after_revision_change(
    app: Flask, changed_app: Flask, path: str = "/"
) -> None:
    """A choice made under ``app``'s policy is asked again under
    ``changed_app``'s (same keys, another revision)."""
    client = app.test_client()
    choose(client, "accept_all", path)
    assert not read_page(client.get(path).get_data(as_text=True)).has_banner
    name = app.config["CONSENT_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None, "No consent cookie after accepting."
    other = changed_app.test_client()
    other.set_cookie(name, cookie.value)
    page = read_page(other.get(path).get_data(as_text=True))
    assert page.has_banner, "The banner did not return after the revision changed."
    live = _optional_live(changed_app, page)
    assert not live, f"Live gated tags after a revision change: {live}."
