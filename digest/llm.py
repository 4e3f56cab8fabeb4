"""The OpenAI-compatible summarizer: prompts, one summary or parts and a merge, a cache.

The requests go through `digest.endpoint.Endpoint` (the client, the first-request probe,
retries, giving up on an unusable endpoint, tokens and cost, the response format and its
downgrade from json_schema to json_object to plain text). This module decides what to ask
and reads the answers: each answer is validated (a JSON reply against the schema, a prose
reply as a Markdown bullet list), and a reply that fails validation gets one repair request.
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
from pydantic import BaseModel, Field, ValidationError, field_validator

from digest.cache import JsonCache, stable_hash
from digest.config import LLMSettings, Secrets
from digest.draft import clean_bullets, clean_inline, default_closing_title, strip_controls
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
from digest.templates import make_environment
from digest.text import looks_korean, plural, split_sentences

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
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i can(?:'|no)t|i can not|i'?m unable|i am unable|"
    r"i won'?t|as an ai|죄송|요약할 수 없)",
    re.I,
)
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*•+]|\d{1,2}[.)])\s+(.*\S)\s*$")


def _bullet_dicts(value: Any) -> Any:
    """Accept bare strings where the schema wants {"text": ...} bullets."""
    if isinstance(value, list):
        return [{"text": v} if isinstance(v, str) else v for v in value]
    return value


class DraftBullet(BaseModel):
    """A bullet as the model writes it (a bare string is accepted too)."""

    text: str = Field(min_length=1)
    children: list[DraftBullet] = Field(default_factory=list)

    @field_validator("children", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        return [] if value is None else _bullet_dicts(value)


class SummaryDraft(BaseModel):
    """The structured answer for one article."""

    title: str = ""
    translated_title: str | None = None
    bullets: list[DraftBullet] = Field(min_length=1)
    section: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("bullets", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        return _bullet_dicts(value)


class ClosingDraft(BaseModel):
    """The structured answer for the closing section."""

    bullets: list[str] = Field(min_length=1)

    @field_validator("bullets", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v.get("text", "") if isinstance(v, dict) else v for v in value]
        return value


class _BadReply(Exception):
    """The reply cannot be used as it is (a repair request may fix it)."""


def _bullet_schema(depth: int) -> dict[str, Any]:
    properties: dict[str, Any] = {"text": {"type": "string"}}
    if depth > 1:
        properties["children"] = {"type": "array", "items": _bullet_schema(depth - 1)}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def summary_schema(section_names: list[str]) -> dict[str, Any]:
    """The strict JSON schema of one summary; `section` is an enum of the configured sections."""
    properties: dict[str, Any] = {
        "title": {"type": "string"},
        "translated_title": {"type": ["string", "null"]},
        "bullets": {"type": "array", "items": _bullet_schema(3)},
    }
    if section_names:
        properties["section"] = {"type": "string", "enum": list(section_names)}
    properties["tags"] = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


CLOSING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"bullets": {"type": "array", "items": {"type": "string"}}},
    "required": ["bullets"],
    "additionalProperties": False,
}


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


def _clean(text: str) -> str:
    """One line of the model's text: no control characters, list marker or bold wrapper."""
    text = re.sub(r"\s+", " ", strip_controls(text or "")).strip()
    text = re.sub(r"^(?:[-*•+]|\d{1,2}[.)])\s+", "", text)
    return re.sub(r"^\*\*(.+)\*\*$", r"\1", text).strip()


def _bullets(drafts: list[DraftBullet]) -> list[Bullet]:
    """The model's bullets as draft bullets: list markers stripped, four levels at most."""
    bullets = [Bullet.model_validate(d.model_dump()) for d in drafts]
    return clean_bullets(bullets, lambda text: clean_inline(_clean(text)), max_depth=3)


def _strip_fence(content: str) -> str:
    fenced = re.match(r"^\s*```[\w-]*\s*\n(.*?)\n?```\s*$", content, re.S)
    return fenced.group(1) if fenced else content


def _looks_json(content: str) -> bool:
    return content.lstrip().startswith(("{", "[", "```"))


def _load_json(content: str) -> Any:
    text = _strip_fence(content).strip()
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        text = text[start : end + 1]
    try:
        return json.loads(text, strict=False)
    except ValueError as exc:
        raise _BadReply(f"the answer is not valid JSON ({exc})") from None


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:4]:
        where = ".".join(str(p) for p in error["loc"]) or "the object"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_summary_json(content: str, section_names: list[str]) -> SummaryDraft:
    """Validate a JSON answer against the summary schema (lenient about bare strings)."""
    data = _load_json(content)
    try:
        draft = SummaryDraft.model_validate(data)
    except ValidationError as exc:
        raise _BadReply(f"it does not match the schema ({_validation_message(exc)})") from None
    if not _bullets(draft.bullets):
        raise _BadReply("it has no non-empty bullets")
    if section_names and draft.section not in section_names:
        raise _BadReply(f"section must be one of {section_names}, got {draft.section!r}")
    return draft


