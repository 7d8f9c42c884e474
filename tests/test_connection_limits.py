"""Connection limits against a real server: the open-file limit, the deadline for a request head
(idle and slowloris clients), and the cap on its size. Raw sockets, so that nothing normalises
what is sent."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from execlib import ConfigError, Server
from execlib.server.limits import MAX_HEADER_BYTES
from execlib.server.protocols import head_size

from .helpers import run_async, wait_until

resource = pytest.importorskip("resource")

PROTOCOL = "http://livereload.com/protocols/official-7"


def read_answer(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection; fails after ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"the server neither closed nor finished within {timeout} s: {data[:200]!r}") from None
    except ConnectionResetError:
        pass  # closed with unread input: a reset, after what was already received
    return data


def read_head(sock: socket.socket, timeout: float = 10) -> bytes:
    """One response head (through the blank line)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response head: {data!r}"
        data += chunk
    return data


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[bytes, bytes]:
    """One response with a content-length body: (head, body)."""
    head = read_head(sock, timeout)
    head, _, body = head.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a body"
        body += chunk
    return head, body


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def connections(server: Server) -> int:
    assert server._backend is not None
    return len(server._backend.server.server_state.connections)


# -- the open-file limit ----------------------------------------------------------------


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """The soft RLIMIT_NOFILE lowered to 256 for the test (restored after), as on a default system
    where it is 1024; skipped where the hard limit leaves no room above that."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"hard open-file limit {hard} is too low to show anything")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    yield 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_open_file_limit_is_raised_and_idle_connections_do_not_deny_service(
    site: Path, serve, low_soft_limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="execlib.server")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    server = serve(site, header_timeout=60)  # the idle connections must outlive the test
    soft_now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert soft_now > low_soft_limit
    if hard != resource.RLIM_INFINITY:
        assert soft_now == hard
    assert f"raised the open-file limit from {low_soft_limit} to {soft_now}" in caplog.text

    # More idle connections than the old limit had descriptors for (each costs this process two:
    # the client's end and the server's); the next client is still served.
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(server.bound_addr, timeout=10))
        wait_until(lambda: connections(server) >= 300, 10, message="the server to accept them all")
        with socket.create_connection(server.bound_addr, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert status_of(read_answer(sock)) == 200
    finally:
        for sock in idle:
            sock.close()


# -- the deadline for a request head ----------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(site: Path, serve) -> None:
    server = serve(site, header_timeout=0.5)
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        started = time.monotonic()
        assert read_answer(sock) == b""  # closed, without an answer: there was no request
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5, elapsed
    wait_until(lambda: connections(server) == 0, 5, message="the server to forget the connection")


def test_a_slowloris_head_gets_408_at_the_deadline_although_bytes_keep_coming(site: Path, serve) -> None:
    server = serve(site, header_timeout=0.5)
    stop = threading.Event()
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")

        def trickle() -> None:
            for number in range(1000):
                if stop.wait(0.05):  # pacing: one header line every 50 ms, as a slowloris client does
                    return
                try:
                    sock.sendall(b"X-Slow-%d: y\r\n" % number)
                except OSError:
                    return

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            answer = read_answer(sock)
        finally:
            stop.set()
            sender.join(5)
        elapsed = time.monotonic() - started
    assert status_of(answer) == 408
    assert b"connection: close" in answer.lower()
    assert 0.4 < elapsed < 5, elapsed  # the trickle did not push the deadline back


def test_the_deadline_covers_heads_only_not_keep_alive_waits_downloads_or_websockets(tmp_path: Path, serve) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<p>hi</p>")
    subprocess.run(["truncate", "-s", str(200 << 20), str(root / "big.bin")], check=True)
    timeout = 0.3
    server = serve(root, header_timeout=timeout)

    async def websocket_outlives_the_deadline() -> None:
        ws = await connect(server.url.replace("http://", "ws://") + "livereload")
        await ws.send(json.dumps({"command": "hello", "protocols": [PROTOCOL]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["command"] == "hello"
        await asyncio.sleep(4 * timeout)  # the scenario: a WebSocket quiet for longer than the deadline
        await asyncio.to_thread(server.alert, "still here")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["message"] == "still here"
        await ws.close()

    with (
        socket.create_connection(server.bound_addr, timeout=10) as keep_alive,
        socket.create_connection(server.bound_addr, timeout=10) as download,
    ):
        keep_alive.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(read_response(keep_alive)[0]) == 200

        download.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(read_head(download)) == 200
        download.settimeout(0.5)
        received = 0

        started = time.monotonic()
        run_async(websocket_outlives_the_deadline())  # meanwhile the other two wait
        # Read some of the download, slowly (far more stays queued), until well past the deadline.
        while time.monotonic() - started < 6 * timeout:
            received += len(download.recv(1024))
            time.sleep(0.01)  # pacing: a slow reader, not a synchronisation
        assert 0 < received < 200 << 20
        assert connections(server) == 2, "the keep-alive connection or the download was closed"

        keep_alive.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # after 6 deadlines of waiting
        assert status_of(read_response(keep_alive)[0]) == 200


@pytest.mark.parametrize(
    "option, value",
    [
        ("header_timeout", 0),
        ("header_timeout", float("nan")),
        ("header_timeout", "10"),
        ("max_header_bytes", 10),
        ("max_header_bytes", 65536.0),
        ("max_header_bytes", True),
    ],
)
def test_header_timeout_and_cap_are_validated(site: Path, option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^{option}="):
        Server(site, port=0, **{option: value})


# -- the size of a request head -------------------------------------------------------------


def test_a_header_that_never_ends_gets_431_without_being_read_to_the_end(site: Path, serve) -> None:
    server = serve(site)
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")

        def send_forever() -> None:  # 16 MB of one header that never ends (50 MB were accepted before)
            try:
                for _ in range(256):
                    sock.sendall(b"a" * 65536)
            except OSError:
                pass  # the server closed after answering: what we are after

        sender = threading.Thread(target=send_forever, daemon=True)
        sender.start()
        answer = read_answer(sock)  # read meanwhile: the answer must come while the header goes on
        sender.join(10)
    assert status_of(answer) == 431


@pytest.mark.parametrize(
    "headers",
    [
        [b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 10)],
        [b"X-Many-%d: %s" % (n, b"v" * 60) for n in range(1200)],  # ~82 KB of ordinary-sized headers
    ],
    ids=["one-big-header", "many-headers"],
)
def test_a_complete_head_over_the_cap_gets_431(site: Path, serve, headers: list[bytes]) -> None:
    server = serve(site)
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"\r\n".join(headers) + b"\r\n\r\n")
        answer = read_answer(sock)
    assert status_of(answer) == 431
    assert b"connection: close" in answer.lower()


def test_a_head_just_under_the_cap_is_served_and_the_connection_kept(site: Path, serve) -> None:
    server = serve(site)
    value = b"c" * (MAX_HEADER_BYTES - 200)
    request = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + value + b"\r\n\r\n"
    assert head_size(b"/", [(b"host", b"x"), (b"cookie", value)]) <= MAX_HEADER_BYTES
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(request)
        assert status_of(read_response(sock)[0]) == 200
        sock.sendall(request)  # the same connection serves the next one
        assert status_of(read_response(sock)[0]) == 200


def test_a_target_over_the_cap_gets_414(site: Path, serve) -> None:
    server = serve(site)
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(b"GET /" + b"p" * (MAX_HEADER_BYTES + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(read_answer(sock)) == 414


def test_the_cap_is_adjustable(site: Path, serve) -> None:
    server = serve(site, max_header_bytes=4096)
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Five-KB: " + b"f" * 5000 + b"\r\n\r\n")
        assert status_of(read_answer(sock)) == 431
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Three-KB: " + b"t" * 3000 + b"\r\nConnection: close\r\n\r\n")
        assert status_of(read_answer(sock)) == 200


def test_pipelined_requests_are_answered_and_an_oversized_one_among_them_is_not(site: Path, serve) -> None:
    server = serve(site)
    normal = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(normal + normal + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3

    # in one packet behind a normal request: still measured, never served
    oversized = b"GET /about.html HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 10) + b"\r\n\r\n"
    with socket.create_connection(server.bound_addr, timeout=10) as sock:
        sock.sendall(normal + oversized)
        answer = read_answer(sock)
    assert b"<p>About</p>" not in answer
    assert answer.count(b"HTTP/1.1 200 OK") <= 1
