"""From a fetched body to an Article: HTML via trafilatura, PDF via pypdf, plain text as is.

The type comes from the first bytes when they are telling (PDF, PNG, HTML, ...), else from
the Content-Type. Text is decoded here, not by trafilatura, in the WHATWG order: a byte
order mark, the HTTP header's charset, the page's `<meta>` charset, then sniffing (valid
UTF-8, else charset-normalizer). EUC-KR is decoded as its superset CP949, Latin-1 as
windows-1252, GB2312 as GB18030. Navigation, cookie banners, comments and footers are left
out by trafilatura (include_comments=False, favor_precision=True); `<noscript>` is pruned
first, so that a JavaScript-only page yields no text rather than "please enable JavaScript".

Before trafilatura sees the page, `prune_page` removes what it lets through: "you may also
like" / "관련기사" blocks (a label followed by links), hidden second copies of the article
(a print or AMP copy with page metadata), and layout tables are turned into plain blocks so
that a sidebar cell is not read as part of a data table. The Markdown that comes back is
made plain for the LLM (`plain_markdown`): no backslash escapes, no `<u>` tags, no list numbers.
"""

from __future__ import annotations

import codecs
import io
import re
from collections import Counter
from typing import TYPE_CHECKING

from digest.errors import ExtractError
from digest.fetch import Fetched
from digest.models import Article, Link

if TYPE_CHECKING:
    from lxml.html import HtmlElement

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
PDF_TYPES = {"application/pdf", "application/x-pdf"}
NO_TEXT_HTML = "no article text found (the page may need JavaScript)"

# What a browser without JavaScript shows ("please enable JavaScript") is never the article.
# trafilatura itself drops navigation, consent banners, comments, sidebars and footers.
PRUNE_XPATH = ["//noscript"]

CHARSET_ALIASES = {
    "euc-kr": "cp949",
    "euckr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "korean": "cp949",
    "windows-949": "cp949",
    "x-windows-949": "cp949",
    "uhc": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
}

# The label of a block of links to other articles, as the whole text of one element.
RELATED_LABEL = re.compile(
    r"^(?:you (?:may|might) (?:also )?(?:like|enjoy)|(?:related|recommended|more|popular|"
    r"trending|latest)(?: (?:articles?|stories|posts|news|reads?|reading|content|"
    r"coverage|for you|now|on this topic))?|read (?:next|more|also)|also read|see more|"
    r"(?:don't|do not) miss|up next|more (?:from|on|in|like this|stories|news)\b.*|"
    r"most (?:read|popular|viewed|shared)(?: \w+){0,3}|"
    r"관련\s?(?:기사|뉴스|글)|함께 (?:보면|읽으면|읽어볼|볼) 만?한?\s?(?:좋은 )?(?:기사|글|뉴스)|"
    r"많이 본 (?:기사|뉴스)|인기\s?(?:기사|뉴스)|추천\s?(?:기사|뉴스|글)|"
    r"이 기사와 함께 .*(?:기사|뉴스)|다른 기사 보기|주요 뉴스)\s*[:：»›>]?$",
    re.I,
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_TABLE_PARTS = {"thead", "tbody", "tfoot", "tr", "td", "th"}
_PROSE = 120  # weighted characters outside links: a paragraph, not a teaser
_WIDE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u4e00-\u9fff\uac00-\ud7af]")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_HTML_LANG = re.compile(r"<html[^>]*?\slang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)*)", re.I)
_CONTENT_LANG = re.compile(
    r"<meta[^>]+http-equiv\s*=\s*[\"']?content-language[\"']?[^>]+content\s*=\s*[\"']?"
    r"([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)*)",
    re.I,
)


# ---------------------------------------------------------------- type and charset


