"""A real local OpenAI-compatible chat completions server for tests and benchmarks.

It answers POST /v1/chat/completions, records every parsed request body, measures how many
requests were in flight at once, and can be scripted to misbehave: push replies with
`script(...)` (consumed one per request, in order) or set persistent behaviour
(`reject_json_schema` like llama.cpp, `prose` like an Ollama that ignores response_format,
`latency` for every answer, `always` to answer every request with one scripted reply, e.g.
a 401). By default it answers with a valid summary derived from the
request: bullets quoting the first sentences of the text between <article> and </article>.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.webserver import QuietServer


@dataclass
class Scripted:
    """One scripted answer: an HTTP status with a raw body, or a message content."""

    status: int = 200
    content: str | None = None  # the assistant message content (status 200)
    refusal: str | None = None
    body: Any = None  # a raw JSON body (for error statuses)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def rate_limited(retry_after: str = "0") -> Scripted:
    """HTTP 429 with Retry-After."""
    body = {
        "error": {
            "message": "Rate limit reached",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    return Scripted(status=429, body=body, headers={"Retry-After": retry_after})


def server_error(retry_after: str | None = "0") -> Scripted:
    """HTTP 500 (with Retry-After unless None)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Scripted(
        status=500,
        body={"error": {"message": "internal error", "type": "server_error"}},
        headers=headers,
    )


def llamacpp_schema_error() -> Scripted:
    """What llama.cpp's server answers to response_format json_schema."""
    message = (
        "1 validation error for ResponseFormat\ntype\n  Input should be 'text' or 'json_object'"
    )
    return Scripted(
        status=500, body={"error": {"code": 500, "message": message, "type": "server_error"}}
    )


