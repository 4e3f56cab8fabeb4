"""Plain-text helpers shared by every stage: sentences, script, shortening, display width."""

from __future__ import annotations

import re

# Sentence ends: Latin punctuation followed by space, CJK full stops, and Korean
# declarative endings ("…다." "…요.") even without a following space.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+|(?<=[.!?。！？])(?=[가-힣A-Z])")
# Words whose full stop does not end a sentence ("Dr. Kim", "e.g. this", "vs. them").
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs cf fig figs no nos vol eq ed eds gen gov sen rep rev "
    "inc ltd co corp dept est approx ca jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_INITIALS = re.compile(r"(?:[A-Za-z]\.){2,}|[A-Z]\.")  # "U.S.", "e.g.", "J." in "J. K. Rowling"
_HANGUL = re.compile(r"[가-힣]")
_LETTER = re.compile(r"[A-Za-z가-힣]")


def _abbreviated(head: str) -> bool:
    """True when the text before a full stop ends with an abbreviation or an initial."""
    if not head.endswith("."):
        return False
    word = head.rsplit(None, 1)[-1].lstrip("\"'“‘([")
    return bool(_INITIALS.fullmatch(word)) or word[:-1].lower() in ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; works for Korean and English, keeps "U.S." and "Dr." whole."""
    pieces: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if _abbreviated(text[start : end.start()]):
            continue
        pieces.append(text[start : end.start()])
        start = end.end()
    pieces.append(text[start:])
    out = []
    for piece in pieces:
        sentence = re.sub(r"\s+", " ", piece).strip()
        if sentence:
            out.append(sentence)
    return out


def hangul_share(text: str) -> float:
    """The share of Hangul among the text's Hangul and Latin letters (0 when it has none)."""
    letters = len(_LETTER.findall(text))
    return len(_HANGUL.findall(text)) / letters if letters else 0.0


def looks_korean(text: str) -> bool:
    """True when the text (its first 4,000 characters) is Korean enough to be read as
    Korean: more than 30 % of its letters are Hangul (English terms are common in it)."""
    return hangul_share(text[:4000]) > 0.3


def shorten(text: str, limit: int, *, at_word: bool = True) -> str:
    """Text of at most `limit` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if at_word and " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:·-") + "…"


def display_width(text: str) -> int:
    """Columns a terminal gives the text: wide (CJK, emoji) two, zero-width and combining none."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def plural(count: int, word: str) -> str:
    """The count and the word, plural unless the count is one ("1 retry", "3 parts")."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"
