"""`digest doctor` against real local servers: an OpenAI-compatible LLM server and aiosmtpd."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from tests.json_schemas import parse_and_validate
from tests.llm_server import LLMServer
from tests.smtp_server import (
    Authenticator,
    free_port,
    make_certificate,
    server_tls_context,
    smtp_server,
)

runner = CliRunner()
KEY = "sk-doctor-right-key-0123456789"
PASSWORD = "smtp-right-secret"


@dataclass
class Setup:
    """One workspace wired to the local servers; each test breaks one thing."""

    root: Path
    llm: LLMServer
    smtp_port: int
    tls: tuple[str, str]

    def toml(self, **replace: str) -> None:
        """Rewrite digest.toml with some settings replaced (by their line's start)."""
        path = self.root / "digest.toml"
        lines = path.read_text().splitlines()
        for key, line in replace.items():
            lines = [line if current.startswith(f"{key} =") else current for current in lines]
        path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def setup(make_workspace: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Setup]:
    made = make_certificate(tmp_path)
    if made is None:
        pytest.skip("openssl could not make a certificate")
    cert, key = made
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # trust the test certificate for STARTTLS
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    llm = LLMServer().start()
    llm.api_key, llm.models = KEY, {"test-model"}
    auth = Authenticator("editor", PASSWORD)
    with smtp_server(
        authenticator=auth, tls_context=server_tls_context(cert, key), require_starttls=True
    ) as (_box, port):
        root = make_workspace(
            f"""
            [newsletter]
            timezone = "UTC"
            [llm]
            base_url = "{llm.url}"
            model = "test-model"
            timeout = 5
            [send]
            smtp_host = "127.0.0.1"
            smtp_port = {port}
            smtp_security = "starttls"
            smtp_user = "editor"
            """
        )
        assert runner.invoke(app, ["new", "-w", str(root), "--date", "2026-11-23"]).exit_code == 0
        added = runner.invoke(app, ["add", "-w", str(root), "https://example.com/a"])
        assert added.exit_code == 0, added.output
        yield Setup(root, llm, port, (cert, key))
    llm.stop()


def doctor(root: Path, *args: str) -> Any:
    return runner.invoke(app, ["doctor", "-w", str(root), *args])


def lines(result: Any) -> dict[str, str]:
    """status and message of each check, by name, from the plain output."""
    found = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  ")
        name, _, message = rest.strip().partition(": ")
        found[name] = f"{status.strip()} {message}"
    return found


def test_all_ok_against_local_servers(setup: Setup) -> None:
    result = doctor(setup.root)
    assert result.exit_code == 0, result.output
    checks = lines(result)
    assert list(checks) == ["settings", "issue", "llm", "fetch", "send", "templates"]
    assert all(line.startswith("ok ") for line in checks.values()), result.output
    assert "structured output (json_schema)" in checks["llm"]
    assert "STARTTLS" in checks["send"] and "login as 'editor'" in checks["send"]
    assert "OPENAI_API_KEY (environment)" in checks["settings"]
    assert KEY not in result.output and PASSWORD not in result.output
    assert len(setup.llm.requests) == 1  # one tiny request


def test_json_matches_the_schema(setup: Setup) -> None:
    result = doctor(setup.root, "--json")
    assert result.exit_code == 0, result.output
    data = parse_and_validate("doctor", result.stdout)
    assert data["ok"] is True and {c["status"] for c in data["checks"]} == {"ok"}


def _break_closed_port(s: Setup) -> None:
    s.toml(base_url=f'base_url = "http://127.0.0.1:{free_port()}/v1"')


def _break_key(s: Setup) -> None:
    s.llm.api_key = "sk-another-key"


def _break_model(s: Setup) -> None:
    s.toml(model='model = "no-such-model"')


def _break_login(s: Setup) -> None:
    s.toml(smtp_user='smtp_user = "intruder"')


def _break_starttls(s: Setup) -> None:
    # a second server on another port that offers no STARTTLS at all
    s.toml(smtp_port=f"smtp_port = {s.plain_port}")  # type: ignore[attr-defined]


def _break_template(s: Setup) -> None:
    templates = s.root / "templates"
    templates.mkdir()
    (templates / "issue.md.j2").write_text("+++\ntitle = {{ issue.title }\n+++\n")


BREAKS = {
    "closed port": (_break_closed_port, "llm", "cannot connect"),
    "wrong key": (_break_key, "llm", "refused the API key (HTTP 401); check OPENAI_API_KEY"),
    "unknown model": (_break_model, "llm", "HTTP 404: model 'no-such-model' not found"),
    "SMTP login refused": (_break_login, "send", "refused the login of 'intruder'"),
    "SMTP without STARTTLS": (_break_starttls, "send", "does not offer STARTTLS"),
    "template error": (_break_template, "templates", "issue.md.j2:2"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_fault_is_one_precise_fail_line(setup: Setup, case: str) -> None:
    breaker, name, expected = BREAKS[case]
    with smtp_server() as (_box, plain_port):
        setup.plain_port = plain_port  # type: ignore[attr-defined]
        breaker(setup)
        result = doctor(setup.root)
    assert result.exit_code == 1, result.output
    failed = [line for line in result.stdout.splitlines() if line.startswith("fail")]
    assert len(failed) == 1, result.output
    assert failed[0].startswith(f"fail  {name}: ") and expected in failed[0], failed[0]
    assert "Traceback" not in result.output and KEY not in result.output
    assert PASSWORD not in result.output


def test_structured_output_fallbacks_are_named(setup: Setup) -> None:
    setup.llm.reject_json_schema = True  # like llama.cpp's server
    checks = lines(doctor(setup.root))
    assert checks["llm"].startswith("ok ") and "json_object fallback" in checks["llm"]
    setup.llm.reject_json_schema, setup.llm.prose = False, True  # ignores response_format
    result = doctor(setup.root)
    assert result.exit_code == 0
    assert lines(result)["llm"].startswith("warn ") and "Markdown bullets" in result.stdout


def test_offline_contacts_nothing(setup: Setup) -> None:
    _break_closed_port(setup)
    setup.toml(smtp_port=f"smtp_port = {free_port()}")
    result = doctor(setup.root, "--offline")
    assert result.exit_code == 0, result.output
    assert "not contacted (--offline)" in lines(result)["llm"]
    assert "not contacted (--offline)" in lines(result)["send"]


def test_settings_show_overrides_with_their_source(setup: Setup, monkeypatch: Any) -> None:
    (setup.root / ".env").write_text("DIGEST_FETCH__TIMEOUT=30\nOPENAI_API_KEY=" + KEY + "\n")
    monkeypatch.setenv("DIGEST_LLM__MAX_RETRIES", "2")
    monkeypatch.setenv("DIGEST_PUBLISH__GHOST__URL", "https://blog.example")
    checks = lines(doctor(setup.root, "--offline"))
    assert (
        "publish.ghost.url = 'https://blog.example' from DIGEST_PUBLISH__GHOST__URL (environment)"
        in checks["settings"]
    )
    assert "fetch.timeout = 30.0 from DIGEST_FETCH__TIMEOUT (.env)" in checks["settings"]
    assert "llm.max_retries = 2 from DIGEST_LLM__MAX_RETRIES (environment)" in checks["settings"]
    assert KEY not in checks["settings"]


def test_no_workspace_and_bad_settings_fail_plainly(tmp_path: Path, make_workspace: Any) -> None:
    result = doctor(tmp_path / "nowhere")
    assert result.exit_code == 1 and "fail  workspace:" in result.stdout
    root = make_workspace("[fetch]\ntimeout = 'soon'\n")
    result = doctor(root)
    assert result.exit_code == 1 and "fail  settings:" in result.stdout
    assert "fetch.timeout" in result.stdout and "Traceback" not in result.output


def test_prompt_override_with_an_unknown_variable(setup: Setup) -> None:
    prompts = setup.root / "templates" / "prompts"
    prompts.mkdir(parents=True)
    (prompts / "summary_system.md.j2").write_text("Write in {{ langauge }}.\n")
    result = doctor(setup.root, "--offline")
    assert result.exit_code == 1
    assert "summary_system.md.j2 uses langauge" in lines(result)["templates"]


def test_unused_override_is_a_warning(setup: Setup) -> None:
    (setup.root / "templates").mkdir()
    (setup.root / "templates" / "isue.md.j2").write_text("typo in the name\n")
    result = doctor(setup.root, "--offline")
    assert result.exit_code == 0
    assert lines(result)["templates"].startswith("warn ") and "isue.md.j2" in result.stdout


def test_embeddings_checked_only_when_triage_is_on(setup: Setup) -> None:
    assert "embeddings" not in lines(doctor(setup.root))
    setup.llm.models = {"test-model", "text-embedding-3-small"}
    toml = setup.root / "digest.toml"
    toml.write_text(toml.read_text() + "[triage]\nmax_items = 5\n")
    result = doctor(setup.root)
    assert result.exit_code == 0, result.output
    assert lines(result)["embeddings"].startswith("ok ") and "dimensions" in result.stdout
    assert len(setup.llm.embedding_requests) == 1
    setup.llm.models = {"test-model"}  # the embeddings model is not served
    result = doctor(setup.root)
    assert result.exit_code == 1
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("fail")]
    assert failed.startswith("fail  embeddings: model 'text-embedding-3-small' at http://")
    assert "HTTP 404: embedding model 'text-embedding-3-small' not found" in failed


def test_publish_platform_key_checked_read_only(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.platform_server import ButtondownServer

    server = ButtondownServer().start()
    try:
        toml = setup.root / "digest.toml"
        toml.write_text(
            toml.read_text()
            + f'[publish]\nplatform = "buttondown"\n[publish.buttondown]\nurl = "{server.url}"\n'
        )
        monkeypatch.setenv("BUTTONDOWN_API_KEY", server.key)
        result = doctor(setup.root)
        assert result.exit_code == 0, result.output
        assert lines(result)["publish"].startswith("ok ") and "key accepted" in result.stdout
        assert server.calls and {c.method for c in server.calls} == {"GET"}  # read-only
        monkeypatch.setenv("BUTTONDOWN_API_KEY", "wrong-buttondown-key")
        result = doctor(setup.root)
        assert result.exit_code == 1
        [failed] = [line for line in result.stdout.splitlines() if line.startswith("fail")]
        assert failed.startswith("fail  publish: ") and "BUTTONDOWN_API_KEY" in failed
        assert "wrong-buttondown-key" not in result.output and server.key not in result.output
    finally:
        server.stop()


def test_only_a_named_issue_is_said_so(make_workspace: Any) -> None:
    root = make_workspace("")
    (root / "issues" / "example").mkdir(parents=True)
    (root / "issues" / "example" / "links.yaml").write_text("- https://example.com/a\n")
    result = doctor(root, "--offline")
    issue = lines(result)["issue"]
    assert issue.startswith("warn ") and "no numbered issue" in issue
    assert "named ones are not counted: example" in issue
