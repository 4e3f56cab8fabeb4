"""Delivery providers behind one small interface: SMTP, and HTTP email APIs.

A provider turns `Outgoing` messages into `Delivery` results. It is opened once for a
batch, sends chunks of at most `max_batch` messages (and `max_batch_bytes` of bodies) per
call, and is closed at the end. A problem that stops the whole run (server down, login or
sender refused, connection lost twice) is raised as `SendError`; a problem with one reader
(address refused, inactive recipient) comes back as a failed `Delivery`.

Adding a provider is one new module here with a `make(settings, secrets)` function and one
line in `PROVIDERS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import TYPE_CHECKING, Protocol

from digest.errors import ConfigError

if TYPE_CHECKING:
    from digest.config import Secrets, SendSettings

PROVIDERS = {
    "smtp": "digest.providers.smtp",
    "postmark": "digest.providers.postmark",
}


@dataclass
class Outgoing:
    """One message for one reader, before it is handed to a provider."""

    sender: Address
    to: Address
    subject: str
    text: str
    html: str
    message_id: str
    date: str
    reply_to: Address | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Rough size in bytes of the bodies, for batch limits."""
        return len(self.text.encode("utf-8")) + len(self.html.encode("utf-8"))

    def to_mime(self) -> EmailMessage:
        """The message as multipart/alternative (text, then HTML) with SMTP line endings."""
        msg = EmailMessage(policy=SMTP)
        msg["From"] = self.sender
        msg["To"] = self.to
        if self.reply_to is not None:
            msg["Reply-To"] = self.reply_to
        msg["Subject"] = self.subject
        msg["Date"] = self.date
        msg["Message-ID"] = self.message_id
        for name, value in self.headers.items():
            msg[name] = value
        msg.set_content(self.text, subtype="plain", charset="utf-8")
        msg.add_alternative(self.html, subtype="html", charset="utf-8")
        return msg


@dataclass
class Delivery:
    """What the provider said about one message."""

    outgoing: Outgoing
    ok: bool
    message_id: str = ""
    error: str = ""
    fatal: bool = False  # the reason would refuse every message: stop the run


class Provider(Protocol):
    """Sends messages; see the module docstring."""

    name: str
    max_batch: int
    max_batch_bytes: int

    def describe(self) -> str: ...

    def open(self) -> None: ...

    def send(self, batch: list[Outgoing]) -> list[Delivery]: ...

    def close(self) -> None: ...


def known_providers() -> str:
    """The provider names, for messages."""
    return ", ".join(sorted(PROVIDERS))


def check_provider_name(name: str) -> str:
    """The normalized provider name; ConfigError naming the known ones otherwise."""
    key = name.strip().lower()
    if key not in PROVIDERS:
        raise ConfigError(
            f"send.provider: unknown provider {name!r}; known providers: {known_providers()}"
        )
    return key


def make_provider(settings: SendSettings, secrets: Secrets) -> Provider:
    """Build the provider named by send.provider (imports its module on demand)."""
    module = importlib.import_module(PROVIDERS[check_provider_name(settings.provider)])
    provider: Provider = module.make(settings, secrets)
    return provider
