"""Compose's progress: the summarizer named at the start; on a terminal, every link in flight."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from tests.conftest import REPO
from tests.llm_server import LLMServer
from tests.test_llm_endpoint import _workspace

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()


def test_the_start_names_summarizer_model_and_endpoint(
    web: Any, make_workspace: Any, llm: LLMServer
) -> None:
    root, _ = _workspace(make_workspace, web, llm.url, 2)
    result = CliRunner().invoke(app, ["compose", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == f"composing 2 new link(s); summarizer: LLM 'test-model-7b' at {llm.url}"


def test_offline_start_says_why(web: Any, make_workspace: Any, llm: LLMServer) -> None:
    root, _ = _workspace(make_workspace, web, llm.url, 1)
    result = CliRunner().invoke(app, ["compose", "--workspace", str(root), "--offline"])
    assert result.exit_code == 0, result.output
    assert "summarizer: the built-in offline summarizer (extractive): --offline" in result.output


def test_terminal_shows_every_link_in_flight(web: Any, make_workspace: Any) -> None:
    llm = LLMServer(latency=0.6).start()
    try:
        root, _ = _workspace(make_workspace, web, llm.url, 4)
        master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "NO_COLOR"))}
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "compose", "--workspace", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": "160"},
            cwd=REPO,
        )
        os.close(slave)
        chunks: list[bytes] = []

        def read() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
        reader.join(timeout=5)
        os.close(master)
    finally:
        llm.stop()
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    assert f"summarizer: LLM 'test-model-7b' at {llm.url}" in text
    frames = text.split("composing:")[1:]
    in_flight = [set(re.findall(r"summarizing\s+http://[^/\s]+/(post-\d)", f)) for f in frames]
    assert any(len(links) >= 2 for links in in_flight), text[-3000:]
    assert any("4 summarizing" in f for f in frames), text[-3000:]
    assert Path(root / "issues" / "001" / "draft.md").is_file()
