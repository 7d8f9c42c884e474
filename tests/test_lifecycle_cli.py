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

from .helpers import execlib_cmd, read_line, wait_until
from .lifecycle_support import Lab, gone, group_members, health, lab_fixture, python_cmd

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
    pid = int((lab.dir / ".execlib.pid").read_text())
    url = re.search(r"at (http://\S+)", out).group(1)
    assert health(url)["pid"] == pid
    assert lab.run("stop").returncode == 0


def test_second_start_is_refused_naming_the_pid(lab: Lab) -> None:
    pid, _, url = lab.start("--no-livereload")
    second = lab.run("start", str(lab.site), "--port", "0")
    assert_one_line_error(second, "already running", f"pid {pid}", ".execlib.pid", "--no-single-instance")
    serve = lab.run("serve", str(lab.site), "--port", "0", "--pid-file", ".execlib.pid")
    assert_one_line_error(serve, "already running", f"pid {pid}")
    assert int((lab.dir / ".execlib.pid").read_text()) == pid
    assert health(url)["pid"] == pid


def test_no_single_instance_starts_a_second_server(lab: Lab) -> None:
    first, _, first_url = lab.start("--no-livereload")
    second, _, second_url = lab.start("--no-livereload", "--no-single-instance")
    assert second != first
    assert health(first_url)["pid"] == first and health(second_url)["pid"] == second
    assert int((lab.dir / ".execlib.pid").read_text()) == second  # the PID file now names the newest
    assert lab.run("stop").returncode == 0
    assert gone(second) and health(first_url)["pid"] == first


def test_serve_with_pid_file_writes_and_removes_its_files(lab: Lab) -> None:
    proc = lab.popen(
        *execlib_cmd("serve", str(lab.site), "--port", "0", "--no-livereload", "--pid-file", "fg.pid"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = re.search(r"at (http://\S+)", read_line(proc)).group(1)
    assert int((lab.dir / "fg.pid").read_text()) == proc.pid
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
    assert int(pid_file.read_text()) == new_pid and health(url)["pid"] == new_pid


def test_garbage_in_the_pid_file_counts_as_stale(lab: Lab) -> None:
    (lab.dir / ".execlib.pid").write_text("not a pid\n")
    assert lab.run("status").returncode == 1
    stop = lab.run("stop")
    assert stop.returncode == 0 and "stale" in stop.stdout
    assert not (lab.dir / ".execlib.pid").exists()


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
    pid, _, url = lab.start("--no-livereload", env={"EXECLIB_TEST_IGNORE_SIGTERM": "1"})
    os.kill(pid, signal.SIGTERM)
    assert health(url)["pid"] == pid  # the test hook works: SIGTERM alone does not stop it
    stop = lab.run("stop", "--timeout", "0.5")
    assert stop.returncode == 0, stop.stderr
    assert "SIGKILL" in stop.stdout and f"pid {pid}" in stop.stdout
    assert gone(pid) and group_members(pid) == []
    assert not (lab.dir / ".execlib.pid").exists() and not (lab.dir / ".execlib.port").exists()


def test_stop_leaves_no_process_of_the_group_behind(lab: Lab) -> None:
    pid, _, _ = lab.start("--no-livereload", env={"EXECLIB_TEST_SPAWN_CHILD": "1"})
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
    new = int((lab.dir / "new.pid").read_text())
    assert new != old and gone(old)
    assert health(url)["pid"] == new
    assert not (lab.dir / "old.pid").exists()  # the old server removed its files on SIGTERM
    assert lab.run("stop", "--pid-file", "new.pid").returncode == 0


def test_replace_takes_over_a_pid_file_owned_by_a_live_server(lab: Lab) -> None:
    old, _, _ = lab.start("--no-livereload")
    new, _, url = lab.start("--no-livereload", "--replace")
    assert new != old and gone(old) and health(url)["pid"] == new


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


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (["start", "site"], {"EXECLIB_PORT": "eighty"}, ["EXECLIB_PORT", "eighty"]),
        (["start", "site", "--port", "99999"], {}, ["out of range"]),
        (["start", "missing"], {}, ["folder not found", "missing"]),
        (["start", "site", "--port", "0", "--timeout", "soon"], {}, ["--timeout", "soon"]),
        (["start", "site", "--port", "0", "--pid-file", "no/such/dir/x.pid"], {}, ["folder", "no/such/dir"]),
        (["start", "site", "--port", "0", "--pid-file", "site"], {}, ["is a folder"]),
        (["stop", "--timeout", "-1"], {}, ["--timeout"]),
        (["stop", "--pid-file", "nothing.pid"], {}, ["no PID file", "nothing.pid"]),
        (["status", "--url", "localhost:80"], {}, ["--url"]),
        (["serve", "site", "--port", "0", "--pid-file", "no/such/dir/x.pid"], {}, ["folder", "no/such/dir"]),
    ],
)
def test_bad_input_gives_one_line_errors(lab: Lab, args: list[str], env: dict[str, str], fragments: list[str]) -> None:
    assert_one_line_error(lab.run(*args, env=env), *fragments)
    assert not (lab.dir / ".execlib.pid").exists()
