"""The README as a test: its "editor's week" block runs as written against local servers.

The block is taken from README.md as it is (marked by the HTML comment above it) and run by
bash in an empty folder, with the example hosts (example.com, late.example) answered by a
local web server, the LLM by a local OpenAI-compatible server, SMTP by aiosmtpd and
Buttondown by a local server that behaves like its API. Only what
a person would do at a terminal is stood in for: `$EDITOR` deletes one item, `preview` is
stopped after a few seconds, and `send` gets the "yes" a person would type.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from digest.workspace import period_for
from tests.conftest import REPO, article_html
from tests.llm_server import LLMServer
from tests.platform_server import ButtondownServer
from tests.smtp_server import smtp_server
from tests.webserver import WebServer

MARKER = "<!-- tests/test_readme.py runs the next block"
PREFIX = """\
set -euo pipefail
digest() {
  case "$1" in
    preview) timeout -s INT 3 "$(type -P digest)" "$@" --port 0 || [ $? -eq 124 ] ;;
    send) command digest "$@" --yes ;;
    *) command digest "$@" ;;
  esac
}
"""
EDITOR = """\
import sys
from pathlib import Path

from digest.draft import default_closing_title, read_draft, render_draft

path = Path(sys.argv[1])
issue = read_draft(path)
for section in issue.sections:
    section.items = [item for item in section.items if not item.url.endswith("/one")]
path.write_text(render_draft(issue, sectioned=False, closing_title=default_closing_title("ko")))
"""


def editors_week() -> str:
    """The shell block that follows the marker in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert MARKER in text, "README.md lost the marked editor's week block"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block is not None
    return block.group(1)


def _pages(web: WebServer) -> None:
    for name in ("post", "link", "one", "two", "bookmarked"):
        paragraphs = [
            f"The {name} article explains how a small team moved its queue to Postgres.",
            f"It reports that the {name} move halved the monthly cost of the service.",
            "Engineers ran the old and the new system side by side for three weeks.",
        ]
        web.page(f"/{name}", article_html(f"The {name} article", paragraphs))


def _files(folder: Path, web: WebServer) -> None:
    folder.mkdir()
    (folder / "links.txt").write_text(f"{web.url}/one\n{web.url}/two\n")
    start, _end = period_for(dt.datetime.now(dt.UTC).date(), "sunday")
    added = int(dt.datetime.combine(start, dt.time(12), dt.UTC).timestamp())
    (folder / "bookmarks.html").write_text(
        textwrap.dedent(
            f"""\
            <!DOCTYPE NETSCAPE-Bookmark-file-1>
            <TITLE>Bookmarks</TITLE>
            <DL><p>
            <DT><A HREF="{web.url}/bookmarked" ADD_DATE="{added}">Bookmarked</A>
            </DL><p>
            """
        )
    )
    (folder / "readers.csv").write_text("email,name\nkim@example.com,Kim\nlee@example.com,Lee\n")


@pytest.mark.slow
def test_the_editors_week_runs_as_written(web: WebServer, tmp_path: Path) -> None:
    script = editors_week()
    for host in ("https://example.com", "https://late.example"):
        assert host in script
        script = script.replace(host, web.url)
    _pages(web)
    _files(tmp_path / "my-letter", web)
    (tmp_path / "edit.py").write_text(EDITOR)
    llm = LLMServer().start()
    buttondown = ButtondownServer().start()
    try:
        with smtp_server() as (box, port):
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGEST_"))}
            env |= {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(REPO),
                "EDITOR": f"{sys.executable} {tmp_path / 'edit.py'}",
                "OPENAI_BASE_URL": llm.url,
                "DIGEST_NEWSLETTER__TIMEZONE": "UTC",
                "DIGEST_FETCH__ALLOW_PRIVATE_HOSTS": "true",
                "DIGEST_SEND__SMTP_HOST": "127.0.0.1",
                "DIGEST_SEND__SMTP_PORT": str(port),
                "DIGEST_SEND__SMTP_SECURITY": "none",
                "DIGEST_PUBLISH__BUTTONDOWN": f'{{url = "{buttondown.url}"}}',
                "BUTTONDOWN_API_KEY": buttondown.key,
            }
            run = subprocess.run(
                ["bash", "-c", PREFIX + script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            received = [m.rcpt_tos[0] for m in box.messages]
    finally:
        llm.stop()
        buttondown.stop()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output
    assert re.search(r"^ok +llm: .*structured output", run.stdout, re.M), run.stdout
    issue = tmp_path / "my-letter" / "issues" / "001"
    draft = (issue / "draft.md").read_text()
    for name in ("post", "two", "bookmarked", "link"):
        assert f"{web.url}/{name}" in draft, name
    assert f"{web.url}/one" not in draft  # deleted in the editor, not brought back
    assert all((issue / name).is_file() for name in ("issue.md", "email.html", "email.txt"))
    assert "previewing at http://127.0.0.1:" in run.stdout
    assert sorted(received) == sorted(
        ["me@example.com", "you@example.com", "kim@example.com", "lee@example.com"]
    )
    assert len(llm.requests) >= 5  # four summaries, then the late link's
    [email] = buttondown.emails.values()  # the issue as one draft on the platform
    assert "The bookmarked article" in str(email)
