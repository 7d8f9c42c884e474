"""Live-reload benchmark: file write to change visible in Chromium, execlib vs python-livereload vs live-server.

Run:  python benchmarks/reload_latency.py [--changes 20] [--only execlib,livereload,live-server]

Each server serves its own copy of the same small site (a page with a stylesheet and a
second, untouched page) from a temp folder, on 127.0.0.1, in the same run:

- **execlib**: ``python -m execlib serve DIR --port 0 -q``;
- **livereload**: python-livereload (``pip install livereload``), ``Server().watch(DIR)``
  and ``serve(root=DIR)``, in a child process;
- **live-server**: npm ``live-server``, installed into ``benchmarks/.work`` when missing.

The figures:

- HTML: the page's new HTML has an inline script that stores ``performance.timeOrigin +
  performance.now()`` (wall-clock ms) in sessionStorage when it runs; compared with
  ``time.time()`` taken right before the write.
- CSS: a ``requestAnimationFrame`` watcher in the page stores the wall-clock time at which
  the computed colour of an element first shows each colour; each change writes a new colour.
  The watcher is armed just before the write and stops once the colour shows (it restarts by
  itself if the page reloads), so idle tabs run no frame loop.
  A sessionStorage load counter tells whether the page reloaded meanwhile.
- Edits 0.3 s apart: ``--burst`` HTML edits 0.3 s apart; how many versions ever ran on the page.
- Untouched page: a second page in another tab counts its loads during the HTML and CSS changes.

Changes are interleaved across servers (one change each per round). Before each change the
page's live-reload socket must be open and greeted, and the server's previous change visible;
python-livereload also gets 3.2 s of quiet since its last change, because it ignores changes
made within 3 s of its last reload. Every wait has a deadline; a change not visible in time
counts as missed. Everything started is stopped on the way out, errors included.

Needs Debian's chromium (/usr/bin/chromium), playwright (Python package only), node and npm.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
LIVE_SERVER_BIN = WORK / "node_modules" / ".bin" / "live-server"
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
SERVERS = ("execlib", "livereload", "live-server")
VISIBLE_TIMEOUT_S = 8.0  # a change not visible by then counts as missed
START_TIMEOUT_S = 30.0
LIVERELOAD_QUIET_S = 3.2  # python-livereload ignores changes within 3 s of its last reload
QUIET_S = 0.1  # others: let the previous page finish loading
# A random wait before each change, so writes do not fall at one phase of a peer's polling
# (python-livereload polls every 0.8 s when pyinotify is not installed).
JITTER_S = 0.8
BURST_SPACING_S = 0.3
GOALS = {"html": 60.0, "css": 40.0}

# Counts every WebSocket the page opens and the messages it gets, so readiness (socket open and
# greeted by the server) is checked the same way for all three clients.
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
ARM_JS = "color => { sessionStorage.setItem('armed', color); window.__benchWatch(); }"

PAGE_SCRIPT = """<script>
(function () {
  var s = sessionStorage;
  var now = performance.timeOrigin + performance.now();
  s.setItem("loads", String(Number(s.getItem("loads") || 0) + 1));
  if (!s.getItem("html:%(version)s")) {
    s.setItem("html:%(version)s", String(now));
    s.setItem("nav:%(version)s", String(performance.timeOrigin));
  }
  var probe = document.getElementById("probe");
  // Runs only while a CSS change is awaited ("armed" holds the colour), so idle tabs cost nothing.
  function watch() {
    var want = s.getItem("armed");
    if (!want) return;
    var color = getComputedStyle(probe).color;
    if (!s.getItem("css:" + color)) s.setItem("css:" + color, String(performance.timeOrigin + performance.now()));
    if (color === want) s.removeItem("armed");
    else requestAnimationFrame(watch);
  }
  window.__benchWatch = function () { requestAnimationFrame(watch); };
  window.__benchWatch();
})();
</script>"""


def page_html(version: str) -> str:
    """The measured page: a stylesheet, a probe element, and the stamp/watcher script last."""
    script = PAGE_SCRIPT % {"version": version}
    return (
        "<!doctype html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>Benchmark page</title>\n"
        "<link rel='stylesheet' href='style.css'>\n</head>\n<body>\n"
        f"<h1 id='probe'>Version {version}</h1>\n<p>A small page, edited by the benchmark.</p>\n"
        f"{script}\n</body>\n</html>\n"
    )


OTHER_HTML = """<!doctype html>
<html lang='en'>
<head><meta charset='utf-8'><title>Untouched page</title></head>
<body>
<p>This page is never edited.</p>
<script>sessionStorage.setItem("loads", String(Number(sessionStorage.getItem("loads") || 0) + 1));</script>
</body>
</html>
"""


def css_text(color: str) -> str:
    return f"body {{ font-family: sans-serif; }}\n#probe {{ color: {color}; }}\n"


def color_for(n: int) -> str:
    """A distinct computed-style colour for change ``n`` (as Chromium serializes it)."""
    return f"rgb({n % 250 + 1}, {n // 250 % 250}, 128)"


def make_site(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "index.html").write_text(page_html("initial"), encoding="utf-8")
    (folder / "other.html").write_text(OTHER_HTML, encoding="utf-8")
    (folder / "style.css").write_text(css_text("rgb(0, 0, 0)"), encoding="utf-8")


# -- servers -------------------------------------------------------------------------------


class StartError(RuntimeError):
    """A peer that could not be installed or started; reported in the table, not raised further."""


@dataclass
class Result:
    """One server's figures (ms) and counts."""

    name: str
    error: str | None = None
    html: list[float] = field(default_factory=list)
    css: list[float] = field(default_factory=list)
    to_navigation: list[float] = field(default_factory=list)  # HTML: write to the new page's timeOrigin
    html_missed: int = 0
    css_missed: int = 0
    css_reloads: int | None = None
    burst_shown: int | None = None
    untouched_reloads: int | None = None


