"""`digest check`: errors that gate sending, warnings that inform."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from digest.cli import app

runner = CliRunner()

DRAFT = """+++
title = "Check Weekly, Issue 2"
number = 2
date = 2026-11-23T09:00:00+09:00
period = [2026-11-15, 2026-11-21]
+++

## A finished item

<https://a.example/post> · A Site

- a real bullet

## An empty item

<https://b.example/post>

## A placeholder item

<https://c.example/post>

- TODO write this up
"""


def make_issue(make_workspace, draft: str, toml: str = ""):
    root = make_workspace(toml)
    issue = root / "issues" / "002"
    issue.mkdir()
    (issue / "draft.md").write_text(draft, encoding="utf-8")
    return root, issue


def test_check_reports_errors_and_exits_1(make_workspace) -> None:
    root, issue = make_issue(make_workspace, DRAFT)
    (issue / "report.json").write_text(
        json.dumps(
            {
                "links": [
                    {
                        "url": "https://a.example/post",
                        "final_url": "https://a.example/post",
                        "status": "ok",
                        "warnings": ["figure '42%' not found in the source: \"...\""],
                    }
                ]
            }
        )
    )
    result = runner.invoke(app, ["check", "--workspace", str(root)])
    assert result.exit_code == 1, result.output
    assert "'An empty item' has no bullets" in result.output
    assert "draft.md:14" in result.output
    assert "leftover placeholder 'TODO'" in result.output
    assert "figure '42%' not found" in result.output


def test_clean_issue_passes_and_warns_about_long_subject(make_workspace) -> None:
    clean = DRAFT[: DRAFT.index("## An empty item")]
    root, issue = make_issue(
        make_workspace,
        clean,
        '[email]\nsubject = "{title} — a very long subject line that keeps going and going on and on past the limit"\n',
    )
    result = runner.invoke(app, ["check", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    assert "0 error(s)" in result.output
    assert "subject is" in result.output


def test_check_warns_when_email_would_be_clipped(make_workspace) -> None:
    items = "".join(
        f"## Item {n}\n\n<https://x.example/{n}>\n\n"
        + "".join(f"- {'long bullet text ' * 12}{k}\n" for k in range(6))
        + "\n"
        for n in range(60)
    )
    root, issue = make_issue(make_workspace, DRAFT[: DRAFT.index("## A finished")] + items)
    result = runner.invoke(app, ["check", "--workspace", str(root)])
    assert "Gmail clips" in result.output, result.output


def test_check_links_finds_a_broken_link(make_workspace, web) -> None:
    good = web.page("/ok", "<html><body><p>fine</p></body></html>")
    draft = DRAFT[: DRAFT.index("## A finished")] + (
        f"## Good\n\n<{good}>\n\n- fine\n\n## Gone\n\n<{web.url}/gone>\n\n- was here\n"
    )
    root, issue = make_issue(make_workspace, draft, "[fetch]\nallow_private_hosts = true\n")
    result = runner.invoke(app, ["check", "--links", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "broken link: HTTP 404" in result.output
    assert f"{good}: broken" not in result.output


def test_check_without_draft_says_what_to_do(make_workspace) -> None:
    root = make_workspace("")
    (root / "issues" / "003").mkdir()
    result = runner.invoke(app, ["check", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "run `digest compose 003` first" in result.output


def test_faithfulness_is_checked_on_the_current_bullets(make_workspace, web) -> None:
    from tests.conftest import article_html

    url = web.page(
        "/p",
        article_html(
            "Queue depth matters",
            [
                "The team bounded every queue in the service.",
                "Alerts fire when a queue is 80 percent full.",
            ],
        ),
    )
    root = make_workspace("[newsletter]\nlanguage = 'en'\n[fetch]\nallow_private_hosts = true\n")
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(f"- {url}\n")
    assert runner.invoke(app, ["compose", "--workspace", str(root)]).exit_code == 0
    assert "not found in the source" not in runner.invoke(app, ["check", "-w", str(root)]).output

    draft = issue / "draft.md"
    text = draft.read_text(encoding="utf-8")
    draft.write_text(text.replace("80 percent", "73 percent"), encoding="utf-8")
    flagged = runner.invoke(app, ["check", "-w", str(root)]).output
    assert "figure '73" in flagged and "not found in the source" in flagged

    draft.write_text(text, encoding="utf-8")
    assert "not found in the source" not in runner.invoke(app, ["check", "-w", str(root)]).output


def test_bullet_without_space_is_pointed_out(make_workspace) -> None:
    draft = DRAFT[: DRAFT.index("## An empty item")].replace(
        "- a real bullet\n", "- a real bullet\n-forgot the space\n"
    )
    root, _ = make_issue(make_workspace, draft)
    result = runner.invoke(app, ["check", "--workspace", str(root)])
    assert "draft.md:13: looks like a bullet but has no space" in result.output
    assert result.exit_code == 0, result.output  # a warning: nothing is lost, it is joined
