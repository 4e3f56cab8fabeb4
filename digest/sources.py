"""`digest import`: links from a text or Markdown file, a bookmarks export, OPML or a feed.

The format is decided from the name, the content type and the first bytes (`SourceFormat`);
web sources go through the compose Fetcher (limits, retries, the address guard). Dated
entries (feeds, bookmarks' ADD_DATE) are kept when they fall inside the issue's Period, or
on or after `--since`; undated ones are kept and counted.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import html
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from digest.errors import FetchError, LinksError
from digest.extract import decode_text
from digest.fetch import Fetcher, parse_content_type
from digest.links import Candidate, append_links, known_links, sort_candidates
from digest.text import shorten
from digest.urls import is_web_url

if TYPE_CHECKING:
    from digest.workspace import IssueFolder, Workspace

DESCRIPTION_CHARS = 300
OPML_FEEDS_AT_ONCE = 8


class SourceFormat(StrEnum):
    """What kind of file an import source is."""

    TEXT = "text"
    HTML = "html"
    BOOKMARKS = "bookmarks"
    FEED = "feed"
    OPML = "opml"


@dataclass
class ImportResult:
    """What `digest import` did; messages are the lines to show the editor."""

    format: str = ""
    added: list[str] = field(default_factory=list)
    duplicates: int = 0
    out_of_period: int = 0
    undated: int = 0
    not_web: int = 0
    earlier: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class _Found:
    """What a source yielded: candidates, plus counts of what was not a web link."""

    format: str
    candidates: list[Candidate] = field(default_factory=list)
    not_web: int = 0
    warnings: list[str] = field(default_factory=list)
    dated: bool = False


TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".mdown", ".mkd", ".list", ".urls"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".feed"}
OPML_SUFFIXES = {".opml"}


@dataclass
class _Source:
    """The bytes of a source and where they came from."""

    name: str
    data: bytes
    content_type: str = ""
    base_url: str | None = None
    base_dir: Path | None = None
    suffix: str = ""


def _read_file(source: str, path: Path) -> _Source:
    if not path.exists():
        raise LinksError(f"{source}: no such file; check the path (or give an http(s) URL)")
    if path.is_dir():
        raise LinksError(f"{source}: is a folder; give a file (text, bookmarks, OPML or a feed)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LinksError(f"{source}: cannot read ({exc.strerror or exc})") from None
    return _Source(
        name=source,
        data=data,
        base_url=path.resolve().as_uri(),
        base_dir=path.resolve().parent,
        suffix=path.suffix.lower(),
    )


async def _http_get(fetcher: Fetcher, url: str, name: str) -> _Source:
    """GET a URL through the Fetcher (limits, retries, address guard); errors name the source."""
    if not is_web_url(url):  # a page or feed from the web may not point at local files
        raise LinksError(f"{name}: {url} is not an http(s) address; give the feed's web URL")
    try:
        fetched = await fetcher.fetch(url, Path.cwd())
    except FetchError as exc:
        raise LinksError(f"{name}: cannot fetch {url} ({exc})") from None
    if fetched.truncated:
        raise LinksError(
            f"{name}: larger than {fetcher.settings.max_bytes} bytes (fetch.max_bytes); "
            "download it and import the file"
        )
    content_type = fetched.content_type + (
        f"; charset={fetched.charset}" if fetched.charset else ""
    )
    return _Source(
        name=name,
        data=fetched.body,
        content_type=content_type.lower(),
        base_url=fetched.final_url,
        suffix=Path(urlsplit(fetched.final_url).path).suffix.lower(),
    )


_ROOT = re.compile(rb"<\s*([A-Za-z][\w.-]*(?::[\w.-]+)?)")


def _sniff(data: bytes) -> SourceFormat | None:
    """The format the bytes look like: bookmarks, html, opml, feed, or None."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = head.lower()
    if b"<!doctype netscape-bookmark-file" in lower:
        return SourceFormat.BOOKMARKS
    if not head.startswith(b"<"):
        return None
    body = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!doctype[^>]*>", b"", lower, flags=re.S).lstrip()
    match = _ROOT.match(body)
    if match is None:
        return None
    root = match.group(1).decode("ascii", "replace")
    if root == "opml":
        return SourceFormat.OPML
    if root in ("rss", "feed", "rdf:rdf", "channel"):
        return SourceFormat.FEED
    if root == "html":
        return SourceFormat.HTML
    return None


