"""Server.bound_addr before binding, the health endpoint's caching header, and a quiet shutdown
while large downloads are still streaming."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from execlib import Server

from .helpers import start_cli, wait_until

BIG = 200 << 20  # sparse: costs no disk space, and far more than a slow client reads in seconds
NOISE = ("Traceback", "CancelledError", "Exception in ASGI application", "without completing response")


# -- 1. bound_addr is None until the socket is bound ----------------------------------


def test_bound_addr_is_none_until_bound_and_url_explains(site: Path) -> None:
    server = Server(site, port=0)
    assert server.bound_addr is None
    with pytest.raises(RuntimeError, match="not bound yet"):
        _ = server.url
    server.bind()
    try:
        bound = server.bound_addr
        assert bound is not None
        host, port = bound
        assert host == "127.0.0.1" and port > 0
        assert server.url == f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.start()  # shutdown() came first: returns at once and releases the bound socket
    assert server.bound_addr == bound  # the address stays readable after serving ended


def test_bound_addr_of_a_running_server_is_the_port_it_answers_on(site: Path) -> None:
    seen_in_pre_serve: list[tuple[str, int] | None] = []
    server = Server(site, port=0, pre_serve=lambda s: seen_in_pre_serve.append(s.bound_addr))
    assert server.bound_addr is None
    with server:
        bound = server.bound_addr
        assert bound is not None and bound[1] != 0
        assert seen_in_pre_serve == [bound]
        with socket.create_connection(bound, timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.recv(64).startswith(b"HTTP/1.1 200")


def test_bound_addr_is_none_after_shutdown_before_start(site: Path) -> None:
    server = Server(site, port=0)
    server.shutdown()
    server.start()  # returns at once without binding
    assert server.bound_addr is None
    with pytest.raises(RuntimeError, match="not bound yet"):
        _ = server.url


# -- 2. the health endpoint is not cached ----------------------------------------------


def test_health_endpoint_is_no_cache(serve, client: httpx.Client, site: Path) -> None:
    server = serve(site)
    response = client.get(server.url + "__execlib__/health")
    assert response.status_code == 200
    assert response.headers.get("cache-control") == "no-cache"
    body = response.json()
    assert body["status"] == "ok" and body["pid"] == os.getpid() and body["server"] == "execlib"


# -- 3. shutdown while large downloads stream ------------------------------------------


class SlowDownload:
    """A raw-socket client that requests a file and reads it a little at a time until the
    server ends the connection. ``hurry()`` drops the pacing, so that what the kernel still
    buffers for it is read at once and the end of the connection shows promptly."""

    def __init__(self, addr: tuple[str, int], path: str, extra_header: str = "") -> None:
        self.sock = socket.create_connection(addr, timeout=10)
        request = f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra_header}\r\n"
        self.sock.sendall(request.encode())
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            chunk = self.sock.recv(4096)
            assert chunk, f"the server closed before answering: {self.head!r}"
            self.head += chunk
        self.received = len(self.head)
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self.sock.recv(1024)
                if not chunk:
                    break
                self.received += len(chunk)
                if not self._hurry.is_set():
                    self._hurry.wait(0.02)  # pacing: what makes the client slow, not a synchronisation
        except OSError:
            pass  # a reset ends the download as well
        finally:
            self.ended.set()

    def hurry(self) -> None:
        self._hurry.set()

    def close(self) -> None:
        self._stop.set()
        self._hurry.set()
        self.thread.join(10)
        self.sock.close()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        return "\n".join(formatter.format(record) for record in self.records)


@pytest.fixture
def captured_logs() -> Iterator[Captured]:
    """Every record of the root, uvicorn and execlib loggers, whatever an earlier test configured."""
    handler = Captured()
    names = ["", "uvicorn", "uvicorn.error", "asyncio", "execlib"]
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    yield handler
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def big_site(tmp_path: Path) -> Path:
    root = tmp_path / "big"
    root.mkdir()
    subprocess.run(["truncate", "-s", str(BIG), str(root / "big.bin")], check=True)
    assert (root / "big.bin").stat().st_size == BIG
    return root


def test_shutdown_during_large_downloads_logs_no_traceback(
    big_site: Path, captured_logs: Captured, capfd: pytest.CaptureFixture[str]
) -> None:
    server = Server(big_site, port=0).start_in_thread()
    addr = server.bound_addr
    assert addr is not None
    downloads = [SlowDownload(addr, "/big.bin") for _ in range(3)]
    downloads.append(SlowDownload(addr, "/big.bin", "Range: bytes=1000-\r\n"))  # the Range path streams too
    try:
        for download in downloads[:3]:
            assert download.head.startswith(b"HTTP/1.1 200"), download.head
        assert downloads[3].head.startswith(b"HTTP/1.1 206"), downloads[3].head
        # every download is underway, and far from done
        wait_until(lambda: all(d.received > len(d.head) for d in downloads), 10, message="bodies to flow")
        assert not any(d.ended.is_set() for d in downloads)

        started = time.monotonic()
        threading.Thread(target=server.shutdown).start()
        assert server.wait(10), "the server did not stop"
        assert time.monotonic() - started < 2.5  # graceful_timeout (1 s) and a little
        for download in downloads:
            download.hurry()
        for download in downloads:
            assert download.ended.wait(10), "a download was left open after shutdown"
            assert download.received < BIG  # cut short, not streamed to the end
    finally:
        for download in downloads:
            download.close()

    err = capfd.readouterr().err
    logged = captured_logs.text()
    for word in NOISE:
        assert word not in logged, f"{word!r} in the log:\n{logged}"
        assert word not in err, f"{word!r} on stderr:\n{err}"
    problems = [r for r in captured_logs.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, captured_logs.text()
    assert "Shutting down" in logged  # the capture did see uvicorn's shutdown


def test_ctrl_c_during_large_downloads_prints_no_traceback(big_site: Path) -> None:
    proc, url = start_cli("serve", str(big_site), "--port", "0", "--no-livereload")
    downloads: list[SlowDownload] = []
    try:
        host_port = url.removeprefix("http://").rstrip("/")
        host, _, port = host_port.rpartition(":")
        downloads = [SlowDownload((host, int(port)), "/big.bin") for _ in range(3)]
        for download in downloads:
            assert download.head.startswith(b"HTTP/1.1 200"), download.head
        wait_until(lambda: all(d.received > len(d.head) for d in downloads), 10, message="bodies to flow")
        assert not any(d.ended.is_set() for d in downloads)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        for download in downloads:
            download.hurry()
        for download in downloads:
            assert download.ended.wait(10), "a download was left open after Ctrl-C"
            assert download.received < BIG
    finally:
        for download in downloads:
            download.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for word in NOISE:
        assert word not in err, f"{word!r} on stderr after Ctrl-C:\n{err}"
    assert "ERROR" not in err, err
