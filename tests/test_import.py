"""`digest import`: text/Markdown, bookmarks, OPML, RSS and Atom (files and URLs), bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.links import read_links
from tests.webserver import Reply

runner = CliRunner()

# The issue is dated Monday 2024-07-29 in Asia/Seoul, weeks start on Sunday:
# its Period is 2024-07-21 ~ 2024-07-27.

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Blog</title><link>https://blog.example/</link><description>a blog</description>
<item><title>In the period</title><link>https://blog.example/in?utm_source=rss</link>
  <description>&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;</description>
  <pubDate>Wed, 24 Jul 2024 10:00:00 +0000</pubDate></item>
<item><title>Too old</title><link>https://blog.example/old</link>
  <pubDate>Fri, 19 Jul 2024 10:00:00 +0000</pubDate></item>
<item><title>Saturday night in UTC is Sunday in Seoul</title><link>https://blog.example/late</link>
  <pubDate>Sat, 27 Jul 2024 20:00:00 +0000</pubDate></item>
<item><title>Saturday in UTC is already Sunday in Seoul</title><link>https://blog.example/early</link>
  <pubDate>Sat, 20 Jul 2024 16:00:00 +0000</pubDate></item>
<item><title>No date</title><link>https://blog.example/undated</link></item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom log</title><id>urn:uuid:1</id><updated>2024-07-25T00:00:00Z</updated>
  <entry><title>Atom inside</title><id>urn:1</id>
    <link rel="alternate" href="https://atom.example/inside"/>
    <published>2024-07-22T08:00:00+09:00</published><updated>2024-07-22T08:00:00+09:00</updated>
    <summary>A short summary.</summary></entry>
  <entry><title>Atom outside</title><id>urn:2</id>
    <link rel="alternate" href="https://atom.example/outside"/>
    <published>2024-07-10T08:00:00Z</published><updated>2024-07-10T08:00:00Z</updated></entry>
</feed>
"""

BOOKMARKS = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<!-- This is an automatically generated file. -->
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks</H1>
<DL><p>
    <DT><H3 ADD_DATE="1700000000">Newsletter</H3>
    <DL><p>
        <DT><A HREF="https://bm.example/in?fbclid=123" ADD_DATE="1721736000">Rust &amp; the week</A>
        <DD>Why this one matters
        <DT><A HREF="https://bm.example/old" ADD_DATE="1717200000">Old one</A>
        <DT><A HREF="https://bm.example/undated">Undated bookmark</A>
        <DT><A HREF="javascript:alert(1)" ADD_DATE="1721736000">A bookmarklet</A>
        <DT><A HREF="place:sort=8&maxResults=10">Recent tags</A>
    </DL><p>
</DL><p>
"""

MARKDOWN = """# Things from the week

