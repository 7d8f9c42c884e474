"""Server backends (docs/backends.rst): each one honours every lifecycle rule of Server, and the
backend and HTTP/2 options are checked with one-line errors."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from execlib import Server
from execlib.config import ServerConfig, load_config
from execlib.errors import ConfigError
from execlib.server import backends

from .helpers import run_async, wait_until

BACKENDS = ["uvicorn", "hypercorn"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# -- lifecycle rules, on each backend ----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_50_cycles_return_threads_and_fds(site: Path, backend: str) -> None:
    with httpx.Client(timeout=10) as warm, Server(site, port=0, backend=backend) as server:
        warm.get(server.url)  # imports and initialises everything once before counting
    threads_before, fds_before = threading.active_count(), open_fds()
    for _ in range(50):
        server = Server(site, port=0, backend=backend)
        server.start_in_thread()
        with httpx.Client(timeout=10) as client:
            response = client.get(server.url)
        assert response.status_code == 200
        assert "/livereload.js" in response.text
        server.shutdown()
        assert server.wait(5)
    wait_until(lambda: threading.active_count() <= threads_before, 5, message="threads to come back")
    wait_until(lambda: open_fds() <= fds_before, 5, message="file descriptors to come back")


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_in_one_thread_shutdown_from_another(site: Path, backend: str) -> None:
    server = Server(site, port=0, backend=backend)
    returned = threading.Event()

    def run() -> None:
        server.start()
        returned.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert server.wait_ready(10)
    assert server.backend == backend
    port = server.bound_addr[1]
    assert httpx.get(server.url, timeout=10).status_code == 200
    started = time.monotonic()
    threading.Thread(target=server.shutdown).start()  # a third thread
    assert returned.wait(2), "start() did not return within 2 s of shutdown()"
    assert time.monotonic() - started < 2
    thread.join(2)
    assert port_is_free(port)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shutdown_from_the_loop_itself(site: Path, backend: str) -> None:
    server = Server(site, port=0, backend=backend).start_in_thread()
    assert server.loop is not None
    server.loop.call_soon_threadsafe(server.shutdown)  # e.g. a route or an async hook stopping it
    assert server.wait(5)
    assert not server.is_running


@pytest.mark.parametrize("backend", BACKENDS)
def test_shutdown_before_start(site: Path, backend: str) -> None:
    server = Server(site, port=0, backend=backend)
    server.bind()
    port = server.bound_addr[1]
    server.shutdown()
    server.shutdown()  # twice is fine
    started = time.monotonic()
    server.start()  # returns at once
    assert time.monotonic() - started < 1
    assert server.wait(0)
    assert port_is_free(port)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bound_address_is_the_servers_socket(site: Path, backend: str) -> None:
    with Server(site, port=0, backend=backend) as server:
        assert server._backend is not None
        assert server._backend.bound_address == server.bound_addr
        assert server.url == f"http://127.0.0.1:{server.bound_addr[1]}/"


@pytest.mark.parametrize("backend", BACKENDS)
def test_shutdown_closes_a_pages_websocket_with_1012(site: Path, backend: str) -> None:
    server = Server(site, port=0, backend=backend).start_in_thread()

    async def run() -> int | None:
        ws = await connect(server.url.replace("http", "ws") + "livereload")
        await ws.send(json.dumps({"command": "hello", "protocols": ["http://livereload.com/protocols/official-7"]}))
        await ws.recv()
        started = time.monotonic()
        await asyncio.to_thread(server.shutdown)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 3)
        assert time.monotonic() - started < server.graceful_timeout  # not after the graceful timeout
        return ws.close_code

    assert run_async(run()) == 1012
    assert server.wait(5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_download_in_flight_at_shutdown_ends_within_the_graceful_timeout(tmp_path: Path, backend: str) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(16 << 20))
    server = Server(tmp_path, port=0, backend=backend, graceful_timeout=0.5).start_in_thread()
    sock = socket.create_connection(server.bound_addr, timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 200")  # then reads no more: a slow client
    started = time.monotonic()
    server.shutdown()
    assert server.wait(5)
    assert time.monotonic() - started < 3
    sock.close()


# -- choosing a backend --------------------------------------------------------------------------


def test_auto_is_uvicorn_without_http2(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "DEFAULT_BACKEND", "uvicorn")
    assert Server(site, port=0).backend == "uvicorn"
    assert Server(site, port=0, backend="hypercorn").backend == "hypercorn"


def test_backend_from_the_environment_and_files(site: Path, tmp_path: Path) -> None:
    resolved = load_config({"root": str(site)}, env={"EXECLIB_BACKEND": "hypercorn"}, use_files=False)
    assert resolved.config.backend == "hypercorn"
    assert resolved.origins["backend"].label == "EXECLIB_BACKEND"
    (tmp_path / "execlib.toml").write_text('backend = "uvicorn"\nhttp2 = false\n')
    resolved = load_config({}, env={}, cwd=str(tmp_path))
    assert resolved.config.backend == "uvicorn"
    with pytest.raises(ConfigError, match="EXECLIB_BACKEND='gunicorn' must be 'auto', 'uvicorn' or 'hypercorn'"):
        load_config({"root": str(site)}, env={"EXECLIB_BACKEND": "gunicorn"}, use_files=False)


def test_bad_backend_values(site: Path) -> None:
    with pytest.raises(ConfigError, match="backend='granian' must be 'auto', 'uvicorn' or 'hypercorn'"):
        ServerConfig(root=site, backend="granian")
    with pytest.raises(ConfigError, match="backend='uvicorn' does not speak HTTP/2: use 'hypercorn'"):
        ServerConfig(root=site, backend="uvicorn", http2=True)
    with pytest.raises(ConfigError, match="http2='yes' must be True or False"):
        ServerConfig(root=site, http2="yes")  # type: ignore[arg-type]


def test_http2_without_tls_says_browsers_need_tls(site: Path) -> None:
    with pytest.raises(ConfigError, match="browsers only speak HTTP/2 over TLS") as caught:
        Server(site, port=0, http2=True)
    assert "\n" not in str(caught.value)


def test_hypercorn_not_installed_names_the_extra(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "hypercorn_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'execlib\[http2\]'"):
        Server(site, port=0, backend="hypercorn")


# -- the command line: one line, exit 2 --------------------------------------------------------


def run_cli(*args: str, hypercorn_missing: bool = False) -> subprocess.CompletedProcess[str]:
    """``execlib ARGS`` in a child process; with ``hypercorn_missing``, as if it were not installed."""
    setup = "from execlib.server import backends; backends.hypercorn_installed = lambda: False; " * hypercorn_missing
    code = f"{setup}from execlib.cli import main; raise SystemExit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_cli_http2_without_tls_is_one_line(site: Path) -> None:
    done = run_cli("serve", str(site), "--port", "0", "--no-config", "--http2")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("execlib: error: --http2 needs TLS (")
    assert done.stderr.endswith("browsers only speak HTTP/2 over TLS\n")


def test_cli_uvicorn_with_http2_is_one_line(site: Path) -> None:
    done = run_cli("serve", str(site), "--no-config", "--backend", "uvicorn", "--http2")
    assert (done.returncode, done.stderr) == (
        2,
        "execlib: error: --backend uvicorn does not speak HTTP/2: "
        "use 'hypercorn', or 'auto', which picks it for HTTP/2\n",
    )


def test_cli_hypercorn_missing_is_one_line(site: Path) -> None:
    done = run_cli("serve", str(site), "--port", "0", "--no-config", "--backend", "hypercorn", hypercorn_missing=True)
    assert (done.returncode, done.stderr) == (
        2,
        "execlib: error: --backend hypercorn cannot be used: "
        "Hypercorn is not installed (pip install 'execlib[http2]')\n",
    )


def test_cli_bad_backend_is_one_line(site: Path) -> None:
    done = run_cli("serve", str(site), "--no-config", "--backend", "granian")
    assert (done.returncode, done.stderr) == (
        2,
        "execlib: error: --backend granian must be 'auto', 'uvicorn' or 'hypercorn'\n",
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_serves_with_the_backend_and_names_it_in_the_json_start_line(site: Path, backend: str) -> None:
    from .helpers import execlib_cmd, read_line

    args = ("serve", str(site), "--port", "0", "--no-config", "--banner", "json", "--backend", backend)
    proc = subprocess.Popen(execlib_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        fields = json.loads(read_line(proc))
        assert fields["backend"] == backend
        assert httpx.get(fields["url"], timeout=10).status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_connection_hypercorn_fails_on_is_one_warning_line(
    site: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from execlib.server.backends import hypercorn as hypercorn_backend

    async def fails(*args: object) -> None:
        raise RuntimeError("Stream 363 is in a priority loop.")  # what h2load once made Hypercorn raise

    monkeypatch.setattr(hypercorn_backend, "_TCPServer", fails)
    caplog.set_level(logging.DEBUG)
    with Server(site, port=0, backend="hypercorn") as server:
        with socket.create_connection(server.bound_addr, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = sock.recv(100)
            except ConnectionResetError:  # closed with our request unread: the kernel resets instead
                answer = b""
            assert answer == b""  # closed, with no answer
        wait_until(lambda: any("closed a connection" in r.getMessage() for r in caplog.records), 5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "closed a connection: RuntimeError: Stream 363 is in a priority loop." in warnings
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
