"""Property-based tests of URL normalisation (issue 11): idempotent, and never one link for
two different articles, over real-world URL shapes written down below."""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit, urlunsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.urls import link_key, normalize_url

# Each group lists spellings of ONE article; different groups are different articles.
# A group's spellings must share a key (one link); two groups must never share one.
ARTICLES: list[list[str]] = [
    # query order: the same pairs in another order are one page; other values are not
    ["https://shop.example/item?id=1&color=red", "https://shop.example/item?color=red&id=1"],
    ["https://shop.example/item?id=2&color=red"],
    ["https://shop.example/item?id=1&color=blue"],
    ["https://shop.example/item?id=1"],
    # a repeated name keeps its order of values
    ["https://search.example/q?tag=a&tag=b"],
    ["https://search.example/q?tag=b&tag=a"],
    # ref: a branch or tag on code hosts and where it looks like a git ref; a referral elsewhere
    ["https://github.com/org/repo/blob/main/README.md?ref=v1"],
    ["https://github.com/org/repo/blob/main/README.md?ref=v2"],
    ["https://github.com/org/repo/blob/main/README.md"],
    ["https://github.com/org/repo/tree/x?ref=producthunt"],
    ["https://github.com/org/repo/tree/x"],
    ["https://gitlab.com/org/repo/-/raw/file.txt?ref=main"],
    ["https://gitlab.com/org/repo/-/raw/file.txt?ref=develop"],
    ["https://docs.example/api?ref=v3.2"],
    ["https://docs.example/api?ref=v3.3"],
    ["https://docs.example/api?ref=refs/heads/main"],
    ["https://docs.example/api?ref=9fceb02d0ae598e95dc970b74767f19372d61af8"],
    ["https://docs.example/api"],
    [
        "https://blog.example/post",
        "https://blog.example/post?ref=producthunt",
        "https://blog.example/post?ref=news.ycombinator.com",
        "https://blog.example/post?ref_src=twsrc%5Etfw",
        "https://blog.example/post?utm_source=x&utm_medium=email",
        "https://blog.example/post?fbclid=IwAR0abc&gclid=xyz",
    ],
    # international names: IDNA 2008 keeps ß; fass.de is another domain
    ["https://faß.de/x", "https://xn--fa-hia.de/x", "https://Faß.DE/x"],
    ["https://fass.de/x", "https://FASS.de/x"],
    ["https://bücher.example/a", "https://xn--bcher-kva.example/a", "https://BÜCHER.example/a"],
    ["https://buecher.example/a"],
    ["https://한국.kr/뉴스", "https://xn--3e0b707e.kr/%EB%89%B4%EC%8A%A4"],
    ["https://한국.kr/"],
    # percent-encoding: case of escapes and raw UTF-8 are one page; an escaped / or & is data
    ["https://e.example/caf%C3%A9", "https://e.example/café", "https://e.example/caf%c3%a9"],
    ["https://e.example/cafe"],
    ["https://e.example/a%2Fb"],
    ["https://e.example/a/b"],
    ["https://e.example/s?q=a%26b"],
    ["https://e.example/s?q=a&b"],
    ["https://e.example/s?q=a%20b", "https://e.example/s?q=a%20b&utm_campaign=w"],
    # dot segments
    ["https://e.example/x/y/../z", "https://e.example/x/z", "https://e.example/x/./z"],
    ["https://e.example/x/y/z"],
    ["https://e.example/z"],
    # default ports and scheme/host case; other ports and the other scheme are other sites
    ["https://e.example/p", "https://e.example:443/p", "HTTPS://E.EXAMPLE/p"],
    ["https://e.example:8443/p"],
    ["http://e.example/p", "http://e.example:80/p"],
    ["http://e.example:443/p"],
    # trailing slash and fragments; single-page-app routes are pages of their own
    ["https://e.example/dir/", "https://e.example/dir", "https://e.example/dir#top"],
    ["https://e.example/"],
    ["https://app.example/#/post/1", "https://app.example/#/post/1"],
    ["https://app.example/#/post/2"],
    ["https://app.example/#!/post/1"],
    # the case of a path is meaningful
    ["https://e.example/Post"],
    ["https://e.example/post"],
    # tracking patterns match whole names only
    ["https://e.example/r?utm=1"],
    ["https://e.example/r?my_utm_source=1"],
    ["https://e.example/r", "https://e.example/r?utm_content=1"],
]


