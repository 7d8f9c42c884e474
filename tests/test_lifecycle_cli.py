"""``execlib start`` / ``stop`` / ``status`` and ``serve --pid-file`` as a user runs them: real detached
processes on loopback port 0, found again through the PID and port files."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from execlib.lifecycle import LOG_MAX_BYTES

from .helpers import execlib_cmd, read_line, wait_until
from .lifecycle_support import (
    Lab,
    gone,
    group_members,
    health,
    hook_env,
    lab_fixture,
    pid_file_data,
    pid_in,
    python_cmd,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str, code: int | None = None) -> None:
    assert result.returncode != 0, result
    if code is not None:
        assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("execlib: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def foreign_http_port() -> Iterator[int]:
    """A port held by a web server that is not execlib (it answers 404 to everything)."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def sleeper(lab: Lab) -> subprocess.Popen[str]:
    """An unrelated live process, for PID-reuse tests (killed at teardown by the lab)."""
    return lab.popen(*python_cmd("import time; time.sleep(300)"), stdin=subprocess.DEVNULL)


# -- the main path ----------------------------------------------------------------------------------------


def test_start_status_request_stop(lab: Lab) -> None:
    pid, port, url = lab.start("--no-livereload")
    # detached: its own session and process group, stdin not a terminal, output in the log file
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/fd/1") == str(lab.dir / ".execlib.log")

    # the PID file names execlib, the pid, the root and the address (the port file stays a bare number)
    assert pid_file_data(lab.dir / ".execlib.pid") == {
        "execlib": 1,
        "pid": pid,
        "root": str(lab.site),
        "host": "127.0.0.1",
        "port": port,
    }
    assert (lab.dir / ".execlib.port").read_text() == f"{port}\n"

    status = lab.run("status")
    assert status.returncode == 0, status.stderr
    assert f"pid {pid}" in status.stdout and url in status.stdout and "healthy" in status.stdout

    as_json = lab.run("status", "--json")
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert data["running"] is True and data["healthy"] is True
    assert (data["pid"], data["port"], data["url"]) == (pid, port, url)
    assert data["root"] == str(lab.site)

    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "<h1>lab</h1>" in page.text
    assert wait_until(lambda: "GET / 200" in (lab.dir / ".execlib.log").read_text(), message="access log line")

    stopped = lab.run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped execlib server pid {pid}" in stopped.stdout
    assert gone(pid) and group_members(pid) == []
    assert not (lab.dir / ".execlib.pid").exists() and not (lab.dir / ".execlib.port").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)

    after = lab.run("status")
    assert after.returncode == 1 and "stopped: no PID file" in after.stdout
    again = lab.run("stop")
    assert_one_line_error(again, "no PID file", ".execlib.pid", code=1)


def test_start_with_default_options_serves_with_live_reload(lab: Lab) -> None:
    pid, _, url = lab.start()
    assert "livereload.js" in httpx.get(url, timeout=10).text
    assert lab.run("stop").returncode == 0
    assert gone(pid)


