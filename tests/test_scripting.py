"""Scripting the CLI: --json shapes, --version, help text, exit codes, logging and secrets."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import REPO, article_html
from tests.json_schemas import parse_and_validate
from tests.llm_server import LLMServer, Scripted
from tests.webserver import Reply, WebServer

runner = CliRunner()
KEY = "sk-known-test-key-5f3a9c1e7d"
PASSWORD = "smtp-known-password-81b2"
PARAGRAPHS = [
    "The team moved its job queue from Redis to Postgres last spring after two outages.",
    "It reports that the move halved the cost of the service within a single month.",
    "Engineers kept the old queue running in parallel for three weeks before the switch.",
]


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()


def _workspace(make_workspace: Any, web: WebServer, llm_url: str | None = None) -> Path:
    llm_table = f'[llm]\nbase_url = "{llm_url}"\nmax_retries = 0\n' if llm_url else ""
    root = make_workspace(
        '[newsletter]\nlanguage = "en"\ntimezone = "UTC"\n'
        f"[fetch]\nallow_private_hosts = true\nmax_retries = 0\n{llm_table}"
    )
    assert runner.invoke(app, ["new", "-w", str(root), "--date", "2026-11-23"]).exit_code == 0
    urls = [
        web.page(f"/a{n}", article_html(f"Article {n}", [f"Part {n}.", *PARAGRAPHS]))
        for n in (1, 2)
    ]
    urls.append(web.route("/gone", Reply(status=404, body=b"gone", content_type="text/plain")))
    added = runner.invoke(app, ["add", "-w", str(root), *urls])
    assert added.exit_code == 0, added.output
    return root


# ---------------------------------------------------------------- issue 11, defect 14


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"digest {importlib.metadata.version('digest')}\n"


def _commands() -> list[str]:
    import typer.main

    group: Any = typer.main.get_command(app)
    return sorted(group.commands)


def test_help_shows_no_type_tags() -> None:
    tag = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\]|[a-z_]+\[[^\]]*\])>")
    for args in ([], *([name] for name in _commands())):
        result = runner.invoke(app, [*args, "--help"], terminal_width=120)
        assert result.exit_code == 0, result.output
        assert not tag.search(result.output), f"digest {' '.join(args)} --help:\n{result.output}"
    add_help = runner.invoke(app, ["add", "--help"], terminal_width=120).output
    assert re.search(r"--section\s+NAME", add_help) and re.search(r"--workspace\s+.*DIR", add_help)


def test_every_command_takes_verbose_and_quiet() -> None:
    contract = "init new add import compose render preview check send status doctor".split()
    assert set(contract) <= set(_commands())
    for name in _commands():
        text = runner.invoke(app, [name, "--help"], terminal_width=120).output
        assert "--verbose" in text and "-v" in text and "--quiet" in text, name


def test_no_cost_for_an_endpoint_whose_price_is_unknown(
    make_workspace: Any, web: WebServer, llm: LLMServer
) -> None:
    root = _workspace(make_workspace, web, llm.url)  # a local server, model "gpt-4o-mini"
    result = runner.invoke(app, ["compose", "-w", str(root)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("llm openai/"))
    assert re.search(r"\d+ in / \d+ out tokens$", line) and "$" not in line, line


# ---------------------------------------------------------------- --json


def test_compose_status_check_json(make_workspace: Any, web: WebServer, llm: LLMServer) -> None:
    root = _workspace(make_workspace, web, llm.url)
    llm.script(Scripted(status=400, body={"error": {"message": "bad request"}}))
    result = runner.invoke(app, ["compose", "-w", str(root), "--json"])
    assert result.exit_code == 0, result.output
    data = parse_and_validate("compose", result.stdout)
    assert (data["ok"], data["fallback"], data["failed"]) == (1, 1, 1), data
    assert (data["cached"], data["skipped"], data["candidates"], data["merged"]) == (0, 0, 0, 0)
    assert data["issue"] == "001" and Path(data["draft"]).is_file()
    assert Path(data["report"]) == root / "issues" / "001" / "report.json"
    assert "failed" in result.stderr  # the human summary goes to stderr

    status = runner.invoke(app, ["status", "-w", str(root), "--json"])
    assert status.exit_code == 0, status.output
    links = parse_and_validate("status", status.stdout)["links"]
    states = {link["url"].rsplit("/", 1)[1]: (link["state"], link["reason"]) for link in links}
    fell_back = [states[n] for n in ("a1", "a2") if states[n][0] == "fallback"]
    assert len(fell_back) == 1 and fell_back[0][1], states  # the reason says why
    assert {states["a1"][0], states["a2"][0]} == {"fallback", "in draft"}
    assert states["gone"][0] == "failed" and "404" in str(states["gone"][1])

    # A placeholder in the LLM-written item (editing the fallback item would end its warning).
    draft = root / "issues" / "001" / "draft.md"
    lines = draft.read_text().splitlines()
    summarized = next(n for n in ("a1", "a2") if states[n][0] == "in draft")
    at = next(n for n, x in enumerate(lines) if f"/{summarized}>" in x)
    line = next(n for n, x in enumerate(lines) if n > at and x.startswith("- ")) + 1
    lines[line - 1] = lines[line - 1].replace("- ", "- TODO ", 1)
    draft.write_text("\n".join(lines) + "\n")
    check = runner.invoke(app, ["check", "-w", str(root), "--json"])
    assert check.exit_code == 1
    report = parse_and_validate("check", check.stdout)
    [error] = report["errors"]
    assert error["code"] == "placeholder" and "TODO" in error["message"]
    assert error["line"] is not None and error["line"] <= line
    codes = {w["code"] for w in report["warnings"]}
    assert "llm-fallback" in codes and "render-outdated" in codes


def test_json_when_nothing_to_report(make_workspace: Any) -> None:
    root = make_workspace("")
    assert runner.invoke(app, ["new", "-w", str(root)]).exit_code == 0
    status = runner.invoke(app, ["status", "-w", str(root), "--json"])
    assert status.exit_code == 0
    assert parse_and_validate("status", status.stdout)["links"] == []


# ---------------------------------------------------------------- logging


def test_verbosity_flags_and_environment(
    make_workspace: Any, web: WebServer, llm: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _workspace(make_workspace, web, llm.url)
    quiet = runner.invoke(app, ["compose", "-w", str(root), "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""  # no progress, no notes
    runner.invoke(app, ["add", "-w", str(root), web.url + "/a3"])
    web.page("/a3", article_html("Article 3", ["Part 3.", *PARAGRAPHS]))
    debug = runner.invoke(app, ["compose", "-w", str(root), "-vv"])
    assert debug.exit_code == 0, debug.output
    assert f"DEBUG digest.fetch: GET {web.url}/a3" in debug.stderr
    assert "DEBUG digest.llm: POST http://127.0.0.1:" in debug.stderr
    assert "chat completion in" in debug.stderr
    monkeypatch.setenv("DIGEST_LOG", "debug")
    runner.invoke(app, ["add", "-w", str(root), web.url + "/a4"])
    web.page("/a4", article_html("Article 4", ["Part 4.", *PARAGRAPHS]))
    from_env = runner.invoke(app, ["compose", "-w", str(root)])
    assert f"DEBUG digest.fetch: GET {web.url}/a4" in from_env.stderr
    assert "DEBUG" not in runner.invoke(app, ["status", "-w", str(root), "-q"]).stderr


def test_secrets_never_reach_output_logs_or_files(
    make_workspace: Any, web: WebServer, llm: LLMServer, tmp_path: Path
) -> None:
    """A whole compose at debug level with a known key: the key appears nowhere."""
    root = _workspace(make_workspace, web, llm.url)
    llm.api_key = KEY
    # One failure whose error text carries the key, the way a careless server might echo it.
    llm.script(Scripted(status=400, body={"error": {"message": f"bad key prefix {KEY}"}}))
    (root / ".env").write_text(f"DIGEST_SMTP_PASSWORD={PASSWORD}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGEST_"))}
    env |= {"OPENAI_API_KEY": KEY, "DIGEST_LOG": "debug", "PYTHONPATH": str(REPO)}
    runs = [
        subprocess.run(
            [sys.executable, "-m", "digest", *args, "-w", str(root)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for args in (["compose", "-vv"], ["status"], ["check"], ["doctor"], ["render"])
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert "DEBUG digest.llm: POST" in runs[0].stderr and len(llm.requests) >= 2
    assert llm.headers[0].get("authorization") == f"Bearer {KEY}"  # the key was really used
    for run in runs:
        for stream in (run.stdout, run.stderr):
            assert KEY not in stream and PASSWORD not in stream
    for path in root.rglob("*"):
        if path.is_file() and path.name != ".env":
            data = path.read_bytes()
            assert KEY.encode() not in data and PASSWORD.encode() not in data, path
    report = json.loads((root / "issues" / "001" / "report.json").read_text())
    assert any(link["summary_source"] == "offline" for link in report["links"])
