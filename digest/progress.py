"""Compose progress: a live rich display on a terminal, plain lines otherwise; the summary."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console

from digest.compose import ComposeResult, NoProgress, ProgressSink
from digest.models import LinkReport
from digest.workspace import IssueFolder


class PlainProgress(NoProgress):
    """One line per finished link, for logs and pipes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0
        self.count = 0

    def start(self, total: int) -> None:
        self.total = total
        if total:
            self.console.print(f"composing {total} new link(s)", markup=False)

    def done(self, report: LinkReport) -> None:
        self.count += 1
        what = "ok" if report.status == "ok" else f"failed: {report.error}"
        self.console.print(f"[{self.count}/{self.total}] {report.url} — {what}", markup=False)


class RichProgress(NoProgress):
    """A live progress bar with the link being worked on."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.working: dict[str, str] = {}  # link -> stage, for links still in flight

    def start(self, total: int) -> None:
        if total:
            self.bar.start()
            self.task = self.bar.add_task("composing", total=total)

    def _describe(self) -> None:
        if not self.working:
            return
        url, stage = next(reversed(self.working.items()))
        more = f" (+{len(self.working) - 1})" if len(self.working) > 1 else ""
        self.bar.update(self.task, description=f"{stage} {url[:60]}{more}")

    def stage(self, url: str, stage: str) -> None:
        if self.task is not None:
            self.working.pop(url, None)
            self.working[url] = stage
            self._describe()

    def done(self, report: LinkReport) -> None:
        if self.task is not None:
            self.working.pop(report.url, None)
            self._describe()
            self.bar.advance(self.task)
            if report.status == "failed":
                self.bar.console.print(f"failed {report.url}: {report.error}", markup=False)

    def finish(self) -> None:
        if self.task is not None:
            self.bar.stop()


def make_progress(console: Console) -> ProgressSink:
    """Rich on a terminal, plain lines otherwise."""
    return RichProgress(console) if console.is_terminal else PlainProgress(console)


def print_summary(console: Console, folder: IssueFolder, result: ComposeResult) -> None:
    """The end of a compose: counts, failures with reasons, warnings, where the outputs are."""
    report = result.report
    counts = Counter(link.status for link in report.links)
    console.print(
        f"{counts['ok']} ok, {counts['failed']} failed, {counts['cached']} already in the draft, "
        f"{counts['skipped']} skipped",
        markup=False,
    )
    for link in result.failed:
        console.print(f"  failed: {link.url} — {link.error}", markup=False)
    for link in report.links:
        if link.status == "skipped" and link.error:
            console.print(f"  skipped: {link.url} — {link.error}", markup=False)
    for url, warning in result.warnings:
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
