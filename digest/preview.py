"""`digest preview`: serve the rendered email on 127.0.0.1; re-render and reload on edits."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from digest.errors import DigestError
from digest.render import render_issue
from digest.templates import builtin_templates_dir
from digest.workspace import IssueFolder, Workspace

RELOAD_SCRIPT = """<script>
(function () {
  var seen = null;
  function poll() {
    fetch('/__version', {cache: 'no-store'}).then(function (r) { return r.text(); })
      .then(function (v) { if (seen === null) { seen = v; } else if (v !== seen) { location.reload(); } })
      .catch(function () {}).then(function () { setTimeout(poll, 700); });
  }
  poll();
})();
</script>"""


LOCK_WAIT = 600.0  # a compose holding the issue renders it too: wait for it
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)


class PreviewState:
    """The current version of the rendered email and the last render error."""

    def __init__(
        self, ws: Workspace, folder: IssueFolder, report: Callable[[str], None] | None = None
    ) -> None:
        self.ws = ws
        self.folder = folder
        self.version = 0
        self.error: str | None = None
        self.lock = threading.Lock()
        self.report = report or (lambda message: None)

    def rerender(self) -> None:
        """Render the draft; keep the previous outputs and remember the error on failure.

        Each failure is reported (with file:line when the draft is at fault), and the first
        good render after one says it is fixed."""
        try:
            render_issue(self.ws, self.folder, wait=LOCK_WAIT, notify=self.report)
            error = None
        except DigestError as exc:
            error = str(exc)
        with self.lock:
            previous = self.error
            self.error = error
            self.version += 1
        if error is not None:
            self.report(f"render failed, the preview shows the previous version: {error}")
        elif previous is not None:
            self.report(f"render fixed: {self.folder.draft} renders again")

    def page(self) -> bytes:
        """The email with the reload script, and an error banner when the last render failed."""
        try:
            body = self.folder.email_html.read_text(encoding="utf-8")
        except OSError:
            body = "<html><body><p>No email rendered yet.</p></body></html>"
        banner = ""
        if self.error:
            banner = (
                '<div style="background:#b00020;color:#fff;padding:12px;font:14px sans-serif">'
                f"Render failed, showing the previous version: {html.escape(self.error)}</div>"
            )
        opening = _BODY_OPEN.search(body)
        if opening:  # the banner first, where the editor looks
            body = body[: opening.end()] + banner + body[opening.end() :]
        else:
            body = banner + body
        if "</body>" in body:
            body = body.replace("</body>", RELOAD_SCRIPT + "</body>", 1)
        else:
            body += RELOAD_SCRIPT
        return body.encode("utf-8")


def _handler(state: PreviewState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/__version":
                with state.lock:
                    payload = str(state.version).encode()
                kind = "text/plain"
            elif self.path in ("/", "/index.html"):
                payload, kind = state.page(), "text/html; charset=utf-8"
            elif self.path == "/email.txt":
                payload = (
                    state.folder.email_txt.read_bytes() if state.folder.email_txt.exists() else b""
                )
                kind = "text/plain; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _watch(state: PreviewState, paths: list[Path], stop: threading.Event) -> None:
    from watchfiles import watch

    relevant = {state.folder.draft.name}
    for changes in watch(*paths, stop_event=stop, debounce=200, step=50, raise_interrupt=False):
        touched = {Path(p) for _, p in changes}
        if any(p.name in relevant or p.suffix in (".j2", ".mjml") for p in touched):
            state.rerender()


def serve(
    ws: Workspace,
    folder: IssueFolder,
    *,
    port: int = 8000,
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
    report: Callable[[str], None] | None = None,
) -> None:
    """Serve until stopped (Ctrl-C, or `stop` set): render once, then on every change;
    `report` hears each render failure and the fix."""
    if not folder.draft.is_file():
        raise DigestError(f"{folder.draft}: no draft yet; run `digest compose {folder.id}` first")
    state = PreviewState(ws, folder, report)
    state.rerender()
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    except OSError as exc:
        raise DigestError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); try --port 0"
        ) from None
    server.daemon_threads = True
    stop = stop or threading.Event()
    paths = [folder.path, builtin_templates_dir()]
    if ws.templates_dir.is_dir():
        paths.append(ws.templates_dir)
    watcher = threading.Thread(target=_watch, args=(state, paths, stop), daemon=True)
    watcher.start()
    real_port = server.server_address[1]
    announce(f"http://127.0.0.1:{real_port}/")
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    serving.start()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
