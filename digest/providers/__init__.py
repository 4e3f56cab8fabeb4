"""Delivery providers behind one small interface: SMTP, and HTTP email APIs.

A provider turns `Outgoing` messages into `Delivery` results. It is opened once for a
batch, sends chunks of at most `max_batch` messages (and `max_batch_bytes` of bodies) per
call, and is closed at the end. A problem that stops the whole run (server down, login or
sender refused, connection lost twice) is raised as `SendError`; a problem with one reader
(address refused, inactive recipient) comes back as a failed `Delivery`.

Adding a provider is one new module here with a `make(settings, secrets)` function and one
line in `PROVIDERS`.

Platforms (`digest publish`) are the other kind: Buttondown, listmonk, Ghost and Hugo hold
the issue as one draft (campaign, post, page) of theirs. Each is a module named in
`PLATFORMS` with a `make(settings, secrets, root)` function returning a `Platform`: `find` looks the
draft up by the issue's marker, `save` creates or updates it (raising `RemoteMissing` when
the recorded one is gone), `release` schedules or sends it.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import TYPE_CHECKING, Any, Protocol

from digest.errors import ConfigError, PublishError

if TYPE_CHECKING:
    from pathlib import Path

    from digest.config import PublishSettings, Secrets, SendSettings

PROVIDERS = {
    "smtp": "digest.providers.smtp",
    "postmark": "digest.providers.postmark",
}
PLATFORMS = {
    "buttondown": "digest.providers.buttondown",
    "listmonk": "digest.providers.listmonk",
    "ghost": "digest.providers.ghost",
    "hugo": "digest.providers.hugo",
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

    def verify(self) -> str:
        """Check the connection and credentials without sending; say what passed."""
        ...

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


# ---------------------------------------------------------------- platforms (digest publish)


@dataclass
class Content:
    """What is handed to a platform: one issue, its editions, and the marker that finds it."""

    marker: str  # e.g. "digest-article-weekly-007": set on the draft, looked up before creating
    number: int
    title: str
    subject: str
    preheader: str
    html: str  # the email, the platform's unsubscribe placeholder in place of ours
    text: str  # the plain-text edition, likewise
    markdown: str  # issue.md's body (no front matter), raw HTML escaped
    issue_md: str  # issue.md as rendered (Hugo)
    date: dt.datetime
    language: str = "en"
    web_url: str = ""
    post_html: str = ""  # issue.md's body as plain HTML (headings, lists, links), no frame


@dataclass
class Remote:
    """The platform's draft as it answered: id, state (draft/scheduled/sent), web app URL."""

    id: str
    state: str = "draft"
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class RemoteMissing(PublishError):
    """The recorded draft is not on the platform any more (deleted there)."""


class Platform(Protocol):
    """Holds the issue as one draft; see the module docstring."""

    name: str
    unsubscribe_placeholder: str  # what our unsubscribe link becomes; "" = leave the footer out

    def describe(self) -> str: ...

    def find(self, content: Content) -> Remote | None: ...

    def read(self, remote: Remote, content: Content) -> Remote | None: ...

    def save(self, content: Content, remote_id: str | None) -> Remote: ...

    def release(self, remote: Remote, content: Content, when: dt.datetime | None) -> Remote: ...

    def close(self) -> None: ...


def check_platform_name(name: str) -> str:
    """The normalized platform name; PublishError naming the known ones otherwise."""
    key = name.strip().lower()
    if key not in PLATFORMS:
        known = " | ".join(PLATFORMS)
        if not key:
            raise PublishError(
                f"no platform: pass --to {known}, or set publish.platform in digest.toml"
            )
        raise PublishError(f"--to {name!r}: unknown platform; known platforms: {known}")
    return key


def make_platform(name: str, settings: PublishSettings, secrets: Secrets, root: Path) -> Platform:
    """Build the named platform (imports its module on demand); paths are relative to root."""
    module = importlib.import_module(PLATFORMS[check_platform_name(name)])
    platform: Platform = module.make(settings, secrets, root)
    return platform


def secret(secrets: Secrets, variable: str, platform: str) -> str:
    """A platform's key from the environment or .env; a one-line error naming it otherwise."""
    value = secrets.provider_keys.get(variable)
    if value is None or not value.get_secret_value().strip():
        raise ConfigError(
            f"{variable} is not set: `digest publish --to {platform}` needs it in the "
            "environment or the workspace's .env"
        )
    return value.get_secret_value().strip()


def require_url(url: str, setting: str, example: str) -> str:
    """An http(s) base URL without its trailing slash; ConfigError naming the setting otherwise."""
    url = url.strip().rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        raise ConfigError(
            f'{setting} = {url!r}: set it to the platform\'s address, e.g. "{example}", in '
            "digest.toml"
        )
    return url
