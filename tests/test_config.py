"""ServerConfig and its sources: flags > $EXECLIB_* > a config file > defaults, `execlib config`,
and one-line errors (exit 2) for bad configuration."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from execlib import serve, serve_background
from execlib.config import ServerConfig, load_config
from execlib.errors import ConfigError
from execlib.server import Server

from .helpers import execlib_cmd, read_line, start_cli
from .lifecycle_support import Lab, lab_fixture


def run_config(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    return subprocess.run(
        execlib_cmd("config", *args), cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=30
    )


def effective(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    result = run_config(cwd, "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    options: dict[str, dict[str, object]] = json.loads(result.stdout)["options"]
    return options


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("site", "a", "b", "c"):
        (tmp_path / name).mkdir()
    return tmp_path


def write_pyproject(project: Path, body: str) -> None:
    (project / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.execlib]\n{body}\n")


# option -> (file line, env, flag args, expected value from each of file / env / flag, the default)
MATRIX = {
    "port": ("port = 9001", {"EXECLIB_PORT": "9002"}, ["--port", "9003"], (9001, 9002, 9003), 8000),
    "host": ('host = "127.0.0.2"', {"EXECLIB_HOST": "127.0.0.3"}, ["--host", "127.0.0.4"],
             ("127.0.0.2", "127.0.0.3", "127.0.0.4"), "127.0.0.1"),
    "livereload": ("livereload = false", {"EXECLIB_NO_LIVERELOAD": "0"}, ["--no-livereload"],
                   (False, True, False), True),
    "ignore": ('ignore = ["*.f"]', {"EXECLIB_IGNORE": "*.e1,*.e2"}, ["--ignore", "*.x"],
               (["*.f"], ["*.e1", "*.e2"], ["*.x"]), []),
    "watch": ('watch = ["a"]', {"EXECLIB_WATCH": "{p}/b"}, ["--watch", "{p}/c"], (["{p}/a"], ["{p}/b"], ["{p}/c"]), []),
    "mounts": ('mounts = { "/m" = "a" }', {"EXECLIB_MOUNTS": "/m={p}/b,/n={p}/a"}, ["--mount", "/m/={p}/c"],
               ([["/m", "{p}/a"]], [["/m", "{p}/b"], ["/n", "{p}/a"]], [["/m", "{p}/c"]]), []),
    "headers": ('headers = ["X-F: 1"]', {"EXECLIB_HEADERS": "X-E: 1, 2,X-E2: 3"}, ["--header", "X-G: 1"],
                (["X-F: 1"], ["X-E: 1, 2", "X-E2: 3"], ["X-G: 1"]), []),
    "cors": ("cors = true", {"EXECLIB_CORS": "0"}, ["--cors"], (True, False, True), False),
    "proxy": ('proxy = "http://127.0.0.1:3001"', {"EXECLIB_PROXY": "localhost:3002"}, ["--proxy", "http://[::1]:3003/"],
              ("http://127.0.0.1:3001", "http://localhost:3002", "http://[::1]:3003"), None),
    "proxy_host_header": ('proxy-host-header = "rewrite"', {"EXECLIB_PROXY_HOST_HEADER": "preserve"},
                          ["--proxy-host-header", "rewrite"], ("rewrite", "preserve", "rewrite"), "preserve"),
    "proxy_timeout": ("proxy_timeout = 1.5", {"EXECLIB_PROXY_TIMEOUT": "2.5"}, ["--proxy-timeout", "0"],
                      (1.5, 2.5, 0.0), 5.0),
}  # fmt: skip


def _fill(value: object, project: Path) -> object:
    if isinstance(value, str):
        return value.replace("{p}", str(project))
    if isinstance(value, list):
        return [_fill(item, project) for item in value]
    return value


@pytest.mark.parametrize("option", sorted(MATRIX))
@pytest.mark.parametrize(
    ("file", "env", "flag", "winner"),
    [
        (False, False, False, "default"),
        (True, False, False, "file"),
        (True, True, False, "env"),
        (False, True, False, "env"),
        (True, False, True, "flag"),
        (False, True, True, "flag"),
        (True, True, True, "flag"),
    ],
)
def test_precedence(project: Path, option: str, file: bool, env: bool, flag: bool, winner: str) -> None:
    line, env_vars, flag_args, values, default = MATRIX[option]
    if file:
        write_pyproject(project, line)
    got = effective(
        project,
        *[str(_fill(word, project)) for word in (flag_args if flag else [])],
        env={k: str(_fill(v, project)) for k, v in env_vars.items()} if env else None,
    )[option]
    expected = default if winner == "default" else values[("file", "env", "flag").index(winner)]
    assert got["value"] == _fill(expected, project)
    assert str(got["source"]).split()[0] == winner


def test_paths_in_a_file_are_relative_to_its_folder(project: Path) -> None:
    write_pyproject(project, 'root = "site"\nwatch = ["a", "b"]')
    (project / "deep" / "er").mkdir(parents=True)
    options = effective(project / "deep" / "er")  # found upward, paths still from the file's folder
    assert options["root"]["value"] == str(project / "site")
    assert options["watch"]["value"] == [str(project / "a"), str(project / "b")]
    assert options["root"]["source"] == f"file {project / 'pyproject.toml'} [tool.execlib]"


def test_execlib_toml_config_option_and_no_config(project: Path) -> None:
    (project / "execlib.toml").write_text("port = 9100\n")
    assert effective(project)["port"] == {"value": 9100, "source": "file execlib.toml"}
    other = project / "site" / "other.toml"
    other.write_text("port = 9200\nroot = '.'\n")
    options = effective(project, "--config", str(other))
    assert options["port"]["value"] == 9200
    assert options["root"]["value"] == str(project / "site")
    assert effective(project, "--no-config")["port"] == {"value": 8000, "source": "default"}


def test_config_text_output(project: Path) -> None:
    write_pyproject(project, "port = 9001")
    result = run_config(project, "--host", "127.0.0.5", env={"EXECLIB_POLL": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {project / 'pyproject.toml'}"
    assert any(line.split() == ["port", "=", "9001", "(file", "pyproject.toml", "[tool.execlib])"] for line in lines)
    assert any(line.split() == ["host", "=", '"127.0.0.5"', "(flag", "--host)"] for line in lines)
    assert any(line.split() == ["poll", "=", "true", "(env", "EXECLIB_POLL)"] for line in lines)
    assert any(line.split() == ["delay", "=", "0", "(default)"] for line in lines)


BAD = [
    ("prot = 8001", {}, "unknown key 'prot' in pyproject.toml [tool.execlib]; did you mean 'port'?"),
    ('port = "x"', {}, "pyproject.toml [tool.execlib]: port = 'x' must be an int from 0 to 65535"),
    ("port = 70000", {}, "pyproject.toml [tool.execlib]: port = 70000 is out of range"),
    ("delay = -1", {}, "pyproject.toml [tool.execlib]: delay = -1 must be a number of milliseconds"),
    ("livereload = 'no'", {}, "pyproject.toml [tool.execlib]: livereload = 'no' must be True or False"),
    ('watch = ["nowhere"]', {}, "pyproject.toml [tool.execlib]: watch = '"),
    ("port = ", {}, "pyproject.toml is not valid TOML"),
    ("", {"EXECLIB_PORT": "eighty"}, "EXECLIB_PORT='eighty' must be an int from 0 to 65535"),
    ("", {"EXECLIB_NO_LIVERELOAD": "maybe"}, "EXECLIB_NO_LIVERELOAD='maybe' must be 1 or 0"),
    ("", {"EXECLIB_DELAY": "soon"}, "EXECLIB_DELAY='soon' must be a number of milliseconds"),
    ('log_format = "xml"', {}, "pyproject.toml [tool.execlib]: log_format = 'xml' must be 'text' or 'json'"),
    ("", {"EXECLIB_QUIET": "loud"}, "EXECLIB_QUIET='loud' must be 1 or 0"),
    ("", {"EXECLIB_WATCH": "a,nowhere"}, "EXECLIB_WATCH='a,nowhere': 'nowhere' does not exist"),
    ('mounts = ["/m=a", "/m=b"]', {}, "pyproject.toml [tool.execlib]: mounts = '/m="),
    ("", {"EXECLIB_MOUNTS": "/livereload=a"}, "EXECLIB_MOUNTS='/livereload=a': '/livereload=a' takes /livereload"),
    ('headers = ["X-A"]', {}, "pyproject.toml [tool.execlib]: headers = 'X-A' must be a header as 'Name: value'"),
    ("", {"EXECLIB_HEADERS": "X-A: 1,X-B: \x01"}, "EXECLIB_HEADERS='X-A: 1,X-B: \\x01': 'X-B: \\x01' has a value"),
    ("cors = 1", {}, "pyproject.toml [tool.execlib]: cors = 1 must be True or False"),
]


@pytest.mark.parametrize(("line", "env", "message"), BAD)
@pytest.mark.parametrize("command", ["config", "serve"])
def test_bad_configuration_is_one_line_and_exit_2(
    project: Path, line: str, env: dict[str, str], message: str, command: str
) -> None:
    if line:
        write_pyproject(project, line)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    result = subprocess.run(
        execlib_cmd(command), cwd=project, env={**clean, **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stdout == ""  # nothing started, nothing half-configured
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"execlib: error: {message}"), result.stderr


def test_the_command_lines_own_options_come_from_the_same_sources(project: Path) -> None:
    write_pyproject(project, 'log_format = "json"\nopen = false\nquiet = true')
    options = effective(project, "-v", env={"EXECLIB_QUIET": "0"})
    assert options["log_format"] == {"value": "json", "source": "file pyproject.toml [tool.execlib]"}
    assert options["quiet"] == {"value": False, "source": "env EXECLIB_QUIET"}
    assert options["verbose"] == {"value": True, "source": "flag --verbose"}
    assert options["open"]["value"] is False


@pytest.mark.timeout(60)
def test_serve_logs_in_the_format_a_file_asks_for(project: Path) -> None:
    (project / "execlib.toml").write_text('root = "site"\nport = 0\nlog_format = "json"\n')
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    proc, url = start_cli("serve", cwd=project, env=clean)
    try:
        httpx.get(url + "missing.html", timeout=10)
        record = json.loads(read_line(proc))  # the access log line, as JSON
        assert record["path"] == "/missing.html" and record["status"] == 404
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_a_bad_value_anywhere_starts_nothing(project: Path) -> None:
    (project / "execlib.toml").write_text('root = "site"\nport = 0\nlog_format = "json"\nwatch = ["nowhere"]\n')
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    result = subprocess.run(execlib_cmd("serve"), cwd=project, env=clean, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("execlib: error: execlib.toml: watch = "), result.stderr


def test_unreadable_config_file(project: Path) -> None:
    result = run_config(project, "--config", str(project / "missing.toml"))
    assert result.returncode == 2
    assert result.stderr.startswith("execlib: error: cannot read the config file missing.toml:"), result.stderr
    assert result.stderr.count("\n") == 1


def test_api_errors_name_the_parameter(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"^port='x' must be an int"):
        Server(project, port="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^port=70000 is out of range"):
        ServerConfig(project, port=70000)


def test_server_takes_a_config(project: Path) -> None:
    config = ServerConfig(project / "site", port=0, livereload=False, ignore="*.tmp")
    assert config.ignore == ("*.tmp",)
    server = Server(config=config)
    assert server.config is config and server.port == 0 and not server.livereload
    with pytest.raises(TypeError, match="port"):
        Server(config=config, port=1234)


def test_load_config_for_the_api_ignores_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pyproject(project, "port = 9001")
    monkeypatch.chdir(project)
    monkeypatch.setenv("EXECLIB_PORT", "9002")
    assert load_config({"host": None, "port": None}, use_files=False).config.port == 9002
    assert load_config({"host": None, "port": 9003}, use_files=False).config.port == 9003
    assert load_config({}).config.port == 9002  # the environment is over the file
    monkeypatch.delenv("EXECLIB_PORT")
    assert load_config({}).config.port == 9001


def test_a_plain_file_as_root_is_not_a_folder(project: Path) -> None:
    (project / "f.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        load_config({"root": str(project / "f.txt")}, use_files=False)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.timeout(60)
def test_start_takes_its_options_from_the_config_file(lab: Lab) -> None:
    port = free_port()
    (lab.dir / "execlib.toml").write_text(f'root = "site"\nport = {port}\nlivereload = false\n')
    result = lab.run("start")
    assert result.returncode == 0, result.stderr
    assert f"Serving {lab.site} at http://127.0.0.1:{port}/" in result.stdout
    try:
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
        assert "livereload" not in page  # the file's livereload = false reached the detached server
    finally:
        assert lab.run("stop").returncode == 0


@pytest.mark.timeout(60)
def test_start_reports_bad_configuration_before_spawning(lab: Lab) -> None:
    (lab.dir / "execlib.toml").write_text("port = 8000\nhots = 'x'\n")
    result = lab.run("start", "site")
    assert result.returncode == 2
    assert result.stderr == "execlib: error: unknown key 'hots' in execlib.toml; did you mean 'host'?\n"
    assert not (lab.dir / ".execlib.pid").exists()


def test_serve_background_checks_through_the_config(lab: Lab) -> None:
    with pytest.raises(ConfigError, match=r"^not a folder: .*index\.html$"):
        serve_background(lab.site / "index.html")
    with pytest.raises(ConfigError, match=r"^port=-1 is out of range"):
        serve_background(lab.site, port=-1)


def test_serve_reads_the_environment_under_its_arguments(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECLIB_NO_LIVERELOAD", "1")
    monkeypatch.setenv("EXECLIB_PORT", "0")
    servers: list[Server] = []
    serve(lab.site, foreground=False, pre_serve=servers.append)
    try:
        assert not servers[0].livereload and servers[0].config.port == 0
    finally:
        servers[0].shutdown()
        servers[0].wait()
    monkeypatch.setenv("EXECLIB_PORT", "nope")
    with pytest.raises(ConfigError, match=r"^EXECLIB_PORT='nope' must be an int"):
        serve(lab.site, foreground=False)
