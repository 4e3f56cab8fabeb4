"""Issue 11, what comes in: near-empty pages, local files (inside the workspace, never
published, one link per file), `digest add` of a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import article_html
from tests.llm_server import LLMServer

runner = CliRunner()

LONG = [
    "The storage team rewrote the write path of the database over two quarters.",
    "Every write now lands in a log first and is applied to the tables in batches.",
    "Latency at the 99th percentile fell from 40 ms to 9 ms under the same load.",
    "The old path stays behind a flag until the next release, then it is removed.",
]
WALL = (
    "<!DOCTYPE html><html><head><title>Members only</title></head><body>"
    "<nav>Home About</nav><main><p>Please log in to continue reading.</p></main></body></html>"
)


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()


def _compose(root: Path, *args: str) -> Any:
    return runner.invoke(app, ["compose", *args, "--workspace", str(root)])


def _report(issue: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((issue / "report.json").read_text(encoding="utf-8"))
    return {entry["url"]: entry for entry in data["links"]}


def _check_json(root: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["check", "--json", "--workspace", str(root)])
    if result.exit_code == 2 or "No such option" in result.output:  # before `check --json`
        result = runner.invoke(app, ["check", "--workspace", str(root)])
        return {"text": result.output}
    return {"text": result.output, **json.loads(result.stdout)}


# ------------------------------------------------------------ defect 4: too little text


def test_a_login_wall_fails_and_the_llm_is_never_asked(
    web: Any, make_workspace: Any, llm: LLMServer
) -> None:
    wall = web.page("/members/story", WALL)
    real = web.page("/real", article_html("A real article", LONG))
    root = make_workspace(
        f'[llm]\nbase_url = "{llm.url}"\n[fetch]\nallow_private_hosts = true\n'
        "[extract]\nmin_chars = 200\n"
    )
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(f"- {wall}\n- {real}\n")
    result = _compose(root)
    assert result.exit_code == 0, result.output
    entry = _report(issue)[wall]
    assert entry["status"] == "failed"
    assert entry["error"].startswith("too little text extracted (")
    assert "characters): login wall, paywall or a page that needs JavaScript?" in entry["error"]
    assert "too little text extracted" in result.output
    assert _report(issue)[real]["status"] == "ok"
    assert len(llm.requests) == 1  # only the real article was summarized
    assert "log in to continue" not in json.dumps(llm.requests)
    assert "Members only" not in (issue / "draft.md").read_text()


def test_a_thin_page_with_the_editors_note_is_kept_and_flagged(
    web: Any, make_workspace: Any
) -> None:
    wall = web.page("/members/story", WALL)
    titled = web.page("/members/other", WALL.replace("Members only", "Short"))
    root = make_workspace("[fetch]\nallow_private_hosts = true\n[extract]\nmin_chars = 200\n")
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(
        f"- url: {wall}\n  note: Paywalled, but the headline is the news.\n"
        f"- url: {titled}\n  title: The launch everyone talks about\n"
    )
    result = _compose(root, "--offline")
    assert result.exit_code == 0, result.output
    report = _report(issue)
    for url, given in ((wall, "note"), (titled, "title")):
        assert report[url]["status"] == "ok"
        codes = [w["code"] for w in report[url]["warnings"]]
        assert "too-little-text" in codes
        message = next(w for w in report[url]["warnings"] if w["code"] == "too-little-text")
        assert f"gives it a {given}" in message["message"]
    draft = (issue / "draft.md").read_text()
    assert "Paywalled, but the headline is the news." in draft
    check = _check_json(root)
    assert "too little text extracted" in check["text"]
    if "warnings" in check:
        assert "too-little-text" in {w["code"] for w in check["warnings"]}


def test_min_chars_is_a_setting(web: Any, make_workspace: Any) -> None:
    wall = web.page("/members/story", WALL)
    root = make_workspace("[fetch]\nallow_private_hosts = true\n[extract]\nmin_chars = 10\n")
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(f"- {wall}\n")
    assert _compose(root, "--offline").exit_code == 0
    assert _report(issue)[wall]["status"] == "ok"


# ------------------------------------------------------------ defect 5: local files


def _local_workspace(make_workspace: Any) -> tuple[Path, Path]:
    root = make_workspace("")
    issue = root / "issues" / "001"
    (issue / "articles").mkdir(parents=True)
    (issue / "articles" / "story.html").write_text(
        article_html("A story from a file", LONG), encoding="utf-8"
    )
    return root, issue


def test_a_file_outside_the_workspace_is_refused(make_workspace: Any, tmp_path: Path) -> None:
    root, issue = _local_workspace(make_workspace)
    outside = tmp_path / "secret.html"
    outside.write_text(article_html("Secret notes", LONG), encoding="utf-8")
    other = tmp_path / "other.html"
    other.write_text(article_html("Other notes", LONG), encoding="utf-8")
    (root / "issues" / "link.html").symlink_to(other)  # inside by name, outside in fact
    (issue / "links.yaml").write_text(
        f"- /etc/passwd\n- file://{outside}\n- ../link.html\n- articles/story.html\n"
    )
    result = _compose(root, "--offline")
    assert result.exit_code == 0, result.output
    report = _report(issue)
    for url, resolved in (
        ("/etc/passwd", "/etc/passwd"),
        ("../link.html", str(other.resolve())),
        (f"file://{outside}", str(outside.resolve())),
    ):
        assert report[url]["status"] == "failed", url
        assert f"resolves to {resolved}" in report[url]["error"]
        assert "outside the workspace" in report[url]["error"]
    draft = (issue / "draft.md").read_text()
    assert "root:" not in draft and "Secret notes" not in draft and "Other notes" not in draft
    assert "A story from a file" in draft


def test_a_local_item_without_a_web_address_is_not_published(make_workspace: Any) -> None:
    root, issue = _local_workspace(make_workspace)
    (issue / "links.yaml").write_text("- articles/story.html\n")
    assert _compose(root, "--offline").exit_code == 0
    issue_md = (issue / "issue.md").read_text()
    references = issue_md.split("## References", 1)[1]
    assert "file:" not in issue_md and "articles/story.html" not in references
    for name in ("email.html", "email.txt"):
        assert "file:" not in (issue / name).read_text(), name
    assert "file:articles/story.html" in (issue / "draft.md").read_text()  # for the editor
    check = _check_json(root)
    assert "readers will see no link" in check["text"]
    if "warnings" in check:
        assert "no-web-address" in {w["code"] for w in check["warnings"]}


def test_the_same_file_under_several_spellings_is_one_link(make_workspace: Any) -> None:
    root, issue = _local_workspace(make_workspace)
    absolute = issue / "articles" / "story.html"
    spellings = [
        "articles/story.html",
        "./articles/story.html",
        "articles/../articles/story.html",
        str(absolute),
        f"file://{absolute}",
        "file:articles/story.html",
    ]
    (issue / "links.yaml").write_text("".join(f"- {s}\n" for s in spellings))
    result = _compose(root, "--offline")
    assert result.exit_code == 0, result.output
    report = _report(issue)
    assert report[spellings[0]]["status"] == "ok"
    for spelling in spellings[1:]:
        assert report[spelling]["status"] == "skipped", spelling
        assert "duplicate of entry 1" in report[spelling]["error"]
    assert (issue / "draft.md").read_text().count("A story from a file") == 1
    # A second compose neither repeats the item nor fetches it again.
    again = _compose(root, "--offline")
    assert again.exit_code == 0, again.output
    assert (issue / "draft.md").read_text().count("A story from a file") == 1
    assert _report(issue)[spellings[0]]["status"] == "cached"


def test_the_same_relative_path_in_two_issues_is_two_articles(make_workspace: Any) -> None:
    """articles/story.html of issue 002 is not issue 001's (they shared a cache entry)."""
    root, first = _local_workspace(make_workspace)
    (first / "links.yaml").write_text("- articles/story.html\n")
    assert _compose(root, "001", "--offline").exit_code == 0
    second = root / "issues" / "002"
    (second / "articles").mkdir(parents=True)
    (second / "articles" / "story.html").write_text(
        article_html("Another story, another week", LONG), encoding="utf-8"
    )
    (second / "links.yaml").write_text("- articles/story.html\n")
    result = _compose(root, "002", "--offline")
    assert result.exit_code == 0, result.output
    draft = (second / "draft.md").read_text()
    assert "Another story, another week" in draft and "A story from a file" not in draft
    assert _report(second)["articles/story.html"]["status"] == "ok"  # read, not cached


