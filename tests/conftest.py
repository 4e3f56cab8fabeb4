"""Shared fixtures: an isolated environment, a local web server, workspaces on disk."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webserver import WebServer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No OPENAI_* / DIGEST_* variables from the developer's shell leak into a test."""
    for name in list(os.environ):
        if name.startswith(
            ("OPENAI_", "DIGEST_", "POSTMARK_", "BUTTONDOWN_", "LISTMONK_", "GHOST_")
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A real HTTP server on 127.0.0.1."""
    server = WebServer().start()
    yield server
    server.stop()


def article_html(title: str, paragraphs: list[str], *, site: str = "Test Site") -> str:
    """A small but realistic article page."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<meta property='og:site_name' content='{site}'></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>Copyright footer text</footer></body></html>"
    )


@pytest.fixture
def make_workspace(tmp_path: Path):
    """Create a workspace folder with a digest.toml; returns its path.

    Test pages hold a sentence or two, fewer than `extract.min_chars` (200) characters: unless
    the toml has an [extract] table (as the tests of that limit do), the limit is 0 here.
    """

    def make(toml: str = "", name: str = "ws") -> Path:
        root = tmp_path / name
        (root / "issues").mkdir(parents=True)
        text = textwrap.dedent(toml)
        if "[extract]" not in text:
            text += "\n[extract]\nmin_chars = 0\n"
        (root / "digest.toml").write_text(text, encoding="utf-8")
        return root

    return make
