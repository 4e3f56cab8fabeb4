"""HTTPS through the fetcher's own transport: the pinned connection still verifies the name."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import FetchSettings
from digest.errors import FetchError
from digest.fetch import Fetched, Fetcher
from tests.conftest import article_html
from tests.webserver import WebServer

PAGE = article_html("Secure page", ["A paragraph served over TLS with enough words to count."])


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[WebServer, str]]:
    """An HTTPS server on 127.0.0.1 whose certificate names news.test; yields it and the cert."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=news.test", "-addext", "subjectAltName=DNS:news.test"]
        + ["-keyout", key, "-out", cert],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr[-200:]!r}")
    web = WebServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    web.httpd.socket = context.wrap_socket(web.httpd.socket, server_side=True)
    web.page("/secure", PAGE)
    web.start()
    try:
        yield web, cert
    finally:
        web.stop()


def fetch(url: str) -> Fetched:
    """Fetch through a fetcher that resolves news.test to the local server (guard on)."""

    async def run() -> Fetched:
        fetcher = Fetcher(
            FetchSettings(allow_private_hosts=True, timeout=5),
            resolver=lambda host, port: ["127.0.0.1"],
        )
        try:
            return await fetcher.fetch(url, Path("."))
        finally:
            await fetcher.aclose()

    return asyncio.run(run())


def test_https_to_a_pinned_address_verifies_the_host_name(
    tls_site: tuple[WebServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    web, cert = tls_site
    port = web.url.rsplit(":", 1)[1]
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # honoured, as the docs promise
    fetched = fetch(f"https://news.test:{port}/secure")
    assert fetched.status == 200 and b"Secure page" in fetched.body
    assert web.requests[-1].headers["Host"] == f"news.test:{port}"


def test_https_with_an_untrusted_certificate_fails_plainly(
    tls_site: tuple[WebServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    web, _ = tls_site
    port = web.url.rsplit(":", 1)[1]
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(FetchError, match="secure connection to news.test failed"):
        fetch(f"https://news.test:{port}/secure")
