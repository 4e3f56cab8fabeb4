"""`digest send`: SMTP against aiosmtpd, Postmark against a local HTTP server, exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.send import Pacer, SendRequest, read_list, send_issue
from digest.workspace import Workspace
from tests.smtp_server import (
    Authenticator,
    Mailbox,
    free_port,
    make_certificate,
    server_tls_context,
    smtp_server,
)
from tests.webserver import Reply, Request, WebServer

REPO = Path(__file__).resolve().parent.parent

DRAFT = """\
+++
title = "Article Weekly, Issue 7"
number = 7
date = 2026-11-23T09:00:00+09:00
period = [2026-11-15, 2026-11-21]
authors = ["Editor"]
+++

## SQLite at the Edge

<https://harbor-notes.example/posts/sqlite/>

- Reads moved to SQLite files in 14 regions.
  - Snapshots ship every 30 seconds.

## 비동기 러스트 5년

<https://ferrous-ledger.example/blog/async-rust/>

- 결제 백엔드는 2021년부터 비동기 러스트로 작성되었다.
"""

LIST = """\
email,name
kim@example.com,김철수
Lee@Example.com,"Lee, Young-hee"
park@example.org,
"""


def settings_toml(
    port: int,
    *,
    extra_send: str = "",
    unsubscribe: str = "https://news.example/unsub?e={email}&l=weekly",
) -> str:
    return f"""
[newsletter]
name = "Article Weekly"

[email]
from = "편집자 <editor@news.example>"
reply_to = "Replies <replies@news.example>"
subject = "{{title}} — 이번 주 요약"
unsubscribe = "{unsubscribe}"

[send]
provider = "smtp"
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "none"
rate_per_second = 1000
smtp_timeout = 5
{extra_send}
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def issue(make_workspace: Any) -> Any:
    """A workspace factory: settings for a port, a rendered issue 007, a readers.csv."""

    def make(port: int, draft: str = DRAFT, readers: str = LIST, **kwargs: Any) -> Path:
        root: Path = make_workspace(settings_toml(port, **kwargs))
        folder = root / "issues" / "007"
        folder.mkdir()
        (folder / "draft.md").write_text(draft, encoding="utf-8")
        (root / "readers.csv").write_text(readers, encoding="utf-8")
        result = run("render", "007", "-w", str(root))
        assert result.exit_code == 0, result.output
        return root

    return make


def send(root: Path, *args: str) -> Any:
    return run("send", "007", "-w", str(root), *args)


def sent_lines(root: Path) -> list[dict[str, Any]]:
    path = root / "issues" / "007" / "sent.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def output(result: Any) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


# ---------------------------------------------------------------- SMTP


