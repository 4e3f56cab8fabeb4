"""One OpenAI-compatible endpoint for a run: the client, the probe, retries, failures, tokens.

Any endpoint speaking the chat completions API works (OpenAI, Ollama, vLLM, llama.cpp).
The openai client is made once (imported off the event loop, or preloaded while pages are
fetched) with its own retries off: retries (429, 5xx, timeouts, connection errors) follow
`digest.retry` and are counted here, with the tokens and the cost estimate in `stats`.

The response format starts as `json_schema` (strict); an endpoint that refuses it (llama.cpp
answers HTTP 500) gets `json_object` plus the schema, and one that answers prose gets plain
text; `downgrade` remembers the weaker format for the rest of the run.

The first request probes the endpoint: the others wait for its answer, or PROBE_GRACE seconds
at most (a refused connection, a refused key or an unknown model is answered at once; an
endpoint still silent after that is busy writing an answer, so the others go ahead).
A refused connection, an unknown host, a refused key (401/403), an unknown model (404), a used
up quota or a probe whose retries all ran out makes the endpoint unusable for the rest of the
run at once (`unavailable` says why, naming the endpoint without credentials, and the model):
every later request then fails without being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from digest.config import LLMSettings
from digest.models import LLMStats
from digest.retry import backoff, retry_after
from digest.text import plural

# The endpoint's log lines keep the logger they had inside `digest.llm` (people filter on it).
log = logging.getLogger("digest.llm")
Mode = Literal["json_schema", "json_object", "text"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "text")
PROBE_GRACE = 2.0  # seconds the other requests wait for the first request's answer

# USD per million tokens (input, output), for the cost estimate in report.json.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}


class NoAnswer(Exception):
    """No LLM answer for this request; the message says why in plain words."""


class FormatRefused(Exception):
    """The endpoint does not accept this response_format."""


class ModeChanged(Exception):
    """Another request downgraded the response format while this one waited its turn."""


def format_refused(status: int, message: str) -> bool:
    """True when an HTTP error answer says the endpoint does not take the response_format."""
    if status not in (400, 422, 500, 501):
        return False
    return bool(re.search(r"response_format|json_schema|json_object|'text'", message))


def _connect_cause(exc: BaseException) -> BaseException | None:
    """The refused connection or failed name lookup under a connection error, if that is it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionRefusedError, socket.gaierror)):
            return current
        current = current.__cause__ or current.__context__
    return None


def public_endpoint(base_url: str | None) -> str:
    """The endpoint's URL as it may be shown: no user, password, query or fragment."""
    url = base_url or "https://api.openai.com/v1"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")) or url


def is_openai_endpoint(base_url: str | None) -> bool:
    """True for OpenAI's own API, the only endpoint whose prices the built-in table knows."""
    if not base_url:
        return True
    return (urlsplit(base_url).hostname or "").lower() == "api.openai.com"


