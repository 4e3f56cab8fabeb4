"""The OpenAI-compatible summarizer: prompts, one summary or parts and a merge, a cache.

The requests go through `digest.endpoint.Endpoint` (the client, the first-request probe,
retries, giving up on an unusable endpoint, tokens and cost, the response format and its
downgrade from json_schema to json_object to plain text); the answers are read by
`digest.replies` (a JSON reply against its schema, a prose reply as a Markdown bullet list).
This module decides what to ask: the prompts (data delimited, look-alike delimiters defused),
and one repair request for a reply that fails validation.
When no answer can be had (retries run out, the model refuses, the endpoint was given up),
the item is summarized offline with an `llm-fallback` warning.

An article longer than `llm.max_input_chars` is summarized in parts (map: one request per
part, cut on paragraph boundaries; then one merge request over the parts' bullets); at most
`llm.max_parts` parts are read and the rest is cut with an `article-cut` warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import TemplateError

from digest.cache import JsonCache, stable_hash
from digest.config import LLMSettings, Secrets
from digest.draft import default_closing_title
from digest.endpoint import Endpoint, FormatRefused, ModeChanged, NoAnswer
from digest.errors import ConfigError
from digest.models import (
    Article,
    Bullet,
    Closing,
    Code,
    Item,
    Link,
    Notice,
    Summary,
    SummaryContext,
)
from digest.offline import OfflineSummarizer
from digest.replies import (
    CLOSING_SCHEMA,
    BadReply,
    SummaryDraft,
    clean_line,
    is_refusal,
    looks_json,
    parse_closing_json,
    parse_closing_markdown,
    parse_markdown,
    parse_scores,
    parse_summary_json,
    scores_schema,
    summary_schema,
    to_bullets,
)
from digest.templates import make_environment
from digest.text import looks_korean, plural

T = TypeVar("T")

LANGUAGE_NAMES = {
    "ko": "Korean (한국어)",
    "en": "English",
    "ja": "Japanese (日本語)",
    "zh": "Chinese (中文)",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "vi": "Vietnamese",
    "ru": "Russian",
}

_DELIMITER = re.compile(
    r"<(\s*/?\s*(?:article|note|title_hint|description|items|candidates|focus|parts|part)\b)",
    re.I,
)


def neutralize(text: str) -> str:
    """Defang look-alikes of the prompt's delimiters inside data (same length)."""
    return _DELIMITER.sub(lambda m: "‹" + m.group(1), text or "")


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters, cut on a paragraph (else sentence, else word) boundary."""
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    for boundary in ("\n\n", "\n", ". ", "다. ", " "):
        index = head.rfind(boundary)
        if index >= limit // 2:
            return head[: index + len(boundary.rstrip())].rstrip(), True
    return head.rstrip(), True


def split_parts(text: str, limit: int, max_parts: int) -> tuple[list[str], bool]:
    """Consecutive parts of at most `limit` characters (cut like cut_text), at most
    `max_parts` of them; True when text was left over."""
    parts: list[str] = []
    rest = text
    while rest and len(parts) < max_parts:
        part, was_cut = cut_text(rest, limit)
        parts.append(part)
        rest = rest[len(part) :].lstrip() if was_cut else ""
    return parts, bool(rest)


class OpenAISummarizer:
    """Summaries from any OpenAI-compatible chat completions endpoint."""

    name = "openai"

    def __init__(
        self,
        settings: LLMSettings,
        secrets: Secrets,
        *,
        base_url: str | None = None,
        cache_dir: Path | None = None,
        templates_dir: Path | None = None,
        client: Any = None,
        backoff: float = 1.0,
    ) -> None:
        self.settings = settings
        key = secrets.openai_api_key.get_secret_value() if secrets.openai_api_key else None
        self.endpoint = Endpoint(settings, key, base_url=base_url, client=client, backoff=backoff)
        self.stats = self.endpoint.stats
        self.cache = JsonCache(cache_dir)
        self._offline = OfflineSummarizer()
        self._env = make_environment(templates_dir, trim_blocks=False)
        self._merge_hash = stable_hash(
            self._env.loader.get_source(self._env, "prompts/merge_user.md.j2")[0]  # type: ignore[union-attr]
        )
        self._prompt_hash = stable_hash(
            *(
                self._env.loader.get_source(self._env, f"prompts/{name}")[0]  # type: ignore[union-attr]
                for name in ("summary_system.md.j2", "summary_user.md.j2")
            )
        )

    def _render(self, name: str, **values: Any) -> str:
        try:
            return self._env.get_template(f"prompts/{name}").render(**values).strip()
        except TemplateError as exc:
            raise ConfigError(
                f"templates/prompts/{name}: {exc}; fix or delete the override"
            ) from None

    def describe(self) -> str:
        """Which summarizer, model and endpoint this run uses (said when compose starts)."""
        return f"LLM {self.settings.model!r} at {self.endpoint.url}"

    @property
    def unavailable(self) -> str | None:
        """Why the endpoint was given up for this run (every later item falls back), or None."""
        return self.endpoint.unavailable

    @property
    def probe_grace(self) -> float:
        """Seconds the other requests wait for the first request's answer."""
        return self.endpoint.probe_grace

    @probe_grace.setter
    def probe_grace(self, seconds: float) -> None:
        self.endpoint.probe_grace = seconds

    def prepare(self) -> None:
        """Start importing openai in the background (see Endpoint.prepare)."""
        self.endpoint.prepare()

    # ------------------------------------------------------------ asking

    async def _answer(
        self,
        kind: str,
        values: dict[str, Any],
        schema: dict[str, Any],
        parse_json: Callable[[str], T],
        parse_text: Callable[[str], T],
        user_template: str | None = None,
    ) -> T:
        """A parsed answer: json_schema, then json_object, then plain text; one repair."""
        repair: list[dict[str, str]] = []
        user = self._render(user_template or f"{kind}_user.md.j2", **values)
        while True:
            mode = self.endpoint.mode
            output = "text" if mode == "text" else "json"
            system = self._render(f"{kind}_system.md.j2", output=output, **values["shared"])
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
                *repair,
            ]
            try:
                response_format = self.endpoint.response_format(mode, schema, kind)
                message = await self.endpoint.chat(messages, response_format, mode)
            except FormatRefused:
                self.endpoint.downgrade(mode)
                continue
            except ModeChanged:
                continue
            refused = getattr(message, "refusal", None)
            if refused:
                raise NoAnswer(
                    f"the model refused: {self.endpoint.redact(clean_line(refused))[:160]}"
                )
            content = (message.content or "").strip()
            if not content:
                raise NoAnswer("the model returned an empty answer")
            if is_refusal(content):
                raise NoAnswer(f"the model refused: {clean_line(content)[:160]}")
            try:
                if mode == "text":
                    return parse_text(content)
                if not looks_json(content):
                    if mode == "json_schema":  # the endpoint ignores response_format: ask again
                        self.endpoint.downgrade(mode)
                        continue
                    self.endpoint.downgrade(mode)
                    return parse_text(content)
                return parse_json(content)
            except BadReply as exc:
                if repair or mode == "text":
                    raise NoAnswer(f"the model's answer could not be used: {exc}") from None
                error = str(exc)
                repair = [
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": self._render("repair.md.j2", error=error)},
                ]

    # ------------------------------------------------------------ the protocol

    def _shared(self, ctx: SummaryContext) -> dict[str, Any]:
        return {
            "language": ctx.language,
            "language_name": LANGUAGE_NAMES.get(ctx.language, ctx.language),
            "sections": [{"name": s.name, "description": s.description} for s in ctx.sections],
            "newsletter": ctx.newsletter,
        }

    def cache_key(self, text: str, link: Link, ctx: SummaryContext) -> str:
        """What a summary depends on: text, hints, model, prompts, language, sections."""
        sections = json.dumps([[s.name, s.description] for s in ctx.sections], ensure_ascii=False)
        return stable_hash(
            "summary-v1",
            hashlib.sha256(text.encode("utf-8")).hexdigest(),
            self.settings.model,
            self._prompt_hash,
            ctx.language,
            sections,
            link.note or "",
            link.title or "",
            link.description or "",
        )

    def _fallback(
        self, article: Article, link: Link, ctx: SummaryContext, why: str, warnings: list[Notice]
    ) -> Summary:
        summary = self._offline.summarize_sync(article, link, ctx)
        summary.warnings = [
            *warnings,
            Notice(
                code=Code.LLM_FALLBACK,
                message=f"LLM summary failed ({self.endpoint.redact(why)}); "
                "fell back to the offline summarizer",
            ),
            *summary.warnings,
        ]
        return summary

    async def summarize(
        self, article: Article, link: Link, ctx: SummaryContext, *, fresh: bool = False
    ) -> Summary:
        """Summarize one article with the LLM (cached unless fresh); offline when it fails.
        A long article is summarized in parts, then merged (see the module docstring)."""
        limit, max_parts = self.settings.max_input_chars, self.settings.max_parts
        parts, was_cut = split_parts(neutralize(article.text).strip(), limit, max_parts)
        text = "\n\n".join(parts)
        warnings: list[Notice] = []
        if was_cut:
            read = len(text)
            warnings.append(
                Notice(
                    code=Code.ARTICLE_CUT,
                    message=f"article cut to {read:,} of {len(article.text):,} characters for "
                    f"the LLM: {plural(len(parts), 'part')} of at most {limit:,} "
                    f"(llm.max_input_chars = {limit}, llm.max_parts = {max_parts}); "
                    "the rest was not summarized",
                )
            )
        key = self.cache_key(text, link, ctx)
        if len(parts) > 1:
            key = stable_hash(key, "parts-v1", self._merge_hash, str(limit), str(len(parts)))
        summary = None if fresh else self.cache.get_model(key, Summary)
        if summary is not None:
            self.stats.cached += 1
            summary.source = "cache"
            if link.section:
                summary.section = link.section
            return summary
        values = {
            "shared": self._shared(ctx),
            "url": article.final_url
            if article.final_url.startswith(("http://", "https://"))
            else "",
            "title_hint": neutralize(clean_line(link.title or article.title or "")),
            "description": neutralize(clean_line(link.description or article.description or "")),
            "note": neutralize(clean_line(link.note or "")),
        }
        try:
            if len(parts) == 1:
                draft = await self._summary_of(values, parts[0], 1, 1, was_cut, ctx)
            else:
                draft = await self._summary_in_parts(values, parts, was_cut, ctx)
        except NoAnswer as exc:
            return self._fallback(article, link, ctx, str(exc), warnings)
        summary = self._summary(draft, article, link, ctx, warnings)
        await asyncio.to_thread(self.cache.set, key, summary.model_dump(mode="json"))
        return summary

    async def _summary_of(
        self,
        values: dict[str, Any],
        text: str,
        part: int,
        parts: int,
        cut: bool,
        ctx: SummaryContext,
    ) -> SummaryDraft:
        """One summary request over an article (or one part of it)."""
        names = [s.name for s in ctx.sections]
        return await self._answer(
            "summary",
            {**values, "article": text, "cut": cut, "part": part, "parts": parts},
            summary_schema(names),
            lambda c: parse_summary_json(c, names),
            lambda c: parse_markdown(c, names),
        )

    async def _summary_in_parts(
        self, values: dict[str, Any], parts: list[str], cut: bool, ctx: SummaryContext
    ) -> SummaryDraft:
        """Map: a summary of each part (concurrently); reduce: one merge request over them."""
        count = len(parts)

        async def one(index: int, text: str) -> SummaryDraft:
            try:
                return await self._summary_of(
                    values, text, index + 1, count, cut and index == count - 1, ctx
                )
            except NoAnswer as exc:
                raise NoAnswer(f"part {index + 1} of {count}: {exc}") from None

        answers = await asyncio.gather(
            *(one(i, text) for i, text in enumerate(parts)), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        drafts = [answer for answer in answers if isinstance(answer, SummaryDraft)]

        def shown(bullets: list[Bullet]) -> list[dict[str, Any]]:
            return [{"text": neutralize(b.text), "children": shown(b.children)} for b in bullets]

        names = [s.name for s in ctx.sections]
        try:
            return await self._answer(
                "summary",
                {**values, "parts": [{"bullets": shown(to_bullets(d.bullets))} for d in drafts]},
                summary_schema(names),
                lambda c: parse_summary_json(c, names),
                lambda c: parse_markdown(c, names),
                user_template="merge_user.md.j2",
            )
        except NoAnswer as exc:
            raise NoAnswer(f"merging the {count} parts: {exc}") from None

    def _summary(
        self,
        draft: SummaryDraft,
        article: Article,
        link: Link,
        ctx: SummaryContext,
        warnings: list[Notice],
    ) -> Summary:
        title = clean_line(article.title or link.title or draft.title) or article.final_url
        translated = clean_line(draft.translated_title or "") or None
        same_language = (article.language or "").split("-")[0].lower() == ctx.language or (
            ctx.language == "ko" and looks_korean(article.text)
        )
        if translated and (same_language or translated.casefold() == title.casefold()):
            translated = None
        section = (link.section or draft.section) if ctx.sections else link.section
        tags = [t for t in (clean_line(t).lower() for t in draft.tags) if t][:5]
        return Summary(
            title=title,
            translated_title=translated,
            bullets=to_bullets(draft.bullets),
            section=section,
            tags=tags,
            source="llm",
            warnings=warnings,
        )

    async def conclude(self, items: list[Item], ctx: SummaryContext) -> Closing | None:
        """One more request over all items: the closing "takeaways" section."""
        if not items:
            return None
        shown: list[dict[str, Any]] = []
        budget = self.settings.max_input_chars
        for item in items:
            title = neutralize(clean_line(item.translated_title or item.title))
            bullets = [neutralize(clean_line(b.text)) for b in item.bullets]
            budget -= len(title) + sum(len(b) + 3 for b in bullets)
            if budget < 0:
                break
            shown.append({"title": title, "bullets": [{"text": b} for b in bullets]})
        values = {"shared": self._shared(ctx), "items": shown}
        try:
            draft = await self._answer(
                "conclusion", values, CLOSING_SCHEMA, parse_closing_json, parse_closing_markdown
            )
        except NoAnswer:
            return None
        closing = [Bullet(text=clean_line(b)) for b in draft.bullets if clean_line(b)]
        return Closing(title=default_closing_title(ctx.language), bullets=closing)

    # ------------------------------------------------------------ triage (digest.triage.Judge)

    async def embed(self, texts: list[str], model: str) -> list[list[float]] | None:
        """Embeddings of texts in one request (retried like chat requests); None on failure."""
        return await self.endpoint.embed(texts, model)

    async def score_batch(
        self, focus: str, candidates: list[dict[str, Any]], sections: list[dict[str, str]]
    ) -> list[dict[str, Any]] | None:
        """Scores 0-100 with a reason (and a section) for a batch of titles and ledes."""
        schema = scores_schema([s["name"] for s in sections])
        shown = [
            {
                "id": c["id"],
                "title": neutralize(clean_line(c["title"])),
                "lede": neutralize(clean_line(c.get("lede", ""))),
            }
            for c in candidates
        ]
        shared = {"newsletter": "", "sections": sections}
        values = {"shared": shared, "focus": neutralize(focus), "candidates": shown}
        try:
            return await self._answer("triage", values, schema, parse_scores, parse_scores)
        except NoAnswer:
            return None

    async def aclose(self) -> None:
        """Close the HTTP client if this summarizer made it (also one preloaded but unused)."""
        await self.endpoint.aclose()
