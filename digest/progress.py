"""Compose progress: a live rich display on a terminal, plain lines otherwise; the summary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console

from digest.compose import ComposeResult, NoProgress, ProgressSink, is_fallback
from digest.models import Code, LinkReport
from digest.status import STATE_STYLES, IssueStatus
from digest.workspace import IssueFolder


class PlainProgress(NoProgress):
    """One line per finished link, for logs and pipes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0
        self.count = 0

    def start(self, total: int, summarizer: str = "") -> None:
        self.total = total
        if total:
            using = f"; summarizer: {summarizer}" if summarizer else ""
            self.console.print(f"composing {total} new link(s){using}", markup=False)

    def done(self, report: LinkReport) -> None:
        self.count += 1
        self.console.print(
            f"[{self.count}/{self.total}] {report.url} — {_outcome(report)}", markup=False
        )


def _outcome(report: LinkReport) -> str:
    if report.status != "ok":
        return f"failed: {report.error}"
    return "offline fallback" if is_fallback(report) else "ok"


MAX_SHOWN = 6  # in-flight links listed under the bar


class RichProgress(NoProgress):
    """A live bar (done of total, what is fetching and summarizing) with the links in flight."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        board = self

        class Board(Progress):
            def get_renderables(self) -> Any:
                yield self.make_tasks_table(self.tasks)
                for line in board.lines():
                    yield Text(line, overflow="ellipsis", no_wrap=True)

        self.console = console
        self.clock = clock
        self.task: Any = None
        self.working: dict[str, tuple[str, float]] = {}  # link -> (stage, since), in flight
        self.fallbacks = 0
        self.failures = 0
        self.bar = Board(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    def start(self, total: int, summarizer: str = "") -> None:
        if summarizer and total:
            self.console.print(
                f"composing {total} new link(s); summarizer: {summarizer}", markup=False
            )
        if total:
            self.bar.start()
            self.task = self.bar.add_task(self._description(), total=total)

    def _description(self) -> str:
        stages = Counter(stage for stage, _ in self.working.values())
        parts = [f"{n} {stage}" for stage, n in sorted(stages.items())]
        if self.fallbacks:
            parts.append(f"{self.fallbacks} offline fallback")
        if self.failures:
            parts.append(f"{self.failures} failed")
        return "composing" + (": " + ", ".join(parts) if parts else "")

    def lines(self) -> list[str]:
        """The links in flight, oldest first, with their stage and time so far."""
        now = self.clock()
        shown = sorted(self.working.items(), key=lambda entry: entry[1][1])
        lines = [
            f"  {stage:<11} {url}  {now - since:.1f} s" for url, (stage, since) in shown[:MAX_SHOWN]
        ]
        if len(shown) > MAX_SHOWN:
            lines.append(f"  … and {len(shown) - MAX_SHOWN} more")
        return lines

    def stage(self, url: str, stage: str) -> None:
        if self.task is not None:
            self.working[url] = (stage, self.clock())
            self.bar.update(self.task, description=self._description())

    def done(self, report: LinkReport) -> None:
        if self.task is not None:
            self.working.pop(report.url, None)
            self.failures += report.status == "failed"
            self.fallbacks += is_fallback(report)
            self.bar.update(self.task, advance=1, description=self._description())
            if report.status == "failed":
                self.bar.console.print(f"failed {report.url}: {report.error}", markup=False)

    def finish(self) -> None:
        if self.task is not None:
            self.bar.stop()


def _duration(seconds: float) -> str:
    """A rough duration for people: 45 s, 7 min, 1 h 20 min."""
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def send_pace(done: int, total: int, elapsed: float) -> str:
    """Rate and time left of a send, e.g. "4.9/s, about 6 min left"."""
    if done <= 0 or elapsed <= 0:
        return "starting"
    rate = done / elapsed
    return f"{rate:.1f}/s, about {_duration((total - done) / rate)} left"


class PlainSendProgress:
    """A line every `every` readers (and at the end), for logs and pipes."""

    def __init__(
        self, console: Console, every: int = 100, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.console = console
        self.every = every
        self.clock = clock
        self.total = 0
        self.started = 0.0
        self.shown = 0

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.clock()
        self.shown = 0

    def advance(self, sent: int, failed: int) -> None:
        done = sent + failed
        if done // self.every > self.shown // self.every and done < self.total:
            self.shown = done
            pace = send_pace(done, self.total, self.clock() - self.started)
            failures = f", {failed} refused" if failed else ""
            self.console.print(f"sent {sent} of {self.total}{failures} ({pace})", markup=False)

    def finish(self) -> None:
        """The final line is the send's own summary."""


