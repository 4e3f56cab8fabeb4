"""`digest check`: lint a draft before it is sent."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Literal

from digest.cache import article_cache
from digest.compose import unedited_fallbacks
from digest.draft import read_draft
from digest.errors import DigestError, FetchError
from digest.faithful import unsupported_claims
from digest.fetch import Fetcher
from digest.links import read_links
from digest.models import FAITHFULNESS_CODES, Article, Code, Issue, Item, Notice, bullet_texts
from digest.render import GMAIL_CLIP_BYTES, Renderer, web_href
from digest.urls import article_key, entry_key, link_key
from digest.workspace import IssueFolder, Workspace, read_report, read_state

SUBJECT_MAX = 78
PLACEHOLDER = re.compile(
    r"\b(TODO|TBD|FIXME|XXX)\b|lorem ipsum|\{\{.*?\}\}|\[(?:link|url|title)\]|<placeholder>",
    re.IGNORECASE,
)


@dataclass
class Finding:
    """One problem found in an issue."""

    level: Literal["error", "warning"]
    where: str
    message: str
    code: str = "check"

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"

    @property
    def line(self) -> int | None:
        """The draft line this finding points at, when it points at one."""
        match = re.search(r"\.md:(\d+)$", self.where)
        return int(match.group(1)) if match else None

    def as_json(self) -> dict[str, Any]:
        """{code, message, line}; the message names the place when it is not a draft line."""
        message = self.message if self.line is not None else f"{self.where}: {self.message}"
        return {"code": self.code, "message": message, "line": self.line}


def check_json(folder: IssueFolder, findings: list[Finding]) -> dict[str, Any]:
    """The findings as `check --json` prints them (shape in the README)."""
    return {
        "issue": folder.id,
        "errors": [f.as_json() for f in findings if f.level == "error"],
        "warnings": [f.as_json() for f in findings if f.level == "warning"],
    }


def _heading_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        match = re.match(r"^#{2,3}\s+(.*)$", line)
        if match:
            lines.setdefault(match.group(1).strip(), number)
    return lines


def lint_issue(issue: Issue, draft_text: str, name: str = "draft.md") -> list[Finding]:
    """Problems visible in the draft itself."""
    findings: list[Finding] = []
    lines = _heading_lines(draft_text)
    items = issue.items()
    if not items:
        findings.append(
            Finding("error", name, "the issue has no items; compose or add some", "no-items")
        )
    for number, line in enumerate(draft_text.split("\n"), start=1):
        if re.match(r"^\s*[-*+][^\s\-*+]", line) and not re.match(r"^\s*(\*\*|__|\*[^*]+\*)", line):
            findings.append(
                Finding(
                    "warning",
                    f"{name}:{number}",
                    "looks like a bullet but has no space after the marker, so Markdown joins it "
                    "to the line above; write '- text'",
                    "bullet-without-space",
                )
            )
    for item in items:
        findings += _item_findings(item, f"{name}:{lines.get(item.title, '?')}")
    for text in (issue.intro or "", issue.title):
        match = PLACEHOLDER.search(text)
        if match:
            findings.append(
                Finding("error", name, f"leftover placeholder {match.group(0)!r}", "placeholder")
            )
    return findings


def _item_findings(item: Item, where: str) -> list[Finding]:
    """Problems of one item: no bullets, no URL, a local source, empty bullets, placeholders."""
    findings: list[Finding] = []
    if not item.bullets:
        findings.append(
            Finding(
                "error",
                where,
                f"item {item.title!r} has no bullets; add some or delete the item",
                "no-bullets",
            )
        )
    if not item.url:
        findings.append(Finding("error", where, f"item {item.title!r} has no source URL", "no-url"))
    elif not web_href(item.url):
        findings.append(
            Finding(
                "warning",
                where,
                f"item {item.title!r} comes from a local file ({item.url}) with no web "
                "address: readers will see no link to its source",
                Code.NO_WEB_ADDRESS,
            )
        )
    texts = bullet_texts(item.bullets)
    if any(not text.strip() for text in texts):
        findings.append(
            Finding("error", where, f"item {item.title!r} has an empty bullet", "empty-bullet")
        )
    for text in (item.title, item.translated_title or "", item.note or "", *texts):
        match = PLACEHOLDER.search(text)
        if match:
            findings.append(
                Finding(
                    "error",
                    where,
                    f"leftover placeholder {match.group(0)!r} in item {item.title!r}",
                    "placeholder",
                )
            )
            break
    return findings


def check_issue(ws: Workspace, folder: IssueFolder, *, check_links: bool = False) -> list[Finding]:
    """Every check on an issue: the draft, last compose's warnings, the email, optionally links."""
    if not folder.draft.is_file():
        raise DigestError(f"{folder.draft}: no draft yet; run `digest compose {folder.id}` first")
    issue = read_draft(folder.draft, sections=ws.settings.section_names() or None)
    findings = lint_issue(issue, folder.draft.read_text(encoding="utf-8"), str(folder.draft))

    findings += _compose_warnings(ws, folder, issue)
    renderer = Renderer(ws.settings, ws.templates_dir)
    subject = renderer.subject(issue)
    if len(subject) > SUBJECT_MAX:
        findings.append(
            Finding(
                "warning",
                "email.subject",
                f"subject is {len(subject)} characters; inboxes cut it near {SUBJECT_MAX}",
                "subject-too-long",
            )
        )
    html = renderer.render(issue).email_html
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        findings.append(
            Finding(
                "warning",
                str(folder.email_html),
                f"email is {size / 1024:.0f} KB; Gmail clips messages over 102 KB: shorten or split the issue",
                "email-clipped",
            )
        )
    if (
        folder.email_html.is_file()
        and folder.email_html.stat().st_mtime < folder.draft.stat().st_mtime
    ):
        findings.append(
            Finding(
                "warning",
                str(folder.email_html),
                f"older than draft.md; run `digest render {folder.id}`",
                "render-outdated",
            )
        )
    if check_links:
        findings += asyncio.run(_check_links(ws, folder, [item.url for item in issue.items()]))
    return findings


