"""Triage: from hundreds of imported links to the few stories the editor would pick.

Applies to links that `digest import` wrote (their links.yaml entry carries `imported:`)
when `[triage] max_items` is above 0; links added by hand or promoted are always kept.

1. Stories: links reporting the same story are grouped by the similarity of title + lede
   (embeddings from the endpoint when an LLM is configured, else lexical n-grams). The
   primary source is the page the others link to, else the earliest, else one of
   `prefer_domains`; the others become the item's "Also covered by" sources.
2. Score 0-100 and a one-line reason per story, from the signals there are: similarity to
   `[triage] focus`, the editor's past choices (items kept versus deleted in earlier issues,
   as labels for a nearest-neighbour model over lexical features), the LLM's judgment of
   titles and ledes in batches of 30, and how many sites report the story.
3. Budget: `max_items` stories per issue, `[[sections]] max_items` quotas, and the room left
   under Gmail's clip; the rest goes to candidates.md, ranked, for `digest promote`.

Nothing here writes the draft; compose asks `triage()` which links to summarize.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from digest.cache import JsonCache, article_cache, stable_hash
from digest.config import Settings
from digest.draft import escape_title, read_draft
from digest.errors import DigestError, LinksError
from digest.links import read_links
from digest.models import Article, Code, Issue, Item, Link, LinkReport, Notice
from digest.offline import choose_section
from digest.similarity import (
    Sparse,
    cluster,
    cosine,
    dense_cosine,
    dense_pairs,
    dense_unit,
    sparse_pairs,
    tfidf,
)
from digest.urls import article_key, is_web_url, link_key, normalize_url
from digest.workspace import IssueFolder, Workspace, atomic_write, read_state

log = logging.getLogger(__name__)
TRIAGE_NAME = "triage.json"
CANDIDATES_NAME = "candidates.md"
LEXICAL_THRESHOLD = 0.35  # average-link cosine for "same story" over TF-IDF n-grams
EMBEDDING_THRESHOLD = 0.7  # the same over embeddings (rewrites of one story score ~0.7-0.9)
SCORING_BATCH = 30  # candidates per LLM scoring request
EMBEDDING_BATCH = 256  # texts per embeddings request
LEDE_CHARS = 400
# Gmail clips an HTML email at 102 KB; an item costs about 1.65 KB, the frame about 6 KB.
EMAIL_ITEM_BYTES = 1650
EMAIL_FRAME_BYTES = 6 * 1024
CACHE_VERSION = "triage-v1"


@runtime_checkable
class Judge(Protocol):
    """What triage needs from an LLM endpoint: embeddings and structured batch answers."""

    async def embed(self, texts: list[str], model: str) -> list[list[float]] | None: ...

    async def score_batch(
        self, focus: str, candidates: list[dict[str, Any]], sections: list[dict[str, str]]
    ) -> list[dict[str, Any]] | None: ...


def clip_room() -> int:
    """How many items fit in the email before Gmail clips it (with the measured sizes)."""
    return (102 * 1024 - EMAIL_FRAME_BYTES) // EMAIL_ITEM_BYTES


def lede(article: Article, link: Link | None = None, limit: int = LEDE_CHARS) -> str:
    """The opening of an article (its description, else its first paragraph), one line."""
    text = article.description or (link.description if link else None) or ""
    if not text:
        for block in re.split(r"\n\s*\n", article.text or ""):
            block = block.strip()
            if block and not block.startswith("#"):
                text = block
                break
    text = re.sub(r"\s+", " ", re.sub(r"[*_`#>]+", " ", text)).strip()
    return text[:limit]


def story_text(article: Article, link: Link | None = None) -> str:
    """What similarity and scoring look at: title and lede, never the full article."""
    title = article.title or (link.title if link else "") or ""
    return f"{title}\n{lede(article, link)}".strip()


def story_key(link: Link) -> str:
    """A story's id: from its primary link, stable across runs. 40 bits, so that two
    stories of one issue share an id about once in a million issues of 1,000 stories
    (24 bits collided in about one run in a thousand at 170 stories)."""
    return "s" + stable_hash(link_key(link))[:10]


def domain(url: str) -> str:
    """The host of a URL without `www.`."""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


# ---------------------------------------------------------------- state (triage.json)


def read_triage_state(folder: IssueFolder) -> dict[str, Any]:
    """triage.json: what the editor promoted (link keys)."""
    path = folder.path / TRIAGE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"promoted": []}
    promoted = data.get("promoted") if isinstance(data, dict) else None
    return {"promoted": [str(p) for p in promoted] if isinstance(promoted, list) else []}


def promote(ws: Workspace, folder: IssueFolder, urls: list[str]) -> list[str]:
    """Mark triaged-out links as the editor's picks; the next compose summarizes them."""
    if not urls:
        raise LinksError("no URLs given; pass the candidates' URLs from candidates.md")
    links = read_links(folder.links)
    keys = {link_key(link): link for link in links}
    state = read_triage_state(folder)
    promoted = list(state["promoted"])
    messages = []
    for url in urls:
        key = link_key(url.strip())
        if key not in keys:
            raise LinksError(
                f"{url}: not a link of issue {folder.id}; candidates.md lists the ones to promote"
                " (nothing was changed)"
            )
    for url in urls:
        key = link_key(url.strip())
        if key in promoted:
            messages.append(f"{url}: already promoted")
            continue
        promoted.append(key)
        messages.append(f"promoted {keys[key].url}; `digest compose` summarizes it")
    data = {"promoted": promoted}
    atomic_write(folder.path / TRIAGE_NAME, json.dumps(data, indent=2) + "\n")
    return messages


