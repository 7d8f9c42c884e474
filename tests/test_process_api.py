"""The Python API: execlib.serve() in this process, serve_background() detached, stop() and status()."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import execlib
from execlib import AlreadyRunningError, PortInUseError, Server, ServerStatus, serve, serve_background, status, stop
from execlib.process import ForeignFileError

from .helpers import wait_until
from .lifecycle_support import Lab, gone, group_members, health, lab_fixture, pid_file_data, pid_in

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXECLIB_HOST", raising=False)
    monkeypatch.delenv("EXECLIB_PORT", raising=False)


def test_public_names() -> None:
    for name in (
        "serve",
        "serve_background",
        "stop",
        "status",
        "ServerStatus",
        "PortInUseError",
        "AlreadyRunningError",
    ):
        assert name in execlib.__all__ and getattr(execlib, name) is not None
    assert ServerStatus(False, None, False, None).running is False


def test_serve_in_a_thread_with_a_pid_file(lab: Lab, clean_env: None) -> None:
    pid_path = lab.dir / "api.pid"
    url = serve(lab.site, foreground=False, port=0, pid_path=pid_path, livereload=False)
    try:
        assert pid_file_data(pid_path) == {
            "execlib": 1,
            "pid": os.getpid(),
            "root": str(lab.site),
            "host": "127.0.0.1",
            "port": int((lab.dir / "api.port").read_text()),
        }
        assert url == f"http://127.0.0.1:{int((lab.dir / 'api.port').read_text())}/"
        assert "<h1>lab</h1>" in httpx.get(url, timeout=10).text

        state = status(pid_path)
        assert (state.running, state.pid, state.healthy, state.url) == (True, os.getpid(), True, url)
        with pytest.raises(AlreadyRunningError, match=f"pid {os.getpid()}"):
            serve(lab.site, foreground=False, port=0, pid_path=pid_path)
        # the single-instance check is also what `execlib start` does from another process
        refused = lab.run("start", str(lab.site), "--port", "0", "--pid-file", "api.pid")
        assert refused.returncode == 1 and f"pid {os.getpid()}" in refused.stderr
    finally:
        result = stop(pid_path)  # a server in this process: shut down, not signalled
    assert result.outcome == "stopped" and result.pid == os.getpid()
    assert not pid_path.exists() and not (lab.dir / "api.port").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
    assert status(pid_path).running is False


def test_serve_in_the_foreground_until_stopped(lab: Lab, clean_env: None) -> None:
    pid_path = lab.dir / "fg.pid"
    served: list[Server] = []
    ready = threading.Event()
    result: list[str] = []

    def pre_serve(server: Server) -> None:
        served.append(server)
        ready.set()

    def run() -> None:
        result.append(serve(str(lab.site), port=0, pid_path=pid_path, pre_serve=pre_serve, livereload=False))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert ready.wait(10)
        wait_until(lambda: status(pid_path).healthy, message="foreground server healthy")
    finally:
        stop(pid_path)
        thread.join(10)
    assert not thread.is_alive()
    assert result == [served[0].url]
    assert not pid_path.exists()


def test_serve_accepts_a_ready_made_server(lab: Lab) -> None:
    server = Server(lab.site, port=0, livereload=False)
    url = serve(server, foreground=False)
    try:
        assert health(url)["pid"] == os.getpid()
    finally:
        server.shutdown()
        assert server.wait(10)
    with pytest.raises(TypeError):
        serve(Server(lab.site, port=0), port=1234)


@pytest.fixture
def execlib_warnings() -> Iterator[list[str]]:
    """Warnings logged on the "execlib" logger (attached directly: the CLI set-up may stop propagation)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                messages.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("execlib")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def test_serve_names_an_execlib_server_on_the_port_and_replace_reclaims_it(
    lab: Lab, clean_env: None, execlib_warnings: list[str]
) -> None:
    old, port, url = lab.start("--no-livereload")
    with pytest.raises(PortInUseError, match=f"pid {old}"):
        serve(lab.site, foreground=False, port=port)
    assert health(url)["pid"] == old
    servers: list[Server] = []
    server_url = serve(lab.site, foreground=False, port=port, replace=True, livereload=False, pre_serve=servers.append)
    try:
        assert server_url == url and gone(old)
        # replacing is never silent: the stopped server is named in a warning
        assert execlib_warnings == [
            f"stopped execlib server pid {old} serving {lab.site} at {url}, which held port {port}"
        ]
        assert health(url)["pid"] == os.getpid()
    finally:
        servers[0].shutdown()
        assert servers[0].wait(10)


