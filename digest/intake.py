"""Getting links into an issue: reading links.yaml, normalizing URLs, `add` and `import`.

`add` and `import` read everything first and write `links.yaml` once, at the end, by
appending text to it (so the editor's comments and order stay as they were); bad input
raises a `LinksError` naming the input before anything is written.

`add` refuses the whole command when one argument is not a web URL (exit 1); a duplicate
of a link already in the issue is skipped and said so (exit 0); a link that appeared in
another issue is added with a warning naming it. `import` keeps dated entries (feeds,
bookmarks' ADD_DATE) that fall inside the issue's Period, or on or after `--since`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import functools
import html
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, unquote_plus, urljoin, urlsplit, urlunsplit

import yaml

from digest.config import DEFAULT_STRIP_PARAMS
from digest.errors import LinksError
from digest.models import Link
from digest.text import shorten

if TYPE_CHECKING:
    from digest.workspace import IssueFolder, Workspace

DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
DESCRIPTION_CHARS = 300

# `ref` (and `ref_src`, `ref_url`) is a referral on most sites (`?ref=producthunt`) but a branch,
# tag or commit on code hosts (`github.com/o/r/blob/x?ref=v2`, GitLab's `?ref=main`). The rule:
# it is dropped only when the host is not a code host and the value looks like a referrer (a site
# name or address, a known referrer word, Twitter's `twsrc…`) and not like a git ref.
REFERRAL_PARAMS = frozenset({"ref", "ref_src", "ref_url"})
CODE_HOSTS = frozenset(
    {
        "github.com",
        "gitlab.com",
        "bitbucket.org",
        "codeberg.org",
        "git.sr.ht",
        "gitea.com",
        "sourceforge.net",
        "huggingface.co",
        "gitee.com",
    }
)
_CODE_HOST_LABELS = frozenset({"git", "gitlab", "gitea", "forgejo", "gerrit", "code", "source"})
REFERRER_WORDS = frozenset(
    {
        "hn",
        "hackernews",
        "hacker_news",
        "producthunt",
        "product_hunt",
        "twitter",
        "tw",
        "x",
        "facebook",
        "fb",
        "linkedin",
        "reddit",
        "lobsters",
        "mastodon",
        "bluesky",
        "bsky",
        "threads",
        "instagram",
        "youtube",
        "google",
        "bing",
        "duckduckgo",
        "slack",
        "discord",
        "telegram",
        "kakao",
        "naver",
        "daum",
        "medium",
        "substack",
        "devto",
        "newsletter",
        "rss",
        "feed",
        "email",
        "mail",
        "share",
        "social",
        "homepage",
        "home",
        "sidebar",
        "nav",
        "footer",
        "header",
        "menu",
        "related",
        "search",
        "web",
        "app",
    }
)
_REFERRER_PARTS = ("newsletter", "twsrc", "rss", "feed", "share", "social", "email")
_DOMAIN = re.compile(r"^(?:[a-z0-9-]+\.)+[a-z]{2,}$")
_GIT_REF = re.compile(
    r"^(?:v?\d+(?:[._-]\w+)*|[0-9a-f]{7,40}|main|master|develop|dev|trunk|head|stable|release)$"
)


def ascii_host(name: str) -> str:
    """A host or mail domain in ASCII: an ASCII name as given, an international one as IDNA 2008
    / UTS-46 punycode (`faß.de` is `xn--fa-hia.de`, never `fass.de`); UnicodeError if invalid."""
    host = name.strip().rstrip(".")
    if host.isascii():
        return host
    import idna

    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise UnicodeError(str(exc)) from None


def _web_parts(value: str) -> Any | None:
    """The split URL when value is an http(s) URL with a host and a valid port, else None."""
    text = value.strip()
    if not text or any(ch.isspace() for ch in text):
        return None
    try:
        parts = urlsplit(text)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts


def is_web_url(value: str) -> bool:
    """True for an http(s) URL with a host."""
    return _web_parts(value) is not None


def _host(hostname: str) -> str:
    """Lower-case host; international names in their ASCII (punycode) form."""
    host = hostname.lower().rstrip(".")
    if ":" in host:
        return f"[{host}]"
    try:
        return ascii_host(host)
    except UnicodeError:
        return host


def _keep_fragment(fragment: str) -> bool:
    """Fragments that address content in single-page apps (#!/… and #/…) are kept."""
    return fragment.startswith(("!", "/"))


@functools.lru_cache(maxsize=32)
def _tracking(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive regex for the glob patterns of intake.strip_params."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(fnmatch.translate(p) for p in patterns), re.IGNORECASE)


def is_code_host(host: str) -> bool:
    """True for hosts of git forges, where `ref` names a branch, tag or commit."""
    host = host.lower().rstrip(".")
    if any(host == known or host.endswith("." + known) for known in CODE_HOSTS):
        return True
    return host.split(".", 1)[0] in _CODE_HOST_LABELS


def is_referral(name: str, value: str, host: str) -> bool:
    """True when a `ref`-like parameter is a referral (see REFERRAL_PARAMS) and may go."""
    if name.lower() not in REFERRAL_PARAMS or is_code_host(host):
        return False
    text = unquote_plus(value).strip().lower()
    if text.startswith(("https://", "http://")):
        return True  # the address of the referring page
    if not text or "/" in text or _GIT_REF.match(text):
        return False  # refs/heads/x, feature/x, v2.1, a commit: a git ref
    return (
        text in REFERRER_WORDS
        or bool(_DOMAIN.match(text))
        or any(part in text for part in _REFERRER_PARTS)
    )


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: `/a/./b/../c` is `/a/c`."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def normalize_url(
    url: str, *, keep_slash: bool = False, strip: Sequence[str] | None = None
) -> str:
    """The canonical form of a web URL: lower-case scheme, host in IDNA 2008 / UTS-46 ASCII,
    no default port, `.`/`..` segments resolved, no tracking parameters (`strip`: the glob
    patterns of intake.strip_params; default its default) nor referral `ref`s, no fragment,
    no trailing slash on a non-root path (unless keep_slash: `add` stores the slash, since
    some servers answer only one form). The order of the other parameters is kept."""
    parts = _web_parts(url)
    if parts is None:
        return url.strip()
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    path = _PERCENT.sub(lambda m: m.group(0).upper(), _remove_dot_segments(parts.path)) or "/"
    if len(path) > 1 and path.endswith("/"):
        path = (path.rstrip("/") or "/") + ("/" if keep_slash else "")
    tracking = _tracking(tuple(DEFAULT_STRIP_PARAMS if strip is None else strip))
    kept = []
    for piece in parts.query.split("&"):
        name, _, value = piece.partition("=")
        name = unquote_plus(name)
        if piece and not tracking.fullmatch(name) and not is_referral(name, value, host):
            kept.append(piece)
    query = _PERCENT.sub(lambda m: m.group(0).upper(), "&".join(kept))
    fragment = parts.fragment if _keep_fragment(parts.fragment) else ""
    return urlunsplit((scheme, netloc, path, query, fragment))


_IDENTITY_SAFE = "/%:@!$&'()*+,;=-._~?"


def link_key(link: Link | str) -> str:
    """The identity of a link inside an issue: for a web URL its normalized form (default
    strip_params, so changing the setting never loses track of items), with the parameters
    in a stable order by name and non-ASCII characters percent-encoded; a local entry's
    `file:` form relative to the issue folder when known, else the path as written."""
    if isinstance(link, Link):
        if link.local is not None:
            return link.local
        url = link.url
    else:
        url = link
    if not is_web_url(url):
        return url.strip()
    scheme, netloc, path, query, fragment = urlsplit(normalize_url(url))
    pieces = sorted(query.split("&"), key=lambda piece: piece.partition("=")[0]) if query else []
    return urlunsplit(
        (
            scheme,
            netloc,
            quote(path, safe=_IDENTITY_SAFE),
            quote("&".join(pieces), safe=_IDENTITY_SAFE),
            quote(fragment, safe=_IDENTITY_SAFE),
        )
    )


def local_path(target: str, base_dir: Path) -> Path | None:
    """The file a links.yaml entry names (relative paths against base_dir), or None for a
    web URL."""
    if is_web_url(target):
        return None
    target = target.strip()
    if target.startswith("file:"):
        path = Path(unquote(urlsplit(target).path))
    else:
        path = Path(target).expanduser()
    return path if path.is_absolute() else base_dir / path


def is_local_entry(target: str) -> bool:
    """True for a path or a `file:` URL (not a web URL, nor another scheme like mailto:)."""
    text = target.strip()
    scheme = urlsplit(text).scheme if ":" in text else ""
    return bool(text) and (scheme == "" or scheme.lower() == "file" or len(scheme) == 1)


def local_key(target: str, issue_dir: Path) -> str:
    """A local file's one spelling: `file:` and its path relative to the issue folder, so
    `a.html`, `./a.html`, `x/../a.html`, `/abs/…/a.html` and `file:///abs/…/a.html` are one link."""
    path = local_path(target, issue_dir)
    if path is None:
        return link_key(target)
    relative = os.path.relpath(path.resolve(), issue_dir.resolve())
    return "file:" + Path(relative).as_posix()


def entry_key(target: str, issue_dir: Path) -> str:
    """The identity of a links.yaml entry (or a URL typed for one) in an issue folder."""
    return local_key(target, issue_dir) if is_local_entry(target) else link_key(target)


def workspace_file(target: str, issue_dir: Path, root: Path) -> Path:
    """The resolved file a local entry names; refused when it lies outside the workspace."""
    path = local_path(target, issue_dir)
    assert path is not None, "a web URL is not a local file"
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise LinksError(
            f"refused {target}: it resolves to {resolved}, which is outside the workspace "
            f"({root.resolve()}); local files must be inside the workspace folder: copy the "
            "file there"
        )
    return resolved


def parse_links(text: str, where: Path | str, base: Path | None = None) -> list[Link]:
    """Parse links.yaml text: a list of URL strings or {url, note, section, title} mappings;
    with the issue folder as base, each local entry knows its one `file:` form."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise LinksError(f"{where}{line}: not valid YAML ({problem})") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise LinksError(f"{where}: expected a YAML list of links (lines starting with '- ')")
    links: list[Link] = []
    for index, entry in enumerate(data, start=1):
        if isinstance(entry, str):
            links.append(Link(url=entry.strip(), local=_local(entry, base)))
        elif isinstance(entry, dict):
            unknown = set(entry) - {"url", "note", "section", "title", "description", "imported"}
            if "url" not in entry or not isinstance(entry["url"], str):
                raise LinksError(f"{where}: entry {index} has no `url:`; every entry needs one")
            if unknown:
                raise LinksError(
                    f"{where}: entry {index} has unknown keys {sorted(unknown)}; "
                    "allowed are url, note, section, title, description, imported"
                )
            links.append(
                Link(
                    url=entry["url"].strip(),
                    note=_opt_str(entry.get("note")),
                    section=_opt_str(entry.get("section")),
                    title=_opt_str(entry.get("title")),
                    description=_opt_str(entry.get("description")),
                    imported=_opt_str(entry.get("imported")),
                    local=_local(entry["url"], base),
                )
            )
        else:
            raise LinksError(f"{where}: entry {index} is neither a URL nor a mapping with `url:`")
    return links


def _local(url: str, base: Path | None) -> str | None:
    return local_key(url, base) if base is not None and is_local_entry(url) else None


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
    return parse_links(text, path, path.parent)


# ---------------------------------------------------------------- appending to links.yaml


@dataclass
class Candidate:
    """A link about to be added, with the hints its source gave."""

    url: str
    title: str | None = None
    description: str | None = None
    note: str | None = None
    section: str | None = None
    date: dt.date | None = None
    imported: str | None = None  # the source `digest import` read it from

    def entry(self) -> str | dict[str, str]:
        """The links.yaml entry: a plain URL, or a mapping when there is more to say."""
        extra = {
            key: value
            for key, value in (
                ("title", self.title),
                ("description", self.description),
                ("section", self.section),
                ("note", self.note),
                ("imported", self.imported),
            )
            if value
        }
        return {"url": self.url, **extra} if extra else self.url


def _entries_yaml(entries: list[str | dict[str, str]], newline: str) -> str:
    text = yaml.safe_dump(entries, allow_unicode=True, sort_keys=False, width=10**6)
    return text.replace("\n", newline)


def _append(path: Path, old_text: str, old_links: list[Link], new: list[Candidate]) -> None:
    """Append entries to links.yaml as text, keeping everything the editor wrote."""
    from digest.workspace import atomic_write

    if not new:
        return
    entries = [c.entry() for c in new]
    expected = old_links + parse_links(_entries_yaml(entries, "\n"), "new entries", path.parent)
    newline = "\r\n" if "\r\n" in old_text else "\n"
    glue = "" if not old_text or old_text.endswith("\n") else newline
    text = old_text + glue + _entries_yaml(entries, newline)
    try:
        appended_ok = parse_links(text, path, path.parent) == expected
    except LinksError:
        appended_ok = False
    if not appended_ok:
        text = _append_round_trip(path, old_text, entries)
        if parse_links(text, path, path.parent) != expected:
            raise LinksError(
                f"{path}: cannot append to this file without changing it; "
                "write it as a block list (one '- ' line per link)"
            )
    atomic_write(path, text)


def _append_round_trip(path: Path, old_text: str, entries: list[str | dict[str, str]]) -> str:
    """Append with ruamel.yaml's round trip (for flow-style lists like `[a, b]`)."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    rt = YAML(typ="rt")
    rt.width = 10**6
    try:
        data = rt.load(old_text)
    except YAMLError as exc:
        raise LinksError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        data = []
    data.extend(entries)
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


@dataclass
class _Known:
    """Links already collected: in this issue (key -> entry number) and in other issues."""

    path: Path
    text: str
    links: list[Link]
    here: dict[str, int]
    elsewhere: dict[str, str]


def _known_links(ws: Workspace, folder: IssueFolder) -> _Known:
    """Read this issue's links.yaml and the keys of every other issue's links."""
    path = folder.links
    text = ""
    if path.exists():
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LinksError(f"{path}: cannot read ({exc})") from None
    links = parse_links(text, path, path.parent)
    here: dict[str, int] = {}
    for index, link in enumerate(links, start=1):
        here.setdefault(link_key(link), index)
    elsewhere: dict[str, str] = {}
    this = folder.path.resolve()
    for other in reversed(ws.issue_folders()):
        if other.path.resolve() == this:
            continue
        for key in _issue_keys(other):
            elsewhere.setdefault(key, other.id)
    return _Known(path=path, text=text, links=links, here=here, elsewhere=elsewhere)


def _issue_keys(folder: IssueFolder) -> set[str]:
    """Keys of an issue's links and of the item URLs compose made for them."""
    keys: set[str] = set()
    try:
        keys |= {link_key(link) for link in read_links(folder.links) if is_web_url(link.url)}
    except LinksError:
        pass
    try:
        state = json.loads(folder.state_path.read_text(encoding="utf-8"))
        keys |= {link_key(str(u)) for u in state.get("composed", {}).values() if is_web_url(str(u))}
    except (OSError, ValueError, AttributeError):
        pass
    return keys


@dataclass
class _Sorted:
    """Candidates sorted into what is added and what is not."""

    added: list[Candidate] = field(default_factory=list)
    duplicates: list[tuple[Candidate, str]] = field(default_factory=list)
    earlier: list[tuple[Candidate, str]] = field(default_factory=list)


def _sort(known: _Known, candidates: Iterable[Candidate], strip: Sequence[str]) -> _Sorted:
    """Drop duplicates of this issue's links (and of each other); note other issues' links."""
    result = _Sorted()
    batch: set[str] = set()
    for cand in candidates:
        key = entry_key(cand.url, known.path.parent)
        if is_web_url(cand.url):
            cand.url = normalize_url(cand.url, keep_slash=True, strip=strip)
        if key in known.here:
            result.duplicates.append((cand, f"entry {known.here[key]} of links.yaml"))
            continue
        if key in batch:
            result.duplicates.append((cand, "given twice"))
            continue
        batch.add(key)
        result.added.append(cand)
        if key in known.elsewhere:
            result.earlier.append((cand, known.elsewhere[key]))
    return result


# ---------------------------------------------------------------- digest add


@dataclass
class AddResult:
    """What `digest add` did; messages are the lines to show the editor."""

    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    earlier: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


DOCUMENT_SUFFIXES = frozenset({"html", "htm", "xhtml", "md", "markdown", "txt", "text", "pdf"})


def _not_a_url(value: str, path: Path | None = None) -> str:
    """Why value is neither a web URL nor an existing file, and what to type instead."""
    text = value.strip()
    if not text:
        return "an empty argument is not a URL"
    parts = urlsplit(text) if not any(ch.isspace() for ch in text) else None
    if parts is not None and parts.scheme and parts.scheme.lower() not in ("http", "https"):
        if len(parts.scheme) > 1 and parts.scheme.lower() != "file":
            return (
                f"{text!r} is a {parts.scheme}: address, not a web page; give an http(s) URL "
                "or a file"
            )
    missing = f"no such file: {path}" if path is not None else "not a file"
    domain = re.match(r"^[\w-]+(\.[\w-]+)+(/|$)", text) if parts and not parts.scheme else None
    suffix = text.split("/", 1)[0].rsplit(".", 1)[-1].lower()
    if domain and suffix not in DOCUMENT_SUFFIXES:
        return f"{text!r} is not a URL, and {missing} (did you mean https://{text} ?)"
    if parts is None:
        return (
            f"{text!r} is not a URL, and {missing}; give a web address starting with https:// "
            "or http://"
        )
    if not parts.scheme or parts.scheme.lower() == "file":
        return f"{missing} ({text!r}); check the path, or give a web address (https://…)"
    return f"{text!r} is not a URL; give a web address starting with https:// or http://"


def _add_target(ws: Workspace, folder: IssueFolder, value: str, cwd: Path) -> str:
    """What `digest add` stores for an argument: the web URL, or an existing file inside the
    workspace as a path relative to the issue folder (so the folder can move)."""
    if is_web_url(value):
        return value
    path = local_path(value, cwd) if is_local_entry(value) else None
    if path is None or not path.exists():
        raise LinksError(f"{_not_a_url(value, path and path.resolve())}. Nothing was added.")
    if not path.is_file():
        raise LinksError(f"{value!r} is a folder, not a file; give a file. Nothing was added.")
    resolved = workspace_file(str(path), cwd, ws.root)
    return Path(os.path.relpath(resolved, folder.path.resolve())).as_posix()


def _section_name(ws: Workspace, section: str | None, messages: list[str]) -> str | None:
    """The configured spelling of --section; unknown names are refused."""
    if section is None or not section.strip():
        return None
    names = ws.settings.section_names()
    if not names:
        messages.append(
            f"warning: no [[sections]] in digest.toml, so --section {section!r} is kept in "
            "links.yaml but not used"
        )
        return section.strip()
    for name in names:
        if name.casefold() == section.strip().casefold():
            return name
    raise LinksError(f"--section {section!r}: no such section; digest.toml has {', '.join(names)}")


def add_links(
    ws: Workspace,
    folder: IssueFolder,
    urls: list[str],
    *,
    section: str | None = None,
    note: str | None = None,
    cwd: Path | None = None,
) -> AddResult:
    """Append URLs (or files of the workspace; relative paths against cwd) to links.yaml:
    normalized; duplicates skipped; other issues' links warned."""
    result = AddResult()
    if not urls:
        raise LinksError("no URLs given; pass them as arguments or on standard input with '-'")
    urls = [_add_target(ws, folder, u, cwd or Path.cwd()) for u in urls]
    chosen_section = _section_name(ws, section, result.messages)
    known = _known_links(ws, folder)
    candidates = [
        Candidate(url=u, section=chosen_section, note=(note or "").strip() or None) for u in urls
    ]
    sorted_ = _sort(known, candidates, ws.settings.intake.strip_params)
    _append(known.path, known.text, known.links, sorted_.added)
    for cand in sorted_.added:
        result.added.append(cand.url)
        result.messages.append(f"added {cand.url}")
    for cand, issue_id in sorted_.earlier:
        result.earlier.append((cand.url, issue_id))
        result.messages.append(f"warning: {cand.url} already appeared in issue {issue_id}")
    for cand, where in sorted_.duplicates:
        result.duplicates.append(cand.url)
        result.messages.append(f"skipped {cand.url}: already in issue {folder.id} ({where})")
    result.messages.append(
        f"{len(sorted_.added)} added to issue {folder.id} ({known.path})"
        + (f", {len(sorted_.duplicates)} duplicate(s) skipped" if sorted_.duplicates else "")
    )
    return result


# ---------------------------------------------------------------- digest import


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


def _http_get(client: _GuardedWeb, url: str, max_bytes: int, name: str) -> _Source:
    """GET a URL through the Fetcher (limits, retries, address guard); errors name the source."""
    from digest.errors import FetchError

    if not is_web_url(url):  # a page or feed from the web may not point at local files
        raise LinksError(f"{name}: {url} is not an http(s) address; give the feed's web URL")
    try:
        fetched = client.get(url)
    except FetchError as exc:
        raise LinksError(f"{name}: cannot fetch {url} ({exc})") from None
    if fetched.truncated:
        raise LinksError(
            f"{name}: larger than {max_bytes} bytes (fetch.max_bytes); download it and import the file"
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


class _GuardedWeb:
    """Synchronous, thread-safe use of the compose Fetcher, so import obeys the same
    limits and address guard (fetch.allow_private_hosts) as compose."""

    def __init__(self, ws: Workspace) -> None:
        self.settings = ws.settings.fetch
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.fetcher: Any = None

    def __enter__(self) -> _GuardedWeb:
        self.thread.start()

        async def make() -> Any:
            from digest.fetch import Fetcher

            return Fetcher(self.settings)

        self.fetcher = asyncio.run_coroutine_threadsafe(make(), self.loop).result()
        return self

    def get(self, url: str) -> Any:
        """Fetch one URL (blocking)."""
        future = asyncio.run_coroutine_threadsafe(self.fetcher.fetch(url, Path.cwd()), self.loop)
        return future.result()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fetcher.aclose(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _http_client(ws: Workspace) -> _GuardedWeb:
    return _GuardedWeb(ws)


_ROOT = re.compile(rb"<\s*([A-Za-z][\w.-]*(?::[\w.-]+)?)")


def _sniff(data: bytes) -> str | None:
    """The format the bytes look like: bookmarks, html, opml, feed, or None."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = head.lower()
    if b"<!doctype netscape-bookmark-file" in lower:
        return "bookmarks"
    if not head.startswith(b"<"):
        return None
    body = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!doctype[^>]*>", b"", lower, flags=re.S).lstrip()
    match = _ROOT.match(body)
    if match is None:
        return None
    root = match.group(1).decode("ascii", "replace")
    if root == "opml":
        return "opml"
    if root in ("rss", "feed", "rdf:rdf", "channel"):
        return "feed"
    if root == "html":
        return "html"
    return None


def _format_of(src: _Source) -> str:
    """Decide how to read a source, from its name, its content type and its first bytes."""
    sniffed = _sniff(src.data)
    ctype = src.content_type.split(";")[0].strip()
    if src.suffix in TEXT_SUFFIXES and sniffed is None:
        return "text"
    if src.suffix in OPML_SUFFIXES or sniffed == "opml" or "opml" in ctype:
        return "opml"
    if sniffed in ("feed", "bookmarks"):
        return sniffed
    if src.suffix in FEED_SUFFIXES or ctype.endswith(("rss+xml", "atom+xml", "/xml", "rdf+xml")):
        return "feed"
    if sniffed == "html" or src.suffix in HTML_SUFFIXES or ctype == "text/html":
        return "html"
    if src.suffix in TEXT_SUFFIXES or ctype in ("text/plain", "text/markdown"):
        return "text"
    if not src.suffix and not ctype and b"\x00" not in src.data[:8192]:
        return "text"
    raise LinksError(
        f"{src.name}: unknown format ({src.suffix or ctype or 'no file suffix'}); import reads "
        "text or Markdown (.txt, .md), a bookmarks export (.html), OPML (.opml), or an "
        "RSS/Atom feed (.xml, .rss, .atom, or a feed URL)"
    )


def _decode(src: _Source) -> str:
    """Text of a source, decoded as pages are: BOM, declared charset, else sniffed."""
    from digest.extract import decode_text
    from digest.fetch import parse_content_type

    if b"\x00" in src.data[:8192]:
        raise LinksError(
            f"{src.name}: a binary file, not text; give a text, HTML, OPML or feed file"
        )
    charset = parse_content_type(src.content_type)[1]
    return decode_text(src.data, charset, html=_sniff(src.data) in ("html", "bookmarks"))


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
    import calendar

    return float(calendar.timegm(stamp))


# ------------------------------------------------ OPML


def feeds_in_opml(src: _Source) -> tuple[list[str], list[Candidate]]:
    """The feeds an OPML file lists (xmlUrl), and plain links (outlines with only a url)."""
    import xml.etree.ElementTree as ET

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


def _feed_source(client: Any, target: str, parent: _Source, max_bytes: int) -> _Source:
    """One feed an OPML file lists: a URL, or a file relative to the OPML file."""
    if is_web_url(target):
        return _http_get(client, target, max_bytes, target)
    if parent.base_url and is_web_url(parent.base_url):
        return _http_get(client, urljoin(parent.base_url, target), max_bytes, target)
    path = Path(unquote(urlsplit(target).path)) if target.startswith("file:") else Path(target)
    if not path.is_absolute() and parent.base_dir is not None:
        path = parent.base_dir / path
    return _read_file(target, path)


_OPML_SKIP = "warning: skipped a feed of the OPML file: "


def links_in_opml(client_factory: Any, src: _Source, tz: dt.tzinfo, max_bytes: int) -> _Found:
    """Entries of every feed an OPML file lists, fetched a few at a time."""
    from concurrent.futures import ThreadPoolExecutor

    feeds, plain = feeds_in_opml(src)
    found = _Found(format=f"OPML ({len(feeds)} feeds)", dated=True)
    for cand in plain:
        if is_web_url(cand.url):
            found.candidates.append(cand)
        else:
            found.not_web += 1
    if not feeds:
        return found
    with client_factory() as client:

        def one(target: str) -> _Found:
            return links_in_feed(_feed_source(client, target, src, max_bytes), tz)

        with ThreadPoolExecutor(max_workers=min(8, len(feeds))) as pool:
            futures = [pool.submit(one, target) for target in feeds]
            failed = 0
            for future in futures:
                try:
                    part = future.result()
                except LinksError as exc:
                    failed += 1
                    found.warnings.append(f"{_OPML_SKIP}{exc}")
                    continue
                found.candidates.extend(part.candidates)
                found.not_web += part.not_web
    if failed == len(feeds) and not found.candidates:
        reasons = [w.removeprefix(_OPML_SKIP) for w in found.warnings]
        raise LinksError(
            f"{src.name}: none of its {len(feeds)} feeds could be read:\n  " + "\n  ".join(reasons)
        )
    return found


# ------------------------------------------------ import_source


def _web_page_feed(client: Any, src: _Source, max_bytes: int) -> _Source:
    """The feed a web page announces with <link rel=alternate>; else a clear error."""
    parser = _AnchorParser()
    parser.feed(_decode(src))
    if not parser.feeds:
        raise LinksError(
            f"{src.name}: a web page with no RSS/Atom feed link; give the feed's URL, "
            "or add the page itself with `digest add URL`"
        )
    href = urljoin(src.base_url or src.name, html.unescape(parser.feeds[0][0]))
    return _http_get(client, href, max_bytes, href)


def _read_source(ws: Workspace, source: str) -> _Found:
    """Read and parse a source of any supported kind."""
    tz = ws.tz
    max_bytes = ws.settings.fetch.max_bytes
    if is_web_url(source):
        with _http_client(ws) as client:
            src = _http_get(client, source, max_bytes, source)
            kind = _format_of(src)
            if kind == "html":
                src = _web_page_feed(client, src, max_bytes)
                kind = _format_of(src)
                if kind != "feed":
                    raise LinksError(f"{src.name}: announced as a feed but is not one ({kind})")
    else:
        path = Path(unquote(urlsplit(source).path)) if source.startswith("file:") else Path(source)
        src = _read_file(source, path.expanduser())
        kind = _format_of(src)
    if kind == "feed":
        return links_in_feed(src, tz)
    if kind == "opml":
        return links_in_opml(lambda: _http_client(ws), src, tz, max_bytes)
    if kind in ("bookmarks", "html"):
        return links_in_html(_decode(src), tz, src.base_url, bookmarks=kind == "bookmarks")
    return links_in_text(_decode(src))


def import_source(
    ws: Workspace, folder: IssueFolder, source: str, *, since: dt.date | None = None
) -> ImportResult:
    """Add links from text/Markdown, bookmarks, OPML or a feed; dated ones within the Period."""
    known = _known_links(ws, folder)
    found = _read_source(ws, source)
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
    sorted_ = _sort(known, kept, ws.settings.intake.strip_params)
    for cand in sorted_.added:
        cand.imported = source
    _append(known.path, known.text, known.links, sorted_.added)
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
