"""Rebuild on change: coalescing, no rebuild loop, failures, timeouts, hooks (real inotify, real builds)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

import execlib
from execlib import Server
from execlib.errors import ConfigError

from .conftest import write
from .helpers import run_async, wait_until
from .test_livereload_protocol import PROTOCOL, ws_url

# A build that copies src/*.md into site/*.html and logs each run; with a gate file it waits
# (bounded) until the test opens the gate, so the test can change sources mid-build.
BUILD_SCRIPT = r"""
import pathlib, sys, time
src, site, log = map(pathlib.Path, sys.argv[1:4])
gate = pathlib.Path(sys.argv[4]) if len(sys.argv) > 4 else None
with log.open("a") as f:
    f.write("start\n")
if gate is not None:
    deadline = time.monotonic() + 20
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
site.mkdir(parents=True, exist_ok=True)
for md in sorted(src.glob("*.md")):
    (site / (md.stem + ".html")).write_text("<html><body>" + md.read_text() + "</body></html>")
with log.open("a") as f:
    f.write("done\n")
"""


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    src, site = tmp_path / "src", tmp_path / "site"
    write(src / "index.md", "first")
    write(site / "index.html", "<html><body>old</body></html>")
    script = write(tmp_path / "build.py", BUILD_SCRIPT)
    return {"src": src, "site": site, "script": script, "log": tmp_path / "build.log", "gate": tmp_path / "gate"}


def command(p: dict[str, Path], gate: bool = False, site: Path | None = None) -> str:
    args = [sys.executable, p["script"], p["src"], site or p["site"], p["log"]] + ([p["gate"]] if gate else [])
    return " ".join(f"'{a}'" for a in args)


def runs(p: dict[str, Path]) -> list[str]:
    return p["log"].read_text().split() if p["log"].exists() else []


def test_rebuild_on_change_then_reload(project: dict[str, Path], serve) -> None:
    server = serve(project["site"], watch=[project["src"]], build=command(project))

    async def run() -> None:
        ws = await connect(ws_url(server))
        await ws.send(json.dumps({"command": "hello", "protocols": [PROTOCOL]}))
        await ws.recv()
        await ws.send(json.dumps({"command": "info", "url": server.url, "resources": []}))
        wait_until(lambda: any(p.url for p in server.hub.pages), 10)
        write(project["src"] / "index.md", "second")
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["command"] == "reload":
                break
        assert "second" in (project["site"] / "index.html").read_text()
        await ws.close()

    run_async(run())
    assert runs(project) == ["start", "done"]


def test_changes_during_a_build_cause_exactly_one_more(project: dict[str, Path], serve) -> None:
    server = serve(project["site"], watch=[project["src"]], build=command(project, gate=True))
    write(project["src"] / "index.md", "v1")
    wait_until(lambda: runs(project) == ["start"], 10, message="the first build to start")
    builder = server.controller.builder
    for i in range(5):
        write(project["src"] / f"page{i}.md", f"page {i}")
    wait_until(lambda: builder.dirty, 10, message="the changes to be seen during the build")
    project["gate"].write_text("open")
    wait_until(lambda: runs(project) == ["start", "done", "start", "done"] and not builder.running, 20)
    assert builder.builds == 2 and not builder.dirty
    assert (project["site"] / "page4.html").exists()


def test_no_rebuild_loop_when_sources_contain_the_site(tmp_path: Path, serve) -> None:
    src = tmp_path / "src"
    site = src / "site"
    p = {"src": src, "site": site, "script": write(tmp_path / "build.py", BUILD_SCRIPT), "log": tmp_path / "log"}
    write(src / "index.md", "one")
    site.mkdir()
    server = serve(site, watch=[src], build=command(p))
    batches: list[tuple[str, list[str]]] = []
    server.on_change(lambda events: batches.append((events[0].endpoint, [e.name for e in events])))
    write(src / "index.md", "two")
    wait_until(lambda: runs(p) == ["start", "done"], 10)
    write(src / "other.md", "sentinel")  # a later source change: its batch comes after the build's writes
    wait_until(lambda: any("other.md" in names for _, names in batches), 10)
    wait_until(lambda: runs(p) == ["start", "done"] * 2 and not server.controller.builder.running, 10)
    source_batches = [names for endpoint, names in batches if endpoint == str(src)]
    assert not any(name.startswith("site/") for names in source_batches for name in names), batches
    assert server.controller.builder.builds == 2


def test_failing_build_shows_error_and_recovery_clears_it(project: dict[str, Path], serve) -> None:
    marker = project["src"] / "fail"
    script = (
        "import sys, pathlib\n"
        f"if pathlib.Path({str(marker)!r}).exists():\n"
        "    print('<b>line one</b>')\n"
        "    print('boom: bad template', file=sys.stderr)\n"
        "    sys.exit(3)\n"
    )
    build_py = write(project["src"].parent / "maybe_fail.py", script)
    server = serve(project["site"], watch=[project["src"]], build=f"'{sys.executable}' '{build_py}'")
    marker.write_text("1")
    wait_until(lambda: server.hub.error is not None, 10, message="the overlay to be set")
    title, text = server.hub.error
    assert "exit status 3" in title and str(build_py) in title
    assert "<b>line one</b>" in text and "boom: bad template" in text
    marker.unlink()
    wait_until(lambda: server.hub.error is None, 10, message="the overlay to clear")


def test_build_that_cannot_start_is_a_failed_build(project: dict[str, Path], serve) -> None:
    server = serve(project["site"], watch=[project["src"]], build="no-such-command-xyz --flag")
    write(project["src"] / "index.md", "x")
    wait_until(lambda: server.hub.error is not None, 10)
    assert "not found" in server.hub.error[0] and "no-such-command-xyz" in server.hub.error[0]
    assert server.is_running


def test_build_timeout_kills_the_build_and_its_children(project: dict[str, Path], serve) -> None:
    pid_file = project["src"].parent / "child.pid"
    hang = f"sh -c 'sleep 300 & echo $! > {pid_file}; wait'"
    server = serve(project["site"], watch=[project["src"]], build=hang, build_timeout=0.5)
    write(project["src"] / "index.md", "x")
    wait_until(lambda: server.hub.error is not None, 15)
    assert "timed out after 0.5 s" in server.hub.error[0]
    child = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"

    wait_until(gone, 10, message="the build's child process to be killed")


def test_python_callable_builds_sync_and_async(project: dict[str, Path], serve) -> None:
    calls: list[str] = []
    fail = threading.Event()

    def build() -> None:
        calls.append("sync")
        if fail.is_set():
            raise ValueError("template error on line 3")

    server = serve(project["site"], watch=[project["src"]], build=build)
    write(project["src"] / "index.md", "x")
    wait_until(lambda: calls == ["sync"], 10)
    fail.set()
    write(project["src"] / "index.md", "y")
    wait_until(lambda: server.hub.error is not None, 10)
    assert "ValueError: template error on line 3" in server.hub.error[0]

    async def abuild() -> None:
        calls.append("async")
        assert asyncio.get_running_loop() is server2.loop  # async builds run on the server's loop

    server2 = serve(project["site"], watch=[project["src"]], build=abuild)
    write(project["src"] / "index.md", "z")
    wait_until(lambda: "async" in calls and server2.controller.builder.last is not None, 10)
    assert server2.controller.builder.last.ok


def test_build_on_start_and_on_change_batches(project: dict[str, Path], serve) -> None:
    seen: list[list[tuple[str, str]]] = []
    server = Server(project["site"], port=0, watch=[project["src"]], build=command(project), build_on_start=True)

    async def hook(events) -> None:
        seen.append([(e.name, e.action.name) for e in events])

    server.on_change(hook)
    server.start_in_thread()
    try:
        assert runs(project) == ["start", "done"]  # built before serving
        assert "first" in (project["site"] / "index.html").read_text()
        # Saves are told from the build's own writes by their timestamps, which the kernel takes
        # from a clock that ticks every few ms: a save in the build's last tick counts as the
        # build's (buildwrites.py). A user is never that fast; this test can be, so it waits for
        # the next tick, seen on a file outside the watched folders.
        finished = server.controller.builder.windows[-1][1]  # type: ignore[union-attr]
        probe = project["site"].parent / "tick-probe"
        wait_until(lambda: probe.write_text("x") is not None and probe.stat().st_ctime > finished, 5)
        write(project["src"] / "a.md", "a")
        write(project["src"] / "b.md", "b")
        # Both reach the hook as batches of events (one batch, or two when the machine pauses the test
        # between the writes for longer than the 8 ms debounce).
        wait_until(lambda: {"a.md", "b.md"} <= {n for batch in seen for n, _ in batch}, 10)
        assert all(batch for batch in seen)
    finally:
        server.shutdown()
        server.wait(10)


def test_build_configuration_errors(project: dict[str, Path]) -> None:
    # the Python API names its parameters (the command line shows its flags instead)
    with pytest.raises(ConfigError, match=r"^build='true' needs watch= paths"):
        Server(project["site"], build="true")
    with pytest.raises(ConfigError, match=r"^watch='.*nope' does not exist$"):
        Server(project["site"], watch=[project["src"] / "nope"], build="true")
    with pytest.raises(ConfigError, match=r"^watch='.*site' is the served folder itself"):
        Server(project["site"], watch=[project["src"], str(project["site"])], build="true")
    with pytest.raises(ConfigError, match=r"^build_timeout=0 must be a number of seconds more than 0$"):
        Server(project["site"], watch=[project["src"]], build="true", build_timeout=0)


@pytest.fixture
def build_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``execlib`` logger at INFO and up, whatever the process's logging set-up."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("execlib")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_successful_build_logs_one_info_line(project: dict[str, Path], serve, build_log) -> None:
    server = serve(project["site"], watch=[project["src"]], build=command(project))
    write(project["src"] / "index.md", "second")
    wait_until(lambda: server.controller.builder is not None and server.controller.builder.last is not None, 10)
    build_lines = [r for r in build_log if r.name == "execlib.build"]
    assert [r.levelno for r in build_lines] == [logging.INFO], [r.getMessage() for r in build_lines]
    assert re.fullmatch(r"build ok in \d+\.\d\d s -> no page open", build_lines[0].getMessage())


def _nested_template_error(name: str) -> None:
    raise KeyError(name)


def test_a_failing_callable_traceback_starts_at_the_users_frames(project: dict[str, Path], serve, build_log) -> None:
    def build() -> None:
        _nested_template_error("title")

    server = serve(project["site"], watch=[project["src"]], build=build)
    write(project["src"] / "index.md", "x")
    wait_until(lambda: server.hub.error is not None, 10, message="the overlay to be set")
    title, text = server.hub.error
    assert title == "Build failed: KeyError: 'title'"
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith(f'  File "{__file__}"') and lines[1].endswith("in build"), lines[1]
    assert "_nested_template_error" in text and lines[-1] == "KeyError: 'title'"
    frames = [line for line in lines if line.startswith("  File ")]
    assert len(frames) == 2 and not any(os.path.dirname(execlib.__file__) in f for f in frames), text
    assert "asyncio" not in text and "concurrent" not in text, text
    # the terminal shows the same trimmed traceback under the summary
    logged = next(r.getMessage() for r in build_log if r.levelno == logging.ERROR and r.name == "execlib.build")
    assert logged.splitlines()[0] == "Build failed: KeyError: 'title' -> no page open"
    assert logged.splitlines()[1].strip() == "Traceback (most recent call last):"
    assert "asyncio" not in logged


EMBEDDER = """
import sys, execlib

execlib.configure_logging()  # the one call an embedding tool makes to get the command line's output
server = execlib.Server(sys.argv[1], port=0, watch=[sys.argv[2]], build=lambda: None, build_on_start=True)
server.start_in_thread()
server.shutdown()
server.wait(10)
"""


def test_configure_logging_gives_an_embedder_the_build_line(project: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", EMBEDDER, str(project["site"]), str(project["src"])],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^execlib: build ok in \d+\.\d\d s -> no page open$", result.stderr, re.M), result.stderr


def test_start_in_thread_waits_for_a_slow_startup_build(project: dict[str, Path]) -> None:
    gate = project["gate"]
    server = Server(
        project["site"], port=0, watch=[project["src"]], build=command(project, gate=True), build_on_start=True
    )
    opener = threading.Thread(
        target=lambda: (wait_until(lambda: runs(project) == ["start"], 10), gate.write_text("open"))
    )
    opener.start()
    try:
        server.start_in_thread(timeout=0.5)  # the build itself is not counted against the timeout
        assert runs(project) == ["start", "done"]
    finally:
        opener.join(10)
        server.shutdown()
        server.wait(10)