# ---------------------------------------------------------------- the editor's history


@dataclass
class Example:
    """An item of an earlier issue: kept by the editor or deleted from the draft."""

    text: str
    kept: bool
    title: str
    issue: str


def cached_article(articles: JsonCache, link: Link, folder: IssueFolder) -> Article | None:
    """The article compose cached for a link of that issue, or None (missing or unreadable)."""
    return articles.get_model(article_key(link, folder.path), Article)


def past_choices(ws: Workspace, folder: IssueFolder, limit: int = 12) -> list[Example]:
    """Kept and deleted items of up to `limit` earlier issues (state.json against draft.md)."""

    articles = article_cache(ws.cache_dir)
    sections = ws.settings.section_names() or None
    examples: list[Example] = []
    earlier = [f for f in ws.issue_folders() if f.path.resolve() != folder.path.resolve()]
    if folder.id.isdigit():
        earlier = [f for f in earlier if int(f.id) < int(folder.id)]
    for past in earlier[-limit:]:
        composed = read_state(past)
        if not composed or not past.draft.is_file():
            continue
        try:
            issue = read_draft(past.draft, sections=sections)
            links = {link_key(link): link for link in read_links(past.links)}
        except DigestError:
            continue
        in_draft = {item.url for item in issue.items()}
        for key, made in composed.items():
            link = links.get(key) or Link(url=key)
            article = cached_article(articles, link, past)
            text = (
                story_text(article, link)
                if article
                else f"{link.title or ''}\n{link.description or ''}"
            )
            if text.strip():
                title = (article.title if article else None) or link.title or key
                examples.append(Example(text, made in in_draft, title, past.id))
    return examples


# ---------------------------------------------------------------- the pool


@dataclass
class Entry:
    """A link triage looks at: one to decide on (imported), or one already decided."""

    index: int  # position in links.yaml
    link: Link
    article: Article
    kind: str  # "pool" (to decide), "hand" (kept, new), "draft" (in the draft), "deleted"
    item_url: str = ""  # for draft/deleted: the item compose made
    also: list[str] = field(default_factory=list)  # for draft: the item's other sources
    fetch: LinkReport | None = None  # how the page was fetched (bytes, time, cache)

    @property
    def url(self) -> str:
        final = self.article.final_url
        return normalize_url(final) if is_web_url(final) else self.link.url


@dataclass
class Story:
    """Links that report one story; primary first."""

    id: str
    members: list[Entry]
    score: int = 0
    reason: str = ""
    section: str | None = None

    @property
    def primary(self) -> Entry:
        return self.members[0]


