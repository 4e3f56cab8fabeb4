"""Fetching one link: http(s) with one shared httpx client, or a local file.

What a web fetch guarantees:
- limits: `fetch.concurrency` requests in flight overall, `fetch.per_host` per host name;
  a link waiting for a slot holds no other slot;
- one deadline per link (`fetch.timeout`) over every request, retry pause and redirect hop
  of that link (time spent waiting for a slot is not counted), since a server trickling
  bytes never trips httpx's per-read timeout;
- retries of connection errors, HTTP 429 and 5xx with jittered exponential backoff
  (`fetch.backoff_base`), honouring `Retry-After` (capped at 60 s and at the deadline);
- redirects followed by hand (`fetch.max_redirects`, loop detection), one
  `<meta http-equiv="refresh">` followed, the final URL recorded;
- bodies decoded (gzip, deflate, br) by hand and cut at `fetch.max_bytes` of decoded bytes,
  so neither a huge body nor a compression bomb can grow memory past that limit;
- the address guard: every address a host name resolves to is checked, and unless
  `fetch.allow_private_hosts` is true, loopback, private, link-local, multicast, reserved
  and unspecified addresses (IPv4, IPv6, IPv4-mapped and NAT64 forms) are refused. The
  host is checked before each request (the first and every redirect hop), and with the
  fetcher's own client once more in the connection layer, which connects the socket to the
  very address it checked (httpx does no lookup of its own, so a DNS answer that changes
  between check and connect, "DNS rebinding", cannot slip through). An injected client gets
  the check before each request only. Proxy variables from the environment are ignored
  (SSL_CERT_FILE is honoured), so that the connection goes where the guard looked. Local
  files are always allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from digest import __version__
from digest.config import FetchSettings
from digest.errors import FetchError
from digest.retry import backoff, parse_retry_after
from digest.urls import is_web_url, local_path

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

USER_AGENT = f"digest/{__version__} (newsletter digest composer; +https://github.com/digest)"
ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,*/*;q=0.5"
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
GUARD_HINT = "set fetch.allow_private_hosts = true to allow"
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], list[str]]


@dataclass
class Fetched:
    """A fetched body and what is known about it."""

    url: str
    final_url: str
    content_type: str
    charset: str | None
    body: bytes = field(repr=False)  # a repr of megabytes helps no one
    truncated: bool = False
    status: int = 200
    elapsed: float = 0.0
    requests: int = 0
    is_local: bool = False
    redirects: list[str] = field(default_factory=list)


def guess_type_from_name(path: Path) -> str:
    """A content type from a file suffix."""
    return {
        ".html": "text/html",
        ".htm": "text/html",
        ".xhtml": "application/xhtml+xml",
        ".pdf": "application/pdf",
        ".txt": "text/plain",
        ".md": "text/markdown",
        ".markdown": "text/markdown",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".gif": "image/gif",
    }.get(path.suffix.lower(), "application/octet-stream")


# ---------------------------------------------------------------- address guard


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for a host, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def blocked_kind(address: str) -> str | None:
    """Why an address may not be fetched (loopback, private, ...), or None when it is public."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return "unparsable"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    )
    for kind, hit in checks:
        if hit:
            return kind
    return None if ip.is_global else "not public"


async def resolve_checked(
    host: str, port: int, resolver: Resolver, allow_private: bool
) -> list[str]:
    """Resolve a host (off the event loop); refuse it if any address is not public."""
    try:
        addresses = await asyncio.to_thread(resolver, host, port)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise FetchError(f"host name lookup failed for {host} (try again later)") from None
        raise FetchError(f"host not found: {host}") from None
    except (OSError, UnicodeError):
        raise FetchError(f"host not found: {host}") from None
    if not addresses:
        raise FetchError(f"host not found: {host}")
    if not allow_private:
        for address in addresses:
            kind = blocked_kind(address)
            if kind is not None:
                raise FetchError(f"refused private address {address} ({kind}; {GUARD_HINT})")
    return addresses