class RichSendProgress:
    """A live bar: count, rate and time left."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.clock = clock
        self.bar = Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[pace]}"),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.total = 0
        self.started = 0.0

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.clock()
        self.bar.start()
        self.task = self.bar.add_task("sending", total=total, pace="starting")

    def advance(self, sent: int, failed: int) -> None:
        done = sent + failed
        pace = send_pace(done, self.total, self.clock() - self.started)
        self.bar.update(self.task, completed=done, pace=pace)

    def finish(self) -> None:
        if self.task is not None:
            self.bar.stop()


def make_send_progress(console: Console) -> RichSendProgress | PlainSendProgress:
    """A live bar on a terminal, a line every 100 readers otherwise."""
    return RichSendProgress(console) if console.is_terminal else PlainSendProgress(console)


def make_progress(console: Console, *, quiet: bool = False) -> ProgressSink:
    """Rich on a terminal, plain lines otherwise, nothing when quiet."""
    if quiet:
        return NoProgress()
    return RichProgress(console) if console.is_terminal else PlainProgress(console)


def compose_summary(folder: IssueFolder, result: ComposeResult) -> dict[str, Any]:
    """The end of a compose as `compose --json` prints it (shape in the README)."""
    counts: Counter[str] = Counter(str(link.status) for link in result.report.links)
    return {
        "issue": folder.id,
        "ok": len(result.ok),
        "fallback": len(result.fallback),
        "failed": counts["failed"],
        "cached": counts["cached"],
        "skipped": counts["skipped"],
        "candidates": counts["candidate"],
        "merged": counts["merged"],
        "draft": str(folder.draft) if result.draft_exists else None,
        "report": str(folder.report),
    }


def print_summary(console: Console, folder: IssueFolder, result: ComposeResult) -> None:
    """The end of a compose: counts, failures with reasons, warnings, where the outputs are."""
    report = result.report
    counts = Counter(link.status for link in report.links)
    console.print(
        f"{len(result.ok)} ok, {len(result.fallback)} offline fallback, {counts['failed']} failed, "
        f"{counts['cached']} already in the draft, {counts['skipped']} skipped"
        + (
            f", {counts['candidate']} candidate(s) in candidates.md, {counts['merged']} merged"
            if counts["candidate"] or counts["merged"]
            else ""
        ),
        markup=False,
    )
    for link in result.failed:
        console.print(f"  failed: {link.url} — {link.error}", markup=False)
    for link in report.links:
        if link.status == "skipped" and link.error:
            console.print(f"  skipped: {link.url} — {link.error}", markup=False)
    unavailable = any(w.code == Code.LLM_UNAVAILABLE for w in report.warnings)
    for link in result.fallback:
        why = next(w.message for w in link.warnings if w.code == Code.LLM_FALLBACK)
        console.print(
            f"  offline fallback: {link.url}" + ("" if unavailable else f" — {why}"), markup=False
        )
    for url, warning in result.warnings:
        if warning.code != Code.LLM_FALLBACK:
            console.print(f"  warning: {url} — {warning}", markup=False)
    for warning in report.warnings:
        console.print(f"  warning: {warning}", markup=False)
    llm = report.llm
    if llm.provider != "offline":
        cost = f", ~${llm.estimated_cost_usd:.4f}" if llm.estimated_cost_usd is not None else ""
        console.print(
            f"llm {llm.provider}/{llm.model}: {llm.requests} request(s), {llm.cached} cached, "
            f"{llm.retries} retried, {llm.input_tokens} in / {llm.output_tokens} out tokens{cost}",
            markup=False,
        )
    if result.draft_exists:
        state = "updated" if result.draft_changed else "unchanged"
        console.print(f"draft {state}: {folder.draft}", markup=False)
        if not result.render_error:
            console.print(
                f"rendered: {folder.issue_md}, {folder.email_html}, {folder.email_txt}",
                markup=False,
            )
    console.print(f"report: {folder.report}", markup=False)


def print_status(console: Console, status: IssueStatus) -> None:
    """`digest status`: a table of the issue's links on a terminal, plain lines otherwise."""
    console.print(status.heading, markup=False, highlight=False)
    for line in status.notes:
        console.print(line, markup=False, highlight=False)
    if status.empty:
        console.print(status.empty, markup=False, highlight=False)
        return
    if console.is_terminal:
        from rich.markup import escape
        from rich.table import Table

        table = Table(show_edge=False, header_style="bold", pad_edge=False)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("link", overflow="fold")
        table.add_column("title / why", overflow="fold")
        for row in status.rows:
            style = STATE_STYLES.get(row.state, "")
            state = f"[{style}]{row.state}[/]"
            table.add_row(str(row.index), state, escape(row.url), escape(row.detail))
        console.print(table)
    else:
        width = max(len(state) for state in STATE_STYLES)
        for row in status.rows:
            line = f"{row.index:>3}  {row.state:<{width}}  {row.url}"
            if row.detail:
                line += f"  — {row.detail}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(status.counts(), markup=False, highlight=False)
