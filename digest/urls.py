"""Web addresses and links.yaml entries: what is a web URL, one canonical form, one key.

`normalize_url` is what `add` and `import` write (tracking parameters dropped, host in
ASCII); `link_key` is the identity two spellings of one link share; local files named in
links.yaml get theirs from `entry_key` (their path relative to the issue folder).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

from digest.config import DEFAULT_STRIP_PARAMS
from digest.errors import LinksError
from digest.models import Link

if TYPE_CHECKING:
    pass

DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")

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


def normalize_url(url: str, *, keep_slash: bool = False, strip: Sequence[str] | None = None) -> str:
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


def resolved_path(path: Path) -> Path | None:
    """The path with symlinks and `..` resolved, or None for a symlink loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop"
        return None


def article_key(link: Link, issue_dir: Path) -> str:
    """The article cache's key: the link key of a web link; for a local file its resolved
    path, size and modification time, so that `articles/a.md` of two issues are two
    articles and an edited file is read again (nothing is read here: not a device, not a
    pipe, not a file outside the workspace, which compose refuses before fetching)."""
    if link.local is None and is_web_url(link.url):
        return link_key(link)
    path = local_path(link.url, issue_dir)
    resolved = resolved_path(path) if path is not None else None
    try:
        info = resolved.stat() if resolved is not None else None
    except OSError:
        info = None
    if resolved is None or info is None or not stat.S_ISREG(info.st_mode):
        return link_key(link)  # fetching it fails with the reason
    return f"file:{resolved}#size={info.st_size}&mtime={info.st_mtime_ns}"


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
    # A symlink loop keeps its spelling (normalized); fetching it is refused with the reason.
    relative = os.path.relpath(resolved_path(path) or os.path.normpath(path), issue_dir.resolve())
    return "file:" + Path(relative).as_posix()


def entry_key(target: str, issue_dir: Path) -> str:
    """The identity of a links.yaml entry (or a URL typed for one) in an issue folder."""
    return local_key(target, issue_dir) if is_local_entry(target) else link_key(target)


def workspace_file(target: str, issue_dir: Path, root: Path) -> Path:
    """The resolved file a local entry names; refused when it lies outside the workspace."""
    path = local_path(target, issue_dir)
    assert path is not None, "a web URL is not a local file"
    resolved = resolved_path(path)
    if resolved is None:
        raise LinksError(f"refused {target}: it is a symbolic link that leads back to itself")
    if not resolved.is_relative_to(root.resolve()):
        raise LinksError(
            f"refused {target}: it resolves to {resolved}, which is outside the workspace "
            f"({root.resolve()}); local files must be inside the workspace folder: copy the "
            "file there"
        )
    return resolved