def test_one_message_per_reader_with_headers_and_parts(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert result.exit_code == 0, output(result)

    assert [m.rcpt_tos for m in box.messages] == [
        ["kim@example.com"],
        ["Lee@Example.com"],
        ["park@example.org"],
    ]
    assert len({m.peer for m in box.messages}) == 1, "one connection reused for the batch"
    ids = set()
    for received in box.messages:
        msg = received.parsed()
        assert received.mail_from == "editor@news.example"
        assert msg["From"].addresses[0].display_name == "편집자"
        assert msg["Reply-To"].addresses[0].addr_spec == "replies@news.example"
        (to,) = msg["To"].addresses
        assert to.addr_spec == received.rcpt_tos[0]
        assert msg["Subject"] == "Article Weekly, Issue 7 — 이번 주 요약"
        assert msg["Date"].datetime is not None
        ids.add(msg["Message-ID"])
        assert msg["Message-ID"].endswith("@news.example>")
        assert msg.get_content_type() == "multipart/alternative"
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert plain is not None and html is not None
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        encoded = to.addr_spec.replace("@", "%40")
        link = f"https://news.example/unsub?e={encoded}&l=weekly"
        assert msg["List-Unsubscribe"].strip() == f"<{link}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "비동기 러스트 5년" in plain.get_content()
        assert link in plain.get_content()
        assert link.replace("&", "&amp;") in html.get_content()
        assert "{email}" not in plain.get_content() and "{email}" not in html.get_content()
    assert len(ids) == 3
    # Korean display name survives the round trip, and is encoded on the wire
    first = box.messages[0]
    assert first.parsed()["To"].addresses[0].display_name == "김철수"
    assert b"=?utf-8?" in first.content.split(b"\r\n\r\n")[0]
    assert box.messages[1].parsed()["To"].addresses[0].display_name == "Lee, Young-hee"
    log = sent_lines(root)
    assert [e["email"] for e in log] == ["kim@example.com", "Lee@Example.com", "park@example.org"]
    assert all(
        e["provider"] == "smtp" and e["message_id"] and e["time"] and "test" not in e for e in log
    )
    assert {e["message_id"] for e in log} == ids


def test_interrupted_batch_resumes_and_mails_each_reader_once(issue: Any) -> None:
    readers = "email\n" + "".join(f"reader{i}@example.com\n" for i in range(6))
    with smtp_server(Mailbox(hang_up_after=2)) as (box, port):
        root = issue(port, readers=readers)
        first = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert first.exit_code == 1
        text = output(first)
        assert "2 sent" in text and "4 remain" in text and "Traceback" not in text
        assert "421" in text
        assert len(sent_lines(root)) == 2

        box.hang_up_after = None
        second = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert second.exit_code == 0, output(second)
        assert "2 reader(s) already received it" in output(second)

        third = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert third.exit_code == 0, output(third)
        assert "nothing to send" in output(third)

    delivered = Counter(m.rcpt_tos[0] for m in box.messages)
    assert delivered == Counter({f"reader{i}@example.com": 1 for i in range(6)})
    assert sorted(e["email"] for e in sent_lines(root)) == sorted(delivered)


def test_dropped_connection_is_reconnected_once(issue: Any) -> None:
    with smtp_server(Mailbox(hang_up_at={1})) as (box, port):
        root = issue(port)
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert result.exit_code == 0, output(result)
    assert [m.rcpt_tos[0] for m in box.messages] == [
        "kim@example.com",
        "Lee@Example.com",
        "park@example.org",
    ]
    assert len({m.peer for m in box.messages}) == 2


def test_dry_run_writes_eml_and_sends_nothing(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port, unsubscribe="mailto:leave@news.example?subject=unsubscribe%20{email}")
        result = send(root, "--list", str(root / "readers.csv"), "--dry-run")
        assert result.exit_code == 0, output(result)
    assert box.messages == []
    assert sent_lines(root) == []
    files = sorted((root / "issues" / "007" / "outbox").glob("*.eml"))
    assert len(files) == 3
    msg = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"].addresses[0].addr_spec == "kim@example.com"
    assert (
        msg["List-Unsubscribe"].strip()
        == "<mailto:leave@news.example?subject=unsubscribe%20kim%40example.com>"
    )
    assert msg["List-Unsubscribe-Post"] is None
    assert msg.get_content_type() == "multipart/alternative"


def test_test_send_is_delivered_and_not_counted(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        result = send(root, "--to", "Kim Test <kim@example.com>", "--yes")
        assert result.exit_code == 0, output(result)
        again = send(root, "--to", "kim@example.com", "--yes")
        assert again.exit_code == 0, output(again)
        assert [e.get("test") for e in sent_lines(root)] == [True, True]

        listed = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert listed.exit_code == 0, output(listed)
    assert [m.rcpt_tos[0] for m in box.messages] == [
        "kim@example.com",
        "kim@example.com",
        "kim@example.com",
        "Lee@Example.com",
        "park@example.org",
    ]
    assert box.messages[0].parsed()["To"].addresses[0].display_name == "Kim Test"


def test_server_down_names_host_and_port(issue: Any) -> None:
    port = free_port()
    root = issue(port)
    result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 1
    text = output(result)
    assert f"127.0.0.1:{port}" in text and "cannot connect" in text
    assert "Traceback" not in text
    assert sent_lines(root) == []


def test_login_refused(issue: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong-secret")
    auth = Authenticator("editor", "right-secret")
    with smtp_server(authenticator=auth, auth_require_tls=False) as (box, port):
        root = issue(port, extra_send='smtp_user = "editor"')
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 1
    text = output(result)
    assert "refused the login" in text and "'editor'" in text and "DIGEST_SMTP_PASSWORD" in text
    assert "wrong-secret" not in text and "Traceback" not in text
    # smtplib tries each advertised mechanism (PLAIN, LOGIN) once; no reconnect loop
    assert set(auth.attempts) == {"editor"} and len(auth.attempts) <= 2 and box.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_password_from_environment(issue: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "right-secret")
    auth = Authenticator("editor", "right-secret")
    with smtp_server(authenticator=auth, auth_require_tls=False, auth_required=True) as (box, port):
        root = issue(port, extra_send='smtp_user = "editor"')
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 0, output(result)
    assert auth.attempts == ["editor"], "one login for the whole batch"
    assert len(box.messages) == 3


def test_missing_password_is_a_config_error(issue: Any) -> None:
    root = issue(free_port(), extra_send='smtp_user = "editor"')
    result = send(root, "--to", "kim@example.com", "--yes")
    assert result.exit_code == 1
    assert "DIGEST_SMTP_PASSWORD is not set" in output(result)


def test_sender_refused(issue: Any) -> None:
    with smtp_server(Mailbox(refuse_sender=True)) as (box, port):
        root = issue(port)
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 1
    text = output(result)
    assert "refused the sender editor@news.example" in text and "553" in text
    assert "0 sent" in text and "3 remain" in text
    assert box.messages == [] and sent_lines(root) == []


def test_refused_recipient_is_reported_by_line_and_retried_alone(issue: Any) -> None:
    with smtp_server(Mailbox(refuse_rcpt={"lee@example.com"})) as (box, port):
        root = issue(port)
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert result.exit_code == 1
        assert "Lee@Example.com (line 3): recipient refused: 550" in output(result)
        assert [m.rcpt_tos[0] for m in box.messages] == ["kim@example.com", "park@example.org"]
        box.refuse_rcpt.clear()
        again = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert again.exit_code == 0, output(again)
    assert [m.rcpt_tos[0] for m in box.messages][2:] == ["Lee@Example.com"]


def test_starttls_with_a_trusted_certificate(
    issue: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_certificate(tmp_path)
    if made is None:
        pytest.skip("openssl could not make a certificate")
    cert, key = made
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    with smtp_server(tls_context=server_tls_context(cert, key), require_starttls=True) as (
        box,
        port,
    ):
        root = issue(port, extra_send="")
        toml = root / "digest.toml"
        toml.write_text(
            toml.read_text().replace('smtp_security = "none"', 'smtp_security = "starttls"')
        )
        result = send(root, "--to", "kim@example.com", "--yes")
        assert result.exit_code == 0, output(result)
        assert len(box.messages) == 1


def test_starttls_missing_is_explained(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        toml = root / "digest.toml"
        toml.write_text(
            toml.read_text().replace('smtp_security = "none"', 'smtp_security = "starttls"')
        )
        result = send(root, "--to", "kim@example.com", "--yes")
    assert result.exit_code == 1
    assert "does not offer STARTTLS" in output(result)


# ---------------------------------------------------------------- safety


def test_no_yes_without_a_terminal_refuses(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        result = send(root, "--list", str(root / "readers.csv"))
    assert result.exit_code == 1
    text = output(result)
    assert "needs a confirmation" in text and "--yes" in text
    assert box.messages == []


def test_confirmation_shows_subject_count_and_provider(issue: Any) -> None:
    asked: list[str] = []

    def answer(question: str, default: bool = False) -> bool:
        asked.append(question)
        return len(asked) > 1

    with smtp_server() as (box, port):
        root = issue(port)
        ws = Workspace.load(explicit=root)
        request = SendRequest(list_path=root / "readers.csv")
        said: list[str] = []
        with pytest.raises(Exception, match="you answered no"):
            send_issue(
                ws, ws.issue("007"), request, notify=said.append, confirm=answer, interactive=True
            )
        assert box.messages == []
        outcome = send_issue(
            ws, ws.issue("007"), request, notify=said.append, confirm=answer, interactive=True
        )
        assert outcome.ok and outcome.sent == 3
    assert "Article Weekly, Issue 7 — 이번 주 요약" in asked[0]
    assert "3 reader(s)" in asked[0] and f"smtp 127.0.0.1:{port}" in asked[0]


def test_check_errors_refuse_unless_forced(issue: Any) -> None:
    draft = DRAFT.replace("- Reads moved to SQLite files in 14 regions.", "- TODO write this")
    with smtp_server() as (box, port):
        root = issue(port, draft=draft)
        result = send(root, "--to", "kim@example.com", "--yes")
        assert result.exit_code == 1
        assert "TODO" in output(result) and "--force" in output(result)
        assert box.messages == []
        forced = send(root, "--to", "kim@example.com", "--yes", "--force")
        assert forced.exit_code == 0, output(forced)
        assert len(box.messages) == 1


def test_stale_render_refuses(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        draft = root / "issues" / "007" / "draft.md"
        html = root / "issues" / "007" / "email.html"
        later = html.stat().st_mtime_ns + 5_000_000_000
        os.utime(draft, ns=(later, later))
        result = send(root, "--to", "kim@example.com", "--yes", "--force")
    assert result.exit_code == 1
    assert "digest render 007" in output(result)
    assert box.messages == []


def test_unknown_provider_names_known_ones(issue: Any) -> None:
    root = issue(free_port(), extra_send="")
    toml = root / "digest.toml"
    toml.write_text(toml.read_text().replace('provider = "smtp"', 'provider = "carrier-pigeon"'))
    result = send(root, "--to", "kim@example.com", "--yes")
    assert result.exit_code == 1
    assert "carrier-pigeon" in output(result) and "postmark, smtp" in output(result)


def test_list_rows_are_validated_by_line(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "\ufeffName,Email\n김철수,kim@example.com\nnobody,not-an-address\n\nDup,KIM@example.com\n"
        "Korean domain,user@한국.kr\n,bad@@example.com\n",
        encoding="utf-8",
    )
    readers, problems = read_list(path)
    assert [(r.email, r.name, r.line) for r in readers] == [
        ("kim@example.com", "김철수", 2),
        ("user@xn--3e0b707e.kr", "Korean domain", 6),
    ]
    assert problems == [
        f"{path}:3: 'not-an-address' is not an email address; row skipped",
        f"{path}:5: KIM@example.com repeats line 2; row skipped",
        f"{path}:7: 'bad@@example.com' is not an email address; row skipped",
    ]
    path.write_text("address\nkim@example.com\n", encoding="utf-8")
    with pytest.raises(Exception, match="no `email` column"):
        read_list(path)


def test_line_breaks_in_cells_keep_line_numbers_and_never_reach_headers(
    issue: Any, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        'email,name\nkim@example.com,"Kim\r\nBcc: evil@example.com"\n"lee\n@example.com",Lee\n'
        "oops,x\n",
        encoding="utf-8",
    )
    readers, problems = read_list(path)
    assert [(r.email, r.name, r.line) for r in readers] == [
        ("kim@example.com", "Kim Bcc: evil@example.com", 2)
    ]
    assert problems == [
        f"{path}:4: 'lee\\n@example.com' is not an email address; row skipped",
        f"{path}:6: 'oops' is not an email address; row skipped",
    ]
    root = issue(free_port(), readers=path.read_text(encoding="utf-8"))
    result = send(root, "--list", str(root / "readers.csv"), "--dry-run")
    assert result.exit_code == 0, output(result)
    result = send(root, "--to", '"Lee\nBcc: evil@example.com" <lee@example.com>', "--dry-run")
    assert result.exit_code == 0, output(result)
    (eml,) = (root / "issues" / "007" / "outbox").glob("*.eml")
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["Bcc"] is None and msg["To"].addresses[0].display_name == "Lee Bcc: evil@example.com"


def test_pacer_sleeps_between_calls() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = Pacer(4, clock=lambda: now[0], sleep=sleep)
    pacer.wait()
    pacer.wait()
    now[0] += 0.1
    pacer.wait()
    now[0] += 1.0
    pacer.wait()
    assert slept == [0.25, 0.15]


def test_rate_limit_is_respected(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        toml = root / "digest.toml"
        toml.write_text(toml.read_text().replace("rate_per_second = 1000", "rate_per_second = 20"))
        started = time.monotonic()
        result = send(root, "--list", str(root / "readers.csv"), "--yes")
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, output(result)
    assert len(box.messages) == 3 and elapsed >= 0.1  # two gaps of 1/20 s


def test_sigterm_stops_after_the_message_in_flight_and_resumes(issue: Any) -> None:
    readers = "email\n" + "".join(f"reader{i}@example.com\n" for i in range(5))
    with smtp_server(Mailbox(delay=0.3)) as (box, port):
        root = issue(port, readers=readers)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "digest",
                "send",
                "007",
                "-w",
                str(root),
                "--list",
                str(root / "readers.csv"),
                "--yes",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        deadline = time.monotonic() + 10
        while not sent_lines(root) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 1, out + err
        sent_first = len(sent_lines(root))
        assert 1 <= sent_first < 5
        assert f"{sent_first} sent" in err and f"{5 - sent_first} remain" in err, out + err
        assert len(box.messages) == sent_first, "the message in flight was finished and recorded"
        box.delay = 0
        again = send(root, "--list", str(root / "readers.csv"), "--yes")
        assert again.exit_code == 0, output(again)
    assert Counter(m.rcpt_tos[0] for m in box.messages) == Counter(
        {f"reader{i}@example.com": 1 for i in range(5)}
    )


# ---------------------------------------------------------------- Postmark over HTTP


class FakePostmark:
    """Answers like Postmark's documented API: token header, JSON fields, batch limit, errors."""

    def __init__(self, web: WebServer, token: str = "server-token") -> None:
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.inactive: set[str] = set()
        self.batch_sizes: list[int] = []
        web.route("/email", self.single)
        web.route("/email/batch", self.batch)

    def _error(self, status: int, code: int, message: str) -> Reply:
        body = json.dumps({"ErrorCode": code, "Message": message}).encode()
        return Reply(status=status, body=body, content_type="application/json")

    def _check(self, request: Request) -> Reply | None:
        if request.headers.get("X-Postmark-Server-Token") != self.token:
            return self._error(401, 10, "Request does not contain a valid Server token.")
        if (
            request.headers.get("Content-Type") != "application/json"
            or request.headers.get("Accept") != "application/json"
        ):
            return self._error(415, 0, "Send JSON with Accept and Content-Type application/json.")
        return None

    def _one(self, message: dict[str, Any]) -> dict[str, Any]:
        for required in ("From", "To", "Subject", "HtmlBody", "TextBody", "MessageStream"):
            if not message.get(required):
                return {"ErrorCode": 300, "Message": f"Invalid email request: {required} missing"}
        if "@" not in message["To"] or "," in message["To"].split("<")[-1]:
            return {"ErrorCode": 300, "Message": "Invalid 'To' address."}
        address = message["To"].split("<")[-1].rstrip(">").lower()
        if address in self.inactive:
            return {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as inactive.",
            }
        self.messages.append(message)
        return {
            "To": message["To"],
            "SubmittedAt": "2026-11-23T10:00:00Z",
            "MessageID": f"pm-{len(self.messages)}",
            "ErrorCode": 0,
            "Message": "OK",
        }

    def single(self, request: Request) -> Reply:
        problem = self._check(request)
        if problem:
            return problem
        result = self._one(json.loads(request.body))
        if result["ErrorCode"]:
            return self._error(422, result["ErrorCode"], result["Message"])
        return Reply(body=json.dumps(result).encode(), content_type="application/json")

    def batch(self, request: Request) -> Reply:
        problem = self._check(request)
        if problem:
            return problem
        messages = json.loads(request.body)
        self.batch_sizes.append(len(messages))
        if len(messages) > 500:
            return self._error(422, 410, "Too many batch messages.")
        results = [self._one(m) for m in messages]
        return Reply(body=json.dumps(results).encode(), content_type="application/json")


@pytest.fixture
def postmark(web: WebServer, issue: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "server-token")
    fake = FakePostmark(web)

    def make(readers: str = LIST) -> Path:
        root: Path = issue(free_port(), readers=readers)
        toml = root / "digest.toml"
        toml.write_text(
            toml.read_text().replace(
                'provider = "smtp"', f'provider = "postmark"\napi_url = "{web.url}"'
            )
        )
        return root

    return fake, make


def test_postmark_single_test_send(postmark: Any) -> None:
    fake, make = postmark
    root = make()
    result = send(root, "--to", "김철수 <kim@example.com>", "--yes")
    assert result.exit_code == 0, output(result)
    (message,) = fake.messages
    assert message["From"] == "편집자 <editor@news.example>"
    assert message["To"] == "김철수 <kim@example.com>"
    assert message["ReplyTo"] == "Replies <replies@news.example>"
    assert message["Subject"] == "Article Weekly, Issue 7 — 이번 주 요약"
    assert message["MessageStream"] == "broadcast"
    assert "비동기 러스트 5년" in message["TextBody"] and "<html" in message["HtmlBody"]
    headers = {h["Name"]: h["Value"] for h in message["Headers"]}
    assert (
        headers["List-Unsubscribe"] == "<https://news.example/unsub?e=kim%40example.com&l=weekly>"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent_lines(root) == [
        {
            **sent_lines(root)[0],
            "email": "kim@example.com",
            "message_id": "pm-1",
            "provider": "postmark",
            "test": True,
        }
    ]


def test_postmark_batches_of_at_most_500_and_resumes(postmark: Any, web: WebServer) -> None:
    fake, make = postmark
    readers = "email\n" + "".join(f"r{i}@example.com\n" for i in range(503))
    root = make(readers)
    fake.inactive.add("r7@example.com")
    result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 1, "one inactive recipient is reported"
    assert "r7@example.com (line 9): Postmark ErrorCode 406" in output(result)
    assert fake.batch_sizes == [500, 3]
    assert len(sent_lines(root)) == 502
    fake.inactive.clear()
    again = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert again.exit_code == 0, output(again)
    assert web.hits("/email") == 1 and fake.batch_sizes == [500, 3]
    assert Counter(m["To"] for m in fake.messages) == Counter(
        {f"r{i}@example.com": 1 for i in range(503)}
    )


def test_postmark_bad_token(postmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, make = postmark
    root = make()
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "wrong-token")
    result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 1
    text = output(result)
    assert (
        "refused the server token" in text
        and "POSTMARK_SERVER_TOKEN" in text
        and "ErrorCode 10" in text
    )
    assert "wrong-token" not in text and fake.messages == [] and sent_lines(root) == []


def test_postmark_refused_sender_stops(postmark: Any, web: WebServer) -> None:
    fake, make = postmark
    root = make()
    web.route(
        "/email/batch",
        Reply(
            status=422,
            content_type="application/json",
            body=b'{"ErrorCode": 400, "Message": "Sender signature not found"}',
        ),
    )
    result = send(root, "--list", str(root / "readers.csv"), "--yes")
    assert result.exit_code == 1
    text = output(result)
    assert "ErrorCode 400" in text and "Sender signature not found" in text and "3 remain" in text
    assert sent_lines(root) == []


def test_postmark_missing_token(postmark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake, make = postmark
    root = make()
    monkeypatch.delenv("POSTMARK_SERVER_TOKEN")
    result = send(root, "--to", "kim@example.com", "--yes")
    assert result.exit_code == 1
    assert "needs POSTMARK_SERVER_TOKEN" in output(result)


def test_one_to_takes_several_addresses(issue: Any) -> None:
    with smtp_server() as (box, port):
        root = issue(port)
        result = run("send", "-w", str(root), "--to", "a@example.com", "b@example.com", "--yes")
        assert result.exit_code == 0, output(result)
        both = run(
            "send", "007", "-w", str(root), "--to", "c@example.com", "d@example.com", "--yes"
        )
        assert both.exit_code == 0, output(both)
    assert sorted(m.rcpt_tos[0] for m in box.messages) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ]


def test_address_without_to_is_bad_usage(issue: Any) -> None:
    root = issue(free_port())
    result = run("send", "-w", str(root), "a@example.com", "--yes")
    assert result.exit_code == 2
    assert "needs --to" in output(result)
