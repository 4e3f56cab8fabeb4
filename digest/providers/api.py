"""One JSON-over-HTTP client for the platforms: auth headers, error mapping, bounded retries.

HTTP 429 and 5xx are retried within `DEADLINE` seconds (at most `MAX_RETRIES` times), waiting
as `Retry-After` says (up to `MAX_WAIT`) or with the shared jittered backoff
(`digest.retry`); 401/403 name
the key's variable, 404 raises `RemoteMissing`, 400/413/422 quote the platform's own reason.
A request that got no answer raises `NoAnswer`: the caller says whether the draft may exist.
A 5xx answer to a POST (a create) or to a request sent `once` (send or schedule) is not
retried here: the platform may have done it all the same, so it raises `MaybeDone` and the
caller looks at the draft on the platform before trying again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.errors import PublishError
from digest.providers import RemoteMissing
from digest.retry import backoff, parse_retry_after

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

TIMEOUT = 30.0
MAX_RETRIES = 4
DEADLINE = 90.0
MAX_WAIT = 30.0  # a longer Retry-After ends the run with a message rather than a long sleep
BACKOFF_BASE = 1.0


class NoAnswer(PublishError):
    """The request may or may not have reached the platform (connection lost, timeout)."""


class MaybeDone(NoAnswer):
    """HTTP 5xx to a create or a send: it may have been done all the same; the platform's
    Retry-After (seconds, or None) says how long to wait before a new try."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Tries:
    """The bounds every platform request shares: at most MAX_RETRIES more tries within
    DEADLINE seconds, none after a wait longer than MAX_WAIT."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.retries = 0

    def next_wait(self, asked: float | None) -> float | None:
        """Seconds before the next try (as the platform asked, else the shared backoff), or
        None when the bounds are spent."""
        wait = backoff(self.retries, BACKOFF_BASE) if asked is None else asked
        left = DEADLINE - (self.clock() - self.started)
        if self.retries >= MAX_RETRIES or wait > min(left, MAX_WAIT):
            return None
        self.retries += 1
        return wait

    def __str__(self) -> str:
        return f"{self.retries + 1} attempt(s) in {self.clock() - self.started:.0f} s"


class Refused(PublishError):
    """The platform refused the request (HTTP 4xx); carries the status and its own reason."""

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass
class Answer:
    """A successful reply: status and parsed JSON (None when the body is empty or not JSON)."""

    status: int
    data: Any


def error_reason(data: Any, text: str) -> str:
    """The platform's own words from an error body (Buttondown, listmonk and Ghost shapes)."""
    if isinstance(data, dict):
        errors = data.get("errors")  # Ghost: {"errors": [{"message", "context", "type"}]}
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            parts = [str(first.get(k)) for k in ("message", "context") if first.get(k)]
            return "; ".join(parts) or str(first)
        detail = data.get("detail")  # Buttondown: {"detail": "..."} or [{"loc", "msg"}]
        if isinstance(detail, list):
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}"
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        if detail:
            return str(detail)
        if data.get("message"):  # listmonk (echo): {"message": "..."}
            return str(data["message"])
    return " ".join(text.split())[:300] or "no reason given"


class ApiClient:
    """Requests to one platform's API; see the module docstring."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        headers: Callable[[], dict[str, str]],
        key_hint: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import httpx

        self.platform = platform
        self.base_url = base_url
        self._headers = headers
        self.key_hint = key_hint
        self.sleep = sleep
        self.clock = clock
        self.client = httpx.Client(base_url=base_url, timeout=TIMEOUT)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        what: str = "the request",
        once: bool = False,
        body_for: Callable[[], Any] | None = None,
    ) -> Answer:
        """Send one request, retrying 429/5xx within the deadline; map errors to ours.
        A create (POST) or a request marked `once` (sending) is not retried on 5xx: it raises
        MaybeDone, and the caller looks at the platform before trying again. `body_for`
        builds the body afresh for each try (Ghost's `updated_at` changes when a try that
        was answered 5xx went through)."""
        tries = Tries(self.clock)
        while True:
            payload = body_for() if body_for is not None else body
            reply = self._send(method, path, payload, params, headers)
            try:
                data = reply.json() if reply.content else None
            except ValueError:
                data = None
            status = reply.status_code
            if status < 400:
                return Answer(status, data)
            reason = error_reason(data, reply.text)
            if status != 429 and status < 500:
                raise self._refusal(status, reason, what)
            asked = parse_retry_after(reply.headers.get("retry-after"))
            if (method == "POST" or once) and status != 429:  # a 5xx may hide a done request
                raise MaybeDone(
                    f"{self.platform} answered HTTP {status} ({reason}) to {what}", asked
                )
            wait = tries.next_wait(asked)
            if wait is None:
                raise self._unavailable(
                    status, reason, str(tries), reply.headers.get("retry-after")
                )
            self.sleep(wait)

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | list[tuple[str, Any]] | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        """One HTTP exchange; NoAnswer when none came."""
        import httpx

        try:
            reply = self.client.request(
                method,
                path,
                params=params,
                content=None if body is None else json.dumps(body, ensure_ascii=False),
                headers={
                    "Accept": "application/json",
                    **({"Content-Type": "application/json"} if body is not None else {}),
                    **self._headers(),
                    **(headers or {}),
                },
            )
        except httpx.HTTPError as exc:
            raise NoAnswer(
                f"no answer from {self.platform} at {self.base_url} ({_reason(exc)})"
            ) from None
        log.debug("%s %s %s -> %s", self.platform, method, path, reply.status_code)
        return reply

    def _unavailable(self, status: int, reason: str, tries: str, later: str | None) -> PublishError:
        """The error once 429/5xx answers outlast the retries."""
        if status == 429:
            return PublishError(
                f"{self.platform} is limiting requests (HTTP 429: {reason}) after {tries}; "
                + (f"it asks to wait {later} s; " if later else "")
                + "run the same command again later"
            )
        return PublishError(
            f"{self.platform} failed with HTTP {status} ({reason}) after {tries}; "
            "it may be down: run the same command again later"
        )

    def _refusal(self, status: int, reason: str, what: str) -> PublishError:
        """The error for a 4xx answer (other than 429)."""
        if status in (401, 403):
            return PublishError(
                f"{self.platform} refused the key (HTTP {status}: {reason}); check {self.key_hint}"
            )
        if status == 404:
            return RemoteMissing(f"{self.platform} answered HTTP 404 to {what}: {reason}")
        if status == 413:
            return Refused(
                f"{self.platform} refused {what} as too large (HTTP 413: {reason}); "
                "shorten the issue",
                status,
                reason,
            )
        return Refused(f"{self.platform} refused {what} (HTTP {status}: {reason})", status, reason)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