def _compose_warnings(ws: Workspace, folder: IssueFolder, issue: Issue) -> list[Finding]:
    """Warnings of the last compose for items still in the draft; the faithfulness check is
    run again on the draft's current bullets, so an edited-away figure is no longer flagged."""

    items = {item.url: item for item in issue.items()}
    composed = read_state(folder)
    articles = article_cache(ws.cache_dir)
    rechecked: dict[str, list[Notice]] = {}
    for link in read_links(folder.links):
        key = link_key(link)
        item = items.get(composed.get(key, ""))
        cached = (
            articles.get_model(article_key(link, folder.path), Article)
            if item is not None
            else None
        )
        if item is not None and cached is not None:
            rechecked[link.url] = unsupported_claims(item.bullets, cached.text)
    report = read_report(folder)
    if report is None:
        findings: list[Finding] = []
    else:
        findings = [
            Finding("warning", str(folder.report), w.message, w.code) for w in report.warnings
        ]
    for entry in report.links if report is not None else []:
        url = entry.url
        if (composed.get(entry_key(url, folder.path)) or entry.final_url) not in items:
            continue  # failed, or the editor deleted the item
        for warning in entry.warnings:
            if url in rechecked and warning.code in FAITHFULNESS_CODES:
                continue
            if warning.code == Code.LLM_FALLBACK:
                continue  # from state.json below, while the item is as the fallback wrote it
            findings.append(Finding("warning", url, warning.message, warning.code))
    urls = {link_key(link): link.url for link in read_links(folder.links)}
    for key, (record, _) in unedited_fallbacks(folder, issue).items():
        findings.append(
            Finding(
                "warning",
                urls.get(key, record.url),
                f"summarized by the offline fallback, not the LLM ({record.reason}); run "
                "`digest compose --refresh-fallbacks` once the endpoint works, or edit the item",
                Code.LLM_FALLBACK,
            )
        )
    for url, warnings in rechecked.items():
        findings += [Finding("warning", url, w.message, w.code) for w in warnings]
    return findings


async def _check_links(ws: Workspace, folder: IssueFolder, urls: list[str]) -> list[Finding]:

    fetcher = Fetcher(ws.settings.fetch)

    async def one(url: str) -> Finding | None:
        if not url.startswith(("http://", "https://")):
            return None
        try:
            await fetcher.fetch(url, folder.path)
        except FetchError as exc:
            return Finding("error", url, f"broken link: {exc}", "broken-link")
        return None

    try:
        results = await asyncio.gather(*(one(url) for url in urls))
    finally:
        await fetcher.aclose()
    return [r for r in results if r is not None]