def sniff_type(fetched: Fetched) -> str:
    """The content type, corrected by looking at the first bytes."""
    raw = fetched.body[:1024]
    for bom, _ in _BOMS:
        if raw.startswith(bom):
            raw = raw[len(bom) :]
            break
    head = raw.lstrip().lower()
    magic = (
        (b"%pdf-", "application/pdf"),
        (b"\x89png\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"gif87a", "image/gif"),
        (b"gif89a", "image/gif"),
        (b"pk\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
    )
    for prefix, mime in magic:
        if head.startswith(prefix):
            return mime
    if head.startswith(b"riff") and head[8:12] == b"webp":
        return "image/webp"
    declared = (fetched.content_type or "").lower()
    html_start = head.startswith((b"<!doctype html", b"<html", b"<?xml")) and b"<html" in head
    if html_start or (
        declared in ("", "text/plain", "application/octet-stream")
        and (b"<body" in head or b"<head" in head)
    ):
        return "text/html"
    if declared in ("", "application/octet-stream"):
        if b"\x00" not in fetched.body[:4096] and _decodes(fetched.body[:4096], "utf-8"):
            return "text/plain"
        return declared or "application/octet-stream"
    return declared


def codec_for(label: str | None) -> str | None:
    """The Python codec for a charset label, with the web's aliases; None when unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = CHARSET_ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    return CHARSET_ALIASES.get(codec.replace("_", "-"), codec)


def _decodes(body: bytes, codec: str) -> bool:
    try:
        _strict(body, codec)
    except UnicodeDecodeError:
        return False
    return True


def _strict(body: bytes, codec: str) -> str:
    """Decode strictly, but forgive a multi-byte character cut at the very end."""
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        if exc.start >= len(body) - 3 and exc.end == len(body):
            return body[: exc.start].decode(codec)
        raise


def _mostly(body: bytes, codec: str) -> str | None:
    """Decode with replacements when they are rare (a page with a few broken bytes)."""
    text = body.decode(codec, errors="replace")
    return text if text.count("\ufffd") <= max(2, len(text) // 1000) else None


def meta_charset(body: bytes) -> str | None:
    """The charset a page declares in a `<meta>` tag of its first 8 KB."""
    match = _META_CHARSET.search(body[:8192])
    return match.group(1).decode("ascii") if match else None


def detect_charset(body: bytes, header: str | None, *, html: bool) -> str:
    """The codec to decode a text body with: BOM, header, `<meta>`, then sniffing."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    declared = [codec_for(header)]
    if html:
        declared.append(codec_for(meta_charset(body)))
    for candidate in declared:
        if candidate and _decodes(body, candidate):
            return candidate
    if _decodes(body, "utf-8"):
        return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(body[:65536]).best()
    sniffed = codec_for(best.encoding) if best is not None else None
    if sniffed and _decodes(body, sniffed):
        return sniffed
    for candidate in declared:
        if candidate and _mostly(body, candidate) is not None:
            return candidate
    return sniffed or "utf-8"


def decode_text(body: bytes, charset: str | None, *, html: bool = False) -> str:
    """Decode a text body with the detected charset (no BOM in the result)."""
    codec = detect_charset(body, charset, html=html)
    for bom, name in _BOMS:
        if name == codec and body.startswith(bom):
            body = body[len(bom) :]
    try:
        return _strict(body, codec)
    except UnicodeDecodeError:
        return body.decode(codec, errors="replace")


# ---------------------------------------------------------------- routing


def extract(fetched: Fetched, link: Link) -> Article:
    """Route by type and extract the article; raise ExtractError when there is none."""
    mime = sniff_type(fetched)
    if mime in HTML_TYPES:
        article, empty = _from_html(fetched), NO_TEXT_HTML
    elif mime in TEXT_TYPES:
        text = decode_text(fetched.body, fetched.charset)
        article, empty = _from_text(fetched, text, mime), "the file holds no text"
    elif mime in PDF_TYPES:
        article = _from_pdf(fetched)
        empty = "no text found in the PDF (it may hold only scanned images)"
    else:
        raise ExtractError(f"not an article: {mime or 'unknown type'}")
    article.truncated = fetched.truncated
    if not article.text.strip():
        if link.title or link.note:
            article.title = link.title or article.title
            article.text = ""
            return article
        raise ExtractError(empty)
    if link.title and not article.title:
        article.title = link.title
    return article


def _from_html(fetched: Fetched) -> Article:
    import trafilatura
    from trafilatura.utils import load_html

    html = decode_text(fetched.body, fetched.charset, html=True)
    tree = load_html(html)
    if tree is not None:
        prune_page(tree)
    doc = trafilatura.bare_extraction(
        tree if tree is not None else html,
        url=fetched.final_url if not fetched.is_local else None,
        with_metadata=True,
        include_formatting=True,
        include_comments=False,
        include_tables=True,
        favor_precision=True,
        prune_xpath=PRUNE_XPATH,
    )
    base = Article(
        url=fetched.url,
        final_url=fetched.final_url,
        content_type="text/html",
        language=page_language(html),
    )
    if doc is None:
        base.title = _title_tag(html) or ""
        return base
    data = doc if isinstance(doc, dict) else doc.as_dict()
    text = plain_markdown(data.get("text") or "")
    text = _drop_title_heading(text, data.get("title"))
    if len(text) < 40 and re.search(r"<script", html, re.I):
        text = ""  # "Loading…": a shell that JavaScript fills in
    return base.model_copy(
        update={
            "title": _clean(data.get("title")) or "",
            "author": _clean(data.get("author")),
            "date": _checked_date(_clean(data.get("date")), html, fetched),
            "site_name": _clean(data.get("sitename")),
            "description": _clean(data.get("description")),
            "image": _clean(data.get("image")),
            "language": _clean(data.get("language")) or base.language,
            "text": text,
            "canonical_url": _clean(data.get("url")),
            "links": outgoing_links(html, fetched.final_url),
        }
    )


def _checked_date(date: str | None, html: str, fetched: Fetched) -> str | None:
    """The page's date, without htmldate's guess from a bare year in the text: a
    January 1st is kept only when the page's markup or address says so (an undated page
    that mentions "2020" came out as 2020-01-01)."""
    if not date or not date.endswith("-01-01"):
        return date
    from htmldate import find_date

    url = fetched.final_url if not fetched.is_local else None
    return find_date(html, extensive_search=False, original_date=True, url=url)


_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*["']([^"'#][^"']*)["']""", re.I)


def outgoing_links(html: str, base: str, limit: int = 300) -> list[str]:
    """The web pages a page links to (absolute, at most `limit`), for telling originals apart."""
    from urllib.parse import urljoin

    found: list[str] = []
    for match in _HREF.finditer(html):
        url = urljoin(base, match.group(1).strip())
        if url.startswith(("http://", "https://")) and url not in found:
            found.append(url)
            if len(found) >= limit:
                break
    return found


# ---------------------------------------------------------------- what trafilatura lets through


def prune_page(tree: HtmlElement) -> None:
    """Remove related-article blocks and hidden article copies; flatten layout tables."""
    body = tree.find(".//body")
    if body is None:
        return
    for table in list(body.iter("table")):
        if is_layout_table(table):
            _unwrap_table(table)
    _drop_hidden_copies(body)
    for element in list(body.iter()):
        if element.getparent() is not None and _is_related_label(element):
            _drop_related_block(element)


def is_layout_table(table: HtmlElement) -> bool:
    """Whether a table lays out the page (columns, sidebars) rather than holding data."""
    if table.get("role") in ("presentation", "none"):
        return True
    rows = _rows(table)
    cells = [cell for row in rows for cell in row.iterchildren("td", "th")]
    if table.get("summary") or table.find("caption") is not None:
        return False
    if any(table.find(tag) is not None for tag in ("thead", "tfoot", "colgroup")):
        return False
    if table.find(".//table") is not None:
        return True
    if any(cell.tag == "th" for cell in cells):
        return False
    for cell in cells:
        if any(cell.find(f".//{tag}") is not None for tag in ("p", "h1", "h2", "h3", "form")):
            return True
        if len(_text(cell)) >= 2 * _PROSE and len(cell.findall(".//br")) >= 2:
            return True
    return len(rows) <= 1 or max((len(r.findall("td")) for r in rows), default=0) <= 1


def _rows(table: HtmlElement) -> list[HtmlElement]:
    rows = list(table.iterchildren("tr"))
    for part in table.iterchildren("thead", "tbody", "tfoot"):
        rows.extend(part.iterchildren("tr"))
    return rows


def _unwrap_table(table: HtmlElement) -> None:
    """Turn a layout table and its own rows and cells into blocks (nested tables keep theirs)."""
    for row in _rows(table):
        for cell in row.iterchildren("td", "th"):
            cell.tag = "div"
            cell.attrib.clear()
        row.tag = "div"
        row.attrib.clear()
    for part in table.iterchildren(*_TABLE_PARTS):
        part.tag = "div"
        part.attrib.clear()
    table.tag = "div"
    table.attrib.clear()


def _drop_hidden_copies(body: HtmlElement) -> None:
    """Remove hidden elements (print, AMP or template copies) whose words are on the page."""
    hidden = [
        el
        for el in body.iter()
        if isinstance(el.tag, str)
        and (
            el.tag == "template"
            or el.get("hidden") is not None
            or el.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(el.get("style") or "")
        )
    ]
    outer = [el for el in hidden if not any(a in hidden for a in el.iterancestors())]
    copies = [(el, Counter(_words(_text(el)))) for el in outer]
    copies = [(el, words) for el, words in copies if words.total() >= 20]
    if not copies:
        return
    visible = Counter(_words(_text(body)))
    for _, words in copies:
        visible -= words
    for element, words in copies:
        if sum((words & visible).values()) >= 0.8 * words.total():
            _remove(element)


def _is_related_label(element: HtmlElement) -> bool:
    """Whether an element's whole text is the label of a related-articles block."""
    if not isinstance(element.tag, str) or element.tag in ("a", "body", "html") or len(element) > 3:
        return False
    text = _text(element)
    return 0 < len(text) <= 60 and RELATED_LABEL.match(text) is not None


def _drop_related_block(label: HtmlElement) -> None:
    """Remove a related block: the label's container, and the link lists right after it."""
    block = label
    label_text = _text(label)
    while True:
        parent = block.getparent()
        if parent is None or parent.tag in ("body", "html", "article", "main"):
            break
        if not _is_link_block(parent, len(label_text)):
            break
        block = parent
    doomed = [block]
    for sibling in block.itersiblings():
        if not isinstance(sibling.tag, str):
            continue
        if not _text(sibling) or _is_link_block(sibling, 0):
            doomed.append(sibling)
        else:
            break
    if not any(el.find(".//a") is not None or el.tag == "a" for el in doomed):
        return  # a subheading such as "Related work" over prose: article text
    for element in doomed:
        _remove(element)


def _is_link_block(element: HtmlElement, label_chars: int) -> bool:
    """Links (titles, teasers) and no paragraph of prose outside them, the label aside."""
    text = len(_text(element)) - label_chars
    if text <= 0:
        return True
    links = sum(len(_text(a)) for a in element.iter("a"))
    if links == 0 or text - links > 2 * links:
        return False
    return not any(
        _weight(_text(block)) - sum(_weight(_text(a)) for a in block.iter("a")) >= _PROSE
        for block in element.iter("p", "div", "li", "section", "td", "blockquote", "span")
        if block.find(".//p") is None and block.find(".//div") is None
    )


def _weight(text: str) -> int:
    """Length with Hangul and CJK characters counted twice (they carry more per character)."""
    return len(text) + len(_WIDE.findall(text))


def _remove(element: HtmlElement) -> None:
    """Remove an element but not the text that follows it (its tail)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail if element.tail and element.tail.strip() else ""
    previous = element.getprevious()
    parent.remove(element)
    if not tail:
        return
    if previous is not None:
        previous.tail = (previous.tail or "") + " " + tail
    else:
        parent.text = (parent.text or "") + " " + tail


def _text(element: HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


# In trafilatura's Markdown: code (kept verbatim), a backslash escape before a character that
# is text to a reader, and inline HTML tags (<u>, <sup>, <sub>).
_MARKDOWN_NOISE = re.compile(
    r"(?P<code>```.*?```|`[^`\n]+`)"
    r"|(?P<escape>\\+)(?P<char>[*_`~\[\]<>#+\-.)!|{}()])"
    r"|(?P<tag></?(?:u|ins|mark|small|span|sub|sup)>)",
    re.S | re.I,
)
_ORDERED_ITEM = re.compile(r"^([ \t]*)(\d{1,9})[.)] ")


def plain_markdown(text: str) -> str:
    """trafilatura's Markdown as an LLM should read it: no escapes, `<u>` tags or list numbers."""

    def plain(match: re.Match[str]) -> str:
        if match["code"]:
            return match["code"]
        if match["escape"]:
            return "\\" * (len(match["escape"]) // 2) + match["char"]
        return "^" if match["tag"].lower() == "<sup>" else ""

    return _MARKDOWN_NOISE.sub(plain, _bullet_ordered_lists(text.strip()))


def _bullet_ordered_lists(text: str) -> str:
    """Turn "1. ", "2. ", ... of ordered lists into "- " (a line "2026. 2. 8." stays as it is)."""
    lines = text.split("\n")
    expected: dict[int, int] = {}  # per indentation: the number the next item must carry
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        item = None if fenced else _ORDERED_ITEM.match(line)
        if item is None:
            if not line.startswith((" ", "\t", "- ")):
                expected.clear()  # a paragraph or a blank line ends the lists
            continue
        indent, number = len(item[1]), int(item[2])
        expected = {k: v for k, v in expected.items() if k <= indent}
        if number == expected.get(indent, 1):
            lines[i] = item[1] + "- " + line[item.end() :]
            expected[indent] = number + 1
    return "\n".join(lines)


def page_language(html: str) -> str | None:
    """The language a page declares (`<html lang>` or Content-Language meta)."""
    head = html[:16384]
    match = _HTML_LANG.search(head) or _CONTENT_LANG.search(head)
    return match.group(1).replace("_", "-") if match else None


def _title_tag(html: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", html[:65536], re.I | re.S)
    return _clean(match.group(1)) if match else None


def _from_text(fetched: Fetched, text: str, mime: str) -> Article:
    title = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped:
            title = re.sub(r"^#+\s*", "", stripped)[:200]
            break
    body = text.strip()
    if body.startswith("#"):
        body = body.split("\n", 1)[1].strip() if "\n" in body else ""
    return Article(
        url=fetched.url,
        final_url=fetched.final_url,
        title=title,
        text=body,
        content_type=mime,
    )


def _from_pdf(fetched: Fetched) -> Article:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    cut = " (the file was cut at fetch.max_bytes; raise it)" if fetched.truncated else ""
    try:
        reader = PdfReader(io.BytesIO(fetched.body))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError("the PDF is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except ExtractError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        kind = "unreadable PDF" if isinstance(exc, PdfReadError) else "damaged PDF"
        raise ExtractError(f"{kind}{cut}: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    title = str(meta_title or "").strip()
    if not title or re.search(r"\.(docx?|pdf|pptx?|tex)$|^microsoft|^untitled", title, re.I):
        title = next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]
    return Article(
        url=fetched.url,
        final_url=fetched.final_url,
        title=title,
        text=text,
        content_type="application/pdf",
    )


def _drop_title_heading(text: str, title: object) -> str:
    """Remove a leading '# Title' line that repeats the article's title."""
    first, _, rest = text.partition("\n")
    heading = re.match(r"^#{1,2}\s+(.*)$", first.strip())
    if heading and title and _clean(heading.group(1)) == _clean(title):
        return rest.strip()
    return text


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text or None
