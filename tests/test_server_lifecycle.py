"""Server lifecycle: start/shutdown from any thread, resources returned, bind errors."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from execlib import PortInUseError, Server
from execlib.errors import ConfigError

from .helpers import wait_until


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


def test_start_and_shutdown_50_times_returns_threads_and_fds(site: Path) -> None:
    # import and initialise everything once before counting
    with httpx.Client(timeout=10) as warm, Server(site, port=0) as server:
        warm.get(server.url)
    threads_before, fds_before = threading.active_count(), open_fds()
    for _ in range(50):
        server = Server(site, port=0)
        server.start_in_thread()
        with httpx.Client(timeout=10) as client:
            assert client.get(server.url).status_code == 200
        server.shutdown()
        assert server.wait(5)
    wait_until(lambda: threading.active_count() <= threads_before, 5, message="threads to come back")
    wait_until(lambda: open_fds() <= fds_before, 5, message="file descriptors to come back")


def test_start_blocks_until_shutdown_from_another_thread(site: Path) -> None:
    server = Server(site, port=0)
    ready = threading.Event()
    server.pre_serve = lambda s: ready.set()
    returned = threading.Event()

    def run() -> None:
        server.start()
        returned.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(10)
    wait_until(lambda: server.is_running, 10)
    port = server.bound_addr[1]
    assert not returned.is_set()
    started = time.monotonic()
    server.shutdown()
    assert returned.wait(2), "start() did not return within 2 s of shutdown()"
    assert time.monotonic() - started < 2
    thread.join(2)
    assert port_is_free(port)


def test_shutdown_while_requests_are_in_flight(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(8 << 20))
    server = Server(tmp_path, port=0).start_in_thread()
    results: list[object] = []

    def fetch() -> None:
        try:
            with httpx.Client(timeout=10) as client:
                for _ in range(20):
                    results.append(client.get(server.url + "big.bin").status_code)
        except httpx.HTTPError as exc:  # the server closing the connection is expected
            results.append(exc)

    workers = [threading.Thread(target=fetch) for _ in range(4)]
    for worker in workers:
        worker.start()
    wait_until(lambda: len(results) >= 2, 10, message="some requests to finish")
    started = time.monotonic()
    threading.Thread(target=server.shutdown).start()
    assert server.wait(5)
    assert time.monotonic() - started < 2.5
    for worker in workers:
        worker.join(10)
        assert not worker.is_alive()
    assert 200 in results
    assert port_is_free(server.bound_addr[1])


def test_shutdown_before_start_and_twice(site: Path) -> None:
    server = Server(site, port=0)
    server.shutdown()
    server.shutdown()
    started = time.monotonic()
    server.start()  # returns at once
    assert time.monotonic() - started < 1
    other = Server(site, port=0).start_in_thread()
    other.shutdown()
    other.shutdown()
    assert other.wait(5)
    other.shutdown()


def test_context_manager_shuts_down_on_exception(site: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Server(site, port=0) as server:
        port = server.bound_addr[1]
        assert httpx.get(server.url, timeout=10).status_code == 200
        raise RuntimeError("boom")
    assert not server.is_running
    assert port_is_free(port)


def test_bound_addr_and_url(site: Path) -> None:
    with Server(site, port=0) as server:
        host, port = server.bound_addr
        assert host == "127.0.0.1" and port > 0
        assert server.url == f"http://127.0.0.1:{port}/"


def test_port_in_use_raises_in_caller(site: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            Server(site, port=port).start_in_thread()
        assert f"127.0.0.1:{port}" in str(info.value)
        with pytest.raises(PortInUseError):
            Server(site, port=port).start()


def test_bad_root_and_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder not found"):
        Server(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        Server(tmp_path / "file.txt")
    with pytest.raises(ConfigError, match="out of range"):
        Server(tmp_path, port=70000)


def test_runs_on_a_loop_passed_in(site: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        server = Server(site, port=0, loop=loop).start_in_thread()
        assert server.loop is loop
        assert httpx.get(server.url, timeout=10).status_code == 200
        server.shutdown()
        assert server.wait(5)
        assert not loop.is_closed()  # a loop we did not create is left to its owner
    finally:
        loop.close()


def test_a_server_cannot_start_twice(site: Path) -> None:
    with Server(site, port=0) as server, pytest.raises(RuntimeError, match="already started"):
        server.start()