- [Postgres 17 released](https://pg.example/17?utm_source=newsletter) is great
- see https://bare.example/post, and (https://paren.example/x).
- <https://auto.example/a>
- [here](https://vague.example/p)
- [Rust](https://en.wikipedia.org/wiki/Rust_(programming_language))
- [Titled post](https://titled.example/a "hover title")

Again: https://bare.example/post/ and ftp://files.example/nope
"""


@pytest.fixture
def ws(make_workspace) -> Path:
    root = make_workspace(
        '[newsletter]\ntimezone = "Asia/Seoul"\nweek_starts_on = "sunday"\n'
        "[fetch]\nallow_private_hosts = true\ntimeout = 3\nmax_retries = 0\n"
    )
    result = runner.invoke(app, ["new", "--date", "2024-07-29", "-w", str(root)])
    assert result.exit_code == 0, result.output
    return root


def run_import(root: Path, source: str | Path, *args: str):
    return runner.invoke(app, ["import", str(source), "-w", str(root), *args])


def links_of(root: Path, issue: str = "001") -> dict[str, object]:
    return {link.url: link for link in read_links(root / "issues" / issue / "links.yaml")}


def test_markdown_file(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text(MARKDOWN)
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    links = links_of(ws)
    assert list(links) == [
        "https://pg.example/17",
        "https://bare.example/post",
        "https://paren.example/x",
        "https://auto.example/a",
        "https://vague.example/p",
        "https://en.wikipedia.org/wiki/Rust_(programming_language)",
        "https://titled.example/a",
    ]
    assert links["https://pg.example/17"].title == "Postgres 17 released"
    assert links["https://titled.example/a"].title == "Titled post"
    assert links["https://vague.example/p"].title is None
    assert "(Markdown)" in result.output
    assert "7 added" in result.output and "1 skipped as duplicates" in result.output
    assert "Period" not in result.output  # text has no dates to filter on


def test_plain_text_file_without_suffix(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "from-chat"
    source.write_text("look https://chat.example/1 and https://chat.example/2!\n")
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    assert list(links_of(ws)) == ["https://chat.example/1", "https://chat.example/2"]


def test_text_file_in_another_encoding(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_bytes("- [회고를 다시 설계하다](https://retro.example/a)\n".encode("cp949"))
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    assert links_of(ws)["https://retro.example/a"].title == "회고를 다시 설계하다"


def test_bookmarks_export(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "bookmarks.html"
    source.write_text(BOOKMARKS)
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    links = links_of(ws)
    assert list(links) == ["https://bm.example/in", "https://bm.example/undated"]
    assert links["https://bm.example/in"].title == "Rust & the week"
    assert links["https://bm.example/in"].description == "Why this one matters"
    assert "1 outside the Period 2024-07-21 ~ 2024-07-27" in result.output
    assert "1 undated (kept)" in result.output
    assert "2 not web links, ignored" in result.output


def test_rss_file_keeps_entries_of_the_period_in_the_newsletter_time_zone(
    ws: Path, tmp_path: Path
) -> None:
    source = tmp_path / "feed.xml"
    source.write_text(RSS)
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    links = links_of(ws)
    assert list(links) == [
        "https://blog.example/in",
        "https://blog.example/early",
        "https://blog.example/undated",
    ]
    assert links["https://blog.example/in"].title == "In the period"
    assert links["https://blog.example/in"].description == "Hello world"
    assert "(RSS feed)" in result.output
    assert "3 added" in result.output
    assert "2 outside the Period 2024-07-21 ~ 2024-07-27" in result.output
    assert "1 undated (kept)" in result.output


def test_rss_since_overrides_the_period(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "feed.rss"
    source.write_text(RSS)
    result = run_import(ws, source, "--since", "2024-07-20")
    assert result.exit_code == 0, result.output
    assert set(links_of(ws)) == {
        "https://blog.example/in",
        "https://blog.example/late",
        "https://blog.example/early",
        "https://blog.example/undated",
    }
    assert "1 before 2024-07-20" in result.output


def test_atom_file(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "log.atom"
    source.write_text(ATOM)
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    links = links_of(ws)
    assert list(links) == ["https://atom.example/inside"]
    assert links["https://atom.example/inside"].description == "A short summary."
    assert "(Atom feed)" in result.output and "0 undated" in result.output


def test_feed_over_http_from_a_local_server(ws: Path, web) -> None:
    url = web.page("/feed", RSS, content_type="application/rss+xml; charset=utf-8")
    result = run_import(ws, url)
    assert result.exit_code == 0, result.output
    assert "https://blog.example/in" in links_of(ws)
    assert web.hits("/feed") == 1
    assert web.requests[0].headers.get("User-Agent", "").startswith("digest/")


def test_feed_found_through_a_web_page(ws: Path, web) -> None:
    web.page("/atom.xml", ATOM, content_type="application/atom+xml")
    page = web.page(
        "/blog",
        "<html><head><link rel='alternate' type='application/atom+xml' href='/atom.xml'>"
        "</head><body><a href='/about'>About</a></body></html>",
    )
    result = run_import(ws, page)
    assert result.exit_code == 0, result.output
    assert list(links_of(ws)) == ["https://atom.example/inside"]


def test_opml_reads_the_feeds_it_lists(ws: Path, tmp_path: Path, web) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "blog.xml").write_text(RSS)
    remote = web.page("/remote.atom", ATOM, content_type="application/atom+xml")
    opml = tmp_path / "subscriptions.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>subs</title></head><body>'
        '<outline text="Tech">'
        '<outline type="rss" text="Blog" xmlUrl="feeds/blog.xml"/>'
        f'<outline type="rss" text="Remote" xmlUrl="{remote}"/>'
        '<outline type="rss" text="Gone" xmlUrl="feeds/missing.xml"/>'
        "</outline></body></opml>"
    )
    result = run_import(ws, opml)
    assert result.exit_code == 0, result.output
    assert set(links_of(ws)) == {
        "https://blog.example/in",
        "https://blog.example/early",
        "https://blog.example/undated",
        "https://atom.example/inside",
    }
    assert "skipped a feed" in result.output and "feeds/missing.xml" in result.output
    assert "OPML (3 feeds)" in result.output
    assert "3 outside the Period" in result.output and "1 undated (kept)" in result.output


def test_opml_whose_feeds_all_fail_is_an_error(ws: Path, tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text('<opml version="2.0"><body><outline xmlUrl="nope.xml"/></body></opml>')
    before = (ws / "issues" / "001" / "links.yaml").read_bytes()
    result = run_import(ws, opml)
    assert result.exit_code == 1
    assert "subs.opml" in result.output and "nope.xml" in result.output
    assert (ws / "issues" / "001" / "links.yaml").read_bytes() == before


def test_importing_twice_adds_nothing_the_second_time(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "feed.xml"
    source.write_text(RSS)
    assert run_import(ws, source).exit_code == 0
    before = (ws / "issues" / "001" / "links.yaml").read_bytes()
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    assert "0 added" in result.output and "3 skipped as duplicates" in result.output
    assert (ws / "issues" / "001" / "links.yaml").read_bytes() == before


def test_import_keeps_hand_written_links_and_warns_about_earlier_issues(
    ws: Path, tmp_path: Path
) -> None:
    runner.invoke(app, ["add", "-w", str(ws), "https://blog.example/in"])
    runner.invoke(app, ["new", "--date", "2024-08-05", "-w", str(ws)])
    links = ws / "issues" / "002" / "links.yaml"
    links.write_text("# mine\n- https://mine.example/first  # keep me\n")
    source = tmp_path / "list.txt"
    source.write_text(
        "https://blog.example/in\nhttps://fresh.example/x\nhttps://mine.example/first\n"
    )
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    assert "warning: https://blog.example/in already appeared in issue 001" in result.output
    text = links.read_text()
    assert text.startswith("# mine\n- https://mine.example/first  # keep me\n")
    assert list(links_of(ws, "002")) == [
        "https://mine.example/first",
        "https://blog.example/in",
        "https://fresh.example/x",
    ]


def test_empty_source_says_so(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "empty.txt"
    source.write_text("nothing here\n")
    result = run_import(ws, source)
    assert result.exit_code == 0
    assert "no links found" in result.output


def _bad_sources(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "slides.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (tmp_path / "blob").write_bytes(b"\x00\x01\x02binary\x00")
    (tmp_path / "feed.xml").write_text("this is not XML at all {\n")
    (tmp_path / "broken.opml").write_text("<opml><body><outline text='x'")
    (tmp_path / "weird.xml").write_text("<catalog><book/></catalog>")
    return {
        "missing": (tmp_path / "missing.txt", "no such file"),
        "folder": (tmp_path / "a-folder", "is a folder"),
        "pdf": (tmp_path / "slides.pdf", "unknown format"),
        "binary": (tmp_path / "blob", "unknown format"),
        "not-xml": (tmp_path / "feed.xml", "not an RSS or Atom feed"),
        "xml-not-feed": (tmp_path / "weird.xml", "not an RSS or Atom feed"),
        "broken-opml": (tmp_path / "broken.opml", "not valid OPML"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "folder", "pdf", "binary", "not-xml", "xml-not-feed", "broken-opml"]
)
def test_bad_file_exits_1_naming_it_and_leaves_links_untouched(
    ws: Path, tmp_path: Path, case: str
) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    links.write_text("# hand-written\n- https://keep.example/1\n")
    before = links.read_bytes()
    path, says = _bad_sources(tmp_path)[case]
    result = run_import(ws, path)
    assert result.exit_code == 1, result.output
    assert str(path) in result.output and says in result.output
    assert "Traceback" not in result.output
    assert links.read_bytes() == before


@pytest.mark.parametrize(
    ("route", "reply", "says"),
    [
        ("/gone.xml", Reply(status=404, body=b"gone"), "HTTP 404"),
        (
            "/bad.xml",
            Reply(body=b"<html><p>oops", content_type="application/rss+xml"),
            "not an RSS or Atom feed",
        ),
        (
            "/page",
            Reply(body=b"<html><body><a href='/x'>x</a></body></html>"),
            "no RSS/Atom feed link",
        ),
    ],
)
def test_bad_url_exits_1_naming_it(ws: Path, web, route: str, reply: Reply, says: str) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    before = links.read_bytes()
    url = web.route(route, reply)
    result = run_import(ws, url)
    assert result.exit_code == 1, result.output
    assert url in result.output and says in result.output
    assert links.read_bytes() == before


def test_private_address_is_refused_unless_allowed(make_workspace) -> None:
    root = make_workspace("")
    assert runner.invoke(app, ["new", "-w", str(root)]).exit_code == 0
    result = run_import(root, "http://127.0.0.1:9/feed.xml")
    assert result.exit_code == 1
    assert "fetch.allow_private_hosts" in result.output


def test_unreachable_url_is_a_clear_error(ws: Path) -> None:
    result = run_import(ws, "http://127.0.0.1:9/feed.xml")
    assert result.exit_code == 1
    assert "http://127.0.0.1:9/feed.xml" in result.output and "cannot fetch" in result.output


def test_bad_since_is_a_usage_error(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("https://a.example/\n")
    result = run_import(ws, source, "--since", "last week")
    assert result.exit_code == 2


@pytest.mark.parametrize("kind", ["page", "opml"])
def test_the_web_cannot_point_import_at_local_files(
    ws: Path, tmp_path: Path, web, kind: str
) -> None:
    secret = tmp_path / "private.xml"
    secret.write_text(RSS)
    target = secret.as_uri()
    if kind == "page":
        source = web.page(
            "/blog",
            f"<html><head><link rel='alternate' type='application/rss+xml' href='{target}'>"
            "</head><body></body></html>",
        )
    else:
        source = web.page(
            "/subs.opml",
            f'<opml version="2.0"><body><outline xmlUrl="{target}"/></body></opml>',
            content_type="text/x-opml",
        )
    result = run_import(ws, source)
    assert result.exit_code == 1, result.output
    assert "not an http(s) address" in result.output
    assert "https://blog.example/in" not in links_of(ws)


def test_a_declared_charset_is_honoured(ws: Path, web) -> None:
    # Sniffing alone reads these few EUC-KR bytes as Big5: the header must win.
    body = "[한글 제목](https://a.example/z)\n".encode("euc-kr")
    url = web.page("/links.md", body, content_type="text/markdown; charset=euc-kr")
    result = run_import(ws, url)
    assert result.exit_code == 0, result.output
    assert links_of(ws)["https://a.example/z"].title == "한글 제목"


def test_odd_add_date_is_undated_not_a_crash(ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "bookmarks.html"
    source.write_text(
        '<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p><DT><A HREF="https://odd.example/a" '
        'ADD_DATE="\u00b2">Odd date</A></DL>\n',
        encoding="utf-8",
    )
    result = run_import(ws, source)
    assert result.exit_code == 0, result.output
    assert "https://odd.example/a" in links_of(ws)
