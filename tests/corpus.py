"""The labelled pages of tests/pages/: article text between `<!--gold-->` and `<!--/gold-->`."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import lxml.html

from digest.extract import decode_text

PAGES = Path(__file__).parent / "pages"
GOLD = re.compile(r"<!--gold-->(.*?)<!--/gold-->", re.S)
TOKEN = re.compile(r"\w+")


def page_bytes(name: str) -> bytes:
    """The bytes of one page, as a server sends them (EUC-KR pages stay EUC-KR)."""
    return next(PAGES.glob(f"{name}*.html")).read_bytes()


def gold_paragraphs(body: bytes) -> list[str]:
    """The article's paragraphs and list items as a reader sees them, whitespace squashed."""
    html = decode_text(body, None, html=True)
    out = []
    for fragment in GOLD.findall(html):
        tree = lxml.html.fragment_fromstring(fragment, create_parent="div")
        for block in tree.iter("p", "li", "h2", "h3", "td"):
            text = " ".join(block.text_content().split())
            if text:
                out.append(text)
    return out


def gold_text(body: bytes) -> str:
    """All the article text a page marks, for token counts."""
    html = decode_text(body, None, html=True)
    parts = []
    for fragment in GOLD.findall(html):
        tree = lxml.html.fragment_fromstring(fragment, create_parent="div")
        parts.append(" ".join(tree.itertext()))
    return "\n".join(parts)


def tokens(text: str) -> Counter[str]:
    """Words and numbers of a text, lower-cased, as a multiset."""
    return Counter(TOKEN.findall(text.lower()))


def overlap(extracted: str, gold: str) -> tuple[int, int, int]:
    """Tokens in common, tokens extracted, tokens of the article."""
    got, want = tokens(extracted), tokens(gold)
    return sum((got & want).values()), sum(got.values()), sum(want.values())
