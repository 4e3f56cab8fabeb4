"""links.yaml: reading it, and `digest add` (appending to it as text).

`add` and `import` read everything first and write `links.yaml` once, at the end, by
appending text to it (so the editor's comments and order stay as they were); bad input
raises a `LinksError` naming the input before anything is written.

`add` refuses the whole command when one argument is not a web URL (exit 1); a duplicate
of a link already in the issue is skipped and said so (exit 0); a link that appeared in
another issue is added with a warning naming it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from digest.errors import LinksError, UsageError
from digest.models import Link
from digest.urls import (
    entry_key,
    is_local_entry,
    is_web_url,
    link_key,
    local_key,
    local_path,
    normalize_url,
    resolved_path,
    workspace_file,
)
from digest.workspace import IssueFolder, Workspace, atomic_write, read_state


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


def append_links(path: Path, old_text: str, old_links: list[Link], new: list[Candidate]) -> None:
    """Append entries to links.yaml as text, keeping everything the editor wrote."""
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
class Known:
    """Links already collected: in this issue (key -> entry number) and in other issues."""

    path: Path
    text: str
    links: list[Link]
    here: dict[str, int]
    elsewhere: dict[str, str]


def known_links(ws: Workspace, folder: IssueFolder) -> Known:
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
    return Known(path=path, text=text, links=links, here=here, elsewhere=elsewhere)


def _issue_keys(folder: IssueFolder) -> set[str]:
    """Keys of an issue's links and of the item URLs compose made for them."""
    keys: set[str] = set()
    try:
        keys |= {link_key(link) for link in read_links(folder.links) if is_web_url(link.url)}
    except LinksError:
        pass
    keys |= {link_key(u) for u in read_state(folder).values() if is_web_url(u)}
    return keys


@dataclass
class Sorted:
    """Candidates sorted into what is added and what is not."""

    added: list[Candidate] = field(default_factory=list)
    duplicates: list[tuple[Candidate, str]] = field(default_factory=list)
    earlier: list[tuple[Candidate, str]] = field(default_factory=list)


def sort_candidates(known: Known, candidates: Iterable[Candidate], strip: Sequence[str]) -> Sorted:
    """Drop duplicates of this issue's links (and of each other); note other issues' links."""
    result = Sorted()
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
        shown = path and (resolved_path(path) or path)
        raise LinksError(f"{_not_a_url(value, shown)}. Nothing was added.")
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
    raise UsageError(f"--section {section!r}: no such section; digest.toml has {', '.join(names)}")


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
    known = known_links(ws, folder)
    candidates = [
        Candidate(url=u, section=chosen_section, note=(note or "").strip() or None) for u in urls
    ]
    sorted_ = sort_candidates(known, candidates, ws.settings.intake.strip_params)
    append_links(known.path, known.text, known.links, sorted_.added)
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
