"""`digest publish` against local servers that behave like Buttondown, listmonk and Ghost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.errors import PublishError
from tests.platform_server import (
    Answer,
    ButtondownServer,
    FakePlatform,
    GhostServer,
    ListmonkServer,
)

REPO = Path(__file__).resolve().parent.parent
SUBJECT = "Article Weekly, Issue 7 — weekly"
MARKER = "digest-article-weekly-007"
OUR_UNSUBSCRIBE = "news.example/unsub"

DRAFT = """\
+++
title = "Article Weekly, Issue 7"
number = 7
date = 2026-11-23T09:00:00+09:00
period = [2026-11-15, 2026-11-21]
authors = ["Editor"]
+++

## SQLite <script>alert("title")</script> at the Edge

<https://harbor-notes.example/posts/sqlite/>

- Reads moved to SQLite files in 14 regions <img src=x onerror=alert(1)>.
  - Snapshots ship every 30 seconds {% debug %} and %%{email}%%.

## 비동기 러스트 5년

<https://ferrous-ledger.example/blog/async-rust/>

- 결제 백엔드는 2021년부터 비동기 러스트로 작성되었다.
"""

HOSTILE_RAW = ("<script", "<img src=x", "{% debug %}", "%%{email}%%", "{{ 7*7 }}")


def settings(servers: dict[str, FakePlatform]) -> str:
    return f"""
[newsletter]
name = "Article Weekly"
language = "en"
web_url = "https://blog.example/posts/issue-{{number}}/"

[email]
subject = "{{title}} — weekly"
unsubscribe = "https://{OUR_UNSUBSCRIBE}?e={{email}}"

[publish.buttondown]
url = "{servers["buttondown"].url}"

[publish.listmonk]
url = "{servers["listmonk"].url}"
list_ids = [3]
template_id = 5

[publish.ghost]
url = "{servers["ghost"].url}"
newsletter = "weekly"

[publish.hugo]
content_dir = "site/content/posts"
"""


@pytest.fixture
def servers() -> Iterator[dict[str, FakePlatform]]:
    started: dict[str, FakePlatform] = {
        "buttondown": ButtondownServer().start(),
        "listmonk": ListmonkServer().start(),
        "ghost": GhostServer().start(),
    }
    yield started
    for server in started.values():
        server.stop()
    for name, server in started.items():  # every request was as the platform documents it
        assert server.problems == [], name


def keys(servers: dict[str, FakePlatform]) -> dict[str, str]:
    bd, lm, gh = servers["buttondown"], servers["listmonk"], servers["ghost"]
    assert isinstance(bd, ButtondownServer) and isinstance(lm, ListmonkServer)
    assert isinstance(gh, GhostServer)
    return {
        "BUTTONDOWN_API_KEY": bd.key,
        "LISTMONK_USER": lm.user,
        "LISTMONK_TOKEN": lm.token,
        "GHOST_ADMIN_API_KEY": gh.admin_key,
    }


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def output(result: Any) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.fixture
def ws(
    make_workspace: Any, servers: dict[str, FakePlatform], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A workspace with a rendered issue 007 and every platform's key in the environment."""
    root: Path = make_workspace(settings(servers))
    (root / "site" / "content" / "posts").mkdir(parents=True)
    folder = root / "issues" / "007"
    folder.mkdir()
    (folder / "draft.md").write_text(DRAFT, encoding="utf-8")
    result = run("render", "007", "-w", str(root))
    assert result.exit_code == 0, output(result)
    for name, value in keys(servers).items():
        monkeypatch.setenv(name, value)
    return root


def publish(root: Path, *args: str) -> Any:
    return run("publish", "007", "-w", str(root), *args)


def published(root: Path) -> dict[str, Any]:
    path = root / "issues" / "007" / "published.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def drafts(server: FakePlatform) -> list[dict[str, Any]]:
    if isinstance(server, ButtondownServer):
        return list(server.emails.values())
    if isinstance(server, ListmonkServer):
        return list(server.campaigns.values())
    assert isinstance(server, GhostServer)
    return list(server.posts.values())


def writes(server: FakePlatform) -> list[Any]:
    return [c for c in server.calls if c.method in ("POST", "PUT", "PATCH")]


# ------------------------------------------------------------------ requests as documented


