"""``execlib watch``: one run per coalesced change, never two at once, clean Ctrl-C, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from execlib.cli import main
from tests.helpers import execlib_cmd, wait_until

# A command that logs each run (start/end with the run's pid) and blocks while a "hold" file exists.
RUNNER = """
import os, sys, time
log, hold = sys.argv[1], sys.argv[2]
with open(log, "a") as f: f.write(f"start {os.getpid()}\\n")
deadline = time.monotonic() + 20
while os.path.exists(hold) and time.monotonic() < deadline: time.sleep(0.01)
with open(log, "a") as f: f.write(f"end {os.getpid()}\\n")
"""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class Watch:
    """``execlib watch`` in a child process, its stderr drained by a thread into ``lines``."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            execlib_cmd("watch", *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._seen = 0
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.next_with("execlib: watching ")

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def next_with(self, needle: str) -> str:
        """The next stderr line (after those already returned) that contains ``needle``."""

        def find() -> str | None:
            for i in range(self._seen, len(self.lines)):
                if needle in self.lines[i]:
                    self._seen = i + 1
                    return self.lines[i]
            return None

        return wait_until(find, timeout=15, message=f"a stderr line with {needle!r}; saw {self.lines}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._reader.join(5)
        self.proc.stderr.close()


@pytest.fixture
def watch() -> Iterator:
    started: list[Watch] = []

    def start(*args: str) -> Watch:
        started.append(Watch(*args))
        return started[-1]

    yield start
    for w in started:
        w.close()


def test_runs_once_per_burst_never_twice_at_once_and_once_more_after(watch, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    hold.write_text("")
    proc = watch(str(src), "--debounce", "50", "--", sys.executable, "-c", RUNNER, str(log), str(hold))
    (src / "a.txt").write_text("1")
    wait_until(lambda: len(lines(log)) == 1)  # run 1 started and is held
    for name in ("b.txt", "c.txt", "d.txt"):
        (src / name).write_text("x")
    proc.next_with("changed:")
    hold.unlink()  # let run 1 finish; the changes made meanwhile cause exactly one more run
    wait_until(lambda: len(lines(log)) == 4)
    second = proc.next_with("changed:")
    assert all(name in second for name in ("b.txt", "c.txt", "d.txt")), second
    (src / "e.txt").write_text("x")
    third = proc.next_with("changed:")
    assert "e.txt" in third and "b.txt" not in third, "no extra run came between"
    wait_until(lambda: len(lines(log)) == 6)
    events = lines(log)
    assert [e.split()[0] for e in events] == ["start", "end"] * 3, "runs never overlap"
    proc.next_with("exited with status 0")


def test_glob_and_ignore_select_changes(watch, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    src = tmp_path / "src"
    src.mkdir()
    code = "import sys; open(sys.argv[1], 'a').write('run\\n')"
    options = ("--glob", "**/*.py", "--ignore", "skip/", "--debounce", "0")
    proc = watch(str(src), *options, "--", sys.executable, "-c", code, str(log))
    (src / "skip").mkdir()
    (src / "skip" / "x.py").write_text("x")
    (src / "notes.txt").write_text("x")
    (src / "mod.py").write_text("x")
    line = proc.next_with("changed:")
    assert "mod.py" in line and "notes.txt" not in line and "skip" not in line


def test_ctrl_c_stops_the_command_and_exits_cleanly(watch, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    log, hold = tmp_path / "runs.log", tmp_path / "hold"
    hold.write_text("")
    proc = watch(str(src), "--debounce", "0", "--", sys.executable, "-c", RUNNER, str(log), str(hold))
    (src / "a.txt").write_text("1")
    wait_until(lambda: len(lines(log)) == 1)
    child = int(lines(log)[0].split()[1])
    proc.proc.send_signal(signal.SIGINT)
    assert proc.proc.wait(10) == 0
    proc._reader.join(5)
    err = "".join(proc.lines)
    assert "Traceback" not in err
    assert "stopped by signal SIGTERM" in err
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_missing_path_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", str(tmp_path / "nope"), "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("execlib: error: path not found") and err.count("\n") == 1


def test_command_that_cannot_start_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", str(tmp_path), "--", "no-such-command-xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("execlib: error: cannot run 'no-such-command-xyz'") and err.count("\n") == 1
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\n")
    assert main(["watch", str(tmp_path), "--", str(script)]) == 2
    assert "not executable" in capsys.readouterr().err


def test_missing_command_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(execlib_cmd("watch", str(tmp_path)), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith("execlib: error: no COMMAND given") and "Traceback" not in proc.stderr


def test_a_temp_file_and_rename_save_is_one_run_naming_the_target(watch, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    src = tmp_path / "src"
    src.mkdir()
    (src / "page.md").write_text("v1")
    code = "import sys; open(sys.argv[1], 'a').write('run\\n')"
    proc = watch(str(src), "--debounce", "20", "--", sys.executable, "-c", code, str(log))
    temp = src / ".page.md.k3j9x"  # a random temp name, as sed -i and rsync use
    temp.write_text("v2")
    os.replace(temp, src / "page.md")
    line = proc.next_with("changed:")
    assert "page.md" in line and ".page.md.k3j9x" not in line, line
    wait_until(lambda: len(lines(log)) == 1)
    (src / "other.md").write_text("x")  # a later change: its run is the second, so nothing came between
    assert "other.md" in proc.next_with("changed:")
    wait_until(lambda: len(lines(log)) == 2)