@dataclass
class Outcome:
    """What triage decided for the links it was given."""

    selected: list[Story] = field(default_factory=list)  # primaries to summarize
    candidates: list[Story] = field(default_factory=list)  # ranked, not selected
    reports: dict[int, LinkReport] = field(default_factory=dict)  # decided without summary
    also: dict[int, list[str]] = field(default_factory=dict)  # primary index -> other URLs
    section: dict[int, str] = field(default_factory=dict)  # primary index -> section
    scores: dict[int, tuple[str, int, str]] = field(default_factory=dict)  # story, score, reason
    budget: int = 0
    requests: int = 0
    warnings: list[Notice] = field(default_factory=list)  # for the whole issue
    fetched: dict[int, LinkReport] = field(default_factory=dict)  # index -> its fetch

    def remaining(self, jobs: list[Any]) -> list[Any]:
        """Compose's jobs (index, link, refresh, replace) less the ones decided here; a
        selected link carries the section its quota was counted in."""
        out = []
        for index, link, *rest in jobs:
            if index in self.reports:
                continue
            if index in self.section and not link.section:
                link = link.model_copy(update={"section": self.section[index]})
            out.append((index, link, *rest))
        return out

    def carry_fetch(self, index: int, report: LinkReport) -> None:
        """What fetching the link cost (triage fetched it; compose then read the cache)."""
        fetched = self.fetched.get(index)
        if fetched is not None:
            report.bytes, report.fetch_seconds = fetched.bytes, fetched.fetch_seconds
            report.fetch_cached = fetched.fetch_cached

    def annotate(self, index: int, report: LinkReport, item: Item | None) -> None:
        """Add the story, score, reason and the other sources to a summarized link."""
        self.carry_fetch(index, report)
        if index in self.scores:
            report.story, report.score, report.reason = self.scores[index]
        if item is not None and self.also.get(index):
            item.also = list(self.also[index])


Scored = tuple[int, str, str | None]  # the LLM's score, reason and section


def combine(
    llm: Scored | None, focus: float | None, leaning: tuple[float, str], sites: int
) -> tuple[int, str, str | None]:
    """Score 0-100, reason and section from the signals there are (each one optional)."""
    parts: list[tuple[float, float]] = []  # (weight, value 0..1)
    why: list[str] = []
    section = None
    if llm is not None:
        parts.append((0.5, llm[0] / 100))
        section = llm[2]
        if llm[1]:
            why.append(llm[1])
    if focus is not None:
        parts.append((0.3, focus))
        if focus >= 0.5:
            why.append("matches the focus")
        elif focus < 0.1:
            why.append("far from the focus")
    lean, example = leaning
    if example:
        parts.append((0.3, (lean + 1) / 2))
        why.append(example)
    total = sum(w for w, _ in parts)
    base = sum(w * v for w, v in parts) / total if total else 0.5
    # A story several sites report weighs a little more (a tie-breaker, not a topic).
    if sites > 1:
        why.append(f"reported by {sites} sites")
    score = round(100 * base * (0.85 + 0.05 * min(sites - 1, 3)))
    return score, "; ".join(why)[:200] or "no focus, history or LLM to judge by", section


def choose_primary(members: list[Entry], prefer: Sequence[str]) -> list[Entry]:
    """Order a story's links: the page the others link to, the earliest, a preferred domain."""
    keys = {link_key(m.url): m for m in members}
    inbound = {id(m): 0 for m in members}
    for member in members:
        for target in member.article.links:
            other = keys.get(link_key(target)) if is_web_url(target) else None
            if other is not None and other is not member:
                inbound[id(other)] += 1
    prefer_rank = [p.lower().removeprefix("www.") for p in prefer]

    def rank(member: Entry) -> tuple[Any, ...]:
        host = domain(member.url)
        preferred = next(
            (i for i, p in enumerate(prefer_rank) if host == p or host.endswith("." + p)),
            len(prefer_rank),
        )
        date = member.article.date or "9999"
        return (-inbound[id(member)], date[:10], preferred, member.index)

    return sorted(members, key=rank)


