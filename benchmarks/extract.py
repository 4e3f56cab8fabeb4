"""Benchmark: what the LLM reads, on the labelled pages of tests/pages/ (our own text and markup).

Each page marks its article text between `<!--gold-->` and `<!--/gold-->` comments (the rest is
navigation, related links, sidebars, hidden copies, footers). Scores are token-level over the
whole corpus (words and numbers, lower-cased, counted as a multiset): precision = article words
among the extracted words, recall = article words found, F1, and the share of extracted words
that are not article text. Extractors compared: the settings before issue 11 (trafilatura with
Markdown formatting), trafilatura with `favor_precision` alone, today's `digest.extract`, and
rs-trafilatura when it is installed (it is not a dependency; it ships wheels for CPython 3.12
only). Time per page is CPU time (the machine may be busy), the median of several warm runs,
decoding included.
Run: `.venv/bin/python benchmarks/extract.py [-v]` (-v prints each page's figures).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from digest.extract import PRUNE_XPATH, decode_text, extract  # noqa: E402
from digest.fetch import Fetched  # noqa: E402
from digest.models import Link  # noqa: E402
from tests.corpus import PAGES, gold_text, overlap  # noqa: E402

RUNS = 7

Extractor = Callable[[bytes, str], str]


def fetched(body: bytes, name: str) -> Fetched:
    """A page as the fetcher hands it over (no charset in the header: the page says it)."""
    url = f"https://pages.example/{name}"
    return Fetched(url=url, final_url=url, content_type="text/html", charset=None, body=body)


def before(body: bytes, name: str) -> str:
    """The extraction settings before issue 11."""
    import trafilatura

    html = decode_text(body, None, html=True)
    doc = trafilatura.bare_extraction(
        html,
        url=f"https://pages.example/{name}",
        with_metadata=True,
        include_formatting=True,
        include_comments=False,
        include_tables=True,
        prune_xpath=PRUNE_XPATH,
    )
    return _without_title(doc.text or "", doc.title) if doc is not None else ""


def favor_precision(body: bytes, name: str) -> str:
    """The settings before issue 11 plus trafilatura's favor_precision."""
    import trafilatura

    html = decode_text(body, None, html=True)
    doc = trafilatura.bare_extraction(
        html,
        url=f"https://pages.example/{name}",
        with_metadata=True,
        include_formatting=True,
        include_comments=False,
        include_tables=True,
        prune_xpath=PRUNE_XPATH,
        favor_precision=True,
    )
    return _without_title(doc.text or "", doc.title) if doc is not None else ""


def digest_now(body: bytes, name: str) -> str:
    """Today's digest.extract."""
    return extract(fetched(body, name), Link(url=f"https://pages.example/{name}")).text


def rs_trafilatura(body: bytes, name: str) -> str:
    """rs-trafilatura on the raw bytes (it detects the charset itself)."""
    import rs_trafilatura as rs

    result = rs.extract_bytes(body, url=f"https://pages.example/{name}")
    return _without_title(result.main_content or "", result.title)


def _without_title(text: str, title: object) -> str:
    """Drop a first line that repeats the title, as digest does (the gold has no title)."""
    first, _, rest = text.strip().partition("\n")
    squash = re.sub(r"[#\s]+", " ", first).strip()
    return rest if title and squash == re.sub(r"\s+", " ", str(title)).strip() else text


