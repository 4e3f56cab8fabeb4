"""Benchmark: what summarizing a 150,000-character article in parts costs, in requests and tokens.

Runs the LLM summarizer against the local OpenAI-compatible server (tests/llm_server.py) three
ways: cut to one request (`llm.max_parts = 1`, what 0.1 did), the defaults (24,000 characters
per part, at most 6 parts: the last 6,000 characters are cut and reported), and enough parts
for the whole article. Prints requests, characters sent and received, and tokens: the local
server counts a token per 4 characters of prompt and answer (about right for English text
with OpenAI's tokenizers); the answers are the server's canned ones, so output tokens are
indicative only. Run: `.venv/bin/python benchmarks/long_article.py`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from digest.config import LLMSettings, Secrets  # noqa: E402
from digest.llm import OpenAISummarizer  # noqa: E402
from digest.models import Article, Link  # noqa: E402
from digest.summarize import SummaryContext  # noqa: E402
from tests.llm_server import LLMServer  # noqa: E402

TARGET = 150_000


def long_text() -> str:
    """About 150,000 characters of varied English prose in paragraphs of ~500 characters."""
    paragraphs = []
    n = 0
    while sum(len(p) + 2 for p in paragraphs) < TARGET:
        paragraphs.append(
            f"Section {n} of the report looks at the storage engine's behaviour under load. "
            f"In test run {n} the team measured {100 + n} thousand writes per second with "
            f"{n % 7 + 2} replicas, and compaction finished within {n % 13 + 5} minutes. "
            "The authors explain how the write-ahead log, the memtable and the background "
            "compaction interact, which settings matter most, and what operators should "
            f"watch in production. Finding {n}: latency stays flat until the disk is "
            f"{60 + n % 30} percent full, after which it climbs steadily."
        )
        n += 1
    return "\n\n".join(paragraphs)[:TARGET]


def measure(server: LLMServer, text: str, **settings: Any) -> dict[str, Any]:
    """Summarize once with these settings; the server's view of the requests."""
    start = len(server.requests)
    summarizer = OpenAISummarizer(
        LLMSettings(model="gpt-4o-mini", **settings), Secrets(), base_url=server.url
    )
    article = Article(
        url="https://x.test/r", final_url="https://x.test/r", title="A long report", text=text
    )

    async def run() -> Any:
        try:
            return await summarizer.summarize(
                article, Link(url="https://x.test/r"), SummaryContext(language="en")
            )
        finally:
            await summarizer.aclose()

    summary = asyncio.run(run())
    bodies = server.requests[start:]
    prompt_chars = sum(len(m.get("content") or "") for b in bodies for m in b["messages"])
    return {
        "requests": summarizer.stats.requests,
        "prompt_chars": prompt_chars,
        "input_tokens": summarizer.stats.input_tokens,
        "output_tokens": summarizer.stats.output_tokens,
        "cut": any(w.code == "article-cut" for w in summary.warnings),
        "source": summary.source,
    }


def main() -> None:
    text = long_text()
    server = LLMServer().start()
    try:
        runs = [
            ("cut to one request (max_parts = 1)", {"max_parts": 1}),
            ("defaults (24,000 x at most 6 parts)", {}),
            ("whole article (max_parts = 7)", {"max_parts": 7}),
        ]
        results = [(name, measure(server, text, **settings)) for name, settings in runs]
    finally:
        server.stop()
    base = results[0][1]
    print(f"article: {len(text):,} characters")
    print(
        f"{'run':<38} {'requests':>8} {'prompt chars':>13} {'in tokens':>10} {'out tokens':>10}  cut"
    )
    for name, r in results:
        print(
            f"{name:<38} {r['requests']:>8} {r['prompt_chars']:>13,} {r['input_tokens']:>10,} "
            f"{r['output_tokens']:>10,}  {'yes' if r['cut'] else 'no'}"
        )
    for name, r in results[1:]:
        print(
            f"{name}: +{r['requests'] - base['requests']} requests, "
            f"+{r['input_tokens'] - base['input_tokens']:,} input tokens "
            f"(x{r['input_tokens'] / base['input_tokens']:.1f}), "
            f"+{r['output_tokens'] - base['output_tokens']:,} output tokens"
        )


if __name__ == "__main__":
    main()
