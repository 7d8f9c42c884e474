"""App-reload benchmark: saving a FastAPI app's main.py to the new version visible in Chromium, execlib app mode
vs uvicorn --reload.

Run:  python benchmarks/app_reload.py [--changes 20] [--warmup 1] [--only execlib,uvicorn] [--writers rename,inplace]

The app (written by the script into a temp folder under ``benchmarks/.work``, one copy per server,
file ``main.py``) is a FastAPI app whose route ``/`` returns a page with ``<p id="msg">version N</p>``
and an inline script that stores ``performance.timeOrigin + performance.now()`` (wall-clock ms) in
sessionStorage, once per version: the first page load that shows version N keeps its stamp. The
response carries ``X-Bench-Version: N`` and ``Cache-Control: no-store``. Each change rewrites main.py
with the next N. Both servers run in the same run on 127.0.0.1, changes interleaved (one change at a
time, the servers taking turns, the first of each round alternating):

- **execlib**: ``python -m execlib serve --app main:app --host 127.0.0.1 --port 0 --no-config
  --banner json``, cwd = its app folder; the URL is the ``url`` of the JSON start line (stdout's first
  line; any ``http://127.0.0.1:PORT/`` in that line is taken too). The page reloads itself (live
  reload): the script only waits for the new version to show.
- **uvicorn**: ``python -m uvicorn main:app --reload --host 127.0.0.1 --port P``, cwd = its own app
  folder (P: a free port picked first); **uvicorn-delay0** the same with ``--reload-delay 0``, its
  fastest setting (no pause of the reloader's loop between checks; 0.25 s by default). The page
  does not reload by itself, so the script plays a user pressing F5 as fast as possible: right
  after the save, ``page.reload()`` (waiting for the ``load`` event), navigation errors caught,
  then a 20 ms pause (``F5_PAUSE_S``), again, until the page shows the new version.

Writers (``--writers``, default ``rename``): ``rename`` writes the new text to
``tempfile.NamedTemporaryFile(dir=the app folder, delete=False)`` and ``os.replace``-s it over main.py,
the way editors save; ``inplace`` opens main.py, writes, closes (an importer may then read it empty or
half-written, as with any in-place save). Each writer gets ``--changes`` measured changes per server.

The time measured: from the save (main.py's ``st_mtime_ns``, read right after the write) to the
in-page stamp of the first page load showing the new version. Chromium bases
``performance.timeOrigin`` on the wall clock (CLOCK_REALTIME) and the kernel sets ``st_mtime_ns`` from
the same clock; the page-minus-Python clock offset is measured and printed, not corrected.

Error pages: every main-frame navigation is recorded with Playwright's ``response`` and
``requestfailed`` events. A navigation answered 200 with the ``X-Bench-Version`` header is the app's
page; anything else is an error page (a 5xx, execlib's waiting page, any other answer, or a failed
navigation: Chromium's own net-error page, e.g. connection refused or reset). Navigations that the
browser itself aborted (``net::ERR_ABORTED``: a newer navigation replaced them, the old page stayed)
are counted apart. An error page counts against the change whose save it followed (up to the next
change's save).

execlib's own figures: execlib logs one line per reload on stderr (INFO), matched against
``RELOADED`` below; its fields (start-up: new worker import + lifespan; first answer; old workers
stopped) are printed as medians over the measured changes. A change with no such line is counted
and said, not an error.

Pauses between changes: before each change the page must show the previous version. For execlib
the page must also have its live-reload socket open and greeted, and no page load for
``QUIET_S`` (0.4 s, checked by polling, within a deadline). After that, each server waits a random
0-``JITTER_S`` (0.3 s) so saves fall at any phase of the servers' own timers; these pauses are
separate saves by a person, not a burst. Every wait has a deadline: a change not visible within
``VISIBLE_TIMEOUT_S`` counts as missed, and a server that misses three in a row stops.

The children run with ``PYTHONDONTWRITEBYTECODE=1``: two saves of the same size within one second
would otherwise leave a stale ``__pycache__/main.*.pyc`` (its source stamp is in whole seconds) for
the next import. Everything started (each server in its own process group, with its workers; the
browser) is stopped on the way out, errors and SIGTERM included, and the temp folder is removed.

Needs Debian's chromium (/usr/bin/chromium), playwright (Python package only), fastapi and uvicorn
(both execlib dependencies).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
CHROMIUM = os.environ.get("EXECLIB_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST = "127.0.0.1"
SERVERS = ("execlib", "uvicorn", "uvicorn-delay0")
LABELS = {
    "execlib": "execlib --app",
    "uvicorn": "uvicorn --reload",
    "uvicorn-delay0": "uvicorn --reload-delay 0",
}
WRITERS = ("rename", "inplace")
START_TIMEOUT_S = 60.0  # first stdout line, and GET / answering 200
VISIBLE_TIMEOUT_S = 20.0  # a change not visible by then counts as missed
READY_TIMEOUT_S = 10.0  # execlib: the page's live-reload socket open and greeted
MISSES_IN_A_ROW = 3
QUIET_S = 0.4  # execlib: no page load for this long before the next change
JITTER_S = 0.3  # random 0..JITTER_S before every change, both servers
F5_PAUSE_S = 0.02  # uvicorn: the pause between two presses of F5
NAV_TIMEOUT_MS = 15_000.0  # one press of F5 (a request may sit in the listen backlog during a restart)
GOAL_SLACK_MS = 100.0  # execlib's median <= uvicorn's median + this
# execlib's line per reload (stderr, INFO).
RELOADED = re.compile(
    r"app reloaded: generation (\d+) answered ([\d.]+) ms after the change \(start-up ([\d.]+) ms,"
    r" first answer ([\d.]+) ms\); old workers stopped in ([\d.]+) ms"
)
URL_IN_LINE = re.compile(r"http://127\.0\.0\.1:\d+/")

APP = '''"""A benchmark app, version @VERSION@: benchmarks/app_reload.py rewrites this file for every change."""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

VERSION = @VERSION@

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>App reload benchmark</title></head>
<body>
<h1>App reload benchmark</h1>
<p id="msg">version @VERSION@</p>
<script>
(function () {
  var now = performance.timeOrigin + performance.now();
  var s = sessionStorage;
  s.setItem("loads", String(Number(s.getItem("loads") || 0) + 1));
  if (!s.getItem("shown:@VERSION@")) {
    s.setItem("shown:@VERSION@", String(now));
    s.setItem("nav:@VERSION@", String(performance.timeOrigin));
  }
  window.__benchVersion = @VERSION@;
})();
</script>
</body>
</html>
"""

