"""``execlib serve``'s start: the start line (text and JSON), LAN URLs, the event loop, the default
port falling back, a port held by a server of the same folder, and ``--open [PATH]`` / ``--browser``.

Real processes on real sockets; a browser is a small script named by ``$BROWSER`` that writes the
URL it was given to a file, which is what Python's ``webbrowser`` runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from execlib import Server
from execlib.cli.banner import start_line
from execlib.config import CommandOptions, ConfigError, ServerConfig
from execlib.netaddrs import interface_addresses, reachable_urls

from .conftest import write
from .helpers import execlib_cmd, read_line, start_cli, wait_until

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.fixture
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    write(site / "index.html", "<html><body>home</body></html>")
    write(site / "docs" / "index.html", "<html><body>docs</body></html>")
    return site


@contextlib.contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, url = start_cli("serve", *args, env=env)
    try:
        yield proc, url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        execlib_cmd(*args), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def recording_browser(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """``$BROWSER`` naming a script that writes the URL it is given to a file (what webbrowser runs)."""
    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {opened}\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"BROWSER": str(script), "DISPLAY": ""}, opened


# -- the event loop --------------------------------------------------------------------------


def test_auto_runs_uvloop_when_installed(root: Path) -> None:
    assert HAS_UVLOOP, "the test extra installs uvloop (execlib[fast] for users)"
    with Server(root, port=0) as server:
        assert server.loop_name == "uvloop"
    line = run_first_line(str(root), "--port", "0", "-q")
    assert line.endswith("(uvloop)\n")


def test_asyncio_when_asked(root: Path) -> None:
    with Server(root, port=0, event_loop="asyncio") as server:
        assert server.loop_name == "asyncio"
    assert run_first_line(str(root), "--port", "0", "--loop", "asyncio").endswith("(asyncio)\n")


def test_a_bad_loop_is_one_line(root: Path) -> None:
    result = run("serve", str(root), "--loop", "tokio")
    assert result.returncode == 2
    assert result.stderr == "execlib: error: --loop tokio must be 'auto', 'asyncio' or 'uvloop'\n"
    with pytest.raises(ConfigError, match="event_loop='tokio'"):
        ServerConfig(root, event_loop="tokio")


def test_uvloop_asked_for_but_missing_is_one_line(root: Path) -> None:
    hide_uvloop = "import sys; sys.modules['uvloop'] = None; from execlib.cli import main; raise SystemExit(main())"
    result = subprocess.run(
        [sys.executable, "-c", hide_uvloop, "serve", str(root), "--loop", "uvloop"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "execlib: error: --loop uvloop cannot be used: uvloop is not installed (pip install 'execlib[fast]')\n"
    )


def run_first_line(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.Popen(
        execlib_cmd("serve", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        return read_line(proc)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)


# -- the JSON start line ---------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--banner", "json"], ["--log-format", "json"]])
def test_json_start_line(root: Path, flags: list[str]) -> None:
    line = run_first_line(str(root), "--port", "0", *flags, env={"EXECLIB_GITIGNORE": "1"})
    data = json.loads(line)
    assert set(data) == {
        "url",
        "urls",
        "root",
        "mounts",
        "pid",
        "version",
        "loop",
        "backend",
        "config_sources",
        "port_fallback_from",
    }
    assert data["url"].startswith("http://127.0.0.1:") and data["urls"] == [data["url"]]
    assert data["root"] == str(root) and data["mounts"] == [] and data["port_fallback_from"] is None
    assert isinstance(data["pid"], int) and data["loop"] in ("uvloop", "asyncio")
    assert data["backend"] == "uvicorn"
    assert data["config_sources"]["port"] == "flag --port"
    assert data["config_sources"]["gitignore"] == "env EXECLIB_GITIGNORE"
    assert "livereload" not in data["config_sources"]  # left at its default


def test_json_start_line_lists_mounts(root: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    data = json.loads(run_first_line(str(root), "--port", "0", "--banner", "json", "--mount", f"/assets={shared}"))
    assert data["mounts"] == [{"prefix": "/assets", "path": str(shared)}]


# -- LAN URLs --------------------------------------------------------------------------------


def test_wildcard_hosts_list_every_usable_address() -> None:
    addresses = [
        "127.0.0.1",
        "192.168.1.20",
        "10.0.0.5",
        "169.254.3.4",
        "192.168.1.20",
        "::1",
        "fe80::1",
        "2001:db8::7",
    ]
    assert reachable_urls("0.0.0.0", 8000, lambda: addresses) == [
        "http://127.0.0.1:8000/",
        "http://192.168.1.20:8000/",
        "http://10.0.0.5:8000/",
    ]
    assert reachable_urls("::", 8000, lambda: addresses) == ["http://[::1]:8000/", "http://[2001:db8::7]:8000/"]
    assert reachable_urls("127.0.0.1", 8000, lambda: addresses) == ["http://127.0.0.1:8000/"]
    assert reachable_urls("localhost", 8000, lambda: addresses) == ["http://localhost:8000/"]


def test_start_line_shows_network_urls(root: Path) -> None:
    with Server(root, host="0.0.0.0", port=0) as server:
        port = server.bound_addr[1]  # type: ignore[index]
        line = start_line(server, str(root), CommandOptions(), addresses=lambda: ["127.0.0.1", "192.168.7.9"])
    assert line.splitlines() == [
        f"Serving {root} at http://127.0.0.1:{port}/ ({server.loop_name})",
        f"  on the network: http://192.168.7.9:{port}/",
    ]


def test_text_start_line_lists_mounts_after_the_urls(root: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    with Server(root, host="0.0.0.0", port=0, mounts={"/assets": shared}) as server:
        port = server.bound_addr[1]  # type: ignore[index]
        line = start_line(server, str(root), CommandOptions(), addresses=lambda: ["127.0.0.1", "192.168.7.9"])
    assert line.splitlines() == [
        f"Serving {root} at http://127.0.0.1:{port}/ ({server.loop_name})",
        f"  on the network: http://192.168.7.9:{port}/",
        f"  /assets/ serves {shared}",
    ]


def test_serving_on_every_address_prints_this_machines_urls(root: Path) -> None:
    # the real interface list: what the banner shows must be what this machine has
    network = [a for a in interface_addresses() if ":" not in a and not a.startswith(("127.", "169.254."))]
    proc = subprocess.Popen(
        execlib_cmd("serve", str(root), "--host", "0.0.0.0", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = read_line(proc)
        assert first.startswith(f"Serving {root} at http://127.0.0.1:")
        port = first.split(":")[2].split("/")[0]
        shown = [read_line(proc).strip() for _ in dict.fromkeys(network)]
        assert shown == [f"on the network: http://{a}:{port}/" for a in dict.fromkeys(network)]
        assert "now visible to other machines" in read_line(proc, stream="stderr")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)


# -- the port --------------------------------------------------------------------------------


@contextlib.contextmanager
def port_taken(port: int) -> Iterator[None]:
    """Hold ``port`` on 127.0.0.1 with a plain socket (already held by someone else is as good)."""
    with socket.socket() as holder:
        with contextlib.suppress(OSError):
            holder.bind(("127.0.0.1", port))
            holder.listen()
        yield


def test_a_taken_default_port_falls_back_to_the_next(root: Path) -> None:
    with port_taken(8000):
        line = run_first_line(str(root))
    assert "(port 8000 was in use)" in line or "; port 8000 was in use)" in line
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    assert port != 8000


def test_a_taken_default_port_falls_back_in_json_too(root: Path) -> None:
    with port_taken(8000):
        data = json.loads(run_first_line(str(root), "--banner", "json"))
    assert data["port_fallback_from"] == 8000 and not data["url"].endswith(":8000/")


@pytest.mark.parametrize("given", ["flag", "env"])
def test_a_taken_port_that_was_asked_for_is_an_error(root: Path, given: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        args, env = (["--port", port], None) if given == "flag" else ([], {"EXECLIB_PORT": port})
        result = run("serve", str(root), *args, env=env)
    assert result.returncode != 0
    assert result.stderr.startswith(f"execlib: error: cannot listen on 127.0.0.1:{port}: the port is already in use")
    assert len(result.stderr.splitlines()) == 1


def test_a_port_held_by_a_server_of_the_same_folder_names_its_url(root: Path) -> None:
    with running(str(root), "--port", "0") as (_, url):
        port = url.rsplit(":", 1)[1].strip("/")
        result = run("serve", str(root), "--port", port)
        assert result.returncode != 0
        assert result.stderr.splitlines() == [
            f"execlib: error: cannot listen on 127.0.0.1:{port}: the same folder is already served there by "
            f"execlib (pid {result.stderr.split('(pid ')[1].split(')')[0]}): open {url}, stop it, take its place "
            "with --replace, or pick another port with --port"
        ]


def test_open_with_the_same_folder_already_served_opens_that_server(root: Path, tmp_path: Path) -> None:
    env, opened = recording_browser(tmp_path)
    with running(str(root), "--port", "0") as (_, url):
        port = url.rsplit(":", 1)[1].strip("/")
        result = run("serve", str(root), "--port", port, "--open", "/docs/", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{root} is already served at {url}; opening it\n"
    assert opened.read_text(encoding="utf-8").splitlines() == [url + "docs/"]


# -- --open [PATH] and --browser -------------------------------------------------------------


def test_open_path_opens_that_page(root: Path, tmp_path: Path) -> None:
    env, opened = recording_browser(tmp_path)
    with running(str(root), "--port", "0", "--open", "/docs/", env=env) as (_, url):
        wait_until(lambda: opened.exists() and opened.read_text(encoding="utf-8"), message="the browser was never run")
    assert opened.read_text(encoding="utf-8").splitlines() == [url + "docs/"]


def test_open_before_the_folder_still_takes_the_folder(root: Path, tmp_path: Path) -> None:
    env, opened = recording_browser(tmp_path)
    with running("--open", str(root), "--port", "0", env=env) as (_, url):
        wait_until(lambda: opened.exists() and opened.read_text(encoding="utf-8"), message="the browser was never run")
    assert opened.read_text(encoding="utf-8").splitlines() == [url]


def test_open_path_must_be_a_url_path(root: Path) -> None:
    result = run("serve", "--open", "docs/", str(root))
    assert result.returncode == 2
    assert result.stderr == (
        "execlib: error: --open docs/: the page to open must be a URL path starting with / (--open /docs/)\n"
    )


def test_an_unknown_browser_is_a_warning_with_the_url(root: Path) -> None:
    with running(str(root), "--port", "0", "--open", "--browser", "no-such-browser") as (proc, url):
        warning = read_line(proc, stream="stderr")
    assert warning == f"execlib: warning: could not open a browser; open {url} yourself\n"


def test_open_and_browser_from_env_and_file(tmp_path: Path, root: Path) -> None:
    from execlib.config import load_config

    def command(env: dict[str, str], cwd: Path = tmp_path) -> CommandOptions:
        return load_config({"root": str(root)}, env=env, cwd=str(cwd), command=True).command

    assert command({"EXECLIB_OPEN": "/docs/"}).open_path == "/docs/"
    assert command({"EXECLIB_OPEN": "1"}).open_path == "/"
    assert command({}).open_path is None
    assert command({"EXECLIB_BROWSER": "firefox"}).browser == "firefox"
    write(tmp_path / "proj" / "execlib.toml", 'open = "/docs/"\nbrowser = "chromium"\nbanner = "json"\n')
    from_file = command({}, tmp_path / "proj")
    assert (from_file.open_path, from_file.browser, from_file.json_banner) == ("/docs/", "chromium", True)
    write(tmp_path / "bad" / "execlib.toml", 'open = "docs"\n')
    with pytest.raises(ConfigError, match="must be true, false or a page's URL path"):
        command({}, tmp_path / "bad")


def test_start_and_serve_background_pass_the_new_options_on() -> None:
    from execlib.api import _serve_args
    from execlib.cli import build_parser
    from execlib.cli.lifecycle import forwarded_serve_args

    start = build_parser()._subparsers._group_actions[0].choices["start"]  # type: ignore[union-attr]
    args = start.parse_args(["--open", "--loop", "asyncio", "--banner", "json", "--browser", "firefox"])
    assert forwarded_serve_args(start, args) == [
        "--open",
        "--browser",
        "firefox",
        "--banner",
        "json",
        "--loop",
        "asyncio",
    ]
    args = start.parse_args(["--open", "/docs/"])
    assert forwarded_serve_args(start, args) == ["--open=/docs/"]
    assert _serve_args({"open": "/docs/", "event_loop": "asyncio"}) == ["--open=/docs/", "--loop", "asyncio"]
    assert _serve_args({"open": True, "browser": "firefox"}) == ["--open", "--browser", "firefox"]


def test_access_lines_before_the_start_line_wait_for_it(capsys: pytest.CaptureFixture[str]) -> None:
    # execlib serve answers while it sets up watching and prints the start line after: a request in
    # between must not put its access line first on stdout, where tools read the start line
    import logging

    from execlib.log import configure_logging, hold_access_log

    names = ("execlib", "execlib.access", "uvicorn", "uvicorn.error")
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate) for name in names}
    levels = {name: logging.getLogger(name).level for name in names}
    configure_logging(0, "text")
    try:
        release = hold_access_log()
        logging.getLogger("execlib.access").info("GET /__execlib__/health 200")
        assert capsys.readouterr().out == ""
        print("Serving site at http://127.0.0.1:8000/ (uvloop)")
        release()
        logging.getLogger("execlib.access").info("GET / 200")
        assert capsys.readouterr().out.splitlines() == [
            "Serving site at http://127.0.0.1:8000/ (uvloop)",
            "GET /__execlib__/health 200",
            "GET / 200",
        ]
    finally:  # as it was: later tests read execlib's records through the root logger
        for name in names:
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = saved[name]
            logger.setLevel(levels[name])
