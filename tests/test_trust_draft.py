"""Issue 11 (trust): the cache, the closing splice, the issue lock, crash windows, control
characters, invalid UTF-8 and stale temporary files — each reproduced first."""

from __future__ import annotations

import difflib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cache import JsonCache
from digest.cli import app
from digest.compose import ComposeOptions, Composer
from digest.draft import splice_item
from digest.errors import SummarizeError
from digest.models import Article, Item, Link, Summary
from digest.summarize import OfflineSummarizer, SummaryContext
from digest.workspace import Workspace
from tests.conftest import article_html
from tests.llm_server import LLMServer, content

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def paragraphs(n: int) -> list[str]:
    return [
        f"Story {n} opens with a first plain sentence about topic {n}.",
        f"The second sentence of story {n} adds a detail that matters.",
        f"A third sentence closes story {n} with a short remark.",
    ]


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()


def workspace(make_workspace: Any, llm_url: str | None = None, extra: str = "") -> Path:
    toml = "[newsletter]\nlanguage = 'en'\n" + extra + "\n[fetch]\nallow_private_hosts = true\n"
    if llm_url:
        toml += f"[llm]\nbase_url = '{llm_url}'\nmax_retries = 0\n"
    return make_workspace(toml)


def new_issue(root: Path, urls: list[str], number: str = "001") -> Path:
    folder = root / "issues" / number
    folder.mkdir(exist_ok=True)
    (folder / "links.yaml").write_text("".join(f"- {u}\n" for u in urls), encoding="utf-8")
    return folder


def pages(web: Any, count: int, start: int = 0) -> list[str]:
    return [
        web.page(f"/s/{n}", article_html(f"Story {n} headline", paragraphs(n)))
        for n in range(start, start + count)
    ]


def run(root: Path, *args: str) -> Any:
    return runner.invoke(app, [*args, "--workspace", str(root)])


def compose_ok(root: Path, *args: str) -> Any:
    result = run(root, "compose", *args)
    assert result.exit_code == 0, result.output
    return result


def links_of(folder: Path) -> dict[str, dict[str, Any]]:
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return {link["url"]: link for link in report["links"]}


# ------------------------------------------------------------ 1: the cache


def test_a_bad_cache_entry_is_a_miss_and_is_rewritten(web, make_workspace) -> None:
    urls = pages(web, 2)
    root = workspace(make_workspace)
    folder = new_issue(root, urls)
    compose_ok(root, "--offline")
    entries = sorted((root / ".digest" / "cache" / "articles").rglob("*.json"))
    assert len(entries) == 2
    broken = entries[0]
    data = json.loads(broken.read_text(encoding="utf-8"))
    del data["final_url"]  # an entry an older version wrote, or a damaged one
    broken.write_text(json.dumps(data), encoding="utf-8")
    entries[1].write_text('{"url": "trunc', encoding="utf-8")  # cut short
    (folder / "draft.md").unlink()
    (folder / "state.json").unlink()
    hits = sum(web.hits(f"/s/{n}") for n in range(2))

    result = run(root, "compose", "--offline")

    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert all(link["status"] == "ok" for link in links_of(folder).values())
    assert sum(web.hits(f"/s/{n}") for n in range(2)) == hits + 2  # fetched again
    for entry in entries:  # and rewritten
        Article.model_validate_json(entry.read_text(encoding="utf-8"))


def test_cache_keys_carry_the_format_version(tmp_path: Path) -> None:
    JsonCache(tmp_path, "article-1").set("https://a.example/x", {"v": 1})
    assert JsonCache(tmp_path, "article-1").get("https://a.example/x") == {"v": 1}
    assert JsonCache(tmp_path, "article-2").get("https://a.example/x") is None


class _BuggySummarizer(OfflineSummarizer):
    """The offline summarizer, with a bug that only one article triggers."""

    async def summarize(
        self, article: Article, link: Link, ctx: SummaryContext, *, fresh: bool = False
    ) -> Summary:
        if "/s/1" in link.url:
            raise KeyError("bullets")
        if "/s/2" in link.url:
            raise SummarizeError("the model said no")
        return await super().summarize(article, link, ctx, fresh=fresh)


