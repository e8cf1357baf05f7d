"""Reading a published declaration and matching names against it."""

from __future__ import annotations

import typing as t

import pytest

from consent.scan.declaration import Declaration
from consent.scan.errors import DeclarationError


@pytest.fixture(scope="module")
def demo_declaration(tmp_path_factory: pytest.TempPathFactory) -> Declaration:
    """The declaration the Flask demo really publishes."""
    from examples.hangzhou_demo import create_app

    instance = tmp_path_factory.mktemp("declaration")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "declaration-test-secret-key-0123456789",
            "CONSENT_RECEIPTS_URL": f"sqlite:///{instance}/receipts.db",
            "CONSENT_RECEIPTS_SPOOL_DIR": str(instance),
        }
    )
    response = app.test_client().get("/consent/declaration.json")
    assert response.status_code == 200
    return Declaration.from_json(response.get_json())


def test_demo_declaration(demo_declaration: Declaration) -> None:
    assert demo_declaration.categories == ("necessary", "analytics", "media")
    assert demo_declaration.required == {"necessary"}
    assert demo_declaration.optional == ("analytics", "media")
    assert demo_declaration.revision


@pytest.mark.parametrize("name", ["consent", "consent_csrf", "hz_lang"])
def test_demo_necessary_cookies(demo_declaration: Declaration, name: str) -> None:
    assert demo_declaration.is_necessary(name)


@pytest.mark.parametrize(
    ("name", "categories"),
    [("_hz_analytics", ("analytics",)), ("wl_map_pref", ("media",))],
)
def test_demo_optional_cookies(
    demo_declaration: Declaration, name: str, categories: tuple[str, ...]
) -> None:
    assert demo_declaration.is_declared(name)
    assert not demo_declaration.is_necessary(name)
    assert demo_declaration.categories_of(name) == categories


def test_service_cookies_know_their_service(demo_declaration: Declaration) -> None:
    services = {c.service for c in demo_declaration.lookup("wl_map_pref")}
    assert "westlake_map" in services


def test_undeclared(demo_declaration: Declaration) -> None:
    assert not demo_declaration.is_declared("_ga")
    assert demo_declaration.categories_of("_ga") == ()


def _one(cookies: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    return {"categories": [{"key": "analytics", "cookies": cookies}]}


def test_patterns_match_whole_names() -> None:
    declaration = Declaration.from_json(
        _one([{"name": "_ga_[A-Z0-9]+", "pattern": True}])
    )
    assert declaration.is_declared("_ga_ABC123")
    assert not declaration.is_declared("_ga_abc")
    assert not declaration.is_declared("x_ga_ABC")
    assert not declaration.is_declared("_ga_ABC;")


def test_exact_names_are_not_patterns() -> None:
    declaration = Declaration.from_json(_one([{"name": "a.b"}]))
    assert declaration.is_declared("a.b")
    assert not declaration.is_declared("axb")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the declaration must be a JSON object"),
        ({}, "categories must be a JSON array"),
        ({"categories": [1]}, "categories[0] must be a JSON object"),
        ({"categories": [{"key": ""}]}, "categories[0].key must be a non-empty"),
        (
            {"categories": [{"key": "a", "required": "yes"}]},
            "categories[0].required must be true or false",
        ),
        (_one([{"pattern": True}]), "categories[0].cookies[0].name must be"),
        (
            _one([{"name": "(", "pattern": True}]),
            "is not a valid regular expression",
        ),
        (_one([{"name": "a" * 300, "pattern": True}]), "longer than 256"),
        (
            {"categories": [{"key": "a", "services": [{"key": "s", "cookies": 3}]}]},
            "categories[0].services[0].cookies must be a JSON array",
        ),
    ],
)
def test_bad_declarations_say_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(DeclarationError, match=message.replace("[", r"\[")):
        Declaration.from_json(document)


def test_declaration_error_is_a_value_error() -> None:
    assert issubclass(DeclarationError, ValueError)