def test_buttondown_draft_created_then_updated(ws: Path, servers: dict[str, Any]) -> None:
    server: ButtondownServer = servers["buttondown"]
    first = publish(ws, "--to", "buttondown")
    assert first.exit_code == 0, output(first)
    second = publish(ws, "--to", "buttondown")
    assert second.exit_code == 0, output(second)
    assert server.problems == []
    (email,) = drafts(server)
    create, update = writes(server)
    assert (create.method, create.path) == ("POST", "/v1/emails")
    assert create.headers["authorization"] == f"Token {server.key}"
    body = create.json
    assert body["status"] == "draft" and body["subject"] == SUBJECT
    assert body["metadata"] == {"digest_issue": MARKER} and body["secondary_id"] == 7
    assert body["description"]  # the preheader
    assert not body["body"].startswith("+++")  # Buttondown refuses front matter
    assert "## Period" in body["body"] and "## References" in body["body"]
    assert "https://harbor-notes.example/posts/sqlite/" in body["body"]
    assert (update.method, update.path) == ("PATCH", f"/v1/emails/{email['id']}")
    assert "status" not in update.json  # an update leaves the draft a draft
    record = published(ws)["buttondown"]
    assert record["id"] == email["id"] and record["state"] == "draft"
    assert record["url"].endswith(email["id"])
    assert f"buttondown: draft saved ({email['id']})" in first.output


def test_listmonk_campaign_created_then_updated(ws: Path, servers: dict[str, Any]) -> None:
    server: ListmonkServer = servers["listmonk"]
    assert publish(ws, "--to", "listmonk").exit_code == 0
    result = publish(ws, "--to", "listmonk")
    assert result.exit_code == 0, output(result)
    assert server.problems == []
    (campaign,) = drafts(server)
    create, update = writes(server)
    assert (create.method, create.path) == ("POST", "/api/campaigns")
    assert create.headers["authorization"] == f"token {server.user}:{server.token}"
    body = create.json
    assert body["name"] == "Article Weekly, Issue 7" and body["subject"] == SUBJECT
    assert body["lists"] == [3] and body["template_id"] == 5
    assert body["content_type"] == "html" and body["type"] == "regular"
    assert body["tags"] == [MARKER]
    assert "<html" in body["body"] and "Issue 7" in body["altbody"]
    assert (update.method, update.path) == ("PUT", f"/api/campaigns/{campaign['id']}")
    assert published(ws)["listmonk"]["id"] == str(campaign["id"])
    assert published(ws)["listmonk"]["url"].endswith(f"/admin/campaigns/{campaign['id']}")


def test_ghost_post_created_then_updated(ws: Path, servers: dict[str, Any]) -> None:
    server: GhostServer = servers["ghost"]
    assert publish(ws, "--to", "ghost").exit_code == 0
    before = drafts(server)[0]["updated_at"]
    result = publish(ws, "--to", "ghost")
    assert result.exit_code == 0, output(result)
    assert server.problems == []  # every request carried a valid 5-minute HS256 token
    (post,) = drafts(server)
    create, update = writes(server)
    assert (create.method, create.path, create.query) == (
        "POST",
        "/ghost/api/admin/posts/",
        {"source": ["html"]},
    )
    assert create.headers["authorization"].startswith("Ghost ")
    new = create.json["posts"][0]
    assert new["status"] == "draft" and new["title"] == "Article Weekly, Issue 7"
    assert new["email_subject"] == SUBJECT and new["tags"] == [{"name": f"#{MARKER}"}]
    # The issue's body as plain HTML: Ghost frames it (title, header, unsubscribe) itself.
    assert "<h2>" in new["html"] and "<li>" in new["html"] and "<a href=" in new["html"]
    assert "<table" not in new["html"] and "<body" not in new["html"]
    assert new["title"] not in new["html"] and "%%{unsubscribe_url}%%" not in new["html"]
    assert (update.method, update.path) == ("PUT", f"/ghost/api/admin/posts/{post['id']}/")
    assert update.json["posts"][0]["updated_at"] == before  # Ghost refuses a stale one
    assert published(ws)["ghost"]["url"].endswith(f"/ghost/#/editor/post/{post['id']}")


