"""App mode from the command line: the start line, Ctrl-C, and every mistake as one line, never a hang."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from .app_support import alive, write_fastapi_app
from .helpers import execlib_cmd, start_cli, wait_until


def run(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        execlib_cmd("serve", "--port", "0", "--no-config", *args),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, tracebacks: int = 0) -> str:
    """The one ``execlib: error:`` line; ``tracebacks``: how many of the app's own were shown before it."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.count("Traceback") == tracebacks, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("execlib: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ("mian:app", "no module named 'mian' in "),
        ("main:ap", "module 'main' has no attribute 'ap'; did you mean 'app'?"),
        ("main:VERSION", "main:VERSION is not callable (it is a str)"),
        ("main", "--app main must be an import string module:attribute"),
    ],
)
def test_an_app_that_cannot_be_found_is_one_line_and_exit_2(tmp_path: Path, app: str, expected: str) -> None:
    write_fastapi_app(tmp_path)
    line = one_line_error(run(tmp_path, "--app", app), 2)
    assert expected in line
    if app.startswith("mian"):
        assert "--app-dir" in line  # the hint: where it looked, and how to look elsewhere


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--app", "main:app", "--proxy", "http://127.0.0.1:3000"], "cannot be combined with"),
        (["--app", "main:app", "--workers", "0"], "--workers 0 must be an int from 1 to 64"),
        (["--app", "main:app", "--app-dir", "nowhere"], "folder not found: nowhere"),
        (["--reload"], "needs app mode"),
        (["--reload-dir", "."], "needs app mode"),
        (["--app", "main:app", "--reload-dir", "nowhere"], "--reload-dir nowhere folder not found: nowhere"),
        (["--app", "main:app", "--no-reload", "--reload-dir", "."], "needs reload on"),
    ],
)
def test_bad_app_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    write_fastapi_app(tmp_path)
    assert expected in one_line_error(run(tmp_path, *args), 2)


def test_an_app_that_never_answers_fails_after_the_startup_timeout_with_its_output(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        "import os, time\n"
        "open('worker.pid', 'w').write(str(os.getpid()))\n"
        "print('loading the model, this takes a while', flush=True)\n"
        "time.sleep(120)\n"
        "app = None\n"
    )
    result = run(tmp_path, "--app", "slow:app", "--no-reload", "--app-startup-timeout", "1")
    line = one_line_error(result, 1)
    assert "the app did not answer within 1 s of starting" in line
    assert "loading the model, this takes a while" in result.stderr  # its output's tail
    assert not alive(int((tmp_path / "worker.pid").read_text()))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "import not_installed_anywhere\napp = None\n",
            "ModuleNotFoundError: No module named 'not_installed_anywhere'",
        ),
        ("raise RuntimeError('bad settings')\n", "RuntimeError: bad settings"),
    ],
)
def test_an_app_whose_import_fails_without_reload_exits_1_with_its_traceback_once(
    tmp_path: Path, code: str, expected: str
) -> None:
    (tmp_path / "broken.py").write_text(code)
    result = run(tmp_path, "--app", "broken:app", "--no-reload")
    assert "cannot load broken:app" in one_line_error(result, 1, tracebacks=1)
    assert result.stderr.count("\n    " + expected) == 1, result.stderr  # the traceback (indented), once
    assert 'File "' in result.stderr and "broken.py" in result.stderr


def test_a_failing_lifespan_startup_is_shown_once(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path, startup="raise RuntimeError('no database')")
    result = run(tmp_path, "--app", "main:app", "--no-reload")
    line = one_line_error(result, 1, tracebacks=1)
    assert "startup failed" in line
    assert result.stderr.count("\n    RuntimeError: no database") == 1, result.stderr


def test_serving_an_app_then_ctrl_c_leaves_no_worker(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    proc, url = start_cli("serve", "--port", "0", "--no-config", "--app", "main:app", cwd=tmp_path)
    try:
        pid = httpx.get(url + "pid", timeout=30).json()["pid"]
        assert httpx.get(url, timeout=30).text.count("version 1") == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        wait_until(lambda: not alive(pid), 10, message="the worker to exit")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_start_line_names_the_app_and_an_app_error_keeps_serving_with_reload(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("app = (\n")  # a syntax error: shown in the page, fixed by a save
    proc, url = start_cli("serve", "--port", "0", "--no-config", "--app", "main:app", cwd=tmp_path)
    try:
        page = httpx.get(url, headers={"accept": "text/html"}, timeout=30)
        assert page.status_code == 500 and "SyntaxError" in page.text
        write_fastapi_app(tmp_path)
        wait_until(lambda: httpx.get(url + "pid", timeout=30).status_code == 200, 30, message="the fix")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert err.count("\n    SyntaxError: '(' was never closed") == 1, err  # the traceback, once in the terminal
    assert "the app runs again" in err
    assert os.path.exists(tmp_path / "lifespan.log")


def test_execlib_start_runs_the_app_detached_without_serving_its_folder(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    started = subprocess.run(
        execlib_cmd("start", "--app", "main:app", "--port", "0", "--no-config"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:  # stopped whatever the assertions find: a detached server outlives the test otherwise
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("Serving app main:app at http://127.0.0.1:")
        url = started.stdout.split(" at ")[1].split()[0]
        pid = httpx.get(url + "pid", timeout=30).json()["pid"]
        # no ROOT was given: the folder (the app's source) is not served in front of the app
        assert httpx.get(url + "main.py", timeout=30).json() == {"detail": "Not Found"}
    finally:
        stopped = subprocess.run(execlib_cmd("stop"), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not alive(pid), 10, message="the worker to exit")


def test_execlib_start_in_proxy_mode_serves_no_folder_either(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not for the browser")
    started = subprocess.run(
        execlib_cmd("start", "--proxy", "http://127.0.0.1:9", "--proxy-timeout", "0", "--port", "0", "--no-config"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:  # stopped whatever the assertions find: a detached server outlives the test otherwise
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("Serving http://127.0.0.1:9 at ")
        url = started.stdout.split(" at ")[1].split()[0]
        answer = httpx.get(url + "secret.txt", timeout=30)
        assert answer.status_code == 502 and "not for the browser" not in answer.text  # the (absent) backend's
    finally:
        subprocess.run(execlib_cmd("stop"), cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_a_root_holding_the_apps_source_is_warned_about(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    proc, url = start_cli("serve", ".", "--port", "0", "--no-config", "--app", "main:app", cwd=tmp_path)
    try:
        assert httpx.get(url + "main.py", timeout=30).status_code == 200  # asked for: ROOT is served first
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "holds the app's folder" in err and "its Python files are served as files" in err
