"""From a fetched body to an Article: HTML via trafilatura (from bytes), PDF, plain text."""

from __future__ import annotations

import re

from digest.errors import ExtractError
from digest.fetch import Fetched
from digest.models import Article, Link

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}


def sniff_type(fetched: Fetched) -> str:
    """The content type, corrected by looking at the first bytes."""
    head = fetched.body[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith(b"\x89png"):
        return "image/png"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head or b"<head" in head:
        return "text/html"
    mime = fetched.content_type or ""
    if mime in ("", "application/octet-stream") and fetched.body[:1] not in (b"\x00",):
        try:
            fetched.body[:4096].decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError:
            return mime or "application/octet-stream"
    return mime


def decode_text(body: bytes, charset: str | None) -> str:
    """Decode a text body: declared charset, BOM, UTF-8, then CP949 (a superset of EUC-KR)."""
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", errors="replace")
    candidates = [c for c in (charset, "utf-8", "cp949") if c]
    for name in candidates:
        if name.lower().replace("_", "-") in ("euc-kr", "ks-c-5601-1987"):
            name = "cp949"
        try:
            return body.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode("utf-8", errors="replace")


def extract(fetched: Fetched, link: Link) -> Article:
    """Route by type and extract the article; raise ExtractError when there is none."""
    mime = sniff_type(fetched)
    if mime in HTML_TYPES:
        article = _from_html(fetched)
    elif mime in TEXT_TYPES:
        article = _from_text(fetched, decode_text(fetched.body, fetched.charset))
    elif mime == "application/pdf":
        article = _from_pdf(fetched)
    else:
        raise ExtractError(f"not an article: {mime or 'unknown type'}")
    if not article.text.strip():
        if link.title or link.note:
            article.title = article.title or link.title or ""
            article.text = ""
            return article
        raise ExtractError("no article text found (the page may need JavaScript)")
    if link.title and not article.title:
        article.title = link.title
    return article


def _from_html(fetched: Fetched) -> Article:
    import trafilatura

    doc = trafilatura.bare_extraction(
        fetched.body,
        url=fetched.final_url if not fetched.is_local else None,
        with_metadata=True,
        include_formatting=True,
        include_comments=False,
        include_tables=True,
    )
    if doc is None:
        return Article(url=fetched.url, final_url=fetched.final_url, content_type="text/html")
    data = doc.as_dict()
    text = _drop_title_heading((data.get("text") or "").strip(), data.get("title"))
    return Article(
        url=fetched.url,
        final_url=fetched.final_url,
        title=_clean(data.get("title")) or "",
        author=_clean(data.get("author")),
        date=_clean(data.get("date")),
        site_name=_clean(data.get("sitename")),
        description=_clean(data.get("description")),
        image=_clean(data.get("image")),
        language=_clean(data.get("language")),
        text=text,
        content_type="text/html",
        canonical_url=_clean(data.get("url")),
    )


def _from_text(fetched: Fetched, text: str) -> Article:
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
        content_type=fetched.content_type or "text/plain",
    )


def _from_pdf(fetched: Fetched) -> Article:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(fetched.body))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise ExtractError(f"unreadable PDF ({exc})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    title = (meta_title or "").strip() or next(
        (line.strip() for line in text.splitlines() if line.strip()), ""
    )[:200]
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
