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
from execlib.lifecycle import LogRotation, rotate_log
from execlib.process import (
    ForeignFileError,
    NotRunningError,
    RunFiles,
    RunInfo,
    _proc_state,
    check_port_file,
    create_exclusive,
    holds_port,
    is_execlib_serve_command,
    is_execlib_server,
    pid_alive,
    read_pid,
    read_pid_file,
    read_port,
    remove_if_owned,
    status,
    stop,
    terminate,
    write_atomic,
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


OURS = [
    ('{"execlib": 1, "pid": 123, "root": "/s", "host": "::", "port": 8000}\n', RunInfo(123, "/s", "::", 8000)),
    ('{"execlib": 1, "pid": 123, "root": "/s", "host": null, "port": null}', RunInfo(123, "/s")),
    ('{"execlib": 2, "pid": 9, "later": "keys"}', RunInfo(9)),  # a later version is still ours
    ("123\n", RunInfo(123, legacy=True)),  # what earlier versions wrote: the pid alone
    ("123", RunInfo(123, legacy=True)),
]
NOT_OURS = [
    "",
    " 42 ",
    "42\n\n",
    "0",
    "-7",
    "abc",
    "print('hello')\n",
    '{"pid": 42}',
    '{"execlib": true, "pid": 42}',
    '{"execlib": 1, "pid": "42"}',
    '{"execlib": 1, "pid": 0}',
    "[1, 2]",
    '{"execlib": 1, "pid": 1}' + " " * 5000,
]


@pytest.mark.parametrize(("text", "info"), OURS)
def test_execlib_pid_files_are_recognised(tmp_path: Path, text: str, info: RunInfo) -> None:
    (tmp_path / "x.pid").write_text(text)
    assert read_pid_file(tmp_path / "x.pid") == info
    assert read_pid(tmp_path / "x.pid") == info.pid


@pytest.mark.parametrize("text", NOT_OURS)
def test_other_files_are_not_pid_files(tmp_path: Path, text: str) -> None:
    (tmp_path / "x.pid").write_text(text)
    with pytest.raises(ForeignFileError, match="not an execlib PID file"):
        read_pid_file(tmp_path / "x.pid")
    assert read_pid(tmp_path / "x.pid") is None
    assert (tmp_path / "x.pid").read_text() == text


def test_pid_file_round_trip(tmp_path: Path) -> None:
    info = RunInfo(4321, "/abs/site", "127.0.0.1", 41873)
    write_atomic(tmp_path / "x.pid", info.to_text())
    assert read_pid_file(tmp_path / "x.pid") == info
    assert [p.name for p in tmp_path.iterdir()] == ["x.pid"]  # no temporary file left behind


def test_devices_and_fifos_are_not_pid_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path in (tmp_path / "fifo", Path("/dev/zero"), Path("/dev/null")):
        with pytest.raises(ForeignFileError, match="not a regular file"):  # and never blocks or reads forever
            read_pid_file(path)


def test_read_missing_files_and_port_files(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "missing.pid") is None and read_pid_file(tmp_path / "missing.pid") is None
    port = tmp_path / "x.port"
    for text, value in (("8000\n", 8000), ("8000", 8000), ("70000", None), ("0", None), (" 80", None)):
        port.write_text(text)
        assert read_port(port) == value
    check_port_file(tmp_path / "missing.port")
    port.write_text("8000\n")
    check_port_file(port)
    port.write_text("remember port 8000\n")
    with pytest.raises(ForeignFileError, match="not an execlib port file"):
        check_port_file(port)


def test_create_exclusive_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "x.pid"
    create_exclusive(target, "first\n")
    with pytest.raises(FileExistsError):
        create_exclusive(target, "second\n")
    assert target.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.pid"]


def test_remove_if_owned_removes_only_execlib_files(tmp_path: Path) -> None:
    files = RunFiles.for_pid_file(tmp_path / "x.pid")
    # a user's files at both paths survive, byte for byte
    files.pid.write_bytes(b"my notes\n")
    files.port.write_bytes(b"port of call\n")
    remove_if_owned(files, None)
    assert files.pid.read_bytes() == b"my notes\n" and files.port.read_bytes() == b"port of call\n"
    # ours, but taken over by another pid: kept
    files.pid.write_text(RunInfo(111).to_text())
    files.port.write_text("8000\n")
    remove_if_owned(files, 222)
    assert files.pid.exists() and files.port.exists()
    # ours and naming that pid: both go
    remove_if_owned(files, 111)
    assert not files.pid.exists() and not files.port.exists()
    # an execlib PID file beside a port file that is not one: only the PID file goes
    files.pid.write_text("111\n")
    files.port.write_bytes(b"port of call\n")
    remove_if_owned(files, 111)
    assert not files.pid.exists() and files.port.read_bytes() == b"port of call\n"


def test_stop_and_status_refuse_a_file_that_is_not_a_pid_file(tmp_path: Path) -> None:
    user_file = tmp_path / "conf.py"
    user_file.write_text("project = 'x'\n")
    with pytest.raises(ForeignFileError, match="untouched"):
        stop(user_file)
    with pytest.raises(ForeignFileError):
        status(user_file)
    assert user_file.read_text() == "project = 'x'\n"


# -- log rotation ------------------------------------------------------------------------------------------


def test_rotate_log_keeps_one_backup_and_never_replaces_a_foreign_one(tmp_path: Path) -> None:
    log, backup = tmp_path / "x.log", tmp_path / "x.log.1"
    log.write_bytes(b"a" * 100)
    assert rotate_log(log, max_bytes=100) == (False, None)  # not over the limit
    log.write_bytes(b"a" * 101)
    assert rotate_log(log, max_bytes=100) == (True, None)
    assert not log.exists() and backup.read_bytes().startswith(b"a" * 101)
    log.write_bytes(b"b" * 101)
    assert rotate_log(log, max_bytes=100) == (True, None)  # our own backup is replaced
    assert backup.read_bytes().startswith(b"b" * 101)

    backup.write_bytes(b"the user's file\n")
    log.write_bytes(b"c" * 101)
    rotated, problem = rotate_log(log, max_bytes=100)
    assert not rotated and problem is not None and "not a log backup execlib made" in problem
    assert backup.read_bytes() == b"the user's file\n" and log.read_bytes() == b"c" * 101


def test_log_rotation_while_running_moves_the_writer_to_a_new_file(tmp_path: Path) -> None:
    log, backup = tmp_path / "x.log", tmp_path / "x.log.1"
    # two writers sharing one log, as two servers started with --no-single-instance do
    first = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    second = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        one, two = LogRotation(log, [first], max_bytes=100), LogRotation(log, [second], max_bytes=100)
        os.write(first, b"x" * 101)
        one.check()
        assert b"x" * 101 in backup.read_bytes()
        os.write(first, b"after\n")
        assert b"after" in log.read_bytes()  # `first` now writes to the new log
        two.check()  # the other writer follows the path instead of rotating a second time
        assert b"x" * 101 in backup.read_bytes()
        os.write(second, b"second\n")
        assert b"second" in log.read_bytes()
    finally:
        os.close(first)
        os.close(second)


def test_log_rotation_thread_is_stopped_and_joined(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        rotation = LogRotation(log, [fd], max_bytes=10, interval=60)
        os.write(fd, b"y" * 11)
        rotation.start()
        # its first check runs at once, not after the interval
        wait_until(lambda: (tmp_path / "x.log.1").exists(), message="first check")
        rotation.stop()
        assert not rotation._thread.is_alive()
    finally:
        os.close(fd)


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
