"""``execlib sphinx`` and ``execlib mkdocs`` end to end: a project made by the real tool, the real command,
a page in Chromium, a saved source, and the page showing it: one build and one page load per save."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import write
from ..helpers import execlib_cmd, read_line


def start(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        execlib_cmd(*args, "--port", "0"), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = read_line(proc, 60)
    match = re.search(r" at (http://\S+)", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}: {proc.communicate()[1]}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return err


def edit_and_see(page, path: Path, text: str, token: str) -> None:
    write(path, text)
    page.wait_for_function("t => document.body && document.body.textContent.includes(t)", arg=token, timeout=30_000)


@pytest.mark.parametrize("tool", ["sphinx", "mkdocs"])
def test_preset_end_to_end_in_chromium(tool: str, tmp_path: Path, context) -> None:
    project = tmp_path / "project"
    if tool == "sphinx":
        subprocess.run(
            [sys.executable, "-m", "sphinx.cmd.quickstart", "-q", "-p", "Demo", "-a", "Me", "--no-sep", str(project)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        source, page_path = project / "index.rst", "index.html"

        def text(token: str) -> str:
            return f"Demo\n====\n\nSaved {token} here.\n"
    else:
        subprocess.run([sys.executable, "-m", "mkdocs", "new", str(project)], check=True, capture_output=True)
        source, page_path = project / "docs" / "index.md", ""

        def text(token: str) -> str:
            return f"# Demo\n\nSaved {token} here.\n"

    proc, url = start([tool], project)  # no more arguments: the layout the tool made is found
    try:
        page = context.new_page()
        loads: list[str] = []
        page.on("load", lambda: loads.append(page.url))
        page.goto(url + page_path)
        page.wait_for_function(
            "() => window.__execlibLiveReload && window.__execlibLiveReload.state.ws"
            " && window.__execlibLiveReload.state.ws.readyState === 1"
        )
        edit_and_see(page, source, text("first-save"), "first-save")
        edit_and_see(page, source, text("second-save"), "second-save")
        page.wait_for_load_state("load")
    finally:
        err = stop(proc)
    lines = err.splitlines()
    assert lines[0].startswith(f"execlib: {tool}: execlib serve "), err  # the effective command, once
    assert sum(1 for line in lines if line.startswith(f"execlib: {tool}: execlib serve ")) == 1
    build_lines = [line for line in lines if re.match(r"execlib: build ok( with \d+ warnings?)? in ", line)]
    assert len(build_lines) == 3, err  # the start-up build, then one per save
    assert len(loads) == 3, loads  # the first load, then one reload per save
    assert len([line for line in lines if re.match(r"execlib: changed: .* -> building", line)]) == 2, err
