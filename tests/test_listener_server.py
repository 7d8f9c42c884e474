"""ListenerServer without HTTP, and listeners managed by the HTTP Server: loops, shutdown, fatal errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from execlib import FileEvent, ListenerDiedError, ListenerServer, PathRouter, Server
from execlib.runloop import BlockingService
from execlib.server.server import ListenerFailedError
from tests.helpers import read_line, wait_until
from tests.listener_support import Recorder


def test_import_stays_free_of_http_modules() -> None:
    code = (
        "import sys, execlib\n"
        "from execlib import ListenerServer, PathRouter, FileEvent, get_listener\n"
        "from execlib.listeners import inotify, watchfiles\n"
        "import execlib.cli.watch\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('uvicorn', 'fastapi', 'starlette')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_async_callbacks_run_on_the_server_loop_and_shutdown_from_any_thread(tmp_path: Path) -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    done = threading.Event()

    async def on_change(event: FileEvent) -> None:
        loops.append(asyncio.get_running_loop())
        done.set()

    router = PathRouter()
    router.register(tmp_path, on_change, debounce=0, delay=0)
    server = ListenerServer([router.get_listener()])
    server.shutdown()  # before start: start() then returns at once
    server.start()
    assert not server.is_running

    listener = router.get_listener()
    server = ListenerServer([listener]).start_in_thread()
    assert server.is_running and listener.is_running
    (tmp_path / "a.txt").write_text("x")
    assert done.wait(5)
    assert loops[0] is server.loop
    threading.Thread(target=server.shutdown).start()
    server.shutdown()
    assert server.wait(5)
    assert not listener.is_running
    assert server.loop.is_closed()


def test_fatal_listener_error_shuts_down_with_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    router = PathRouter()
    router.register(tmp_path, lambda e: None, debounce=0, delay=0)
    listener = router.get_listener(max_restarts=0)

    def broken(events):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(router, "submit", broken)
    errors: list[BaseException] = []
    server = ListenerServer([listener])

    def run() -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    server.handle_signals = False
    thread.start()
    wait_until(lambda: server.is_running)
    (tmp_path / "x.txt").write_text("x")
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(errors[0], ListenerDiedError)
    assert "disk on fire" in str(errors[0]) and "stopped watching" in str(errors[0])


def test_sigterm_stops_a_listener_server_in_the_main_thread(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from execlib import ListenerServer, PathRouter\n"
        "r = PathRouter(); r.register(sys.argv[1], print)\n"
        "s = ListenerServer([r.get_listener()], pre_serve=lambda s: print('ready', flush=True))\n"
        "s.start(); print('stopped', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(proc).strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert read_line(proc).strip() == "stopped"
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_server_runs_managed_listeners_on_its_loop_and_stops_them_first(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>hi</p>")
    loops: list[asyncio.AbstractEventLoop] = []
    rec = Recorder()

    async def on_change(events: list[FileEvent]) -> None:
        loops.append(asyncio.get_running_loop())
        rec(events)

    router = PathRouter()
    router.register(site, on_change, debounce=0, delay=0, batch=True)
    listener = router.get_listener()
    warm = Server(site, port=0).start_in_thread()  # the first Server in a process opens a lasting pipe
    warm.shutdown()
    assert warm.wait(10)
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    server = Server(site, port=0, managed_listeners=[listener]).start_in_thread()
    try:
        (site / "page.html").write_text("<p>new</p>")
        rec.wait_for("page.html")
        assert loops[0] is server.loop
    finally:
        server.shutdown()
        assert server.wait(10)
    assert not listener.is_running
    wait_until(lambda: threading.active_count() <= threads_before)
    wait_until(lambda: len(os.listdir("/proc/self/fd")) <= fds_before)


def test_server_shuts_down_when_a_managed_listener_dies_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = PathRouter()
    router.register(tmp_path, lambda e: None, debounce=0, delay=0)
    listener = router.get_listener(max_restarts=1)

    def broken(events):
        raise RuntimeError("watcher broke")

    monkeypatch.setattr(router, "submit", broken)
    server = Server(tmp_path, port=0, managed_listeners=[listener])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    server.handle_signals = False
    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: server.is_running)
    deadline = time.monotonic() + 10
    i = 0
    while thread.is_alive() and time.monotonic() < deadline:
        restarts = listener.restarts
        (tmp_path / f"f{i}.txt").write_text("x")
        i += 1
        wait_until(lambda r=restarts: listener.restarts > r or not thread.is_alive(), timeout=5)
    thread.join(10)
    assert isinstance(errors[0], ListenerFailedError)
    assert isinstance(errors[0], ListenerDiedError)  # the same except clause as for a ListenerServer
    assert "watcher broke" in str(errors[0])


def test_one_except_catches_a_dead_listener_whichever_host_ran_it() -> None:
    assert issubclass(ListenerFailedError, ListenerDiedError)
    with pytest.raises(ListenerDiedError):
        raise ListenerFailedError("stopped serving: gone")


@pytest.mark.parametrize("name", ["loop", "is_running", "_start_listeners", "_stop_listeners", "_listener_failed"])
def test_server_and_listener_server_share_one_copy_of_listener_supervision(name: str) -> None:
    # a fix to how listeners are started, stopped or given up on reaches both hosts at once
    assert name in vars(BlockingService)
    assert name not in vars(Server), f"Server defines its own {name}"
    assert name not in vars(ListenerServer), f"ListenerServer defines its own {name}"
