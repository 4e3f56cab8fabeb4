"""The offline summarizer: extractive, deterministic, no network.

It picks the most central sentences of the article (word frequency, title words, position)
and arranges them as bullets with nested details, by one of four layouts: one bullet per
subheading when the article has its own structure, reading order for a short text, the best
paragraphs for a longer one, and the best sentences for a single long paragraph.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from digest.config import SectionSettings
from digest.models import (
    Article,
    Bullet,
    Closing,
    Code,
    Item,
    Link,
    LLMStats,
    Notice,
    Summary,
    SummaryContext,
)
from digest.text import looks_korean, shorten, split_sentences

_WORD = re.compile(r"[0-9A-Za-z가-힣][0-9A-Za-z가-힣'’\-\.%]*")
_STOPWORDS = set(
    "the a an and or but if of to in on at for with by from as is are was were be been being "
    "this that these those it its we our you your they their he she his her not no so than then "
    "there here what which who whom when where why how all any can could will would should may "
    "might must do does did have has had i me my also into about more most such only just over".split()
)
# Common Korean particles stripped from word ends so that "모델은" and "모델이" count together.
_KO_PARTICLE = re.compile(r"(은|는|이|가|을|를|에|에서|으로|로|와|과|의|도|만|께서|에게|한테)$")
# Openings that lean on the sentence before ("This…", "그래서…"): weak on their own as a bullet.
_DANGLING = re.compile(
    r"^(?:this|these|that|those|it|they|but|however|so|also|and|then|such|"
    r"이런|이러한|이렇게|그래서|그러나|하지만|반면|물론|또한|그리고|이|그|이는|그런)\b",
    re.I,
)
_LIMIT = 220

Groups = list[tuple[str | None, list[str]]]
Sentences = list[tuple[int, str]]  # (paragraph index, sentence)


def _words(sentence: str) -> list[str]:
    words = []
    for raw in _WORD.findall(sentence.lower()):
        word = raw.strip(".-'’")
        if re.search(r"[가-힣]", word):
            word = _KO_PARTICLE.sub("", word) or word
        if len(word) > 1 and word not in _STOPWORDS:
            words.append(word)
    return words


def _blocks(markdown: str) -> Groups:
    """Group the article's paragraphs under their subheadings."""
    groups: Groups = [(None, [])]
    for block in re.split(r"\n\s*\n", markdown):
        block = block.strip()
        if not block:
            continue
        heading = re.match(r"^#{1,6}\s+(.*)$", block)
        if heading and "\n" not in block:
            groups.append((heading.group(1).strip(), []))
            continue
        lines = [re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line) for line in block.splitlines()]
        paragraph = " ".join(line.strip() for line in lines if line.strip())
        paragraph = re.sub(r"[*_`]{1,2}([^*_`]+)[*_`]{1,2}", r"\1", paragraph)
        paragraph = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", paragraph)
        groups[-1][1].append(paragraph)
    return [(h, ps) for h, ps in groups if ps]


def _same_text(a: str, b: str) -> bool:
    def squash(x: str) -> str:
        return re.sub(r"\W+", "", x).lower()

    return bool(squash(a)) and squash(a) == squash(b)


def _sentences(paragraphs: list[str], title: str, first: int = 0) -> Sentences:
    """The sentences of the paragraphs (numbered from `first`), the title's repeat left out."""
    return [
        (pi, s)
        for pi, p in enumerate(paragraphs, first)
        for s in split_sentences(p)
        if not _same_text(s, title)
    ]


def _scores(sentences: Sentences, title: str) -> dict[int, float]:
    """How central each sentence is: shared words, title words, position; weak openings lose."""
    frequency = Counter(w for _, s in sentences for w in set(_words(s)))
    title_words = set(_words(title))

    def score(index: int, sentence: str) -> float:
        words = _words(sentence)
        if not words:
            return 0.0
        central = sum(math.log1p(frequency[w]) for w in set(words)) / math.sqrt(len(words) + 3)
        bonus = 0.5 * len(title_words & set(words))
        position = 1.0 / (1 + index / 8)
        short = 0.4 if len(words) < 4 else 1.0
        dangling = 0.6 if _DANGLING.match(sentence) else 1.0
        long = 0.6 if len(sentence) > _LIMIT else 1.0
        return (central + bonus + position) * short * dangling * long

    return {i: score(i, s) for i, (_, s) in enumerate(sentences)}


def _bullet(sentences: Sentences, lead: int, detail: list[int]) -> Bullet:
    return Bullet(
        text=shorten(sentences[lead][1], _LIMIT),
        children=[Bullet(text=shorten(sentences[j][1], _LIMIT)) for j in detail],
    )


