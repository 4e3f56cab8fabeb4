"""listmonk (self-hosted): the issue as one campaign in the `draft` status.

`POST /api/campaigns` creates it (HTML `body`, plain-text `altbody`, the marker as a tag),
`PUT /api/campaigns/{id}` updates it, `GET /api/campaigns?tag=<marker>` finds it.
`PUT /api/campaigns/{id}/status` schedules (`scheduled`, after `send_at` is set) or starts
(`running`) it. Auth: `Authorization: token LISTMONK_USER:LISTMONK_TOKEN`.

listmonk's OpenAPI document leaves the campaign request body mis-indented; the fields sent
here are those of its handler (`cmd/campaigns.go`, `campReq` over `models.Campaign`). Its
handler answers a campaign that does not exist with HTTP 400 "… not found" (not 404), and a
campaign that is running or finished with HTTP 400 "Cannot update …": both are read here.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from digest.errors import ConfigError
from digest.providers import Content, Remote, RemoteMissing, require_url, secret
from digest.providers.api import Answer, ApiClient, Refused

if TYPE_CHECKING:
    from pathlib import Path

    from digest.config import PublishSettings, Secrets

USER_VARIABLE = "LISTMONK_USER"
TOKEN_VARIABLE = "LISTMONK_TOKEN"
STATES = {"draft": "draft", "scheduled": "scheduled", "paused": "draft"}


def make(settings: PublishSettings, secrets: Secrets, root: Path) -> ListmonkPlatform:
    """listmonk from [publish.listmonk], LISTMONK_USER and LISTMONK_TOKEN."""
    user = secret(secrets, USER_VARIABLE, "listmonk")
    token = secret(secrets, TOKEN_VARIABLE, "listmonk")
    s = settings.listmonk
    url = require_url(s.url, "publish.listmonk.url", "https://lists.example.com")
    if not s.list_ids:
        raise ConfigError(
            "publish.listmonk.list_ids is empty: name the ids of the lists the campaign goes to, "
            "e.g. list_ids = [3] (listmonk shows them under Lists)"
        )
    return ListmonkPlatform(url, user, token, s.list_ids, s.template_id)


class ListmonkPlatform:
    """One listmonk campaign per issue."""

    name = "listmonk"
    unsubscribe_placeholder = "{{ UnsubscribeURL }}"

    def __init__(
        self, base_url: str, user: str, token: str, list_ids: list[int], template_id: int
    ) -> None:
        self.base_url = base_url
        self.list_ids = list_ids
        self.template_id = template_id
        self.api = ApiClient(
            "listmonk",
            base_url,
            lambda: {"Authorization": f"token {user}:{token}"},
            f"{USER_VARIABLE} and {TOKEN_VARIABLE}",
        )

    def describe(self) -> str:
        """The server and lists, for the confirmation prompt."""
        lists = ", ".join(str(i) for i in self.list_ids)
        return f"listmonk {self.base_url} (list {lists})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.api.close()

    def _remote(self, answer: Answer) -> Remote:
        data = answer.data.get("data") if isinstance(answer.data, dict) else None
        if not isinstance(data, dict) or data.get("id") is None:
            raise RemoteMissing("listmonk answered without a campaign id")
        status = str(data.get("status") or "draft")
        return Remote(
            id=str(data["id"]),
            state=STATES.get(status, "sent"),
            url=f"{self.base_url}/admin/campaigns/{data['id']}",
            extra={"status": status},
        )

    def _call(self, method: str, path: str, body: Any, what: str, once: bool = False) -> Answer:
        try:
            return self.api.request(method, path, body=body, what=what, once=once)
        except Refused as exc:
            if exc.status == 400 and "not found" in exc.reason.lower():
                raise RemoteMissing(f"listmonk answered HTTP 400: {exc.reason}") from None
            raise

    def find(self, content: Content) -> Remote | None:
        """The campaign tagged with the issue's marker, if any."""
        answer = self.api.request(
            "GET",
            "/api/campaigns",
            params={"tag": content.marker, "no_body": "true", "per_page": "all"},
            what="the list of campaigns",
        )
        data = answer.data.get("data") if isinstance(answer.data, dict) else None
        for campaign in (data or {}).get("results") or []:
            if isinstance(campaign, dict) and content.marker in (campaign.get("tags") or []):
                return self._remote(Answer(200, {"data": campaign}))
        return None

    def read(self, remote: Remote, content: Content) -> Remote | None:
        """The campaign as listmonk holds it now."""
        return self._remote(
            self._call("GET", f"/api/campaigns/{remote.id}", None, f"campaign {remote.id}")
        )

    def fields(self, content: Content) -> dict[str, Any]:
        """The campaign in listmonk's JSON shape."""
        body: dict[str, Any] = {
            "name": content.title,
            "subject": content.subject,
            "lists": self.list_ids,
            "type": "regular",
            "content_type": "html",
            "body": content.html,
            "altbody": content.text,
            "messenger": "email",
            "tags": [content.marker],
        }
        if self.template_id:
            body["template_id"] = self.template_id
        return body

    def save(self, content: Content, remote_id: str | None) -> Remote:
        """Create the campaign (POST) or update it (PUT)."""
        if remote_id is None:
            return self._remote(
                self._call("POST", "/api/campaigns", self.fields(content), "the new campaign")
            )
        return self._remote(
            self._call(
                "PUT", f"/api/campaigns/{remote_id}", self.fields(content), f"campaign {remote_id}"
            )
        )

    def release(self, remote: Remote, content: Content, when: dt.datetime | None) -> Remote:
        """Set send_at and schedule the campaign, or start it now."""
        if when is not None:
            fields = {**self.fields(content), "send_at": when.isoformat(), "send_later": True}
            self._call("PUT", f"/api/campaigns/{remote.id}", fields, f"campaign {remote.id}")
        status = "scheduled" if when else "running"
        return self._remote(
            self._call(
                "PUT",
                f"/api/campaigns/{remote.id}/status",
                {"status": status},
                f"starting campaign {remote.id}",
                once=True,
            )
        )
