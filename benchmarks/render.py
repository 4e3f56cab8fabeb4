"""Benchmark: email size and render time for issues of 10, 50 and 200 items.

Each item is the realistic sample of tests/email_samples.py (Korean and English text, three
bullets with detail bullets, links, a note on every fifth item). Prints the email.html size
against Gmail's 102 KB clipping limit, the bytes per item (all of them, and the markup alone:
the HTML minus its visible text), the email.txt size, and the time of a full render (issue.md,
email.html, email.txt) with a fresh Renderer and warm. Run: `.venv/bin/python benchmarks/render.py`.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import lxml.html  # noqa: E402

from digest.render import GMAIL_CLIP_BYTES, Renderer  # noqa: E402
from tests.email_samples import sample_issue, sample_settings  # noqa: E402

SIZES = (10, 50, 200)
RUNS = 5


def main() -> None:
    """Print one line per issue size."""
    settings = sample_settings()
    base = Renderer(settings).render(sample_issue(0))
    base_html = len(base.email_html.encode("utf-8"))
    print(f"empty issue: email.html {base_html / 1024:.1f} KB (head, header, footer)")
    print(
        f"{'items':>5} {'email.html':>11} {'of 102 KB':>9} {'B/item':>7} {'markup/item':>11} "
        f"{'email.txt':>10} {'cold ms':>8} {'warm ms':>8} {'mjml ms':>8}"
    )
    for count in SIZES:
        issue = sample_issue(count)
        started = time.perf_counter()
        renderer = Renderer(settings)
        rendered = renderer.render(issue)
        cold = time.perf_counter() - started
        warm_runs = []
        for _ in range(RUNS):
            started = time.perf_counter()
            renderer.render(issue)
            warm_runs.append(time.perf_counter() - started)
        source = renderer.env.get_template("email.mjml.j2").render(
            {
                **renderer._context(issue),
                "subject": rendered.subject,
                "preheader": rendered.preheader,
            }
        )
        started = time.perf_counter()
        renderer.compile_mjml(source)
        mjml = time.perf_counter() - started
        size = len(rendered.email_html.encode("utf-8"))
        text = len(lxml.html.document_fromstring(rendered.email_html).body.text_content().encode())
        base_text = len(lxml.html.document_fromstring(base.email_html).body.text_content().encode())
        per_item = (size - base_html) / count
        markup = ((size - text) - (base_html - base_text)) / count
        print(
            f"{count:>5} {size / 1024:>8.1f} KB {size / GMAIL_CLIP_BYTES:>8.0%} {per_item:>7.0f} "
            f"{markup:>11.0f} {len(rendered.email_txt.encode()) / 1024:>7.1f} KB "
            f"{cold * 1000:>8.1f} {statistics.median(warm_runs) * 1000:>8.1f} {mjml * 1000:>8.1f}"
        )
    fits = (GMAIL_CLIP_BYTES - base_html) / ((size - base_html) / SIZES[-1])
    print(f"about {fits:.0f} items of this kind fit under Gmail's clipping limit")


if __name__ == "__main__":
    main()