def parse_markdown(content: str, section_names: list[str]) -> SummaryDraft:
    """Read a plain-text answer: an optional `# title`, `Section:` line and nested bullets."""
    title = ""
    section = None
    roots: list[DraftBullet] = []
    stack: list[tuple[int, DraftBullet]] = []
    prose: list[str] = []
    for line in _strip_fence(content).splitlines():
        if not line.strip():
            continue
        heading = re.match(r"^\s*#{1,6}\s+(.*\S)", line)
        if heading and not title and not roots:
            title = _clean(heading.group(1))
            continue
        named = re.match(r"^\s*\**(?:section|섹션)\**\s*:\s*\**(.+?)\**\s*$", line, re.I)
        if named:
            section = named.group(1).strip()
            continue
        item = _LIST_ITEM.match(line.expandtabs(4))
        if not item:
            prose.append(line.strip())
            continue
        indent = len(item.group(1))
        bullet = DraftBullet(text=item.group(2))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        (stack[-1][1].children if stack else roots).append(bullet)
        stack.append((indent, bullet))
    if not roots:
        sentences = [s for p in prose for s in split_sentences(p) if not s.endswith(":")]
        roots = [DraftBullet(text=s) for s in sentences[:5]]
    if not roots:
        raise _BadReply("the answer holds no bullets")
    if section not in section_names:
        section = section_names[0] if section_names else None
    return SummaryDraft(title=title, bullets=roots, section=section)


def parse_closing_json(content: str) -> ClosingDraft:
    """Validate the closing answer."""
    try:
        draft = ClosingDraft.model_validate(_load_json(content))
    except ValidationError as exc:
        raise _BadReply(f"it does not match the schema ({_validation_message(exc)})") from None
    if not [b for b in draft.bullets if _clean(b)]:
        raise _BadReply("it has no non-empty bullets")
    return draft


def parse_closing_markdown(content: str) -> ClosingDraft:
    """Read closing bullets from plain text."""
    lines = [m.group(2) for m in map(_LIST_ITEM.match, content.splitlines()) if m]
    if not lines:
        lines = [s for s in split_sentences(content) if s][:4]
    if not lines:
        raise _BadReply("the answer holds no bullets")
    return ClosingDraft(bullets=lines)


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
                raise NoAnswer(f"the model refused: {self.endpoint.redact(_clean(refused))[:160]}")
            content = (message.content or "").strip()
            if not content:
                raise NoAnswer("the model returned an empty answer")
            if not _looks_json(content) and _REFUSAL.match(content):
                raise NoAnswer(f"the model refused: {_clean(content)[:160]}")
            try:
                if mode == "text":
                    return parse_text(content)
                if not _looks_json(content):
                    if mode == "json_schema":  # the endpoint ignores response_format: ask again
                        self.endpoint.downgrade(mode)
                        continue
                    self.endpoint.downgrade(mode)
                    return parse_text(content)
                return parse_json(content)
            except _BadReply as exc:
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
            "title_hint": neutralize(_clean(link.title or article.title or "")),
            "description": neutralize(_clean(link.description or article.description or "")),
            "note": neutralize(_clean(link.note or "")),
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
                {**values, "parts": [{"bullets": shown(_bullets(d.bullets))} for d in drafts]},
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
        title = _clean(article.title or link.title or draft.title) or article.final_url
        translated = _clean(draft.translated_title or "") or None
        same_language = (article.language or "").split("-")[0].lower() == ctx.language or (
            ctx.language == "ko" and looks_korean(article.text)
        )
        if translated and (same_language or translated.casefold() == title.casefold()):
            translated = None
        section = (link.section or draft.section) if ctx.sections else link.section
        tags = [t for t in (_clean(t).lower() for t in draft.tags) if t][:5]
        return Summary(
            title=title,
            translated_title=translated,
            bullets=_bullets(draft.bullets),
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
            title = neutralize(_clean(item.translated_title or item.title))
            bullets = [neutralize(_clean(b.text)) for b in item.bullets]
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
        closing = [Bullet(text=_clean(b)) for b in draft.bullets if _clean(b)]
        return Closing(title=default_closing_title(ctx.language), bullets=closing)

    # ------------------------------------------------------------ triage (digest.triage.Judge)

    async def embed(self, texts: list[str], model: str) -> list[list[float]] | None:
        """Embeddings of texts in one request (retried like chat requests); None on failure."""
        return await self.endpoint.embed(texts, model)

    async def score_batch(
        self, focus: str, candidates: list[dict[str, Any]], sections: list[dict[str, str]]
    ) -> list[dict[str, Any]] | None:
        """Scores 0-100 with a reason (and a section) for a batch of titles and ledes."""
        names = [s["name"] for s in sections]
        row: dict[str, Any] = {
            "id": {"type": "integer"},
            "score": {"type": "integer"},
            "reason": {"type": "string"},
        }
        if names:
            row["section"] = {"type": "string", "enum": names}
        schema = {
            "type": "object",
            "properties": {
                "scores": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": row,
                        "required": list(row),
                        "additionalProperties": False,
                    },
                }
            },
            "required": ["scores"],
            "additionalProperties": False,
        }
        shown = [
            {
                "id": c["id"],
                "title": neutralize(_clean(c["title"])),
                "lede": neutralize(_clean(c.get("lede", ""))),
            }
            for c in candidates
        ]
        shared = {"newsletter": "", "sections": sections}
        values = {"shared": shared, "focus": neutralize(focus), "candidates": shown}

        def parse(content: str) -> list[dict[str, Any]]:
            data = _load_json(content)
            rows = data.get("scores") if isinstance(data, dict) else None
            if not isinstance(rows, list) or not rows:
                raise _BadReply("it has no `scores` list")
            return [r for r in rows if isinstance(r, dict)]

        try:
            return await self._answer("triage", values, schema, parse, parse)
        except NoAnswer:
            return None

    async def aclose(self) -> None:
        """Close the HTTP client if this summarizer made it (also one preloaded but unused)."""
        await self.endpoint.aclose()
