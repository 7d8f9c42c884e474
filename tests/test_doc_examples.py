"""The examples in docs/*.rst run, so that the documentation cannot drift from the code.

* Python (``.. code-block:: python``, and ``::`` literal blocks that parse as Python and import,
  call or assign something): each page's examples run in order, in one namespace, in a scratch
  folder, through doc_examples_harness.py (which says what it stands in for and why).
* Shell (``.. code-block:: console``): every ``$ execlib ...`` line parses with execlib's own
  argument parser (nothing is run: the examples name folders of the reader's project).
* Usage synopses (``.. code-block:: text`` starting ``execlib``): equal to what ``--help`` prints.

A block that cannot run here is marked in the page by a comment just before it,
``.. skip-doctest: REASON`` (Sphinx does not show comments); keep those few.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import execlib
from execlib.cli import build_parser

from .conftest import write

DOCS = Path(__file__).resolve().parent.parent / "docs"
HARNESS = Path(__file__).resolve().parent / "doc_examples_harness.py"
PAGE_TIMEOUT = 90  # seconds for one page's examples; they start servers, listeners and a detached server

_CODE_BLOCK = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<language>\S+)\s*$")
_SKIP = re.compile(r"^\s*\.\. skip-doctest:\s*(?P<reason>\S.*)$")


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the project, e.g. docs/routers.rst
    line: int  # line number of the block's first code line in the page
    language: str  # the code-block's language, or "literal" for a ``::`` block
    code: str
    skip: str | None  # the reason given by a ``.. skip-doctest:`` comment

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def page_blocks(path: Path) -> list[Block]:
    """The code blocks of one reST page: ``.. code-block::`` directives and ``::`` literal blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = path.relative_to(DOCS.parent).as_posix()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _CODE_BLOCK.match(line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if not (directive or literal):
            i += 1
            continue
        indent = _indent(line)
        j = i + 1
        while directive and j < len(lines) and lines[j].strip().startswith(":"):
            j += 1  # the directive's options (:caption: and the like)
        start = j
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > indent):
            j += 1
        body = lines[start:j]
        while body and not body[0].strip():
            body.pop(0)
            start += 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        skip = _SKIP.match(previous)
        if code:
            language = directive.group("language") if directive else "literal"
            blocks.append(Block(doc, start + 1, language, code + "\n", skip.group("reason") if skip else None))
        i = max(j, i + 1)
    return blocks


def looks_like_python(code: str) -> bool:
    """Whether a ``::`` block is Python: it parses, and does something (a JSON object parses too)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    actions = (ast.Import, ast.ImportFrom, ast.Call, ast.Assign, ast.FunctionDef, ast.ClassDef)
    return any(isinstance(node, actions) for node in ast.walk(tree))


def is_python(block: Block) -> bool:
    return block.language == "python" or (block.language == "literal" and looks_like_python(block.code))


PAGES = sorted(DOCS.glob("*.rst"))
ALL_BLOCKS = [block for page in PAGES for block in page_blocks(page)]
PYTHON_PAGES = sorted({block.doc for block in ALL_BLOCKS if is_python(block)})
SHELL_LINES = [
    (block, line.removeprefix("$ ").strip())
    for block in ALL_BLOCKS
    if block.language == "console"
    for line in block.code.splitlines()
    if line.startswith("$ execlib ")
]
SYNOPSES = [block for block in ALL_BLOCKS if block.language == "text" and block.code.startswith("execlib ")]
SKIPPED = [block for block in ALL_BLOCKS if block.skip is not None]


def test_every_python_code_block_is_found() -> None:
    """The extraction must not quietly miss examples (the other tests would then pass on nothing)."""
    written = sum(len(re.findall(r"^\s*\.\. code-block:: python\s*$", p.read_text(), re.M)) for p in PAGES)
    found = [block for block in ALL_BLOCKS if block.language == "python"]
    assert written > 0 and len(found) == written
    assert SHELL_LINES and SYNOPSES


def scratch_project(root: Path) -> None:
    """The folders the examples name, as in a reader's project: a built site, sources, templates."""
    write(root / "site" / "index.html", "<html><body><h1>site</h1></body></html>")
    write(root / "build" / "html" / "index.html", "<html><body><h1>built</h1></body></html>")
    write(root / "src" / "index.md", "# index\n")
    write(root / "src" / "app.py", "print('app')\n")
    write(root / "templates" / "page.html", "<html><body>{{ body }}</body></html>")
    write(root / "docs" / "index.rst", "Index\n=====\n")
    write(root / "content" / "index.md", "# content\n")
    # app mode's examples serve main:app: a small ASGI app, as FastAPI's would be
    write(
        root / "main.py",
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'hello'})\n",
    )


