"""The article the demo serves, read from ``content/article.txt``.

The file is plain text: the title on the first line, then one block per
non-empty line. A line wrapped in parentheses is a photo caption; the photos
were never supplied, so each caption becomes a figure with drawn art.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t
from pathlib import Path

#: The file the site serves.
ARTICLE_PATH = Path(__file__).parent / "content" / "article.txt"

#: The drawings used for the figures, in order (``templates/art/<name>.svg``).
ART = ("keynote", "competition")

BlockKind = t.Literal["paragraph", "figure"]


@dataclasses.dataclass(frozen=True)
class Block:
    """A paragraph, or a figure with its caption and the drawing it shows.

    :param kind: ``"paragraph"`` or ``"figure"``.
    :param text: The paragraph text, or the caption without its parentheses.
    :param art: The drawing of a figure.
    """

    kind: BlockKind
    text: str
    art: str | None = None


@dataclasses.dataclass(frozen=True)
class Article:
    """A title and the blocks of the body, in reading order."""

    title: str
    blocks: tuple[Block, ...]

    @property
    def paragraphs(self) -> tuple[str, ...]:
        """The text of every paragraph."""
        return tuple(b.text for b in self.blocks if b.kind == "paragraph")

    @property
    def captions(self) -> tuple[str, ...]:
        """The caption of every figure."""
        return tuple(b.text for b in self.blocks if b.kind == "figure")


def _is_caption(line: str) -> bool:
    return len(line) > 2 and line.startswith("(") and line.endswith(")")


def parse_article(text: str, art: cabc.Sequence[str] = ART) -> Article:
    """Split the text of an article into its title and blocks.

    :param text: The whole file.
    :param art: Drawings given to the figures in turn.
    """
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("The article is empty: put the title on the first line.")
    blocks: list[Block] = []
    for line in lines[1:]:
        if _is_caption(line):
            drawing = art[len([b for b in blocks if b.kind == "figure"]) % len(art)]
            blocks.append(Block("figure", line[1:-1].strip(), drawing))
        else:
            blocks.append(Block("paragraph", line))
    return Article(title=lines[0], blocks=tuple(blocks))


def load_article(path: Path = ARTICLE_PATH) -> Article:
    """Read and parse the article file (UTF-8)."""
    return parse_article(path.read_text(encoding="utf-8"))
