"""Faithfulness check: figures, dates and quotes in bullets that the source does not contain.

A figure in a bullet is supported when the same value appears in the source, whatever its
spelling: "1,230억" = "123 billion" = "123B", "16,000" = "16000" = "1만 6천", "50%" = "50
percent". Dates match by month and day (and year when both give one): "7월 23일" = "July
23". A quoted phrase is checked only when it is in the source's script (a Korean quote of
an English article is a translation, not a quotation).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from digest.models import Bullet, Code, Notice, bullet_texts
from digest.text import hangul_share, shorten

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALES: dict[str, Decimal] = {
    "천": Decimal(10) ** 3,
    "만": Decimal(10) ** 4,
    "억": Decimal(10) ** 8,
    "조": Decimal(10) ** 12,
    "thousand": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
    "k": Decimal(10) ** 3,
    "m": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "b": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "t": Decimal(10) ** 12,
}
# A number, then an optional scale word; Latin scale letters only right after the digits.
_FIGURE = re.compile(
    rf"(?<![\w.])(?P<num>{_NUMBER})"
    r"(?:\s?(?P<word>thousand|million|billion|trillion)\b|(?P<letter>[kKmMbBtT]|bn|mn)\b"
    r"|\s?(?P<ko>[천만억조])(?!큼))?",
    re.I,
)
# Korean compound numbers: "1조 2000억", "1만 6천". Bounded runs keep long digit strings linear.
_KO_COMPOUND = re.compile(
    r"(?:\d[\d,]{0,23}(?:\.\d{1,9})?\s?[조억만천]\s?)+(?:\d[\d,]{0,23}(?:\.\d{1,9})?)?"
)
_WORD_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "dozen": 12,
    "half": 50,
}
_WORD_SCALED = re.compile(
    r"\b(" + "|".join(_WORD_NUMBERS) + r")\s+(thousand|million|billion|trillion)\b", re.I
)
_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = [
    # 2024-07-23, 2024.07.23, 2024/07/23
    re.compile(r"(?P<y>(?:19|20)\d\d)[-./](?P<m>\d{1,2})[-./](?P<d>\d{1,2})\b"),
    # 2024년 7월 23일, 7월 23일
    re.compile(r"(?:(?P<y>(?:19|20)\d\d)\s?년\s?)?(?P<m>\d{1,2})\s?월\s?(?P<d>\d{1,2})\s?일"),
    # July 23, 2024 / Jul. 23
    re.compile(
        rf"\b(?P<mn>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b"
        r"(?:,?\s+(?P<y>(?:19|20)\d\d))?",
        re.I,
    ),
    # 23 July 2024
    re.compile(
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<mn>{_MONTH})\b\.?"
        r"(?:,?\s+(?P<y>(?:19|20)\d\d))?",
        re.I,
    ),
]
_QUOTE = re.compile(
    r"(?<![\w])[\"“«「『]([^\"“”«»「」『』\n]{8,160})[\"”»」』]"
    r"|(?<![\w'’])[‘']([^'‘’\n]{8,160})['’](?![A-Za-z0-9])"
)
_PUNCTUATION = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_PUNCTUATION)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # Markdown links keep their text
    text = re.sub(r"[*_`]+", "", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def _decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number.replace(",", ""))
    except InvalidOperation:
        return None


def _key(value: Decimal) -> str:
    """A canonical spelling of a value: 1.50 -> "1.5", 1E+9 -> "1000000000"."""
    value = value.normalize()
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ko_compound(text: str) -> Decimal | None:
    """The value of "1조 2000억" or "1만 6천"; None when it is not a compound."""
    parts = re.findall(r"(\d[\d,]*(?:\.\d+)?)\s?([조억만천])?", text)
    if len(parts) < 2:
        return None
    total = Decimal(0)
    for number, unit in parts:
        value = _decimal(number)
        if value is None:
            return None
        total += value * (_SCALES[unit] if unit else 1)
    return total


def _values(match: re.Match[str]) -> set[str]:
    """Every value a figure may stand for: the bare number, and scaled by its unit."""
    number = _decimal(match.group("num"))
    if number is None:
        return set()
    values = {_key(number)}
    scale = match.group("word") or match.group("letter") or match.group("ko")
    if scale:
        values.add(_key(number * _SCALES[scale.lower()]))
    return values


def _source_values(source: str) -> set[str]:
    values: set[str] = set()
    for match in _FIGURE.finditer(source):
        values |= _values(match)
    for match in _KO_COMPOUND.finditer(source):
        compound = _ko_compound(match.group(0))
        if compound is not None:
            values.add(_key(compound))
    for word, number in _WORD_NUMBERS.items():
        if re.search(rf"\b{word}\b", source, re.I):
            values.add(str(number))
    for match in _WORD_SCALED.finditer(source):
        amount = Decimal(_WORD_NUMBERS[match.group(1).lower()])
        values.add(_key(amount * _SCALES[match.group(2).lower()]))
    return values


def _dates(text: str) -> list[tuple[tuple[int, int], int | None, tuple[int, int]]]:
    """(month, day), year or None, and the span, for each date written in the text."""
    found = []
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            month = _MONTHS[groups["mn"].lower()] if groups.get("mn") else int(groups["m"])
            day = int(groups["d"])
            if 1 <= month <= 12 and 1 <= day <= 31:
                year = int(groups["y"]) if groups.get("y") else None
                found.append(((month, day), year, match.span()))
    return found


def _script(text: str) -> str:
    """The text's main script: a quotation in another one cannot be verbatim."""
    return "ko" if hangul_share(text) > 0.5 else "latin"


