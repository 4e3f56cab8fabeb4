"""A dead or refusing LLM endpoint: stopped at once, said plainly, counted apart, redone later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.models import Link
from tests import llm_server as fake
from tests.conftest import article_html
from tests.llm_server import LLMServer
from tests.smtp_server import free_port

runner = CliRunner()


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    server = LLMServer().start()
    yield server
    server.stop()


def _pages(web: Any, count: int) -> list[str]:
    return [
        web.page(
            f"/post-{n}",
            article_html(
                f"Release {n} of the storage engine",
                [
                    f"The storage engine shipped release {n} this week with a new compaction scheme.",
                    "Compaction now runs in the background and no longer blocks writers.",
                    "Benchmarks in the announcement show steadier latency under heavy load.",
                ],
            ),
        )
        for n in range(count)
    ]


def _workspace(make_workspace: Any, web: Any, base_url: str, count: int) -> tuple[Path, Path]:
    root: Path = make_workspace(
        f"""
        [newsletter]
        language = "en"
        [llm]
        base_url = "{base_url}"
        model = "test-model-7b"
        [fetch]
        allow_private_hosts = true
        """
    )
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text("".join(f"- {u}\n" for u in _pages(web, count)))
    return root, issue


def compose(root: Path, *args: str) -> Any:
    return runner.invoke(app, ["compose", "--workspace", str(root), *args])


def report(issue: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((issue / "report.json").read_text(encoding="utf-8"))
    return data


def test_closed_port_stops_at_once_and_every_item_is_a_reported_fallback(
    web: Any, make_workspace: Any
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    root, issue = _workspace(make_workspace, web, base_url, 20)
    result = compose(root)
    assert result.exit_code == 0, result.output
    data = report(issue)
    # One request, no retries (0.1 made 100 requests and waited out 4 backoffs per link).
    assert data["llm"]["requests"] == 1 and data["llm"]["retries"] == 0, data["llm"]
    assert "0 ok, 20 offline fallback, 0 failed" in result.output
    (unavailable,) = [w for w in data["warnings"] if w["code"] == "llm-unavailable"]
    for text in (base_url, "test-model-7b", "connection refused", "llm.base_url"):
        assert text in unavailable["message"]
        assert text in result.output
    for link in data["links"]:
        assert link["status"] == "ok" and link["summary_source"] == "offline"
        (why,) = [w for w in link["warnings"] if w["code"] == "llm-fallback"]
        assert "connection refused" in why["message"] and base_url in why["message"]
    strict = compose(root, "--strict", "--refresh-fallbacks")
    assert strict.exit_code == 1, strict.output
    assert "0 ok, 20 offline fallback" in strict.output


@pytest.mark.parametrize(
    ("reply", "hint"),
    [(fake.unauthorized(), "OPENAI_API_KEY"), (fake.model_not_found(), "llm.model")],
    ids=["401", "model-not-found"],
)
def test_refused_key_or_unknown_model_costs_one_request_not_one_per_link(
    web: Any, make_workspace: Any, llm: LLMServer, reply: fake.Scripted, hint: str
) -> None:
    llm.always = reply
    root, issue = _workspace(make_workspace, web, llm.url, 20)
    result = compose(root)
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 1, f"{len(llm.requests)} requests for 20 links"
    assert "0 ok, 20 offline fallback, 0 failed" in result.output
    assert hint in result.output and llm.url in result.output and "test-model-7b" in result.output
    assert compose(root, "--strict").exit_code == 0  # nothing new: nothing fell back this run


def test_strict_exits_1_on_a_fallback_alone(web: Any, make_workspace: Any, llm: LLMServer) -> None:
    llm.always = fake.server_error(retry_after="0")  # every retry (llm.max_retries = 4) fails
    root, issue = _workspace(make_workspace, web, llm.url, 1)
    result = compose(root, "--strict")
    assert result.exit_code == 1, result.output
    assert "0 ok, 1 offline fallback, 0 failed" in result.output


def test_refresh_fallbacks_redoes_unedited_items_and_names_edited_ones(
    web: Any, make_workspace: Any, llm: LLMServer
) -> None:
    llm.always = fake.unauthorized()
    root, issue = _workspace(make_workspace, web, llm.url, 3)
    first = compose(root)
    assert "0 ok, 3 offline fallback" in first.output
    draft_path = issue / "draft.md"
    draft = draft_path.read_text(encoding="utf-8")
    # The editor rewrites the first bullet of the item for post-1 and leaves the others alone.
    start = draft.index("/post-1")
    bullet = draft.index("\n- ", start) + 3
    end = draft.index("\n", bullet)
    edited = draft[:bullet] + "Rewritten by the editor." + draft[end:]
    draft_path.write_text(edited, encoding="utf-8")

    status = runner.invoke(app, ["status", "--workspace", str(root)])
    states = {
        line.split("/post-")[1].split()[0]: line.split("http")[0].split(maxsplit=1)[1].strip()
        for line in status.output.splitlines()
        if "/post-" in line
    }
    assert states == {"0": "fallback", "1": "in draft", "2": "fallback"}, status.output
    check = runner.invoke(app, ["check", "--workspace", str(root)])
    flagged = [
        line for line in check.output.splitlines() if "summarized by the offline fallback" in line
    ]
    assert len(flagged) == 2 and not any("/post-1" in line for line in flagged), check.output

    down = compose(root, "--refresh-fallbacks")  # the endpoint still refuses: nothing changes
    assert down.exit_code == 0, down.output
    assert draft_path.read_text(encoding="utf-8") == edited
    assert len(llm.requests) == 2  # one probe per run

    llm.always = None
    again = compose(root, "--refresh-fallbacks")
    assert again.exit_code == 0, again.output
    assert len(llm.requests) == 4, "exactly the two unedited fallback items were asked for"
    assert "2 ok, 0 offline fallback" in again.output
    assert "/post-1" in again.output and "edited since" in again.output
    text = draft_path.read_text(encoding="utf-8")
    assert "Rewritten by the editor." in text
    assert text.count("The storage engine shipped release") >= 2  # the server's bullets
    data = report(issue)
    by_url = {link["url"].rsplit("/", 1)[1]: link for link in data["links"]}
    assert by_url["post-0"]["summary_source"] == "llm"
    assert by_url["post-2"]["summary_source"] == "llm"
    assert [w["code"] for w in by_url["post-1"]["warnings"]] == ["fallback-edited"]

    check = runner.invoke(app, ["check", "--workspace", str(root)])
    assert "summarized by the offline fallback" not in check.output
    assert compose(root, "--refresh-fallbacks").exit_code == 0
    assert len(llm.requests) == 4, "nothing left to redo"


def test_a_slow_first_answer_holds_the_others_back_only_for_the_grace(llm: LLMServer) -> None:
    """The probe's answer takes 2.5 s: the others start after the grace (0.6 s), not after it."""
    from digest.config import LLMSettings, Secrets
    from digest.llm import OpenAISummarizer
    from tests.test_llm import article, run

    llm.script(fake.slow(2.5))
    summarizer = OpenAISummarizer(LLMSettings(), Secrets(), base_url=llm.url)
    summarizer.probe_grace = 0.6
    texts = [f"Article {i} says one thing. Then it says another thing." for i in range(4)]
    summaries = run(summarizer, *((article(t), Link(url=f"u{i}")) for i, t in enumerate(texts)))
    assert all(s.source == "llm" for s in summaries)
    first, *others = llm.arrivals
    # The grace counts from when the probe can be sent, and the probe may reach the server a
    # little later on a loaded machine: held back (> 0.2 s), but not for the whole answer.
    assert all(0.2 < t - first < 1.8 for t in others), [round(t - first, 2) for t in others]


def test_given_up_while_waiting_sends_nothing_more(llm: LLMServer) -> None:
    """Released after the grace, the others still stop once the probe gives the endpoint up."""
    from digest.config import LLMSettings, Secrets
    from digest.llm import OpenAISummarizer
    from tests.test_llm import article, run

    llm.script(fake.slow(0.6), *[fake.unauthorized() for _ in range(10)])
    summarizer = OpenAISummarizer(LLMSettings(concurrency=1), Secrets(), base_url=llm.url)
    summarizer.probe_grace = 0.1
    texts = [f"Article {i} says one thing. Then it says another thing." for i in range(6)]
    summaries = run(summarizer, *((article(t), Link(url=f"u{i}")) for i, t in enumerate(texts)))
    assert summaries[0].source == "llm"
    assert all(s.source == "offline" for s in summaries[1:])
    assert len(llm.requests) == 2, "one refused request, then none"