class Endpoint:
    """Chat completions and embeddings from one endpoint, counted, retried and given up on."""

    probe_grace = PROBE_GRACE

    def __init__(
        self,
        settings: LLMSettings,
        key: str | None,
        *,
        base_url: str | None = None,
        client: Any = None,
        backoff: float = 1.0,
    ) -> None:
        self.settings = settings
        self.base_url = base_url
        self.url = public_endpoint(base_url)
        self._key = key
        self.stats = LLMStats(provider="openai", model=settings.model)
        self.backoff = backoff
        self.mode: Mode = "json_schema"
        self._client = client
        self._client_task: asyncio.Future[Any] | None = None
        self._own_client = client is None
        self._preloader: threading.Thread | None = None
        self._preloaded: Any = None
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._probe_started = False
        self._probe_over = asyncio.Event()
        self._endpoint_answered = False
        self._disabled: str | None = None
        price = PRICES_PER_MTOK.get(settings.model) if is_openai_endpoint(base_url) else None
        self._price = (
            (settings.price_input_per_mtok, settings.price_output_per_mtok)
            if settings.price_input_per_mtok is not None
            or settings.price_output_per_mtok is not None
            else price
        )

    def redact(self, text: str) -> str:
        """The text with the API key masked."""
        return text.replace(self._key, "***") if self._key else text

    @property
    def unavailable(self) -> str | None:
        """Why the endpoint was given up for this run (every later item falls back), or None."""
        return self._disabled

    def _give_up(self, problem: str, check: str) -> NoAnswer:
        """Stop using the endpoint for the rest of the run; the failure says what to check."""
        self._disabled = (
            f"LLM endpoint {self.url} (model {self.settings.model!r}): {problem}; {check}"
        )
        return NoAnswer(self._disabled)

    # ------------------------------------------------------------ the client

    def _make_client(self) -> Any:
        import openai

        client = openai.AsyncOpenAI(
            api_key=self._key or "not-needed",
            base_url=self.base_url or None,
            max_retries=0,
            timeout=self.settings.timeout,
        )
        _ = client.chat.completions  # loads the resource modules now, not on the first request
        return client

    def prepare(self) -> None:
        """Start importing openai in the background (compose calls this when pages must be
        fetched, so the ~0.5 s import overlaps the fetching; a fully cached run skips it)."""
        if self._client is None and self._preloader is None and self._preloaded is None:
            self._preload()

    def _preload(self) -> None:
        """Import openai and make the client in a daemon thread, while pages are fetched."""

        def run() -> None:
            try:
                self._preloaded = self._make_client()
            except Exception:  # noqa: BLE001 - made again, with its error, on first use
                self._preloaded = None

        self._preloader = threading.Thread(target=run, name="digest-openai-import", daemon=True)
        self._preloader.start()

    def _ready_client(self) -> Any:
        if self._preloader is not None:
            self._preloader.join()
            self._preloader = None
            if self._preloaded is not None:
                return self._preloaded
        return self._make_client()

    async def _get_client(self) -> Any:
        """The client, made once; openai is imported off the event loop (it takes ~0.5 s)."""
        if self._client is None:
            if self._client_task is None:
                self._client_task = asyncio.ensure_future(asyncio.to_thread(self._ready_client))
            client = await self._client_task
            if self._client is None:
                self._client = client
        return self._client

    # ------------------------------------------------------------ the response format

    def response_format(
        self, mode: Mode, schema: dict[str, Any], name: str
    ) -> dict[str, Any] | None:
        """The `response_format` of a request in this mode (None: plain text)."""
        if mode == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": schema},
            }
        if mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return None

    def downgrade(self, mode: Mode) -> None:
        """Use the next weaker response format for the rest of the run."""
        following = MODES[min(MODES.index(mode) + 1, len(MODES) - 1)]
        if MODES.index(following) > MODES.index(self.mode):
            log.info("the endpoint does not take response_format %s; using %s", mode, following)
            self.mode = following

    # ------------------------------------------------------------ chat completions

    async def chat(
        self, messages: list[dict[str, str]], response_format: dict[str, Any] | None, mode: Mode
    ) -> Any:
        """One chat completion; the first one probes the endpoint while the others wait."""
        if self._disabled:
            raise NoAnswer(self._disabled)
        if not self._endpoint_answered:
            if not self._probe_started:
                self._probe_started = True
                try:
                    return await self._attempts(messages, response_format, mode, probing=True)
                finally:
                    self._probe_over.set()
            await self._get_client()  # the grace counts from when the probe can be sent
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_over.wait(), self.probe_grace)
        return await self._attempts(messages, response_format, mode, probing=False)

    async def _attempts(
        self,
        messages: list[dict[str, str]],
        response_format: dict[str, Any] | None,
        mode: Mode,
        *,
        probing: bool,
    ) -> Any:
        """One chat completion, retried on 429/5xx/timeouts/connection errors; the message."""
        if self._disabled:
            raise NoAnswer(self._disabled)
        client = await self._get_client()
        import openai

        extra: dict[str, Any] = {"response_format": response_format} if response_format else {}
        attempt = 0
        while True:
            wait: float | None = None
            try:
                return await self._complete(client, messages, extra, mode)
            except openai.APIStatusError as exc:
                reason = self._status_failure(exc, response_format)
                wait = retry_after(exc.response.headers)
            except openai.APITimeoutError:
                reason = f"timeout after {self.settings.timeout:g} s"
            except openai.APIConnectionError as exc:
                reason = self._connection_failure(exc, probing)
            if attempt >= self.settings.max_retries:
                done = (
                    f"{reason} after {plural(attempt, 'retry')} "
                    f"(llm.max_retries = {self.settings.max_retries})"
                )
                if probing or reason.startswith("could not connect"):
                    raise self._give_up(
                        f"no answer to the first request: {done}" if probing else done,
                        "check that the endpoint works, or compose with --offline",
                    )
                raise NoAnswer(done)
            attempt += 1
            self.stats.retries += 1
            wait = backoff(attempt - 1, self.backoff) if wait is None else wait
            log.info("LLM request: %s; retry %d in %.1f s", reason, attempt, wait)
            await asyncio.sleep(wait)

    async def _complete(
        self, client: Any, messages: list[dict[str, str]], extra: dict[str, Any], mode: Mode
    ) -> Any:
        """One request in its turn; the model's message (openai's errors pass through)."""
        async with self._semaphore:
            if self._disabled:  # given up while this one waited its turn
                raise NoAnswer(self._disabled)
            if MODES.index(self.mode) > MODES.index(mode):
                raise ModeChanged
            self.stats.requests += 1
            started = time.monotonic()
            log.debug(
                "POST %s/chat/completions model=%s response_format=%s (%d characters)",
                self.url,
                self.settings.model,
                mode if extra else "text",
                sum(len(m["content"]) for m in messages),
            )
            response = await client.chat.completions.create(
                model=self.settings.model, messages=messages, **extra
            )
        self._endpoint_answered = True
        usage = getattr(response, "usage", None)
        log.debug(
            "chat completion in %.2f s: %s in / %s out tokens",
            time.monotonic() - started,
            getattr(usage, "prompt_tokens", "?"),
            getattr(usage, "completion_tokens", "?"),
        )
        self._account(usage)
        if not response.choices:
            raise NoAnswer("the model returned an empty answer")
        return response.choices[0].message

    def _status_failure(self, exc: Any, response_format: dict[str, Any] | None) -> str:
        """Why an HTTP error answer failed, when a retry may help; else raise what ends it."""
        status = exc.status_code
        message = self.redact(str(getattr(exc, "message", "") or ""))
        if response_format and format_refused(status, message):
            self._endpoint_answered = True
            raise FormatRefused(message) from None
        if status in (401, 403):
            raise self._give_up(
                f"HTTP {status}, the API key was refused",
                "check OPENAI_API_KEY (in the environment or .env)",
            ) from None
        if status == 404:
            raise self._give_up(
                "HTTP 404, the model was not found or the base URL is wrong",
                "check llm.model and llm.base_url / OPENAI_BASE_URL",
            ) from None
        if status == 429 and "insufficient_quota" in str(getattr(exc, "code", "") or ""):
            raise self._give_up(
                "HTTP 429, the account's quota is used up", "check the plan and billing"
            ) from None
        if status not in (408, 409, 429) and status < 500:
            self._endpoint_answered = True
            raise NoAnswer(f"HTTP {status} from the endpoint: {message[:200]}") from None
        return f"HTTP {status}"

    def _connection_failure(self, exc: Exception, probing: bool) -> str:
        """Why a connection failed, when a retry may help; a first request gives up at once."""
        cause = _connect_cause(exc)
        if probing and isinstance(cause, ConnectionRefusedError):
            raise self._give_up(
                "connection refused",
                "check that the server is running and llm.base_url / OPENAI_BASE_URL",
            ) from None
        if probing and isinstance(cause, socket.gaierror):
            raise self._give_up(
                f"the host name does not resolve ({cause.strerror or cause})",
                "check llm.base_url / OPENAI_BASE_URL and the network",
            ) from None
        return "could not connect to the endpoint"

    def _account(self, usage: Any) -> None:
        if usage is not None:
            self.stats.input_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.stats.output_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        if self._price is not None:
            price_in, price_out = self._price
            self.stats.estimated_cost_usd = round(
                self.stats.input_tokens * (price_in or 0) / 1e6
                + self.stats.output_tokens * (price_out or 0) / 1e6,
                8,
            )

    # ------------------------------------------------------------ embeddings

    async def embed(self, texts: list[str], model: str) -> list[list[float]] | None:
        """Embeddings of texts in one request (retried like chat requests); None on failure."""
        if self._disabled or not texts:
            return None
        client = await self._get_client()
        import openai

        for attempt in range(self.settings.max_retries + 1):
            try:
                async with self._semaphore:
                    self.stats.requests += 1
                    response = await client.embeddings.create(model=model, input=texts)
            except openai.APIStatusError as exc:
                if exc.status_code in (401, 403):
                    self._give_up(
                        f"HTTP {exc.status_code}, the API key was refused",
                        "check OPENAI_API_KEY (in the environment or .env)",
                    )
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    return None
            except openai.APITimeoutError:
                pass
            except openai.APIConnectionError as exc:
                if _connect_cause(exc) is not None:  # refused, or the host does not resolve
                    self._give_up(
                        f"cannot connect ({_connect_cause(exc)})",
                        "check that the server is running and llm.base_url / OPENAI_BASE_URL",
                    )
                    return None
            else:
                usage = getattr(response, "usage", None)
                if usage is not None:
                    self.stats.input_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
                rows = sorted(response.data, key=lambda row: row.index)
                return [list(row.embedding) for row in rows]
            if attempt < self.settings.max_retries:
                self.stats.retries += 1
                await asyncio.sleep(backoff(attempt, self.backoff))
        return None

    async def aclose(self) -> None:
        """Close the HTTP client if this endpoint made it (also one preloaded but unused)."""
        if self._preloader is not None:
            await asyncio.to_thread(self._preloader.join)
            self._preloader = None
            if self._preloaded is not None and self._client is None:
                await self._preloaded.close()
        self._preloaded = None
        if self._client is not None and self._own_client:
            await self._client.close()
        self._client = None if self._own_client else self._client
        self._client_task = None
        # The next run (a new event loop) probes the endpoint again.
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self._probe_started = False
        self._probe_over = asyncio.Event()
        self._endpoint_answered = False
        self._disabled = None