class Triage:
    """One triage run over an issue's links."""

    def __init__(
        self,
        ws: Workspace,
        folder: IssueFolder,
        judge: Judge | None,
        *,
        history: list[Example] | None = None,
    ) -> None:
        self.ws = ws
        self.folder = folder
        self.settings: Settings = ws.settings
        self.judge = judge
        self.history = past_choices(ws, folder) if history is None else history
        self.cache = JsonCache(ws.cache_dir / "triage")
        self.requests = 0
        self.budget = 0
        self.section_counts: dict[str, int] = {}
        self.warnings: list[Notice] = []

    # ------------------------------------------------------------ similarity

    async def _embeddings(self, texts: list[str]) -> list[list[float]] | None:
        """Embeddings of texts: cached per text; the rest in one request per batch."""
        assert self.judge is not None
        model = self.settings.llm.embedding_model
        keys = [stable_hash(CACHE_VERSION, "embedding", model, t) for t in texts]
        vectors: list[list[float] | None] = []
        for key in keys:
            cached = self.cache.get(key)
            vectors.append(cached if isinstance(cached, list) else None)
        missing = [i for i, v in enumerate(vectors) if v is None]
        batches = [
            missing[start : start + EMBEDDING_BATCH]
            for start in range(0, len(missing), EMBEDDING_BATCH)
        ]
        self.requests += len(batches)
        judge = self.judge
        answers = await asyncio.gather(
            *(judge.embed([texts[i] for i in batch], model) for batch in batches)
        )
        for batch, got in zip(batches, answers, strict=True):
            if got is None or len(got) != len(batch):
                return None
            for i, vector in zip(batch, got, strict=True):
                vectors[i] = dense_unit(vector)
        await asyncio.to_thread(self._store, [(keys[i], vectors[i]) for i in missing])
        return [v for v in vectors if v is not None]

    def _store(self, entries: list[tuple[str, Any]]) -> None:
        """Write cache entries (off the event loop: each one is fsynced)."""
        for key, value in entries:
            self.cache.set(key, value)

    # ------------------------------------------------------------ scoring

    async def _llm_scores(self, stories: list[Story]) -> dict[str, Scored]:
        """The LLM's score, reason and section per story: cached, else 30 per request."""
        if self.judge is None or not self.settings.triage.llm_scoring or not stories:
            return {}
        sections = [{"name": s.name, "description": s.description} for s in self.settings.sections]
        setup = json.dumps([self.settings.triage.focus, sections, self.settings.llm.model])
        out: dict[str, Scored] = {}
        todo: list[tuple[Story, str, str]] = []
        for story in stories:
            text = story_text(story.primary.article, story.primary.link)
            key = stable_hash(CACHE_VERSION, "score", setup, text)
            cached = self.cache.get(key)
            if isinstance(cached, dict) and isinstance(cached.get("score"), int):
                out[story.id] = (
                    cached["score"],
                    str(cached.get("reason", "")),
                    cached.get("section"),
                )
            else:
                todo.append((story, key, text))
        batches = [todo[n : n + SCORING_BATCH] for n in range(0, len(todo), SCORING_BATCH)]
        self.requests += len(batches)
        judge = self.judge
        answers = await asyncio.gather(
            *(
                judge.score_batch(
                    self.settings.triage.focus,
                    [
                        {"id": n, "title": text.split("\n", 1)[0], "lede": text.partition("\n")[2]}
                        for n, (_, _, text) in enumerate(batch)
                    ],
                    sections,
                )
                for batch in batches
            )
        )
        names = {s["name"] for s in sections}
        fresh: list[tuple[str, Any]] = []
        for batch, answer in zip(batches, answers, strict=True):
            for story, key, row in self._read_scores(batch, answer, names):
                out[story.id] = row
                fresh.append((key, {"score": row[0], "reason": row[1], "section": row[2]}))
        await asyncio.to_thread(self._store, fresh)
        return out

    def _read_scores(
        self,
        batch: list[tuple[Story, str, str]],
        answer: list[dict[str, Any]] | None,
        names: set[str],
    ) -> list[tuple[Story, str, Scored]]:
        """The usable rows of one scoring answer (the model's output is not trusted)."""
        if not answer:
            self.warnings.append(
                Notice(
                    code=Code.TRIAGE_UNSCORED,
                    message=f"LLM scoring of {len(batch)} candidates failed; they were "
                    "scored by focus, past choices and coverage only",
                )
            )
            return []
        rows = []
        for row in answer:
            n = row.get("id")
            if not isinstance(n, int) or not 0 <= n < len(batch):
                continue
            try:
                score = max(0, min(100, round(float(row.get("score") or 0))))
            except (TypeError, ValueError, OverflowError):
                continue  # not a number: this candidate goes without the LLM's score
            reason = re.sub(r"\s+", " ", str(row.get("reason") or "")).strip()[:160]
            section = row.get("section") if row.get("section") in names else None
            story, key, _ = batch[n]
            rows.append((story, key, (score, reason, section)))
        return rows

    # ------------------------------------------------------------ the run

    async def run(self, entries: list[Entry], reports: dict[int, LinkReport]) -> Outcome:
        """Group, score and select among the pool entries; the others only anchor stories."""
        outcome = Outcome(reports=reports, budget=self.budget)
        texts = [story_text(e.article, e.link) for e in entries]
        focus = self.settings.triage.focus.strip()
        vectors = tfidf(texts)  # for stories: words common to many links are dropped
        # For topics, common words are the point: focus and history keep every feature.
        topical = tfidf([*texts, focus, *(h.text for h in self.history)], max_df=1.0)
        embedded = None
        if self.judge is not None and any(e.kind == "pool" for e in entries):
            embedded = await self._embeddings([*texts, focus] if focus else texts)
            if embedded is None:
                self.warnings.append(
                    Notice(
                        code=Code.TRIAGE_LEXICAL,
                        message="the embeddings request failed (llm.embedding_model = "
                        f"{self.settings.llm.embedding_model!r}); stories were grouped by "
                        "lexical similarity",
                    )
                )
        if embedded is not None:
            pairs = dense_pairs(embedded[: len(entries)], EMBEDDING_THRESHOLD * 0.5)
            groups = cluster(len(entries), pairs, EMBEDDING_THRESHOLD)
        else:
            pairs = sparse_pairs(vectors, LEXICAL_THRESHOLD * 0.5)
            groups = cluster(len(entries), pairs, LEXICAL_THRESHOLD)
        log.debug("triage: %d groups", len(groups))
        stories = self._stories(entries, groups, outcome)
        llm = await self._llm_scores(stories)
        self._score(stories, entries, topical, embedded, llm)
        self._select(stories, outcome)
        outcome.requests = self.requests
        outcome.warnings = list(self.warnings)
        return outcome

    def _stories(
        self, entries: list[Entry], groups: list[list[int]], outcome: Outcome
    ) -> list[Story]:
        """Groups with links to decide: a new story, or one already decided (an anchor)."""
        stories: list[Story] = []
        for group in groups:
            members = [entries[i] for i in group]
            anchors = [m for m in members if m.kind != "pool"]
            pool = [m for m in members if m.kind == "pool"]
            if not pool:
                continue
            if anchors:
                self._resolve_anchor(anchors, pool, outcome)
                continue
            ordered = choose_primary(pool, self.settings.triage.prefer_domains)
            story_id = story_key(ordered[0].link)
            stories.append(Story(id=story_id, members=ordered))
        return stories

    def _score(
        self,
        stories: list[Story],
        entries: list[Entry],
        topical: list[Sparse],
        embedded: list[list[float]] | None,
        llm: dict[str, Scored],
    ) -> None:
        """Each story's score and reason, from its primary's text and the signals there are.

        Focus similarity is scaled by the best of every link looked at (decided ones too),
        so that a re-run scores the same."""
        position = {id(e): i for i, e in enumerate(entries)}
        near_focus: list[float] = []
        if self.settings.triage.focus.strip():
            near_focus = [
                dense_cosine(embedded[i], embedded[len(entries)])
                if embedded is not None
                else cosine(topical[i], topical[len(entries)])
                for i in range(len(entries))
            ]
        top_focus = max(near_focus, default=0.0) or 1.0
        history = topical[len(entries) + 1 :]
        for story in stories:
            at = position[id(story.primary)]
            focus = max(near_focus[at], 0.0) / top_focus if near_focus else None
            story.score, story.reason, section = combine(
                llm.get(story.id), focus, self._leaning(topical[at], history), len(story.members)
            )
            story.section = section or story.section

    def _leaning(self, vector: Sparse, history: list[Sparse]) -> tuple[float, str]:
        """Nearest earlier items (k = 5): similarity-weighted vote of kept (+1) vs deleted (-1)."""
        if not history or not vector:
            return 0.0, ""
        sims = sorted(((cosine(vector, h), n) for n, h in enumerate(history)), key=lambda p: -p[0])[
            :5
        ]
        sims = [(s, n) for s, n in sims if s > 0.05]
        if not sims:
            return 0.0, ""
        weight = sum(s for s, _ in sims)
        vote = sum(s * (1 if self.history[n].kept else -1) for s, n in sims) / weight
        best = self.history[sims[0][1]]
        verb = "kept" if best.kept else "deleted"
        title = re.sub(r"\s+", " ", best.title)[:60]
        return vote, f"like {title!r} you {verb} in issue {best.issue}"

    def _resolve_anchor(self, anchors: list[Entry], pool: list[Entry], outcome: Outcome) -> None:
        """Pool links of a story that is already decided: merged, or not proposed again."""
        order = {"draft": 0, "hand": 1, "deleted": 2}
        anchor = sorted(anchors, key=lambda a: order.get(a.kind, 3))[0]
        story_id = story_key(anchor.link)
        for entry in pool:
            report = LinkReport(url=entry.link.url, final_url=entry.url, status="skipped")
            report.story = story_id
            report.title = entry.article.title or None
            if anchor.kind == "hand":
                report.status = "merged"
                report.merged_into = anchor.link.url
                outcome.also.setdefault(anchor.index, []).append(entry.url)
            elif anchor.kind == "draft" and entry.url in anchor.also:
                report.status = "merged"
                report.merged_into = anchor.item_url
            elif anchor.kind == "draft":
                report.error = (
                    f"same story as {anchor.item_url}, already in the draft "
                    "(`digest promote` adds it as an item of its own)"
                )
            else:
                report.error = (
                    f"same story as {anchor.item_url}, which the editor deleted from the draft; "
                    "not proposed again"
                )
            outcome.reports[entry.index] = report

    def _select(self, stories: list[Story], outcome: Outcome) -> None:
        """Fill the budget with the best stories; quotas per section; the rest are candidates."""
        names = self.settings.section_names()
        quotas = {s.name: s.max_items for s in self.settings.sections if s.max_items}
        used = dict(self.section_counts)
        budget = outcome.budget
        for story in sorted(stories, key=lambda s: (-s.score, s.primary.index)):
            primary = story.primary
            if names:
                story.section = (
                    primary.link.section
                    if primary.link.section in names
                    else story.section or choose_section(primary.article, self.settings.sections)
                )
            quota = quotas.get(story.section or "")
            fits = budget > 0 and (quota is None or used.get(story.section or "", 0) < quota)
            if fits:
                budget -= 1
                used[story.section or ""] = used.get(story.section or "", 0) + 1
                outcome.selected.append(story)
                outcome.also[primary.index] = [m.url for m in story.members[1:]]
                if story.section:
                    outcome.section[primary.index] = story.section
            else:
                outcome.candidates.append(story)
                if budget > 0 and quota is not None:
                    story.reason = f"{story.reason}; section {story.section!r} is full ({quota})"
            for n, member in enumerate(story.members):
                outcome.scores[member.index] = (story.id, story.score, story.reason)
                if n == 0 and fits:
                    continue
                report = LinkReport(url=member.link.url, final_url=member.url, status="candidate")
                report.title = member.article.title or None
                report.section = story.section
                if fits:
                    report.status = "merged"
                    report.merged_into = primary.link.url
                report.story, report.score, report.reason = story.id, story.score, story.reason
                outcome.reports[member.index] = report


