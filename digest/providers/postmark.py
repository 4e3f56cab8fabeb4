"""Postmark's email API: POST /email for one message, /email/batch for up to 500.

Auth is the `X-Postmark-Server-Token` header from POSTMARK_SERVER_TOKEN; messages go to the
"broadcast" message stream (Postmark's stream for newsletters). `send.api_url` overrides the
base URL (tests, proxies). Errors come back as JSON `{"ErrorCode": n, "Message": "..."}`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from digest.config import Secrets, SendSettings
from digest.errors import ConfigError, SendError
from digest.providers import Delivery, Outgoing

if TYPE_CHECKING:
    import httpx

API_URL = "https://api.postmarkapp.com"
TOKEN_VARIABLE = "POSTMARK_SERVER_TOKEN"
MESSAGE_STREAM = "broadcast"
# ErrorCodes that concern one recipient only; any other refuses every message alike.
RECIPIENT_ERRORS = {300, 406}


def make(settings: SendSettings, secrets: Secrets) -> PostmarkProvider:
    """The Postmark provider from [send] and POSTMARK_SERVER_TOKEN."""
    token = secrets.provider_keys.get(TOKEN_VARIABLE)
    if token is None:
        raise ConfigError(
            f'send.provider = "postmark" needs {TOKEN_VARIABLE}; put the server token in the '
            "environment or the workspace's .env"
        )
    return PostmarkProvider(settings, token.get_secret_value())


class PostmarkProvider:
    """Sends through Postmark's HTTP API, up to 500 messages per request."""

    name = "postmark"
    max_batch = 500
    max_batch_bytes = 45_000_000  # the API takes 50 MB per batch; keep room for JSON escapes

    def __init__(self, settings: SendSettings, token: str) -> None:
        self.settings = settings
        self.base_url = (settings.api_url or API_URL).rstrip("/")
        self._token = token
        self._client: httpx.Client | None = None

    def describe(self) -> str:
        """The API endpoint, for the confirmation prompt."""
        return f"postmark {self.base_url} (stream {MESSAGE_STREAM})"

    def open(self) -> None:
        """One HTTP client (connection pool) for the batch."""
        import httpx

        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=self.settings.smtp_timeout,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/json",
                "X-Postmark-Server-Token": self._token,
            },
        )

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def payload(self, out: Outgoing) -> dict[str, Any]:
        """One message in Postmark's JSON shape."""
        body: dict[str, Any] = {
            "From": str(out.sender),
            "To": str(out.to),
            "Subject": out.subject,
            "HtmlBody": out.html,
            "TextBody": out.text,
            "MessageStream": MESSAGE_STREAM,
            "Headers": [{"Name": k, "Value": v} for k, v in out.headers.items()],
        }
        if out.reply_to is not None:
            body["ReplyTo"] = str(out.reply_to)
        return body

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        """POST one message to /email or several to /email/batch."""
        if len(batch) > self.max_batch:
            raise SendError(f"internal: a Postmark batch holds at most {self.max_batch} messages")
        if len(batch) == 1:
            data = self._post("/email", self.payload(batch[0]), batch)
            return [self._delivery(batch[0], data if isinstance(data, dict) else {})]
        data = self._post("/email/batch", [self.payload(out) for out in batch], batch)
        if not isinstance(data, list) or len(data) != len(batch):
            raise SendError(
                f"Postmark {self.base_url}/email/batch answered {len(batch)} messages with an "
                "unexpected reply; check its activity log before sending again"
            )
        return [
            self._delivery(out, item if isinstance(item, dict) else {})
            for out, item in zip(batch, data, strict=True)
        ]

    def _delivery(self, out: Outgoing, item: dict[str, Any]) -> Delivery:
        code = item.get("ErrorCode", 0)
        if code == 0 and item.get("MessageID"):
            return Delivery(out, ok=True, message_id=str(item["MessageID"]))
        error = f"Postmark ErrorCode {code}: {item.get('Message') or 'no MessageID in the reply'}"
        return Delivery(out, ok=False, error=error, fatal=code not in RECIPIENT_ERRORS)

    def verify(self) -> str:
        """An authenticated read-only call (GET /server): the token works; nothing is sent."""
        try:
            data = self._post("/server", None, [])
        finally:
            self.close()
        name = data.get("Name") if isinstance(data, dict) else None
        return f"{self.describe()}: server token accepted" + (f" (server {name!r})" if name else "")

    def _post(self, path: str, body: Any, batch: list[Outgoing]) -> Any:
        """POST body to path (GET when body is None); the JSON reply, or SendError."""
        import httpx

        if self._client is None:
            self.open()
        assert self._client is not None
        url = self.base_url + path
        try:
            if body is None:
                reply = self._client.get(path)
            else:
                reply = self._client.post(
                    path, content=json.dumps(body, ensure_ascii=False).encode("utf-8")
                )
        except httpx.ConnectError as exc:
            raise SendError(
                f"cannot reach the Postmark API at {url}: {exc}; check send.api_url and the network"
            ) from None
        except httpx.HTTPError as exc:
            raise SendError(
                f"no complete answer from {url} ({type(exc).__name__}); the last {len(batch)} "
                "message(s) may or may not have gone out: check Postmark's activity log before "
                "sending again"
            ) from None
        try:
            data = reply.json()
        except ValueError:
            data = None
        if reply.status_code == 200:
            return data
        code = data.get("ErrorCode") if isinstance(data, dict) else None
        message = data.get("Message") if isinstance(data, dict) else reply.text[:200]
        detail = (
            f"HTTP {reply.status_code}"
            + (f", ErrorCode {code}" if code is not None else "")
            + f": {message}"
        )
        if reply.status_code == 401 or code == 10:
            raise SendError(f"Postmark refused the server token ({detail}); check {TOKEN_VARIABLE}")
        if reply.status_code == 422 and len(batch) == 1 and code in RECIPIENT_ERRORS:
            return {"ErrorCode": code, "Message": message}
        if reply.status_code == 422:
            raise SendError(
                f"Postmark refused the message ({detail}); check email.from (it needs a confirmed "
                "sender signature) and the settings"
            )
        if reply.status_code == 429 or reply.status_code >= 500:
            raise SendError(
                f"Postmark is not accepting messages right now ({detail}); run the same command "
                "again later"
            )
        raise SendError(f"Postmark answered {url} with {detail}")
