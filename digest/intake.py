"""Getting links into an issue: reading links.yaml, normalizing URLs."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from digest.errors import LinksError
from digest.models import Link

TRACKING_PARAMS = re.compile(
    r"^(utm_.*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|igshid|yclid|_hsenc|_hsmi"
    r"|ref|ref_src|ref_url|source|spm|si)$",
    re.IGNORECASE,
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_web_url(value: str) -> bool:
    """True for an http(s) URL."""
    return urlsplit(value.strip()).scheme.lower() in ("http", "https")


def normalize_url(url: str) -> str:
    """The canonical form of a web URL: lower-case scheme and host, no default port,
    no tracking parameters, no fragment, no trailing slash on a non-root path."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url.strip()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)]
    )
    return urlunsplit((scheme, netloc, path, query, ""))


def link_key(link: Link | str) -> str:
    """The identity of a link inside an issue (normalized URL, or the path as written)."""
    url = link.url if isinstance(link, Link) else link
    return normalize_url(url) if is_web_url(url) else url.strip()


def parse_links(text: str, where: Path | str) -> list[Link]:
    """Parse links.yaml text: a list of URL strings or {url, note, section, title} mappings."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise LinksError(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise LinksError(f"{where}: expected a YAML list of links (lines starting with '- ')")
    links: list[Link] = []
    for index, entry in enumerate(data, start=1):
        if isinstance(entry, str):
            links.append(Link(url=entry.strip()))
        elif isinstance(entry, dict):
            unknown = set(entry) - {"url", "note", "section", "title", "description"}
            if "url" not in entry or not isinstance(entry["url"], str):
                raise LinksError(f"{where}: entry {index} has no `url:`; every entry needs one")
            if unknown:
                raise LinksError(
                    f"{where}: entry {index} has unknown keys {sorted(unknown)}; "
                    "allowed are url, note, section, title"
                )
            links.append(
                Link(
                    url=entry["url"].strip(),
                    note=_opt_str(entry.get("note")),
                    section=_opt_str(entry.get("section")),
                    title=_opt_str(entry.get("title")),
                    description=_opt_str(entry.get("description")),
                )
            )
        else:
            raise LinksError(f"{where}: entry {index} is neither a URL nor a mapping with `url:`")
    return links


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value).strip() or None


def read_links(path: Path) -> list[Link]:
    """Read an issue's links.yaml; a missing file is an empty list."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LinksError(f"{path}: cannot read ({exc})") from None
    return parse_links(text, path)