def test_the_written_down_groups_are_distinct() -> None:
    keys = [{link_key(url) for url in group} for group in ARTICLES]
    for group, found in zip(ARTICLES, keys, strict=True):
        assert len(found) == 1, f"one article, several links: {group} -> {found}"
    for (a, ka), (b, kb) in itertools.combinations(zip(ARTICLES, keys, strict=True), 2):
        assert ka != kb, f"two articles merged: {a[0]} and {b[0]} -> {ka}"


def _respell(url: str, data: st.DataObject) -> str:
    """Another spelling of the same article: scheme case, default port, a tracking parameter,
    a fragment that only scrolls (never one of #/ or #!)."""
    parts = urlsplit(url)
    scheme = data.draw(st.sampled_from([parts.scheme, parts.scheme.upper()]))
    netloc = parts.netloc
    if parts.port is None and data.draw(st.booleans()):
        netloc += ":443" if parts.scheme == "https" else ":80"
    query = parts.query
    if data.draw(st.booleans()):
        name = data.draw(st.sampled_from(["utm_source", "utm_medium", "fbclid", "gclid", "mc_eid"]))
        value = data.draw(st.text(alphabet="abcdefXYZ0123456789_-", min_size=1, max_size=8))
        pair = f"{name}={value}"
        query = (
            data.draw(st.sampled_from([f"{query}&{pair}", f"{pair}&{query}"])) if query else pair
        )
    fragment = parts.fragment
    if not fragment and data.draw(st.booleans()):
        fragment = data.draw(st.sampled_from(["top", "section-2", "comments", "h.1"]))
    return urlunsplit((scheme, netloc, parts.path, query, fragment))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_normalisation_never_merges_two_articles(data: st.DataObject) -> None:
    keys: dict[str, int] = {}
    for index, group in enumerate(ARTICLES):
        spelling = _respell(data.draw(st.sampled_from(group)), data)
        key = link_key(spelling)
        assert key == link_key(group[0]), f"{spelling} is not {group[0]} any more"
        other = keys.setdefault(key, index)
        assert other == index, f"{spelling} merged with {ARTICLES[other][0]}"
        assert link_key(normalize_url(spelling, keep_slash=True)) == key  # the stored form


_segment = st.one_of(
    st.text(alphabet="abcXYZ019-_.~%", min_size=0, max_size=6),
    st.sampled_from([".", "..", "%2E%2E", "café", "뉴스", "a%2fb", "%e2%82%ac"]),
)
_value = st.one_of(
    st.text(alphabet="abcXYZ019-_.~%+", min_size=0, max_size=6),
    st.sampled_from(
        ["v1", "main", "producthunt", "news.ycombinator.com", "refs/heads/x", "twsrc%5Etfw"]
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["http", "HTTPS", "https"]),
    host=st.sampled_from(
        [
            "e.com",
            "Sub.Example.ORG",
            "e.com.",
            "127.0.0.1",
            "faß.de",
            "한국.kr",
            "github.com",
            "[::1]",
        ]
    ),
    port=st.sampled_from(["", ":80", ":443", ":8080"]),
    path=st.lists(_segment, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    query=st.lists(
        st.tuples(
            st.sampled_from(["utm_source", "id", "ref", "ref_src", "q", "fbclid", "x", "UTM_Term"]),
            _value,
        ),
        max_size=4,
    ),
    fragment=st.sampled_from(["", "#top", "#!/a", "#/b/c"]),
)
def test_normalisation_is_idempotent(
    scheme: str, host: str, port: str, path: str, query: list[tuple[str, str]], fragment: str
) -> None:
    q = "&".join(f"{k}={v}" for k, v in query)
    url = f"{scheme}://{host}{port}{path}{'?' + q if q else ''}{fragment}"
    once = normalize_url(url)
    assert normalize_url(once) == once
    stored = normalize_url(url, keep_slash=True)
    assert normalize_url(stored, keep_slash=True) == stored
    key = link_key(url)
    assert link_key(key) == key
    assert link_key(once) == key and link_key(stored) == key
    assert "utm_" not in once.lower() and "fbclid" not in once