class GuardedBackend:
    """An httpcore network backend that connects only to addresses it has checked."""

    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        import httpcore

        self.resolver = resolver
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        """Resolve and check the host, then connect to the checked address itself."""
        import httpcore

        addresses = await resolve_checked(host, port, self.resolver, self.allow_private)
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:
        """Unix sockets are never used for web links."""
        raise FetchError("unix sockets are not supported")

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore uses this between its own connection attempts)."""
        await self.inner.sleep(seconds)


_CORE_ERRORS = (
    "TimeoutException",
    "NetworkError",
    "ProtocolError",
    "ProxyError",
    "UnsupportedProtocol",
)


def _httpx_error(exc: Exception, request: httpx.Request) -> Exception:
    """An httpcore exception as httpx's own of the same name, as httpx's transport maps them."""
    import httpx

    for kind in type(exc).__mro__:
        twin = getattr(httpx, kind.__name__, None)
        if isinstance(twin, type) and issubclass(twin, httpx.TransportError):
            return twin(str(exc), request=request)
    return exc


def _core_request(request: httpx.Request) -> Any:
    """The httpcore request for an httpx request."""
    import httpcore

    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def guarded_transport(resolver: Resolver, allow_private: bool, connections: int) -> Any:
    """An httpx transport over httpcore's public pool, connecting through GuardedBackend."""
    # httpx's own transport takes no network backend: this one builds the pool itself
    # (certificates and SSL_CERT_FILE as httpx does) and maps httpcore's errors as httpx does.
    import httpcore
    import httpx

    errors = tuple(getattr(httpcore, name) for name in _CORE_ERRORS)

    class Body(httpx.AsyncByteStream):
        def __init__(self, stream: Any, request: httpx.Request) -> None:
            self.stream, self.request = stream, request

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for part in self.stream:
                    yield part
            except errors as exc:
                raise _httpx_error(exc, self.request) from exc

        async def aclose(self) -> None:
            await self.stream.aclose()

    class Transport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.pool = httpcore.AsyncConnectionPool(
                ssl_context=httpx.create_ssl_context(),
                max_connections=connections,
                max_keepalive_connections=connections,
                keepalive_expiry=5.0,
                network_backend=GuardedBackend(resolver, allow_private),  # type: ignore[arg-type]
            )

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response = await self.pool.handle_async_request(_core_request(request))
            except errors as exc:
                raise _httpx_error(exc, request) from exc
            return httpx.Response(
                status_code=response.status,
                headers=response.headers,
                stream=Body(response.stream, request),
                extensions=response.extensions,
            )

        async def aclose(self) -> None:
            await self.pool.aclose()

    return Transport()


# ---------------------------------------------------------------- bounded decoding


class _Decoder:
    """Content-Encoding decoding that never produces more than it is asked for."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib: Any = None
        self._brotli: Any = None
        self._fresh = True
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj()
        elif encoding == "br":
            import brotli

            self._brotli = brotli.Decompressor()
        elif encoding not in ("", "identity"):
            raise FetchError(f"unsupported content encoding: {encoding}")

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode a raw chunk into at most `limit` bytes."""
        try:
            if self._zlib is not None:
                return self._feed_zlib(data, limit)
            if self._brotli is not None:
                try:
                    return bytes(self._brotli.process(data, output_buffer_limit=limit))
                except TypeError:  # brotli < 1.2 has no output limit
                    return bytes(self._brotli.process(data))
        except Exception as exc:  # zlib.error, brotli.error
            raise FetchError(f"the server sent a broken {self.encoding} body ({exc})") from None
        return data

    def _feed_zlib(self, data: bytes, limit: int) -> bytes:
        if self._zlib.eof:
            return b""
        try:
            out = self._zlib.decompress(data, limit)
        except zlib.error:
            if not (self.encoding == "deflate" and self._fresh):
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            out = self._zlib.decompress(data, limit)
        self._fresh = False
        return bytes(out)


# ---------------------------------------------------------------- small helpers


def parse_content_type(value: str) -> tuple[str, str | None]:
    """The MIME type and charset parameter of a Content-Type header."""
    mime, _, params = value.partition(";")
    match = re.search(r"charset\s*=\s*[\"']?([^\"';\s]+)", params, re.IGNORECASE)
    return mime.strip().lower(), (match.group(1) if match else None)


_META_REFRESH = re.compile(rb"<meta[^>]+http-equiv\s*=\s*[\"']?refresh[\"']?[^>]*>", re.IGNORECASE)
_REFRESH_URL = re.compile(
    r"""^\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?["']?([^"'\s>][^"'>]*)""", re.IGNORECASE
)


def find_meta_refresh(body: bytes, base_url: str) -> str | None:
    """The absolute target of a `<meta http-equiv="refresh">` in the page's head, if any."""
    head = body[:16384]
    cut = re.search(rb"<body[\s>]", head, re.IGNORECASE)
    if cut:
        head = head[: cut.start()]
    for tag in _META_REFRESH.finditer(head):
        content = re.search(rb"content\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", tag.group(0), re.I)
        if not content:
            continue
        value = content.group(1).strip(b"\"'").decode("ascii", "replace")
        if not re.search(r"url\s*=|[;,]", value, re.IGNORECASE):
            continue  # "30": a reload of the same page, no target
        match = _REFRESH_URL.match(value)
        if match:
            target = urljoin(base_url, match.group(1).strip())
            if is_web_url(target):
                return _without_fragment(target)
    return None