class OfflineSummarizer:
    """Extractive, deterministic, no network: picks the most central sentences."""

    name = "offline"

    def __init__(self, max_bullets: int = 4, max_children: int = 2, why: str = "") -> None:
        self.max_bullets = max_bullets
        self.max_children = max_children
        self.why = why
        self.stats = LLMStats(provider="offline", model=None)

    def describe(self) -> str:
        """The offline summarizer, and why it was chosen."""
        return "the built-in offline summarizer (extractive)" + (
            f": {self.why}" if self.why else ""
        )

    async def summarize(
        self, article: Article, link: Link, ctx: SummaryContext, *, fresh: bool = False
    ) -> Summary:
        """Summarize without a model (nothing is cached, so fresh changes nothing)."""
        return self.summarize_sync(article, link, ctx)

    def summarize_sync(self, article: Article, link: Link, ctx: SummaryContext) -> Summary:
        """The same, synchronously."""
        bullets = self.bullets(article)
        if not bullets and (link.note or article.description):
            bullets = [
                Bullet(text=shorten((link.note or article.description or "").strip(), _LIMIT))
            ]
        section = link.section
        if section is None and ctx.sections:
            section = choose_section(article, ctx.sections)
        warnings = []
        if ctx.language == "ko" and not looks_korean(article.text) and bullets:
            warnings.append(
                Notice(
                    code=Code.NOT_TRANSLATED,
                    message="summarized offline: bullets are quoted from the source, "
                    "not translated to Korean",
                )
            )
        return Summary(
            title=article.title or link.title or article.final_url,
            bullets=bullets,
            section=section,
            source="offline",
            warnings=warnings,
        )

    def bullets(self, article: Article) -> list[Bullet]:
        """The article's bullets, in the layout that suits its shape."""
        title = article.title or ""
        groups = _blocks(article.text)
        sentences = _sentences([p for _, paragraphs in groups for p in paragraphs], title)
        scored = _scores(sentences, title)
        if len([g for g in groups if g[0]]) >= 2:
            return self._by_heading(groups, sentences, scored, title)
        if len(sentences) <= self.max_bullets * 2:
            return self._in_order(sentences)
        if len({pi for pi, _ in sentences}) >= 2:
            return self._by_paragraph(sentences, scored)
        return self._by_rank(sentences, scored)

    def _by_heading(
        self, groups: Groups, sentences: Sentences, scored: dict[int, float], title: str
    ) -> list[Bullet]:
        """The article's own structure: one bullet per subheading, its best sentences below."""
        bullets: list[Bullet] = []
        offset = 0
        for heading, paragraphs in groups:
            ids = list(range(offset, offset + len(_sentences(paragraphs, title))))
            offset += len(ids)
            if not ids:
                continue
            best = sorted(sorted(ids, key=lambda i: -scored[i])[: self.max_children])
            children = [Bullet(text=shorten(sentences[i][1], _LIMIT)) for i in best]
            if heading:
                bullets.append(Bullet(text=shorten(heading, 120), children=children))
            elif children:
                bullets.append(Bullet(text=children[0].text, children=children[1:]))
            if len(bullets) >= self.max_bullets + 1:
                break
        return bullets

    def _in_order(self, sentences: Sentences) -> list[Bullet]:
        """A short text in its own order: each bullet leads with a sentence, details follow."""
        bullets: list[Bullet] = []
        tops = min(self.max_bullets, -(-len(sentences) // (1 + self.max_children)))
        size = -(-len(sentences) // tops) if tops else 1
        for start in range(0, len(sentences), size):
            chunk = [shorten(s, _LIMIT) for _, s in sentences[start : start + size]]
            bullets.append(Bullet(text=chunk[0], children=[Bullet(text=t) for t in chunk[1:]]))
        return bullets

    def _by_paragraph(self, sentences: Sentences, scored: dict[int, float]) -> list[Bullet]:
        """The best paragraphs; from each, its strongest sentences in reading order, the first
        as the bullet and the others as its details."""
        by_paragraph: dict[int, list[int]] = {}
        for i, (pi, _) in enumerate(sentences):
            by_paragraph.setdefault(pi, []).append(i)
        best = sorted(by_paragraph, key=lambda pi: -max(scored[i] for i in by_paragraph[pi]))
        bullets = []
        for pi in sorted(best[: self.max_bullets]):
            ids = sorted(by_paragraph[pi], key=lambda i: -scored[i])
            lead, *detail = sorted(ids[: 1 + self.max_children])
            bullets.append(_bullet(sentences, lead, detail))
        return bullets

    def _by_rank(self, sentences: Sentences, scored: dict[int, float]) -> list[Bullet]:
        """One long paragraph: the best sentences as bullets, the next best after each below it."""
        ranked = sorted(scored, key=lambda i: -scored[i])
        chosen = sorted(ranked[: self.max_bullets * (1 + self.max_children)])
        top = sorted(sorted(chosen, key=lambda i: -scored[i])[: self.max_bullets])
        bullets = []
        for i in top:
            later = [j for j in chosen if j > i and j not in top]
            limit = [j for j in top if j > i]
            detail = [j for j in later if not limit or j < limit[0]][: self.max_children]
            bullets.append(_bullet(sentences, i, detail))
        return bullets

    async def conclude(self, items: list[Item], ctx: SummaryContext) -> Closing | None:
        """The offline summarizer writes no conclusion."""
        return None

    async def aclose(self) -> None:
        """Nothing to release."""


def choose_section(article: Article, sections: list[SectionSettings]) -> str:
    """The configured section whose name and description share the most words with the article."""
    words = Counter(_words(f"{article.title} {article.text[:5000]}"))
    best, best_score = sections[0].name, -1.0
    for section in sections:
        keys = set(_words(f"{section.name} {section.description}"))
        points = sum(words[k] for k in keys)
        if points > best_score:
            best, best_score = section.name, points
    return best