@pytest.mark.parametrize(
    ("platform", "placeholder"),
    [
        ("buttondown", "{{ unsubscribe_url }}"),
        ("listmonk", "{{ UnsubscribeURL }}"),
        ("ghost", "%%{unsubscribe_url}%%"),
    ],
)
def test_platform_placeholder_and_nothing_hostile_unescaped(
    ws: Path, servers: dict[str, Any], platform: str, placeholder: str
) -> None:
    draft = ws / "issues" / "007" / "draft.md"  # `digest check` refuses {{ }} only for sending
    draft.write_text(DRAFT.replace("30 seconds", "30 seconds {{ 7*7 }}"), encoding="utf-8")
    assert run("render", "007", "-w", str(ws)).exit_code == 0
    result = publish(ws, "--to", platform)
    assert result.exit_code == 0, output(result)
    (create,) = writes(servers[platform])
    body = create.json
    sent = {
        "buttondown": [body.get("body", "")],
        "listmonk": [body.get("body", ""), body.get("altbody", "")],
        "ghost": [body["posts"][0]["html"]] if platform == "ghost" else [],
    }[platform]
    for index, text in enumerate(sent):
        # Ghost's email template adds its own unsubscribe link; on the web it would be dead.
        assert (placeholder in text) != (platform == "ghost")
        assert OUR_UNSUBSCRIBE not in text and "digest.invalid" not in text
        # the plain-text edition (listmonk's altbody) is not HTML: only its template syntax
        for raw in HOSTILE_RAW if index == 0 else HOSTILE_RAW[2:]:
            assert raw not in text, (raw, platform)
    html = sent[0]
    if platform == "buttondown":  # Markdown: the link and the escaped text
        assert f"]({placeholder})" in html
        assert "&lt;script>alert" in html and "&#123;&#123; 7*7 }}" in html
    else:
        assert (f'href="{placeholder}"' in html) != (platform == "ghost")
        assert "&lt;script&gt;alert" in html and "&#123;&#123; 7*7 }}" in html


# ------------------------------------------------------------------ exactly one draft


@pytest.mark.parametrize("platform", ["buttondown", "listmonk", "ghost"])
def test_killed_between_create_and_record_leaves_one_draft(
    ws: Path, servers: dict[str, Any], platform: str
) -> None:
    server: FakePlatform = servers[platform]
    server.hold_after_create = 30  # the draft exists, the answer has not come back yet
    env = {**os.environ, **keys(servers)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "publish", "007", "--to", platform, "-w", str(ws)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.created.wait(30), "the subprocess never created the draft"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(drafts(server)) == 1 and published(ws) == {}
    server.hold_after_create = 0
    again = publish(ws, "--to", platform)
    assert again.exit_code == 0, output(again)
    assert len(drafts(server)) == 1, "a second draft was made"
    assert f"found the {platform} draft" in again.output
    assert published(ws)[platform]["id"] == str(drafts(server)[0]["id"])
    assert server.problems == []


@pytest.mark.parametrize("platform", ["buttondown", "listmonk", "ghost"])
def test_draft_deleted_on_the_platform_is_made_again(
    ws: Path, servers: dict[str, Any], platform: str
) -> None:
    server: Any = servers[platform]
    assert publish(ws, "--to", platform).exit_code == 0
    old = published(ws)[platform]["id"]
    store = {"buttondown": "emails", "listmonk": "campaigns", "ghost": "posts"}[platform]
    getattr(server, store).clear()  # the editor deleted it on the platform
    result = publish(ws, "--to", platform)
    assert result.exit_code == 0, output(result)
    assert f"the {platform} draft {old} recorded in published.json is gone" in result.output
    (draft,) = drafts(server)
    assert published(ws)[platform]["id"] == str(draft["id"]) != old


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("platform", "variable"),
    [
        ("buttondown", "BUTTONDOWN_API_KEY"),
        ("listmonk", "LISTMONK_TOKEN"),
        ("ghost", "GHOST_ADMIN_API_KEY"),
    ],
)
def test_refused_key_names_the_variable_and_is_never_printed(
    ws: Path, servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, platform: str, variable: str
) -> None:
    wrong = "0123abcd:" + "ab" * 32 if platform == "ghost" else "wrong-secret-value"
    monkeypatch.setenv(variable, wrong)
    result = publish(ws, "--to", platform)
    assert result.exit_code == 1
    text = output(result)
    assert variable in text and "HTTP 40" in text
    assert wrong not in text and wrong.split(":")[-1] not in text
    assert published(ws) == {}


