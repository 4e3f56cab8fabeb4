"""URL normalization and `digest add`: duplicates, other issues, bad input, the editor's file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from digest.cli import app
from digest.links import read_links
from digest.urls import is_web_url, link_key, normalize_url

runner = CliRunner()


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        # scheme and host case
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("http://WWW.Example.org/a", "http://www.example.org/a"),
        # default ports dropped, others kept
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        # tracking parameters
        ("https://e.com/a?utm_source=x&utm_medium=y&utm_campaign=z", "https://e.com/a"),
        ("https://e.com/a?UTM_Source=x", "https://e.com/a"),
        ("https://e.com/a?fbclid=abc", "https://e.com/a"),
        ("https://e.com/a?gclid=abc&id=7", "https://e.com/a?id=7"),
        ("https://e.com/a?ref=hn&page=2", "https://e.com/a?page=2"),
        ("https://e.com/a?ref_src=twsrc&ref_url=x", "https://e.com/a"),
        ("https://e.com/a?mc_eid=2&mkt_tok=3&gclid=4", "https://e.com/a"),
        # only the listed parameters go (intake.strip_params; more can be listed there)
        ("https://e.com/a?mc_cid=1&mc_eid=2&msclkid=3", "https://e.com/a?mc_cid=1&msclkid=3"),
        # other parameters keep their order and encoding
        ("https://e.com/s?q=a%20b&utm_term=x&flag", "https://e.com/s?q=a%20b&flag"),
        ("https://e.com/s?b=2&a=1", "https://e.com/s?b=2&a=1"),
        ("https://e.com/s?q=%2f", "https://e.com/s?q=%2F"),
        ("https://e.com/a?", "https://e.com/a"),
        # fragments dropped, single-page-app routes kept
        ("https://e.com/a#section-2", "https://e.com/a"),
        ("https://e.com/a?x=1#top", "https://e.com/a?x=1"),
        ("https://e.com/app#!/post/7", "https://e.com/app#!/post/7"),
        ("https://e.com/app/#/post/7", "https://e.com/app#/post/7"),
        # trailing-slash variants
        ("https://e.com/blog/post/", "https://e.com/blog/post"),
        ("https://e.com/blog/post//", "https://e.com/blog/post"),
        ("https://e.com", "https://e.com/"),
        ("https://e.com/", "https://e.com/"),
        # host details
        ("https://example.com./a", "https://example.com/a"),
        ("https://Bücher.example/a", "https://xn--bcher-kva.example/a"),
        ("https://[::1]:8080/a", "https://[::1]:8080/a"),
        ("https://e.com/%7euser", "https://e.com/%7Euser"),
        ("  https://e.com/a  ", "https://e.com/a"),
    ],
)
def test_normalize_url(given_url: str, expected: str) -> None:
    assert normalize_url(given_url) == expected


def test_stored_form_keeps_the_trailing_slash_the_key_does_not() -> None:
    assert normalize_url("https://E.com/docs/guide//?utm_source=x", keep_slash=True) == (
        "https://e.com/docs/guide/"
    )
    assert link_key("https://e.com/docs/guide/") == link_key("https://e.com/docs/guide")


def test_normalize_leaves_non_web_entries_alone() -> None:
    assert normalize_url("articles/a.html") == "articles/a.html"
    assert normalize_url("file:///tmp/a.html#x") == "file:///tmp/a.html#x"
    assert link_key("  articles/a.html ") == "articles/a.html"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://e.com/a", True),
        ("HTTP://e.com", True),
        ("https://", False),
        ("http:foo", False),
        ("https://e.com:port/", False),
        ("https://e.com/a b", False),
        ("ftp://e.com/a", False),
        ("e.com/a", False),
        ("", False),
    ],
)
def test_is_web_url(value: str, expected: bool) -> None:
    assert is_web_url(value) is expected


_segment = st.text(alphabet="abcXYZ019-_.~%", min_size=0, max_size=6)


@given(
    scheme=st.sampled_from(["http", "HTTPS", "https"]),
    host=st.sampled_from(["e.com", "Sub.Example.ORG", "e.com.", "127.0.0.1"]),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    path=st.lists(_segment, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    query=st.lists(
        st.tuples(st.sampled_from(["utm_source", "id", "ref", "q", "fbclid", "x"]), _segment),
        max_size=4,
    ),
    fragment=st.sampled_from(["", "#top", "#!/a"]),
)
def test_normalize_is_idempotent(
    scheme: str, host: str, port: str, path: str, query: list[tuple[str, str]], fragment: str
) -> None:
    q = "&".join(f"{k}={v}" for k, v in query)
    url = f"{scheme}://{host}{port}{path}{'?' + q if q else ''}{fragment}"
    once = normalize_url(url)
    assert normalize_url(once) == once
    assert "utm_" not in once and "fbclid" not in once


# ------------------------------------------------------------------ digest add


@pytest.fixture
def ws(make_workspace) -> Path:
    root = make_workspace('[newsletter]\ntimezone = "Asia/Seoul"\n')
    result = runner.invoke(app, ["new", "--date", "2024-07-29", "-w", str(root)])
    assert result.exit_code == 0, result.output
    return root


def add(root: Path, *args: str, stdin: str | None = None):
    return runner.invoke(app, ["add", "-w", str(root), *args], input=stdin)


def test_add_appends_normalized_links_keeping_the_editors_file(ws: Path) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    original = (
        "# my picks this week\n"
        "- https://b.example/second   # from the chat\n"
        "\n"
        "# from the feed reader\n"
        "- url: https://a.example/first\n"
        "  note: keep this one\n"
    )
    links.write_text(original)
    result = add(ws, "HTTPS://C.Example:443/third/?utm_source=rss&id=3#comments")
    assert result.exit_code == 0, result.output
    assert "added https://c.example/third/?id=3" in result.output
    text = links.read_text()
    assert text.startswith(original)
    assert text[len(original) :] == "- https://c.example/third/?id=3\n"
    assert [link.url for link in read_links(links)] == [
        "https://b.example/second",
        "https://a.example/first",
        "https://c.example/third/?id=3",
    ]


def test_add_file_without_final_newline_and_flow_style_list(ws: Path) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    links.write_text("- https://a.example/1")
    assert add(ws, "https://a.example/2").exit_code == 0
    assert links.read_text() == "- https://a.example/1\n- https://a.example/2\n"
    links.write_text("[https://a.example/1]\n")
    result = add(ws, "https://a.example/2")
    assert result.exit_code == 0, result.output
    assert [link.url for link in read_links(links)] == [
        "https://a.example/1",
        "https://a.example/2",
    ]


def test_add_with_section_and_note_writes_a_mapping(make_workspace) -> None:
    root = make_workspace('[[sections]]\nname = "AI"\n[[sections]]\nname = "Tools"\n')
    runner.invoke(app, ["new", "--date", "2024-07-29", "-w", str(root)])
    result = add(root, "https://a.example/x", "--section", "tools", "--note", "read: the #2 part")
    assert result.exit_code == 0, result.output
    [link] = read_links(root / "issues" / "001" / "links.yaml")
    assert link.section == "Tools" and link.note == "read: the #2 part"
    before = (root / "issues" / "001" / "links.yaml").read_bytes()
    result = add(root, "https://a.example/y", "--section", "Sports")
    assert result.exit_code == 2  # bad usage (issue 11, defect 14)
    assert "Sports" in result.output and "AI, Tools" in result.output
    assert (root / "issues" / "001" / "links.yaml").read_bytes() == before


def test_duplicate_in_the_issue_is_refused_and_reported(ws: Path) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    assert add(ws, "https://a.example/post").exit_code == 0
    before = links.read_bytes()
    result = add(ws, "https://A.example/post/?utm_campaign=weekly#intro")
    assert result.exit_code == 0, result.output
    said = "skipped https://a.example/post/: already in issue 001 (entry 1 of links.yaml)"
    assert said in result.output
    assert "0 added" in result.output
    assert links.read_bytes() == before


def test_duplicates_within_one_command(ws: Path) -> None:
    result = add(ws, "https://a.example/1", "https://a.example/1/?fbclid=z", "https://a.example/2")
    assert result.exit_code == 0, result.output
    assert "given twice" in result.output
    urls = [link.url for link in read_links(ws / "issues" / "001" / "links.yaml")]
    assert urls == ["https://a.example/1", "https://a.example/2"]


def test_link_from_an_earlier_issue_is_added_with_a_warning(ws: Path) -> None:
    assert add(ws, "https://a.example/old").exit_code == 0
    assert runner.invoke(app, ["new", "--date", "2024-08-05", "-w", str(ws)]).exit_code == 0
    result = add(ws, "https://a.example/old?utm_source=x", "https://a.example/new")
    assert result.exit_code == 0, result.output
    assert "warning: https://a.example/old already appeared in issue 001" in result.output
    assert "new already appeared" not in result.output
    urls = [link.url for link in read_links(ws / "issues" / "002" / "links.yaml")]
    assert urls == ["https://a.example/old", "https://a.example/new"]


def test_earlier_issue_is_found_by_the_composed_final_url(ws: Path) -> None:
    issue = ws / "issues" / "001"
    (issue / "state.json").write_text(
        json.dumps({"composed": {"https://short.example/x": "https://blog.example/final-post"}})
    )
    runner.invoke(app, ["new", "--date", "2024-08-05", "-w", str(ws)])
    result = add(ws, "https://blog.example/final-post/")
    assert "already appeared in issue 001" in result.output


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("not a url", "'not a url' is not a URL"),
        ("example.com/post", "did you mean https://example.com/post"),
        ("ftp://files.example/a", "ftp: address"),
        ("https://", "is not a URL"),
    ],
)
def test_non_url_exits_1_and_leaves_links_untouched(ws: Path, argument: str, says: str) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    before = links.read_bytes()
    result = add(ws, "https://a.example/ok", argument)
    assert result.exit_code == 1
    assert says in result.output and "Nothing was added" in result.output
    assert "Traceback" not in result.output
    assert links.read_bytes() == before


def test_broken_links_yaml_is_reported_and_left_alone(ws: Path) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    links.write_text("- https://a.example/1\n- [unclosed\n")
    before = links.read_bytes()
    result = add(ws, "https://a.example/2")
    assert result.exit_code == 1
    assert "links.yaml" in result.output and "not valid YAML" in result.output
    assert links.read_bytes() == before


def test_add_reads_standard_input(ws: Path) -> None:
    piped = "https://a.example/1\n# a comment line\n\nhttps://a.example/2 https://a.example/3\n"
    result = add(ws, "https://a.example/0", "-", stdin=piped)
    assert result.exit_code == 0, result.output
    urls = [link.url for link in read_links(ws / "issues" / "001" / "links.yaml")]
    assert urls == [f"https://a.example/{n}" for n in range(4)]


def test_add_empty_standard_input_is_an_error(ws: Path) -> None:
    result = add(ws, "-", stdin="")
    assert result.exit_code == 1
    assert "no URLs given" in result.output


def test_add_to_a_chosen_issue(ws: Path) -> None:
    runner.invoke(app, ["new", "--date", "2024-08-05", "-w", str(ws)])
    result = add(ws, "--issue", "1", "https://a.example/x")
    assert result.exit_code == 0, result.output
    assert read_links(ws / "issues" / "001" / "links.yaml")[0].url == "https://a.example/x"
    assert read_links(ws / "issues" / "002" / "links.yaml") == []


def test_add_keeps_windows_line_endings(ws: Path) -> None:
    links = ws / "issues" / "001" / "links.yaml"
    links.write_bytes(b"# picks\r\n- https://a.example/1\r\n")
    assert add(ws, "https://a.example/2").exit_code == 0
    assert links.read_bytes() == b"# picks\r\n- https://a.example/1\r\n- https://a.example/2\r\n"


# ------------------------------------------------------------------ IDNA 2008 and `ref` (issue 11)


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        # UTS-46 non-transitional: ß and ς stay themselves (IDNA 2003 mapped them to ss and σ)
        ("https://faß.de/x", "https://xn--fa-hia.de/x"),
        ("https://Faß.DE/x", "https://xn--fa-hia.de/x"),
        ("https://fass.de/x", "https://fass.de/x"),
        ("https://ＥＸＡＭＰＬＥ.com/x", "https://example.com/x"),  # full-width letters map
        ("https://한국.kr/x", "https://xn--3e0b707e.kr/x"),
    ],
)
def test_hosts_use_idna_2008(given_url: str, expected: str) -> None:
    assert normalize_url(given_url) == expected


def test_fass_and_fass_sharp_s_are_different_links() -> None:
    assert link_key("https://faß.de/x") != link_key("https://fass.de/x")


def test_reader_addresses_use_idna_2008() -> None:
    from digest.send import normalize_email, parse_recipient

    assert normalize_email("a@faß.de") == "a@xn--fa-hia.de"
    assert normalize_email("a@fass.de") == "a@fass.de"
    reader = parse_recipient("Anna <anna@Faß.de>")
    assert reader is not None and reader.email == "anna@xn--fa-hia.de"


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        # a referral on an ordinary site: dropped
        ("https://blog.example/post?ref=producthunt", "https://blog.example/post"),
        ("https://blog.example/post?ref=news.ycombinator.com", "https://blog.example/post"),
        ("https://blog.example/post?ref=hn&page=2", "https://blog.example/post?page=2"),
        ("https://blog.example/post?ref=tldrnewsletter", "https://blog.example/post"),
        ("https://blog.example/post?ref=https%3A%2F%2Ft.co%2Fx", "https://blog.example/post"),
        ("https://blog.example/post?ref_src=twsrc%5Etfw", "https://blog.example/post"),
        # a git ref: kept, on code hosts always, elsewhere when it looks like one
        (
            "https://github.com/o/r/blob/main/a.md?ref=v1",
            "https://github.com/o/r/blob/main/a.md?ref=v1",
        ),
        (
            "https://github.com/o/r/tree/x?ref=producthunt",
            "https://github.com/o/r/tree/x?ref=producthunt",
        ),
        (
            "https://gitlab.com/o/r/-/raw/a.txt?ref=main",
            "https://gitlab.com/o/r/-/raw/a.txt?ref=main",
        ),
        ("https://git.example.org/o/r?ref=feature-x", "https://git.example.org/o/r?ref=feature-x"),
        ("https://docs.example/api?ref=v3.2", "https://docs.example/api?ref=v3.2"),
        (
            "https://docs.example/api?ref=refs%2Fheads%2Fmain",
            "https://docs.example/api?ref=refs%2Fheads%2Fmain",
        ),
        ("https://docs.example/api?ref=9fceb02d", "https://docs.example/api?ref=9fceb02d"),
        # neither a referrer nor a ref: kept (never merge two pages on a guess)
        ("https://docs.example/api?ref=chapter7", "https://docs.example/api?ref=chapter7"),
    ],
)
def test_ref_is_dropped_only_as_a_referral(given_url: str, expected: str) -> None:
    assert normalize_url(given_url) == expected


def test_github_branch_links_stay_two_links() -> None:
    v1 = "https://github.com/o/r/blob/main/README.md?ref=v1"
    v2 = "https://github.com/o/r/blob/main/README.md?ref=v2"
    assert link_key(v1) != link_key(v2)


def test_strip_params_is_a_setting(make_workspace) -> None:
    root = make_workspace('[intake]\nstrip_params = ["utm_*", "src_*", "Campaign"]\n')
    assert runner.invoke(app, ["new", "--date", "2024-07-29", "-w", str(root)]).exit_code == 0
    url = "https://e.example/a?src_feed=1&fbclid=2&utm_source=3&campaign=4&id=5"
    result = runner.invoke(app, ["add", url, "-w", str(root)])
    assert result.exit_code == 0, result.output
    links = read_links(root / "issues" / "001" / "links.yaml")
    assert [link.url for link in links] == ["https://e.example/a?fbclid=2&id=5"]


def test_strip_params_globs_match_whole_names() -> None:
    assert normalize_url("https://e.com/r?utm=1&my_utm_source=2&UTM_Medium=3", strip=["utm_*"]) == (
        "https://e.com/r?utm=1&my_utm_source=2"
    )
    assert normalize_url("https://e.com/r?fbclid=1", strip=[]) == "https://e.com/r?fbclid=1"
