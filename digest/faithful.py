"""Faithfulness check: figures and quotes in bullets that the source does not contain."""

from __future__ import annotations

import re
import unicodedata

from digest.models import Bullet

# Numbers with optional decimals/thousands separators, percent, currency and unit suffixes.
_FIGURE = re.compile(r"(?<![\w.])[$€£₩¥]?\d[\d,]*(?:\.\d+)?(?:\s?%|[kKmMbB]\b)?")
_QUOTE = re.compile(r"[\"“”']([^\"“”']{8,120})[\"“”']")
_KO_NUMBER_UNITS = {"만": 10_000, "억": 100_000_000, "조": 1_000_000_000_000, "천": 1_000}


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text).lower()


def _digits(figure: str) -> str:
    return re.sub(r"[^\d.]", "", figure).rstrip(".")


def _source_numbers(source: str) -> set[str]:
    numbers = set()
    for match in _FIGURE.finditer(source):
        digits = _digits(match.group(0))
        if digits:
            numbers.add(digits)
            numbers.add(digits.split(".")[0] if digits.endswith(".0") else digits)
    # "1230억" in the source also supports "123B"/"123,000,000,000" in a bullet, and vice versa.
    for match in re.finditer(r"(\d[\d,]*(?:\.\d+)?)\s*(만|억|조|천)", source):
        value = float(match.group(1).replace(",", "")) * _KO_NUMBER_UNITS[match.group(2)]
        numbers.add(_plain(value))
    for match in re.finditer(r"(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion|trillion|[kKmMbB])\b", source):
        scale = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "b": 1e9, "trillion": 1e12}
        value = float(match.group(1).replace(",", "")) * scale[match.group(2).lower()]
        numbers.add(_plain(value))
    return numbers


def _plain(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _figure_values(bullet_text: str) -> list[tuple[str, set[str]]]:
    found = []
    for match in _FIGURE.finditer(bullet_text):
        figure = match.group(0).strip()
        digits = _digits(figure)
        if not digits or (len(digits) == 1 and "%" not in figure):
            continue  # single digits ("3 ways") are too common to judge
        candidates = {digits}
        tail = bullet_text[match.end() : match.end() + 12]
        unit = re.match(r"\s*(만|억|조|천|thousand|million|billion|trillion)", tail)
        suffix = re.search(r"([kKmMbB])$", figure)
        scale_word = unit.group(1) if unit else (suffix.group(1).lower() if suffix else None)
        if scale_word:
            scale = {"만": 1e4, "억": 1e8, "조": 1e12, "천": 1e3, "thousand": 1e3, "million": 1e6,
                     "billion": 1e9, "trillion": 1e12, "k": 1e3, "m": 1e6, "b": 1e9}[scale_word]
            try:
                candidates.add(_plain(float(digits) * scale))
            except ValueError:
                pass
        found.append((figure, candidates))
    return found


def _walk(bullets: list[Bullet]) -> list[str]:
    out: list[str] = []
    for bullet in bullets:
        out.append(bullet.text)
        out.extend(_walk(bullet.children))
    return out


def unsupported_claims(bullets: list[Bullet], source: str) -> list[str]:
    """Plain sentences naming each figure or quote in the bullets not found in the source."""
    if not source.strip():
        return []
    numbers = _source_numbers(source)
    normalized_source = _normalize(source)
    warnings: list[str] = []
    for text in _walk(bullets):
        for figure, candidates in _figure_values(text):
            if not candidates & numbers:
                warnings.append(f"figure {figure!r} not found in the source: \"{text[:80]}\"")
        for quote in _QUOTE.findall(text):
            if _normalize(quote) not in normalized_source:
                warnings.append(f"quoted phrase \"{quote[:60]}\" not found in the source")
    return warnings