@pytest.mark.parametrize(
    ("platform", "variable"),
    [
        ("buttondown", "BUTTONDOWN_API_KEY"),
        ("listmonk", "LISTMONK_USER"),
        ("ghost", "GHOST_ADMIN_API_KEY"),
    ],
)
def test_missing_key_is_a_one_line_error(
    ws: Path, servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, platform: str, variable: str
) -> None:
    monkeypatch.delenv(variable)
    result = publish(ws, "--to", platform)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and "Traceback" not in lines[0]
    assert servers[platform].calls == []


def test_422_quotes_the_platforms_reason(ws: Path, servers: dict[str, Any]) -> None:
    server: ButtondownServer = servers["buttondown"]
    detail = [{"type": "value_error", "loc": ["body", "subject"], "msg": "Subject is too spammy"}]
    server.inject("POST", "/v1/emails", Answer(422, {"detail": detail}))
    result = publish(ws, "--to", "buttondown")
    assert result.exit_code == 1
    assert "HTTP 422" in output(result) and "subject: Subject is too spammy" in output(result)
    assert published(ws) == {}


def test_413_says_what_was_too_large(ws: Path, servers: dict[str, Any]) -> None:
    server: GhostServer = servers["ghost"]
    error = {
        "message": "Request is larger than the maximum allowed size.",
        "type": "RequestEntityTooLargeError",
    }
    server.inject("POST", "/ghost/api/admin/posts/", Answer(413, {"errors": [error]}))
    result = publish(ws, "--to", "ghost")
    assert result.exit_code == 1
    text = " ".join(output(result).split())
    assert "Ghost refused the new post as too large (HTTP 413" in text
    assert "larger than the maximum allowed size" in text
    assert drafts(server) == [] and published(ws) == {}


def test_429_waits_as_retry_after_says(ws: Path, servers: dict[str, Any]) -> None:
    server: ListmonkServer = servers["listmonk"]
    server.inject(
        "POST", "/api/campaigns", Answer(429, {"message": "slow down"}, {"Retry-After": "1"})
    )
    started = time.monotonic()
    result = publish(ws, "--to", "listmonk")
    assert result.exit_code == 0, output(result)
    assert time.monotonic() - started >= 1.0
    assert len(drafts(server)) == 1
    assert [c.method for c in server.calls if c.path == "/api/campaigns"] == ["GET", "POST", "POST"]


def test_429_longer_than_the_deadline_gives_up_at_once(ws: Path, servers: dict[str, Any]) -> None:
    server: GhostServer = servers["ghost"]
    limited = Answer(
        429,
        {"errors": [{"message": "Too many requests.", "type": "TooManyRequestsError"}]},
        {"Retry-After": "3600"},
    )
    server.inject("GET", "/ghost/api/admin/posts/", limited)
    started = time.monotonic()
    result = publish(ws, "--to", "ghost")
    assert result.exit_code == 1 and time.monotonic() - started < 5
    assert "HTTP 429" in output(result) and "3600 s" in output(result)
    assert drafts(server) == [] and published(ws) == {}


def test_500_is_retried_then_given_up(ws: Path, servers: dict[str, Any]) -> None:
    server: ButtondownServer = servers["buttondown"]
    broken = Answer(500, {"detail": "Internal server error"}, {"Retry-After": "0"})
    server.inject("POST", "/v1/emails", broken, times=2)
    result = publish(ws, "--to", "buttondown")
    assert result.exit_code == 0, output(result)
    assert len([c for c in server.calls if c.method == "POST"]) == 3
    assert len(drafts(server)) == 1

    server.inject("PATCH", "/v1/emails/", broken, times=99)
    result = publish(ws, "--to", "buttondown")
    assert result.exit_code == 1
    assert "HTTP 500" in output(result) and "5 attempt(s)" in output(result)
    assert len([c for c in server.calls if c.method == "PATCH"]) == 5  # bounded


