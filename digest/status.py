"""`digest status`: where each link of an issue stands, read from the files (never writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from digest.cache import article_cache
from digest.compose import unedited_fallbacks
from digest.draft import read_draft
from digest.errors import DigestError
from digest.links import read_links
from digest.models import Article
from digest.publish import published_lines
from digest.urls import article_key, entry_key, link_key
from digest.workspace import IssueFolder, Workspace, read_report, read_state

STATE_STYLES = {
    "in draft": "green",
    "fallback": "magenta",
    "summarized": "cyan",
    "fetched": "blue",
    "new": "white",
    "failed": "red",
    "deleted": "yellow",
    "candidate": "magenta",
    "merged": "dim",
    "skipped": "dim",
    "duplicate": "dim",
}


# States whose detail is the item's title; in every other state the detail says why.
TITLE_STATES = frozenset({"in draft", "summarized", "fetched", "new"})


@dataclass
class LinkStatus:
    """One row of the status table."""

    index: int
    url: str
    state: str
    detail: str = ""

    @property
    def reason(self) -> str | None:
        """Why the link is in this state (failed, deleted, duplicate…); None for a title."""
        return None if self.state in TITLE_STATES or not self.detail else self.detail


def link_statuses(ws: Workspace, folder: IssueFolder) -> tuple[list[LinkStatus], list[str]]:
    """The state of every link in links.yaml, and notes about files that could not be read."""

    notes: list[str] = []
    links = read_links(folder.links)
    report = read_report(folder)
    by_url: dict[str, dict[str, Any]] = {}
    for link_report in report.links if report is not None else []:
        fields = link_report.model_dump(mode="json")
        by_url.setdefault(link_report.url, fields)
        by_url.setdefault(entry_key(link_report.url, folder.path), fields)
    composed = read_state(folder)
    draft_items: dict[str, str] = {}
    draft_read = False
    fallbacks: dict[str, Any] = {}
    if folder.draft.is_file():
        try:
            issue = read_draft(folder.draft, sections=ws.settings.section_names() or None)
            draft_items = {item.url: item.title for item in issue.items()}
            draft_read = True
            fallbacks = unedited_fallbacks(folder, issue)
        except DigestError as exc:
            notes.append(f"draft.md cannot be read, so 'in draft' is unknown: {exc}")
    draft_keys = {entry_key(url, folder.path): title for url, title in draft_items.items()}
    articles = article_cache(ws.cache_dir)

    rows: list[LinkStatus] = []
    seen: dict[str, int] = {}
    for index, link in enumerate(links, start=1):
        key = link_key(link)
        if key in seen:
            rows.append(LinkStatus(index, link.url, "duplicate", f"same link as entry {seen[key]}"))
            continue
        seen[key] = index
        made = composed.get(key)
        entry = by_url.get(link.url) or by_url.get(key)
        state, detail = _state(link.title, made, key, entry, draft_items, draft_keys, draft_read)
        if state == "in draft" and key in fallbacks:
            record, _ = fallbacks[key]
            state = "fallback"
            detail = (
                f"{detail} — written by the offline fallback ({record.reason}); "
                "`digest compose --refresh-fallbacks` summarizes it again"
            )
        if state == "new":
            article = articles.get_model(article_key(link, folder.path), Article)
            if article is not None:
                state, detail = "fetched", article.title or link.title or ""
        rows.append(LinkStatus(index, link.url, state, detail))
    return rows, notes


def _state(
    title: str | None,
    made: str | None,
    key: str,
    entry: dict[str, Any] | None,
    draft_items: dict[str, str],
    draft_keys: dict[str, str],
    draft_read: bool,
) -> tuple[str, str]:
    """State and detail of one link from state.json, draft.md and report.json."""
    if made is not None and made in draft_items:
        return "in draft", draft_items[made]
    if made is None and key in draft_keys:
        return "in draft", draft_keys[key]
    if made is not None and draft_read:
        return "deleted", "removed from the draft by the editor"
    status = entry.get("status") if entry is not None else None
    if entry is not None and status == "candidate":
        return (
            "candidate",
            f"score {entry.get('score')}: {entry.get('reason') or ''} (candidates.md)",
        )
    if entry is not None and status == "merged":
        return "merged", f"same story as {entry.get('merged_into')}"
    if entry is not None and status == "skipped" and entry.get("story"):
        return "skipped", str(entry.get("error") or "")
    if entry is not None and status == "failed":
        return "failed", str(entry.get("error") or "unknown error")
    if entry is not None and status in ("ok", "cached"):
        return "summarized", str(entry.get("title") or title or "")
    return "new", title or ""


def _counts(rows: list[LinkStatus]) -> str:
    order = list(STATE_STYLES)
    counts = {state: sum(1 for r in rows if r.state == state) for state in order}
    parts = [f"{n} {state}" for state, n in counts.items() if n]
    return f"{len(rows)} link(s): " + (", ".join(parts) if parts else "none")


def _heading(ws: Workspace, folder: IssueFolder) -> str:
    meta = folder.read_meta()
    period = (
        f"Period {meta.period_start} ~ {meta.period_end}"
        if meta is not None
        else "Period not set yet (`digest new` or the first compose sets it)"
    )
    number = f"issue {folder.id}" if meta is None else f"issue {folder.id} (number {meta.number})"
    return f"{number}, {period}; {folder.path}"


@dataclass
class IssueStatus:
    """What `digest status` shows: a heading, notes, and one row per link."""

    heading: str
    notes: list[str]  # published copies, and files that could not be read
    rows: list[LinkStatus]
    empty: str | None = None  # the message when links.yaml holds no links

    def counts(self) -> str:
        """One line: how many links are in each state."""
        return _counts(self.rows)


def issue_status(ws: Workspace, folder: IssueFolder) -> IssueStatus:
    """Where each link of the issue stands (the CLI shows it as a table or plain lines)."""
    rows, notes = link_statuses(ws, folder)
    return IssueStatus(
        heading=_heading(ws, folder),
        notes=published_lines(folder) + [f"note: {note}" for note in notes],
        rows=rows,
        empty=None if rows else f"no links in {folder.links}; add some with `digest add URL`",
    )


def status_json(ws: Workspace, folder: IssueFolder) -> dict[str, Any]:
    """The issue's links as `status --json` prints them (shape in the README)."""
    rows, _notes = link_statuses(ws, folder)
    return {
        "issue": folder.id,
        "links": [{"url": r.url, "state": r.state, "reason": r.reason} for r in rows],
    }