# ---------------------------------------------------------------- candidates.md


def write_candidates(folder: IssueFolder, stories: list[Story], budget_note: str) -> None:
    """candidates.md: the stories not selected, ranked, one line each (removed when none)."""
    path = folder.path / CANDIDATES_NAME
    if not stories:
        if path.exists():
            path.unlink()
        return
    lines = [
        f"# Candidates for issue {folder.id}",
        "",
        f"Not selected by triage ({budget_note}). Promote one with `digest promote URL`",
        "(or move its entry in links.yaml out of the import by deleting its `imported:` line);",
        "the next `digest compose` summarizes it. Ranked by score (0-100): score, title, reason,",
        "story, source.",
        "",
    ]
    ranked = sorted(stories, key=lambda s: (-s.score, s.primary.index))
    for rank, story in enumerate(ranked, start=1):
        primary = story.primary
        title = escape_title(primary.article.title or primary.link.title or primary.url)
        others = ", ".join(domain(m.url) or m.url for m in story.members[1:])
        also = f" (also {others})" if others else ""
        reason = escape_title(story.reason)
        lines.append(
            f"{rank}. **{story.score}** [{title}]({primary.link.url}) — {reason} · "
            f"story `{story.id}` · {domain(primary.url) or primary.link.url}{also}"
        )
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write(path, text)