def unauthorized() -> Scripted:
    """HTTP 401 as OpenAI answers a wrong key."""
    body = {
        "error": {
            "message": "Incorrect API key provided: sk-wrong.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    return Scripted(status=401, body=body)


def model_not_found(model: str = "gpt-4o-mini") -> Scripted:
    """HTTP 404 as OpenAI (and Ollama, vLLM) answer an unknown model."""
    body = {
        "error": {
            "message": f"The model `{model}` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
    }
    return Scripted(status=404, body=body)


def slow(seconds: float) -> Scripted:
    """A default answer after a delay."""
    return Scripted(delay=seconds)


def content(text: str) -> Scripted:
    """A 200 answer whose message content is exactly text."""
    return Scripted(content=text)


def refusal(text: str = "I'm sorry, I can't help with that.") -> Scripted:
    """A structured-output refusal (message.refusal set, content null)."""
    return Scripted(refusal=text)


def empty() -> Scripted:
    """A 200 answer with empty content."""
    return Scripted(content="")


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _between(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.S)
    return match.group(1) if match else None


def _user_text(body: dict[str, Any]) -> str:
    """The user message holding the data (a repair request comes after it)."""
    parts = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
    tags = ("<article>", "<items>", "<candidates>", "<parts>")
    with_data = [p for p in parts if any(tag in p for tag in tags)]
    return (with_data or parts or [""])[0]


_EMBED_WORD = re.compile(r"[0-9A-Za-z가-힣][0-9A-Za-z가-힣.\-']*")
_EMBED_PARTICLE = re.compile(r"(?<=[가-힣])(은|는|이|가|을|를|에|의|로|와|과|도)$")
EMBED_DIMENSIONS = 256


def embedding(text: str) -> list[float]:
    """A deterministic embedding: hashed name-like tokens (capitalized, with digits, or Korean
    stems) weigh most, so texts about the same named thing are close and others are not."""
    import hashlib
    import math

    vector = [0.0] * EMBED_DIMENSIONS
    for raw in _EMBED_WORD.findall(text):
        word = raw.strip(".-'")
        if re.search(r"[가-힣]", word):
            word = _EMBED_PARTICLE.sub("", word)
            weight = 2.0 if len(word) >= 3 else 0.3
        elif word[:1].isupper() or re.search(r"\d", word):
            weight = 3.0
        else:
            weight = 0.3 if len(word) > 3 else 0.0
        if not weight:
            continue
        digest = hashlib.md5(word.lower().encode()).digest()
        index = int.from_bytes(digest[:4], "big") % EMBED_DIMENSIONS
        vector[index] += weight if digest[4] & 1 else -weight
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def triage_answer(user: str, with_section: list[str] | None) -> str:
    """Scores for a triage batch: 90 when a candidate shares words with the focus, else 10."""
    focus = set(re.findall(r"[a-z]{4,}", (_between(user, "focus") or "").lower()))
    rows = []
    block = _between(user, "candidates") or ""
    for match in re.finditer(r"^\[(\d+)\] (.*)$", block, re.M):
        words = set(re.findall(r"[a-z]{4,}", match.group(2).lower()))
        near = len(words & focus)
        row: dict[str, Any] = {
            "id": int(match.group(1)),
            "score": 90 if near else 10,
            "reason": f"{near} focus word(s) in the title",
        }
        if with_section:
            row["section"] = with_section[0]
        rows.append(row)
    return json.dumps({"scores": rows})


def _merge_answer(merged: str, response_format: dict[str, Any]) -> str:
    """The answer to a merge request: the first top-level bullet of each part."""
    parts = re.findall(r"<part>(.*?)</part>", merged, re.S)
    firsts = [re.findall(r"^- (.+)$", part, re.M)[:1] for part in parts]
    texts = [first[0] for first in firsts if first] or ["Nothing to merge"]
    if response_format.get("type") == "text":
        return "# Server title\n\n" + "\n".join(f"- {t}" for t in texts)
    schema = (
        response_format.get("schema") or response_format.get("json_schema", {}).get("schema") or {}
    )
    enum = schema.get("properties", {}).get("section", {}).get("enum")
    summary: dict[str, Any] = {
        "title": "Server title",
        "translated_title": None,
        "bullets": [{"text": t, "children": []} for t in texts],
        "tags": ["merged"],
    }
    if enum:
        summary["section"] = enum[0]
    return json.dumps(summary, ensure_ascii=False)


def default_answer(body: dict[str, Any]) -> str:
    """A valid answer for the request's format, derived from its article or items."""
    user = _user_text(body)
    response_format = body.get("response_format") or {"type": "text"}
    if "<candidates>" in user:
        schema = (
            response_format.get("schema")
            or response_format.get("json_schema", {}).get("schema")
            or {}
        )
        row = schema.get("properties", {}).get("scores", {}).get("items", {})
        return triage_answer(user, row.get("properties", {}).get("section", {}).get("enum"))
    items = _between(user, "items")
    if items is not None:
        titles = re.findall(r"^#+ (.+)$", items, re.M) or ["the week"]
        bullets = [f"Takeaway about {t}" for t in titles[:3]]
        if response_format.get("type") == "text":
            return "\n".join(f"- {b}" for b in bullets)
        return json.dumps({"bullets": bullets})
    merged = _between(user, "parts")
    if merged is not None:  # a merge request: the first bullet of every part, in order
        return _merge_answer(merged, response_format)
    article = _between(user, "article") or ""
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(article.split())) if s.strip()]
    first = sentences[0] if sentences else "Nothing to say"
    second = sentences[1] if len(sentences) > 1 else first
    schema = (
        response_format.get("schema") or response_format.get("json_schema", {}).get("schema") or {}
    )
    enum = schema.get("properties", {}).get("section", {}).get("enum")
    section = None
    if enum:
        named = (n for n in enum if re.search(rf"\b{re.escape(n)}\b", article, re.I))
        section = next(named, enum[0])
    if response_format.get("type") == "text":
        return f"# Server title\n\n- {first}\n  - {second}\n- Second point"
    summary: dict[str, Any] = {
        "title": "Server title",
        "translated_title": "서버 제목",
        "bullets": [{"text": first, "children": [{"text": second, "children": []}]}],
        "tags": ["test"],
    }
    if enum:
        summary["section"] = section
    return json.dumps(summary, ensure_ascii=False)


class LLMServer:
    """Threaded OpenAI-compatible server on 127.0.0.1; `url` is the base URL (…/v1)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.reject_json_schema = False
        self.prose = False
        self.api_key: str | None = None  # when set, other bearer tokens get HTTP 401
        self.models: set[str] | None = None  # when set, other model names get HTTP 404
        self.requests: list[dict[str, Any]] = []  # chat completions
        self.embedding_requests: list[dict[str, Any]] = []
        self.embedding_arrivals: list[float] = []
        self.embeddings_status = 200  # another status makes /v1/embeddings fail
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals: list[float] = []  # time.monotonic() of each chat request
        self.answer: Callable[[dict[str, Any]], str] = default_answer
        self.always: Scripted | None = None  # every unscripted request gets this reply
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = 1 << 16  # headers and body in one write

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with server._lock:
                    arrived = time.monotonic()
                    if "embeddings" in self.path:
                        server.embedding_arrivals.append(arrived)
                    else:
                        server.arrivals.append(arrived)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, payload, headers = server._respond(
                        self.path, raw, dict(self.headers.items())
                    )
                finally:
                    with server._lock:
                        server.in_flight -= 1
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = QuietServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _respond(
        self, path: str, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        if path.rstrip("/") not in ("/v1/chat/completions", "/v1/embeddings"):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": {"message": "body is not JSON"}}, {}
        refused = self._refuse(body, headers)
        if refused is not None:
            return refused
        if path.rstrip("/") == "/v1/embeddings":
            return self._embeddings(body)
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            scripted = self._script.popleft() if self._script else self.always
        delay = self.latency + (scripted.delay if scripted else 0.0)
        if delay:
            time.sleep(delay)
        response_format = body.get("response_format") or {}
        if (
            scripted is None
            and self.reject_json_schema
            and response_format.get("type") == "json_schema"
        ):
            scripted = llamacpp_schema_error()
        if scripted is not None and scripted.status != 200:
            return scripted.status, scripted.body, scripted.headers
        if scripted is not None and (scripted.content is not None or scripted.refusal is not None):
            text, refused = scripted.content, scripted.refusal
        elif self.prose:
            article = _between(_user_text(body), "article") or ""
            text, refused = f"Here is a summary. {article[:120]}", None
        else:
            text, refused = self.answer(body), None
        prompt = sum(len(m.get("content") or "") for m in body.get("messages", []))
        completion = len(text or refused or "")
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text, "refusal": refused},
                }
            ],
            "usage": {
                "prompt_tokens": prompt // 4 + 1,
                "completion_tokens": completion // 4 + 1,
                "total_tokens": prompt // 4 + completion // 4 + 2,
            },
        }
        return 200, payload, scripted.headers if scripted else {}

    def _refuse(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]] | None:
        """OpenAI's answers to a wrong key (401) and an unknown model (404), when configured."""
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if self.api_key is not None and given != f"Bearer {self.api_key}":
            error = {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
            return 401, {"error": error}, {}
        model = body.get("model")
        if self.models is not None and model not in self.models:
            error = {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
            return 404, {"error": error}, {}
        return None

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        """POST /v1/embeddings: deterministic vectors (see `embedding`), usage counted."""
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return 400, {"error": {"message": "input must be a string or a list of strings"}}, {}
        with self._lock:
            self.embedding_requests.append(body)
        if self.embeddings_status != 200:
            message = {"error": {"message": "no such model", "type": "invalid_request_error"}}
            return self.embeddings_status, message, {}
        if self.latency:
            time.sleep(self.latency)
        tokens = sum(len(t) for t in texts) // 4 + 1
        payload = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": embedding(t)}
                for n, t in enumerate(texts)
            ],
            "model": body.get("model", "test-embedding"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return 200, payload, {}

    def script(self, *replies: Scripted) -> None:
        """Answer the next requests with these, in order; then the default again."""
        with self._lock:
            self._script.extend(replies)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LLMServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        assert not self.httpd.errors, f"the LLM test server failed: {self.httpd.errors[0]}"
