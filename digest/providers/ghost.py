"""Ghost (Admin API v5): the issue as one post in the `draft` status.

`POST /ghost/api/admin/posts/?source=html` creates it (issue.md's body as plain HTML, which
Ghost turns into its own cards: its theme frames the web post and its email template adds the
title, header and unsubscribe link; the marker is an internal tag `#digest-…`), `PUT /ghost/api/admin/posts/{id}/?source=html`
updates it with the `updated_at` read just before (Ghost refuses a stale one), and
`GET /ghost/api/admin/posts/?filter=tag:hash-…` finds it. Publishing with
`?newsletter=<slug>` sends it by email (`status: "published"`) or schedules it
(`status: "scheduled"`, `published_at`). Auth: a 5-minute HS256 JWT signed with the secret
half of GHOST_ADMIN_API_KEY (`id:secret`, hex), audience `/admin/`, in `Authorization: Ghost …`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any

from digest.errors import ConfigError
from digest.providers import Content, Remote, RemoteMissing, require_url, secret
from digest.providers.api import Answer, ApiClient

if TYPE_CHECKING:
    from pathlib import Path

    from digest.config import PublishSettings, Secrets

KEY_VARIABLE = "GHOST_ADMIN_API_KEY"
API = "/ghost/api/admin"
TOKEN_SECONDS = 300
STATES = {"draft": "draft", "scheduled": "scheduled"}
_KEY = re.compile(r"^([0-9a-f]+):([0-9a-f]+)$", re.IGNORECASE)


def make(settings: PublishSettings, secrets: Secrets, root: Path) -> GhostPlatform:
    """Ghost from [publish.ghost] and GHOST_ADMIN_API_KEY."""
    key = secret(secrets, KEY_VARIABLE, "ghost")
    match = _KEY.match(key)
    if match is None or len(match.group(2)) % 2:
        raise ConfigError(
            f"{KEY_VARIABLE} is not an Admin API key: Ghost shows it as id:secret (hex) under "
            "Settings → Integrations → a custom integration"
        )
    url = require_url(settings.ghost.url, "publish.ghost.url", "https://blog.example.com")
    return GhostPlatform(
        url, match.group(1), bytes.fromhex(match.group(2)), settings.ghost.newsletter
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def admin_token(key_id: str, secret_bytes: bytes, now: float | None = None) -> str:
    """A short-lived Admin API JWT (HS256, kid = the key's id, aud /admin/, 5 minutes)."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "kid": key_id, "typ": "JWT"}
    payload = {"iat": issued, "exp": issued + TOKEN_SECONDS, "aud": "/admin/"}
    signing = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = hmac.new(secret_bytes, signing.encode("ascii"), hashlib.sha256).digest()
    return f"{signing}.{_b64(signature)}"


class GhostPlatform:
    """One Ghost post per issue."""

    name = "ghost"
    unsubscribe_placeholder = "%%{unsubscribe_url}%%"

    def __init__(self, site: str, key_id: str, secret_bytes: bytes, newsletter: str) -> None:
        self.site = site
        self.newsletter = newsletter.strip()
        self.api = ApiClient(
            "Ghost",
            site,
            lambda: {
                "Authorization": f"Ghost {admin_token(key_id, secret_bytes)}",
                "Accept-Version": "v5.0",
            },
            KEY_VARIABLE,
        )

    def describe(self) -> str:
        """The site and newsletter, for the confirmation prompt."""
        return f"Ghost {self.site} (newsletter {self.newsletter or '?'})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.api.close()

    @staticmethod
    def tag(content: Content) -> str:
        """The internal tag carrying the marker (Ghost gives it the slug hash-…)."""
        return f"#{content.marker}"

    def html(self, content: Content) -> str:
        """The issue's body as plain HTML; Ghost adds title, header and footer (our email's
        own frame inside a card would repeat them, and its styles would be lost on the web)."""
        return content.post_html

    def _remote(self, answer: Answer) -> Remote:
        posts = answer.data.get("posts") if isinstance(answer.data, dict) else None
        if not posts or not isinstance(posts[0], dict) or not posts[0].get("id"):
            raise RemoteMissing("Ghost answered without a post")
        return self._post(posts[0])

    def _post(self, post: dict[str, Any]) -> Remote:
        status = str(post.get("status") or "draft")
        return Remote(
            id=str(post["id"]),
            state=STATES.get(status, "sent"),
            url=f"{self.site}/ghost/#/editor/post/{post['id']}",
            extra={"updated_at": post.get("updated_at"), "status": status},
        )

    def find(self, content: Content) -> Remote | None:
        """The post tagged with the issue's marker, if any."""
        answer = self.api.request(
            "GET",
            f"{API}/posts/",
            params={"filter": f"tag:hash-{content.marker}", "limit": "all"},
            what="the list of posts",
        )
        posts = answer.data.get("posts") if isinstance(answer.data, dict) else None
        for post in posts or []:
            if isinstance(post, dict) and post.get("id"):
                return self._post(post)
        return None

    def read(self, remote: Remote, content: Content) -> Remote | None:
        """The post as Ghost holds it now."""
        return self._read(remote.id)

    def _read(self, remote_id: str) -> Remote:
        return self._remote(
            self.api.request("GET", f"{API}/posts/{remote_id}/", what=f"post {remote_id}")
        )

    def save(self, content: Content, remote_id: str | None) -> Remote:
        """Create the draft post, or update it with the updated_at Ghost has now."""
        post: dict[str, Any] = {
            "title": content.title,
            "html": self.html(content),
            "custom_excerpt": content.preheader[:300],
            "email_subject": content.subject,
            "tags": [{"name": self.tag(content)}],
        }
        if remote_id is None:
            answer = self.api.request(
                "POST",
                f"{API}/posts/",
                params={"source": "html"},
                body={"posts": [{**post, "status": "draft"}]},
                what="the new post",
            )
            return self._remote(answer)
        answer = self.api.request(
            "PUT",
            f"{API}/posts/{remote_id}/",
            params={"source": "html"},
            body_for=lambda: {
                "posts": [{**post, "updated_at": self._read(remote_id).extra["updated_at"]}]
            },
            what=f"post {remote_id}",
        )
        return self._remote(answer)

    def release(self, remote: Remote, content: Content, when: dt.datetime | None) -> Remote:
        """Publish the post with the newsletter (it is emailed), now or at `when`."""
        if not self.newsletter:
            raise ConfigError(
                "publish.ghost.newsletter is empty: sending from Ghost needs the newsletter's slug "
                "(Settings → Newsletters in Ghost Admin)"
            )
        current = self._read(remote.id)
        post: dict[str, Any] = {"updated_at": current.extra["updated_at"], "status": "published"}
        if when is not None:
            post = {**post, "status": "scheduled", "published_at": _utc(when)}
        answer = self.api.request(
            "PUT",
            f"{API}/posts/{remote.id}/",
            params={"newsletter": self.newsletter},
            body={"posts": [post]},
            what=f"publishing post {remote.id} with newsletter {self.newsletter!r}",
            once=True,
        )
        return self._remote(answer)


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
