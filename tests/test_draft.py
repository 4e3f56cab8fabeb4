"""The draft grammar: round trip (property-based) and clear errors for unreadable drafts."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.draft import (
    clean_bullets,
    clean_inline,
    default_closing_title,
    escape_title,
    parse_draft,
    render_draft,
)
from digest.errors import DraftError
from digest.models import Bullet, Closing, Issue, Item, Section

KST = dt.timezone(dt.timedelta(hours=9))
WORDS = st.sampled_from(
    [
        "hello",
        "world",
        "모델은",
        "성능이",
        "개선됨",
        "🚀",
        "✨",
        "v1.2",
        "42%",
        "$3.5M",
        "C#",
        "a_b",
        "x*y",
        "[x]",
        "<tag>",
        "&amp;",
        "#1",
        "1.",
        "-",
        ">",
        "`",
        "\\",
        "·",
        "Llama 3.1",
        "—",
        "(괄호)",
    ]
)
MARKUP = st.sampled_from(
    [
        "**굵게**",
        "_강조_",
        "`code()`",
        "[링크](https://example.com/a?b=1)",
        "<https://example.org>",
        "~~x~~",
    ]
)
INLINE = st.lists(st.one_of(WORDS, MARKUP), min_size=1, max_size=8).map(
    lambda ws: clean_inline(" ".join(ws))
)
TITLE = st.lists(WORDS, min_size=1, max_size=6).map(lambda ws: escape_title(" ".join(ws)))
URL = st.from_regex(
    r"https://[a-z]{1,8}\.example/[a-z0-9/_%-]{0,20}(\?q=[a-z0-9]{1,5})?", fullmatch=True
)


def bullets(depth: int = 0) -> st.SearchStrategy[list[Bullet]]:
    children = bullets(depth + 1) if depth < 2 else st.just([])
    return st.lists(st.builds(Bullet, text=INLINE, children=children), max_size=4 if depth else 6)


NOTE = st.lists(st.one_of(INLINE, st.just("")), min_size=1, max_size=3).map(
    lambda lines: "\n".join(lines).strip("\n") or "note"
)
ITEM = st.builds(
    Item,
    title=TITLE,
    url=URL,
    translated_title=st.one_of(st.none(), TITLE),
    site_name=st.one_of(
        st.none(), st.sampled_from(["Harbor Notes", "물결 기술 블로그", "GeekNews"])
    ),
    bullets=bullets(),
    note=st.one_of(st.none(), NOTE),
)
SECTION_NAMES = ["AI", "개발", "Culture & People"]


@st.composite
def issues(draw: st.DrawFn, sectioned: bool) -> Issue:
    if sectioned:
        names = draw(st.lists(st.sampled_from(SECTION_NAMES), min_size=1, max_size=3, unique=True))
        sections = [Section(name=n, items=draw(st.lists(ITEM, max_size=3))) for n in names]
    else:
        sections = [Section(name=None, items=draw(st.lists(ITEM, max_size=5)))]
    closing = draw(
        st.one_of(
            st.none(), st.builds(Closing, title=st.just("이번 호의 결론"), bullets=bullets(1))
        )
    )
    start = draw(st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 1, 1)))
    return Issue(
        title=draw(st.sampled_from(["Article Weekly, Issue 31", '주간 "읽을거리" 7호'])),
        number=draw(st.integers(min_value=1, max_value=999)),
        date=dt.datetime.combine(start + dt.timedelta(days=8), dt.time(9, 30), tzinfo=KST),
        period_start=start,
        period_end=start + dt.timedelta(days=6),
        authors=draw(st.lists(st.sampled_from(["Kim", "박서연", "O'Neil"]), max_size=2)),
        tags=["Article", "Weekly"],
        intro=draw(st.one_of(st.none(), st.lists(INLINE, min_size=1, max_size=2).map("\n\n".join))),
        sections=sections,
        closing=closing,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(issues(sectioned=False))
def test_round_trip_unsectioned(issue: Issue) -> None:
    text = render_draft(issue, sectioned=False, closing_title="이번 호의 결론")
    assert parse_draft(text) == issue


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(issues(sectioned=True))
def test_round_trip_sectioned(issue: Issue) -> None:
    text = render_draft(issue, sectioned=True, closing_title="이번 호의 결론")
    assert parse_draft(text, sections=SECTION_NAMES) == issue


def test_clean_bullets_flattens_empty_and_escapes_block_starts() -> None:
    cleaned = clean_bullets(
        [
            Bullet(text="  ", children=[Bullet(text="1. first\nline")]),
            Bullet(text="# not a heading"),
        ]
    )
    assert [b.text for b in cleaned] == ["\\1. first line", "\\# not a heading"]


def test_default_closing_title() -> None:
    assert default_closing_title("ko") == "이번 호의 결론"
    assert default_closing_title("fr") == "Takeaways"


FRONT = '+++\ntitle = "T"\nnumber = 3\ndate = 2026-11-23T09:00:00+09:00\nperiod = [2026-11-15, 2026-11-21]\n+++\n'


def test_editor_friendly_forms_are_accepted() -> None:
    text = FRONT + (
        "\nHello readers.\n\n## [Linked title](https://a.example/x)\n\n- one\n    - nested by four\n"
        "\n## Plain title\nhttps://b.example/y\n\n* star bullet\n"
    )
    issue = parse_draft(text)
    first, second = issue.items()
    assert (first.title, first.url) == ("Linked title", "https://a.example/x")
    assert first.bullets[0].children[0].text == "nested by four"
    assert (second.url, second.bullets[0].text) == ("https://b.example/y", "star bullet")
    assert issue.intro == "Hello readers."


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("## No URL here\n\n- a bullet\n", 8, "no source URL"),
        ("- stray bullet\n\n## Item\n<https://a.example>\n", 8, "outside any item"),
        ("## Item\n<https://a.example>\n\n- ok\n\nloose paragraph\n", 13, "make it a bullet"),
        ("## Item\n<https://a.example>\n\n#### Deep\n", 11, "level-4 heading"),
        ("## Item\n<https://a.example>\n\n```\ncode\n```\n", 11, "not part of the draft grammar"),
    ],
)
def test_unreadable_drafts_name_the_line(body: str, line: int, words: str) -> None:
    with pytest.raises(DraftError) as caught:
        parse_draft(FRONT + "\n" + body, "issues/031/draft.md")
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"issues/031/draft.md:{line}:")


def test_unconfigured_section_is_refused() -> None:
    text = FRONT + "\n## Gossip\n\n### Item\n<https://a.example>\n\n- x\n"
    with pytest.raises(DraftError, match="'Gossip' is not configured"):
        parse_draft(text, sections=["AI", "Dev"])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("no front matter\n", "must start with TOML front matter"),
        ('+++\ntitle = "x"\n', "not closed"),
        ("+++\ntitle = \n+++\n", "bad TOML"),
        ('+++\ntitle = "x"\n+++\n', "has no `number`"),
        (
            '+++\ntitle = "x"\nnumber = "3"\ndate = 2026-01-01T00:00:00Z\nperiod = [2026-01-01, 2026-01-07]\n+++\n',
            "integer",
        ),
        (
            '+++\ntitle = "x"\nnumber = 3\ndate = 2026-01-01T00:00:00Z\nperiod = ["soon", 2026-01-07]\n+++\n',
            "must be a date",
        ),
    ],
)
def test_bad_front_matter(text: str, words: str) -> None:
    with pytest.raises(DraftError, match=words):
        parse_draft(text, "draft.md")
