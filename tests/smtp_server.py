"""A real local SMTP server for tests (aiosmtpd on 127.0.0.1), with knobs to misbehave."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any

    def parsed(self) -> EmailMessage:
        """The message parsed back with the email package."""
        msg = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Mailbox:
    """aiosmtpd handler: stores messages; can answer 421, refuse senders/recipients, or stall."""

    messages: list[Received] = field(default_factory=list)
    hang_up_after: int | None = None  # answer 421 to DATA once this many messages were taken
    hang_up_at: set[int] = field(
        default_factory=set
    )  # answer 421 once when the count is one of these
    refuse_sender: bool = False
    refuse_rcpt: set[str] = field(default_factory=set)
    delay: float = 0.0

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender:
            return "553 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.refuse_rcpt:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        count = len(self.messages)
        if self.hang_up_after is not None and count >= self.hang_up_after:
            return "421 4.3.2 Service shutting down, closing transmission channel"
        if count in self.hang_up_at:
            self.hang_up_at.discard(count)
            return "421 4.4.2 Connection dropped"
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        self.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, session.peer)
        )
        return "250 2.0.0 OK: queued"


class Authenticator:
    """Accepts exactly one user and password (or nobody)."""

    def __init__(self, user: str = "", password: str = "") -> None:
        self.user, self.password = user, password
        self.attempts: list[str] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        self.attempts.append(user)
        ok = bool(self.user) and user == self.user and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(mailbox: Mailbox | None = None, **kwargs: Any) -> Iterator[tuple[Mailbox, int]]:
    """Run aiosmtpd on a free port of 127.0.0.1; yields (mailbox, port)."""
    box = mailbox or Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def make_certificate(folder: Path) -> tuple[str, str] | None:
    """A self-signed certificate for 127.0.0.1 (cert, key paths), or None without openssl."""
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    made = subprocess.run([*command, "-keyout", key, "-out", cert], capture_output=True)
    return (cert, key) if made.returncode == 0 else None


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context for the test certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