app = FastAPI()


@app.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-store", "X-Bench-Version": str(VERSION)})
'''

# Counts every WebSocket the page opens and the messages it gets: the live-reload socket is ready
# once it is open and the server has greeted it.
WS_PROBE = """
(() => {
  const Native = window.WebSocket;
  if (!Native || window.__benchSockets) return;
  const sockets = (window.__benchSockets = []);
  function Probe(...args) {
    const ws = new Native(...args);
    ws.__got = 0;
    ws.addEventListener("message", () => { ws.__got += 1; });
    sockets.push(ws);
    return ws;
  }
  Probe.prototype = Native.prototype;
  Object.assign(Probe, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Probe;
})();
"""
READY_JS = "() => (window.__benchSockets || []).some(ws => ws.readyState === 1 && ws.__got > 0)"
STORAGE_JS = "() => Object.assign({}, sessionStorage)"


def app_text(version: int) -> str:
    return APP.replace("@VERSION@", str(version))


# -- saving -----------------------------------------------------------------------------------


def save(path: Path, text: str, writer: str) -> int:
    """Write ``text`` to ``path`` the way ``writer`` does; returns the file's st_mtime_ns right after."""
    if writer == "rename":
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as sink:
            sink.write(text)
        os.replace(sink.name, path)
    elif writer == "inplace":
        with open(path, "w", encoding="utf-8") as sink:
            sink.write(text)
    else:
        raise ValueError(writer)
    return path.stat().st_mtime_ns


# -- servers ----------------------------------------------------------------------------------


class StartError(RuntimeError):
    """A server that could not be started; reported in the table, not raised further."""


@dataclass
class Cell:
    """One writer x server: figures (ms) and counts over the measured changes."""

    visible: list[float] = field(default_factory=list)  # mtime -> in-page stamp of the first load showing it
    to_navigation: list[float] = field(default_factory=list)  # mtime -> that load's navigation start
    missed: int = 0
    measured: int = 0  # changes made (missed included)
    error_pages: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    aborted: int = 0
    loads: int = 0  # the app's page loads, counted in the page
    navigations: int = 0  # main-frame navigations: app pages, error pages, aborted ones
    presses: int = 0  # uvicorn: F5 presses
    reloads: list[tuple[float, float, float, float]] = field(default_factory=list)  # execlib's log line
    reload_lines: int = 0
    note: str | None = None


@dataclass
class Result:
    name: str
    error: str | None = None
    cells: dict[str, Cell] = field(default_factory=dict)
    reopened: int = 0  # execlib: pages without a live-reload socket, opened again
    log_note: str | None = None


@dataclass
class Nav:
    """One main-frame navigation as Playwright reported it."""

    kind: str  # "app", "error" or "aborted"
    detail: str


@dataclass
class Served:
    """A running server, its app folder, its browser tab and what the tab saw."""

    name: str
    folder: Path
    url: str
    proc: subprocess.Popen[str]
    log: Path
    result: Result
    page: Any = None
    version: int = 0
    navs: list[Nav] = field(default_factory=list)
    log_offset: int = 0
    misses: int = 0
    next_at: float = 0.0
    pending: tuple[Cell, int, int] | None = None  # the last change's cell and nav/load counts before it

    @property
    def live(self) -> bool:
        return self.name == "execlib"


def free_port() -> int:
    # uvicorn does not report a port it picked itself; another process could take this one first.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def popen(argv: list[str], cwd: Path, log: Path, *, stdout_pipe: bool = False) -> subprocess.Popen[str]:
    with log.open("w") as sink:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE if stdout_pipe else sink,
            stderr=sink,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )


def stop(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            # The leader is gone; a worker of its group may not be.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    if proc.stdout is not None:
        proc.stdout.close()


def tail(log: Path, lines: int = 1) -> str:
    try:
        found = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(line[:160] for line in found[-lines:])


def wait_http(url: str, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited with {proc.returncode}: {tail(log, 2)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.05)  # polling interval, bounded by the deadline
    raise StartError(f"{url} did not answer 200 within {START_TIMEOUT_S:.0f} s: {tail(log)}")


def first_line(proc: subprocess.Popen[str], copy: Path, timeout: float) -> str:
    """The child's first stdout line, read on a thread (which then keeps draining the pipe into ``copy``)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        try:
            with copy.open("w") as sink:
                for line in proc.stdout:
                    lines.put(line)
                    sink.write(line)
                    sink.flush()
        except (OSError, ValueError):
            pass  # pipe closed by stop()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return lines.get(timeout=0.1)
        except queue.Empty:
            if proc.poll() is not None and lines.empty():
                raise StartError(f"exited with {proc.returncode} before its start line") from None
    raise StartError(f"printed nothing within {timeout:.0f} s")


def url_of(line: str) -> str | None:
    try:
        url = json.loads(line).get("url")
        if isinstance(url, str) and url.startswith("http://"):
            return url.rstrip("/") + "/"
    except (ValueError, AttributeError):
        pass
    match = URL_IN_LINE.search(line)
    return match.group(0) if match else None


def start_execlib(folder: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "execlib", "serve", "--app", "main:app", "--host", HOST, "--port", "0"]
    argv += ["--no-config", "--banner", "json"]
    proc = popen(argv, folder, log, stdout_pipe=True)
    try:
        try:
            line = first_line(proc, log.with_name("stdout.log"), START_TIMEOUT_S)
        except StartError:
            if proc.poll() is not None:
                raise StartError(f"exited with {proc.returncode}: {tail(log, 2)}") from None
            raise
        url = url_of(line)
        if url is None:
            raise StartError(f"no URL in its first line {line.strip()[:120]!r}")
        wait_http(url, proc, log)
        return proc, url
    except BaseException:
        stop(proc)
        raise


def start_uvicorn(folder: Path, log: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "main:app", "--reload", *extra, "--host", HOST, "--port", str(port)]
    proc = popen(argv, folder, log)
    url = f"http://{HOST}:{port}/"
    try:
        wait_http(url, proc, log)
        return proc, url
    except BaseException:
        stop(proc)
        raise


STARTERS: dict[str, Callable[[Path, Path], tuple[subprocess.Popen[str], str]]] = {
    "execlib": start_execlib,
    "uvicorn": start_uvicorn,
    # its fastest setting: no pause of the reloader's loop between checks (0.25 s by default)
    "uvicorn-delay0": lambda folder, log: start_uvicorn(folder, log, ("--reload-delay", "0")),
}


@contextmanager
def servers(names: list[str], tmp: Path) -> Iterator[tuple[list[Served], list[Result]]]:
    """Start each server on its own copy of the app; yields the running ones and all results."""
    running: list[Served] = []
    results: list[Result] = []
    try:
        for name in names:
            result = Result(name)
            results.append(result)
            folder = tmp / name / "app"
            folder.mkdir(parents=True)
            (folder / "main.py").write_text(app_text(0), encoding="utf-8")
            log = tmp / name / "stderr.log"
            print(f"  starting {LABELS[name]} ...", flush=True)
            try:
                proc, url = STARTERS[name](folder, log)
            except (StartError, OSError, subprocess.SubprocessError) as exc:
                result.error = f"could not start: {exc}"
                continue
            running.append(Served(name, folder, url, proc, log, result))
        yield running, results
    finally:
        for served in running:
            stop(served.proc)


# -- the page ---------------------------------------------------------------------------------


def storage(page: Any) -> dict[str, str]:
    """The tab's sessionStorage; empty while a navigation replaces the document."""
    try:
        return dict(page.evaluate(STORAGE_JS))
    except Exception:  # playwright raises its own Error types mid-navigation
        return {}


def poll(page: Any, check: Callable[[], Any], timeout: float, interval_ms: float = 20.0) -> Any:
    """Call ``check`` until it returns something true or the deadline passes. The pauses are the
    page's own ``wait_for_timeout``, so Playwright's events keep being handled meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        try:
            page.wait_for_timeout(interval_ms)
        except Exception:
            time.sleep(interval_ms / 1000)  # polling interval, bounded by the deadline


def loads(page: Any) -> int:
    return int(storage(page).get("loads") or 0)


def watch_navigations(served: Served) -> None:
    """Record every main-frame navigation of the tab: the app's page, an error page, or aborted."""
    page = served.page

    def main_frame(request: Any) -> bool:
        try:
            return bool(request.is_navigation_request()) and request.frame == page.main_frame
        except Exception:
            return False

    def on_response(response: Any) -> None:
        if not main_frame(response.request):
            return
        status = response.status
        if status == 200 and "x-bench-version" in response.headers:
            served.navs.append(Nav("app", "200"))
        else:
            served.navs.append(Nav("error", f"HTTP {status}" + ("" if status != 200 else " (not the app's page)")))

    def on_failed(request: Any) -> None:
        if not main_frame(request):
            return
        failure = str(request.failure or "failed")
        served.navs.append(Nav("aborted" if "ERR_ABORTED" in failure else "error", failure))

    page.on("response", on_response)
    page.on("requestfailed", on_failed)


def open_page(browser: Any, served: Served) -> None:
    context = browser.new_context()
    context.add_init_script(WS_PROBE)
    served.page = context.new_page()
    watch_navigations(served)
    served.page.goto(served.url)
    if not poll(served.page, lambda: storage(served.page).get("shown:0"), VISIBLE_TIMEOUT_S):
        raise TimeoutError("the page did not show version 0")


def is_ready(page: Any) -> bool:
    try:
        return bool(page.evaluate(READY_JS))
    except Exception:
        return False


def quiet(served: Served) -> None:
    """execlib: wait (within a deadline) until the page has not loaded for QUIET_S and its socket is greeted."""
    deadline = time.monotonic() + READY_TIMEOUT_S + QUIET_S
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = loads(served.page) + len(served.navs)
        if now_count != count:
            count, since = now_count, time.monotonic()
        elif time.monotonic() - since >= QUIET_S and is_ready(served.page):
            return
        served.page.wait_for_timeout(50)  # polling interval, bounded by the deadline
    if is_ready(served.page):
        return  # loads kept coming until the deadline: go on, the table's loads/change shows it
    # No live-reload socket: open the page again, once, and count it, as a user would have to.
    served.result.reopened += 1
    try:
        served.page.goto(served.url)
    except Exception:
        pass
    poll(served.page, lambda: is_ready(served.page), READY_TIMEOUT_S)


def clock_offset(page: Any, samples: int = 15) -> tuple[float, float]:
    """The page's wall clock minus Python's (ms), from the sample with the shortest round trip."""
    best = (math.inf, 0.0)
    for _ in range(samples):
        before = time.time() * 1000
        inside = float(page.evaluate("() => performance.timeOrigin + performance.now()"))
        after = time.time() * 1000
        best = min(best, (after - before, inside - (before + after) / 2))
    return best[1], best[0]


# -- changes ----------------------------------------------------------------------------------


def read_reload_lines(served: Served) -> list[tuple[float, float, float, float]]:
    """execlib's reload lines written since the last call: (answered, start-up, first answer, old stopped)."""
    try:
        with served.log.open("rb") as source:
            source.seek(served.log_offset)
            data = source.read()
    except OSError:
        return []
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    served.log_offset += end
    found = []
    for line in data[:end].decode("utf-8", "replace").splitlines():
        match = RELOADED.search(line)
        if match:
            found.append((float(match[2]), float(match[3]), float(match[4]), float(match[5])))
    return found


def close_pending(served: Served) -> None:
    """File what happened since the last change's save into its cell: navigations, loads, log lines."""
    lines = read_reload_lines(served) if served.live else []
    if served.pending is None:
        return
    cell, navs_before, loads_before = served.pending
    served.pending = None
    for nav in served.navs[navs_before:]:
        cell.navigations += 1
        if nav.kind == "error":
            cell.error_pages += 1
            cell.error_kinds[nav.detail] += 1
        elif nav.kind == "aborted":
            cell.aborted += 1
    cell.loads += max(0, loads(served.page) - loads_before)
    cell.reload_lines += len(lines)
    cell.reloads.extend(lines)


def prepare(served: Served) -> None:
    pause = served.next_at - time.monotonic()
    if pause > 0:
        served.page.wait_for_timeout(pause * 1000)
    if served.live:
        quiet(served)
    close_pending(served)


def press_f5_until(served: Served, key: str, deadline: float) -> tuple[str | None, int]:
    """uvicorn: reload the page until it shows ``key``'s version; returns its stamp and the presses."""
    presses = 0
    while time.monotonic() < deadline:
        presses += 1
        timeout = max(1.0, min(NAV_TIMEOUT_MS, (deadline - time.monotonic()) * 1000))
        try:
            served.page.reload(wait_until="load", timeout=timeout)
        except Exception:  # an error page (counted by the navigation events) or a timeout
            pass
        shown = storage(served.page).get(key)
        if shown:
            return shown, presses
        served.page.wait_for_timeout(F5_PAUSE_S * 1000)
    return None, presses


def change(served: Served, writer: str, cell: Cell | None) -> None:
    """One change: save the next version, wait until the page shows it, file the figures (when measured)."""
    prepare(served)
    served.version += 1
    key = f"shown:{served.version}"
    if cell is not None:
        served.pending = (cell, len(served.navs), loads(served.page))
    mtime = save(served.folder / "main.py", app_text(served.version), writer)
    deadline = time.monotonic() + VISIBLE_TIMEOUT_S
    if served.live:
        shown = poll(served.page, lambda: storage(served.page).get(key), VISIBLE_TIMEOUT_S)
        presses = 0
    else:
        shown, presses = press_f5_until(served, key, deadline)
    served.next_at = time.monotonic() + random.uniform(0, JITTER_S)
    if shown is None:
        served.misses += 1
        if cell is not None:
            cell.measured += 1
            cell.missed += 1
            cell.presses += presses
        if served.misses >= MISSES_IN_A_ROW:
            raise TimeoutError(f"{MISSES_IN_A_ROW} changes in a row not visible within {VISIBLE_TIMEOUT_S:.0f} s")
        # Show the current version again before the next change, as a user would.
        served.page.goto(served.url, timeout=NAV_TIMEOUT_MS)
        return
    served.misses = 0
    if cell is None:
        return
    cell.measured += 1
    cell.presses += presses
    landed = mtime / 1e6
    cell.visible.append(float(shown) - landed)
    navigation = storage(served.page).get(f"nav:{served.version}")
    if navigation:
        cell.to_navigation.append(float(navigation) - landed)


def measure(running: list[Served], writers: list[str], args: argparse.Namespace) -> None:
    """Per writer: ``warmup + changes`` rounds; in each round every server takes one change."""
    for writer in writers:
        print(f"  {writer}: {args.warmup} warm-up + {args.changes} changes per server ...", flush=True)
        for served in running:
            served.result.cells[writer] = Cell()
        for round_ in range(args.warmup + args.changes):
            order = running if round_ % 2 == 0 else running[::-1]
            for served in order:
                if served.result.error:
                    continue
                cell = served.result.cells[writer] if round_ >= args.warmup else None
                try:
                    change(served, writer, cell)
                except Exception as exc:  # a timeout, or the server or the browser failing: stop this one
                    served.result.error = f"{type(exc).__name__}: {exc}"[:300]
        for served in running:  # the last change's late error pages and log lines
            if not served.result.error:
                try:
                    prepare(served)
                except Exception as exc:
                    served.result.error = f"{type(exc).__name__}: {exc}"[:300]


def run(args: argparse.Namespace, notes: list[str]) -> list[Result]:
    from playwright.sync_api import sync_playwright

    made_work = not WORK.exists()
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="app-reload-", dir=WORK) as tmp_name:
            tmp = Path(tmp_name)
            with servers(args.only, tmp) as (running, results), sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    notes.append(f"Chromium {browser.version}")
                    opened = []
                    for served in running:
                        try:
                            open_page(browser, served)
                            if served.live:
                                quiet(served)
                            opened.append(served)
                        except Exception as exc:
                            served.result.error = f"could not open the page: {exc}"[:300]
                    if opened:
                        offset, rtt = clock_offset(opened[0].page)
                        notes.append(
                            f"page clock - Python clock = {offset:+.1f} ms (round trip {rtt:.1f} ms); not corrected"
                        )
                    measure(opened, args.writers, args)
                finally:
                    browser.close()
                for served in running:
                    describe_log(served)
    finally:
        if made_work:
            try:
                WORK.rmdir()  # only when empty: another benchmark may keep its tools there
            except OSError:
                pass
    return results


def describe_log(served: Served) -> None:
    """What the servers' own logs say beyond the figures: uvicorn's reloader, execlib's reload lines."""
    try:
        text = served.log.read_text(errors="replace")
    except OSError:
        return
    if served.name.startswith("uvicorn"):
        match = re.search(r"Started reloader process \[\d+\] using (\w+)", text)
        served.result.log_note = f"uvicorn's reloader: {match.group(1) if match else 'not named in its log'}"
    elif not RELOADED.search(text):
        last = tail(served.log)
        said = "execlib logged no 'app reloaded: ...' line"
        served.result.log_note = said + (f" (last line: {last})" if last else "")


# -- report -----------------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def fig(values: list[float], how: Callable[[list[float]], float]) -> str:
    return f"{how(values):.1f}" if values else "-"


def per_change(value: int, cell: Cell) -> str:
    return f"{value / cell.measured:.2f}" if cell.measured else "-"


def print_table(results: list[Result], args: argparse.Namespace, notes: list[str]) -> None:
    print()
    print(
        "save -> new version visible in Chromium: ms from main.py's st_mtime_ns to the in-page stamp of the first"
        " page load showing it;"
    )
    print(
        f"{args.changes} changes per writer and server ({args.warmup} warm-up dropped); 'to nav' = median mtime ->"
        " that load's navigation start;"
    )
    print(
        "loads = the app's page loads per change (uvicorn: each one an F5 press), error pages = navigations that"
        " were not the app's 200 page"
    )
    header = (
        f"{'writer':<8} {'server':<25} {'median':>8} {'p90':>8} {'min':>8} {'max':>8} {'to nav':>8}"
        f" {'missed':>7} {'error pages':>12} {'loads/change':>13}"
    )
    print(header)
    print("-" * len(header))
    for writer in args.writers:
        for r in results:
            cell = r.cells.get(writer)
            if cell is None:
                print(f"{writer:<8} {LABELS[r.name]:<25} {r.error or 'not measured'}")
                continue
            v = cell.visible
            print(
                f"{writer:<8} {LABELS[r.name]:<25} {fig(v, statistics.median):>8} {fig(v, p90):>8} {fig(v, min):>8}"
                f" {fig(v, max):>8} {fig(cell.to_navigation, statistics.median):>8} {cell.missed:>7}"
                f" {cell.error_pages:>12} {per_change(cell.loads, cell):>13}"
            )
    print()
    for r in results:
        for writer, cell in r.cells.items():
            if cell.error_kinds:
                kinds = ", ".join(f"{kind} x{n}" for kind, n in cell.error_kinds.most_common())
                print(f"error pages [{writer}] {LABELS[r.name]}: {kinds}")
            if cell.aborted:
                print(f"aborted navigations [{writer}] {LABELS[r.name]} (not counted as error pages): {cell.aborted}")
            if r.name.startswith("uvicorn") and cell.measured:
                print(
                    f"F5 presses [{writer}] {LABELS[r.name]}: {per_change(cell.presses, cell)} per change"
                    f" ({F5_PAUSE_S * 1000:.0f} ms pause between presses)"
                )
        if r.reopened:
            print(f"{LABELS[r.name]}: pages opened again for want of a live-reload socket: {r.reopened}")
        if r.error:
            print(f"{LABELS[r.name]}: stopped early: {r.error}")
    print_execlib_log(results)
    print_goals(results, args)
    for r in results:
        if r.log_note:
            print(f"note: {r.log_note}")
    for note in notes:
        print(f"note: {note}")
    print()


def print_execlib_log(results: list[Result]) -> None:
    ours = next((r for r in results if r.name == "execlib"), None)
    if ours is None:
        return
    for writer, cell in ours.cells.items():
        if not cell.reloads:
            print(
                f"execlib's own log [{writer}]: no 'app reloaded: ...' line for the {cell.measured} measured"
                " change(s); worker restart times not available"
            )
            continue
        columns = list(zip(*cell.reloads, strict=True))
        answered, startup, first, stopped = (statistics.median(c) for c in columns)
        print(
            f"execlib's own log [{writer}]: {cell.reload_lines} reload line(s) for {cell.measured} measured changes;"
            f" medians: answered {answered:.1f} ms after the change; start-up (import + lifespan) {startup:.1f} ms;"
            f" first answer {first:.1f} ms; old workers stopped in {stopped:.1f} ms"
        )


def print_goals(results: list[Result], args: argparse.Namespace) -> None:
    ours = next((r for r in results if r.name == "execlib"), None)
    peers = [r for r in results if r.name.startswith("uvicorn")]
    if ours is None:
        return
    print()
    for writer in args.writers:
        cell = ours.cells.get(writer)
        if cell is None or not cell.visible:
            print(f"goal [{writer}]: not measured for execlib{f' ({ours.error})' if ours.error else ''}")
            continue
        mine = statistics.median(cell.visible)
        complete = not cell.missed and cell.measured == args.changes and not ours.error
        measured_peers = [(p, p.cells.get(writer)) for p in peers]
        measured_peers = [(p, c) for p, c in measured_peers if c is not None and c.visible]
        for peer, other in measured_peers:
            theirs = statistics.median(other.visible)
            met = mine <= theirs + GOAL_SLACK_MS and complete
            print(
                f"goal [{writer}]: execlib median {mine:.1f} ms <= {LABELS[peer.name]} median {theirs:.1f}"
                f" + {GOAL_SLACK_MS:.0f} ms (difference {mine - theirs:+.1f} ms, ratio {mine / theirs:.2f}):"
                f" {'met' if met else 'NOT met'}"
                + ("" if complete else f" ({cell.missed} missed, {cell.measured}/{args.changes} made)")
            )
        if not measured_peers:
            print(f"goal [{writer}]: median against uvicorn not measured (uvicorn has no figures)")
        met = cell.error_pages == 0 and complete
        print(
            f"goal [{writer}]: zero error pages for execlib over {cell.measured} restarts ({cell.error_pages}):"
            f" {'met' if met else 'NOT met'}"
        )


def versions() -> str:
    found = []
    for name in ("execlib", "fastapi", "uvicorn", "watchfiles", "playwright"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=20, help="measured changes per writer and server (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="changes dropped first, per writer (default 1)")
    parser.add_argument("--only", default=",".join(SERVERS), help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument(
        "--writers", default="rename", help=f"comma-separated subset of {','.join(WRITERS)} (default rename)"
    )
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SERVERS))
    if unknown or not args.only:
        parser.error(f"--only: unknown server {', '.join(unknown) or '(none)'}; choose from {', '.join(SERVERS)}")
    args.writers = [name.strip() for name in args.writers.split(",") if name.strip()]
    unknown = sorted(set(args.writers) - set(WRITERS))
    if unknown or not args.writers:
        parser.error(f"--writers: unknown writer {', '.join(unknown) or '(none)'}; choose from {', '.join(WRITERS)}")
    if args.changes < 1 or args.warmup < 0:
        parser.error("--changes must be at least 1, --warmup at least 0")
    return args


def on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: servers and browser stopped


def main() -> int:
    args = parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"app_reload: Chromium not found at {CHROMIUM}; apt-get install chromium", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    started, load = time.monotonic(), os.getloadavg()
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    notes = [versions()]
    results = run(args, notes)
    end = os.getloadavg()
    notes.append(
        f"whole run {time.monotonic() - started:.0f} s; load average {load[0]:.2f} at the start, {end[0]:.2f} at the"
        f" end ({os.cpu_count()} CPUs): other work on the machine skews figures"
    )
    print_table(results, args, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
