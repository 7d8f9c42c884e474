"""Support for the process-lifecycle tests: a scratch folder that runs execlib commands and, at
teardown, kills every process those tests started there, whatever state a failed test left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from execlib.process import pid_alive

from .helpers import execlib_cmd, wait_until

# the outer environment must not choose hosts or ports for these tests
CLEAN_ENV = {key: value for key, value in os.environ.items() if not key.startswith("EXECLIB_")}

# sitecustomize.py there holds test-only switches for the servers these tests start
CHILD_HOOKS = Path(__file__).parent / "child_hooks"


def hook_env(switch: str) -> dict[str, str]:
    """Environment for ``Lab.start`` that turns on one switch of child_hooks/sitecustomize.py
    (``EXECLIB_TEST_IGNORE_SIGTERM`` or ``EXECLIB_TEST_SPAWN_CHILD``); the detached server inherits it."""
    path = os.pathsep.join(entry for entry in (str(CHILD_HOOKS), os.environ.get("PYTHONPATH", "")) if entry)
    return {"PYTHONPATH": path, switch: "1"}


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2 :].split()
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (our tmp folder: everything a test started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL a process, and its whole group when it leads one (detached servers do)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Lab:
    """A scratch folder with a small site; runs ``execlib`` there with a clean environment."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.site = root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        (self.site / "index.html").write_text("<html><body><h1>lab</h1></body></html>")
        self.popens: list[subprocess.Popen[str]] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**CLEAN_ENV, **(extra or {})}

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 40, cwd: str | Path | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            execlib_cmd(*args),
            cwd=self.dir if cwd is None else cwd,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *argv: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen[str]:
        proc = subprocess.Popen(list(argv), cwd=self.dir, env=self.env(env), text=True, **kwargs)
        self.popens.append(proc)
        return proc

    def start(
        self, *args: str, pid_file: str = ".execlib.pid", env: dict[str, str] | None = None
    ) -> tuple[int, int, str]:
        """``execlib start`` the lab site on a free loopback port; returns (pid, port, url)."""
        result = self.run("start", str(self.site), "--port", "0", "--pid-file", pid_file, *args, env=env)
        assert result.returncode == 0, result.stderr
        pid = pid_in(self.dir / pid_file)
        port = int((self.dir / pid_file).with_suffix(".port").read_text())
        url = f"http://127.0.0.1:{port}/"
        assert f"at {url}" in result.stdout, result.stdout
        return pid, port, url

    def cleanup(self) -> None:
        for proc in self.popens:
            if proc.poll() is None:
                kill_tree(proc.pid)
            proc.wait(10)
        for pid in processes_mentioning(str(self.dir)):
            kill_tree(pid)
        wait_until(lambda: not processes_mentioning(str(self.dir)), 10, message="lab processes to exit")


def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.cleanup()


def health(url: str) -> dict | None:
    """The health endpoint's JSON, or None when nothing answers."""
    try:
        response = httpx.get(url.rstrip("/") + "/__execlib__/health", timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def pid_file_data(path: Path) -> dict:
    """The JSON object of an execlib PID file, checked to be one."""
    data = json.loads(path.read_text())
    assert data["execlib"] == 1, data
    return data


def pid_in(path: Path) -> int:
    """The pid an execlib PID file names."""
    return pid_file_data(path)["pid"]


def gone(pid: int) -> bool:
    return not pid_alive(pid)


def python_cmd(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def parse_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])
