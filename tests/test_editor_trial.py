"""Regressions found by using digest as an editor would: hand edits, signals, messages, modes."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from digest.cli import app
from digest.draft import parse_draft
from digest.errors import DraftError
from digest.models import Article, Link, LinkReport
from digest.progress import RichProgress
from digest.summarize import OfflineSummarizer, SummaryContext
from digest.workspace import atomic_write
from tests.conftest import article_html
from tests.webserver import Reply

runner = CliRunner()

PAGES = {
    "/alpha": (
        "Alpha launches a columnar store",
        [
            "Alpha shipped a columnar engine.",
            "Wide queries run four times faster in tests.",
            "It is open source under Apache 2.0.",
        ],
    ),
    "/beta": (
        "Beta deprecates its old SDK",
        [
            "Beta will retire the version 2 SDK next spring.",
            "Developers have six months to migrate.",
            "A migration guide covers common cases.",
        ],
    ),
    "/gamma": (
        "Gamma explains its outage",
        [
            "Gamma published a report on the outage.",
            "A configuration push removed the health checks.",
            "The fix adds staged rollouts.",
        ],
    ),
}
PRIVATE = "[fetch]\nallow_private_hosts = true\ntimeout = 5\n"
SECTIONS = '\n[[sections]]\nname = "AI"\n\n[[sections]]\nname = "Infra"\n'


@pytest.fixture
def site(web):
    return {path: web.page(path, article_html(t, ps)) for path, (t, ps) in PAGES.items()}


def _issue(root: Path, links: list[str]) -> Path:
    folder = root / "issues" / "004"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "links.yaml").write_text("".join(f"- {u}\n" for u in links), encoding="utf-8")
    return folder


def _compose(root: Path, *args: str) -> str:
    result = runner.invoke(app, ["compose", *args, "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    return result.output


# ------------------------------------------------------------ compose keeps the editor's text


def test_compose_keeps_hand_formatting_and_adds_only_the_new_item(site, make_workspace):
    root = make_workspace(PRIVATE)
    folder = _issue(root, [site["/alpha"], site["/beta"]])
    _compose(root)
    draft = folder / "draft.md"
    text = draft.read_text(encoding="utf-8")
    text = text.replace("+++\n\n## Alpha", "+++\n\nHello readers.\n\n## Alpha")
    text = text.replace("- Beta will retire", "* Beta will retire by hand")
    text = text.replace("- Developers have", "    * Developers have")
    draft.write_text(text, encoding="utf-8")

    _compose(root)  # nothing new: the draft stays byte for byte
    assert draft.read_text(encoding="utf-8") == text

    with (folder / "links.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"- {site['/gamma']}\n")
    _compose(root)
    after = draft.read_text(encoding="utf-8")
    assert after.startswith(text.rstrip("\n"))  # every line the editor wrote, untouched
    assert after.count("## Gamma explains its outage") == 1
    assert "* Beta will retire by hand" in after and "    * Developers have" in after
    assert (folder / "draft.md.bak").read_text(encoding="utf-8") == text


def test_refresh_replaces_only_that_item(site, make_workspace):
    root = make_workspace(PRIVATE)
    folder = _issue(root, [site["/alpha"], site["/beta"]])
    _compose(root)
    draft = folder / "draft.md"
    text = draft.read_text(encoding="utf-8")
    text = text.replace("- Alpha shipped", "* ALPHA EDITED")
    text = text.replace("- Beta will retire", "* BETA EDITED")
    draft.write_text(text, encoding="utf-8")
    _compose(root, "--refresh", site["/beta"] + "?utm_source=x")
    after = draft.read_text(encoding="utf-8")
    assert "* ALPHA EDITED" in after and "BETA EDITED" not in after
    assert after.index("## Alpha") < after.index("## Beta")
    assert after.count("## Beta") == 1


def test_new_items_go_into_their_sections_in_configured_order(site, web, make_workspace):
    root = make_workspace(PRIVATE + SECTIONS)
    folder = _issue(root, [site["/alpha"]])
    (folder / "links.yaml").write_text(
        f"- url: {site['/alpha']}\n  section: Infra\n", encoding="utf-8"
    )
    _compose(root)
    draft = folder / "draft.md"
    text = draft.read_text(encoding="utf-8").replace("- Alpha shipped", "* Alpha by hand")
    draft.write_text(text, encoding="utf-8")
    with (folder / "links.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"- url: {site['/beta']}\n  section: AI\n")
        handle.write(f"- url: {site['/gamma']}\n  section: Infra\n")
    _compose(root)
    after = draft.read_text(encoding="utf-8")
    assert "* Alpha by hand" in after
    order = [after.index(s) for s in ("## AI", "### Beta", "## Infra", "### Alpha", "### Gamma")]
    assert order == sorted(order), after
    issue = parse_draft(after, sections=["AI", "Infra"])
    assert [len(s.items) for s in issue.sections] == [1, 2]


# ------------------------------------------------------------ files keep a normal mode


def test_atomic_write_keeps_a_normal_file_mode(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = tmp_path / "fresh.md"
    atomic_write(fresh, "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    shared = tmp_path / "shared.md"
    shared.write_text("old")
    shared.chmod(0o664)
    atomic_write(shared, "new", backup=True)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664


# ------------------------------------------------------------ signals


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_compose_interrupted_cleanly(sig, site, web, make_workspace):
    root = make_workspace(PRIVATE)
    slow = web.route("/slow", Reply(body=b"<p>late</p>", delay=4))
    folder = _issue(root, [site["/alpha"]])
    _compose(root)
    before = (folder / "draft.md").read_bytes()
    report_before = (folder / "report.json").read_bytes()
    with (folder / "links.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"- {slow}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "compose", "--workspace", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 10
    while web.hits("/slow") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    assert f"interrupted by {name}: draft.md was not changed" in err
    assert (folder / "draft.md").read_bytes() == before
    assert (folder / "report.json").read_bytes() == report_before


# ------------------------------------------------------------ messages


@pytest.mark.parametrize(
    ("edit", "sections", "expected"),
    [
        (("## Beta", "##Beta"), None, "line 14: '##Beta' looks like a heading: put a space"),
        (("- b1", "1. b1"), None, "line 18: a numbered list ('1. ') is not part"),
        (("## Beta", "## Beta"), ["AI"], "line 8: '## Alpha' looks like an item"),
    ],
)
def test_draft_errors_name_the_line_and_the_fix(edit, sections, expected):
    text = (
        '+++\ntitle = "T"\nnumber = 1\ndate = 2026-11-23T09:00:00+09:00\n'
        "period = [2026-11-15, 2026-11-21]\n+++\n\n"
        "## Alpha\n\n<https://a.example/>\n\n- a1\n\n## Beta\n\n<https://b.example/>\n\n- b1\n"
    )
    text = text.replace(*edit)
    with pytest.raises(DraftError) as info:
        parse_draft(text, "draft.md", sections=sections)
    message = str(info.value).replace("draft.md:", "line ")
    assert expected.split(": ", 1)[1] in message and expected.split(":")[0] in message, message


def test_summary_names_skipped_duplicates(site, make_workspace):
    root = make_workspace(PRIVATE)
    _issue(root, [site["/alpha"], site["/alpha"] + "?utm_source=news"])
    output = _compose(root)
    assert f"skipped: {site['/alpha']}?utm_source=news — duplicate of entry 1" in output


# ------------------------------------------------------------ progress and the offline summarizer


def test_rich_progress_shows_a_link_still_in_flight():
    progress = RichProgress(Console(file=io.StringIO(), force_terminal=True, width=120))
    progress.start(2)
    progress.stage("https://slow.example/", "fetching")
    progress.stage("https://fast.example/", "summarizing")
    progress.done(LinkReport(url="https://fast.example/", status="ok"))
    description = progress.bar.tasks[0].description
    lines = progress.lines()
    progress.finish()
    assert description == "composing: 1 fetching"
    assert len(lines) == 1 and lines[0].split()[:2] == ["fetching", "https://slow.example/"]


def test_offline_summary_of_a_short_article_is_nested_and_skips_the_title():
    title = "Beta deprecates its old SDK"
    text = f"{title}.\n\n" + "\n\n".join(PAGES["/beta"][1]) + "\n\nThe old SDK stays online."
    article = Article(
        url="https://b.example/", final_url="https://b.example/", title=title, text=text
    )
    summary = OfflineSummarizer().summarize_sync(
        article, Link(url="https://b.example/"), SummaryContext(language="en")
    )
    flat = [b.text for b in summary.bullets] + [c.text for b in summary.bullets for c in b.children]
    assert not any(t.rstrip(".") == title for t in flat)
    assert len(flat) == 4 and all(b.children for b in summary.bullets)
    assert summary.bullets[0].text.startswith("Beta will retire")