def _without_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def http_error(status: int, attempts: int = 1) -> str:
    """A plain-word reason for an HTTP error status."""
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    text = f"HTTP {status} ({phrase})"
    if status in (401, 403):
        text += "; the site refuses automated requests: save the page and list the file instead"
    if attempts > 1:
        text += f" after {attempts} attempts"
    return text


def _causes(exc: BaseException) -> list[BaseException]:
    """An exception and everything it was raised from (groups opened), outermost first."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(c for c in (current.__cause__, current.__context__) if c is not None)
    return seen


def _connection_reason(exc: Exception, host: str) -> tuple[str, bool]:
    """A plain-word reason for a transport error, and whether retrying may help."""
    import ssl

    import httpx

    causes = _causes(exc)
    text = str(exc) or type(exc).__name__
    if any(isinstance(c, ssl.SSLError) for c in causes) or "certificate" in text.lower():
        return f"secure connection to {host} failed ({text})", False
    if any(isinstance(c, socket.gaierror) for c in causes) or "name or service" in text.lower():
        return f"host not found: {host}", False
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return f"connection refused by {host}", True
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return f"connection reset by {host}", True
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect to {host} in time", True
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} closed the connection early", True
    return f"connection to {host} failed ({text})", True


@dataclass
class _Response:
    """One HTTP response, body read (or not) as the status asks."""

    status: int
    url: str
    headers: dict[str, str]
    body: bytes = b""
    truncated: bool = False


class _Budget:
    """The time one link may spend in requests and retry pauses."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spent = 0.0

    @property
    def remaining(self) -> float:
        return self.seconds - self.spent

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Count the time inside; raise FetchError when the budget runs out."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(self.remaining, 0.0)):
                yield
        except TimeoutError:
            raise FetchError(f"timeout after {self.seconds:g} s") from None
        finally:
            self.spent += time.monotonic() - started


# ---------------------------------------------------------------- the fetcher