@pytest.mark.parametrize("platform", ["buttondown", "listmonk", "ghost"])
def test_a_502_to_a_create_that_was_done_leaves_one_draft(
    ws: Path, servers: dict[str, Any], platform: str
) -> None:
    """The platform made the draft, then its gateway answered 502: no second draft."""
    server: FakePlatform = servers[platform]
    server.fail_after_create = 1
    result = publish(ws, "--to", platform)
    assert result.exit_code == 0, output(result)
    assert len(drafts(server)) == 1, "a second draft was made"
    assert f"found the {platform} draft" in output(result)
    assert published(ws)[platform]["id"] == str(drafts(server)[0]["id"])
    assert server.problems == []

    # A platform that is down (502, nothing made): bounded, and the message says so.
    store = {"buttondown": "emails", "listmonk": "campaigns", "ghost": "posts"}[platform]
    getattr(server, store).clear()
    (ws / "issues" / "007" / "published.json").unlink()
    path = {"buttondown": "/v1/emails", "listmonk": "/api/campaigns", "ghost": "/ghost/api"}
    down = Answer(502, {"detail": "Bad gateway"}, {"Retry-After": "0"})
    server.inject("POST", path[platform], down, times=99)
    posts = len([c for c in server.calls if c.method == "POST"])
    result = publish(ws, "--to", platform)
    assert result.exit_code == 1
    text = " ".join(output(result).split())
    assert "HTTP 502" in text and "5 attempt(s)" in text and "created all the same" in text
    assert len([c for c in server.calls if c.method == "POST"]) - posts == 5
    assert published(ws) == {} and drafts(server) == []


def test_a_failing_create_backs_off_and_looks_up_the_marker_each_time(
    ws: Path, servers: dict[str, Any]
) -> None:
    """No Retry-After: the waits grow like every other retry (not 5 quick tries)."""
    from digest.providers import make_platform
    from digest.publish import _create, build_content
    from digest.workspace import Workspace

    server: ButtondownServer = servers["buttondown"]
    server.inject("POST", "/v1/emails", Answer(503, {"detail": "Service unavailable"}), times=99)
    workspace = Workspace.load(explicit=ws)
    platform = make_platform("buttondown", workspace.settings.publish, workspace.secrets, ws)
    content = build_content(workspace, workspace.issue("007"), platform.unsubscribe_placeholder)
    waits: list[float] = []
    try:
        with pytest.raises(PublishError, match="5 attempt"):
            _create(platform, "buttondown", content, print, sleep=waits.append)
    finally:
        platform.close()
    # backoff(n) is 2**n s jittered ±50 %: the last wait is at least 4 s (it was ≤ 1.5 s).
    assert len(waits) == 4 and waits[-1] >= 4 and sum(waits) >= 7.5, waits
    lookups = [c for c in server.calls if c.method == "GET" and c.path == "/v1/emails"]
    assert len(lookups) == 4  # one marker lookup before each new try


def test_a_ghost_update_answered_502_is_sent_again_with_a_fresh_updated_at(
    ws: Path, servers: dict[str, Any]
) -> None:
    """Ghost saved the update, its gateway answered 502: the retry re-reads `updated_at`
    (it was refused as a collision, 409, with the stale one)."""
    server: GhostServer = servers["ghost"]
    assert publish(ws, "--to", "ghost").exit_code == 0
    server.break_after("PUT", "/ghost/api/admin/posts/")
    result = publish(ws, "--to", "ghost")
    assert result.exit_code == 0, output(result)
    assert len(drafts(server)) == 1 and server.problems == []


def test_no_answer_to_create_says_the_draft_may_exist(ws: Path, servers: dict[str, Any]) -> None:
    server: ButtondownServer = servers["buttondown"]
    server.inject("POST", "/v1/emails", Answer(0))
    result = publish(ws, "--to", "buttondown")
    assert result.exit_code == 1
    text = " ".join(output(result).split())
    assert "may have been created" in text and "published.json was not changed" in text
    assert published(ws) == {}


def test_no_answer_to_update_leaves_published_json_as_it_was(
    ws: Path, servers: dict[str, Any]
) -> None:
    server: ListmonkServer = servers["listmonk"]
    assert publish(ws, "--to", "listmonk").exit_code == 0
    before = (ws / "issues" / "007" / "published.json").read_bytes()
    server.stop()
    result = publish(ws, "--to", "listmonk")
    assert result.exit_code == 1
    text = " ".join(output(result).split())
    assert "no answer from listmonk" in text and "may or may not have been updated" in text
    assert (ws / "issues" / "007" / "published.json").read_bytes() == before


