"""``import execlib`` and the lifecycle commands stay light: no uvicorn, FastAPI or Starlette until a
server is actually built, and no FastAPI until a tool reads ``server.app``. Checked in fresh
interpreters, through sys.modules (the timing itself is benchmarks/import_time.py's and
benchmarks/startup.py's job)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("uvicorn", "fastapi", "starlette")

# runs the given statement, then prints which heavy top-level packages ended up imported
PROBE = """
import json, sys
try:
    exec(sys.argv[1])
except SystemExit:
    pass
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))))
"""


def heavy_modules_after(statement: str, cwd: Path | None = None, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), statement],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_probe_sees_heavy_imports() -> None:
    # the probe must be able to fail: reading a Server's app imports all of them but uvicorn, which
    # its backend module imports (at start())
    statement = (
        "import execlib, tempfile; execlib.Server(tempfile.mkdtemp(), port=0).app; "
        "import execlib.server.backends.uvicorn"
    )
    assert heavy_modules_after(statement) == sorted(HEAVY)


def test_server_imports_no_fastapi() -> None:
    # nor uvicorn: the backend is imported when the server starts, and only the one chosen
    assert heavy_modules_after("import execlib; execlib.Server") == ["starlette"]


def test_serving_on_uvicorn_imports_no_hypercorn() -> None:
    assert "hypercorn" not in heavy_modules_after(SERVE_AND_ASK, heavy=(*HEAVY, "hypercorn"))


# what ``execlib serve`` runs, up to serving a page and the live-reload client, and stopping
SERVE_AND_ASK = """
import execlib, tempfile, urllib.request
root = tempfile.mkdtemp()
open(root + "/index.html", "w").write("<html><body>hi</body></html>")
with execlib.Server(root, port=0) as server:
    for path in ("", "livereload.js", "__execlib__/health", "__execlib__/nothing", "missing.html"):
        try:
            urllib.request.urlopen(server.url + path, timeout=10).read()
        except urllib.error.HTTPError as error:
            assert error.code == 404, error
"""


def test_serving_imports_no_fastapi() -> None:
    assert heavy_modules_after(SERVE_AND_ASK) == ["starlette", "uvicorn"]


def test_jinja2_waits_for_the_first_listing_or_404_page() -> None:
    # jinja2 costs start-up time and renders only listings and the 404 page
    serve_a_page = SERVE_AND_ASK.replace('"__execlib__/nothing", "missing.html"', "")
    assert heavy_modules_after(serve_a_page, heavy=("jinja2",)) == []
    assert heavy_modules_after(SERVE_AND_ASK, heavy=("jinja2",)) == ["jinja2"]  # the probe can fail


def test_serve_command_imports_no_fastapi() -> None:
    statement = "import execlib.cli, execlib.cli.serve, execlib.lifecycle, execlib.server"
    assert "fastapi" not in heavy_modules_after(statement)


def test_public_names_agree() -> None:
    """``__all__``, the lazy-import table and the TYPE_CHECKING imports name the same things."""
    import ast

    import execlib

    tree = ast.parse(Path(execlib.__file__).read_text(encoding="utf-8"))
    type_checking: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            type_checking |= {alias.asname or alias.name for imp in node.body for alias in imp.names}  # type: ignore[attr-defined]
    eager = {name for name in execlib.__all__ if name in vars(execlib) and name not in execlib._LAZY}
    assert set(execlib._LAZY) == type_checking
    assert set(execlib.__all__) == set(execlib._LAZY) | eager
    assert eager <= {"__version__"} | {name for name in eager if name.endswith("Error")}


@pytest.mark.parametrize(
    "statement",
    [
        "import execlib",
        "import execlib; execlib.__version__; execlib.ExeclibError; execlib.PortInUseError",
        "import execlib; execlib.status; execlib.stop; execlib.ServerStatus; execlib.serve; execlib.serve_background",
        "from execlib.cli import main; main(['--help'])",
        "from execlib.cli import main; main(['start', '--help'])",
    ],
)
def test_no_heavy_imports(statement: str) -> None:
    assert heavy_modules_after(statement) == []


def test_status_and_stop_commands_do_not_import_the_server(tmp_path: Path) -> None:
    statement = "from execlib.cli import main; main(['status']); main(['stop'])"
    assert heavy_modules_after(statement, cwd=tmp_path) == []


def test_execlib_help_entry_point_imports_nothing_heavy() -> None:
    # the real entry point (python -m execlib --help), observed through -X importtime's report
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "execlib", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "usage: execlib" in result.stdout
    report = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in report}
    assert "execlib.cli" in imported  # the report is complete enough to trust
    assert not {name for name in imported if name.split(".")[0] in HEAVY}


# the parts of uvicorn, Starlette and websockets that the first page never needs
NOT_FOR_A_PAGE = ("uvicorn.main", "click", "websockets", "starlette.responses", "starlette.websockets", "anyio")

PROBE_MODULES = """
import json, sys
exec(sys.argv[1])
print(json.dumps(sorted(name for name in {names!r} if name in sys.modules)))
"""


def modules_after(statement: str, names: tuple[str, ...]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE_MODULES.format(names=names), statement], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_serving_pages_leaves_uvicorns_command_line_and_websockets_unimported() -> None:
    serve_pages = SERVE_AND_ASK.replace('"__execlib__/nothing", "missing.html"', "")
    assert modules_after(serve_pages, NOT_FOR_A_PAGE) == []
    # the probe can fail: the first live-reload connection brings the server's WebSocket parts
    server_side = ("starlette.websockets", "uvicorn.protocols.websockets.websockets_sansio_impl")
    connect = serve_pages + (
        "    from websockets.sync.client import connect\n"
        "    with connect(server.url.replace('http', 'ws') + 'livereload') as ws:\n"
        '        ws.send(\'{"command": "hello", "protocols": ["http://livereload.com/protocols/official-7"]}\')\n'
        "        ws.recv(timeout=10)\n"
    )
    assert modules_after(serve_pages, server_side) == []
    assert modules_after(connect, server_side) == sorted(server_side)


USE_UVICORN_AFTER = """
import execlib, tempfile, urllib.request
{before}
root = tempfile.mkdtemp()
with execlib.Server(root, port=0) as server:
    urllib.request.urlopen(server.url + "__execlib__/health", timeout=10).read()
import uvicorn, uvicorn.config, uvicorn.server
from uvicorn import main
assert callable(uvicorn.run) and callable(main)
assert uvicorn.Config is uvicorn.config.Config and uvicorn.Server is uvicorn.server.Server
assert uvicorn.__version__ and "uvicorn.main" in sys.modules
"""


@pytest.mark.parametrize("before", ["", "import uvicorn"])
def test_uvicorn_is_whole_for_code_that_imports_it_later(before: str) -> None:
    # execlib skips uvicorn's __init__ (its command line); any use of the package runs it after all
    statement = USE_UVICORN_AFTER.format(before=before)
    assert modules_after(statement, ("uvicorn.main", "click")) == ["click", "uvicorn.main"]