def test_a_device_in_links_yaml_is_never_read(make_workspace: Any) -> None:
    """/dev/zero: refused by compose, listed by status; never read (memory capped at 1 GB,
    the old cache key read it whole)."""
    import resource
    import subprocess
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    root, issue = _local_workspace(make_workspace)
    (issue / "links.yaml").write_text("- articles/story.html\n- /dev/zero\n")
    for command in (["status"], ["compose", "--offline"]):
        done = subprocess.run(
            [sys.executable, "-m", "digest", *command, "-w", str(root)],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=cap,
        )
        assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr
        assert done.returncode == 0, done.stdout + done.stderr
    assert "outside the workspace" in _report(issue)["/dev/zero"]["error"]
    assert "A story from a file" in (issue / "draft.md").read_text()


def test_a_symlink_loop_is_refused_plainly(
    make_workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """articles/loop.md -> loop.md: every command said so with a traceback (resolve raised)."""
    root, issue = _local_workspace(make_workspace)
    (issue / "articles" / "loop.md").symlink_to("loop.md")
    (issue / "links.yaml").write_text("- articles/story.html\n- articles/loop.md\n")
    for command in (["status"], ["compose", "--offline"], ["check"]):
        result = runner.invoke(app, [*command, "--workspace", str(root)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command,
            result.exception,
        )
    assert "leads back to itself" in _report(issue)["articles/loop.md"]["error"]
    assert "A story from a file" in (issue / "draft.md").read_text()
    monkeypatch.chdir(issue)
    added = runner.invoke(app, ["add", "articles/loop.md", "--workspace", str(root)])
    assert added.exit_code == 1 and isinstance(added.exception, SystemExit), added.exception
    assert "Nothing was added" in added.output


# ------------------------------------------------------------ defect 6: digest add of a file


def test_add_an_existing_file_stores_it_relative_to_the_issue(
    make_workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, issue = _local_workspace(make_workspace)
    (root / "some-file.html").write_text(article_html("Top-level file", LONG), encoding="utf-8")
    (issue / "links.yaml").write_text("")
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["add", "some-file.html", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    assert "did you mean" not in result.output
    assert (issue / "links.yaml").read_text() == "- ../../some-file.html\n"
    # The same file again, spelled from inside the issue folder: a duplicate.
    monkeypatch.chdir(issue)
    again = runner.invoke(
        app, ["add", "../../some-file.html", str(root / "some-file.html"), "-w", str(root)]
    )
    assert again.exit_code == 0, again.output
    assert "already in issue 001" in again.output
    assert (issue / "links.yaml").read_text() == "- ../../some-file.html\n"
    # A file inside the issue folder is stored as a plain relative path; it composes.
    assert runner.invoke(app, ["add", "articles/story.html", "-w", str(root)]).exit_code == 0
    assert (issue / "links.yaml").read_text().splitlines()[-1] == "- articles/story.html"
    assert _compose(root, "--offline").exit_code == 0
    assert "Top-level file" in (issue / "draft.md").read_text()


def test_add_a_missing_file_says_it_does_not_exist(
    make_workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, issue = _local_workspace(make_workspace)
    (issue / "links.yaml").write_text("")
    monkeypatch.chdir(root)
    result = runner.invoke(app, ["add", "some-file.html", "-w", str(root)])
    assert result.exit_code == 1
    assert f"no such file: {root.resolve() / 'some-file.html'}" in result.output
    assert "did you mean" not in result.output and "Nothing was added" in result.output
    assert (issue / "links.yaml").read_text() == ""


def test_add_a_file_outside_the_workspace_is_refused(
    make_workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, issue = _local_workspace(make_workspace)
    (issue / "links.yaml").write_text("")
    outside = tmp_path / "elsewhere.html"
    outside.write_text("x")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["add", "elsewhere.html", "-w", str(root)])
    assert result.exit_code == 1
    assert f"resolves to {outside.resolve()}" in result.output
    assert "outside the workspace" in result.output
    assert (issue / "links.yaml").read_text() == ""


def test_status_and_check_follow_a_local_item_spelled_another_way(make_workspace: Any) -> None:
    root, issue = _local_workspace(make_workspace)
    (issue / "articles" / "thin.html").write_text(WALL, encoding="utf-8")
    (root / "digest.toml").write_text("[extract]\nmin_chars = 200\n")
    (issue / "links.yaml").write_text(
        "- ./articles/story.html\n- url: articles/../articles/thin.html\n  note: Worth it.\n"
    )
    assert _compose(root, "--offline").exit_code == 0
    status = runner.invoke(app, ["status", "--workspace", str(root)])
    assert status.exit_code == 0, status.output
    rows = [line for line in status.output.splitlines() if "articles/" in line]
    assert len(rows) == 2 and all("in draft" in row for row in rows), status.output
    check = _check_json(root)
    assert "too little text extracted" in check["text"], check["text"]