def stop_detached_servers(root: Path) -> None:
    """An example that failed half-way may leave a detached server (serve_background) running."""
    for pid_file in root.rglob("*.pid"):
        with contextlib.suppress(execlib.ExeclibError):
            execlib.stop(pid_file)


@pytest.mark.timeout(PAGE_TIMEOUT + 30)
@pytest.mark.parametrize("doc", PYTHON_PAGES)
def test_python_examples_run(doc: str, tmp_path: Path) -> None:
    examples = [block for block in ALL_BLOCKS if block.doc == doc and is_python(block) and block.skip is None]
    listing = tmp_path / "examples.json"
    listing.write_text(json.dumps([{"doc": b.doc, "line": b.line, "code": b.code} for b in examples]))
    project = tmp_path / "project"
    scratch_project(project)
    # the outer environment must not choose hosts or ports for the examples
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXECLIB_")}
    try:
        result = subprocess.run(
            [sys.executable, str(HARNESS), str(listing)],
            cwd=project,
            env=env,
            input="\n" * 3,  # quickstart's example waits for Enter
            capture_output=True,
            text=True,
            timeout=PAGE_TIMEOUT,
        )
    finally:
        stop_detached_servers(project)
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    ran = [line.removeprefix("ran ") for line in result.stdout.splitlines() if line.startswith("ran ")]
    assert ran == [block.where for block in examples], output


def test_skipped_examples_say_why() -> None:
    """Every ``.. skip-doctest:`` comment stands right before a block and gives a reason."""
    comments = [
        (page.name, n + 1)
        for page in PAGES
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines())
        if line.strip().startswith(".. skip-doctest")
    ]
    assert len(comments) == len(SKIPPED), (
        f"skip-doctest comments not followed by a block, or without a reason: {comments}"
    )


def _argv(command_line: str) -> list[str]:
    words = shlex.split(command_line, comments=True)  # `execlib sphinx   # in a project`: a shell comment
    assert words[0] == "execlib"
    # `execlib watch ... -- COMMAND`: the words after `--` are the command, not execlib's options
    return words[1 : words.index("--")] if "--" in words else words[1:]


@pytest.mark.parametrize(("block", "command_line"), SHELL_LINES, ids=[f"{b.where}:{line}" for b, line in SHELL_LINES])
def test_shell_examples_parse(block: Block, command_line: str) -> None:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(_argv(command_line))
    except SystemExit as exit:
        pytest.fail(f"{block.where}: `{command_line}` does not parse: {stderr.getvalue().strip()} (exit {exit.code})")
    assert isinstance(args, argparse.Namespace)


def _usage(command: str | None, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps usage to the terminal's width; the docs show 80 columns
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"] if command else ["--help"])
    return out.getvalue().split("\n\n")[0].removeprefix("usage: ")


@pytest.mark.parametrize("block", SYNOPSES, ids=[b.where for b in SYNOPSES])
def test_usage_synopses_match_help(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    command = re.match(r"execlib (\w+) ", block.code)
    shown = " ".join(block.code.split())
    actual = " ".join(_usage(command.group(1) if command else None, monkeypatch).split())
    assert shown == actual, f"{block.where} shows an outdated usage; `execlib --help` now says:\n{actual}"
