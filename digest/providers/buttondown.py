"""Buttondown: the issue as one email in the `draft` status (its OpenAPI document, v1).

`POST /v1/emails` creates it (`status: "draft"`, Markdown `body`, `metadata.digest_issue` =
the marker), `PATCH /v1/emails/{id}` updates it, and the newest drafts and scheduled emails
(`GET /v1/emails?status=draft&status=scheduled&ordering=-creation_date`, up to 5 pages) are
searched for the marker before creating. Scheduling is `status: "scheduled"` with `publish_date`; sending now is
`status: "about_to_send"`, which Buttondown accepts from the API only with the
`X-Buttondown-Live-Dangerously: true` header. Auth: `Authorization: Token BUTTONDOWN_API_KEY`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from digest.providers import Content, Remote, RemoteMissing, require_url, secret
from digest.providers.api import ApiClient
from digest.render import labels_for

if TYPE_CHECKING:
    from pathlib import Path

    from digest.config import PublishSettings, Secrets

KEY_VARIABLE = "BUTTONDOWN_API_KEY"
APP_URL = "https://buttondown.com/emails/{id}"
MARKER_FIELD = "digest_issue"
MAX_PAGES = 5
STATES = {"draft": "draft", "scheduled": "scheduled"}  # everything else has gone out or is going


def make(settings: PublishSettings, secrets: Secrets, root: Path) -> ButtondownPlatform:
    """Buttondown from [publish.buttondown] and BUTTONDOWN_API_KEY."""
    key = secret(secrets, KEY_VARIABLE, "buttondown")
    url = require_url(
        settings.buttondown.url, "publish.buttondown.url", "https://api.buttondown.com"
    )
    return ButtondownPlatform(url, key)


class ButtondownPlatform:
    """One Buttondown email per issue."""

    name = "buttondown"
    unsubscribe_placeholder = "{{ unsubscribe_url }}"

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.api = ApiClient(
            "Buttondown", base_url, lambda: {"Authorization": f"Token {key}"}, KEY_VARIABLE
        )

    def describe(self) -> str:
        """The API, for the confirmation prompt."""
        return f"Buttondown ({self.base_url})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.api.close()

    def body(self, content: Content) -> str:
        """The Markdown body: issue.md without front matter, then the unsubscribe link."""
        label = labels_for(content.language)["unsubscribe"]
        return f"{content.markdown.rstrip()}\n\n---\n\n[{label}]({self.unsubscribe_placeholder})\n"

    def _remote(self, data: Any) -> Remote:
        if not isinstance(data, dict) or not data.get("id"):
            raise RemoteMissing("Buttondown answered without an email id")
        status = str(data.get("status") or "draft")
        return Remote(
            id=str(data["id"]),
            state=STATES.get(status, "sent"),
            url=APP_URL.format(id=data["id"]),
            extra={"status": status},
        )

    def find(self, content: Content) -> Remote | None:
        """The email carrying the issue's marker in its metadata, if any."""
        params: list[tuple[str, Any]] | None = [
            ("status", "draft"),
            ("status", "scheduled"),
            ("ordering", "-creation_date"),
        ]
        path = "/v1/emails"
        for _page in range(MAX_PAGES):
            data = self.api.request("GET", path, params=params, what="the list of emails").data
            results = data.get("results") if isinstance(data, dict) else None
            for email in results or []:
                metadata = email.get("metadata") if isinstance(email, dict) else None
                if isinstance(metadata, dict) and metadata.get(MARKER_FIELD) == content.marker:
                    return self._remote(email)
            following = data.get("next") if isinstance(data, dict) else None
            if not following:
                return None
            path, params = str(following), None
        return None

    def read(self, remote: Remote, content: Content) -> Remote | None:
        """The email as Buttondown holds it now (whatever its status)."""
        answer = self.api.request("GET", f"/v1/emails/{remote.id}", what=f"email {remote.id}")
        return self._remote(answer.data)

    def save(self, content: Content, remote_id: str | None) -> Remote:
        """Create the draft (POST) or update it (PATCH)."""
        fields: dict[str, Any] = {
            "subject": content.subject,
            "body": self.body(content),
            "description": content.preheader,
            "metadata": {MARKER_FIELD: content.marker},
        }
        if 1 <= content.number <= 1_000_000_000:
            fields["secondary_id"] = content.number
        if remote_id is None:
            answer = self.api.request(
                "POST", "/v1/emails", body={**fields, "status": "draft"}, what="the new draft"
            )
        else:
            answer = self.api.request(
                "PATCH", f"/v1/emails/{remote_id}", body=fields, what=f"email {remote_id}"
            )
        return self._remote(answer.data)

    def release(self, remote: Remote, content: Content, when: dt.datetime | None) -> Remote:
        """Schedule the email for `when`, or send it now."""
        body: dict[str, Any] = (
            {"status": "scheduled", "publish_date": when.isoformat()}
            if when
            else {"status": "about_to_send"}
        )
        answer = self.api.request(
            "PATCH",
            f"/v1/emails/{remote.id}",
            body=body,
            headers={"X-Buttondown-Live-Dangerously": "true"},
            what=f"sending email {remote.id}",
            once=True,
        )
        return self._remote(answer.data)
