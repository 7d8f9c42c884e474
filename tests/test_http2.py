"""HTTPS through the backends, and HTTP/2 with Hypercorn (docs/backends.rst).

The certificates come from a throwaway CA (trustme), handed to the Server the way ``execlib.tls``
hands its own (``execlib.server.backends.tls_of``); the clients trust only that CA, so each
fetch here also proves the certificate was served and verified.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from execlib import Server

from .backend_support import CertFiles, make_cert_files, serve_tls_with
from .helpers import run_async

BACKENDS = ["uvicorn", "hypercorn"]


@pytest.fixture
def certs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CertFiles:
    files = make_cert_files(tmp_path / "certs")
    serve_tls_with(monkeypatch, files)
    return files


class Records(logging.Handler):
    """Every log record (asyncio's, Hypercorn's and execlib's), whatever an earlier test configured."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [self.format(r) for r in self.records if r.exc_info or "Traceback" in r.getMessage()]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_http2_is_negotiated_with_hypercorn(site: Path, certs: CertFiles) -> None:
    server = Server(site, port=0, http2=True).start_in_thread()  # backend "auto": Hypercorn
    try:
        assert server.backend == "hypercorn"
        assert server.url.startswith("https://")

        async def fetch() -> list[httpx.Response]:
            async with httpx.AsyncClient(http2=True, verify=certs.client_context(), timeout=10) as client:
                return [await client.get(server.url + path) for path in ("", "style.css", "livereload.js")]

        responses = run_async(fetch())
        assert [r.http_version for r in responses] == ["HTTP/2"] * 3
        assert [r.status_code for r in responses] == [200] * 3
        assert "/livereload.js" in responses[0].text  # the page still gets the live-reload client
    finally:
        server.shutdown()
        assert server.wait(5)


def test_http11_clients_still_served_when_http2_is_offered(site: Path, certs: CertFiles) -> None:
    with Server(site, port=0, http2=True) as server, httpx.Client(verify=certs.client_context()) as client:
        response = client.get(server.url)
        assert (response.http_version, response.status_code) == ("HTTP/1.1", 200)


@pytest.mark.parametrize("backend", BACKENDS)
def test_https_http11_on_each_backend(site: Path, certs: CertFiles, backend: str) -> None:
    with Server(site, port=0, backend=backend) as server:
        assert server.url.startswith("https://127.0.0.1:")

        async def fetch() -> httpx.Response:
            # http2=True asked, but without http2=True on the server only HTTP/1.1 is offered
            async with httpx.AsyncClient(http2=True, verify=certs.client_context(), timeout=10) as client:
                return await client.get(server.url + "about.html")

        response = run_async(fetch())
        assert (response.http_version, response.status_code) == ("HTTP/1.1", 200)


def test_a_client_not_trusting_the_ca_is_refused(site: Path, certs: CertFiles, tmp_path: Path) -> None:
    other = make_cert_files(tmp_path / "other")
    with Server(site, port=0, http2=True) as server, pytest.raises(httpx.ConnectError):
        httpx.get(server.url, verify=other.client_context(), timeout=10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_plain_http_to_the_tls_port_is_closed_cleanly(
    site: Path, certs: CertFiles, records: Records, backend: str
) -> None:
    with Server(site, port=0, backend=backend, http2=backend == "hypercorn") as server:
        with socket.create_connection(server.bound_addr, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            received = b""
            started = time.monotonic()
            while chunk := sock.recv(4096):  # an answer, or a close: never a hang
                received += chunk
            assert time.monotonic() - started < 5
        assert not received or received.startswith((b"HTTP/1.", b"\x15"))  # an HTTP answer, or a TLS alert
        # and the server goes on serving HTTPS
        assert httpx.get(server.url, verify=certs.client_context(), timeout=10).status_code == 200
    assert records.tracebacks() == []


def test_tls_handshake_failures_are_not_logged_as_errors(site: Path, certs: CertFiles, records: Records) -> None:
    with Server(site, port=0, http2=True) as server:
        context = ssl.create_default_context()  # trusts the system CAs, not ours: the client aborts
        with pytest.raises(ssl.SSLError), socket.create_connection(server.bound_addr, timeout=10) as raw:
            context.wrap_socket(raw, server_hostname="localhost")
        assert httpx.get(server.url, verify=certs.client_context(), timeout=10).status_code == 200
    assert records.tracebacks() == []
    assert [r for r in records.records if r.levelno >= logging.ERROR] == []


def test_an_h2_download_in_flight_at_shutdown_ends_it_promptly_and_quietly(
    tmp_path: Path, certs: CertFiles, records: Records
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "big.bin").write_bytes(bytes(16 << 20))
    server = Server(site, port=0, http2=True, graceful_timeout=0.5).start_in_thread()

    async def download_without_reading() -> float:
        client = httpx.AsyncClient(http2=True, verify=certs.client_context(), timeout=10)
        async with client, client.stream("GET", server.url + "big.bin") as response:
            assert response.http_version == "HTTP/2"
            started = time.monotonic()
            await asyncio.to_thread(server.shutdown)  # the server waits for a window that never opens
            assert await asyncio.to_thread(server.wait, 5)
            with pytest.raises(httpx.HTTPError):
                await response.aread()
            return time.monotonic() - started

    assert run_async(download_without_reading()) < 3
    assert records.tracebacks() == []
    assert [r.getMessage() for r in records.records if r.levelno >= logging.ERROR] == []


def test_cli_https_http2_serves_h2_with_hypercorn_and_the_local_ca(site: Path, tmp_path: Path) -> None:
    """``execlib serve --https --http2``: Hypercorn picked by itself, h2 verified against the local CA only."""
    import json
    import os
    import subprocess

    from .helpers import execlib_cmd, read_line

    data = tmp_path / "data"
    env = {**os.environ, "EXECLIB_DATA_DIR": str(data)}
    args = ("serve", str(site), "--port", "0", "--no-config", "--banner", "json", "--https", "--http2")
    proc = subprocess.Popen(execlib_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        fields = json.loads(read_line(proc))
        assert fields["backend"] == "hypercorn"
        assert fields["url"].startswith("https://")
        context = ssl.create_default_context(cafile=str(data / "ca" / "ca.pem"))

        async def fetch() -> httpx.Response:
            async with httpx.AsyncClient(http2=True, verify=context, timeout=10) as client:
                return await client.get(fields["url"])

        response = run_async(fetch())
        assert (response.http_version, response.status_code) == ("HTTP/2", 200)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
