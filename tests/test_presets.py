"""Presets on projects made by the real tools (sphinx-quickstart, mkdocs new), and warm builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from execlib.errors import ConfigError
from execlib.presets import mkdocs_preset, read_mkdocs_config, sphinx_preset
from execlib.server.build import BuildRunner
from execlib.server.warm import WarmCommand

from .conftest import write
from .helpers import execlib_cmd, run_async


def quickstart(folder: Path, *, separate: bool) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx.cmd.quickstart",
            "-q",
            "-p",
            "Demo",
            "-a",
            "Me",
            "--sep" if separate else "--no-sep",
        ]
        + [str(folder)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return folder


def test_sphinx_preset_on_both_quickstart_layouts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(quickstart(tmp_path / "flat", separate=False))
    flat = sphinx_preset()
    assert (flat.watch, flat.serve, flat.ignore) == ((".",), "_build/html", ("/_build/",))
    assert flat.args == ("-b", "html", "-d", "_build/doctrees", ".", "_build/html")  # make html's doctrees
    assert flat.entry == "sphinx.cmd.build:main" and flat.interpreter == sys.executable
    assert flat.argv[0].endswith("sphinx-build") or flat.argv[:3] == (sys.executable, "-m", "sphinx")
    assert "--build-on-start" in flat.equivalent() and "--ignore /_build/" in flat.equivalent()

    monkeypatch.chdir(quickstart(tmp_path / "split", separate=True))
    split = sphinx_preset()
    assert (split.watch, split.serve, split.ignore) == (("source",), "build/html", ())  # build/ is beside source/
    assert split.args[:4] == ("-b", "html", "-d", "build/doctrees")
    named = sphinx_preset("source", "out", ["-W", "--keep-going"])
    assert named.serve == "out" and named.args[-2:] == ("-W", "--keep-going")
    assert named.args[2:4] == ("-d", "out/.doctrees")  # not a make-mode layout: Sphinx's own default


def test_sphinx_preset_mistakes_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no conf.py"):
        sphinx_preset(str(tmp_path))
    with pytest.raises(ConfigError, match="source folder not found"):
        sphinx_preset(str(tmp_path / "nope"))
    result = subprocess.run(execlib_cmd("sphinx"), cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("execlib: error: no Sphinx project here") and result.stderr.count("\n") == 1
    result = subprocess.run(execlib_cmd("mkdocs", str(tmp_path)), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"execlib: error: no MkDocs project in {tmp_path}: no mkdocs.yml")


def test_mkdocs_preset_on_a_new_project_and_its_config(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "mkdocs", "new", str(tmp_path / "p")], check=True, capture_output=True)
    project = tmp_path / "p"
    preset = mkdocs_preset(str(project))
    assert preset.watch == (str(project / "mkdocs.yml"), str(project / "docs"))
    assert preset.serve == str(project / "site") and preset.cwd == str(project)
    assert preset.args == ("build", "-f", "mkdocs.yml") and preset.entry == "mkdocs.__main__:cli"

    write(project / "overrides" / "main.html", "{% extends 'base.html' %}")
    write(project / "src" / "pkg.py", "")
    write(
        project / "mkdocs.yml",
        "site_name: T\n"
        "docs_dir: pages\n"
        "site_dir: docs_site\n"
        "theme:\n  name: mkdocs\n  custom_dir: overrides\n"
        "watch: [src]\n"
        "extra:\n  key: !ENV [SOME_VAR, default]\n"
        "markdown_extensions:\n  - pymdownx.emoji:\n"
        "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
    )
    (project / "docs").rename(project / "pages")
    preset = mkdocs_preset(str(project), extra=["--strict"])
    assert preset.watch == tuple(str(project / p) for p in ("mkdocs.yml", "pages", "overrides", "src"))
    assert preset.serve == str(project / "docs_site") and preset.args[-1] == "--strict"
    assert read_mkdocs_config(str(project / "mkdocs.yml"))["extra"] == {"key": None}  # MkDocs' own tags


def test_warm_builds_run_the_entry_in_a_fresh_fork_each_time(tmp_path: Path) -> None:
    # A tool of our own: its module-level counter shows whether a build saw the one before.
    write(
        tmp_path / "tool.py",
        "import os, sys, time\nCOUNT = [0]\n\n\ndef main(args):\n"
        "    COUNT[0] += 1\n"
        "    print('built', args, COUNT[0], os.getcwd())\n"
        "    if args[0] == 'fail':\n        return 3\n"
        "    if args[0] == 'hang':\n        time.sleep(60)\n"
        "    return 0\n",
    )

    async def run() -> list:
        results = []

        async def keep(result) -> None:
            results.append(result)

        def runner(*args: str, timeout: float | None = None) -> BuildRunner:
            command = WarmCommand(["tool", *args], "tool:main", cwd=str(tmp_path))
            return BuildRunner(command, keep, timeout=timeout)

        ok = runner("x")
        await ok.build_now()
        await ok.build_now()
        await ok.aclose()
        failing = runner("fail")
        await failing.build_now()
        await failing.aclose()
        hanging = runner("hang", timeout=1)
        await hanging.build_now()  # killed after 1 s; the helper reports the fork's end and carries on
        hanging.target.args = ["x"]
        await hanging.build_now()
        await hanging.aclose()
        return results

    first, second, failed, timed_out, after = run_async(run())
    assert first.ok and first.output.splitlines() == [f"built ['x'] 1 {tmp_path}"]
    assert second.ok and second.output.splitlines() == [f"built ['x'] 1 {tmp_path}"]  # a fresh fork: 1 again
    assert not failed.ok and failed.summary == "Build failed: tool fail (exit status 3)"
    assert not timed_out.ok and timed_out.summary.startswith("Build timed out after 1 s: tool hang")
    assert after.ok and after.output == f"built ['x'] 1 {tmp_path}"


def test_a_warm_build_without_the_tool_runs_the_plain_command(tmp_path: Path) -> None:
    async def run():
        results = []

        async def keep(result) -> None:
            results.append(result)

        command = WarmCommand([sys.executable, "-c", "print('cold')"], "no_such_tool_xyz:main", cwd=str(tmp_path))
        runner = BuildRunner(command, keep)
        await runner.build_now()
        await runner.aclose()
        return command, results

    command, (result,) = run_async(run())
    assert command.cold and "No module named 'no_such_tool_xyz'" in (command.cold_reason or "")
    assert result.ok and result.output == "cold"
