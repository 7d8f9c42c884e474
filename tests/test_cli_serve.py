"""`execlib serve` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from .helpers import execlib_cmd, read_line, remaining_lines, start_cli


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(execlib_cmd(*args), capture_output=True, text=True, timeout=timeout)


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


def test_non_loopback_host_warns(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is not on this machine: we see the warning, then a bind error, and never
    # listen on anything but loopback.
    result = run_cli("serve", str(tmp_path), "--host", "192.0.2.1", "--port", "0")
    assert "visible to other machines" in result.stderr
    assert_one_line_error(result, "192.0.2.1")


def test_open_launches_the_browser_once_ready(site: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    fake_browser = tmp_path / "fake-browser"
    fake_browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    fake_browser.chmod(0o755)
    proc, url = start_cli("serve", str(site), "--port", "0", "--open", env={"BROWSER": str(fake_browser)})
    try:
        from .helpers import wait_until

        wait_until(lambda: opened.exists() and opened.read_text().strip(), 10, message="the browser to be opened")
        assert opened.read_text().strip() == url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
