"""`execlib serve` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .helpers import execlib_cmd, read_line, remaining_lines, start_cli, wait_until


def run_cli(*args: str, timeout: float = 20, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(execlib_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd)


def assert_only_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The run printed nothing on stderr but one ``execlib: error:`` line, and exited with status 2."""
    err = result.stderr
    assert err.startswith("execlib: error: ") and err.count("\n") == 1, err
    assert result.returncode == 2, (result.returncode, err)
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_url_logs_requests_and_exits_cleanly_on_signal(site: Path, sig: int) -> None:
    proc, url = start_cli("serve", str(site), "--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "about.html", timeout=10).status_code == 200
        line = read_line(proc)
        method, path, status, size, millis = line.split()
        assert (method, path, status) == ("GET", "/about.html", "200")
        assert int(size) > 0 and millis.endswith("ms")
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_serve_json_access_log(site: Path) -> None:
    proc, url = start_cli("serve", str(site), "--port", "0", "--log-format", "json")
    try:
        httpx.get(url + "missing.html", timeout=10)
        record = json.loads(read_line(proc))
        assert record["method"] == "GET" and record["path"] == "/missing.html"
        assert record["status"] == 404 and record["size"] > 0 and "ms" in record
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_quiet_has_no_access_log(site: Path) -> None:
    proc, url = start_cli("serve", str(site), "--port", "0", "-q")
    httpx.get(url, timeout=10)
    proc.send_signal(signal.SIGTERM)
    assert remaining_lines(proc) == []  # the URL line was read already; nothing else was printed
    assert proc.wait(10) == 0


def test_console_script_and_module_entry(site: Path) -> None:
    proc = subprocess.Popen(
        ["execlib", "serve", str(site), "--port", "0", "--no-livereload"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc)
        assert line.startswith(f"Serving {site} at http://127.0.0.1:")
        url = line.split(" at ")[1].strip()
        assert "livereload.js" not in httpx.get(url, timeout=10).text
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) >= 1
    error = lines[-1]
    assert error.startswith("execlib: error: ")
    for fragment in fragments:
        assert fragment in error, (fragment, error)


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    missing = run_cli("serve", str(tmp_path / "missing"))
    assert missing.returncode == 2
    assert_one_line_error(missing, "folder not found", "missing")
    (tmp_path / "f.txt").write_text("x")
    assert_one_line_error(run_cli("serve", str(tmp_path / "f.txt")), "not a folder")
    assert run_cli("serve", str(tmp_path / "f.txt")).returncode == 2
    assert_one_line_error(run_cli("serve", str(tmp_path), "--port", "70000"), "out of range")
    assert_one_line_error(run_cli("serve", str(tmp_path), "--port", "http"), "--port")
    assert_one_line_error(run_cli("serve", str(tmp_path), "--fallback", "app.html"), "fallback", "app.html")
    assert_one_line_error(
        run_cli("serve", str(tmp_path), "--host", "no-such-host.invalid", "--port", "0"), "no-such-host.invalid"
    )


def test_port_in_use_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("serve", str(tmp_path), "--port", str(port))
    assert_one_line_error(result, str(port), "--port 0")


@pytest.mark.parametrize(
    ("host", "fragments"),
    [
        # 10.99.99.99 is not on this machine: no warning that the folder is now visible (it is not)
        ("10.99.99.99", ["--host 10.99.99.99 is not an address of this machine", "127.0.0.1"]),
        ("", ["--host '' must be a host name or an address"]),
        ("no-such-host.invalid", ["--host no-such-host.invalid is not a known host"]),
    ],
)
def test_a_host_that_cannot_be_bound_is_one_error_line_and_no_warning(
    tmp_path: Path, host: str, fragments: list[str]
) -> None:
    assert_only_error(run_cli("serve", str(tmp_path), "--host", host, "--port", "0"), *fragments)


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--delay", "-5"], ["--delay -5 must be a number of milliseconds, 0 or more"]),
        (["--build-timeout", "0"], ["--build-timeout 0 must be a number of seconds more than 0"]),
        (["--build-timeout", "-1"], ["--build-timeout -1 must be"]),
        (["--ignore", "[abc"], ["--ignore '[abc' is not a valid glob", "never closed by ']'"]),
        (["--ignore", "*.@(js|css"], ["--ignore '*.@(js|css' is not a valid glob", "'@('"]),
    ],
)
def test_bad_option_values_are_one_line_naming_the_flag(
    tmp_path: Path, options: list[str], fragments: list[str]
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "src").mkdir()
    build = ["--build", "true", "--watch", str(tmp_path / "src")] if "--build-timeout" in options else []
    err = assert_only_error(run_cli("serve", str(tmp_path / "site"), "--port", "0", *options, *build), *fragments)
    assert "=" not in err  # flags, not the Python API's parameter names (delay=)


def test_library_errors_name_flags_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    err = assert_only_error(run_cli("serve", str(tmp_path / "site"), "--port", "0", "--build", "true"))
    assert err == "execlib: error: --build true needs --watch paths: the sources it rebuilds from\n"
    err = assert_only_error(run_cli("watch", str(tmp_path), "--glob", "{a,b", "--", "true"))
    assert err.startswith("execlib: error: --glob '{a,b' is not a valid glob"), err


def test_an_unquoted_build_command_gets_a_quoting_hint(tmp_path: Path) -> None:
    hint = "--build takes one argument; quote a command with spaces: --build 'make html'"
    (tmp_path / "site").mkdir()
    # the root given: argparse has no place for "html"
    assert_only_error(run_cli("serve", "site", "--build", "make", "html", cwd=tmp_path), "arguments: html", hint)
    # no root given: "html" was taken as the folder to serve
    assert_only_error(run_cli("serve", "--build", "make", "html", cwd=tmp_path), "folder not found: html", hint)
    # a quoted command and a missing folder: no hint; the build will write the folder (it is created
    # once the options are right), and what is missing here is --watch
    err = assert_only_error(run_cli("serve", "nope", "--build", "make html", cwd=tmp_path), "needs --watch paths")
    assert "quote" not in err and not (tmp_path / "nope").exists()


def test_open_without_a_browser_warns_with_the_url(site: Path, tmp_path: Path) -> None:
    failing = tmp_path / "no-browser"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o755)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    # No display, no terminal and nothing on PATH: the failing BROWSER is the only browser to try.
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "TERM")}
    env.update(BROWSER=str(failing), PATH=str(empty))
    proc = subprocess.Popen(
        [sys.executable, "-m", "execlib", "serve", str(site), "--port", "0", "--open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = read_line(proc).split(" at ")[1].split()[0]  # the start line ends with "(LOOP)"
        warning = read_line(proc, stream="stderr")
        assert warning == f"execlib: warning: could not open a browser; open {url} yourself\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_open_launches_the_browser_once_ready(site: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    fake_browser = tmp_path / "fake-browser"
    fake_browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    fake_browser.chmod(0o755)
    proc, url = start_cli("serve", str(site), "--port", "0", "--open", env={"BROWSER": str(fake_browser)})
    try:
        wait_until(lambda: opened.exists() and opened.read_text().strip(), 10, message="the browser to be opened")
        assert opened.read_text().strip() == url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
