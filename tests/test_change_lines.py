"""One line per change at the default level: what changed and what the pages were told (real inotify, real server)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from execlib.log import CommandLineFormatter, configure_logging

from .conftest import write
from .helpers import run_async, wait_until
from .test_build import BUILD_SCRIPT, command
from .test_livereload_protocol import handshake, next_message, until_pages_known


@pytest.fixture
def lines() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``execlib`` logger (DEBUG and up), whatever the process's logging set-up."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("execlib")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def said(records: list[logging.LogRecord], pattern: str, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in list(records) if r.levelno == level and re.fullmatch(pattern, r.getMessage())]


def test_site_changes_say_what_each_page_was_told(tmp_path: Path, serve, lines) -> None:
    site = tmp_path / "site"
    write(site / "index.html", "<html><head><link rel=stylesheet href=style.css></head><body>home</body></html>")
    write(site / "about.html", "<html><head><link rel=stylesheet href=style.css></head><body>about</body></html>")
    write(site / "other.html", "<html><body>other</body></html>")
    write(site / "style.css", "body { color: red }")
    server = serve(site)

    async def run() -> None:
        home = await handshake(server, "/", ["/style.css"])
        about = await handshake(server, "/about.html", ["/style.css"])
        await until_pages_known(server, 2)
        write(site / "style.css", "body { color: blue }")
        assert (await next_message(home))["path"] == "/style.css"
        assert (await next_message(about))["path"] == "/style.css"
        wait_until(lambda: said(lines, r"changed: style\.css -> css swapped in 2 pages"), 10)
        write(site / "other.html", "<html><body>other, edited</body></html>")
        wait_until(lambda: said(lines, r"changed: other\.html -> no open page shows it"), 10)
        write(site / "index.html", "<html><head><link rel=stylesheet href=style.css></head><body>v2</body></html>")
        assert (await next_message(home))["path"] == "/index.html"
        wait_until(lambda: said(lines, r"changed: index\.html -> reloaded 1 page"), 10)
        await home.close()
        await about.close()

    run_async(run())
    # -v's raw events: what the listener reported, before any coalescing
    assert said(lines, r"events: .*style\.css (created|modified).*", logging.DEBUG)
    assert not said(lines, r"changed: .* -> no page open")


def test_a_source_change_says_building_and_the_build_says_what_it_reloaded(tmp_path: Path, serve, lines) -> None:
    src, site = tmp_path / "src", tmp_path / "site"
    write(src / "index.md", "first")
    write(site / "index.html", "<html><body>old</body></html>")
    project = {"src": src, "site": site, "script": write(tmp_path / "build.py", BUILD_SCRIPT), "log": tmp_path / "log"}
    server = serve(site, watch=[src], build=command(project))

    async def run() -> None:
        page = await handshake(server, "/", [])
        await until_pages_known(server, 1)
        write(src / "index.md", "second")
        while (await next_message(page, 10))["command"] != "reload":
            pass  # the overlay's clear comes first
        await page.close()

    run_async(run())
    wait_until(lambda: said(lines, r"changed: (.*/)?src/index\.md -> building"), 10)
    wait_until(lambda: said(lines, r"build ok in \d+\.\d\d s -> reloaded 1 page"), 10)
    # the build's own output went to execlib.build.output, line by line, not as a change
    assert not said(lines, r"changed: .*\.html.*")


def test_build_output_streams_and_warnings_are_counted_or_shown_as_errors(tmp_path: Path, serve, lines) -> None:
    src, site = tmp_path / "src", tmp_path / "site"
    write(src / "index.rst", "x")
    warn = tmp_path / "warn.py"
    write(warn, "print('reading sources... index')\nprint('index.rst:3: WARNING: Unknown directive type: \"nope\".')\n")
    build = f"'{sys.executable}' '{warn}'"
    server = serve(site, watch=[src], build=build, build_on_start=True)
    output = [r for r in lines if r.name == "execlib.build.output"]
    assert [(r.levelno, r.getMessage()) for r in output] == [
        (logging.INFO, "reading sources... index"),
        (logging.WARNING, 'index.rst:3: WARNING: Unknown directive type: "nope".'),  # shown even with -q
    ]
    assert said(lines, r"build ok with 1 warning in \d+\.\d\d s -> no page open")
    assert server.hub.error is None

    strict = serve(tmp_path / "strict", watch=[src], build=build, build_on_start=True, warnings_as_errors=True)
    title, text = strict.hub.error
    assert title == f"Build had 1 warning, and warnings are errors: {build}"
    assert text == 'index.rst:3: WARNING: Unknown directive type: "nope".'
    assert (tmp_path / "strict").is_dir()  # created for the build: a project never built
    assert said(lines, r"Build had 1 warning, and warnings are errors: .* -> no page open", logging.ERROR)


def test_command_line_format_and_levels() -> None:
    formatter = CommandLineFormatter()

    def line(name: str, level: int, message: str) -> str:
        return formatter.format(logging.LogRecord(name, level, __file__, 1, message, None, None))

    assert line("execlib.changes", logging.INFO, "changed: a.css -> css swapped in 1 page") == (
        "execlib: changed: a.css -> css swapped in 1 page"
    )
    assert line("execlib.build", logging.ERROR, "Build failed") == "execlib: ERROR: Build failed"
    assert line("execlib.build.output", logging.WARNING, "x.rst:1: WARNING: y") == "  | x.rst:1: WARNING: y"
    assert line("uvicorn.error", logging.INFO, "Started") == "execlib: INFO: Started"
    names = ("execlib", "execlib.access", "uvicorn", "uvicorn.error")
    saved = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate, logging.getLogger(n).level)
        for n in names
    }
    try:
        configure_logging(-1)  # -q: no change lines, but a build's warnings still show
        assert not logging.getLogger("execlib.changes").isEnabledFor(logging.INFO)
        assert logging.getLogger("execlib.build.output").isEnabledFor(logging.WARNING)
        configure_logging(0)
        assert logging.getLogger("execlib.changes").isEnabledFor(logging.INFO)
        assert not logging.getLogger("execlib.changes").isEnabledFor(logging.DEBUG)
        configure_logging(1)  # -v: the raw events too
        assert logging.getLogger("execlib.changes").isEnabledFor(logging.DEBUG)
    finally:
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.setLevel(level)
