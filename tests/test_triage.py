"""Triage: stories, scores, budget and candidates over a generated corpus of 300 feed entries.

Pages and the feed are served by a real local web server; the LLM by tests/llm_server.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.compose import ComposeOptions, compose
from digest.config import load_settings
from digest.draft import parse_draft, render_draft
from digest.errors import DraftError
from digest.links import add_links
from digest.models import Article, Issue, Item, Link, Section
from digest.sources import import_source
from digest.triage import CANDIDATES_NAME, Entry, choose_primary, clip_room, story_key
from digest.urls import link_key
from digest.workspace import Workspace, new_issue
from tests.conftest import article_html
from tests.llm_server import LLMServer
from tests.triage_corpus import FOCUS, build, feed_xml, page_html, true_pairs
from tests.webserver import WebServer

runner = CliRunner()
TOML = """
[newsletter]
language = "en"
[fetch]
allow_private_hosts = true
per_host = 32
concurrency = 32
[triage]
max_items = {max_items}
focus = "{focus}"
"""


def serve(web, entries) -> str:
    """Register every entry's page and a feed listing them; the feed's URL."""
    for entry in entries:
        web.page(entry.path, page_html(entry, web.url))
    return web.page("/feed.xml", feed_xml(entries, web.url), content_type="application/rss+xml")


def workspace(
    make_workspace, *, max_items: int = 20, extra: str = "", name: str = "ws"
) -> Workspace:
    root = make_workspace(TOML.format(max_items=max_items, focus=FOCUS) + extra, name=name)
    return Workspace.load(explicit=root)


def imported_issue(ws: Workspace, feed: str, day: dt.date = dt.date(2026, 11, 24)):
    folder, _ = new_issue(ws, day)
    import_source(ws, folder, feed, since=dt.date(2026, 11, 1))
    return folder


def report_of(folder) -> dict:
    return json.loads(folder.report.read_text(encoding="utf-8"))


def predicted_pairs(report: dict, web_url: str) -> set[tuple[str, str]]:
    by_story: dict[str, list[str]] = {}
    for link in report["links"]:
        if link.get("story"):
            by_story.setdefault(link["story"], []).append(link["url"].removeprefix(web_url))
    return {
        (min(a, b), max(a, b))
        for paths in by_story.values()
        for i, a in enumerate(paths)
        for b in paths[i + 1 :]
    }


def precision_recall(predicted: set, truth: set) -> tuple[float, float]:
    hits = len(predicted & truth)
    return hits / max(len(predicted), 1), hits / max(len(truth), 1)


@pytest.fixture(scope="module")
def corpus():
    return build()


@pytest.fixture(scope="module")
def site(corpus):
    """One page server for the whole corpus (module-wide, so that fetched articles can be
    shared between tests through a copy of the article cache)."""
    web = WebServer().start()
    feed = serve(web, corpus)
    yield web, feed
    web.stop()


@pytest.fixture(scope="module")
def articles(site, tmp_path_factory) -> Path:
    """The article cache after fetching and extracting all 300 pages once (a real compose)."""
    web, feed = site
    root = tmp_path_factory.mktemp("warm") / "ws"
    (root / "issues").mkdir(parents=True)
    (root / "digest.toml").write_text(TOML.format(max_items=1, focus=FOCUS), encoding="utf-8")
    ws = Workspace(root, *load_settings(root / "digest.toml", environ={}))
    folder = imported_issue(ws, feed)
    compose(ws, folder, ComposeOptions(offline=True))
    assert [x["status"] for x in report_of(folder)["links"]].count("failed") == 0
    return ws.cache_dir / "articles"


def warmed(ws: Workspace, articles: Path) -> Workspace:
    """A workspace whose article cache already holds the corpus."""
    shutil.copytree(articles, ws.cache_dir / "articles")
    return ws


def test_corpus_offline_groups_stories_and_keeps_the_budget(
    site, articles, make_workspace, corpus, monkeypatch
):
    web, feed = site
    ws = warmed(workspace(make_workspace), articles)
    folder = imported_issue(ws, feed)
    result = compose(ws, folder, ComposeOptions(offline=True))
    report = report_of(folder)
    assert len(report["links"]) == 300
    statuses = [link["status"] for link in report["links"]]
    assert statuses.count("ok") == 20  # max_items: only the selected stories are summarized
    assert statuses.count("failed") == 0
    assert result.new_items == 20

    # Duplicate groups, per language (no model: lexical n-grams).
    predicted = predicted_pairs(report, web.url)
    korean = {e.path for e in corpus if e.korean}
    for is_korean in (False, True):
        truth = true_pairs(corpus, korean=is_korean)
        mine = {p for p in predicted if (p[0] in korean) == is_korean}
        precision, recall = precision_recall(mine, truth)
        assert precision >= 0.9 and recall >= 0.9, (is_korean, precision, recall)

    # Every link has a story, a score 0-100 and a reason; merged ones name their primary.
    for link in report["links"]:
        assert link["story"] and 0 <= link["score"] <= 100 and link["reason"], link
        if link["status"] == "merged":
            assert link["merged_into"] in {x["url"] for x in report["links"] if x["status"] == "ok"}

    # The selected stories lean on the focus (labels of the corpus).
    on_topic = {web.url + e.path: e.on_topic for e in corpus}
    chosen = [on_topic[x["url"]] for x in report["links"] if x["status"] == "ok"]
    assert sum(chosen) >= 18, chosen

    # Primary source: the original publisher (the page the others link to).
    originals = {web.url + e.path for e in corpus if e.links_to is None}
    draft = folder.draft.read_text(encoding="utf-8")
    issue = parse_draft(draft)
    merged_items = [item for item in issue.items() if item.also]
    assert merged_items, "some selected story is reported by several sites"
    for item in merged_items:
        assert item.url in originals
        assert "Also covered by: <" in draft
    issue_md = folder.issue_md.read_text(encoding="utf-8")
    first = merged_items[0]
    assert f"- {first.url}\n  - {first.also[0]}" in issue_md  # nested in ## References
    email = folder.email_html.read_text(encoding="utf-8")
    assert first.also[0] in email and "Also covered by" in email
    assert first.also[0] in folder.email_txt.read_text(encoding="utf-8")

    # The rest: candidates.md, ranked, one line per story.
    lines = [
        ln
        for ln in (folder.path / CANDIDATES_NAME).read_text(encoding="utf-8").splitlines()
        if ln[:1].isdigit()
    ]
    stories = {x["story"] for x in report["links"]}
    assert len(lines) == len(stories) - 20
    scores = [int(ln.split("**")[1]) for ln in lines]
    assert scores == sorted(scores, reverse=True)

    # Re-running with nothing new changes nothing.
    before = {p.name: p.read_bytes() for p in folder.path.iterdir() if p.is_file()}
    compose(ws, folder, ComposeOptions(offline=True))
    after = {p.name: p.read_bytes() for p in folder.path.iterdir() if p.is_file()}
    for name in ("draft.md", CANDIDATES_NAME, "issue.md", "state.json"):
        assert before[name] == after[name], name
    again = report_of(folder)
    assert [x["status"] for x in again["links"]].count("cached") == 20
    assert [x["status"] for x in again["links"]].count("merged") == statuses.count("merged")

    # A smaller budget later never takes items out of the draft.
    monkeypatch.setenv("DIGEST_TRIAGE__MAX_ITEMS", "5")
    compose(Workspace.load(explicit=ws.root), folder, ComposeOptions(offline=True))
    assert folder.draft.read_bytes() == after["draft.md"]


def test_story_ids_of_one_issue_do_not_collide(corpus):
    """CI once saw two stories of the corpus share an id (24-bit ids, port 43103)."""
    first = Link(url="http://127.0.0.1:43103/airadar/story-112-0")
    second = Link(url="http://127.0.0.1:43103/devwire/story-75-0")
    assert story_key(first) != story_key(second)
    assert story_key(first) == story_key(Link(url=first.url))  # stable across runs
    for port in range(43000, 43200):
        ids = {story_key(Link(url=f"http://127.0.0.1:{port}{e.path}")) for e in corpus}
        assert len(ids) == len(corpus), port


def test_llm_requests_are_counted(site, articles, make_workspace, corpus):
    web, feed = site
    llm = LLMServer().start()
    try:
        ws = workspace(make_workspace, extra=f'[llm]\nbase_url = "{llm.url}"\n')
        ws = warmed(ws, articles)
        folder = imported_issue(ws, feed)
        compose(ws, folder)
        report = report_of(folder)
        stories = {x["story"] for x in report["links"]}
        texts = 300 + 1  # titles + ledes of every candidate, and the focus
        assert len(llm.embedding_requests) == math.ceil(texts / 256)
        assert sum(len(r["input"]) for r in llm.embedding_requests) == texts
        scoring = [r for r in llm.requests if "<candidates>" in r["messages"][-1]["content"]]
        assert 0 < len(scoring) <= math.ceil(len(stories) / 30) <= math.ceil(300 / 30)
        for request in scoring:  # titles and ledes only, never the full article
            assert "<article>" not in request["messages"][-1]["content"]
            assert request["response_format"]["type"] == "json_schema"  # structured output
            assert request["response_format"]["json_schema"]["name"] == "triage"
            assert request["messages"][-1]["content"].count("\n[") <= 30
        summaries = [r for r in llm.requests if "<article>" in r["messages"][-1]["content"]]
        ok = [x for x in report["links"] if x["status"] == "ok"]
        assert len(summaries) == len(ok) == 20
        assert report["llm"]["requests"] == len(llm.requests) + len(llm.embedding_requests)

        # Nothing new: no request at all, nothing changed.
        draft = folder.draft.read_bytes()
        candidates = (folder.path / CANDIDATES_NAME).read_bytes()
        count = len(llm.requests) + len(llm.embedding_requests)
        compose(ws, folder)
        assert len(llm.requests) + len(llm.embedding_requests) == count
        assert folder.draft.read_bytes() == draft
        assert (folder.path / CANDIDATES_NAME).read_bytes() == candidates
    finally:
        llm.stop()


def small(corpus, stories: int):
    """The entries of the first few multi-site stories and as many single ones."""
    groups: dict[int, list] = {}
    for entry in corpus:
        groups.setdefault(entry.story, []).append(entry)
    multi = [g for g in groups.values() if len(g) > 1 and not g[0].korean][:stories]
    single = [g for g in groups.values() if len(g) == 1 and not g[0].korean][:stories]
    return [e for g in multi + single for e in g]


def test_hand_links_kept_promote_and_deleted_story(web, make_workspace, corpus):
    entries = small(corpus, 4)
    feed = serve(web, entries)
    ws = workspace(make_workspace, max_items=2)
    folder = imported_issue(ws, feed)
    hand = web.page(
        "/hand",
        article_html("A letter from the editor", ["Quiet weeks are good weeks. " * 12] * 2),
    )
    add_links(ws, folder, [hand])
    compose(ws, folder, ComposeOptions(offline=True))
    report = report_of(folder)
    ok = [x["url"] for x in report["links"] if x["status"] == "ok"]
    assert hand in ok and len(ok) == 3  # the hand-added link is kept and not counted
    # Every page was fetched once, by triage; the report says what that cost.
    assert report["fetch"]["cached"] == 0
    assert all(x["bytes"] > 0 and x["fetch_seconds"] is not None for x in report["links"])
    candidates = [x for x in report["links"] if x["status"] == "candidate"]
    assert candidates

    # Promote one candidate: the next compose summarizes it (and only it).
    chosen = max(candidates, key=lambda x: x["score"])["url"]
    result = runner.invoke(app, ["promote", chosen, "--workspace", str(ws.root)])
    assert result.exit_code == 0, result.output
    compose(ws, folder, ComposeOptions(offline=True))
    report = report_of(folder)
    status = {x["url"]: x["status"] for x in report["links"]}
    assert status[chosen] == "ok"
    assert sum(1 for s in status.values() if s == "ok") == 1
    assert chosen not in (folder.path / CANDIDATES_NAME).read_text(encoding="utf-8")

    # Or the editor writes a candidate's URL into links.yaml by hand: it is kept too.
    report = report_of(folder)
    another = max(
        (x for x in report["links"] if x["status"] == "candidate"), key=lambda x: x["score"]
    )["url"]
    with folder.links.open("a", encoding="utf-8") as handle:
        handle.write(f"- {another}\n")
    compose(ws, folder, ComposeOptions(offline=True))
    entries_now = [x for x in report_of(folder)["links"] if x["url"] == another]
    assert [x["status"] for x in entries_now] == ["ok", "skipped"]  # the copy: a duplicate

    # The editor deletes a selected story; a new rewrite of it is not proposed again.
    issue = parse_draft(folder.draft.read_text(encoding="utf-8"))
    gone = next(item for item in issue.items() if item.url not in (hand, chosen))
    issue.sections[0].items.remove(gone)
    before = [i.url for i in issue.items()]
    folder.draft.write_text(render_draft(issue, sectioned=False, closing_title="x"), "utf-8")
    source = next(e for e in entries if web.url + e.path == gone.url)
    rewrite = build()[0]
    rewrite.path, rewrite.title, rewrite.lede = "/late/rewrite", source.title, source.lede
    rewrite.body = [source.lede]
    web.page(rewrite.path, page_html(rewrite, web.url))
    web.page("/feed2.xml", feed_xml([rewrite], web.url), content_type="application/rss+xml")
    import_source(ws, folder, web.url + "/feed2.xml", since=dt.date(2026, 11, 1))
    edited = folder.draft.read_bytes()
    compose(ws, folder, ComposeOptions(offline=True))
    assert folder.draft.read_bytes() == edited  # the editor's draft, byte for byte
    report = report_of(folder)
    late = next(x for x in report["links"] if x["url"].endswith("/late/rewrite"))
    assert late["status"] == "skipped" and "deleted" in late["error"]
    after = [i.url for i in parse_draft(folder.draft.read_text(encoding="utf-8")).items()]
    assert after == before  # triage never removes (or brings back) an item of the draft
    assert "/late/rewrite" not in (folder.path / CANDIDATES_NAME).read_text(encoding="utf-8")

    # digest status shows the outcome.
    shown = runner.invoke(app, ["status", "--workspace", str(ws.root)])
    assert shown.exit_code == 0, shown.output
    assert "candidate" in shown.output and "merged" in shown.output


def test_promote_refuses_an_unknown_link(make_workspace):
    ws = workspace(make_workspace)
    new_issue(ws, dt.date(2026, 11, 24))
    result = runner.invoke(
        app, ["promote", "https://nowhere.example/x", "--workspace", str(ws.root)]
    )
    assert result.exit_code == 1
    assert "not a link of issue 001" in result.output
    assert "Traceback" not in result.output


def test_past_choices_move_a_topic_up(web, make_workspace, corpus):
    """Three past issues where the editor kept cooking and deleted the rest: cooking rises."""
    singles = [e for e in corpus if not e.korean and e.links_to is None]
    by_topic: dict[str, list] = {}
    for entry in singles:
        by_topic.setdefault(entry.extra["topic"], []).append(entry)
    past = [e for t in ("cooking", "model", "sport") for e in by_topic[t][:9]]
    now = [e for t in ("cooking", "model", "sport") for e in by_topic[t][9:15]]
    for entry in past + now:
        web.page(entry.path, page_html(entry, web.url))

    def ranking(ws: Workspace) -> list[str]:
        web.page("/now.xml", feed_xml(now, web.url), content_type="application/rss+xml")
        folder = imported_issue(ws, web.url + "/now.xml", dt.date(2026, 12, 24))
        compose(ws, folder, ComposeOptions(offline=True))
        links = sorted(report_of(folder)["links"], key=lambda x: -x["score"])
        topic = {web.url + e.path: e.extra["topic"] for e in now}
        return [topic[x["url"]] for x in links]

    def mean_rank(order: list[str], topic: str) -> float:
        return sum(i for i, t in enumerate(order) if t == topic) / order.count(topic)

    fresh = ranking(workspace(make_workspace, max_items=3, name="fresh"))
    ws = workspace(make_workspace, max_items=0, name="taught")
    for n in range(3):
        folder, _ = new_issue(ws, dt.date(2026, 11, 3 + 7 * n))
        add_links(ws, folder, [web.url + e.path for e in past[n::3]])
        compose(ws, folder, ComposeOptions(offline=True))
        issue = parse_draft(folder.draft.read_text(encoding="utf-8"))
        keep = {web.url + e.path for e in past if e.extra["topic"] == "cooking"}
        issue.sections[0].items = [i for i in issue.items() if i.url in keep]
        folder.draft.write_text(render_draft(issue, sectioned=False, closing_title="x"), "utf-8")
    (ws.root / "digest.toml").write_text(TOML.format(max_items=3, focus=FOCUS), encoding="utf-8")
    taught = ranking(Workspace.load(explicit=ws.root))
    assert mean_rank(taught, "cooking") < mean_rank(fresh, "cooking") - 2, (fresh, taught)


def test_primary_source_order() -> None:
    def entry(index: int, url: str, date: str | None, links: list[str] | None = None) -> Entry:
        article = Article(url=url, final_url=url, title="t", date=date, links=links or [])
        return Entry(index, Link(url=url), article, "pool")

    a = entry(0, "https://copy.example/a", "2026-11-20")
    b = entry(1, "https://news.example/b", "2026-11-21")
    c = entry(2, "https://blog.example/c", "2026-11-22", links=["https://news.example/b"])
    assert [m.index for m in choose_primary([a, b, c], [])] == [1, 0, 2]  # linked to
    assert [m.index for m in choose_primary([a, c], [])] == [0, 2]  # earliest
    d = entry(3, "https://www.pref.example/d", "2026-11-20")
    assert choose_primary([a, d], ["pref.example"])[0] is d  # same day: preferred domain


def test_also_covered_line_round_trips_and_errors() -> None:
    issue = Issue(
        title="T",
        number=1,
        date=dt.datetime(2026, 11, 24),
        period_start=dt.date(2026, 11, 16),
        period_end=dt.date(2026, 11, 22),
        sections=[
            Section(
                items=[
                    Item(
                        title="A",
                        url="https://a.example/x",
                        also=["https://b.example/y", "https://c.example/z?q=1"],
                    )
                ]
            )
        ],
    )
    text = render_draft(issue, sectioned=False, closing_title="x")
    assert "Also covered by: <https://b.example/y>, <https://c.example/z?q=1>" in text
    assert parse_draft(text) == issue
    assert parse_draft(text.replace("Also covered by:", "also covered by:")) == issue
    with pytest.raises(DraftError, match="not a URL"):
        parse_draft(text.replace("<https://b.example/y>", "b.example"))


def test_links_yaml_marks_imports_and_stays_compatible(web, make_workspace, corpus):
    feed = serve(web, corpus[:3])
    ws = workspace(make_workspace)
    folder = imported_issue(ws, feed)
    text = folder.links.read_text(encoding="utf-8")
    assert text.count("imported: ") == 3
    add_links(ws, folder, ["https://hand.example/x"])
    from digest.links import read_links

    links = read_links(folder.links)
    assert [bool(link.imported) for link in links] == [True, True, True, False]
    assert link_key(links[-1]) == "https://hand.example/x"


def test_triage_off_summarizes_everything(web, make_workspace, corpus):
    feed = serve(web, corpus[:6])
    ws = workspace(make_workspace, max_items=0)
    folder = imported_issue(ws, feed)
    compose(ws, folder, ComposeOptions(offline=True))
    assert [x["status"] for x in report_of(folder)["links"]] == ["ok"] * 6
    assert not (folder.path / CANDIDATES_NAME).exists()


def test_corpus_labels(corpus) -> None:
    assert len(corpus) == 300
    assert any(e.korean for e in corpus) and true_pairs(corpus, korean=True)
    assert Path(__file__).with_name("triage_corpus.py").is_file()


def test_section_quotas_and_the_email_clip(site, articles, make_workspace, corpus):
    web, feed = site
    sections = """