def test_one_links_unexpected_error_is_that_links_failure(web, make_workspace) -> None:
    urls = pages(web, 3)
    root = workspace(make_workspace)
    folder = new_issue(root, urls)
    ws = Workspace.load(explicit=root)
    composer = Composer(
        ws, ws.issue("001"), ComposeOptions(offline=True), summarizer=_BuggySummarizer()
    )
    import asyncio

    result = asyncio.run(composer.run())

    by_url = {link.url: link for link in result.report.links}
    assert by_url[urls[0]].status == "ok"
    assert by_url[urls[1]].status == "failed"
    assert by_url[urls[1]].error is not None
    assert "unexpected error (KeyError" in by_url[urls[1]].error
    assert by_url[urls[2]].error == "the model said no"
    draft = (folder / "draft.md").read_text(encoding="utf-8")
    assert "Story 0 headline" in draft and "Story 1 headline" not in draft
    assert json.loads((folder / "report.json").read_text())["links"][1]["status"] == "failed"


# ------------------------------------------------------------ 2: the closing section

EDITED_FRONT = "# the editor's comment in the front matter\n"


def test_first_closing_is_spliced_and_a_deleted_one_stays_deleted(web, make_workspace, llm) -> None:
    urls = pages(web, 3)
    root = workspace(make_workspace, llm.url)
    folder = new_issue(root, urls[:1])
    compose_ok(root)
    draft_path = folder / "draft.md"
    text = draft_path.read_text(encoding="utf-8")
    # The editor's own style: a comment, a linked heading, '*' bullets nested by 4 spaces.
    url = urls[0]
    lines = text.split("\n")
    lines.insert(1, EDITED_FRONT.rstrip("\n"))
    text = "\n".join(lines)
    start = text.index("## Story 0 headline")
    edited = (
        f"## [Story 0 headline]({url})\n\n"
        "* The editor's own first point\n"
        "    * a detail nested by four spaces\n"
        "* A second point\n"
    )
    text = text[:start] + edited
    draft_path.write_text(text, encoding="utf-8")
    (root / "digest.toml").write_text(
        (root / "digest.toml")
        .read_text()
        .replace("[newsletter]\n", "[newsletter]\nconclusion = true\n")
    )
    new_issue(root, urls[:2])

    compose_ok(root)

    after = draft_path.read_text(encoding="utf-8")
    diff = [d for d in difflib.ndiff(text.split("\n"), after.split("\n")) if d[:1] in "-+"]
    assert not [d for d in diff if d.startswith("-")], diff  # nothing of the editor's changed
    added = "\n".join(d[2:] for d in diff)
    assert "## Story 1 headline" in added
    assert "## Takeaways" in added and "closing_title" in added
    assert after.index("## Story 1 headline") < after.index("## Takeaways")
    assert llm.requests[-1]["messages"][-1]["content"].count("<items>") == 1  # it was asked

    # The editor deletes the closing section; the next compose does not write another one.
    deleted = after[: after.index("## Takeaways")].rstrip("\n") + "\n"
    draft_path.write_text(deleted, encoding="utf-8")
    asked = len(llm.requests)
    new_issue(root, urls[:3])
    compose_ok(root)
    final = draft_path.read_text(encoding="utf-8")
    assert "## Story 2 headline" in final
    assert "Takeaways" not in final.split("+++")[2]
    assert len(llm.requests) == asked + 1  # the new item only; no closing requested


# ------------------------------------------------------------ 16: splice all at once


def test_splicing_many_items_at_once_equals_one_by_one() -> None:
    from digest.draft import Placement, splice_items

    text = (
        '+++\ntitle = "T"\nnumber = 1\ndate = 2026-11-23T00:00:00\n'
        'period = ["2026-11-15", "2026-11-21"]\n+++\n\n'
        "## Web\n\n### Old one\n\n<https://old.example/1>\n\n- kept\n\n"
        "## Ops\n\n### Old two\n\n<https://old.example/2>\n\n- kept too\n"
    )
    sections = ["AI", "Web", "Data", "Ops"]
    placements = [
        Placement(Item(title="New AI", url="https://n.example/ai", bullets=[]), "AI"),
        Placement(Item(title="New Data 1", url="https://n.example/d1"), "Data"),
        Placement(Item(title="New Web", url="https://n.example/w"), "Web"),
        Placement(Item(title="New Data 2", url="https://n.example/d2"), "Data"),
        Placement(
            Item(title="Fresh two", url="https://n.example/2"), None, "https://old.example/2"
        ),
        Placement(Item(title="New AI 2", url="https://n.example/ai2"), "AI"),
    ]
    one_by_one = text
    for placed in placements:
        one_by_one = splice_item(
            one_by_one,
            placed.item,
            sections=sections,
            section=placed.section,
            replace_url=placed.replace_url,
        )
    at_once = splice_items(text, placements, sections=sections)
    assert at_once == one_by_one
    order = [
        at_once.index(t)
        for t in (
            "## AI",
            "New AI\n",
            "New AI 2",
            "## Web",
            "Old one",
            "New Web",
            "## Data",
            "New Data 1",
            "New Data 2",
            "## Ops",
            "Fresh two",
        )
    ]
    assert order == sorted(order)
    assert "Old two" not in at_once


