"""A real Sphinx project under ``execlib serve --build``, as a user runs it: one build per save, no overlap,
no loop with ``doctrees`` inside the watched sources, warnings in the terminal, a fresh project built.

The build is Sphinx itself, run by a small wrapper that logs each run's start and end (the build's
own log) and, while a ``hold`` file exists, waits before building (bounded), so the test can save a
source while a build runs. Four Sphinx builds in all.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import write
from .helpers import execlib_cmd, read_line, wait_until

WRAPPER = """
import pathlib, subprocess, sys, time
here = pathlib.Path(__file__).parent
log = here / "builds.log"
with log.open("a") as f:
    f.write("start\\n")
deadline = time.monotonic() + 20
while (here / "hold").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
code = subprocess.call([sys.executable, "-m", "sphinx", "build", "-b", "html", "-d", "docs/_build/doctrees",
                        "docs", "docs/_build/html"])
with log.open("a") as f:
    f.write("end\\n")
sys.exit(code)
"""

CONF = "project = 'T'\nextensions = []\nhtml_theme = 'basic'\n"
INDEX = "Title\n=====\n\n{text}\n\n.. nosuchdirective::\n"


def builds(tmp_path: Path) -> list[str]:
    log = tmp_path / "builds.log"
    return log.read_text().split() if log.exists() else []


def test_real_sphinx_one_build_per_save_no_overlap_no_loop_and_warnings_shown(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "conf.py", CONF)
    write(docs / "index.rst", INDEX.format(text="first"))
    write(tmp_path / "wrapper.py", WRAPPER)
    assert not (docs / "_build").exists()  # a project never built: --build-on-start creates the folder
    proc = subprocess.Popen(
        execlib_cmd(
            "serve",
            "docs/_build/html",
            "--watch",
            "docs",
            "--port",
            "0",
            "--build-on-start",
            "--build",
            f"'{sys.executable}' wrapper.py",
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err: list[str] = []

    def saw(pattern: str) -> list[str]:
        return [line for line in err if re.fullmatch(pattern, line)]

    def read_until(pattern: str, count: int = 1) -> None:
        while len(saw(pattern)) < count:
            try:
                err.append(read_line(proc, 30, "stderr").rstrip("\n"))
            except AssertionError:
                raise AssertionError("\n".join(err)) from None
            assert err[-1] or proc.poll() is None, "\n".join(err)

    try:
        assert read_line(proc, 60).startswith("Serving docs/_build/html at http://127.0.0.1:")
        assert builds(tmp_path) == ["start", "end"]
        read_until(r"execlib: build ok with 1 warning in \d+\.\d\d s -> no page open")
        assert saw(r"execlib: created docs/_build/html: the build writes the site there")
        # Sphinx's output streams in, indented, the warning among it
        assert saw(r'  \| .*index\.rst:\d+: (ERROR|WARNING): Unknown directive type.*"nosuchdirective".*')

        # A save while a build runs: exactly one more build, after it.
        (tmp_path / "hold").write_text("")
        write(docs / "index.rst", INDEX.format(text="second"))
        wait_until(lambda: builds(tmp_path) == ["start", "end", "start"], 30, message="the held build")
        write(docs / "index.rst", INDEX.format(text="third"))  # saved during that build
        read_until(r"execlib: changed: docs/index\.rst -> building after the current build")
        (tmp_path / "hold").unlink()
        # (the held build read "third" already, once let go: the one after finds nothing to redo)
        read_until(r"execlib: build ok( with \d+ warnings?)? in .*", 3)
        assert "third" in (docs / "_build" / "html" / "index.html").read_text()

        # A sentinel save: its build is the next one, so nothing the builds wrote (doctrees inside the
        # watched docs/) started a build in between.
        write(docs / "other.rst", "Other\n=====\n\nsentinel\n")
        read_until(r"execlib: build ok( with \d+ warnings?)? in .*", 4)
        assert builds(tmp_path) == ["start", "end"] * 4  # in order: never two at once
        assert len(saw(r"execlib: changed: .* -> building.*")) == 3
        assert not saw(r"execlib: changed: .*_build.*")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