def test_start_survives_the_terminal_going_away(lab: Lab) -> None:
    # SIGHUP to the group that ran `execlib start` must not reach the server: it has its own session
    launcher = lab.popen(
        *execlib_cmd("start", str(lab.site), "--port", "0", "--no-livereload"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out, err = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, err
    with pytest.raises(ProcessLookupError):
        os.killpg(launcher.pid, signal.SIGHUP)  # the launcher's group is empty: the server is not in it
    pid = pid_in(lab.dir / ".execlib.pid")
    url = re.search(r"at (http://\S+)", out).group(1)
    assert health(url)["pid"] == pid
    assert lab.run("stop").returncode == 0


def test_second_start_is_refused_naming_the_pid(lab: Lab) -> None:
    pid, _, url = lab.start("--no-livereload")
    second = lab.run("start", str(lab.site), "--port", "0")
    # the way forward is the running server's URL, `stop` or --replace: --no-single-instance would
    # leave this server running untracked once the new one takes the PID file over
    assert_one_line_error(second, "already running", f"pid {pid}", url, ".execlib.pid", "--replace")
    assert "--no-single-instance" not in second.stderr
    serve = lab.run("serve", str(lab.site), "--port", "0", "--pid-file", ".execlib.pid")
    assert_one_line_error(serve, "already running", f"pid {pid}", url, "--replace")
    assert pid_in(lab.dir / ".execlib.pid") == pid
    assert health(url)["pid"] == pid


def test_no_single_instance_starts_a_second_server(lab: Lab) -> None:
    first, _, first_url = lab.start("--no-livereload")
    second, _, second_url = lab.start("--no-livereload", "--no-single-instance")
    assert second != first
    assert health(first_url)["pid"] == first and health(second_url)["pid"] == second
    assert pid_in(lab.dir / ".execlib.pid") == second  # the PID file now names the newest
    assert lab.run("stop").returncode == 0
    assert gone(second) and health(first_url)["pid"] == first


def test_serve_with_pid_file_writes_and_removes_its_files(lab: Lab) -> None:
    proc = lab.popen(
        *execlib_cmd("serve", str(lab.site), "--port", "0", "--no-livereload", "--pid-file", "fg.pid"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = re.search(r"at (http://\S+)", read_line(proc)).group(1)
    assert pid_in(lab.dir / "fg.pid") == proc.pid
    assert url == f"http://127.0.0.1:{int((lab.dir / 'fg.port').read_text())}/"
    status = lab.run("status", "--pid-file", "fg.pid")
    assert status.returncode == 0 and f"pid {proc.pid}" in status.stdout
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert not (lab.dir / "fg.pid").exists() and not (lab.dir / "fg.port").exists()


# -- stale files and PID reuse ----------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen(python_cmd("pass"))
    proc.wait(10)
    return proc.pid


def test_stale_pid_file_is_cleaned_up(lab: Lab) -> None:
    pid_file = lab.dir / ".execlib.pid"
    pid_file.write_text(f"{dead_pid()}\n")
    (lab.dir / ".execlib.port").write_text("1\n")

    status = lab.run("status")
    assert status.returncode == 1 and "stale PID file" in status.stdout
    assert pid_file.exists()  # status changes nothing

    stop = lab.run("stop")
    assert stop.returncode == 0 and "removed stale PID file" in stop.stdout
    assert not pid_file.exists() and not (lab.dir / ".execlib.port").exists()

    pid_file.write_text(f"{dead_pid()}\n")
    new_pid, _, url = lab.start("--no-livereload")
    assert pid_in(pid_file) == new_pid and health(url)["pid"] == new_pid


def test_a_pid_file_of_an_earlier_version_still_works(lab: Lab) -> None:
    # earlier versions wrote the bare pid; a live server with such a file is still found and stopped
    pid, _, url = lab.start("--no-livereload")
    (lab.dir / ".execlib.pid").write_text(f"{pid}\n")
    status = lab.run("status")
    assert status.returncode == 0 and f"pid {pid}" in status.stdout and url in status.stdout
    refused = lab.run("start", str(lab.site), "--port", "0")
    assert_one_line_error(refused, "already running", f"pid {pid}")
    stop = lab.run("stop")
    assert stop.returncode == 0 and f"stopped execlib server pid {pid}" in stop.stdout
    assert gone(pid) and not (lab.dir / ".execlib.pid").exists()


# the examples: a docs config and a notes file given as --pid-file by mistake (which file
# contents count as execlib's is covered in test_process.py)
USER_FILES = {"conf.py": b"project = 'site'\nextensions = []\n", "notes.txt": b"remember: 42\n"}


@pytest.mark.parametrize("name", sorted(USER_FILES))
@pytest.mark.parametrize(
    "command",
    [
        ["stop"],
        ["status", "--json"],
        ["serve", "site", "--port", "0"],
        ["serve", "site", "--port", "0", "--replace"],
        ["serve", "site", "--port", "0", "--no-single-instance"],
        ["start", "site", "--port", "0"],
        ["start", "site", "--port", "0", "--replace"],
        ["start", "site", "--port", "0", "--no-single-instance"],
    ],
)
def test_a_wrong_pid_file_is_refused_and_kept(lab: Lab, command: list[str], name: str) -> None:
    user_file = lab.dir / name
    user_file.write_bytes(USER_FILES[name])
    result = lab.run(*command, "--pid-file", name)
    assert_one_line_error(result, str(user_file), "not an execlib PID file", "untouched", code=2)
    assert user_file.read_bytes() == USER_FILES[name]
    # nothing was started, and no companion file was created beside it
    assert sorted(p.name for p in lab.dir.iterdir()) == sorted(["site", name])


@pytest.mark.parametrize("command", [["serve", "site", "--port", "0"], ["start", "site", "--port", "0"]])
def test_a_port_file_that_is_not_execlibs_is_refused_and_kept(lab: Lab, command: list[str]) -> None:
    # --pid-file notes.pid makes notes.port the port file: a user's notes.port is never overwritten
    (lab.dir / "notes.port").write_text("call Sam at 8000\n")
    result = lab.run(*command, "--pid-file", "notes.pid")
    assert_one_line_error(result, str(lab.dir / "notes.port"), "not an execlib port file", code=2)
    assert (lab.dir / "notes.port").read_text() == "call Sam at 8000\n"
    assert not (lab.dir / "notes.pid").exists()


def test_stop_keeps_a_port_file_that_is_not_execlibs(lab: Lab) -> None:
    pid_file = lab.dir / "x.pid"
    pid_file.write_text(f"{dead_pid()}\n")
    (lab.dir / "x.port").write_text("not a port\n")
    stop = lab.run("stop", "--pid-file", "x.pid")
    assert stop.returncode == 0 and "removed stale PID file" in stop.stdout
    assert not pid_file.exists()
    assert (lab.dir / "x.port").read_text() == "not a port\n"


def test_a_fifo_as_pid_file_is_refused_without_blocking(lab: Lab) -> None:
    os.mkfifo(lab.dir / "pipe.pid")
    result = lab.run("stop", "--pid-file", "pipe.pid", timeout=20)
    assert_one_line_error(result, "not an execlib PID file", "not a regular file", code=2)
    assert (lab.dir / "pipe.pid").exists()


@pytest.mark.parametrize("who", ["sleeper", "test process"])
def test_pid_reused_by_an_unrelated_process_is_stale_and_never_signalled(
    lab: Lab, sleeper: subprocess.Popen[str], who: str
) -> None:
    pid = sleeper.pid if who == "sleeper" else os.getpid()
    pid_file = lab.dir / ".execlib.pid"
    pid_file.write_text(f"{pid}\n")

    status = lab.run("status", "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout)["stale"] is True

    stop = lab.run("stop")
    assert stop.returncode == 0 and "stale" in stop.stdout and f"pid {pid}" in stop.stdout
    assert sleeper.poll() is None  # never signalled
    assert not pid_file.exists()

    pid_file.write_text(f"{pid}\n")
    new_pid, _, url = lab.start("--no-livereload")
    assert new_pid != pid and health(url)["pid"] == new_pid
    assert sleeper.poll() is None


# -- stopping ---------------------------------------------------------------------------------------------


def test_stop_escalates_to_sigkill_for_a_server_ignoring_sigterm(lab: Lab) -> None:
    pid, _, url = lab.start("--no-livereload", env=hook_env("EXECLIB_TEST_IGNORE_SIGTERM"))
    os.kill(pid, signal.SIGTERM)
    assert health(url)["pid"] == pid  # the test hook works: SIGTERM alone does not stop it
    stop = lab.run("stop", "--timeout", "0.5")
    assert stop.returncode == 0, stop.stderr
    assert "SIGKILL" in stop.stdout and f"pid {pid}" in stop.stdout
    assert gone(pid) and group_members(pid) == []
    assert not (lab.dir / ".execlib.pid").exists() and not (lab.dir / ".execlib.port").exists()


def test_stop_leaves_no_process_of_the_group_behind(lab: Lab) -> None:
    pid, _, _ = lab.start("--no-livereload", env=hook_env("EXECLIB_TEST_SPAWN_CHILD"))
    log = lab.dir / ".execlib.log"
    child = int(wait_until(lambda: re.search(r"child pid (\d+)", log.read_text()), message="child").group(1))
    assert os.getpgid(child) == pid and set(group_members(pid)) == {pid, child}
    stop = lab.run("stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert gone(pid) and gone(child) and group_members(pid) == []


def test_status_is_3_while_the_server_does_not_answer(lab: Lab) -> None:
    pid, _, url = lab.start("--no-livereload")
    os.kill(pid, signal.SIGSTOP)
    try:
        stuck = lab.run("status")
        assert stuck.returncode == 3, stuck.stdout
        assert f"running: pid {pid}" in stuck.stdout and "not healthy" in stuck.stdout
        assert json.loads(lab.run("status", "--json").stdout)["healthy"] is False
    finally:
        os.kill(pid, signal.SIGCONT)
    assert lab.run("status").returncode == 0
    assert lab.run("status", "--url", url).returncode == 0


# -- ports ------------------------------------------------------------------------------------------------


def test_port_held_by_execlib_is_named_and_replace_reclaims_it(lab: Lab) -> None:
    old, port, url = lab.start("--no-livereload", pid_file="old.pid")

    refused = lab.run("start", str(lab.site), "--port", str(port), "--pid-file", "new.pid")
    assert_one_line_error(refused, str(port), f"execlib server (pid {old}", str(lab.site), "--replace")
    served = lab.run("serve", str(lab.site), "--port", str(port))
    assert_one_line_error(served, str(port), f"pid {old}", "--replace")
    assert health(url)["pid"] == old

    replaced = lab.run("start", str(lab.site), "--port", str(port), "--pid-file", "new.pid", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    # named on the terminal, not only in the log file
    assert f"execlib: stopped execlib server pid {old} serving {lab.site} at {url}" in replaced.stderr
    new = pid_in(lab.dir / "new.pid")
    assert new != old and gone(old)
    assert health(url)["pid"] == new
    assert not (lab.dir / "old.pid").exists()  # the old server removed its files on SIGTERM
    assert lab.run("stop", "--pid-file", "new.pid").returncode == 0


def test_replace_takes_over_a_pid_file_owned_by_a_live_server(lab: Lab) -> None:
    old, _, old_url = lab.start("--no-livereload")
    replaced = lab.run("start", str(lab.site), "--port", "0", "--no-livereload", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert f"stopped execlib server pid {old} serving {lab.site} at {old_url}" in replaced.stderr
    assert "owned the PID file" in replaced.stderr
    new = pid_in(lab.dir / ".execlib.pid")
    url = re.search(r"at (http://\S+)", replaced.stdout).group(1)
    assert new != old and gone(old) and health(url)["pid"] == new


def other_project(lab: Lab) -> Path:
    other = lab.dir / "other-project"
    other.mkdir()
    (other / "index.html").write_text("<h1>other</h1>")
    return other


def test_replace_names_another_projects_foreground_server(lab: Lab) -> None:
    # a server of another project, in the foreground, with no PID file: --replace stops it, and says so
    other = other_project(lab)
    foreign = lab.popen(
        *execlib_cmd("serve", str(other), "--port", "0", "--no-livereload"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = re.search(r"at (http://\S+)", read_line(foreign)).group(1)
    port = url.rsplit(":", 1)[1].rstrip("/")
    replaced = lab.run("start", str(lab.site), "--port", port, "--no-livereload", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    notice = [line for line in replaced.stderr.splitlines() if line.startswith("execlib: stopped")]
    assert notice == [
        f"execlib: stopped execlib server pid {foreign.pid} serving {other} at {url}, which held port {port}"
    ]
    assert foreign.wait(10) == 0  # it shut down cleanly, on SIGTERM
    assert health(url)["pid"] == pid_in(lab.dir / ".execlib.pid")


def test_serve_replace_names_the_server_it_stops(lab: Lab) -> None:
    other = other_project(lab)
    old, port, url = lab.start("--no-livereload", pid_file="old.pid")
    proc = lab.popen(
        *execlib_cmd("serve", str(other), "--port", str(port), "--no-livereload", "--replace"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert f"at {url}" in read_line(proc)
    notice = read_line(proc, stream="stderr")
    assert (
        notice.strip()
        == f"execlib: stopped execlib server pid {old} serving {lab.site} at {url}, which held port {port}"
    )
    assert gone(old) and health(url)["pid"] == proc.pid


def test_port_held_by_a_foreign_process(lab: Lab, foreign_http_port: int) -> None:
    port = str(foreign_http_port)
    serve = lab.run("serve", str(lab.site), "--port", port, "--replace")
    assert_one_line_error(serve, port, "already in use", "--port 0")

    start = lab.run("start", str(lab.site), "--port", port, "--pid-file", "x.pid")
    assert start.returncode == 1 and "Traceback" not in start.stderr
    first, *tail = start.stderr.splitlines()
    assert first.startswith("execlib: error: the server exited during start-up")
    assert any(port in line and "already in use" in line for line in tail), start.stderr
    assert not (lab.dir / "x.pid").exists()
    # the foreign server was left alone
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 404


def test_start_that_is_not_healthy_in_time_is_stopped_and_reported(lab: Lab) -> None:
    result = lab.run("start", str(lab.site), "--port", "0", "--timeout", "0.001")
    assert result.returncode == 1
    assert result.stderr.startswith("execlib: error: the server did not become healthy within 0.001 s")
    assert "Traceback" not in result.stderr
    wait_until(lambda: not (lab.dir / ".execlib.pid").exists(), message="PID file removed")
    assert [p for p in _lab_processes(lab)] == []


def _lab_processes(lab: Lab) -> list[int]:
    from .lifecycle_support import processes_mentioning

    return processes_mentioning(str(lab.dir))


# -- environment and bad input ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_environment_supplies_defaults_and_options_override_them(lab: Lab) -> None:
    port = free_port()
    env = {"EXECLIB_HOST": "127.0.0.1", "EXECLIB_PORT": str(port)}
    result = lab.run("start", str(lab.site), "--no-livereload", env=env)
    assert result.returncode == 0, result.stderr
    assert f"http://127.0.0.1:{port}/" in result.stdout
    assert int((lab.dir / ".execlib.port").read_text()) == port
    assert lab.run("stop").returncode == 0

    # explicit options win over the environment (which here would not even work)
    env = {"EXECLIB_HOST": "no-such-host.invalid", "EXECLIB_PORT": "nonsense"}
    result = lab.run("start", str(lab.site), "--no-livereload", "--host", "127.0.0.1", "--port", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert lab.run("stop").returncode == 0


@pytest.mark.parametrize("folder", ["/proc", "/sys"])
@pytest.mark.parametrize("command", ["serve", "start"])
def test_pid_file_in_a_folder_that_takes_no_files(lab: Lab, folder: str, command: str) -> None:
    # /proc and /sys refuse new files even to root, so this holds however the tests are run
    pid_file = f"{folder}/execlib-test.pid"
    result = lab.run(command, str(lab.site), "--port", "0", "--pid-file", pid_file)
    # start writes its log (next to the PID file) before anything else
    expected = "cannot create the PID file" if command == "serve" else "cannot write the log file"
    assert_one_line_error(result, expected, folder, code=2)
    assert not os.path.exists(pid_file)
    assert not _lab_processes(lab)


@pytest.mark.parametrize("folder", ["/proc", "/sys"])
def test_start_in_a_folder_that_takes_no_files(lab: Lab, folder: str) -> None:
    # `execlib start` writes its log, PID and port files in the current folder by default
    result = lab.run("start", str(lab.site), "--port", "0", cwd=folder)
    assert_one_line_error(result, f"{folder}/.execlib.log", "--pid-file", code=2)
    assert not os.path.exists(f"{folder}/.execlib.pid")
    assert not _lab_processes(lab)


# -- the log file -------------------------------------------------------------------------------------------


def fill(path: Path, size: int, byte: bytes) -> bytes:
    """Append ``size`` bytes of recognisable lines to ``path``; returns them."""
    line = byte * 99 + b"\n"
    data = line * (size // len(line) + 1)
    with path.open("ab") as out:
        out.write(data)
    return data


def head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(7)


def test_start_rotates_a_large_log_and_keeps_one_backup(lab: Lab) -> None:
    log, backup = lab.dir / ".execlib.log", lab.dir / ".execlib.log.1"
    old = fill(log, LOG_MAX_BYTES + 1, b"a")
    pid, _, url = lab.start("--no-livereload")
    assert backup.read_bytes().startswith(old)
    assert b"execlib: log rotated" in backup.read_bytes()[len(old) :]
    assert log.stat().st_size < 64 * 1024 and "Serving" in log.read_text()

    # while running: past the cap, the server moves its log aside and writes on in a new one
    new = fill(log, LOG_MAX_BYTES + 1, b"b")
    wait_until(lambda: head(backup) == b"Serving", timeout=20, message="the log rotated while running")
    assert new in backup.read_bytes()  # the previous backup (ours) was replaced by this log
    assert httpx.get(url, timeout=10).status_code == 200
    wait_until(lambda: "GET / 200" in log.read_text(), message="access log line in the new log")
    assert log.stat().st_size < 64 * 1024
    assert health(url)["pid"] == pid
    assert lab.run("stop").returncode == 0


def test_a_backup_that_is_not_execlibs_is_never_replaced(lab: Lab) -> None:
    log, backup = lab.dir / ".execlib.log", lab.dir / ".execlib.log.1"
    backup.write_bytes(b"my own notes\n")
    fill(log, LOG_MAX_BYTES + 1, b"a")
    result = lab.run("start", str(lab.site), "--port", "0", "--no-livereload")
    assert result.returncode == 0, result.stderr
    assert f"{backup} is not a log backup execlib made" in result.stderr
    assert backup.read_bytes() == b"my own notes\n"
    assert log.stat().st_size > LOG_MAX_BYTES  # kept growing rather than lose that file
    assert lab.run("stop").returncode == 0


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (["start", "site"], {"EXECLIB_PORT": "eighty"}, ["EXECLIB_PORT", "eighty"]),
        (["start", "site", "--port", "99999"], {}, ["out of range"]),
        (["start", "missing"], {}, ["folder not found", "missing"]),
        (["start", "site", "--port", "0", "--timeout", "soon"], {}, ["--timeout", "soon"]),
        (["start", "site", "--port", "0", "--pid-file", "no/such/dir/x.pid"], {}, ["folder", "no/such/dir"]),
        (["start", "site", "--port", "0", "--pid-file", "site"], {}, ["is a folder"]),
        # a file where a folder should be
        (["start", "site", "--port", "0", "--pid-file", "site/index.html/x.pid"], {}, ["folder", "index.html"]),
        (["stop", "--timeout", "-1"], {}, ["--timeout"]),
        (["stop", "--pid-file", "nothing.pid"], {}, ["no PID file", "nothing.pid"]),
        (["status", "--url", "localhost:80"], {}, ["--url"]),
        (["serve", "site", "--port", "0", "--pid-file", "no/such/dir/x.pid"], {}, ["folder", "no/such/dir"]),
    ],
)
def test_bad_input_gives_one_line_errors(lab: Lab, args: list[str], env: dict[str, str], fragments: list[str]) -> None:
    assert_one_line_error(lab.run(*args, env=env), *fragments)
    assert not (lab.dir / ".execlib.pid").exists()