PARENT = """
import sys, execlib
url = execlib.serve_background(sys.argv[1], port=0, pid_path=sys.argv[2], livereload=False)
print(url, flush=True)
"""


def test_serve_background_survives_its_parent(lab: Lab) -> None:
    pid_path = lab.dir / "bg.pid"
    parent = subprocess.run(
        [sys.executable, "-c", PARENT, str(lab.site), str(pid_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=lab.env(),
    )
    assert parent.returncode == 0, parent.stderr
    url = parent.stdout.strip()
    pid = pid_in(pid_path)
    # the parent has exited; the server lives on in its own session
    assert health(url)["pid"] == pid
    assert os.getsid(pid) == pid
    state = status(pid_path)
    assert state.running and state.healthy and state.url == url and state.root == str(lab.site)

    result = stop(pid_path)
    assert result.outcome == "stopped" and result.pid == pid
    assert gone(pid) and group_members(pid) == []
    assert not pid_path.exists()


def test_serve_background_errors(lab: Lab, clean_env: None) -> None:
    pid_path = lab.dir / "bg.pid"
    url = serve_background(lab.site, port=0, pid_path=pid_path, livereload=False)
    pid = pid_in(pid_path)
    try:
        assert health(url)["pid"] == pid
        with pytest.raises(AlreadyRunningError, match=f"pid {pid}") as refused:
            serve_background(lab.site, port=0, pid_path=pid_path)
        assert url in str(refused.value) and "replace" in str(refused.value)
        port = int((lab.dir / "bg.port").read_text())
        # a held port (a second PID file, so single instance does not apply): the child fails to bind
        with pytest.raises(PortInUseError, match=f"pid {pid}"):
            serve_background(lab.site, port=port, pid_path=lab.dir / "other.pid")
        with pytest.raises(TypeError, match="unexpected option 'colour'"):
            serve_background(lab.site, port=0, pid_path=lab.dir / "other.pid", colour="red")
    finally:
        stop(pid_path)
    assert gone(pid)


def test_serve_background_replace_names_the_server_it_stops(
    lab: Lab, clean_env: None, execlib_warnings: list[str]
) -> None:
    pid_path = lab.dir / "bg.pid"
    old_url = serve_background(lab.site, port=0, pid_path=pid_path, livereload=False)
    old = pid_in(pid_path)
    url = serve_background(lab.site, port=0, pid_path=pid_path, replace=True, livereload=False)
    new = pid_in(pid_path)
    try:
        assert new != old and gone(old) and health(url)["pid"] == new
        assert execlib_warnings == [
            f"stopped execlib server pid {old} serving {lab.site} at {old_url}, which owned the PID file {pid_path}"
        ]
    finally:
        stop(pid_path)


@pytest.mark.parametrize("how", ["serve", "serve_background", "stop", "status"])
def test_the_api_refuses_a_pid_path_that_is_not_a_pid_file(lab: Lab, clean_env: None, how: str) -> None:
    user_file = lab.dir / "notes.txt"
    user_file.write_bytes(b"remember: 42\n")
    with pytest.raises(ForeignFileError, match="not an execlib PID file"):
        if how == "serve":
            serve(lab.site, foreground=False, port=0, pid_path=user_file, livereload=False)
        elif how == "serve_background":
            serve_background(lab.site, port=0, pid_path=user_file, livereload=False)
        elif how == "stop":
            stop(user_file)
        else:
            status(user_file)
    assert user_file.read_bytes() == b"remember: 42\n"
    assert sorted(p.name for p in lab.dir.iterdir()) == ["notes.txt", "site"]


def test_serve_background_failing_to_start_raises_runtime_error_with_the_log(lab: Lab, clean_env: None) -> None:
    # the child gets an option it rejects: it exits at once, and the error carries its log
    with pytest.raises(RuntimeError) as info:
        serve_background(lab.site, port=0, pid_path=lab.dir / "bad.pid", extra_args=["--fallback", "nope.html"])
    message = str(info.value)
    assert "exited during start-up" in message and "fallback file not found" in message
    assert not (lab.dir / "bad.pid").exists()