def _format_of(src: _Source) -> SourceFormat:
    """Decide how to read a source, from its name, its content type and its first bytes."""
    sniffed = _sniff(src.data)
    ctype = src.content_type.split(";")[0].strip()
    if src.suffix in TEXT_SUFFIXES and sniffed is None:
        return SourceFormat.TEXT
    if src.suffix in OPML_SUFFIXES or sniffed == SourceFormat.OPML or "opml" in ctype:
        return SourceFormat.OPML
    if sniffed in (SourceFormat.FEED, SourceFormat.BOOKMARKS):
        return sniffed
    if src.suffix in FEED_SUFFIXES or ctype.endswith(("rss+xml", "atom+xml", "/xml", "rdf+xml")):
        return SourceFormat.FEED
    if sniffed == SourceFormat.HTML or src.suffix in HTML_SUFFIXES or ctype == "text/html":
        return SourceFormat.HTML
    if src.suffix in TEXT_SUFFIXES or ctype in ("text/plain", "text/markdown"):
        return SourceFormat.TEXT
    if not src.suffix and not ctype and b"\x00" not in src.data[:8192]:
        return SourceFormat.TEXT
    raise LinksError(
        f"{src.name}: unknown format ({src.suffix or ctype or 'no file suffix'}); import reads "
        "text or Markdown (.txt, .md), a bookmarks export (.html), OPML (.opml), or an "
        "RSS/Atom feed (.xml, .rss, .atom, or a feed URL)"
    )


def _decode(src: _Source) -> str:
    """Text of a source, decoded as pages are: BOM, declared charset, else sniffed."""
    if b"\x00" in src.data[:8192]:
        raise LinksError(
            f"{src.name}: a binary file, not text; give a text, HTML, OPML or feed file"
        )
    charset = parse_content_type(src.content_type)[1]
    sniffed = _sniff(src.data)
    return decode_text(
        src.data, charset, html=sniffed in (SourceFormat.HTML, SourceFormat.BOOKMARKS)
    )


# ------------------------------------------------ text and Markdown

_MD_LINK = re.compile(
    r"\[(?P<text>[^\]\n]*)\]\(\s*<?(?P<url>https?://[^\s<>()]*(?:\([^\s<>()]*\)[^\s<>()]*)*)>?"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)",
    re.IGNORECASE,
)
_AUTOLINK = re.compile(r"<(?P<url>https?://[^\s<>]+)>", re.IGNORECASE)
_BARE = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_VAGUE = {"link", "here", "this", "source", "url", "post", "article", "read more", "more"}


def _trim_bare(url: str) -> str:
    """Drop trailing punctuation and unbalanced closing brackets from a URL found in prose."""
    while url:
        last = url[-1]
        if last in ".,;:!?*_~'\"":
            url = url[:-1]
        elif last == ")" and url.count("(") < url.count(")"):
            url = url[:-1]
        elif last == "]" and url.count("[") < url.count("]"):
            url = url[:-1]
        else:
            break
    return url


def _title_hint(text: str, url: str) -> str | None:
    """Link text worth keeping as a title: not the URL itself, not 'here' or 'link'."""
    clean = re.sub(r"\s+", " ", re.sub(r"[*_`]+", "", text)).strip()
    if not clean or clean.casefold() in _VAGUE or len(clean) < 4:
        return None
    if is_web_url(clean) or clean.rstrip("/") in url:
        return None
    return clean


