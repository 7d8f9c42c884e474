"""execlib.process: PID/port file naming, liveness (zombies, PID reuse), identifying execlib servers,
and terminate's SIGTERM -> SIGKILL escalation, on real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from execlib import Server
from execlib.errors import ConfigError
from execlib.process import (
    NotRunningError,
    RunFiles,
    _proc_state,
    holds_port,
    is_execlib_serve_command,
    is_execlib_server,
    pid_alive,
    read_pid,
    read_port,
    status,
    stop,
    terminate,
)

from .helpers import read_line, wait_until
from .lifecycle_support import group_members

pytestmark = pytest.mark.timeout(60)


def test_companion_files_are_named_after_the_pid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    default = RunFiles.for_pid_file()
    assert (default.pid, default.port, default.log) == (
        tmp_path / ".execlib.pid",
        tmp_path / ".execlib.port",
        tmp_path / ".execlib.log",
    )
    named = RunFiles.for_pid_file("run/site.pid")
    assert (named.pid, named.port, named.log) == (
        tmp_path / "run/site.pid",
        tmp_path / "run/site.port",
        tmp_path / "run/site.log",
    )
    plain = RunFiles.for_pid_file("state")
    assert (plain.port.name, plain.log.name) == ("state.port", "state.log")
    with pytest.raises(ConfigError, match="is a folder"):
        RunFiles.for_pid_file(tmp_path)


@pytest.mark.parametrize(
    ("text", "pid"), [("123\n", 123), (" 42 ", 42), ("", None), ("abc", None), ("0", None), ("-7", None)]
)
def test_read_pid(tmp_path: Path, text: str, pid: int | None) -> None:
    (tmp_path / "x.pid").write_text(text)
    assert read_pid(tmp_path / "x.pid") == pid


def test_read_missing_files_and_out_of_range_port(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "missing.pid") is None
    (tmp_path / "x.port").write_text("70000")
    assert read_port(tmp_path / "x.port") is None


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/python3", "-m", "execlib", "serve", "site"],
        ["python3.11", "-u", "-X", "importtime", "-m", "execlib", "serve"],
        ["python3", "-mexeclib", "serve", "--port", "0"],
        ["/usr/local/bin/execlib", "serve", "--port", "0"],
        ["/usr/bin/python3", "/usr/local/bin/execlib", "serve"],
        ["python", "/src/execlib/__main__.py", "serve"],
    ],
)
def test_execlib_serve_command_lines_are_recognised(argv: list[str]) -> None:
    assert is_execlib_serve_command(argv)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["sleep", "60"],
        ["python", "-m", "pytest", "/home/me/execlib/tests", "-k", "serve"],
        ["/usr/local/bin/execlib", "status"],
        ["python3", "-m", "execlib", "stop", "--pid-file", "serve"],
        ["python", "-c", "import execlib; execlib.serve('.')"],
        ["vim", "execlib/serve_command.py", "serve"],
        ["python", "/home/me/execlib/build.py", "serve"],
    ],
)
def test_other_command_lines_are_not_execlib_servers(argv: list[str]) -> None:
    assert not is_execlib_serve_command(argv)


def test_pid_alive_treats_zombies_and_dead_pids_as_gone() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # not reaped yet: the pid still exists, as a zombie
        wait_until(lambda: _proc_state(child.pid) == "Z", message="child to become a zombie")
        assert not pid_alive(child.pid)
    finally:
        child.wait(10)
    assert not pid_alive(child.pid)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield proc
    proc.kill()
    proc.wait(10)


def test_execlib_server_identity(site: Path, sleeper: subprocess.Popen[bytes]) -> None:
    with Server(site, port=0, livereload=False) as server:
        port = server.bound_addr[1]
        # a server embedded in this (pytest) process: its health endpoint reports our pid on that port
        assert holds_port(os.getpid(), port) is True
        assert is_execlib_server(os.getpid(), port)
        # PID reuse: live processes that are not the server on that port
        assert holds_port(sleeper.pid, port) is False
        assert not is_execlib_server(sleeper.pid, port)
        assert not is_execlib_server(sleeper.pid)
    assert not is_execlib_server(os.getpid(), port)  # it stopped listening
    assert not is_execlib_server(os.getpid())  # pytest's command line is no execlib server


def test_stop_and_status_without_a_pid_file(tmp_path: Path) -> None:
    with pytest.raises(NotRunningError, match="no PID file"):
        stop(tmp_path / "x.pid")
    state = status(tmp_path / "x.pid")
    assert (state.running, state.pid, state.healthy, state.url, state.stale) == (False, None, False, None, False)


GROUP_LEADER = """
import signal, subprocess, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])  # same group, default SIGTERM
print(child.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_terminate_signals_the_whole_group_and_escalates(ignore_sigterm: bool) -> None:
    mode = "ignore" if ignore_sigterm else "default"
    leader = subprocess.Popen(
        [sys.executable, "-c", GROUP_LEADER, mode], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        child = int(read_line(leader))
        assert set(group_members(leader.pid)) == {leader.pid, child}
        ended_by = terminate(leader.pid, timeout=0.5 if ignore_sigterm else 10)
        assert ended_by == ("SIGKILL" if ignore_sigterm else "SIGTERM")
        assert group_members(leader.pid) == []
        assert not pid_alive(child)
    finally:
        # the whole group, even when the leader is already gone: a failed test must not leak the child
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(10)
