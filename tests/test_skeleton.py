"""The walking skeleton end to end: a small issue served by a local HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import article_html

runner = CliRunner()


def test_compose_from_local_http_server(web, make_workspace) -> None:
    url_a = web.page(
        "/a",
        article_html(
            "Postgres 19 ships incremental views",
            [
                "The Postgres project released version 19 this week with incremental materialized views.",
                "Incremental views refresh only the rows that changed, which cut refresh time by 90 percent in the benchmarks.",
                "The release also adds a faster planner for queries with many joins.",
            ],
        ),
    )
    url_b = web.page("/b", "nope", content_type="image/png")
    root = make_workspace(
        """
        [newsletter]
        name = "Test Weekly"
        language = "en"
        authors = ["Tester"]
        [fetch]
        allow_private_hosts = true
        """
    )
    issue = root / "issues" / "007"
    issue.mkdir()
    (issue / "links.yaml").write_text(f"- {url_a}\n- url: {url_b}\n  note: a picture\n")
    result = runner.invoke(app, ["compose", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    report = json.loads((issue / "report.json").read_text())
    statuses = {link["url"]: link["status"] for link in report["links"]}
    assert statuses == {url_a: "ok", url_b: "failed"}
    failed = next(link for link in report["links"] if link["status"] == "failed")
    assert "image/png" in failed["error"]
    assert failed["final_url"] == url_b  # fetched, then refused: the URL is still known
    issue_md = (issue / "issue.md").read_text()
    assert 'title = "Test Weekly, Issue 7"' in issue_md
    assert "## Postgres 19 ships incremental views" in issue_md
    assert "## Period" in issue_md and "## References" in issue_md
    assert f"- {url_a}" in issue_md
    assert "90 percent" in issue_md
    html = (issue / "email.html").read_text()
    assert "Postgres 19 ships incremental views" in html and "<html" in html
    assert (issue / "email.txt").read_text().startswith("Test Weekly, Issue 7")


def test_every_link_failing_without_draft_exits_1(web, make_workspace) -> None:
    root = make_workspace("[fetch]\nallow_private_hosts = true\n")
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(f"- {web.url}/missing\n")
    result = runner.invoke(app, ["compose", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "HTTP 404" in result.output
    assert not (issue / "draft.md").exists()


def test_bad_setting_names_the_key_without_traceback(make_workspace) -> None:
    root = make_workspace('[llm]\nconcurrency = "many"\n')
    (root / "issues" / "001").mkdir()
    result = runner.invoke(app, ["compose", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "llm.concurrency" in result.output and "integer" in result.output
    assert "Traceback" not in result.output


def test_environment_override_is_validated(make_workspace, monkeypatch) -> None:
    root = make_workspace("")
    (root / "issues" / "001").mkdir()
    monkeypatch.setenv("DIGEST_FETCH__TIMEOUT", "soon")
    result = runner.invoke(app, ["render", "--workspace", str(root)])
    assert result.exit_code == 1
    assert "DIGEST_FETCH__TIMEOUT" in result.output and "fetch.timeout" in result.output


def test_help_is_fast() -> None:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digest", "--help"], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, digest.cli; print(' '.join(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    heavy = {"openai", "trafilatura", "mjml", "httpx", "markdown_it"} & set(imported)
    assert not heavy, f"heavy modules imported at start-up: {heavy}"
    assert elapsed < 2.0  # a generous bound for loaded CI machines; measured ~0.2 s


def test_example_compose_offline(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    import shutil

    shutil.copytree(
        repo / "issues" / "example",
        tmp_path / "issues" / "example",
        ignore=shutil.ignore_patterns(
            "draft.md*", "issue.md", "email.*", "report.json", "state.json"
        ),
    )
    shutil.copy(repo / "digest.toml", tmp_path / "digest.toml")
    result = runner.invoke(app, ["compose", "example", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "issues" / "example" / "report.json").read_text())
    assert [link["status"] for link in report["links"]] == ["ok"] * 5
    assert report["llm"]["provider"] == "offline"
    draft = (tmp_path / "issues" / "example" / "draft.md").read_text()
    assert "회고를 다시 설계하다" in draft  # EUC-KR sample decoded exactly


def test_string_settings_take_overrides_verbatim(make_workspace, monkeypatch) -> None:
    from digest.config import load_settings

    root = make_workspace("")
    monkeypatch.setenv("DIGEST_SEND__SMTP_USER", "12345")
    monkeypatch.setenv("DIGEST_NEWSLETTER__NAME", "2024")
    monkeypatch.setenv("DIGEST_LLM__MODEL", "1.5")
    monkeypatch.setenv("DIGEST_EMAIL__FROM", "Desk <desk@example.com>")
    monkeypatch.setenv("DIGEST_LLM__CONCURRENCY", "3")
    monkeypatch.setenv("DIGEST_NEWSLETTER__AUTHORS", '["Kim", "Lee"]')
    settings, _ = load_settings(root / "digest.toml")
    assert settings.send.smtp_user == "12345"
    assert settings.newsletter.name == "2024"
    assert settings.llm.model == "1.5"
    assert settings.email.from_ == "Desk <desk@example.com>"
    assert settings.llm.concurrency == 3
    assert settings.newsletter.authors == ["Kim", "Lee"]


def test_overrides_reach_the_platform_tables(make_workspace, monkeypatch) -> None:
    from digest.config import load_settings

    root = make_workspace("[publish.ghost]\nurl = 'https://old.example'\n")
    monkeypatch.setenv("DIGEST_PUBLISH__GHOST__URL", "https://blog.example")
    monkeypatch.setenv("DIGEST_PUBLISH__LISTMONK__LIST_IDS", "[3, 4]")
    monkeypatch.setenv("DIGEST_PUBLISH__PLATFORM", "ghost")
    settings, _ = load_settings(root / "digest.toml")
    assert settings.publish.ghost.url == "https://blog.example"
    assert settings.publish.listmonk.list_ids == [3, 4]
    assert settings.publish.platform == "ghost"

    monkeypatch.setenv("DIGEST_PUBLISH__LISTMONK__LIST_IDS", "three")
    result = runner.invoke(app, ["render", "--workspace", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "DIGEST_PUBLISH__LISTMONK__LIST_IDS" in result.output
    monkeypatch.delenv("DIGEST_PUBLISH__LISTMONK__LIST_IDS")

    # One level too deep names the variable, not digest.toml; DIGEST__X is not a setting.
    monkeypatch.setenv("DIGEST_LLM__MAX_RETRIES__X", "1")
    monkeypatch.setenv("DIGEST__X", "1")
    result = runner.invoke(app, ["render", "--workspace", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "DIGEST_LLM__MAX_RETRIES__X: llm.max_retries" in " ".join(result.output.split())
    assert "DIGEST__X" not in result.output
