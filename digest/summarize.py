"""Summarizers: the protocol every summarizer implements, and choosing one.

A summarizer turns an Article into a Summary: top-level bullets with nested detail
bullets. The offline one lives in `digest.offline`, the OpenAI-compatible one in
`digest.llm`; this module is the only one that knows both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from digest.config import Secrets, Settings
from digest.errors import ConfigError
from digest.models import Article, Closing, Item, Link, LLMStats, Summary, SummaryContext
from digest.offline import OfflineSummarizer

__all__ = ["OfflineSummarizer", "Summarizer", "SummaryContext", "make_summarizer"]


class Summarizer(Protocol):
    """Turns an article into bullets. Implementations: OfflineSummarizer, llm.OpenAISummarizer."""

    name: str
    stats: LLMStats

    async def summarize(
        self, article: Article, link: Link, ctx: SummaryContext, *, fresh: bool = False
    ) -> Summary:
        """Summarize one article (fresh bypasses any cache); SummarizeError when impossible."""
        ...

    async def conclude(self, items: list[Item], ctx: SummaryContext) -> Closing | None:
        """A closing "takeaways" section over all items, or None."""
        ...

    def describe(self) -> str:
        """Which summarizer, model and endpoint a run uses, for people."""
        ...

    async def aclose(self) -> None:
        """Release clients."""
        ...


def make_summarizer(
    settings: Settings,
    secrets: Secrets,
    *,
    offline: bool = False,
    cache_dir: Path | None = None,
    templates_dir: Path | None = None,
) -> Summarizer:
    """The summarizer the settings ask for: auto picks the LLM when a key or base URL is set."""
    provider = "offline" if offline else settings.llm.provider
    base_url = settings.llm.base_url or secrets.openai_base_url
    if provider == "auto":
        provider = "openai" if (secrets.openai_api_key or base_url) else "offline"
    if provider == "offline":
        if offline:
            why = "--offline"
        elif settings.llm.provider == "offline":
            why = 'llm.provider = "offline"'
        else:
            why = "no OPENAI_API_KEY or llm.base_url set"
        return OfflineSummarizer(why=why)
    if not secrets.openai_api_key and not base_url:
        raise ConfigError(
            'llm.provider is "openai" but no key is set: set OPENAI_API_KEY in the environment '
            "or .env, set llm.base_url for a local endpoint, or use --offline"
        )
    from digest.llm import OpenAISummarizer

    return OpenAISummarizer(
        settings.llm,
        secrets,
        base_url=base_url or None,
        cache_dir=cache_dir,
        templates_dir=templates_dir,
    )
