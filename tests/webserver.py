"""A real local HTTP server for tests: register routes, get a base URL, read the request log."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What a route answers: status, headers, and a body (bytes, or an iterable of chunks)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/html; charset=utf-8"
    delay: float = 0.0  # seconds before answering
    chunk_delay: float = 0.0  # seconds between body chunks


Handler = Callable[["Request"], Reply]


@dataclass
class Request:
    """A request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class QuietServer(ThreadingHTTPServer):
    """A threaded test server that never writes to the (captured) sys.stderr.

    socketserver prints a handler's exception to sys.stderr, which CliRunner swaps for the
    command's own stderr while a test runs: a client hanging up mid-answer then showed up as
    a traceback in the command's output. Hang-ups are ignored; anything else is kept in
    `errors` and printed to the real stderr, so a bug in a fake stays visible."""

    request_queue_size = 128  # many clients connect at once in the limit tests and benchmarks
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        text = traceback.format_exc()
        self.errors.append(text)
        print(f"test server error for {client_address}:\n{text}", file=sys.__stderr__)


class WebServer:
    """Threaded HTTP server on 127.0.0.1 (or another loopback address) with per-path handlers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler | Reply] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait ~40 ms for an ACK

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                with server._lock:
                    server.requests.append(request)
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    reply = Reply(status=404, body=b"not found", content_type="text/plain")
                else:
                    reply = route(request) if callable(route) else route
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    if reply.content_type:
                        self.send_header("Content-Type", reply.content_type)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if isinstance(reply.body, bytes):
                        self.send_header("Content-Length", str(len(reply.body)))
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(reply.body)
                    else:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in reply.body:
                            if reply.chunk_delay:
                                time.sleep(reply.chunk_delay)
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_HEAD = do_PUT = _serve

        self.httpd = QuietServer((host, 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, reply: Handler | Reply) -> str:
        """Register a handler for a path; returns the full URL."""
        self.routes[path] = reply
        return self.url + path

    def page(self, path: str, html: str | bytes, **kwargs: Any) -> str:
        """Register a static page; returns its URL."""
        body = html.encode("utf-8") if isinstance(html, str) else html
        return self.route(path, Reply(body=body, **kwargs))

    def hits(self, path: str) -> int:
        """How many requests reached a path."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.split("?")[0] == path)

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        assert not self.httpd.errors, f"the test server failed: {self.httpd.errors[0]}"