# ------------------------------------------------------------ 13: one run per issue


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_second_run_is_refused_naming_the_holder(web, make_workspace) -> None:
    root = workspace(make_workspace)
    folder = new_issue(root, pages(web, 1))
    compose_ok(root, "--offline")
    new_issue(root, pages(web, 2))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    holder = _sleeper()
    try:
        lock = {
            "pid": holder.pid,
            "host": socket.gethostname(),
            "started": "2026-11-30T10:00:00+00:00",
            "command": "compose",
        }
        (folder / ".lock").write_text(json.dumps(lock))
        before[".lock"] = (folder / ".lock").read_bytes()
        for args in (["compose", "--offline"], ["render"]):
            result = run(root, *args)
            assert result.exit_code == 1, result.output
            assert "issue 001 is busy: `digest compose` (pid" in result.output
            assert f"pid {holder.pid} on {socket.gethostname()}" in result.output
            assert "started 2026-11-30T10:00:00" in result.output
            assert "wait for it to finish" in result.output
        assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_with_a_note(web, make_workspace) -> None:
    root = workspace(make_workspace)
    folder = new_issue(root, pages(web, 1))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock = {"pid": gone.pid, "host": socket.gethostname(), "started": "x", "command": "compose"}
    (folder / ".lock").write_text(json.dumps(lock))
    result = compose_ok(root, "--offline")
    assert f"took over a stale lock: `digest compose` (pid {gone.pid}" in result.output
    report = json.loads((folder / "report.json").read_text())
    assert [w["code"] for w in report["warnings"]] == ["stale-lock"]
    assert not (folder / ".lock").exists()
    (folder / ".lock").write_text(json.dumps(lock))
    rendered = run(root, "render")
    assert rendered.exit_code == 0, rendered.output
    assert "took over a stale lock" in rendered.output


def test_a_render_during_a_running_compose_is_refused(web, make_workspace) -> None:
    llm = LLMServer(latency=1.5).start()
    try:
        root = workspace(make_workspace, llm.url)
        folder = new_issue(root, pages(web, 1))
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "compose", "--workspace", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
            cwd=REPO,
        )
        deadline = time.monotonic() + 20
        while not llm.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        result = run(root, "render")
        out, _ = proc.communicate(timeout=30)
    finally:
        llm.stop()
    assert result.exit_code == 1, result.output
    assert f"`digest compose` (pid {proc.pid} on {socket.gethostname()}" in result.output
    assert proc.returncode == 0, out
    assert not (folder / ".lock").exists()


# ------------------------------------------------------------ 15: the draft/state window


def test_items_found_in_the_draft_are_recorded(web, make_workspace) -> None:
    """A kill between draft.md and state.json (as 0.1 wrote them) must not let a deleted
    item come back: the next compose records what it finds in the draft."""
    urls = pages(web, 2)
    root = workspace(make_workspace)
    folder = new_issue(root, urls)
    compose_ok(root, "--offline")
    (folder / "state.json").write_text('{"composed": {}}')  # the state of the kill window
    compose_ok(root, "--offline")
    text = (folder / "draft.md").read_text(encoding="utf-8")
    start = text.index("## Story 1 headline")
    (folder / "draft.md").write_text(text[:start], encoding="utf-8")  # the editor deletes it
    compose_ok(root, "--offline")
    assert "Story 1 headline" not in (folder / "draft.md").read_text(encoding="utf-8")
    assert links_of(folder)[urls[1]]["status"] == "skipped"


def _state_with_pending(folder: Path, tmp_name: str, url: str) -> None:
    key = url
    before = {"composed": {}, "closing": False}
    after = {"composed": {key: url}, "closing": False}
    (folder / "state.json").write_text(json.dumps({**before, "next": after, "draft_tmp": tmp_name}))


def test_an_interrupted_draft_write_is_resolved_by_its_temporary_file(web, make_workspace) -> None:
    from digest.workspace import IssueFolder, load_state

    root = workspace(make_workspace)
    folder = new_issue(root, pages(web, 1))
    issue = IssueFolder(folder, "001")
    _state_with_pending(folder, ".draft.md.1.abc.tmp", "https://a.example/x")
    assert load_state(issue).composed == {"https://a.example/x": "https://a.example/x"}
    (folder / ".draft.md.1.abc.tmp").write_text("never renamed")
    assert load_state(issue).composed == {}


# ------------------------------------------------------------ 17: control characters


