"""Benchmark: triage 500 imported candidates (pages 0.3 s each, LLM 1.5 s per request).

The pages live on 16 sites (one local server each, on 127.0.0.2 … 127.0.0.17) and are
listed by one RSS feed; settings are the defaults (fetch.concurrency 16, fetch.per_host 4,
llm.concurrency 8) with `[triage] max_items = 20`. The ideal for those limits:

    fetch   ceil(500 / 16) x 0.3 s                    (every candidate is fetched)
    embed   ceil(501 / 256) batches, in one wave       (all in flight at once)
    score   ceil(stories / 30) batches / 8 per wave    (titles + ledes only)
    summary ceil(20 / 8) waves x 1.5 s                 (only the selected stories)

Prints wall time against that ideal, requests and tokens per candidate, peak memory
(Python allocations by tracemalloc, and the process's max RSS), and a warm rerun (nothing
new: no request). Servers run in a child process. Run: `.venv/bin/python benchmarks/triage.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import multiprocessing.connection
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from digest.compose import ComposeOptions, compose  # noqa: E402
from digest.sources import import_source  # noqa: E402
from digest.workspace import Workspace, new_issue  # noqa: E402
from tests.llm_server import LLMServer  # noqa: E402
from tests.triage_corpus import EN_SITES, FOCUS, KO_SITES, build, feed_xml, page_html  # noqa: E402
from tests.webserver import Reply, WebServer  # noqa: E402

CANDIDATES = 500
PAGE_LATENCY = 0.3
LLM_LATENCY = 1.5
MAX_ITEMS = 20
FETCH_CONCURRENCY = 16
LLM_CONCURRENCY = 8


def serve(conn: multiprocessing.connection.Connection) -> None:
    """Child process: one page server per site, the feed, the LLM server."""
    entries = build(total=CANDIDATES)
    sites = {}
    for n, site in enumerate(EN_SITES + KO_SITES):
        server = WebServer(host=f"127.0.0.{n + 2}").start()
        server.httpd.socket.listen(128)
        sites[site] = server
    for entry in entries:
        server = sites[entry.site]
        original = entry.links_to.split("/")[1] if entry.links_to else entry.site
        html = page_html(entry, sites[original].url).encode()
        server.route(entry.path, Reply(body=html, delay=PAGE_LATENCY))
    home = sites[EN_SITES[0]]
    items = []
    for entry in entries:  # the feed names each page on its own site
        items.append(
            feed_xml([entry], sites[entry.site].url).split("<item>", 1)[1].split("</item>")[0]
        )
    head, tail = feed_xml([], "").split("</channel>")
    feed = head + "".join(f"<item>{i}</item>" for i in items) + "</channel>" + tail
    home.route("/feed.xml", Reply(body=feed.encode(), content_type="application/rss+xml"))
    llm = LLMServer(latency=LLM_LATENCY).start()
    conn.send((home.url + "/feed.xml", llm.url))
    while conn.recv() != "stop":
        conn.send((len(llm.requests), len(llm.embedding_requests), llm.max_in_flight))
        conn.send((sorted(llm.embedding_arrivals), sorted(llm.arrivals), time.monotonic()))
    for server in sites.values():
        server.stop()
    llm.stop()


def main() -> int:
    """Run the benchmark; exit 1 when a target is missed."""
    if "-v" in sys.argv:
        import logging

        logging.basicConfig(format="%(relativeCreated)8.0f ms %(name)s: %(message)s")
        logging.getLogger("digest.triage").setLevel(logging.DEBUG)
    conn, child_conn = multiprocessing.Pipe()
    servers = multiprocessing.Process(target=serve, args=(child_conn,), daemon=True)
    servers.start()
    feed, llm_url = conn.recv()

    def stats() -> tuple[int, int, int]:
        conn.send("stats")
        counts = conn.recv()
        moments.append(conn.recv())
        return counts

    moments: list[tuple[list[float], list[float], float]] = []

    root = Path(tempfile.mkdtemp(prefix="digest-bench-triage-"))
    try:
        (root / "issues").mkdir()
        (root / "digest.toml").write_text(
            f'[newsletter]\nlanguage = "en"\n[llm]\nbase_url = "{llm_url}"\n'
            f"[fetch]\nallow_private_hosts = true\n"
            f'[triage]\nmax_items = {MAX_ITEMS}\nfocus = "{FOCUS}"\n'
        )
        ws = Workspace.load(explicit=root)
        folder, _ = new_issue(ws, dt.date(2026, 11, 24))
        import_source(ws, folder, feed, since=dt.date(2026, 11, 1))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        started_mono = time.monotonic()
        result = compose(ws, folder)
        cold = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        chats, embeds, in_flight = stats()
        embed_at, chat_at, _ = moments[-1]
        report = json.loads(folder.report.read_text())
        started = time.perf_counter()
        compose(Workspace.load(explicit=root), folder, ComposeOptions())
        warm = time.perf_counter() - started
        warm_chats, warm_embeds, _ = stats()
        # Peak Python allocations of a cold compose, in a second workspace (tracemalloc
        # slows Python down, so it is not on while the time above is measured).
        other = root / "again"
        shutil.copytree(root, other, ignore=shutil.ignore_patterns(".digest", "again"))
        ws2 = Workspace.load(explicit=other)
        folder2 = ws2.issue("001")
        for name in ("draft.md", "state.json", "report.json", "candidates.md"):
            (folder2.path / name).unlink(missing_ok=True)
        tracemalloc.start()
        compose(ws2, folder2)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        conn.send("stop")
        servers.join(timeout=10)
        shutil.rmtree(root, ignore_errors=True)

    links = result.report.links
    stories = len({link.story for link in links if link.story})
    ok = sum(1 for link in links if link.status == "ok")
    summaries = sum(1 for link in links if link.summary_source == "llm")
    scoring = chats - summaries
    waves = math.ceil
    ideal = (
        waves(CANDIDATES / FETCH_CONCURRENCY) * PAGE_LATENCY
        + LLM_LATENCY  # the embedding batches go out together
        + waves(waves(stories / 30) / LLM_CONCURRENCY) * LLM_LATENCY
        + waves(MAX_ITEMS / LLM_CONCURRENCY) * LLM_LATENCY
    )
    llm = report["llm"]
    print(
        f"{CANDIDATES} candidates on 16 sites, pages {PAGE_LATENCY} s, LLM {LLM_LATENCY} s; "
        f"fetch.concurrency {FETCH_CONCURRENCY}, llm.concurrency {LLM_CONCURRENCY}, "
        f"max_items {MAX_ITEMS}"
    )
    print(
        f"cold compose: {cold:6.2f} s (ideal {ideal:.2f} s, x{cold / ideal:.2f}); "
        f"{stories} stories, {ok} summarized"
    )
    print(
        f"requests: {embeds} embeddings + {scoring} scoring + {summaries} summaries = "
        f"{embeds + chats} ({(embeds + chats) / CANDIDATES:.3f} per candidate; "
        f"summarizing all would take {CANDIDATES})"
    )
    print(
        f"tokens: {llm['input_tokens']} in, {llm['output_tokens']} out "
        f"({llm['input_tokens'] / CANDIDATES:.0f} in and {llm['output_tokens'] / CANDIDATES:.1f} "
        f"out per candidate); max in flight {in_flight}"
    )
    # Both processes share the machine's monotonic clock.
    summary_start = sorted(chat_at)[len(chat_at) - summaries] if summaries else float("nan")
    print(
        f"phases: fetch+extract until the embeddings request {embed_at[0] - started_mono:.2f} s"
        f" (ideal {waves(CANDIDATES / FETCH_CONCURRENCY) * PAGE_LATENCY:.1f}), scoring from "
        f"{chat_at[0] - started_mono:.2f} s, summaries from "
        f"{summary_start - started_mono:.2f} s, done at {cold:.2f} s"
    )
    print(
        f"peak memory: {peak / 1e6:.1f} MB Python allocations, max RSS {rss / 1024:.0f} MB "
        f"(was {rss_before / 1024:.0f} MB before compose)"
    )
    print(f"warm rerun: {warm:.2f} s, {warm_chats - chats + warm_embeds - embeds} requests")
    passed = (
        ok == MAX_ITEMS
        and embeds == waves((CANDIDATES + 1) / 256)
        and scoring <= waves(CANDIDATES / 30)
        and warm_chats == chats
        and warm_embeds == embeds
    )
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