def test_ghost_unknown_newsletter_is_named(ws: Path, servers: dict[str, Any]) -> None:
    server: GhostServer = servers["ghost"]
    server.newsletters = {"monthly"}
    result = publish(ws, "--to", "ghost", "--send-now", "--yes")
    assert result.exit_code == 1
    assert "HTTP 404" in output(result) and "weekly" in output(result)
    assert published(ws)["ghost"]["state"] == "draft"  # the draft is saved and recorded


def test_listmonk_unknown_list_quotes_listmonk(
    ws: Path, servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_PUBLISH__PLATFORM", "listmonk")
    toml = ws / "digest.toml"
    toml.write_text(toml.read_text().replace("list_ids = [3]", "list_ids = [99]"))
    result = publish(ws)  # --to from publish.platform
    assert result.exit_code == 1
    assert "HTTP 400" in output(result) and "no subscribers in the selected lists" in output(result)


# ------------------------------------------------------------------ sending and scheduling


def test_send_now_needs_a_confirmation(ws: Path, servers: dict[str, Any]) -> None:
    result = publish(ws, "--to", "buttondown", "--send-now")
    assert result.exit_code == 1
    assert "needs a confirmation" in output(result)
    assert servers["buttondown"].calls == []


def test_send_now_is_gated_by_check(ws: Path, servers: dict[str, Any]) -> None:
    draft = ws / "issues" / "007" / "draft.md"
    draft.write_text(DRAFT + "\n## An item without bullets\n\n<https://e.example/x>\n")
    assert run("render", "007", "-w", str(ws)).exit_code == 0
    result = publish(ws, "--to", "buttondown", "--send-now", "--yes")
    assert result.exit_code == 1 and "digest check 007" in output(result)
    assert servers["buttondown"].calls == []
    assert publish(ws, "--to", "buttondown").exit_code == 0  # a draft is still allowed


def test_buttondown_send_now_and_status(ws: Path, servers: dict[str, Any]) -> None:
    server: ButtondownServer = servers["buttondown"]
    result = publish(ws, "--to", "buttondown", "--send-now", "--yes")
    assert result.exit_code == 0, output(result)
    assert server.problems == []
    send = writes(server)[-1]
    assert send.json == {"status": "about_to_send"}
    assert send.headers["x-buttondown-live-dangerously"] == "true"
    record = published(ws)["buttondown"]
    assert record["state"] == "sent"
    status = run("status", "007", "-w", str(ws))
    assert f"published: buttondown sent {record['id']}" in status.output
    again = publish(ws, "--to", "buttondown")
    assert again.exit_code == 1 and "already sent" in output(again)


def test_listmonk_schedule(ws: Path, servers: dict[str, Any]) -> None:
    server: ListmonkServer = servers["listmonk"]
    result = publish(ws, "--to", "listmonk", "--schedule", "2099-01-05T09:00+09:00", "--yes")
    assert result.exit_code == 0, output(result)
    assert server.problems == []
    (campaign,) = drafts(server)
    assert campaign["status"] == "scheduled" and campaign["send_at"].startswith("2099-01-05T09:00")
    assert [(c.method, c.path) for c in writes(server)][-1] == (
        "PUT",
        f"/api/campaigns/{campaign['id']}/status",
    )
    assert published(ws)["listmonk"]["state"] == "scheduled"


def test_buttondown_and_ghost_schedule(ws: Path, servers: dict[str, Any]) -> None:
    when = "2099-01-05T09:00"  # newsletter.timezone (Asia/Seoul): 00:00 UTC
    assert publish(ws, "--to", "buttondown", "--schedule", when, "--yes").exit_code == 0
    last = writes(servers["buttondown"])[-1]
    assert last.json == {"status": "scheduled", "publish_date": "2099-01-05T09:00:00+09:00"}
    assert publish(ws, "--to", "ghost", "--schedule", when, "--yes").exit_code == 0
    last = writes(servers["ghost"])[-1]
    assert last.query == {"newsletter": ["weekly"]}
    post = last.json["posts"][0]
    assert (post["status"], post["published_at"]) == ("scheduled", "2099-01-05T00:00:00.000Z")
    assert {p["state"] for p in published(ws).values()} == {"scheduled"}


def test_platform_must_be_named(ws: Path) -> None:
    result = publish(ws)
    assert result.exit_code == 1 and "pass --to buttondown | listmonk" in output(result)
    result = publish(ws, "--to", "mailchimp")
    assert result.exit_code == 1 and "unknown platform" in output(result)
    result = publish(ws, "--to", "ghost", "--send-now", "--schedule", "2099-01-01T00:00")
    assert result.exit_code == 2


def test_ghost_send_now_publishes_with_the_newsletter(ws: Path, servers: dict[str, Any]) -> None:
    server: GhostServer = servers["ghost"]
    result = publish(ws, "--to", "ghost", "--send-now", "--yes")
    assert result.exit_code == 0, output(result)
    assert server.problems == []
    last = writes(server)[-1]
    assert last.query == {"newsletter": ["weekly"]}
    assert last.json["posts"][0]["status"] == "published"
    assert drafts(server)[0]["email"]["status"] == "submitted"
    assert published(ws)["ghost"]["state"] == "sent"


@pytest.mark.parametrize(
    ("platform", "method", "path", "flags", "state"),
    [
        ("buttondown", "PATCH", "/v1/emails/", ["--send-now"], "sent"),
        ("listmonk", "PUT", "/api/campaigns/1/status", ["--send-now"], "sent"),
        (
            "listmonk",
            "PUT",
            "/api/campaigns/1/status",
            ["--schedule", "2099-01-05T09:00"],
            "scheduled",
        ),
        ("ghost", "PUT", "/ghost/api/admin/posts/", ["--send-now"], "sent"),
    ],
)
def test_a_send_answered_502_is_not_sent_again(
    ws: Path,
    servers: dict[str, Any],
    platform: str,
    method: str,
    path: str,
    flags: list[str],
    state: str,
) -> None:
    """The platform started sending, then its gateway answered 502: digest asks the platform
    where the issue is instead of sending again (which was refused, or sent twice)."""
    server: FakePlatform = servers[platform]
    assert publish(ws, "--to", platform).exit_code == 0  # the draft
    # The release comes after the update of the draft (same method and path but listmonk's).
    server.break_after(method, path, skip=0 if platform == "listmonk" else 1)
    sends = len(writes(server))
    result = publish(ws, "--to", platform, *flags, "--yes")
    assert result.exit_code == 0, output(result)
    assert f"{platform} did not confirm, but the issue is {state} there now" in output(result)
    assert published(ws)[platform]["state"] == state
    releases = [c for c in writes(server)[sends:] if c.method == method and c.path.startswith(path)]
    # One release: the update of the draft, then the send (Ghost: `?newsletter=` marks it).
    assert len(releases) == (1 if platform == "listmonk" else 2), releases
    assert len([c for c in writes(server)[sends:] if "newsletter" in c.query]) == (
        1 if platform == "ghost" else 0
    )
    assert server.problems == []


def lose_sends(server: FakePlatform) -> list[Any]:
    """Answer every send or schedule request with 502 without doing it; the list of them."""
    lost: list[Any] = []
    original = server.handle

    def handle(call: Any) -> Answer:
        body = call.json if isinstance(call.json, dict) else {}
        if (
            body.get("status") in ("about_to_send", "scheduled", "running")  # Buttondown, listmonk
            or "newsletter" in call.query  # Ghost publishes with ?newsletter=
        ):
            lost.append(call)
            return Answer(502, {"detail": "Bad gateway"}, {"Retry-After": "0"})
        return original(call)

    server.handle = handle  # type: ignore[method-assign]
    return lost


@pytest.mark.parametrize("platform", ["buttondown", "listmonk", "ghost"])
def test_a_send_answered_502_that_was_not_done_is_not_repeated(
    ws: Path, servers: dict[str, Any], platform: str
) -> None:
    """502 and the platform still shows the draft: said plainly, never sent again on its own
    (a gateway may answer while the platform is still working on it)."""
    server: FakePlatform = servers[platform]
    assert publish(ws, "--to", platform).exit_code == 0
    lost = lose_sends(server)
    result = publish(ws, "--to", platform, "--send-now", "--yes")
    assert result.exit_code == 1
    text = " ".join(output(result).split())
    assert "HTTP 502" in text and "still shows the issue as draft" in text
    assert "never sends twice" in text and "Traceback" not in text
    assert len(lost) == 1
    assert published(ws)[platform]["state"] == "draft"


def test_a_new_schedule_answered_502_is_not_taken_for_done(
    ws: Path, servers: dict[str, Any]
) -> None:
    """Already scheduled; moving it answered 502 and not done: the state reads 'scheduled'
    all the same, which must not pass for success."""
    server: ButtondownServer = servers["buttondown"]
    first = publish(ws, "--to", "buttondown", "--schedule", "2099-01-05T09:00", "--yes")
    assert first.exit_code == 0, output(first)
    lost = lose_sends(server)
    result = publish(ws, "--to", "buttondown", "--schedule", "2099-03-01T09:00", "--yes")
    assert result.exit_code == 1, output(result)
    assert "still shows the issue as scheduled" in " ".join(output(result).split())
    assert len(lost) == 1
    (email,) = drafts(server)
    assert email["publish_date"].startswith("2099-01-05")


def test_schedule_in_the_past_is_refused(ws: Path, servers: dict[str, Any]) -> None:
    result = publish(ws, "--to", "ghost", "--schedule", "2001-01-01T09:00", "--yes")
    assert result.exit_code == 1 and "in the past" in output(result)
    assert servers["ghost"].calls == []


# ------------------------------------------------------------------ Hugo


def _hugo_site(ws: Path) -> Path:
    site = ws / "site"
    (site / "hugo.toml").write_text('baseURL = "https://blog.example/"\ntitle = "Blog"\n')
    layouts = site / "layouts" / "_default"
    layouts.mkdir(parents=True)
    (layouts / "single.html").write_text(
        "<!DOCTYPE html><html><head><title>{{ .Title }}</title></head><body>"
        '<h1>{{ .Title }}</h1><time>{{ .Date.Format "2006-01-02" }}</time>'
        "{{ .Content }}</body></html>\n"
    )
    (layouts / "list.html").write_text("<html><body>{{ .Title }}</body></html>\n")
    return site


def _build(site: Path) -> Path:
    done = subprocess.run(
        ["hugo", "--quiet", "--source", str(site)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return site / "public" / "posts" / "issue-7" / "index.html"


@pytest.mark.skipif(
    subprocess.run(["which", "hugo"], capture_output=True).returncode != 0,
    reason="the hugo binary is not installed (apt-get install hugo; .ci/run does it)",
)
def test_hugo_page_bundle_builds_into_the_post(ws: Path) -> None:
    site = _hugo_site(ws)
    result = publish(ws, "--to", "hugo")
    assert result.exit_code == 0, output(result)
    bundle = site / "content" / "posts" / "issue-7" / "index.md"
    assert 'digest_issue = "digest-article-weekly-007"' in bundle.read_text()
    assert not _build(site).exists()  # a draft: not built without --buildDrafts

    result = publish(ws, "--to", "hugo", "--send-now", "--yes")
    assert result.exit_code == 0, output(result)
    assert published(ws)["hugo"] == {
        **published(ws)["hugo"],
        "id": "issue-7/index.md",
        "state": "published",
        "url": "https://blog.example/posts/issue-7/",
    }
    page = _build(site).read_text(encoding="utf-8")
    assert "<title>Article Weekly, Issue 7</title>" in page
    assert "<time>2026-11-23</time>" in page
    assert "Period" in page and "2026-11-15" in page and "2026-11-21" in page
    assert "비동기 러스트 5년" in page and "SQLite" in page
    assert "결제 백엔드는 2021년부터" in page
    assert "References" in page
    assert "https://harbor-notes.example/posts/sqlite/" in page
    assert "https://ferrous-ledger.example/blog/async-rust/" in page
    for raw in HOSTILE_RAW[:2]:  # on a web page, template syntax is plain text
        assert raw not in page
    assert "&lt;script&gt;alert" in page and "&lt;img src=x" in page

    assert publish(ws, "--to", "hugo").exit_code == 0  # an update keeps it published
    assert "draft = false" in bundle.read_text()
    assert len(list((site / "content" / "posts").iterdir())) == 1