def prf(common: int, got: int, want: int) -> tuple[float, float, float]:
    """Precision, recall and F1."""
    precision = common / got if got else 0.0
    recall = common / want if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run(
    extractors: list[tuple[str, Extractor]], pages: list[tuple[str, bytes, str]], verbose: bool
) -> None:
    """Score every extractor on every page; time them interleaved (fair on a busy machine)."""
    totals = {name: [0, 0, 0] for name, _ in extractors}
    times: dict[str, list[float]] = {name: [] for name, _ in extractors}
    for page, body, gold in pages:
        runs: dict[str, list[float]] = {name: [] for name, _ in extractors}
        for _ in range(RUNS):
            for name, fn in extractors:
                started = time.process_time()
                fn(body, page)
                runs[name].append(time.process_time() - started)
        for name, fn in extractors:
            times[name].append(statistics.median(runs[name]))
            common, got, want = overlap(fn(body, page), gold)
            total = totals[name]
            total[0], total[1], total[2] = total[0] + common, total[1] + got, total[2] + want
            if verbose:
                p, r, f = prf(common, got, want)
                print(f"  {page:<38} {name:<22} P {p:.3f} R {r:.3f} F1 {f:.3f}")
    header = f"{'precision':>9} {'recall':>7} {'F1':>6} {'not article':>12} {'cpu ms/page':>12}"
    print(f"{'extractor':<22} {header}")
    for name, _ in extractors:
        p, r, f = prf(*totals[name])
        ms = statistics.mean(times[name]) * 1000
        print(f"{name:<22} {p:>9.3f} {r:>7.3f} {f:>6.3f} {100 * (1 - p):>11.1f}% {ms:>12.2f}")


def big_page(extractors: list[tuple[str, Extractor]]) -> None:
    """Time one large page: page 20 with its body (and its related box) repeated 150 times."""
    body = next(PAGES.glob("20-*.html")).read_bytes()
    head, rest = body.split(b'<div class="story__body">', 1)
    inner, tail = rest.split(b'<div class="story__tags">', 1)
    repeated = inner.replace(b"</div>\n</div>", b"</div>") * 150
    big = head + b'<div class="story__body">' + repeated + b'</div><div class="story__tags">' + tail
    cells = []
    for name, fn in extractors:
        runs = []
        for _ in range(3):
            started = time.process_time()
            fn(big, "big.html")
            runs.append(time.process_time() - started)
        cells.append(f"{name} {statistics.median(runs) * 1000:.0f} ms CPU")
    print(f"one {len(big) // 1024} KB page: " + ", ".join(cells))


def metadata(pages: list[tuple[str, bytes, str]]) -> None:
    """Title, author, date and site name from digest and from rs-trafilatura, side by side."""
    import rs_trafilatura as rs

    print("\nmetadata (digest | rs-trafilatura), pages that declare them:")
    for page, body, _ in pages:
        ours = extract(fetched(body, page), Link(url=f"https://pages.example/{page}"))
        theirs = rs.extract_bytes(body, url=f"https://pages.example/{page}")
        pairs = [
            ("title", ours.title, theirs.title),
            ("author", ours.author, theirs.author),
            ("date", ours.date, theirs.date),
            ("site", ours.site_name, theirs.sitename),
        ]
        for field, a, b in pairs:
            if a or b:
                mark = "" if (a or "") == (b or "") else "   <- differs"
                print(f"  {page[:24]:<24} {field:<6} {a!s:<45.45} | {b!s:.45}{mark}")


def main() -> None:
    """Print precision, recall, F1, non-article share and time per page for each extractor."""
    verbose = "-v" in sys.argv
    pages = []
    for path in sorted(PAGES.glob("*.html")):
        body = path.read_bytes()
        pages.append((path.name, body, gold_text(body)))
    words = sum(overlap(g, g)[0] for _, _, g in pages)
    print(f"{len(pages)} labelled pages, {words} article words (tests/pages/)")
    extractors: list[tuple[str, Extractor]] = [
        ("before (issue 11)", before),
        ("favor_precision only", favor_precision),
        ("digest now", digest_now),
    ]
    try:
        import rs_trafilatura as rs

        extractors.append((f"rs-trafilatura {rs.__version__}", rs_trafilatura))
    except ImportError:
        print("rs-trafilatura is not installed: skipped (it ships wheels for CPython 3.12 only)")
    for _, fn in extractors:  # warm-up: imports and first-call costs stay out of the timings
        fn(pages[0][1], pages[0][0])
    run(extractors, pages, verbose)
    big_page(extractors)
    if any(name.startswith("rs-") for name, _ in extractors):
        metadata(pages)


if __name__ == "__main__":
    main()
