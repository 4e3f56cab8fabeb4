"""Fetching against real local servers: errors, retries, redirects, limits, the address guard."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.config import FetchSettings
from digest.errors import FetchError
from digest.fetch import Fetched, Fetcher, blocked_kind, find_meta_refresh
from digest.retry import parse_retry_after
from tests.conftest import article_html
from tests.rawserver import SilentServer, closed_port
from tests.webserver import Reply, Request, WebServer

runner = CliRunner()
PAGE = article_html(
    "A page that works",
    ["The first paragraph has enough words to count as an article body for the extractor."],
)


def settings(**changes: Any) -> FetchSettings:
    """Test settings: local server allowed, short deadline, short backoff."""
    values: dict[str, Any] = {"allow_private_hosts": True, "timeout": 1, "backoff_base": 0.01}
    values.update(changes)
    return FetchSettings(**values)


def fetch(url: str, fetcher: Fetcher | None = None, **changes: Any) -> Fetched:
    """Fetch one URL with a fresh fetcher (or the one given)."""

    async def run() -> Fetched:
        own = fetcher or Fetcher(settings(**changes))
        try:
            return await own.fetch(url, Path("."))
        finally:
            await own.aclose()

    return asyncio.run(run())


def fetch_error(url: str, **changes: Any) -> str:
    """The FetchError message for a URL that must fail."""
    with pytest.raises(FetchError) as info:
        fetch(url, **changes)
    return str(info.value)


# ---------------------------------------------------------------- status codes and retries


def test_ok_page_records_final_url_and_user_agent(web: WebServer) -> None:
    url = web.page("/ok", PAGE)
    fetched = fetch(url)
    assert fetched.body == PAGE.encode() and fetched.final_url == url
    assert fetched.content_type == "text/html" and fetched.charset == "utf-8"
    assert fetched.requests == 1 and not fetched.truncated
    agent = web.requests[0].headers["User-Agent"]
    assert agent.startswith("digest/") and "newsletter" in agent


def test_404_fails_at_once(web: WebServer) -> None:
    message = fetch_error(web.url + "/missing")
    assert message.startswith("HTTP 404") and "not found" in message
    assert web.hits("/missing") == 1


def test_5xx_then_ok_is_retried(web: WebServer) -> None:
    answers = iter([503, 500, 200])

    def flaky(request: Request) -> Reply:
        status = next(answers)
        return Reply(status=status, body=PAGE.encode() if status == 200 else b"busy")

    fetcher = Fetcher(settings())
    fetched = fetch(web.route("/flaky", flaky), fetcher)
    assert fetched.status == 200 and fetched.body == PAGE.encode()
    assert web.hits("/flaky") == 3 and fetched.requests == 3 and fetcher.retries == 2


def test_5xx_gives_up_after_max_retries(web: WebServer) -> None:
    url = web.route("/down", Reply(status=502, body=b"bad gateway"))
    message = fetch_error(url, max_retries=2)
    assert message == "HTTP 502 (bad gateway) after 3 attempts"
    assert web.hits("/down") == 3


def test_429_honours_retry_after_seconds(web: WebServer) -> None:
    times: list[float] = []

    def limited(request: Request) -> Reply:
        times.append(time.monotonic())
        if len(times) == 1:
            return Reply(status=429, body=b"slow down", headers={"Retry-After": "1"})
        return Reply(body=PAGE.encode())

    fetched = fetch(web.route("/limited", limited), timeout=4)
    assert fetched.status == 200
    assert times[1] - times[0] >= 0.95


def test_429_with_http_date_and_with_too_long_a_wait(web: WebServer) -> None:
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    answers = iter([Reply(status=429, headers={"Retry-After": past}), Reply(body=PAGE.encode())])
    assert fetch(web.route("/date", lambda r: next(answers))).status == 200
    # A wait past the link's deadline is not attempted: fail now and say why.
    url = web.route("/later", Reply(status=429, headers={"Retry-After": "30"}))
    started = time.monotonic()
    message = fetch_error(url, timeout=2)
    assert time.monotonic() - started < 1
    assert message.startswith("HTTP 429 (too many requests)") and "2 s limit" in message
    assert web.hits("/later") == 1


def test_retry_after_parsing() -> None:
    now = time.time()
    assert parse_retry_after("5") == 5
    assert parse_retry_after("86400") == 60  # capped
    assert parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now) == pytest.approx(
        10, abs=1
    )
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_after_from_a_hostile_server_never_raises() -> None:
    # "²" passes str.isdigit() but not float(); a Latin-1 header byte 0xB2 decodes to it
    assert parse_retry_after("\xb2") is None
    assert parse_retry_after("nan") is None and parse_retry_after("inf") is None
    assert parse_retry_after("0.5") == 0.5


def test_other_4xx_is_not_retried(web: WebServer) -> None:
    url = web.route("/forbidden", Reply(status=403, body=b"no"))
    message = fetch_error(url)
    assert message.startswith("HTTP 403 (forbidden)") and "save the page" in message
    assert web.hits("/forbidden") == 1


# ---------------------------------------------------------------- redirects


def test_redirect_chain_is_followed_and_final_url_recorded(web: WebServer) -> None:
    web.route("/r1", Reply(status=301, headers={"Location": "/r2"}))
    web.route("/r2", Reply(status=302, headers={"Location": web.url + "/r3?x=1"}))
    web.route("/r3", Reply(status=307, headers={"Location": "final#top"}))
    web.page("/final", PAGE)
    fetched = fetch(web.url + "/r1")
    assert fetched.final_url == web.url + "/final"
    assert fetched.url == web.url + "/r1"
    assert fetched.redirects == [web.url + "/r2", web.url + "/r3?x=1", web.url + "/final"]
    assert fetched.body == PAGE.encode()


def test_redirect_loop_is_named(web: WebServer) -> None:
    web.route("/a", Reply(status=302, headers={"Location": "/b"}))
    web.route("/b", Reply(status=302, headers={"Location": "/a"}))
    assert fetch_error(web.url + "/a") == f"redirect loop at {web.url}/a"
    assert web.hits("/a") == 1 and web.hits("/b") == 1


def test_too_many_redirects(web: WebServer) -> None:
    for n in range(5):
        web.route(f"/hop{n}", Reply(status=302, headers={"Location": f"/hop{n + 1}"}))
    message = fetch_error(web.url + "/hop0", max_redirects=2)
    assert "too many redirects" in message and "fetch.max_redirects" in message


def test_meta_refresh_is_followed_once(web: WebServer) -> None:
    stub = "<html><head><meta http-equiv='refresh' content='0; url=/moved'></head><body>Moved</body></html>"
    web.page("/old", stub)
    back = '<html><head><meta http-equiv="Refresh" content="0;URL=\'/old\'"></head><body>x</body></html>'
    web.page("/moved", back)
    fetched = fetch(web.url + "/old")
    assert fetched.final_url == web.url + "/moved"
    assert web.hits("/old") == 1 and web.hits("/moved") == 1


def test_meta_refresh_parsing() -> None:
    base = "http://example.com/a/b"
    page = b"<head><meta content='5;url=../c#x' http-equiv='refresh'></head>"
    assert find_meta_refresh(page, base) == "http://example.com/c"
    assert find_meta_refresh(b"<meta http-equiv=refresh content=30>", base) is None
    assert find_meta_refresh(b"<body><meta http-equiv=refresh content='0;url=/x'>", base) is None


# ---------------------------------------------------------------- slow and silent servers


def test_trickling_response_hits_the_overall_deadline(web: WebServer) -> None:
    def trickle() -> Iterator[bytes]:
        yield b"<html><body>"
        while True:
            yield b"."

    url = web.route("/trickle", Reply(body=trickle(), chunk_delay=0.05))
    started = time.monotonic()
    assert fetch_error(url, timeout=1) == "timeout after 1 s"
    assert time.monotonic() - started < 1.8


def test_server_that_never_answers_times_out() -> None:
    server = SilentServer()
    try:
        started = time.monotonic()
        assert fetch_error(server.url + "/", timeout=0.5) == "timeout after 0.5 s"
        assert time.monotonic() - started < 1.3
    finally:
        server.close()


def test_connection_refused_is_retried_then_named() -> None:
    fetcher = Fetcher(settings(max_retries=2))
    with pytest.raises(FetchError, match=r"^connection refused by 127\.0\.0\.1$"):
        fetch(f"http://127.0.0.1:{closed_port()}/", fetcher)
    assert fetcher.requests == 3 and fetcher.retries == 2


# ---------------------------------------------------------------- bodies


def test_60_mb_body_is_cut_with_bounded_memory(web: WebServer) -> None:
    chunk = b"x" * (1 << 20)
    url = web.route("/huge", Reply(body=(chunk for _ in range(60)), content_type="text/plain"))
    tracemalloc.start()
    try:
        fetched = fetch(url, max_bytes=2_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fetched.truncated and len(fetched.body) == 2_000_000
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "br"])
def test_compressed_bodies_are_decoded(web: WebServer, encoding: str) -> None:
    raw = PAGE.encode() * 20
    body = {
        "gzip": lambda: gzip.compress(raw),
        "deflate": lambda: zlib.compress(raw),
        "raw-deflate": lambda: zlib.compress(raw, wbits=-15),
        "br": lambda: brotli.compress(raw),
    }[encoding]()
    header = "deflate" if encoding == "raw-deflate" else encoding
    url = web.page("/z", body, headers={"Content-Encoding": header})
    fetched = fetch(url)
    assert fetched.body == raw and not fetched.truncated
    assert "br" in web.requests[0].headers["Accept-Encoding"]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb_is_cut_with_bounded_memory(web: WebServer, encoding: str) -> None:
    zeros = b"\0" * (32 << 20)  # about 32 KB on the wire
    bomb = gzip.compress(zeros) if encoding == "gzip" else brotli.compress(zeros, quality=5)
    del zeros
    url = web.page("/bomb", bomb, headers={"Content-Encoding": encoding})
    tracemalloc.start()
    try:
        fetched = fetch(url, max_bytes=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fetched.truncated and len(fetched.body) == 1_000_000
    assert peak < 5_000_000, f"peak {peak / 1e6:.1f} MB"


def test_broken_gzip_is_a_plain_error(web: WebServer) -> None:
    url = web.page("/broken", b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    assert "broken gzip body" in fetch_error(url)


def test_local_files(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\nBody text.", encoding="utf-8")
    fetched = fetch(str(tmp_path / "a.md"), allow_private_hosts=False)
    assert fetched.is_local and fetched.content_type == "text/markdown"
    assert fetched.final_url == (tmp_path / "a.md").as_uri()
    assert "file not found" in fetch_error(str(tmp_path / "missing.html"))


# ---------------------------------------------------------------- limits


def test_per_host_and_overall_limits(web: WebServer) -> None:
    lock = threading.Lock()
    in_flight: dict[str, int] = {}
    peaks: dict[str, int] = {}
    total = {"now": 0, "peak": 0}

    def slow(request: Request) -> Reply:
        host = request.headers["Host"].split(":")[0]
        with lock:
            in_flight[host] = in_flight.get(host, 0) + 1
            peaks[host] = max(peaks.get(host, 0), in_flight[host])
            total["now"] += 1
            total["peak"] = max(total["peak"], total["now"])
        time.sleep(0.1)
        with lock:
            in_flight[host] -= 1
            total["now"] -= 1
        return Reply(body=PAGE.encode())

    web.route("/slow", slow)
    port = web.url.rsplit(":", 1)[1]

    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async def run(hosts: list[str], **changes: Any) -> None:
        fetcher = Fetcher(settings(timeout=5, **changes), resolver=resolver)
        try:
            await asyncio.gather(
                *(fetcher.fetch(f"http://{h}:{port}/slow", Path(".")) for h in hosts)
            )
        finally:
            await fetcher.aclose()

    asyncio.run(run(["one.test"] * 9, concurrency=16, per_host=3))
    assert peaks["one.test"] == 3
    total["peak"] = 0
    asyncio.run(run([f"h{i // 3}.test" for i in range(18)], concurrency=4, per_host=2))
    assert total["peak"] == 4
    assert max(peaks[f"h{i}.test"] for i in range(6)) == 2


# ---------------------------------------------------------------- the address guard

LOOPBACK_FORMS = ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "017700000001", "127.1"]
OTHER_PRIVATE = [
    ("[::1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:7f00:1]", "loopback"),
    ("[64:ff9b::7f00:1]", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("[fc00::1]", "private"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not public"),
]


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
def test_loopback_in_every_spelling_is_refused(web: WebServer, host: str) -> None:
    port = web.url.rsplit(":", 1)[1]
    web.page("/secret", PAGE)
    message = fetch_error(f"http://{host}:{port}/secret", allow_private_hosts=False)
    assert message == (
        "refused private address 127.0.0.1 (loopback; set fetch.allow_private_hosts = true to allow)"
    )
    assert web.hits("/secret") == 0
    assert fetch(f"http://{host}:{port}/secret", allow_private_hosts=True).body == PAGE.encode()
    assert web.hits("/secret") == 1


@pytest.mark.parametrize(("host", "kind"), OTHER_PRIVATE)
def test_other_private_addresses_are_refused_before_connecting(host: str, kind: str) -> None:
    message = fetch_error(f"http://{host}:9/", allow_private_hosts=False)
    assert message.startswith("refused private address ") and f"({kind};" in message
    assert "fetch.allow_private_hosts = true" in message


def test_blocked_kind_lets_public_addresses_through() -> None:
    assert blocked_kind("93.184.216.34") is None
    assert blocked_kind("2606:2800:220:1:248:1893:25c8:1946") is None
    assert blocked_kind("::ffff:93.184.216.34") is None
    assert blocked_kind("::ffff:10.0.0.1") == "private"


def test_allowed_private_loopback_forms_connect(web: WebServer) -> None:
    port = web.url.rsplit(":", 1)[1]
    web.page("/p", PAGE)
    assert fetch(f"http://0.0.0.0:{port}/p").status == 200


def test_connection_goes_to_the_checked_address(web: WebServer) -> None:
    """The own client connects to what the resolver said (no second lookup to rebind)."""
    port = web.url.rsplit(":", 1)[1]
    web.page("/pinned", PAGE)
    answers = {"news.test": ["127.0.0.1"]}
    fetcher = Fetcher(settings(), resolver=lambda host, port: answers[host])
    assert fetch(f"http://news.test:{port}/pinned", fetcher).status == 200
    assert web.requests[-1].headers["Host"] == f"news.test:{port}"
    guarded = Fetcher(
        settings(allow_private_hosts=False), resolver=lambda host, port: answers[host]
    )
    with pytest.raises(FetchError, match="refused private address 127.0.0.1"):
        fetch(f"http://news.test:{port}/pinned", guarded)
    assert web.hits("/pinned") == 1


def test_dns_rebinding_is_caught_at_connect(web: WebServer) -> None:
    """The name is public when checked, loopback when connecting: the connection is refused."""
    port = web.url.rsplit(":", 1)[1]
    web.page("/admin", PAGE)
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    fetcher = Fetcher(
        settings(allow_private_hosts=False), resolver=lambda host, port: next(answers)
    )
    with pytest.raises(FetchError, match="refused private address 127.0.0.1"):
        fetch(f"http://rebind.test:{port}/admin", fetcher)
    assert web.hits("/admin") == 0


def test_any_private_answer_refuses_the_host() -> None:
    both = Fetcher(
        settings(allow_private_hosts=False),
        resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"],
    )
    with pytest.raises(FetchError, match=r"refused private address 10\.0\.0\.7 \(private;"):
        fetch("http://mixed.test/", both)


def test_unknown_host_is_named() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    fetcher = Fetcher(settings(allow_private_hosts=False), resolver=nowhere)  # no DNS traffic
    with pytest.raises(FetchError) as info:
        fetch("http://no-such-host.invalid/", fetcher)
    assert str(info.value) == "host not found: no-such-host.invalid"


def test_redirect_hop_is_checked_again(web: WebServer) -> None:
    """An injected client: a public page redirecting to a private address is refused."""
    port = web.url.rsplit(":", 1)[1]
    web.page("/internal", PAGE)

    def public_site(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": f"http://127.0.0.1:{port}/internal"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(public_site))
    fetcher = Fetcher(
        settings(allow_private_hosts=False),
        client,
        resolver=lambda host, port: ["93.184.216.34"] if host == "public.test" else ["127.0.0.1"],
    )

    async def run() -> None:
        try:
            await fetcher.fetch("http://public.test/start", Path("."))
        finally:
            await client.aclose()

    with pytest.raises(FetchError, match="refused private address 127.0.0.1"):
        asyncio.run(run())
    assert fetcher.requests == 1 and web.hits("/internal") == 0


# ---------------------------------------------------------------- through compose


def _issue(make_workspace: Any, links: str) -> tuple[Path, Path]:
    root = make_workspace(
        '[newsletter]\nname = "T"\nlanguage = "en"\n[fetch]\nallow_private_hosts = true\ntimeout = 2\n'
    )
    issue = root / "issues" / "001"
    issue.mkdir()
    (issue / "links.yaml").write_text(links, encoding="utf-8")
    return root, issue


def _compose(root: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["compose", "--workspace", str(root), "--offline", *args])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads((root / "issues" / "001" / "report.json").read_text())
    return report


def test_compose_report_cache_refresh_and_duplicates(web: WebServer, make_workspace: Any) -> None:
    one = web.page("/one", article_html("First story here", ["Alpha text " * 20]))
    two = web.page("/two", article_html("Second story here", ["Beta text " * 20]))
    web.route("/go", Reply(status=301, headers={"Location": "/two"}))
    links = f"- {one}?utm_source=news\n- {web.url}/go\n- {one}?fbclid=abc\n- {web.url}/gone\n"
    root, issue = _issue(make_workspace, links)

    report = _compose(root)
    by_url = {entry["url"]: entry for entry in report["links"]}
    first = by_url[f"{one}?utm_source=news"]
    assert first["status"] == "ok" and first["final_url"] == one
    assert first["bytes"] > 0 and first["fetch_seconds"] is not None
    moved = by_url[f"{web.url}/go"]
    assert moved["status"] == "ok" and moved["final_url"] == two
    duplicate = by_url[f"{one}?fbclid=abc"]
    assert duplicate["status"] == "skipped" and "duplicate of entry 1" in duplicate["error"]
    gone = by_url[f"{web.url}/gone"]
    assert gone["status"] == "failed" and gone["error"].startswith("HTTP 404")
    assert web.hits("/one") == 1 and web.hits("/two") == 1
    assert report["fetch"]["requests"] == 4  # one, go, two (the redirect target), gone

    # A second compose, with the draft gone, takes every article from the cache.
    (issue / "draft.md").unlink()
    report = _compose(root)
    assert web.hits("/one") == 1 and web.hits("/two") == 1
    assert report["fetch"]["cached"] == 2 and report["fetch"]["requests"] == 1  # /gone again

    # --refresh fetches that one link again, and only it.
    _compose(root, "--refresh", one)
    assert web.hits("/one") == 2 and web.hits("/two") == 1


@pytest.mark.parametrize(
    "url", ["http://exa mple.com/", "http://[::1/", "http://example.com:99999/"]
)
def test_malformed_web_address_is_named(url: str) -> None:
    assert fetch_error(url) == f"not a valid web address: {url}"