@dataclass
class _Source:
    """What the bullets are checked against, computed once per article."""

    values: set[str]
    dates: list[tuple[tuple[int, int], int | None, tuple[int, int]]]
    normalized: str
    script: str


def _missing_dates(text: str, source: _Source, covered: list[tuple[int, int]]) -> list[Notice]:
    found = []
    for (month, day), year, span in _dates(text):
        covered.append(span)
        if not any(
            (m, d) == (month, day) and (year is None or y is None or y == year)
            for (m, d), y, _ in source.dates
        ):
            when = f"{year}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"
            message = f'date {when} not found in the source: "{shorten(text, 80)}"'
            found.append(Notice(code=Code.DATE_NOT_IN_SOURCE, message=message))
    return found


def _missing_figures(text: str, source: _Source, covered: list[tuple[int, int]]) -> list[Notice]:
    found = []
    for match in _KO_COMPOUND.finditer(text):
        compound = _ko_compound(match.group(0))
        if compound is None or any(a <= match.start() < b for a, b in covered):
            continue
        covered.append(match.span())
        if _key(compound) not in source.values:
            message = (
                f'figure {match.group(0).strip()!r} not found in the source: "{shorten(text, 80)}"'
            )
            found.append(Notice(code=Code.FIGURE_NOT_IN_SOURCE, message=message))
    for match in _FIGURE.finditer(text):
        if any(a <= match.start() < b for a, b in covered):
            continue
        figure = match.group(0).strip()
        digits = match.group("num").replace(",", "")
        has_unit = bool(match.group("word") or match.group("letter") or match.group("ko"))
        percent = text[match.end() : match.end() + 2].lstrip().startswith(("%", "퍼"))
        if len(digits) == 1 and not has_unit and not percent:
            continue  # single digits ("3 ways", "2배") are too common to judge
        if not _values(match) & source.values:
            message = f'figure {figure!r} not found in the source: "{shorten(text, 80)}"'
            found.append(Notice(code=Code.FIGURE_NOT_IN_SOURCE, message=message))
    return found


def _missing_quotes(text: str, source: _Source) -> list[Notice]:
    found = []
    for groups in _QUOTE.findall(text):
        quote = (groups[0] or groups[1]).strip()
        if _script(quote) != source.script:
            continue  # a translated quotation cannot match the source verbatim
        if _normalize(quote) not in source.normalized:
            message = f'quoted phrase "{shorten(quote, 80)}" not found in the source'
            found.append(Notice(code=Code.QUOTE_NOT_IN_SOURCE, message=message))
    return found


def unsupported_claims(bullets: list[Bullet], source: str) -> list[Notice]:
    """A notice for each figure, date or quote in the bullets not found in the source."""
    if not source.strip():
        return []
    checked = _Source(
        values=_source_values(source),
        dates=_dates(source),
        normalized=_normalize(source),
        script=_script(source[:5000]),
    )
    warnings: list[Notice] = []
    for text in bullet_texts(bullets):
        covered: list[tuple[int, int]] = []
        warnings += _missing_dates(text, checked, covered)
        warnings += _missing_figures(text, checked, covered)
        warnings += _missing_quotes(text, checked)
    return list(dict.fromkeys(warnings))