ArticleFetch = Callable[[Link], Awaitable[tuple[Article | None, LinkReport]]]


async def plan(
    ws: Workspace,
    folder: IssueFolder,
    new_links: list[tuple[int, Link]],
    *,
    draft: Issue | None,
    composed: dict[str, str],
    fetch: ArticleFetch,
    judge: Judge | None,
) -> Outcome | None:
    """Decide which new links compose summarizes; None when triage is off or has no imports.

    new_links are the links compose would summarize (not in the draft, not refreshed).
    Imported ones not promoted form the pool; hand-picked ones are kept and anchor stories,
    as do the draft's items (their stories are not proposed again, deleted ones neither).
    """
    settings = ws.settings
    if settings.triage.max_items <= 0:
        return None
    # Promoted, or also written in links.yaml without `imported:` (the editor moved it there).
    promoted = set(read_triage_state(folder)["promoted"])
    promoted |= {link_key(ln) for ln in read_links(folder.links) if not ln.imported}
    pool = [(i, ln) for i, ln in new_links if ln.imported and link_key(ln) not in promoted]
    if not pool:
        write_candidates(folder, [], "")
        return None
    hand = [(i, ln) for i, ln in new_links if (i, ln) not in pool]
    entries, reports = await _fetched_entries(pool, hand, fetch)
    anchors, imported_made = _draft_anchors(ws, folder, draft, composed, promoted)
    triage = Triage(ws, folder, judge)
    items = len(draft.items()) if draft is not None else 0
    room = clip_room() - items - len(hand)
    left = settings.triage.max_items - len(imported_made)
    triage.budget = max(0, min(left, room))
    section_of = {i.url: s.name or "" for s in (draft.sections if draft else []) for i in s.items}
    for made in imported_made:
        if made in section_of:
            name = section_of[made]
            triage.section_counts[name] = triage.section_counts.get(name, 0) + 1
    started = time.monotonic()
    outcome = await triage.run(entries + anchors, reports)
    outcome.fetched = {e.index: e.fetch for e in entries if e.fetch is not None}
    for index, decided in outcome.reports.items():
        if index in outcome.fetched:
            outcome.carry_fetch(index, decided)
    log.debug("triage: decided in %.2f s, %d requests", time.monotonic() - started, triage.requests)
    chosen = len(outcome.selected) + len(imported_made)
    note = f"triage.max_items = {settings.triage.max_items}, {chosen} selected"
    if room < left:
        note += f"; {max(room, 0)} more fit under Gmail's 102 KB clip"
    write_candidates(folder, outcome.candidates, note)
    return outcome