[[sections]]
name = "AI"
description = "language models, coding assistants, database libraries for programmers"
max_items = 5
[[sections]]
name = "Life"
description = "football, recipes, cooking, property and housing"
"""
    ws = warmed(workspace(make_workspace, max_items=100, extra=sections), articles)
    folder = imported_issue(ws, feed)
    compose(ws, folder, ComposeOptions(offline=True))
    report = report_of(folder)
    ok = [x for x in report["links"] if x["status"] == "ok"]
    assert len(ok) == clip_room() < 100  # Gmail's clip, not max_items, is the limit here
    assert sum(1 for x in ok if x["section"] == "AI") == 5
    issue = parse_draft(folder.draft.read_text(encoding="utf-8"), sections=["AI", "Life"])
    assert [len(s.items) for s in issue.sections] == [5, clip_room() - 5]
    assert len(folder.email_html.read_bytes()) < 102 * 1024
    full = [x for x in report["links"] if x["status"] == "candidate" and "is full" in x["reason"]]
    assert full and all(x["section"] == "AI" for x in full)


def test_failed_embeddings_fall_back_to_lexical_with_a_warning(web, make_workspace, corpus):
    feed = serve(web, small(corpus, 5))
    llm = LLMServer().start()
    llm.embeddings_status = 404
    try:
        ws = workspace(make_workspace, max_items=3, extra=f'[llm]\nbase_url = "{llm.url}"\n')
        folder = imported_issue(ws, feed)
        compose(ws, folder)
    finally:
        llm.stop()
    report = report_of(folder)
    codes = [w["code"] for w in report["warnings"]]
    assert "triage-lexical-fallback" in codes
    assert [x["status"] for x in report["links"]].count("ok") == 3
    assert any(x["status"] == "merged" for x in report["links"])  # stories still grouped


def test_llm_scoring_off_sends_no_scoring_request(web, make_workspace, corpus):
    feed = serve(web, small(corpus, 4))
    llm = LLMServer().start()
    try:
        extra = f'[llm]\nbase_url = "{llm.url}"\n'
        ws = workspace(make_workspace, max_items=2, extra=extra)
        (ws.root / "digest.toml").write_text(
            (ws.root / "digest.toml")
            .read_text(encoding="utf-8")
            .replace("[triage]\n", "[triage]\nllm_scoring = false\n"),
            encoding="utf-8",
        )
        ws = Workspace.load(explicit=ws.root)
        folder = imported_issue(ws, feed)
        compose(ws, folder)
    finally:
        llm.stop()
    assert len(llm.embedding_requests) == 1  # stories still grouped by embeddings
    assert not [r for r in llm.requests if "<candidates>" in r["messages"][-1]["content"]]
    assert [x["status"] for x in report_of(folder)["links"]].count("ok") == 2