def links_in_text(text: str) -> _Found:
    """Links in plain text or Markdown: [text](url), <url>, and bare URLs."""
    found = _Found(format="text")
    spans: list[tuple[int, int, Candidate]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for match in _MD_LINK.finditer(text):
        url = match.group("url")
        cand = Candidate(url, title=_title_hint(match.group("text"), url))
        spans.append((match.start(), match.end(), cand))
        taken.append((match.start(), match.end()))
    for match in _AUTOLINK.finditer(text):
        if free(match.start(), match.end()):
            spans.append((match.start(), match.end(), Candidate(match.group("url"))))
            taken.append((match.start(), match.end()))
    for match in _BARE.finditer(text):
        if free(match.start(), match.end()):
            spans.append((match.start(), match.end(), Candidate(_trim_bare(match.group(0)))))
    for _, _, cand in sorted(spans, key=lambda s: s[0]):
        if is_web_url(cand.url):
            found.candidates.append(cand)
        else:
            found.not_web += 1
    if re.search(r"\[[^\]]*\]\(|^#{1,6} ", text, re.MULTILINE):
        found.format = "Markdown"
    return found


# ------------------------------------------------ bookmarks (Netscape HTML) and HTML pages


def _epoch_date(raw: str | None, tz: dt.tzinfo) -> dt.date | None:
    """A bookmark's ADD_DATE (seconds, or milli/microseconds) as a date in tz."""
    if not raw or not raw.strip().isdecimal():  # isdigit() also passes "²", which int() refuses
        return None
    value = int(raw.strip())
    while value > 10**11:
        value //= 1000
    if value <= 0:
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC).astimezone(tz).date()


