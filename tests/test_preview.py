"""`digest preview` over HTTP: a broken draft shows a banner at the top and is said in the terminal."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from tests.test_send import DRAFT, REPO


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


def _next_line(lines: queue.Queue[str], needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no line with {needle!r}; saw {seen}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def _edit_until_rerendered(base: str, draft: Path, text: str) -> None:
    """Write the draft (again, while the watcher may still be starting) until a render ran."""
    version = _get(base + "__version")
    deadline = time.monotonic() + 10
    written_at = 0.0
    while _get(base + "__version") == version:
        assert time.monotonic() < deadline, "the preview never re-rendered"
        if time.monotonic() - written_at > 1.0:
            draft.write_text(text, encoding="utf-8")
            written_at = time.monotonic()
        time.sleep(0.05)


def test_broken_draft_banner_on_top_and_errors_in_the_terminal(make_workspace: Any) -> None:
    root: Path = make_workspace("[newsletter]\nname = 'Article Weekly'\n")
    folder = root / "issues" / "007"
    folder.mkdir()
    draft = folder / "draft.md"
    draft.write_text(DRAFT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "preview", "007", "-w", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
    try:
        base = _next_line(out, "previewing at").split("previewing at ")[1].split()[0]
        page = _get(base)
        assert "SQLite at the Edge" in page and "Render failed" not in page

        lines = DRAFT.split("\n")
        bad_line = lines.index("## 비동기 러스트 5년")  # 1-based number of the line before it
        broken = "\n".join(
            lines[:bad_line] + ["A loose paragraph between items."] + lines[bad_line:]
        )
        _edit_until_rerendered(base, draft, broken)
        page = _get(base)
        banner = page.index("Render failed")
        assert banner < page.index("SQLite at the Edge"), "the banner comes before the email"
        assert f"draft.md:{bad_line + 1}" in page[banner:]
        said = _next_line(err, "render failed")
        assert f"draft.md:{bad_line + 1}" in said, said

        twice = broken.replace("A loose paragraph", "Still a loose paragraph")
        _edit_until_rerendered(base, draft, twice)
        assert f"draft.md:{bad_line + 1}" in _next_line(err, "render failed")  # each time

        _edit_until_rerendered(base, draft, DRAFT.replace("14 regions", "15 regions"))
        assert "render fixed" in _next_line(err, "render")
        page = _get(base)
        assert "Render failed" not in page and "15 regions" in page
        _edit_until_rerendered(base, draft, DRAFT.replace("14 regions", "16 regions"))
        time.sleep(0.3)
        assert err.empty(), "the fix is said once, not on every good render"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
