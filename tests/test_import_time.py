"""``import execlib`` and the lifecycle commands stay light: no uvicorn, FastAPI or Starlette until a
server is actually built. Checked in fresh interpreters, through sys.modules (the timing itself is
benchmarks/import_time.py's job)."""

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


def heavy_modules_after(statement: str, cwd: Path | None = None) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), statement],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_probe_sees_heavy_imports() -> None:
    # the probe must be able to fail: building a Server does import them
    assert heavy_modules_after("import execlib; execlib.Server") == sorted(HEAVY)


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
