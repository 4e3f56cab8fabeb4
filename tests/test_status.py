"""`digest status`: each link's state after a real compose against a local web server."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from digest.cache import article_cache
from digest.cli import app
from digest.draft import default_closing_title, read_draft, render_draft
from digest.models import Article
from digest.progress import print_status
from digest.status import issue_status
from digest.urls import link_key
from digest.workspace import Workspace
from tests.conftest import article_html
from tests.webserver import Reply

runner = CliRunner()


def _composed_issue(web, make_workspace) -> tuple[Path, dict[str, str]]:
    urls = {
        "kept": web.page(
            "/kept",
            article_html(
                "Kept article",
                [
                    "The kept article explains how the team moved its queue to Postgres last spring.",
                    "It reports that the move halved the cost of the service within a month.",
                ],
            ),
        ),
        "deleted": web.page(
            "/deleted",
            article_html(
                "Deleted article",
                [
                    "This article is summarized first and then deleted from the draft by the editor.",
                    "Its summary should not come back when the issue is composed again.",
                ],
            ),
        ),
        "failed": web.route("/missing", Reply(status=404, body=b"gone", content_type="text/plain")),
    }
    root = make_workspace(
        '[newsletter]\nlanguage = "en"\ntimezone = "UTC"\n[fetch]\nallow_private_hosts = true\n'
    )
    assert runner.invoke(app, ["new", "--date", "2024-07-29", "-w", str(root)]).exit_code == 0
    added = runner.invoke(app, ["add", "-w", str(root), *urls.values()])
    assert added.exit_code == 0, added.output
    composed = runner.invoke(app, ["compose", "--offline", "-w", str(root)])
    assert composed.exit_code == 0, composed.output
    draft_path = root / "issues" / "001" / "draft.md"
    issue = read_draft(draft_path)
    issue.sections[0].items = [i for i in issue.sections[0].items if "/deleted" not in i.url]
    draft_path.write_text(
        render_draft(issue, sectioned=False, closing_title=default_closing_title("en"))
    )
    urls["fetched"] = web.url + "/fetched-only"
    urls["new"] = "https://new.example/post"
    runner.invoke(app, ["add", "-w", str(root), urls["fetched"], urls["new"]])
    article_cache(root / ".digest" / "cache").set(
        link_key(urls["fetched"]),
        Article(
            url=urls["fetched"], final_url=urls["fetched"], title="Fetched title", text="Some text."
        ).model_dump(mode="json"),
    )
    with (root / "issues" / "001" / "links.yaml").open("a") as handle:
        handle.write(f"- {urls['kept']}?utm_source=dup\n")
    return root, urls


def _rows(output: str) -> dict[str, str]:
    """Plain status lines by the link they show."""
    found = (re.search(r"\s(https?://\S+)", line) for line in output.splitlines()[1:-1])
    return {m.group(1): m.string for m in found if m}


def test_status_lists_each_link_and_its_state(web, make_workspace) -> None:
    root, urls = _composed_issue(web, make_workspace)
    issue = root / "issues" / "001"
    before = {p: p.stat().st_mtime_ns for p in issue.rglob("*")}
    result = runner.invoke(app, ["status", "-w", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("issue 001 (number 1), Period 2024-07-21 ~ 2024-07-27")
    rows = _rows(result.output)
    assert rows[urls["kept"]].split()[1:3] == ["in", "draft"]
    assert rows[urls["kept"]].endswith("Kept article")
    assert "deleted" in rows[urls["deleted"]] and "removed from the draft" in rows[urls["deleted"]]
    assert "failed" in rows[urls["failed"]] and "HTTP 404" in rows[urls["failed"]]
    assert "fetched" in rows[urls["fetched"]] and "Fetched title" in rows[urls["fetched"]]
    assert rows[urls["new"]].split()[1] == "new"
    assert "duplicate" in rows[urls["kept"] + "?utm_source=dup"]
    assert lines[-1] == "6 link(s): 1 in draft, 1 fetched, 1 new, 1 failed, 1 deleted, 1 duplicate"
    assert {p: p.stat().st_mtime_ns for p in issue.rglob("*")} == before  # read-only


def test_status_on_a_terminal_is_a_table(web, make_workspace) -> None:
    root, urls = _composed_issue(web, make_workspace)
    ws = Workspace.load(explicit=root)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    status = issue_status(ws, ws.issue(None))
    print_status(console, status)
    rows = status.rows
    text = buffer.getvalue()
    assert "state" in text and "title / why" in text and "│" in text
    assert "HTTP 404" in text and urls["new"] in text
    assert [row.state for row in rows][:3] == ["in draft", "deleted", "failed"]


def test_status_without_a_draft_shows_summarized_links(web, make_workspace) -> None:
    root, urls = _composed_issue(web, make_workspace)
    (root / "issues" / "001" / "draft.md").unlink()
    (root / "issues" / "001" / "state.json").unlink()
    result = runner.invoke(app, ["status", "-w", str(root)])
    assert result.exit_code == 0, result.output
    kept = _rows(result.output)[urls["kept"]]
    assert "summarized" in kept and "Kept article" in kept


def test_status_with_a_broken_draft_still_lists_links(web, make_workspace) -> None:
    root, urls = _composed_issue(web, make_workspace)
    (root / "issues" / "001" / "draft.md").write_text("+++\ntitle = \n")
    result = runner.invoke(app, ["status", "-w", str(root)])
    assert result.exit_code == 0, result.output
    assert "note: draft.md cannot be read" in result.output
    assert urls["failed"] in result.output


def test_status_of_a_hand_made_issue_writes_nothing(make_workspace) -> None:
    root = make_workspace("")
    issue = root / "issues" / "005"
    issue.mkdir()
    result = runner.invoke(app, ["status", "-w", str(root)])
    assert result.exit_code == 0, result.output
    assert "Period not set yet" in result.output and "no links" in result.output
    assert list(issue.iterdir()) == []


def test_status_of_an_unknown_issue_exits_1(make_workspace) -> None:
    root = make_workspace("")
    result = runner.invoke(app, ["status", "042", "-w", str(root)])
    assert result.exit_code == 1
    assert "no issue '042'" in result.output


def test_status_library_returns_rows_and_prints_nothing(web, make_workspace, capsys) -> None:
    root, urls = _composed_issue(web, make_workspace)
    ws = Workspace.load(explicit=root)
    capsys.readouterr()
    status = issue_status(ws, ws.issue(None))
    assert capsys.readouterr().out == ""
    assert status.heading.startswith("issue 001") and status.empty is None
    assert {row.url: row.state for row in status.rows}[urls["new"]] == "new"
    assert status.counts().startswith("6 link(s): ")