class _AnchorParser(HTMLParser):
    """Anchors of an HTML page or a bookmarks export, with text, ADD_DATE and <DD> notes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, Any]] = []
        self.feeds: list[tuple[str, str]] = []
        self._anchor: dict[str, Any] | None = None
        self._dd: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "a" and values.get("href"):
            self._dd = None
            self._anchor = {
                "href": values["href"],
                "add_date": values.get("add_date"),
                "text": [],
                "dd": [],
            }
            self.anchors.append(self._anchor)
        elif tag == "dd" and self.anchors:
            self._dd = self.anchors[-1]
        elif tag in ("dt", "dl", "h3"):
            self._dd = None
        elif tag == "link" and "alternate" in values.get("rel", "").lower():
            kind = values.get("type", "").lower()
            if ("rss" in kind or "atom" in kind) and values.get("href"):
                self.feeds.append((values["href"], kind))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._anchor = None
        elif tag in ("dd", "dl"):
            self._dd = None

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor["text"].append(data)
        elif self._dd is not None:
            self._dd["dd"].append(data)


def links_in_html(text: str, tz: dt.tzinfo, base_url: str | None, *, bookmarks: bool) -> _Found:
    """Links of a bookmarks export (titles, ADD_DATE, <DD> descriptions) or of an HTML page."""
    parser = _AnchorParser()
    parser.feed(text)
    parser.close()
    found = _Found(format="bookmarks" if bookmarks else "HTML")
    for anchor in parser.anchors:
        href = html.unescape(anchor["href"]).strip()
        if base_url and not bookmarks:
            href = urljoin(base_url, href)
        if not is_web_url(href):
            found.not_web += 1
            continue
        title = re.sub(r"\s+", " ", "".join(anchor["text"])).strip()
        day = _epoch_date(anchor["add_date"], tz)
        found.dated = found.dated or day is not None
        found.candidates.append(
            Candidate(
                url=href,
                title=_title_hint(title, href),
                description=_short(" ".join(anchor["dd"])),
                date=day,
            )
        )
    return found


def _short(text: str | None) -> str | None:
    """Plain text of an HTML description, one line, cut to DESCRIPTION_CHARS at a word."""
    if not text:
        return None
    plain = re.sub(r"<[^>]+>", " ", text)
    plain = re.sub(r"\s+", " ", html.unescape(plain)).strip()
    return shorten(plain, DESCRIPTION_CHARS) or None


# ------------------------------------------------ RSS / Atom


def links_in_feed(src: _Source, tz: dt.tzinfo) -> _Found:
    """Entries of an RSS or Atom feed: link, title, summary and date (in the newsletter's zone)."""
    import feedparser

    headers = {"content-location": src.base_url or ""}
    if src.content_type:
        headers["content-type"] = src.content_type
    parsed = feedparser.parse(src.data, response_headers=headers)
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        detail = f"not XML: {reason}" if reason else "no <rss>, <feed> or <rdf:RDF> element"
        raise LinksError(
            f"{src.name}: not an RSS or Atom feed ({detail}); give a feed file or a feed URL"
        )
    name = "Atom feed" if parsed.version.startswith("atom") else "RSS feed"
    found = _Found(format=name, dated=True)
    for entry in parsed.entries:
        url = (entry.get("link") or "").strip()
        if not url:
            alternates = [ln.get("href") for ln in entry.get("links", []) if ln.get("href")]
            url = (alternates[0] if alternates else "").strip()
        if url and src.base_url and not is_web_url(url):
            url = urljoin(src.base_url, url)
        if not is_web_url(url):
            found.not_web += 1
            continue
        stamp = (
            entry.get("published_parsed")
            or entry.get("updated_parsed")
            or entry.get("created_parsed")
        )
        day = None
        if stamp is not None:
            moment = dt.datetime.fromtimestamp(_timegm(stamp), dt.UTC)
            day = moment.astimezone(tz).date()
        found.candidates.append(
            Candidate(
                url=url,
                title=_short(entry.get("title")),
                description=_short(entry.get("summary")),
                date=day,
            )
        )
    return found


def _timegm(stamp: time.struct_time) -> float:
    return float(calendar.timegm(stamp))


# ------------------------------------------------ OPML


def feeds_in_opml(src: _Source) -> tuple[list[str], list[Candidate]]:
    """The feeds an OPML file lists (xmlUrl), and plain links (outlines with only a url)."""
    try:
        root = ET.fromstring(src.data)
    except ET.ParseError as exc:
        raise LinksError(
            f"{src.name}: not valid OPML (XML error: {exc}); export it again"
        ) from None
    if root.tag.lower() != "opml":
        raise LinksError(f"{src.name}: not OPML (the root element is <{root.tag}>, not <opml>)")
    feeds: list[str] = []
    links: list[Candidate] = []
    for outline in root.iter("outline"):
        attrs = {k.lower(): v for k, v in outline.attrib.items()}
        if attrs.get("xmlurl"):
            feeds.append(attrs["xmlurl"].strip())
        elif attrs.get("url") or (attrs.get("htmlurl") and attrs.get("type") == "link"):
            url = (attrs.get("url") or attrs.get("htmlurl") or "").strip()
            links.append(Candidate(url=url, title=_short(attrs.get("text") or attrs.get("title"))))
    return feeds, links


async def _feed_source(fetcher: Fetcher, target: str, parent: _Source) -> _Source:
    """One feed an OPML file lists: a URL, or a file relative to the OPML file."""
    if is_web_url(target):
        return await _http_get(fetcher, target, target)
    if parent.base_url and is_web_url(parent.base_url):
        return await _http_get(fetcher, urljoin(parent.base_url, target), target)
    path = Path(unquote(urlsplit(target).path)) if target.startswith("file:") else Path(target)
    if not path.is_absolute() and parent.base_dir is not None:
        path = parent.base_dir / path
    return _read_file(target, path)


_OPML_SKIP = "warning: skipped a feed of the OPML file: "


async def links_in_opml(fetcher: Fetcher, src: _Source, tz: dt.tzinfo) -> _Found:
    """Entries of every feed an OPML file lists, fetched a few at a time."""
    feeds, plain = feeds_in_opml(src)
    found = _Found(format=f"OPML ({len(feeds)} feeds)", dated=True)
    for cand in plain:
        if is_web_url(cand.url):
            found.candidates.append(cand)
        else:
            found.not_web += 1
    if not feeds:
        return found
    slots = asyncio.Semaphore(OPML_FEEDS_AT_ONCE)

    async def one(target: str) -> _Found:
        async with slots:
            return links_in_feed(await _feed_source(fetcher, target, src), tz)

    parts = await asyncio.gather(*(one(t) for t in feeds), return_exceptions=True)
    failed = 0
    for part in parts:
        if isinstance(part, LinksError):
            failed += 1
            found.warnings.append(f"{_OPML_SKIP}{part}")
        elif isinstance(part, BaseException):
            raise part
        else:
            found.candidates.extend(part.candidates)
            found.not_web += part.not_web
    if failed == len(feeds) and not found.candidates:
        reasons = [w.removeprefix(_OPML_SKIP) for w in found.warnings]
        raise LinksError(
            f"{src.name}: none of its {len(feeds)} feeds could be read:\n  " + "\n  ".join(reasons)
        )
    return found


# ------------------------------------------------ import_source


async def _web_page_feed(fetcher: Fetcher, src: _Source) -> _Source:
    """The feed a web page announces with <link rel=alternate>; else a clear error."""
    parser = _AnchorParser()
    parser.feed(_decode(src))
    if not parser.feeds:
        raise LinksError(
            f"{src.name}: a web page with no RSS/Atom feed link; give the feed's URL, "
            "or add the page itself with `digest add URL`"
        )
    href = urljoin(src.base_url or src.name, html.unescape(parser.feeds[0][0]))
    return await _http_get(fetcher, href, href)


async def _read_web(fetcher: Fetcher, source: str) -> tuple[_Source, SourceFormat]:
    """A source on the web; a web page stands for the feed it announces."""
    src = await _http_get(fetcher, source, source)
    kind = _format_of(src)
    if kind == SourceFormat.HTML:
        src = await _web_page_feed(fetcher, src)
        kind = _format_of(src)
        if kind != SourceFormat.FEED:
            raise LinksError(f"{src.name}: announced as a feed but is not one ({kind})")
    return src, kind


@asynccontextmanager
async def _fetching(ws: Workspace) -> AsyncIterator[Fetcher]:
    """The compose Fetcher (limits, retries, address guard), closed after use."""
    fetcher = Fetcher(ws.settings.fetch)
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def _read_source(ws: Workspace, source: str) -> _Found:
    """Read and parse a source of any supported kind."""
    if is_web_url(source):
        async with _fetching(ws) as fetcher:
            src, kind = await _read_web(fetcher, source)
    else:
        named = source.startswith("file:")
        file = Path(unquote(urlsplit(source).path)) if named else Path(source)
        src = _read_file(source, file.expanduser())
        kind = _format_of(src)
    if kind == SourceFormat.OPML:
        async with _fetching(ws) as fetcher:
            return await links_in_opml(fetcher, src, ws.tz)
    if kind == SourceFormat.FEED:
        return links_in_feed(src, ws.tz)
    if kind in (SourceFormat.BOOKMARKS, SourceFormat.HTML):
        bookmarks = kind == SourceFormat.BOOKMARKS
        return links_in_html(_decode(src), ws.tz, src.base_url, bookmarks=bookmarks)
    return links_in_text(_decode(src))


def import_source(
    ws: Workspace, folder: IssueFolder, source: str, *, since: dt.date | None = None
) -> ImportResult:
    """Add links from text/Markdown, bookmarks, OPML or a feed; dated ones within the Period."""
    known = known_links(ws, folder)
    found = asyncio.run(_read_source(ws, source))
    meta = ws.ensure_meta(folder)
    start, end = (since, None) if since is not None else (meta.period_start, meta.period_end)
    result = ImportResult(format=found.format, not_web=found.not_web)
    kept: list[Candidate] = []
    for cand in found.candidates:
        if cand.date is None:
            if found.dated:
                result.undated += 1
        elif cand.date < start or (end is not None and cand.date > end):
            result.out_of_period += 1
            continue
        kept.append(cand)
    sorted_ = sort_candidates(known, kept, ws.settings.intake.strip_params)
    for cand in sorted_.added:
        cand.imported = source
    append_links(known.path, known.text, known.links, sorted_.added)
    result.added = [c.url for c in sorted_.added]
    result.duplicates = len(sorted_.duplicates)
    result.earlier = [(c.url, issue_id) for c, issue_id in sorted_.earlier]
    for url in result.added:
        result.messages.append(f"added {url}")
    result.messages.extend(found.warnings)
    for url, issue_id in result.earlier:
        result.messages.append(f"warning: {url} already appeared in issue {issue_id}")
    parts = [f"{len(result.added)} added to issue {folder.id} ({known.path})"]
    parts.append(f"{result.duplicates} skipped as duplicates")
    if found.dated:
        window = f"before {since}" if since is not None else f"outside the Period {start} ~ {end}"
        parts.append(f"{result.out_of_period} {window}")
        parts.append(f"{result.undated} undated (kept)")
    if result.not_web:
        parts.append(f"{result.not_web} not web links, ignored")
    result.messages.append(f"{source} ({found.format}): " + "; ".join(parts))
    if not found.candidates and not found.warnings:
        result.messages.append(f"no links found in {source}")
    return result
