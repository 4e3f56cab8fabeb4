"""`digest compose` killed with SIGKILL at random moments, then run again, ten times over.

Half the kills land in the middle of the work (after a few more LLM requests), half in the
writes at its end (once a new temporary file shows in the issue folder). After every kill `draft.md` parses; at the end every link is in the draft exactly once (or
failed with a reason), no temporary file or lock is left, no summary already received (in the
summary cache when the process died) is asked of the LLM again, and the editor's edits made
before the kills (an edited bullet, a comment, a deleted item) survive, and items deleted
after the kills do not come back. The seed is printed:
`DIGEST_TEST_SEED=<seed>` repeats a run.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from digest.cli import app
from digest.draft import read_draft
from tests.conftest import article_html
from tests.llm_server import LLMServer

runner = CliRunner()
LINKS = 40
FIRST = 5  # composed (and edited) before the kills
KILLS = 10
DELETED_LATER = (12, 31)  # composed during the kills, deleted by the editor afterwards
STORY = re.compile(r"Story (\d+) opens")


def story_paragraphs(n: int) -> list[str]:
    return [
        f"Story {n} opens with a plain first sentence about subject {n}.",
        f"Its second sentence adds one more detail about subject {n}.",
        "A third sentence closes it.",
    ]


def cached_stories(root: Path) -> set[int]:
    """The articles whose summary is in the summary cache."""
    found = set()
    for path in (root / ".digest" / "cache" / "llm").rglob("*.json"):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        found.update(int(n) for n in STORY.findall(text))
    return found


def story_of(request: dict) -> int | None:
    user = " ".join(m.get("content") or "" for m in request["messages"] if m["role"] == "user")
    match = STORY.search(user)
    return int(match.group(1)) if match else None


def test_sigkill_at_random_moments_loses_nothing_and_asks_nothing_twice(web, make_workspace):
    seed = int(os.environ.get("DIGEST_TEST_SEED") or random.randrange(1 << 30))
    print(f"seed {seed} (DIGEST_TEST_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    urls = [
        web.page(f"/k/{n}", article_html(f"Kill story {n}", story_paragraphs(n)))
        for n in range(LINKS)
    ]
    llm = LLMServer(latency=0.08).start()
    try:
        root = make_workspace(
            "[newsletter]\nlanguage = 'en'\n[fetch]\nallow_private_hosts = true\n"
            f"[llm]\nbase_url = '{llm.url}'\nconcurrency = 4\nmax_retries = 0\n"
        )
        folder = root / "issues" / "001"
        folder.mkdir()
        links = folder / "links.yaml"
        links.write_text("".join(f"- {u}\n" for u in urls[:FIRST]), encoding="utf-8")
        first = runner.invoke(app, ["compose", "--workspace", str(root)])
        assert first.exit_code == 0, first.output

        # The editor's edits before the kills: a comment, a rewritten bullet, a deleted item.
        draft_path = folder / "draft.md"
        text = draft_path.read_text(encoding="utf-8")
        text = text.replace("+++\n", "+++\n# editor: check the title before Friday\n", 1)
        bullet = next(line for line in text.split("\n") if line.startswith("- "))
        text = text.replace(bullet, "- THE EDITOR'S OWN WORDS", 1)
        start = text.index("## Kill story 1\n")
        end = text.index("## Kill story 2\n")
        text = text[:start] + text[end:]
        draft_path.write_text(text, encoding="utf-8")
        links.write_text("".join(f"- {u}\n" for u in urls), encoding="utf-8")

        env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "OPENAI_"))}
        command = [sys.executable, "-m", "digest", "compose", "--workspace", str(root)]
        asked_after: list[tuple[int, set[int]]] = []  # (requests so far, stories cached)
        started = time.monotonic()
        for kill in range(KILLS):
            before = len(llm.requests)
            present = set(os.listdir(folder))
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=root,
            )
            deadline = time.monotonic() + 20
            if kill % 2 == 0:  # in the middle of the work: after a few more LLM requests
                target = before + rng.randint(1, 6)
                while len(llm.requests) < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the compose made no progress"
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.3))
            else:  # in the writes at the end: once a new temporary file shows in the folder
                while proc.poll() is None and not any(
                    name.endswith(".tmp") and name not in present for name in os.listdir(folder)
                ):
                    assert time.monotonic() < deadline, "the compose wrote nothing"
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.06))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if draft_path.exists():
                read_draft(draft_path)  # parses, or raises DraftError naming the line
            asked_after.append((len(llm.requests), cached_stories(root)))
        settle = runner.invoke(app, ["compose", "--workspace", str(root)])
        assert settle.exit_code == 0, (seed, settle.output)
        # The editor deletes two items that were composed while the kills went on.
        text = draft_path.read_text(encoding="utf-8")
        for n in DELETED_LATER:
            start = text.index(f"## Kill story {n}\n")
            end = text.find("\n## ", start + 1) + 1 or len(text)
            text = text[:start] + text[end:]
        draft_path.write_text(text, encoding="utf-8")
        last = runner.invoke(app, ["compose", "--workspace", str(root)])
        assert last.exit_code == 0, (seed, last.output)
        elapsed = time.monotonic() - started
    finally:
        llm.stop()

    final = draft_path.read_text(encoding="utf-8")
    read_draft(draft_path)
    report = {
        link["url"]: link for link in json.loads((folder / "report.json").read_text())["links"]
    }
    for n, url in enumerate(urls):
        count = final.count(f"<{url}>")
        if n in (1, *DELETED_LATER):  # deleted by the editor: never brought back
            assert count == 0, (seed, url)
            assert report[url]["status"] == "skipped", (seed, report[url])
        elif report[url]["status"] == "failed":
            assert count == 0 and report[url]["error"], (seed, report[url])
        else:
            assert count == 1, (seed, url, count)
    assert "# editor: check the title before Friday" in final
    assert "- THE EDITOR'S OWN WORDS" in final
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name == ".lock"]
    assert leftovers == [], (seed, leftovers)

    stories = [story_of(r) for r in llm.requests]
    for asked, cached in asked_after:
        again = sorted({s for s in stories[asked:] if s in cached})
        assert again == [], f"seed {seed}: summaries already received were asked again: {again}"
    per_story = Counter(s for s in stories if s is not None)
    assert sum(c - 1 for c in per_story.values()) <= KILLS * 4 + 1  # llm.concurrency per kill
    assert set(per_story) == set(range(LINKS)) or all(
        report[urls[n]]["status"] == "failed" for n in set(range(LINKS)) - set(per_story)
    )
    print(
        f"{KILLS} kills, {len(llm.requests)} LLM requests for {len(per_story)} articles "
        f"({sum(c - 1 for c in per_story.values())} asked again: in flight at a kill), "
        f"{elapsed:.1f} s"
    )
