"""Server.bound_addr before binding, the health endpoint's caching header, a quiet shutdown
while large downloads are still streaming, and request values escaped in the log."""

from __future__ import annotations

import json
import logging
import os
import re
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
from execlib.log import JsonFormatter, SafeTextFormatter

from .helpers import remaining_lines, start_cli, wait_until

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


# What `execlib serve -v` prints on stderr over a start and a Ctrl-C: debug lines, and uvicorn's
# lifecycle lines. Nothing else may appear, however many downloads were cut short.
USUAL_STDERR = re.compile(
    r"execlib: DEBUG: .*"
    r"|execlib: INFO: (Started server process \[\d+\]|Waiting for application startup\.|Application startup complete\."
    r"|Shutting down|Waiting for connections to close\. \(CTRL\+C to force quit\)"
    r"|Waiting for background tasks to complete\. \(CTRL\+C to force quit\)"
    r"|Waiting for application shutdown\.|Application shutdown complete\.|Finished server process \[\d+\])"
)
ACCESS_LINE = re.compile(r"GET /big\.bin 200 (\d+) [\d.]+ms")


def test_ctrl_c_during_twenty_downloads_prints_only_the_usual_lines(big_site: Path) -> None:
    """Ctrl-C with 20 downloads in flight once printed "Cancel 20 running task(s)", 20 "Exception
    in ASGI application" errors and 40 tracebacks."""
    proc, url = start_cli("serve", str(big_site), "--port", "0", "--no-livereload", "-v")
    downloads: list[SlowDownload] = []
    try:
        host_port = url.removeprefix("http://").rstrip("/")
        host, _, port = host_port.rpartition(":")
        downloads = [SlowDownload((host, int(port)), "/big.bin") for _ in range(20)]
        for download in downloads:
            assert download.head.startswith(b"HTTP/1.1 200"), download.head
        wait_until(lambda: all(d.received > len(d.head) for d in downloads), 10, message="bodies to flow")
        assert not any(d.ended.is_set() for d in downloads)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out = remaining_lines(proc)  # stdout until the process closes it
        err = proc.stderr.read()
        assert proc.wait(15) == 0, err
        assert time.monotonic() - started < 5  # graceful_timeout (1 s), and a generous margin
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

    unusual = [line for line in err.splitlines() if not USUAL_STDERR.fullmatch(line)]
    assert not unusual, "unexpected on stderr after Ctrl-C:\n" + err
    assert "execlib: INFO: Shutting down" in err and "Finished server process" in err  # -v shows them
    # stdout: one access line per download, each cut short, and nothing else
    assert len(out) == 20, out
    for line in out:
        match = ACCESS_LINE.fullmatch(line.rstrip("\n"))
        assert match, line
        assert int(match.group(1)) < BIG


# -- request values in the log are escaped ------------------------------------------------------

HOSTILE = "/a\nGET /forged 200 0 0.1ms\x1b[31mred\x9b2J\u2028x\u202egpj.exe"


def access_record(path: str, logger: str = "execlib.access") -> logging.LogRecord:
    record = logging.LogRecord(
        logger, logging.INFO, __file__, 1, "%s %s %d %d %.1fms", ("GET", path, 404, 12, 0.5), None
    )
    for key, value in {"method": "GET", "path": path, "status": 404, "size": 12, "ms": 0.5}.items():
        setattr(record, key, value)
    return record


def test_text_format_escapes_control_characters_from_requests() -> None:
    formatter = SafeTextFormatter("%(message)s")
    record = access_record(HOSTILE)
    line = formatter.format(record)
    assert line == "GET /a\\x0aGET /forged 200 0 0.1ms\\x1b[31mred\\x9b2J\\u2028x\\u202egpj.exe 404 12 0.5ms"
    assert record.args[1] == HOSTILE  # the record itself is untouched, for other handlers
    # an argument that is not text (an exception carrying a client's value) is escaped as well
    error = logging.LogRecord(
        "execlib.livereload", logging.WARNING, __file__, 1, "closing: %s", (ValueError("x\ny"),), None
    )
    assert formatter.format(error) == "closing: x\\x0ay"
    # a logger that does not handle requests keeps its text: build output has real line breaks
    build = logging.LogRecord("execlib.build", logging.ERROR, __file__, 1, "build: %s%s", ("failed", "\nline 2"), None)
    assert formatter.format(build) == "build: failed\nline 2"


def test_json_format_keeps_values_exact_and_lines_safe() -> None:
    line = JsonFormatter().format(access_record(HOSTILE))
    assert "\n" not in line and not any(ch in line for ch in "\x1b\x9b\u2028\u202e")
    data = json.loads(line)
    assert data["path"] == HOSTILE  # a JSON reader gets the exact value back
    assert data["message"] == f"GET {HOSTILE} 404 12 0.5ms"


EVIL_WS_REQUEST = (
    b"GET /__execlib__/%0aforged%1b[31m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"X-Evil: \x9b[31mred\r\nUser-Agent: agent\x9b2J\r\n\r\n"
)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_requests_cannot_forge_log_lines_or_send_escape_codes(site: Path, log_format: str) -> None:
    proc, url = start_cli("serve", str(site), "--port", "0", "-v", "--log-format", log_format)
    try:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        for request in (
            b"GET /a%0aGET%20/forged%20200%200%200.1ms%1b[31mred%C2%9B2J HTTP/1.1\r\nHost: x\r\n\r\n",
            EVIL_WS_REQUEST,  # uvicorn and websockets log its path and headers (user agent included) at -v
        ):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(request)
                assert sock.recv(64).startswith(b"HTTP/1.1 4"), request
        proc.send_signal(signal.SIGINT)
        out = remaining_lines(proc)
        err = proc.stderr.read()
        assert proc.wait(15) == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    everything = "".join(out) + err
    assert not any(raw in everything for raw in "\x1b\x9b\u2028"), everything  # no raw escape codes
    assert not any(line.startswith(("GET /forged", "forged")) for line in everything.splitlines())  # no forged line
    if log_format == "text":
        forged = [line for line in out if "forged" in line]
        assert len(forged) == 1 and forged[0].startswith("GET /a\\x0aGET /forged 200 0 0.1ms\\x1b[31mred\\x9b2J 404 ")
        assert "< x-evil: \\x9b[31mred" in err and "< user-agent: agent\\x9b2J" in err
    else:
        records = [json.loads(line) for line in [*out, *err.splitlines()]]  # every line is one JSON object
        paths = [r["path"] for r in records if r.get("path")]
        assert paths == ["/a\nGET /forged 200 0 0.1ms\x1b[31mred\x9b2J"]  # exact for a JSON reader
        assert any(r["message"] == "< user-agent: agent\x9b2J" for r in records)
