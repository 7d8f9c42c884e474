"""Headless Chromium (Debian's package) driven by Playwright, for everything a browser does.

With CI=true a missing browser is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

CHROMIUM = os.environ.get("EXECLIB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Chromium starts two chrome_crashpad_handler processes per browser, detached (double-forked),
# so their parent is init, not the browser or us. They exit with the browser, but then stay in
# the process table as init's zombies until init gets round to reaping them (seconds here), and
# nothing of ours could reap or end them. --disable-crash-reporter and --disable-breakpad do not
# stop them (Chromium 156), and --disable-crashpad-for-testing does, but then every navigation
# fails with net::ERR_ABORTED. So Chromium runs under this launcher instead: a child subreaper
# (prctl), to which Chromium's orphans are handed instead of to init, that reaps them once
# Chromium has exited (ending any still running) and reports what it did.
LAUNCHER = """\
import ctypes, json, os, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")
chromium, report = os.environ["EXECLIB_E2E_CHROMIUM"], os.environ["EXECLIB_E2E_REPORT"]
browser = os.fork()
if browser == 0:
    os.execv(chromium, [chromium, *sys.argv[1:]])  # keeps fds 3 and 4, Playwright's pipe


def end(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # passed on, so Chromium ends as it would alone
    signal.signal(sig, lambda signum, frame: end(browser, signum))
_, status = os.waitpid(browser, 0)


def adopted():
    mine = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as file:
                comm, rest = file.read().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if int(rest.split()[1]) == os.getpid():
            mine.append((int(entry), comm.split("(", 1)[1]))
    return mine


done = {"adopted": adopted(), "terminated": [], "left": []}
deadline, signals = time.monotonic() + 3, [signal.SIGTERM, signal.SIGKILL]
while True:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break  # every child reaped
    if pid:
        continue
    if time.monotonic() > deadline:
        if not signals:
            done["left"] = adopted()
            break
        sig = signals.pop(0)
        for pid, comm in adopted():
            end(pid, sig)
            done["terminated"].append((pid, comm, sig.name))
        deadline = time.monotonic() + 3
    time.sleep(0.01)  # polling interval, bounded by the deadline
with open(report, "w") as file:
    json.dump(done, file)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)  # as a shell reports a death by signal
"""


def write_launcher(folder: str) -> str:
    path = os.path.join(folder, "chromium-launcher")
    with open(path, "w", encoding="utf-8") as file:
        file.write(f"#!{sys.executable} -S\n{LAUNCHER}")
    os.chmod(path, 0o755)
    return path


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, name, command line) of every process, zombies included."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as file:
                name, rest = file.read().split("(", 1)[1].rsplit(")", 1)
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                command = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        found[int(entry)] = (int(rest.split()[1]), name, command)
    return found


def crash_handlers_of(launcher_path: str) -> list[int]:
    """The crash handlers the launcher at ``launcher_path`` has adopted (its children so named)."""
    table = processes()
    launchers = {pid for pid, (_, _, command) in table.items() if launcher_path in command}
    # the kernel keeps 15 characters of a name: chrome_crashpad_handler is chrome_crashpad
    return [pid for pid, (ppid, name, _) in table.items() if ppid in launchers and name.startswith("chrome_crash")]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}; scripts/test installs Debian's chromium package")
        pytest.skip("Chromium is not installed (scripts/test installs it)")
    from playwright.sync_api import sync_playwright

    folder = tempfile.mkdtemp(prefix="execlib-e2e-")
    report = os.path.join(folder, "reaped.json")
    launcher = write_launcher(folder)
    env = {**os.environ, "EXECLIB_E2E_CHROMIUM": CHROMIUM, "EXECLIB_E2E_REPORT": report}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=launcher, args=CHROMIUM_ARGS, env=env)
            try:
                yield browser
            finally:
                handlers = crash_handlers_of(launcher)
                browser.close()  # returns once the launcher has exited, Chromium's orphans reaped
        with open(report, encoding="utf-8") as file:
            done = json.load(file)
        assert done["left"] == [], f"Chromium left processes that outlived SIGKILL: {done['left']}"
        still_listed = set(handlers) & set(processes())
        assert not still_listed, f"crash handlers of the browser still in the process table: {sorted(still_listed)}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def context(browser) -> Iterator[object]:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context
    context.close()