@dataclass
class Served:
    """A running server, its site folder, and the browser tabs on it."""

    name: str
    site: Path
    url: str
    proc: subprocess.Popen[str]
    quiet_s: float
    result: Result
    page: Any = None
    other: Any = None
    last_visible: float = 0.0
    changes: int = 0


def free_port() -> int:
    # The peers do not report a port they picked themselves; another process could take it first.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def popen(argv: list[str], log: Path, *, stdout_pipe: bool = False) -> subprocess.Popen[str]:
    with log.open("w") as sink:
        return subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if stdout_pipe else sink,
            stderr=sink,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group, so stopping it stops its children too
        )


def stop(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
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


def tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:100] if lines else ""


def wait_http(url: str, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited with {proc.returncode}: {tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling interval, bounded by the deadline
    raise StartError(f"{url} did not answer within {START_TIMEOUT_S:.0f} s")


def first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, read on a thread (which then keeps draining the pipe)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                lines.put(line)
        except (OSError, ValueError):
            pass  # pipe closed by stop()

    threading.Thread(target=pump, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise StartError(f"printed nothing within {timeout:.0f} s") from None


def start_execlib(site: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "execlib", "serve", str(site), "--port", "0", "-q"]
    proc = popen(argv, log, stdout_pipe=True)
    try:
        line = first_line(proc, START_TIMEOUT_S)
        match = re.search(r" at (http://\S+)", line)
        if not match:
            raise StartError(f"unexpected first line {line.strip()!r}")
        url = match.group(1).rstrip("/") + "/"
        wait_http(url, proc, log)
        return proc, url
    except BaseException:
        stop(proc)
        raise


LIVERELOAD_SCRIPT = """import sys
from livereload import Server
root, port = sys.argv[1], int(sys.argv[2])
server = Server()
server.watch(root)
server.serve(root=root, host="127.0.0.1", port=port)
"""


def start_livereload(site: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    check = subprocess.run([sys.executable, "-c", "import livereload"], capture_output=True, timeout=30)
    if check.returncode != 0:
        raise StartError("not installed: pip install livereload")
    script = site.parent / "livereload_serve.py"
    script.write_text(LIVERELOAD_SCRIPT, encoding="utf-8")
    port = free_port()
    proc = popen([sys.executable, str(script), str(site), str(port)], log)
    url = f"http://{HOST}:{port}/"
    try:
        wait_http(url, proc, log)
        return proc, url
    except BaseException:
        stop(proc)
        raise


def ensure_live_server() -> Path:
    if LIVE_SERVER_BIN.exists():
        return LIVE_SERVER_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise StartError("npm not found; install node and npm")
    WORK.mkdir(parents=True, exist_ok=True)
    print("installing live-server into benchmarks/.work ...", flush=True)
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(WORK), "live-server"], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        raise StartError("npm install live-server timed out") from None
    if done.returncode != 0 or not LIVE_SERVER_BIN.exists():
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise StartError(f"npm install live-server failed: {lines[-1][:100] if lines else done.returncode}")
    return LIVE_SERVER_BIN


def start_live_server(site: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    binary = ensure_live_server()
    port = free_port()
    argv = [str(binary), str(site), "--no-browser", f"--host={HOST}", f"--port={port}", "--quiet"]
    proc = popen(argv, log)
    url = f"http://{HOST}:{port}/"
    try:
        wait_http(url, proc, log)
        return proc, url
    except BaseException:
        stop(proc)
        raise


STARTERS: dict[str, Callable[[Path, Path], tuple[subprocess.Popen[str], str]]] = {
    "execlib": start_execlib,
    "livereload": start_livereload,
    "live-server": start_live_server,
}


@contextmanager
def servers(names: list[str], tmp: Path) -> Iterator[tuple[list[Served], list[Result]]]:
    """Start each server on its own copy of the site; yields the running ones and all results."""
    running: list[Served] = []
    results: list[Result] = []
    try:
        for name in names:
            result = Result(name)
            results.append(result)
            site = tmp / name / "site"
            make_site(site)
            try:
                proc, url = STARTERS[name](site, tmp / name / "server.log")
            except (StartError, OSError, subprocess.SubprocessError) as exc:
                result.error = f"could not start: {exc}"
                continue
            quiet = LIVERELOAD_QUIET_S if name == "livereload" else QUIET_S
            running.append(Served(name, site, url, proc, quiet, result))
        yield running, results
    finally:
        for served in running:
            stop(served.proc)


# -- the page ------------------------------------------------------------------------------


def storage(page: Any) -> dict[str, str]:
    """The tab's sessionStorage; empty while a navigation replaces the document."""
    try:
        return dict(page.evaluate(STORAGE_JS))
    except Exception:  # playwright raises its own Error types mid-navigation
        return {}


def poll(check: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)  # polling interval, bounded by the deadline


def is_ready(page: Any) -> bool:
    try:
        return bool(page.evaluate(READY_JS))
    except Exception:
        return False


def loads(page: Any) -> int:
    got = poll(lambda: storage(page).get("loads"), VISIBLE_TIMEOUT_S)
    return int(got or 0)


def prepare(served: Served) -> None:
    """Wait for the server's previous change to settle and for the page's socket to be greeted."""
    pause = served.last_visible + served.quiet_s + random.uniform(0, JITTER_S) - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    if not poll(lambda: is_ready(served.page), VISIBLE_TIMEOUT_S):
        raise TimeoutError(f"{served.name}: the page's live-reload socket did not connect")


def shown_at(page: Any, key: str, timeout: float) -> float | None:
    value = poll(lambda: storage(page).get(key), timeout)
    return float(value) if value else None


def change(served: Served, kind: str) -> tuple[float, float | None] | None:
    """Make one HTML or CSS change; returns write-to-visible ms, or None when it never showed.

    For HTML, also the part up to the new document's navigation start (its ``timeOrigin``).
    """
    prepare(served)
    served.changes += 1
    if kind == "html":
        version = f"v{served.changes}x{time.time_ns()}"
        key, path, text = f"html:{version}", served.site / "index.html", page_html(version)
    else:
        color = color_for(served.changes)
        key, path, text = f"css:{color}", served.site / "style.css", css_text(color)
        served.page.evaluate(ARM_JS, color)
    before = time.time() * 1000
    path.write_text(text, encoding="utf-8")
    shown = shown_at(served.page, key, VISIBLE_TIMEOUT_S)
    served.last_visible = time.monotonic()
    if shown is None:
        return None
    navigation = storage(served.page).get(key.replace("html:", "nav:", 1)) if kind == "html" else None
    return shown - before, (float(navigation) - before if navigation else None)


def clock_offset(page: Any, samples: int = 15) -> tuple[float, float]:
    """The page's wall clock minus Python's (ms), from the sample with the shortest round trip."""
    best = (math.inf, 0.0)
    for _ in range(samples):
        before = time.time() * 1000
        inside = float(page.evaluate("() => performance.timeOrigin + performance.now()"))
        after = time.time() * 1000
        best = min(best, (after - before, inside - (before + after) / 2))
    return best[1], best[0]


# -- phases ---------------------------------------------------------------------------------


def measure_changes(running: list[Served], kind: str, count: int, warmup: int) -> None:
    """Interleaved rounds: one change per server per round; the first ``warmup`` are dropped."""
    for round_no in range(warmup + count):
        for served in running:
            if served.result.error:
                continue
            try:
                took = change(served, kind)
            except Exception as exc:  # a timeout, or the browser or server failing: stop this one only
                served.result.error = f"{type(exc).__name__}: {exc}"[:200]
                continue
            if round_no < warmup:
                continue
            if took is None:
                setattr(served.result, f"{kind}_missed", getattr(served.result, f"{kind}_missed") + 1)
                continue
            getattr(served.result, kind).append(took[0])
            if took[1] is not None:
                served.result.to_navigation.append(took[1])


def measure_burst(served: Served, edits: int) -> int:
    """``edits`` HTML edits ``BURST_SPACING_S`` apart; how many versions ever ran on the page."""
    served.last_visible = time.monotonic()
    served.quiet_s = LIVERELOAD_QUIET_S  # the same clean start for every server
    prepare(served)
    versions = [f"b{i}x{time.time_ns()}" for i in range(edits)]
    start = time.monotonic()
    for i, version in enumerate(versions):
        time.sleep(max(0.0, start + i * BURST_SPACING_S - time.monotonic()))
        (served.site / "index.html").write_text(page_html(version), encoding="utf-8")
    shown_at(served.page, f"html:{versions[-1]}", 4.0)
    time.sleep(0.5)  # a late reload of an earlier version would still count
    seen = storage(served.page)
    served.last_visible = time.monotonic()
    return sum(f"html:{version}" in seen for version in versions)


def open_pages(browser: Any, running: list[Served]) -> list[Served]:
    """Open the untouched page, then the measured one, in a context per server; returns those that opened."""
    opened = []
    for served in running:
        try:
            context = browser.new_context()
            context.add_init_script(WS_PROBE)
            served.other = context.new_page()
            served.other.goto(served.url + "other.html")
            served.page = context.new_page()
            served.page.goto(served.url + "index.html")
        except Exception as exc:  # playwright's own Error types
            served.result.error = f"could not open its pages: {exc}"[:200]
            continue
        opened.append(served)
    return opened


def run(args: argparse.Namespace) -> tuple[list[Result], list[str]]:
    from playwright.sync_api import sync_playwright

    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="execlib-reload-bench-") as tmp,
        servers(args.only, Path(tmp)) as (running, results),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            notes.append(f"Chromium {browser.version}")
            running = open_pages(browser, running)
            time.sleep(LIVERELOAD_QUIET_S)  # python-livereload's start-up reload comes and goes
            if running:
                offset, rtt = clock_offset(running[0].page)
                notes.append(f"page clock - Python clock = {offset:+.1f} ms (round trip {rtt:.1f} ms); not corrected")
            hidden = [s.name for s in running if s.page.evaluate("document.visibilityState") != "visible"]
            if hidden:
                notes.append(f"measured page hidden for {', '.join(hidden)}: rAF may be throttled")
            untouched = {s.name: loads(s.other) for s in running}
            for kind in ("html", "css"):
                before = {s.name: loads(s.page) for s in running}
                measure_changes(running, kind, args.changes, args.warmup)
                if kind == "css":
                    for served in running:
                        served.result.css_reloads = loads(served.page) - before[served.name]
            for served in running:
                served.result.untouched_reloads = loads(served.other) - untouched[served.name]
            for served in running:
                if not served.result.error:
                    try:
                        served.result.burst_shown = measure_burst(served, args.burst)
                    except Exception as exc:  # as in measure_changes: stop this one only
                        served.result.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            browser.close()
    return results, notes


# -- report ---------------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def figures(values: list[float], missed: int) -> tuple[str, str]:
    if not values:
        return "-", "-"
    median = f"{statistics.median(values):.1f}"
    return (median + (f" ({missed} missed)" if missed else "")), f"{p90(values):.1f}"


def count(value: int | None, of: int | None = None) -> str:
    if value is None:
        return "-"
    return f"{value}/{of}" if of is not None else str(value)


def print_table(results: list[Result], notes: list[str], args: argparse.Namespace) -> None:
    print()
    print(f"file write -> change visible in Chromium (ms, wall clock stamped in the page); {args.changes} changes each")
    print(
        f"({args.warmup} warm-up change(s) dropped), servers interleaved; edits {BURST_SPACING_S} s apart: {args.burst}"
    )
    header = (
        f"{'server':<12} {'HTML median':>18} {'HTML p90':>9} {'CSS median':>18} {'CSS p90':>8}"
        f" {'CSS reloads':>12} {'0.3s edits shown':>17} {'untouched reloads':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error and not r.html:
            print(f"{r.name:<12} {r.error}")
            continue
        html_median, html_p90 = figures(r.html, r.html_missed)
        css_median, css_p90 = figures(r.css, r.css_missed)
        print(
            f"{r.name:<12} {html_median:>18} {html_p90:>9} {css_median:>18} {css_p90:>8}"
            f" {count(r.css_reloads):>12} {count(r.burst_shown, args.burst):>17} {count(r.untouched_reloads):>18}"
        )
        if r.error:
            print(f"{'':<12} stopped early: {r.error}")
    print()
    print_split(results)
    print_ratios(results)
    print_goals(results, args)
    for note in notes:
        print(f"note: {note}")
    print()


def print_split(results: list[Result]) -> None:
    """Where HTML time goes: up to the reload's navigation start (server and client), then the page load."""
    for r in results:
        if r.html and r.to_navigation:
            to_nav = statistics.median(r.to_navigation)
            print(
                f"HTML split {r.name}: write -> navigation start {to_nav:.1f} ms (median),"
                f" median total - that = {statistics.median(r.html) - to_nav:.1f} ms (page load)"
            )


def print_ratios(results: list[Result]) -> None:
    ours = next((r for r in results if r.name == "execlib" and r.html and r.css), None)
    if ours is None:
        return
    for peer in results:
        if peer is ours or not (peer.html and peer.css):
            continue
        html = statistics.median(ours.html) / statistics.median(peer.html)
        css = statistics.median(ours.css) / statistics.median(peer.css)
        print(f"median ratio execlib / {peer.name}: HTML {html:.2f}, CSS {css:.2f}")


def print_goals(results: list[Result], args: argparse.Namespace) -> None:
    ours = next((r for r in results if r.name == "execlib"), None)
    if ours is None or not (ours.html and ours.css):
        return
    html, css = statistics.median(ours.html), statistics.median(ours.css)
    checks = [
        (f"HTML median {html:.1f} ms < {GOALS['html']:.0f} ms", html < GOALS["html"] and not ours.html_missed),
        (f"CSS median {css:.1f} ms < {GOALS['css']:.0f} ms", css < GOALS["css"] and not ours.css_missed),
        (f"no reload during CSS changes ({ours.css_reloads})", ours.css_reloads == 0),
        (f"every edit 0.3 s apart shown ({count(ours.burst_shown, args.burst)})", ours.burst_shown == args.burst),
        (f"no reload of the untouched page ({ours.untouched_reloads})", ours.untouched_reloads == 0),
    ]
    for text, met in checks:
        print(f"goal: {text}: {'met' if met else 'NOT met'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=20, help="measured HTML and CSS changes per server (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="changes dropped first, per kind (default 1)")
    parser.add_argument("--burst", type=int, default=10, help="HTML edits made 0.3 s apart (default 10)")
    parser.add_argument("--only", default=",".join(SERVERS), help=f"comma-separated subset of {','.join(SERVERS)}")
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SERVERS))
    if unknown:
        parser.error(f"--only: unknown server {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if args.changes < 1 or args.burst < 2:
        parser.error("--changes must be at least 1 and --burst at least 2")
    return args


def main() -> int:
    args = parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"reload_latency: Chromium not found at {CHROMIUM}; apt-get install chromium", file=sys.stderr)
        return 2
    results, notes = run(args)
    print_table(results, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