def test_control_characters_from_the_llm_are_stripped(web, make_workspace, llm) -> None:
    urls = pages(web, 1)
    root = workspace(make_workspace, llm.url)
    folder = new_issue(root, urls)
    answer = {
        "title": "t",
        "translated_title": None,
        "bullets": [
            {"text": "Red \x1b[31malert\x1b[0m here", "children": [{"text": "page\x0cbreak"}]}
        ],
        "tags": [],
    }
    llm.script(content(json.dumps(answer)))
    compose_ok(root)
    draft = (folder / "draft.md").read_text(encoding="utf-8")
    assert "- Red alert here" in draft and "  - page break" in draft
    assert "\x1b" not in draft and "\x0c" not in draft
    assert "\x1b" not in (folder / "email.html").read_text(encoding="utf-8")


def test_a_control_character_in_the_draft_is_refused_with_line_and_column(
    web, make_workspace
) -> None:
    root = workspace(make_workspace)
    folder = new_issue(root, pages(web, 1))
    compose_ok(root, "--offline")
    draft_path = folder / "draft.md"
    lines = draft_path.read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(lines) if line.startswith("- "))
    lines[number] = "- pasted \x1b[1mbold\x1b[0m text"
    draft_path.write_text("\n".join(lines), encoding="utf-8")
    before = {p: (folder / p).read_bytes() for p in ("issue.md", "email.html", "email.txt")}

    result = run(root, "render")

    assert result.exit_code == 1
    assert f"draft.md:{number + 1}: an invisible control character, ESC (U+001B), at column 10" in (
        result.output
    )
    assert "template" not in result.output
    assert {p: (folder / p).read_bytes() for p in before} == before


def test_content_that_breaks_the_email_is_not_blamed_on_the_template() -> None:
    import datetime as dt

    from digest.config import Settings
    from digest.errors import RenderError
    from digest.models import Bullet, Issue, Section
    from digest.render import Renderer

    issue = Issue(
        title="T",
        number=1,
        date=dt.datetime(2026, 11, 23),
        period_start=dt.date(2026, 11, 15),
        period_end=dt.date(2026, 11, 21),
        sections=[
            Section(
                items=[
                    Item(
                        title="Feed item",
                        url="https://a.example/x",
                        bullets=[Bullet(text="form\x0cfeed")],
                    )
                ]
            )
        ],
    )
    with pytest.raises(RenderError) as caught:
        Renderer(Settings()).render(issue)
    message = str(caught.value)
    assert "item 'Feed item'" in message and "form feed (U+000C)" in message
    assert "fix the template" not in message


# ------------------------------------------------------------ 18: invalid UTF-8


def test_invalid_utf8_is_refused_with_line_and_column(web, make_workspace) -> None:
    root = workspace(make_workspace)
    folder = new_issue(root, pages(web, 1))
    compose_ok(root, "--offline")
    draft_path = folder / "draft.md"
    lines = draft_path.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines) if line.startswith(b"- "))
    lines[number] = "- 한글 ".encode() + b"\xff" + b" rest"
    draft_path.write_bytes(b"\n".join(lines))
    result = run(root, "render")
    assert result.exit_code == 1
    assert f"draft.md:{number + 1}: not UTF-8 text at column 6: byte 0xff" in result.output


# ------------------------------------------------------------ 19: stale temporary files


def test_stale_temporary_files_are_cleaned_at_the_start_of_a_run(web, make_workspace) -> None:
    root = workspace(make_workspace)
    folder = new_issue(root, pages(web, 1))
    compose_ok(root, "--offline")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = _sleeper()
    try:
        cache = next((root / ".digest" / "cache" / "articles").iterdir())
        dead = [
            folder / f".draft.md.{gone.pid}.k2j3h4g5.tmp",
            folder / f".draft.md.{gone.pid}.bak.a1b2c3d4.tmp",
            cache / f".0123.json.{gone.pid}.zz9yy8xx.tmp",
            folder / ".issue.md.oldstyle.tmp",  # before names carried a pid: by age
        ]
        live = folder / f".email.html.{alive.pid}.q1w2e3r4.tmp"
        for path in [*dead, live]:
            path.write_text("half written")
        old = time.time() - 7200
        os.utime(folder / ".issue.md.oldstyle.tmp", (old, old))
        compose_ok(root, "--offline")
        assert [p for p in dead if p.exists()] == []
        assert live.exists()  # a running process's write is left alone
        live.unlink()
        for path in dead[:1]:
            path.write_text("half written")
        rendered = run(root, "render")
        assert rendered.exit_code == 0, rendered.output
        assert not dead[0].exists()
    finally:
        alive.kill()
        alive.wait()
