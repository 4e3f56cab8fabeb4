"""The data that flows through the pipeline: links in, an issue out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from digest.config import SectionSettings


class Code(StrEnum):
    """The stable codes of warnings (report.json, `digest check`); programs match these."""

    NOTE = "note"  # a plain sentence from a report.json written before codes existed
    BODY_CUT = "body-cut"
    ARTICLE_CUT = "article-cut"
    LLM_FALLBACK = "llm-fallback"
    LLM_UNAVAILABLE = "llm-unavailable"
    FALLBACK_EDITED = "fallback-edited"
    NOT_TRANSLATED = "not-translated"
    FIGURE_NOT_IN_SOURCE = "figure-not-in-source"
    DATE_NOT_IN_SOURCE = "date-not-in-source"
    QUOTE_NOT_IN_SOURCE = "quote-not-in-source"
    DELETED_BY_EDITOR = "deleted-by-editor"
    NO_CLOSING = "no-closing"
    TRIAGE_LEXICAL = "triage-lexical-fallback"
    TRIAGE_UNSCORED = "triage-llm-scoring-failed"
    TOO_LITTLE_TEXT = "too-little-text"
    NO_WEB_ADDRESS = "no-web-address"
    STALE_LOCK = "stale-lock"


FAITHFULNESS_CODES = frozenset(
    {Code.FIGURE_NOT_IN_SOURCE, Code.DATE_NOT_IN_SOURCE, Code.QUOTE_NOT_IN_SOURCE}
)


class Notice(BaseModel):
    """A warning: a stable `code` (a `Code` value) for programs, a `message` for people."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str

    def __str__(self) -> str:
        return self.message

    def __contains__(self, text: str) -> bool:
        return text in self.message


def _notices(value: object) -> object:
    """Accept plain sentences (report.json of 0.1) as notices with the code `note`."""
    if isinstance(value, list):
        return [{"code": Code.NOTE, "message": v} if isinstance(v, str) else v for v in value]
    return value


class Link(BaseModel):
    """One entry of links.yaml."""

    model_config = ConfigDict(frozen=True)

    url: str
    note: str | None = None
    section: str | None = None
    title: str | None = None
    description: str | None = None
    imported: str | None = None  # set by `digest import` (the source); triage applies to these
    local: str | None = None  # a local file's one `file:` form, relative to the issue folder


class Article(BaseModel):
    """The text and metadata extracted from one fetched link."""

    url: str
    final_url: str
    title: str = ""
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    description: str | None = None
    image: str | None = None
    language: str | None = None
    text: str = ""
    content_type: str = "text/html"
    canonical_url: str | None = None
    truncated: bool = False
    links: list[str] = Field(default_factory=list)  # pages it links to (web URLs)


class Bullet(BaseModel):
    """A bullet with nested detail bullets."""

    text: str
    children: list[Bullet] = Field(default_factory=list)


def bullet_texts(bullets: list[Bullet]) -> list[str]:
    """The text of every bullet and nested bullet, depth first."""
    out: list[str] = []
    for bullet in bullets:
        out.append(bullet.text)
        out.extend(bullet_texts(bullet.children))
    return out


class Summary(BaseModel):
    """What a summarizer returns for one article."""

    title: str
    translated_title: str | None = None
    bullets: list[Bullet]
    section: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: Literal["llm", "offline", "cache"] = "offline"
    warnings: list[Notice] = Field(default_factory=list)

    _warnings = field_validator("warnings", mode="before")(_notices)


class Item(BaseModel):
    """One article in the draft: title heading, source URL, bullets, editor's note."""

    title: str
    url: str
    translated_title: str | None = None
    site_name: str | None = None
    bullets: list[Bullet] = Field(default_factory=list)
    note: str | None = None
    also: list[str] = Field(default_factory=list)  # other sources of the same story


class Section(BaseModel):
    """A named group of items; name None is the single unnamed section."""

    name: str | None = None
    items: list[Item] = Field(default_factory=list)


class Closing(BaseModel):
    """The optional closing section ("takeaways") written from all items."""

    title: str
    bullets: list[Bullet] = Field(default_factory=list)


class Issue(BaseModel):
    """One issue of the newsletter, as the draft holds it."""

    title: str
    number: int
    date: dt.datetime
    period_start: dt.date
    period_end: dt.date
    authors: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    intro: str | None = None
    sections: list[Section] = Field(default_factory=list)
    closing: Closing | None = None

    def items(self) -> list[Item]:
        """Every item in draft order."""
        return [item for section in self.sections for item in section.items]


LinkStatus = Literal["ok", "cached", "failed", "skipped", "candidate", "merged"]
SummarySource = Literal["llm", "offline", "cache", "editor"]


class LinkReport(BaseModel):
    """What compose did with one link (an entry of report.json)."""

    url: str
    final_url: str | None = None
    status: LinkStatus
    error: str | None = None
    title: str | None = None
    section: str | None = None
    summary_source: SummarySource | None = None
    warnings: list[Notice] = Field(default_factory=list)
    bytes: int = 0
    fetch_seconds: float | None = None
    summarize_seconds: float | None = None
    fetch_cached: bool = False
    merged_into: str | None = None
    story: str | None = None
    score: int | None = None
    reason: str | None = None

    _warnings = field_validator("warnings", mode="before")(_notices)


class LLMStats(BaseModel):
    """Accounting of LLM usage for one compose."""

    provider: str = "offline"
    model: str | None = None
    requests: int = 0
    cached: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float | None = None


class FetchStats(BaseModel):
    """Accounting of fetching for one compose."""

    requests: int = 0
    cached: int = 0
    bytes: int = 0


class Report(BaseModel):
    """report.json: what the last compose did."""

    issue: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    links: list[LinkReport] = Field(default_factory=list)
    warnings: list[Notice] = Field(default_factory=list)
    llm: LLMStats = Field(default_factory=LLMStats)
    fetch: FetchStats = Field(default_factory=FetchStats)

    _warnings = field_validator("warnings", mode="before")(_notices)


@dataclass
class SummaryContext:
    """What every summary request shares: language, sections, the newsletter."""

    language: str = "ko"
    sections: list[SectionSettings] = field(default_factory=list)
    newsletter: str = ""
