"""The compose pipeline: links -> fetch -> extract -> summarize -> merge into the draft.

Each link runs as its own task, so an article is summarized as soon as it is extracted;
the fetcher and the summarizer bound their own concurrency. A failed link never stops
the others. Items already in the draft are never touched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from digest.cache import article_cache, stable_hash
from digest.draft import (
    Placement,
    clean_bullets,
    clean_inline,
    default_closing_title,
    escape_title,
    parse_draft,
    read_draft,
    render_draft,
    splice_items,
)
from digest.errors import DigestError, ExtractError, LinksError
from digest.extract import extract
from digest.faithful import unsupported_claims
from digest.fetch import Fetcher
from digest.links import read_links
from digest.models import (
    Article,
    Closing,
    Code,
    Issue,
    Item,
    Link,
    LinkReport,
    Notice,
    Report,
    Section,
    Summary,
)
from digest.render import Renderer, write_outputs
from digest.summarize import Summarizer, SummaryContext, make_summarizer
from digest.triage import Judge, Outcome, plan
from digest.urls import (
    article_key,
    entry_key,
    is_web_url,
    link_key,
    local_key,
    normalize_url,
    workspace_file,
)
from digest.workspace import (
    ComposeState,
    Fallback,
    IssueFolder,
    Workspace,
    atomic_write,
    clean_stale_temps,
    load_state,
    lock_issue,
    stage_write,
    state_dict,
)

log = logging.getLogger(__name__)


class ProgressSink(Protocol):
    """Where compose reports progress (a rich display, plain lines, or nothing)."""

    def start(self, total: int, summarizer: str = "") -> None: ...

    def stage(self, url: str, stage: str) -> None: ...

    def done(self, report: LinkReport) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """A progress sink that shows nothing."""

    def start(self, total: int, summarizer: str = "") -> None:
        """Ignore."""

    def stage(self, url: str, stage: str) -> None:
        """Ignore."""

    def done(self, report: LinkReport) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


@dataclass
class ComposeOptions:
    """How to run one compose."""

    refresh: list[str] = field(default_factory=list)
    refresh_fallbacks: bool = False
    offline: bool = False
    strict: bool = False


@dataclass
class ComposeResult:
    """What a compose did: its report, and whether a draft exists afterwards."""

    report: Report
    draft_exists: bool
    draft_changed: bool
    render_error: str | None = None
    new_items: int = 0

    @property
    def failed(self) -> list[LinkReport]:
        return [link for link in self.report.links if link.status == "failed"]

    @property
    def fallback(self) -> list[LinkReport]:
        """Links whose new item the offline summarizer wrote because the LLM failed."""
        return [link for link in self.report.links if is_fallback(link)]

    @property
    def ok(self) -> list[LinkReport]:
        """Links summarized as asked (not by the fallback)."""
        return [link for link in self.report.links if link.status == "ok" and not is_fallback(link)]

    @property
    def candidates(self) -> list[LinkReport]:
        """Imported links triage did not select (listed in candidates.md)."""
        return [link for link in self.report.links if link.status == "candidate"]

    @property
    def merged(self) -> list[LinkReport]:
        """Links that report the same story as an item (shown under it)."""
        return [link for link in self.report.links if link.status == "merged"]

    @property
    def warnings(self) -> list[tuple[str, Notice]]:
        return [(link.url, w) for link in self.report.links for w in link.warnings]


def is_fallback(link: LinkReport) -> bool:
    """A new item from the offline fallback (the LLM was asked and failed)."""
    return link.status == "ok" and any(w.code == Code.LLM_FALLBACK for w in link.warnings)


def item_hash(item: Item) -> str:
    """A hash of an item as the draft holds it (title, URL, bullets, note): edited or not."""
    return stable_hash(json.dumps(item.model_dump(mode="json"), sort_keys=True, ensure_ascii=False))


def unedited_fallbacks(folder: IssueFolder, issue: Issue) -> dict[str, tuple[Fallback, Item]]:
    """Fallback items still in the draft exactly as compose wrote them, by link key."""
    items = {item.url: item for item in issue.items()}
    found = {}
    for key, record in load_state(folder).fallbacks.items():
        item = items.get(record.url)
        if item is not None and item_hash(item) == record.hash:
            found[key] = (record, item)
    return found


def _state_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def write_state(folder: IssueFolder, state: ComposeState) -> None:
    """Remember what compose put into the draft, so deleted items stay deleted, and which
    items the offline fallback wrote (for `--refresh-fallbacks`)."""
    atomic_write(folder.state_path, _state_json(state_dict(state)))


def write_draft(folder: IssueFolder, text: str, before: ComposeState, after: ComposeState) -> bool:
    """Replace draft.md and state.json so that a kill at any moment leaves them agreeing.

    Returns whether draft.md changed."""
    staged = stage_write(folder.draft, text, backup=True)
    if staged is None:
        write_state(folder, after)
        return False
    try:
        pending = {**state_dict(before), "next": state_dict(after), "draft_tmp": staged.tmp.name}
        atomic_write(folder.state_path, _state_json(pending))
        staged.commit()
    except BaseException:
        staged.discard()
        write_state(folder, before)
        raise
    write_state(folder, after)
    return True


def item_url(article: Article, issue_dir: Path, strip: list[str] | None = None) -> str:
    """The source URL an item shows: the page's web address; for a local file without one,
    its `file:` form relative to the issue folder (never published: readers get no link)."""
    if is_web_url(article.final_url):
        return normalize_url(article.final_url, strip=strip)
    if article.canonical_url and is_web_url(article.canonical_url):
        return article.canonical_url
    return local_key(article.final_url, issue_dir)


def _matches(ref: str, link: Link, item: str | None, issue_dir: Path) -> bool:
    ref_key = entry_key(ref, issue_dir)
    return ref in (link.url, item) or ref_key in (link_key(link), item and link_key(item))


Job = tuple[int, Link, bool, str | None]  # links.yaml index, link, refresh, item URL to replace


@dataclass
class _Plan:
    """What a run does, decided from links.yaml, draft.md and state.json before any fetch."""

    links: list[Link]
    sections: list[str] | None
    draft: Issue | None
    state: ComposeState
    before: ComposeState  # state.json as it was, until draft.md is replaced
    reports: list[LinkReport | None]
    jobs: list[Job] = field(default_factory=list)
    redoing: set[str] = field(default_factory=set)  # link keys of fallback items redone
    titles: dict[str, str] = field(default_factory=dict)  # draft item URL -> title
    draft_keys: dict[str, str] = field(default_factory=dict)  # entry key -> draft item URL


@dataclass
class _Merged:
    """The issue after the new items were placed, and what the run has to say."""

    issue: Issue
    placed: list[Placement] = field(default_factory=list)
    new_items: int = 0
    warnings: list[Notice] = field(default_factory=list)
    new_closing: Closing | None = None


class Composer:
    """One compose of one issue; the pieces are injected so tests hand in real local servers."""

    def __init__(
        self,
        workspace: Workspace,
        folder: IssueFolder,
        options: ComposeOptions,
        *,
        fetcher: Fetcher | None = None,
        summarizer: Summarizer | None = None,
        progress: ProgressSink | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.ws = workspace
        self.folder = folder
        self.options = options
        self.settings = workspace.settings
        self.fetcher = fetcher
        self.summarizer = summarizer
        self.progress = progress or NoProgress()
        self.clock = clock or workspace.now
        self.articles = article_cache(workspace.cache_dir)
        self._extracting = asyncio.Semaphore(2)  # few extractions at once: first articles sooner
        self.ctx = SummaryContext(
            language=self.settings.newsletter.language,
            sections=self.settings.sections,
            newsletter=self.settings.newsletter.name,
        )

    # ------------------------------------------------------------ per link

    async def _article(self, link: Link, refresh: bool, report: LinkReport) -> Article:
        if link.local is not None:  # refused before any cache: the file may have moved
            workspace_file(link.url, self.folder.path, self.ws.root)
        key = article_key(link, self.folder.path)
        cached = None if refresh else self.articles.get_model(key, Article)
        if cached is not None:  # an unreadable or outdated entry is a miss, rewritten below
            report.fetch_cached = True
            return cached
        assert self.fetcher is not None
        self.progress.stage(link.url, "fetching")
        started = time.monotonic()
        fetched = await self.fetcher.fetch(link.url, self.folder.path)
        report.fetch_seconds = round(time.monotonic() - started, 3)
        report.bytes = len(fetched.body)
        web = is_web_url(fetched.final_url)
        report.final_url = normalize_url(fetched.final_url) if web else fetched.final_url
        async with self._extracting:
            article = await asyncio.to_thread(extract, fetched, link)
        if fetched.truncated:
            article.truncated = True
        await asyncio.to_thread(self.articles.set, key, article.model_dump(mode="json"))  # fsync
        return article

    async def _process(
        self, link: Link, refresh: bool
    ) -> tuple[LinkReport, Item | None, str | None]:
        """One link from fetch to item; any failure, even a bug, is that link's alone."""
        report = LinkReport(url=link.url, status="failed")
        try:
            return await self._process_link(link, refresh, report)
        except Exception as exc:  # noqa: BLE001 - one link's bug must not end the run
            log.debug("unexpected error on %s", link.url, exc_info=True)
            report = LinkReport(
                url=link.url,
                final_url=report.final_url,
                status="failed",
                error=f"unexpected error ({type(exc).__name__}: {exc}); a bug in digest, "
                "please report it with this link",
            )
            self.progress.done(report)
            return report, None, None

    async def _process_link(
        self, link: Link, refresh: bool, report: LinkReport
    ) -> tuple[LinkReport, Item | None, str | None]:
        try:
            article = await self._article(link, refresh, report)
            report.warnings += self._too_little_text(link, article)
            report.final_url = (
                normalize_url(article.final_url)
                if is_web_url(article.final_url)
                else article.final_url
            )
            if article.truncated:
                report.warnings.append(
                    Notice(
                        code=Code.BODY_CUT,
                        message=f"body cut at the size limit ({self.settings.fetch.max_bytes} "
                        "bytes, fetch.max_bytes)",
                    )
                )
            assert self.summarizer is not None
            self.progress.stage(link.url, "summarizing")
            started = time.monotonic()
            summary = await self.summarizer.summarize(article, link, self.ctx, fresh=refresh)
            report.summarize_seconds = round(time.monotonic() - started, 3)
        except DigestError as exc:
            report.error = str(exc)
            self.progress.done(report)
            return report, None, None
        item = self._item(link, article, summary)
        report.status = "ok"
        report.title = summary.title
        report.section = summary.section
        report.summary_source = summary.source
        report.warnings += summary.warnings
        report.warnings += await asyncio.to_thread(
            unsupported_claims, summary.bullets, article.text
        )
        self.progress.done(report)
        return report, item, summary.section

    def _too_little_text(self, link: Link, article: Article) -> list[Notice]:
        """Fail a near-empty page (login wall, paywall, JavaScript); keep it, flagged, when
        the editor gave it a note or title in links.yaml."""
        chars = len(article.text.strip())
        if chars >= self.settings.extract.min_chars:
            return []
        why = (
            f"too little text extracted ({chars} characters): login wall, paywall or a page "
            "that needs JavaScript?"
        )
        if not (link.note or link.title):
            raise ExtractError(
                f"{why} (extract.min_chars = {self.settings.extract.min_chars}; give the link a "
                "note or title in links.yaml to keep it anyway)"
            )
        given = "note" if link.note else "title"
        return [
            Notice(
                code=Code.TOO_LITTLE_TEXT,
                message=f"{why} Kept because links.yaml gives it a {given}; its bullets come "
                "from that little text: check them",
            )
        ]

    def _item(self, link: Link, article: Article, summary: Summary) -> Item:
        site = clean_inline(article.site_name or "") or None
        note = "\n".join(clean_inline(line) for line in (link.note or "").splitlines()).strip()
        return Item(
            title=escape_title(summary.title) or escape_title(article.final_url),
            url=item_url(article, self.folder.path, self.settings.intake.strip_params),
            translated_title=escape_title(summary.translated_title)
            if summary.translated_title
            else None,
            site_name=site,
            bullets=clean_bullets(summary.bullets),
            note=note or None,
        )

    async def _triage(
        self,
        jobs: list[Job],
        draft: Issue | None,
        composed: dict[str, str],
    ) -> Outcome | None:
        """Let triage (digest.triage) decide which new imported links get summarized."""

        async def fetch(link: Link) -> tuple[Article | None, LinkReport]:
            report = LinkReport(url=link.url, status="failed")
            try:
                return await self._article(link, False, report), report
            except DigestError as exc:
                report.error = str(exc)
                return None, report

        new = [(index, link) for index, link, refresh, _ in jobs if not refresh]
        judge = self.summarizer if isinstance(self.summarizer, Judge) else None
        return await plan(
            self.ws, self.folder, new, draft=draft, composed=composed, fetch=fetch, judge=judge
        )

    # ------------------------------------------------------------ the whole issue

    def _new_issue(self) -> Issue:
        meta = self.ws.ensure_meta(self.folder)
        news = self.settings.newsletter
        return Issue(
            title=f"{news.name}, Issue {meta.number}",
            number=meta.number,
            date=meta.date,
            period_start=meta.period_start,
            period_end=meta.period_end,
            authors=list(news.authors),
            tags=list(news.tags),
            sections=[] if self.settings.sections else [Section(name=None)],
        )

    def _place(
        self, issue: Issue, item: Item, section: str | None, replace_url: str | None
    ) -> None:
        """Put an item in the draft: in place of replace_url, else at the end of its section."""
        if replace_url is not None:
            for sec in issue.sections:
                for index, existing in enumerate(sec.items):
                    if existing.url == replace_url:
                        sec.items[index] = item
                        return
        names = self.settings.section_names()
        if not names:
            if not issue.sections:
                issue.sections.append(Section(name=None))
            issue.sections[0].items.append(item)
            return
        target = section if section in names else names[0]
        for sec in issue.sections:
            if sec.name == target:
                sec.items.append(item)
                return
        order = {name: i for i, name in enumerate(names)}
        new = Section(name=target, items=[item])
        position = next(
            (
                i
                for i, sec in enumerate(issue.sections)
                if order.get(sec.name or "", 0) > order[target]
            ),
            len(issue.sections),
        )
        issue.sections.insert(position, new)

    async def run(self) -> ComposeResult:
        """Compose the issue; write draft.md, state.json, outputs and report.json.

        Holds the issue's lock for the whole run: one compose or render at a time."""
        lock = lock_issue(self.folder, "compose")
        try:
            return await self._run(lock.note)
        finally:
            lock.release()

    async def _run(self, lock_note: str | None) -> ComposeResult:
        started_at = self.clock()
        plan = self._plan()
        own_fetcher = self._open(plan.jobs)
        assert self.summarizer is not None and self.fetcher is not None
        triaged = await self._triage(plan.jobs, plan.draft, plan.state.composed)
        if triaged is not None:
            for index, decided in triaged.reports.items():
                plan.reports[index] = decided
            plan.jobs = triaged.remaining(plan.jobs)
        self.progress.start(len(plan.jobs), self.summarizer.describe())
        try:
            results = await asyncio.gather(
                *(self._process(link, refresh) for _, link, refresh, _ in plan.jobs)
            )
            merged = self._merge(plan, results, triaged, lock_note)
            await self._conclude(merged, plan.state)
        finally:
            self.progress.finish()
            if own_fetcher:
                await self.fetcher.aclose()
            await self.summarizer.aclose()  # per-run clients; a reused summarizer reopens them
        run = Report(
            issue=self.folder.id,
            started_at=started_at,
            links=[r for r in plan.reports if r is not None],
            llm=self.summarizer.stats,
            warnings=merged.warnings,
        )
        run.fetch.requests = self.fetcher.requests
        run.fetch.cached = sum(1 for r in run.links if r.fetch_cached)
        run.fetch.bytes = sum(r.bytes for r in run.links)
        return self._write(plan, merged, run)

    def _plan(self) -> _Plan:
        """Read links.yaml, draft.md and state.json; decide what each link needs."""
        state = load_state(self.folder)
        if state.recovered:  # settle it before the interrupted write's temporary file goes
            write_state(self.folder, state)
        clean_stale_temps(self.folder.path)
        clean_stale_temps(self.ws.cache_dir, recursive=True)
        links = read_links(self.folder.links)
        if not links:
            raise LinksError(
                f"{self.folder.links}: no links; add some with `digest add URL` or edit the file"
            )
        sections = self.settings.section_names() or None
        draft: Issue | None = None
        if self.folder.draft.is_file():
            draft = read_draft(self.folder.draft, sections=sections)
        if draft is None:
            state = ComposeState()
        plan = _Plan(links, sections, draft, state, state.copy(), [None] * len(links))
        for item in draft.items() if draft else []:
            plan.titles.setdefault(item.url, item.title)
            plan.draft_keys[entry_key(item.url, self.folder.path)] = item.url
        redo = unedited_fallbacks(self.folder, draft) if draft is not None else {}
        seen: dict[str, int] = {}
        for index, link in enumerate(links):
            key = link_key(link)
            if key in seen:
                plan.reports[index] = LinkReport(
                    url=link.url,
                    status="skipped",
                    error=f"duplicate of entry {seen[key] + 1} in links.yaml",
                )
                continue
            seen[key] = index
            plan.reports[index] = self._decide(plan, index, link, key, redo)
        unknown = [
            r
            for r in self.options.refresh
            if not any(
                _matches(r, ln, state.composed.get(link_key(ln)), self.folder.path) for ln in links
            )
        ]
        if unknown:
            raise LinksError(f"--refresh {unknown[0]}: not a link of this issue; check links.yaml")
        return plan

    def _decide(
        self, plan: _Plan, index: int, link: Link, key: str, redo: dict[str, Any]
    ) -> LinkReport | None:
        """One link: a job (None returned), or why it needs none (its report)."""
        composed, fallbacks = plan.state.composed, plan.state.fallbacks
        draft_urls, draft_keys = plan.titles, plan.draft_keys
        made = composed.get(key)
        refresh = any(_matches(ref, link, made, self.folder.path) for ref in self.options.refresh)
        in_draft = (made in draft_urls) if made else key in draft_keys
        if refresh:
            plan.jobs.append((index, link, True, made if made in draft_urls else None))
        elif in_draft and self.options.refresh_fallbacks and key in redo:
            plan.redoing.add(key)
            plan.jobs.append((index, link, False, made))
        elif in_draft:
            if made is None:  # in the draft but not in state.json (an older version's kill)
                made = composed[key] = draft_keys[key]
            edited = (
                self.options.refresh_fallbacks and key in fallbacks and fallbacks[key].url == made
            )
            edited_note = Notice(
                code=Code.FALLBACK_EDITED,
                message="written by the offline fallback and edited since; left "
                f"alone (`digest compose --refresh {link.url}` replaces it)",
            )
            return LinkReport(
                url=link.url,
                final_url=made,
                status="cached",
                summary_source="editor",
                title=plan.titles.get(made) if plan.draft else None,
                warnings=[edited_note] if edited else [],
            )
        elif made is not None:
            deleted = Notice(
                code=Code.DELETED_BY_EDITOR,
                message="deleted from the draft by the editor; not brought back "
                f"(`digest compose --refresh {link.url}` brings it back)",
            )
            return LinkReport(url=link.url, final_url=made, status="skipped", warnings=[deleted])
        else:
            plan.jobs.append((index, link, False, None))
        return None

    def _open(self, jobs: list[Job]) -> bool:
        """Make the fetcher and the summarizer this run needs; True when the fetcher is ours."""
        own_fetcher = self.fetcher is None
        if own_fetcher:
            self.fetcher = Fetcher(self.settings.fetch)  # first: fetching starts soonest
        if self.summarizer is None:
            self.summarizer = make_summarizer(
                self.settings,
                self.ws.secrets,
                offline=self.options.offline,
                cache_dir=self.ws.cache_dir / "llm",
                templates_dir=self.ws.templates_dir,
            )
        if any(
            refresh or self.articles.get(article_key(link, self.folder.path)) is None
            for _, link, refresh, _ in jobs
        ):
            # Pages must be fetched: load the LLM client meanwhile. (Warming trafilatura up in
            # another thread too was measured slower: the two imports fight for the GIL.)
            prepare = getattr(self.summarizer, "prepare", None)
            if prepare is not None:
                prepare()
        return own_fetcher

    def _merge(
        self,
        plan: _Plan,
        results: list[tuple[LinkReport, Item | None, str | None]],
        triaged: Outcome | None,
        lock_note: str | None,
    ) -> _Merged:
        """Place the new items into the issue; remember them in the state."""
        state = plan.state
        merged = _Merged(issue=plan.draft or self._new_issue())
        merged.warnings = list(triaged.warnings) if triaged else []
        if lock_note:
            merged.warnings.append(Notice(code=Code.STALE_LOCK, message=lock_note))
        if merged.issue.closing is not None:
            state.closing = True
        for (index, link, _, replace_url), (report, item, section) in zip(
            plan.jobs, results, strict=True
        ):
            plan.reports[index] = report
            if triaged is not None:
                triaged.annotate(index, report, item)
            key = link_key(link)
            fell_back = is_fallback(report)
            if item is None or (fell_back and key in plan.redoing):
                continue  # a fallback item whose LLM summary failed again stays as it is
            self._place(merged.issue, item, section, replace_url)
            merged.placed.append(Placement(item, section, replace_url))
            state.composed[key] = item.url
            state.fallbacks.pop(key, None)
            if fell_back:
                reason = next(w.message for w in report.warnings if w.code == Code.LLM_FALLBACK)
                state.fallbacks[key] = Fallback(item.url, "", reason)
            merged.new_items += 1
        unavailable = getattr(self.summarizer, "unavailable", None)
        if unavailable:
            fell = sum(1 for r in results if is_fallback(r[0]))
            merged.warnings.append(
                Notice(
                    code=Code.LLM_UNAVAILABLE,
                    message=f"{unavailable}. {fell} item(s) were summarized offline instead; "
                    "once the endpoint works, `digest compose --refresh-fallbacks` "
                    "summarizes them again",
                )
            )
        return merged

    async def _conclude(self, merged: _Merged, state: ComposeState) -> None:
        """The closing section, once, when the newsletter asks for one and items were added."""
        assert self.summarizer is not None
        issue = merged.issue
        wants_closing = self.settings.newsletter.conclusion and issue.closing is None
        if not (merged.new_items and wants_closing and not state.closing):
            return  # a deleted one stays deleted
        self.progress.stage("conclusion", "summarizing")
        closing = await self.summarizer.conclude(issue.items(), self.ctx)
        if closing is not None:
            closing.title = closing.title or default_closing_title(self.ctx.language)
            issue.closing = merged.new_closing = closing
            state.closing = True
            return
        why = "it writes none)" if self.summarizer.name == "offline" else "the request failed)"
        merged.warnings.append(
            Notice(
                code=Code.NO_CLOSING,
                message="newsletter.conclusion is on but no closing section was "
                f"written ({self.summarizer.name} summarizer: " + why,
            )
        )

    def _write(self, plan: _Plan, merged: _Merged, run: Report) -> ComposeResult:
        """Write draft.md (with state.json), the rendered outputs and report.json."""
        draft_changed = False
        render_error = None
        issue = merged.issue
        if bool(issue.items()) or plan.draft is not None:
            text = self._draft_text(plan, merged)
            if plan.draft is not None:
                issue = parse_draft(text, self.folder.draft, sections=plan.sections)
            self._hash_fallbacks(plan.state, text, plan.sections)
            draft_changed = write_draft(self.folder, text, plan.before, plan.state)
            try:
                renderer = Renderer(self.settings, self.ws.templates_dir)
                write_outputs(self.folder, renderer.render(issue))
            except DigestError as exc:
                render_error = str(exc)
        run.finished_at = self.clock()
        atomic_write(
            self.folder.report,
            json.dumps(run.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n",
        )
        return ComposeResult(
            report=run,
            draft_exists=self.folder.draft.is_file(),
            draft_changed=draft_changed,
            render_error=render_error,
            new_items=merged.new_items,
        )

    def _draft_text(self, plan: _Plan, merged: _Merged) -> str:
        """The new draft.md: the editor's text with the new items spliced in, or a new one."""
        if plan.draft is not None:
            # Edit the editor's text in place: only the new or refreshed items (and a
            # first closing section) are added; every other line stays as it was.
            old = self.folder.draft.read_text(encoding="utf-8")
            return splice_items(
                old, merged.placed, sections=plan.sections, closing=merged.new_closing
            )
        issue = merged.issue
        closing_title = default_closing_title(self.ctx.language)
        if issue.closing:
            closing_title = issue.closing.title
        return render_draft(issue, sectioned=bool(plan.sections), closing_title=closing_title)

    def _hash_fallbacks(self, state: ComposeState, text: str, sections: list[str] | None) -> None:
        """Record the text of each new fallback item as written (to tell an edit later)."""
        if all(f.hash for f in state.fallbacks.values()):
            return
        final = {i.url: i for i in parse_draft(text, self.folder.draft, sections=sections).items()}
        for key, record in list(state.fallbacks.items()):
            if record.hash:
                continue
            if record.url in final:
                record.hash = item_hash(final[record.url])
            else:
                del state.fallbacks[key]


def compose(
    workspace: Workspace,
    folder: IssueFolder,
    options: ComposeOptions | None = None,
    **pieces: Any,
) -> ComposeResult:
    """Run a compose to the end (synchronous entry point for the CLI)."""
    return asyncio.run(Composer(workspace, folder, options or ComposeOptions(), **pieces).run())