class Fetcher:
    """Fetches links with one shared httpx client and the [fetch] limits."""

    def __init__(
        self,
        settings: FetchSettings,
        client: httpx.AsyncClient | None = None,
        *,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver or system_resolver
        self._own_client = client is None
        self.client = client or self._make_client()
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self.requests = 0
        self.retries = 0

    def _make_client(self) -> httpx.AsyncClient:
        import httpx

        limit = self.settings.concurrency
        # The guard lives in the connection layer: httpcore's pool takes a network backend.
        transport = guarded_transport(self.resolver, self.settings.allow_private_hosts, limit)
        timeout = self.settings.timeout
        return httpx.AsyncClient(
            transport=transport,
            headers={"User-Agent": self.settings.user_agent or USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close the client if this fetcher made it."""
        if self._own_client:
            await self.client.aclose()

    async def fetch(self, target: str, base_dir: Path) -> Fetched:
        """Fetch a web URL or read a local file; raise FetchError with a plain reason."""
        scheme = target.strip().partition(":")[0].lower()
        if scheme in ("http", "https") and not is_web_url(target):
            raise FetchError(f"not a valid web address: {target}")
        path = local_path(target, base_dir)
        if path is not None:
            log.debug("reading local file %s", path)
            return await asyncio.to_thread(self._read_local, target, path)
        return await self._fetch_web(target)

    def _read_local(self, target: str, path: Path) -> Fetched:
        started = time.monotonic()
        try:
            with path.open("rb") as handle:
                body = handle.read(self.settings.max_bytes + 1)
        except FileNotFoundError:
            raise FetchError(f"file not found: {path}") from None
        except IsADirectoryError:
            raise FetchError(f"{path} is a folder, not a file") from None
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {exc.strerror}") from None
        truncated = len(body) > self.settings.max_bytes
        return Fetched(
            url=target,
            final_url=path.resolve().as_uri(),
            content_type=guess_type_from_name(path),
            charset=None,
            body=body[: self.settings.max_bytes],
            truncated=truncated,
            elapsed=time.monotonic() - started,
            is_local=True,
        )

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(self.settings.per_host)
        return slot

    async def _fetch_web(self, url: str) -> Fetched:
        started = time.monotonic()
        budget = _Budget(self.settings.timeout)
        original = url
        url = _without_fragment(url.strip())
        visited = [url]
        requests_before = self.requests
        refreshed = False
        while True:
            response = await self._get(url, budget)
            if response.status in REDIRECT_STATUSES:
                url = self._next_hop(url, response, visited)
                continue
            if response.status >= 400:
                raise FetchError(http_error(response.status))
            mime, charset = parse_content_type(response.headers.get("content-type", ""))
            if not refreshed and (mime in ("text/html", "application/xhtml+xml", "")):
                target = find_meta_refresh(response.body, url)
                if target is not None and target not in visited:
                    refreshed = True
                    visited.append(target)
                    url = target
                    continue
            return Fetched(
                url=original,
                final_url=response.url,
                content_type=mime,
                charset=charset,
                body=response.body,
                truncated=response.truncated,
                status=response.status,
                elapsed=time.monotonic() - started,
                requests=self.requests - requests_before,
                redirects=visited[1:],
            )

    def _next_hop(self, url: str, response: _Response, visited: list[str]) -> str:
        location = response.headers.get("location", "").strip()
        if not location:
            raise FetchError(f"HTTP {response.status} redirect without a Location header")
        target = _without_fragment(urljoin(url, location))
        if not is_web_url(target):
            raise FetchError(f"redirect to a non-web address: {target}")
        if target in visited:
            raise FetchError(f"redirect loop at {target}")
        if len(visited) > self.settings.max_redirects:
            raise FetchError(
                f"too many redirects (more than {self.settings.max_redirects}, fetch.max_redirects)"
            )
        visited.append(target)
        return target

    async def _get(self, url: str, budget: _Budget) -> _Response:
        """One hop: a GET with retries for connection errors, 429 and 5xx."""
        import httpx

        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host:
            raise FetchError(f"not a valid web address: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        attempt = 0
        while True:
            delay: float | None = None
            failure: str
            async with self._host_slot(host), self._limit:
                try:
                    async with budget.running():
                        if not self.settings.allow_private_hosts:
                            await resolve_checked(
                                host, port, self.resolver, self.settings.allow_private_hosts
                            )
                        self.requests += 1
                        response = await self._request(url)
                except httpx.InvalidURL as exc:
                    raise FetchError(f"not a valid web address: {url} ({exc})") from None
                except httpx.TimeoutException as exc:
                    if not isinstance(exc, httpx.ConnectTimeout):
                        raise FetchError(f"timeout after {self.settings.timeout:g} s") from None
                    failure, retry = _connection_reason(exc, host)
                    if not retry:
                        raise FetchError(failure) from None
                except (httpx.TransportError, httpx.DecodingError) as exc:
                    failure, retry = _connection_reason(exc, host)
                    if not retry:
                        raise FetchError(failure) from None
                else:
                    if response.status != 429 and response.status < 500:
                        return response
                    if response.status == 501:
                        raise FetchError(http_error(response.status))
                    failure = http_error(response.status, attempt + 1)
                    delay = parse_retry_after(response.headers.get("retry-after"))
            if attempt >= self.settings.max_retries:
                raise FetchError(failure)
            if delay is None:
                delay = backoff(attempt, self.settings.backoff_base)
            if delay > budget.remaining:
                limit = f"{self.settings.timeout:g} s"
                raise FetchError(f"{failure}; no retry, as it would pass the {limit} limit")
            log.info("GET %s: %s; retry %d in %.1f s", url, failure, attempt + 1, delay)
            async with budget.running():
                await asyncio.sleep(delay)
            attempt += 1
            self.retries += 1

    async def _request(self, url: str) -> _Response:
        """Send one GET; read the body (bounded) only for a final 2xx/3xx answer."""
        headers = {"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
        started = time.monotonic()
        log.debug("GET %s", url)
        async with self.client.stream("GET", url, headers=headers) as response:
            result = _Response(
                status=response.status_code,
                url=str(response.url),
                headers={k.lower(): v for k, v in response.headers.items()},
            )
            if result.status not in REDIRECT_STATUSES and result.status < 400:
                result.body, result.truncated = await self._read_body(response, result.headers)
            log.debug(
                "GET %s: HTTP %d, %d bytes%s in %.2f s",
                url,
                result.status,
                len(result.body),
                " (cut at fetch.max_bytes)" if result.truncated else "",
                time.monotonic() - started,
            )
            return result

    async def _read_body(
        self, response: httpx.Response, headers: dict[str, str]
    ) -> tuple[bytes, bool]:
        """Stream the raw body through a bounded decoder; cut at max_bytes decoded bytes."""
        limit = self.settings.max_bytes
        encoding = headers.get("content-encoding", "").strip().lower()
        decoder = _Decoder(encoding)
        buffer = bytearray()
        truncated = False
        async for raw in response.aiter_raw():
            buffer += decoder.feed(raw, limit - len(buffer) + 1)
            if len(buffer) > limit:
                truncated = True
                break
        if truncated:
            del buffer[limit:]
        return bytes(buffer), truncated
