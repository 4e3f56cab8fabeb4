"""The editor's loop: compose, edit by hand, compose again, render — nothing the editor did is lost."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.preview import serve
from digest.workspace import Workspace
from tests.conftest import article_html

runner = CliRunner()

PAGES = {
    "/alpha": (
        "Alpha launches a columnar store",
        [
            "Alpha shipped a columnar storage engine this week.",
            "Queries over wide tables run four times faster in their tests.",
            "The engine is open source under Apache 2.0.",
        ],
    ),
    "/beta": (
        "Beta deprecates its old SDK",
        [
            "Beta will retire the version 2 SDK next spring.",
            "Developers have six months to migrate to the new client.",
            "A migration guide covers the common cases.",
        ],
    ),
    "/gamma": (
        "Gamma explains its outage",
        [
            "Gamma published a detailed report on last Tuesday's outage.",
            "A configuration push removed the health checks from every load balancer.",
            "The fix adds a staged rollout for configuration.",
        ],
    ),
    "/delta": (
        "Delta adds passkeys",
        [
            "Delta now supports passkeys for every account.",
            "Passwords remain available as a fallback for older devices.",
            "Support for hardware keys arrives later this year.",
        ],
    ),
}


@pytest.fixture
def loop_ws(web, make_workspace):
    urls = {
        path: web.page(path, article_html(title, paras)) for path, (title, paras) in PAGES.items()
    }
    root = make_workspace(
        """
        [newsletter]
        name = "Loop Weekly"
        language = "en"
        [fetch]
        allow_private_hosts = true
        """
    )
    issue = root / "issues" / "012"
    issue.mkdir()
    (issue / "links.yaml").write_text(
        "# picked this week\n" + "".join(f"- {urls[p]}\n" for p in ("/alpha", "/beta", "/gamma")),
        encoding="utf-8",
    )
    return root, issue, urls


def compose(root: Path, *args: str):
    result = runner.invoke(app, ["compose", "--workspace", str(root), *args])
    assert result.exit_code == 0, result.output
    return result


def section_of(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_full_loop_keeps_every_edit(loop_ws, web) -> None:
    root, issue, urls = loop_ws
    compose(root)
    draft_path = issue / "draft.md"
    first = draft_path.read_text(encoding="utf-8")
    assert [t for t in ("Alpha", "Beta", "Gamma") if f"## {t}" in first] == [
        "Alpha",
        "Beta",
        "Gamma",
    ]

    # The editor edits a bullet of Alpha, deletes Beta, and moves Gamma above Alpha.
    alpha = section_of(first, "Alpha launches a columnar store")
    gamma = section_of(first, "Gamma explains its outage")
    edited_alpha = alpha.replace(
        "Alpha shipped a columnar storage engine this week.",
        "알파가 컬럼형 저장 엔진을 공개함 (edited)",
    )
    assert edited_alpha != alpha
    head = first[: first.index("## Alpha")]
    draft_path.write_text(
        head + gamma.rstrip() + "\n\n" + edited_alpha.rstrip() + "\n", encoding="utf-8"
    )

    # A late link arrives.
    with (issue / "links.yaml").open("a", encoding="utf-8") as handle:
        handle.write(f"- url: {urls['/delta']}\n  note: Late addition from Sunday.\n")
    hits_before = {p: web.hits(p) for p in PAGES}
    compose(root)

    second = draft_path.read_text(encoding="utf-8")
    assert "알파가 컬럼형 저장 엔진을 공개함 (edited)" in second
    assert "Beta deprecates" not in second
    order = [second.index(f"## {t}") for t in ("Gamma", "Alpha", "Delta")]
    assert order == sorted(order), "the editor's order is kept and the new item is appended"
    assert "> Late addition from Sunday." in second
    assert (issue / "draft.md.bak").read_text(encoding="utf-8").count("(edited)") == 1
    assert web.hits("/delta") == hits_before["/delta"] + 1
    assert all(web.hits(p) == hits_before[p] for p in ("/alpha", "/beta", "/gamma")), (
        "nothing refetched"
    )

    report = json.loads((issue / "report.json").read_text())
    by_url = {link["url"]: link for link in report["links"]}
    assert by_url[urls["/alpha"]]["status"] == "cached"
    assert by_url[urls["/alpha"]]["summary_source"] == "editor"
    assert by_url[urls["/beta"]]["status"] == "skipped"
    assert by_url[urls["/beta"]]["warnings"][0]["code"] == "deleted-by-editor"
    assert "deleted" in by_url[urls["/beta"]]["warnings"][0]["message"]
    assert by_url[urls["/delta"]]["status"] == "ok"

    # A typo fix, then render: the email shows all of it, in the editor's order.
    draft_path.write_text(second.replace("(edited)", "(edited twice)"), encoding="utf-8")
    result = runner.invoke(app, ["render", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    html = (issue / "email.html").read_text(encoding="utf-8")
    assert "(edited twice)" in html and "Beta deprecates" not in html
    assert (
        html.index("Gamma explains")
        < html.index("Alpha launches")
        < html.index("Delta adds passkeys")
    )
    assert "Late addition from Sunday." in html
    issue_md = (issue / "issue.md").read_text(encoding="utf-8")
    refs = issue_md[issue_md.index("## References") :]
    assert refs.index("/gamma") < refs.index("/alpha") < refs.index("/delta")
    assert "/beta" not in refs


def test_refresh_replaces_only_that_item(loop_ws, web) -> None:
    root, issue, urls = loop_ws
    compose(root)
    draft_path = issue / "draft.md"
    text = draft_path.read_text(encoding="utf-8")
    text = text.replace("Queries over wide tables", "EDITED wide tables").replace(
        "Developers have six months", "EDITED six months"
    )
    draft_path.write_text(text, encoding="utf-8")
    before = web.hits("/alpha")
    compose(root, "--refresh", urls["/alpha"])
    after = draft_path.read_text(encoding="utf-8")
    assert web.hits("/alpha") == before + 1, "--refresh bypasses the article cache"
    assert "EDITED wide tables" not in after and "Queries over wide tables" in after
    assert "EDITED six months" in after
    assert after.index("## Alpha") < after.index("## Beta") < after.index("## Gamma")


def test_deleted_item_comes_back_only_on_refresh(loop_ws) -> None:
    root, issue, urls = loop_ws
    compose(root)
    draft_path = issue / "draft.md"
    text = draft_path.read_text(encoding="utf-8")
    draft_path.write_text(
        text.replace(section_of(text, "Beta deprecates its old SDK"), ""), encoding="utf-8"
    )
    compose(root)
    assert "Beta deprecates" not in draft_path.read_text(encoding="utf-8")
    compose(root, "--refresh", urls["/beta"])
    assert "Beta deprecates" in draft_path.read_text(encoding="utf-8")


def test_unparsable_draft_writes_nothing(loop_ws) -> None:
    root, issue, _ = loop_ws
    compose(root)
    draft_path = issue / "draft.md"
    broken = draft_path.read_text(encoding="utf-8").replace(
        "+++\n\n", "+++\n\n- stray bullet\n\n", 1
    )
    draft_path.write_text(broken, encoding="utf-8")
    snapshot = {p.name: p.read_bytes() for p in issue.iterdir() if p.is_file()}
    result = runner.invoke(app, ["compose", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "draft.md:" in result.output and "outside any item" in result.output
    assert {p.name: p.read_bytes() for p in issue.iterdir() if p.is_file()} == snapshot


def test_failed_render_keeps_previous_outputs(loop_ws) -> None:
    root, issue, _ = loop_ws
    compose(root)
    outputs = {
        name: (issue / name).read_bytes() for name in ("issue.md", "email.html", "email.txt")
    }
    (root / "templates").mkdir()
    (root / "templates" / "email.mjml.j2").write_text(
        "<mjml><mj-body>{{ no_such_value }}</mj-body></mjml>"
    )
    draft_path = issue / "draft.md"
    draft_path.write_text(
        draft_path.read_text(encoding="utf-8").replace("four times", "five times"), encoding="utf-8"
    )
    result = runner.invoke(app, ["render", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "email.mjml.j2" in result.output and "no_such_value" in result.output
    assert {name: (issue / name).read_bytes() for name in outputs} == outputs


def test_sections_route_items_and_keep_config_order(web, make_workspace) -> None:
    urls = {
        path: web.page(path, article_html(title, paras)) for path, (title, paras) in PAGES.items()
    }
    root = make_workspace(
        """
        [newsletter]
        language = "en"
        [[sections]]
        name = "Data"
        description = "databases and storage"
        [[sections]]
        name = "Security"
        description = "accounts, passkeys, outages"
        [fetch]
        allow_private_hosts = true
        """
    )
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(
        f"- url: {urls['/delta']}\n  section: Security\n- url: {urls['/alpha']}\n  section: Data\n"
    )
    compose(root)
    text = (issue / "draft.md").read_text(encoding="utf-8")
    assert (
        text.index("## Data")
        < text.index("### Alpha")
        < text.index("## Security")
        < text.index("### Delta")
    )
    issue_md = (issue / "issue.md").read_text(encoding="utf-8")
    assert "## Data" in issue_md and "### Alpha launches a columnar store" in issue_md


def test_preview_serves_and_picks_up_an_edit(loop_ws) -> None:
    root, issue, _ = loop_ws
    compose(root)
    ws = Workspace.load(explicit=root)
    folder = ws.issue("012")
    stop = threading.Event()
    announced: list[str] = []
    thread = threading.Thread(
        target=serve,
        args=(ws, folder),
        kwargs={"port": 0, "announce": announced.append, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not announced and time.monotonic() < deadline:
            time.sleep(0.05)
        base = announced[0]
        page = urllib.request.urlopen(base, timeout=5).read().decode()
        assert "Alpha launches a columnar store" in page and "/__version" in page
        version = urllib.request.urlopen(base + "__version", timeout=5).read()
        draft_path = issue / "draft.md"
        edited = draft_path.read_text(encoding="utf-8").replace(
            "four times faster", "PREVIEW-EDIT faster"
        )
        written_at = 0.0
        while time.monotonic() < deadline:
            if (
                time.monotonic() - written_at > 1.0
            ):  # the watcher may still be starting: write again
                draft_path.write_text(edited, encoding="utf-8")
                written_at = time.monotonic()
            if urllib.request.urlopen(base + "__version", timeout=5).read() != version:
                break
            time.sleep(0.1)
        page = urllib.request.urlopen(base, timeout=5).read().decode()
        assert "PREVIEW-EDIT faster" in page
    finally:
        stop.set()
        thread.join(timeout=5)


def test_conclusion_offline_is_reported_not_invented(web, make_workspace) -> None:
    url = web.page("/alpha", article_html(PAGES["/alpha"][0], PAGES["/alpha"][1]))
    root = make_workspace(
        "[newsletter]\nlanguage = 'en'\nconclusion = true\n[fetch]\nallow_private_hosts = true\n"
    )
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(f"- {url}\n")
    result = compose(root)
    report = json.loads((issue / "report.json").read_text())
    assert any(
        w["code"] == "no-closing" and "no closing section" in w["message"]
        for w in report["warnings"]
    )
    assert "no closing section" in result.output
    assert "Takeaways" not in (issue / "draft.md").read_text()
