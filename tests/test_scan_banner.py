"""Finding Accept all and Reject all by name, in every catalogue's words."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from consent.scan.banner import EXTRA_LABELS
from consent.scan.banner import button_labels
from consent.scan.banner import label_pattern


def _catalogue_labels(action: str) -> list[str]:
    folder = resources.files("consent") / "translations"
    return [
        json.loads(entry.read_text(encoding="utf-8"))[f"button.{action}_all"]
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    ]


@pytest.mark.parametrize("action", ["accept", "reject"])
def test_every_catalogue_label_matches(action: str) -> None:
    pattern = label_pattern(action)  # type: ignore[arg-type]
    labels = _catalogue_labels(action)
    assert len(labels) >= 44
    for label in labels:
        assert pattern.match(label), label
        assert pattern.match(f"  {label.upper()} "), label


@pytest.mark.parametrize(
    ("action", "name"),
    [
        ("accept", "Accept all"),
        ("accept", "ACCEPT ALL COOKIES"),
        ("accept", "Alle akzeptieren"),
        ("accept", "Tout accepter"),
        ("accept", "全部接受"),
        ("reject", "Reject all"),
        ("reject", "Alle ablehnen"),
        ("reject", "Tout refuser"),
        ("reject", "Only necessary cookies"),
    ],
)
def test_labels_match(action: str, name: str) -> None:
    assert label_pattern(action).match(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "name"),
    [
        ("accept", "Accept all and continue to pay"),
        ("accept", "Reject all"),
        ("reject", "Accept all"),
        ("reject", "Customize"),
        ("reject", "Reject"),
    ],
)
def test_other_names_do_not_match(action: str, name: str) -> None:
    assert not label_pattern(action).match(name)  # type: ignore[arg-type]


def test_extras_come_after_the_catalogues() -> None:
    labels = button_labels("reject")
    assert labels[-len(EXTRA_LABELS["reject"]) :] == EXTRA_LABELS["reject"]
    assert "Reject all" in labels
    assert len(labels) == len(set(labels))
