"""The send library reports to its caller and never prints: the CLI decides what to show."""

from __future__ import annotations

from typing import Any

import pytest

from digest.send import SendRequest, send_issue
from digest.workspace import Workspace
from tests.smtp_server import smtp_server
from tests.test_send import issue as issue  # noqa: F401 - the fixture


def test_send_messages_go_to_the_callback_not_to_stdout(
    issue: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    said: list[str] = []
    with smtp_server() as (box, port):
        root = issue(port)
        ws = Workspace.load(explicit=root)
        request = SendRequest(list_path=root / "readers.csv", yes=True)
        outcome = send_issue(ws, ws.issue("007"), request, notify=said.append, confirm=bool)
        again = send_issue(ws, ws.issue("007"), request, notify=said.append, confirm=bool)
    assert outcome.ok and outcome.sent == 3 and len(box.messages) == 3
    assert again.sent == 0 and again.already == 3
    assert any(line.startswith("sent 3 message(s) via smtp") for line in said), said
    assert any("already received issue 007" in line for line in said), said
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