async def _fetched_entries(
    pool: list[tuple[int, Link]], hand: list[tuple[int, Link]], fetch: ArticleFetch
) -> tuple[list[Entry], dict[int, LinkReport]]:
    """Fetch and extract the new links (all at once); failures are reported right away
    (so a hand-added link is not fetched twice)."""
    started = time.monotonic()
    fetched = await asyncio.gather(*(fetch(ln) for _, ln in [*pool, *hand]))
    log.debug("triage: %d links fetched in %.2f s", len(fetched), time.monotonic() - started)
    reports: dict[int, LinkReport] = {}
    entries: list[Entry] = []
    for n, ((index, link), (article, report)) in enumerate(
        zip([*pool, *hand], fetched, strict=True)
    ):
        if article is None:
            reports[index] = report
        else:
            entry = Entry(index, link, article, "pool" if n < len(pool) else "hand")
            entry.fetch = report
            entries.append(entry)
    return entries, reports


def _draft_anchors(
    ws: Workspace,
    folder: IssueFolder,
    draft: Issue | None,
    composed: dict[str, str],
    promoted: set[str],
) -> tuple[list[Entry], list[str]]:
    """The items compose made (in the draft, or deleted by the editor) as story anchors,
    and the items made from imported links (they count against max_items)."""
    articles = article_cache(ws.cache_dir)
    items = {item.url: item for item in draft.items()} if draft is not None else {}
    links = {link_key(ln): (n, ln) for n, ln in enumerate(read_links(folder.links))}
    anchors: list[Entry] = []
    imported_made: list[str] = []
    for key, made in composed.items():
        index, link = links.get(key, (-1, Link(url=key)))
        if link.imported and key not in promoted:
            imported_made.append(made)
        article = cached_article(articles, link, folder)
        if article is None:  # the cache was cleared: the entry's own hints, or the item's title
            title = link.title or (items[made].title if made in items else "")
            if not (title or link.description):
                continue
            article = Article(url=key, final_url=made, title=title, description=link.description)
        kind = "draft" if made in items else "deleted"
        also = items[made].also if made in items else []
        anchors.append(Entry(index, link, article, kind, item_url=made, also=also))
    return anchors, imported_made
