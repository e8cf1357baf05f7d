"""Reading pages and responses, and making choices, in conformance tests."""

from __future__ import annotations

import re
import typing as t
from html.parser import HTMLParser

from tests.conftest import csrf_token_in

if t.TYPE_CHECKING:
    from tests.conformance.conftest import Client
    from tests.conformance.conftest import Response

BANNER = 'id="cookie-consent"'
SCRIPT = '<script src="/static/analytics.js"></script>'
HALF_YEAR = 182 * 86400


class _Tags(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.found: list[dict[str, t.Any]] = []
        self._open: dict[str, t.Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == self.name:
            self._open = {**dict(attrs), "#text": ""}
            self.found.append(self._open)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["#text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == self.name:
            self._open = None


def tags(html: str, name: str, key: str | None = None) -> list[dict[str, t.Any]]:
    """Every ``name`` element's attributes (a bare one is ``None``) and, as
    ``#text``, its content; only those of ``data-consent-key`` ``key``."""
    parser = _Tags(name)
    parser.feed(html)
    return [a for a in parser.found if key is None or a.get("data-consent-key") == key]


class Fields:
    """A form's fields: a name may repeat (``choice``)."""

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._values.setdefault(name, []).append(value)

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[0] if values else default

    def __getitem__(self, name: str) -> str:
        return self._values[name][0]

    def to_dict(self) -> dict[str, list[str]]:
        """The fields to post: each name with all its values."""
        return {name: list(values) for name, values in self._values.items()}


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, t.Any]] = []
        self._form: dict[str, t.Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._form = {"attrs": a, "fields": Fields(), "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and a.get("name"):
            self._form["fields"].add(a["name"], a.get("value") or "")
        elif self._form is not None and tag == "button":
            self._form["buttons"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def forms(html: str) -> list[dict[str, t.Any]]:
    """Every form: ``attrs``, its :class:`Fields` and the attributes of its
    ``buttons``."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def banner_of(html: str) -> str:
    match = re.search(r'<aside id="cookie-consent".*?</aside>', html, re.DOTALL)
    assert match is not None, "no banner on the page"
    return match[0]


def set_cookies(response: Response) -> dict[str, str]:
    """The response's ``Set-Cookie`` headers by cookie name."""
    return {header.split("=", 1)[0]: header for header in response.set_cookie_headers}


def cookies_set(response: Response) -> dict[str, dict[str, str]]:
    """Each ``Set-Cookie`` of ``response`` by name: value and attributes."""
    found: dict[str, dict[str, str]] = {}
    for header in response.set_cookie_headers:
        first, *attributes = header.split(";")
        name, _, value = first.partition("=")
        parsed = {"value": value}
        for attribute in attributes:
            key, _, attr_value = attribute.strip().partition("=")
            parsed[key.lower()] = attr_value
        assert name not in found, f"{name} set twice: {header}"
        found[name] = parsed
    return found


def expired(response: Response) -> dict[str, dict[str, str]]:
    """The cookies ``response`` expires, with their attributes."""
    return {
        name: attrs
        for name, attrs in cookies_set(response).items()
        if attrs.get("max-age") == "0"
    }


def set_cookie_names(response: Response) -> list[str]:
    return [h.split("=", 1)[0] for h in response.set_cookie_headers]


def max_age_of(header: str) -> int:
    match = re.search(r"Max-Age=(\d+)", header)
    assert match is not None
    return int(match[1])


def token_of(html: str) -> str:
    """The CSRF token of the first consent form in ``html``."""
    return csrf_token_in(html)


def post_choice(client: Client, action: str, **data: t.Any) -> Response:
    """Post ``action`` with the token of the preferences page, as its form
    does; the response, whatever it is."""
    token = token_of(client.get("/consent/preferences").text)
    return client.post("/consent", data={"action": action, "csrf_token": token, **data})


def choose(client: Client, action: str, *choices: str, **data: str) -> Response:
    """Post ``action`` with ``choices`` and the token of the JSON state; the
    choice must succeed (303)."""
    token = client.get("/consent").json()["csrf_token"]
    form = {"action": action, "csrf_token": token, "choice": list(choices), **data}
    response = client.post("/consent", data=form)
    assert response.status_code == 303, response.status_code
    return response


def state_of(client: Client) -> dict[str, t.Any]:
    """The visitor's state, as ``GET /consent`` answers it."""
    response = client.get("/consent")
    assert response.status_code == 200
    data: dict[str, t.Any] = response.json()
    return data


def choice_of(client: Client) -> dict[str, bool]:
    choices: dict[str, bool] = state_of(client)["choices"]
    return choices
