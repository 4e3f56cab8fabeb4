"""Fetching one link: http(s) with httpx, or a local file. Limits, cache hooks, plain errors."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import __version__
from digest.config import FetchSettings
from digest.errors import FetchError
from digest.intake import is_web_url

USER_AGENT = f"digest/{__version__} (newsletter digest composer; +https://github.com/digest)"


@dataclass
class Fetched:
    """A fetched body and what is known about it."""

    url: str
    final_url: str
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool = False
    status: int = 200
    elapsed: float = 0.0
    requests: int = 0
    is_local: bool = False


def local_path(target: str, base_dir: Path) -> Path | None:
    """The file a links.yaml entry names, or None for a web URL."""
    if is_web_url(target):
        return None
    if target.startswith("file:"):
        path = Path(unquote(urlsplit(target).path))
    else:
        path = Path(target).expanduser()
    return path if path.is_absolute() else base_dir / path


def guess_type_from_name(path: Path) -> str:
    """A content type from a file suffix."""
    return {
        ".html": "text/html",
        ".htm": "text/html",
        ".pdf": "application/pdf",
        ".txt": "text/plain",
        ".md": "text/markdown",
        ".markdown": "text/markdown",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".gif": "image/gif",
    }.get(path.suffix.lower(), "application/octet-stream")


class Fetcher:
    """Fetches links with one shared httpx client and the [fetch] limits."""

    def __init__(self, settings: FetchSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent or USER_AGENT},
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=True,
        )
        self._limit = asyncio.Semaphore(settings.concurrency)
        self.requests = 0

    async def aclose(self) -> None:
        """Close the client if this fetcher made it."""
        if self._own_client:
            await self.client.aclose()

    async def fetch(self, target: str, base_dir: Path) -> Fetched:
        """Fetch a web URL or read a local file; raise FetchError with a plain reason."""
        path = local_path(target, base_dir)
        if path is not None:
            return self._read_local(target, path)
        async with self._limit:
            return await self._fetch_web(target)

    def _read_local(self, target: str, path: Path) -> Fetched:
        try:
            with path.open("rb") as handle:
                body = handle.read(self.settings.max_bytes + 1)
        except FileNotFoundError:
            raise FetchError(f"file not found: {path}") from None
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
            is_local=True,
        )

    async def _fetch_web(self, url: str) -> Fetched:
        started = time.monotonic()
        self.requests += 1
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise FetchError(f"HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.settings.max_bytes:
                        truncated = True
                        break
                body = b"".join(chunks)[: self.settings.max_bytes]
                content_type = response.headers.get("content-type", "")
                mime = content_type.split(";")[0].strip().lower()
                return Fetched(
                    url=url,
                    final_url=str(response.url),
                    content_type=mime,
                    charset=response.charset_encoding,
                    body=body,
                    truncated=truncated,
                    status=response.status_code,
                    elapsed=time.monotonic() - started,
                    requests=1,
                )
        except httpx.TimeoutException:
            raise FetchError(f"timeout after {self.settings.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"connection failed: {exc}") from None
