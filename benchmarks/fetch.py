"""Benchmark: fetch 200 local pages that each take 300 ms, under the [fetch] limits.

Case 1 puts every page on one host, so `fetch.per_host` is the limit: the ideal is
ceil(200 / min(concurrency, per_host)) x 0.3 s. Case 2 spreads the pages over 25 loopback
addresses (127.0.0.2 ... 127.0.0.26, one server each), so `fetch.concurrency` is the limit:
ceil(200 / concurrency) x 0.3 s. Case 3 repeats case 2 with one 60 MB page among the 200 and
reports peak memory (tracemalloc over the whole process, servers included, and ru_maxrss);
the 60 MB page is cut at fetch.max_bytes. Run: `.venv/bin/python benchmarks/fetch.py`.
"""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from digest.config import FetchSettings  # noqa: E402
from digest.errors import FetchError  # noqa: E402
from digest.fetch import Fetched, Fetcher  # noqa: E402
from tests.conftest import article_html  # noqa: E402
from tests.webserver import Reply, WebServer  # noqa: E402

PAGES = 200
LATENCY = 0.3
HOSTS = 25
CONCURRENCY = 16
PER_HOST = 4
HUGE = 60 << 20


async def fetch_all(urls: list[str], settings: FetchSettings) -> tuple[float, list[Fetched]]:
    """Fetch every URL at once (as compose does); return wall time and the results."""
    fetcher = Fetcher(settings)
    started = time.perf_counter()
    try:
        results = await asyncio.gather(
            *(fetcher.fetch(url, REPO) for url in urls), return_exceptions=True
        )
    finally:
        await fetcher.aclose()
    wall = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise SystemExit(f"{len(errors)} fetches failed, first: {errors[0]!r}")
    return wall, [r for r in results if isinstance(r, Fetched)]


def serve(servers: list[WebServer], huge_at: int | None = None) -> list[str]:
    """Register PAGES slow pages spread over the servers; one may be 60 MB."""
    html = article_html("A benchmark page", ["One paragraph of text for the page. " * 20]).encode()
    urls = []
    for i in range(PAGES):
        server = servers[i % len(servers)]
        if i == huge_at:
            chunks = (b"x" * (1 << 20) for _ in range(HUGE >> 20))
            reply = Reply(body=chunks, delay=LATENCY, content_type="text/plain")
        else:
            reply = Reply(body=html, delay=LATENCY)
        urls.append(server.route(f"/page/{i}", reply))
    return urls


def report(name: str, wall: float, ideal: float) -> None:
    print(f"{name:<44} {wall:6.2f} s   ideal {ideal:5.2f} s   ratio {wall / ideal:4.2f}")


def main() -> int:
    """Run the three cases and print the figures."""
    settings = FetchSettings(
        allow_private_hosts=True, concurrency=CONCURRENCY, per_host=PER_HOST, timeout=30
    )
    print(
        f"{PAGES} pages x {LATENCY * 1000:.0f} ms, fetch.concurrency = {CONCURRENCY}, "
        f"fetch.per_host = {PER_HOST}, fetch.max_bytes = {settings.max_bytes}"
    )

    one = WebServer().start()
    try:
        wall, _ = asyncio.run(fetch_all(serve([one]), settings))
    finally:
        one.stop()
    report(
        "1 host (per_host is the limit)",
        wall,
        math.ceil(PAGES / min(CONCURRENCY, PER_HOST)) * LATENCY,
    )

    many = [WebServer(host=f"127.0.0.{2 + i}").start() for i in range(HOSTS)]
    try:
        wall, _ = asyncio.run(fetch_all(serve(many), settings))
        report(
            f"{HOSTS} hosts (concurrency is the limit)",
            wall,
            math.ceil(PAGES / CONCURRENCY) * LATENCY,
        )

        urls = serve(many, huge_at=7)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tracemalloc.start()
        wall, results = asyncio.run(fetch_all(urls, settings))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        for server in many:
            server.stop()
    report(
        f"{HOSTS} hosts, one 60 MB page (tracemalloc on)",
        wall,
        math.ceil(PAGES / CONCURRENCY) * LATENCY,
    )
    huge = results[7]
    print(f"60 MB page: kept {len(huge.body) / 1e6:.1f} MB, truncated={huge.truncated}")
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory: tracemalloc {peak / 1e6:.1f} MB, "
        f"ru_maxrss {rss_before:.0f} MB before case 3, {rss_after:.0f} MB after"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FetchError as exc:
        sys.exit(f"fetch failed: {exc}")
