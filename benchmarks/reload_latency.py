"""Live-reload benchmark: file save to change visible in Chromium, execlib vs python-livereload vs live-server.

Run:  python benchmarks/reload_latency.py [--changes 20] [--writers inplace,vim,...]
                                          [--only execlib,livereload,live-server,live-server-wait0]

Each server serves its own copy of the same small site (a page with a stylesheet and a
second, untouched page) from a temp folder, on 127.0.0.1, in the same run:

- **execlib**: ``python -m execlib serve DIR --port 0 -q``;
- **execlib-poll**: the same with ``--poll`` (network shares, Docker bind mounts, WSL);
  not in the default set, ask for it with ``--only``;
- **livereload**: python-livereload (``pip install livereload``), ``Server().watch(DIR)``
  and ``serve(root=DIR)``, in a child process;
- **live-server**: npm ``live-server`` at its default ``--wait`` (100 ms), installed into
  ``benchmarks/.work`` when missing;
- **live-server-wait0**: the same at ``--wait=0``, its fastest setting.

Writer matrix: every change is saved the way a real tool saves, one writer at a time
(``--writers``, default all whose program is installed; missing ones are skipped and named):

- ``inplace``: open, write, close (the file keeps its inode);
- ``python-rename``: ``tempfile.NamedTemporaryFile(dir=the folder, delete=False)`` + ``os.replace``;
- ``vim``: ``vim -Es -N -u NONE -i NONE`` with ``set nocompatible writebackup backupcopy=auto``,
  a ``:%s`` edit and ``wq``: backup by rename, new file written, backup deleted (plus its
  swap file and its ``4913`` can-I-create-here probe);
- ``emacs``: ``emacs --batch -Q FILE --eval '(progn ... (save-buffer))'``: default backups,
  so the first save renames FILE to ``FILE~`` and writes a new file (plus its ``.#FILE`` lock);
- ``sed``: ``sed -i``; ``perl``: ``perl -pi -e``; ``rsync``: ``rsync -I STAGED FILE`` from a
  prepared copy outside the site (all three: temp file in the folder, renamed over).

The sites live under ``benchmarks/.work``, not ``/tmp``: vim (``backupskip``) and emacs
(``backup-enable-predicate``) make no backups under the temp folder, so they would not save
there the way they save in a project.

The figures (per writer and server):

- HTML: the page's new HTML has an inline script that stores ``performance.timeOrigin +
  performance.now()`` (wall-clock ms) in sessionStorage when it runs.
- CSS: a ``requestAnimationFrame`` watcher in the page stores the wall-clock time at which
  the computed colour of an element first shows each colour; each change writes a new colour.
  The watcher is armed just before the save and stops once the colour shows (it restarts by
  itself if the page reloads), so idle tabs run no frame loop. A full reload is caught by
  ``window.__marker``, set before each CSS change: a stylesheet swap keeps it, a reload loses it.
- Both are measured from the moment the file landed: its ``st_mtime_ns`` read right after the
  writer returned, so a tool's start-up (emacs: about half a second) is not counted.
- Edits 0.3 s apart: ``--burst`` in-place HTML edits 0.3 s apart; how many versions ever ran.
- Rename burst: ``--burst-renames`` temp-file-and-rename saves of the page back to back; how
  many times the page loaded (one is right: the page shows the last version once).
- Untouched page: a second page in another tab counts its loads during the writer matrix.

Changes are interleaved across servers (one change at a time). Before each change the page's
live-reload socket must be open and greeted and the server's previous change visible.
python-livereload polls every 0.8 s and ignores changes made within 3 s of its last reload, so
it gets 3.2 s of quiet plus a random 0-0.8 s (its writes fall at any phase of its polling) and
takes fewer changes per writer (``--livereload-changes``); the others get 0.5 s plus 0-0.3 s
(separate saves, not a burst: some servers hold saves that follow a reload closely, on
purpose). Every wait has a deadline; a change not visible in time counts as missed, and a
server that misses three in a row skips the rest of that writer's changes.
Everything started is stopped on the way out, errors included.

Needs Debian's chromium (/usr/bin/chromium), playwright (Python package only), node and npm;
the writers' programs: vim, emacs-nox, rsync (sed and perl are in every Debian).
"""

from __future__ import annotations

import argparse
import functools
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
SERVERS = ("execlib", "execlib-poll", "livereload", "live-server", "live-server-wait0")
WRITERS = ("inplace", "python-rename", "vim", "emacs", "sed", "perl", "rsync")
# The program each writer runs, and how to get it on Debian.
WRITER_PROGRAMS = {"vim": "vim", "emacs": "emacs", "sed": "sed", "perl": "perl", "rsync": "rsync"}
WRITER_PACKAGES = {"vim": "vim", "emacs": "emacs-nox", "sed": "sed", "perl": "perl", "rsync": "rsync"}
WRITER_TIMEOUT_S = 60.0
VISIBLE_TIMEOUT_S = 8.0  # a change not visible by then counts as missed
MISSES_IN_A_ROW = 3  # then the server skips the rest of that writer's changes of that kind
START_TIMEOUT_S = 30.0
LIVERELOAD_QUIET_S = 3.2  # python-livereload ignores changes within 3 s of its last reload
# Others: each save comes at least this long after the server's previous change showed, as
# separate saves by a person do. Saves closer together are a burst, which servers may hold back
# on purpose (execlib's change gate for 0.2 s after a reload, live-server for its --wait), and
# the bursts have their own figures below.
QUIET_S = 0.5
# A random wait before each change, so writes do not fall at one phase of a peer's polling
# (python-livereload polls every 0.8 s when pyinotify is not installed). The others do not poll;
# a shorter random wait spreads their writes over Chromium's frames.
JITTER_S = {"livereload": 0.8}
DEFAULT_JITTER_S = 0.3
BURST_SPACING_S = 0.3
SETTLE_S = 0.5  # after a writer's last CSS change: a late reload still counts
BURST_QUIET_S = 1.0  # rename burst: the page counts as settled after this long without a load
BURST_DEADLINE_S = 20.0
GOALS = {"html": 60.0, "css": 40.0}  # in-place saves, since the first version of this benchmark
GOAL_CSS_MS = 25.0  # every writer
GOAL_HTML_SLACK_MS = 5.0  # every writer: execlib's HTML median <= live-server --wait 0's + this
GOAL_PEER = "live-server-wait0"
INITIAL_VERSION = "v0init"
INITIAL_COLOR = "rgb(0, 0, 0)"
# Tokens are passed to sed, perl, vim and emacs as literal text; keep them free of anything any
# of them would read specially.
TOKEN = re.compile(r"[A-Za-z0-9(), ]+")

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
# Before a CSS change: a marker only this document holds (a reload loses it), then arm the watcher.
ARM_JS = "([color, marker]) => { window.__marker = marker; sessionStorage.armed = color; window.__benchWatch(); }"
MARKER_JS = "marker => window.__marker === marker"

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
    (folder / "index.html").write_text(page_html(INITIAL_VERSION), encoding="utf-8")
    (folder / "other.html").write_text(OTHER_HTML, encoding="utf-8")
    (folder / "style.css").write_text(css_text(INITIAL_COLOR), encoding="utf-8")


# -- writers ------------------------------------------------------------------------------


class WriterError(RuntimeError):
    """A writer that failed or did not leave the expected text."""


@dataclass
class Edit:
    """One save: every ``old`` in the file becomes ``new``, which must leave exactly ``text``."""

    path: Path
    old: str
    new: str
    text: str


@dataclass
class Landed:
    """When a save happened (ns, CLOCK_REALTIME like time.time_ns) and what it did to the file."""

    started: int  # right before the writer ran
    returned: int  # right after it returned
    mtime: int  # the file's st_mtime_ns then: the moment it landed
    ctime: int  # its st_ctime_ns: a rename over it sets this, after the data was written
    inode_changed: bool


def available_writers(names: list[str]) -> tuple[list[str], list[str]]:
    """The writers whose program is installed, and a note for each one that is not."""
    usable, skipped = [], []
    for name in names:
        program = WRITER_PROGRAMS.get(name)
        if program and shutil.which(program) is None:
            skipped.append(f"{name} (no {program}: apt-get install {WRITER_PACKAGES[name]})")
        else:
            usable.append(name)
    return usable, skipped


def writer_argv(writer: str, edit: Edit, staged: Path) -> list[str]:
    target = str(edit.path)
    if writer == "vim":
        # -u NONE: no vimrc, so set the defaults a vimrc-less Vim has in nocompatible mode; with
        # backupcopy=auto Vim renames the file to FILE~, writes a new FILE, then deletes FILE~.
        return [
            "vim", "-Es", "-N", "-u", "NONE", "-i", "NONE",
            "-c", "set nocompatible writebackup backupcopy=auto",
            "-c", f"%s/\\V{edit.old}/{edit.new}/g",
            "-c", "wq", target,
        ]  # fmt: skip
    if writer == "emacs":
        # -Q: no init or site files; backups, lock files and everything else at their defaults.
        lisp = (
            f'(progn (goto-char (point-min)) (while (search-forward "{edit.old}" nil t)'
            f' (replace-match "{edit.new}" t t)) (save-buffer))'
        )
        return ["emacs", "--batch", "-Q", target, "--eval", lisp]
    if writer == "sed":
        return ["sed", "-i", f"s/{edit.old}/{edit.new}/g", target]
    if writer == "perl":
        return ["perl", "-pi", "-e", f"s/\\Q{edit.old}\\E/{edit.new}/g", target]
    if writer == "rsync":
        # -I: copy even when size and mtime happen to match; no -t, so the new file's mtime is
        # when rsync wrote it, not the staged copy's.
        return ["rsync", "-I", str(staged), target]
    raise ValueError(writer)


def save(writer: str, edit: Edit, staging: Path) -> Landed:
    """Save ``edit`` with ``writer`` (a real program for all but the two Python ones)."""
    if not (TOKEN.fullmatch(edit.old) and TOKEN.fullmatch(edit.new)):
        raise ValueError(f"tokens must match {TOKEN.pattern}: {edit.old!r}, {edit.new!r}")
    staged = staging / edit.path.name
    if writer == "rsync":
        staged.write_text(edit.text, encoding="utf-8")  # prepared before the clock starts
    inode = edit.path.stat().st_ino
    started = time.time_ns()
    if writer == "inplace":
        with open(edit.path, "w", encoding="utf-8") as sink:
            sink.write(edit.text)
    elif writer == "python-rename":
        with tempfile.NamedTemporaryFile("w", dir=edit.path.parent, delete=False, encoding="utf-8") as sink:
            sink.write(edit.text)
        os.replace(sink.name, edit.path)
    else:
        try:
            done = subprocess.run(
                writer_argv(writer, edit, staged),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=WRITER_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise WriterError(f"{writer} took over {WRITER_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise WriterError(f"{writer} exited with {done.returncode}: {lines[-1][:100] if lines else ''}")
    returned = time.time_ns()
    stat = edit.path.stat()
    # A size check costs no read of the file (a read is a file event of its own for some watchers).
    if stat.st_size != len(edit.text.encode("utf-8")):
        raise WriterError(f"{writer} left {stat.st_size} bytes in {edit.path.name}, not {len(edit.text)}")
    return Landed(started, returned, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino != inode)


def check_writers(writers: list[str], folder: Path, staging: Path) -> tuple[list[str], list[str], list[str]]:
    """Run each writer once on a scratch site: does it leave the exact text, and how does it save?

    Returns the writers that work, a note per writer on its choreography, and the failures.
    """
    working, notes, failed = [], [], []
    for writer in writers:
        scratch = folder / writer
        make_site(scratch)
        before = set(os.listdir(scratch))
        try:
            html = save(writer, Edit(scratch / "index.html", INITIAL_VERSION, "v1x1", page_html("v1x1")), staging)
            color = color_for(1)
            css = save(writer, Edit(scratch / "style.css", INITIAL_COLOR, color, css_text(color)), staging)
            if (scratch / "index.html").read_text(encoding="utf-8") != page_html("v1x1") or (
                scratch / "style.css"
            ).read_text(encoding="utf-8") != css_text(color):
                raise WriterError(f"{writer} did not leave the expected text")
        except (WriterError, OSError, ValueError) as exc:
            failed.append(f"{writer} ({exc})")
            continue
        working.append(writer)
        how = "replaced by a new file (new inode)" if html.inode_changed and css.inode_changed else "same inode"
        left = sorted(set(os.listdir(scratch)) - before)
        notes.append(f"{writer}: {how}" + (f", leaves {', '.join(left)}" if left else ""))
    return working, notes, failed


@dataclass
class WriterStats:
    """Per writer (ms): what the timing leaves out and what it keeps."""

    to_landed: list[float] = field(default_factory=list)  # writer start -> mtime (start-up, excluded)
    after_landed: list[float] = field(default_factory=list)  # mtime -> writer returned (inside the window)
    ctime_after_mtime: list[float] = field(default_factory=list)  # e.g. the rename, after the data


# -- servers -------------------------------------------------------------------------------


class StartError(RuntimeError):
    """A peer that could not be installed or started; reported in the table, not raised further."""


@dataclass
class Cell:
    """One writer x server: figures (ms) and counts."""

    html: list[float] = field(default_factory=list)
    css: list[float] = field(default_factory=list)
    to_navigation: list[float] = field(default_factory=list)  # HTML: landed to the new page's timeOrigin
    html_missed: int = 0
    css_missed: int = 0
    css_reloads: int = 0  # measured CSS changes after which the page had reloaded
    css_checked: int = 0
    note: str | None = None  # e.g. gave up after misses in a row, or the writer failed


@dataclass
class Result:
    """One server's figures: a cell per writer, then the counts that do not depend on the writer."""

    name: str
    error: str | None = None
    cells: dict[str, Cell] = field(default_factory=dict)
    burst_shown: int | None = None
    untouched_reloads: int | None = None
    rename_loads: int | None = None
    rename_last_shown: bool | None = None
    stuck: int = 0  # times the page had no live-reload connection and the benchmark reopened it


@dataclass
class Served:
    """A running server, its site folder, and the browser tabs on it."""

    name: str
    site: Path
    url: str
    proc: subprocess.Popen[str]
    quiet_s: float
    jitter_s: float
    result: Result
    page: Any = None
    other: Any = None
    next_at: float = 0.0  # monotonic: the earliest moment for its next change
    changes: int = 0
    version: str = INITIAL_VERSION  # the version token index.html holds now
    color: str = INITIAL_COLOR  # the colour style.css holds now
    pending_marker: tuple[str, Cell] | None = None  # the last CSS change's marker, not checked yet

    def settled(self) -> None:
        """The previous change is over: schedule the next one after the quiet time and a random wait."""
        self.next_at = time.monotonic() + self.quiet_s + random.uniform(0, self.jitter_s)


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


def start_execlib(site: Path, log: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "execlib", "serve", str(site), "--port", "0", "-q", *extra]
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


def start_live_server(site: Path, log: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str]:
    binary = ensure_live_server()
    port = free_port()
    argv = [str(binary), str(site), "--no-browser", f"--host={HOST}", f"--port={port}", "--quiet", *extra]
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
    "execlib-poll": functools.partial(start_execlib, extra=("--poll",)),  # for mounts without notifications
    "livereload": start_livereload,
    "live-server": start_live_server,  # --wait left at its default, 100 ms
    "live-server-wait0": functools.partial(start_live_server, extra=("--wait=0",)),
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
            running.append(Served(name, site, url, proc, quiet, JITTER_S.get(name, DEFAULT_JITTER_S), result))
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
    """Wait for the server's quiet time to pass and for the page's socket to be greeted."""
    pause = served.next_at - time.monotonic()
    if pause > 0:
        time.sleep(pause)
    check_marker(served)
    if poll(lambda: is_ready(served.page), VISIBLE_TIMEOUT_S):
        return
    # A page can be left without its live-reload client (a reload that caught the file empty or
    # missing); open it again, once, and count it, as a user would have to.
    served.result.stuck += 1
    served.page.goto(served.url + "index.html")
    if not poll(lambda: is_ready(served.page), VISIBLE_TIMEOUT_S):
        raise TimeoutError(f"{served.name}: the page's live-reload socket did not connect")


def check_marker(served: Served) -> None:
    """Did the last CSS change reload the page? Its marker is gone then (checked late on purpose:
    a reload caused by a temp file's event may come after the colour has shown)."""
    if served.pending_marker is None:
        return
    marker, cell = served.pending_marker
    served.pending_marker = None
    try:
        kept = bool(served.page.evaluate(MARKER_JS, marker))
    except Exception:  # the document is being replaced: a reload
        kept = False
    cell.css_checked += 1
    if not kept:
        cell.css_reloads += 1


def shown_at(page: Any, key: str, timeout: float) -> float | None:
    value = poll(lambda: storage(page).get(key), timeout)
    return float(value) if value else None


@dataclass
class Sample:
    total: float  # landed -> visible (ms)
    to_navigation: float | None  # HTML: landed -> the new document's navigation start (ms)


def change(served: Served, kind: str, writer: str, staging: Path) -> tuple[Sample | None, Landed]:
    """Save one HTML or CSS change with ``writer``; the sample is None when it never showed.

    Clocks: the page stamps ``performance.timeOrigin + performance.now()``, which Chromium
    bases on the wall clock (CLOCK_REALTIME, ms since the epoch), and the kernel sets
    ``st_mtime_ns`` from the same clock (ns since the epoch); so landed -> visible is the page
    stamp minus ``st_mtime_ns / 1e6``. The page-minus-Python offset is measured and printed
    (time.time_ns is CLOCK_REALTIME too), not corrected. The mtime is read after the writer
    returned, so the writer's start-up is not counted, while what it does after writing the
    data (a rename, deleting its backup, an fsync) is, as it is for a user.
    """
    prepare(served)
    served.changes += 1
    if kind == "html":
        version = f"v{served.changes}x{time.time_ns()}"
        key = f"html:{version}"
        edit = Edit(served.site / "index.html", served.version, version, page_html(version))
    else:
        color = color_for(served.changes)
        key = f"css:{color}"
        edit = Edit(served.site / "style.css", served.color, color, css_text(color))
        marker = f"m{served.changes}"
        served.page.evaluate(ARM_JS, [color, marker])
    try:
        landed = save(writer, edit, staging)
    except (WriterError, OSError) as exc:
        # Leave the file holding the new text, so the next edit's token is known, then give up.
        edit.path.write_text(edit.text, encoding="utf-8")
        raise WriterError(str(exc)) from exc
    finally:
        if kind == "html":
            served.version = edit.new
        else:
            served.color = edit.new
    shown = shown_at(served.page, key, VISIBLE_TIMEOUT_S)
    served.settled()
    if shown is None:
        return None, landed
    landed_ms = landed.mtime / 1e6
    navigation = storage(served.page).get(f"nav:{edit.new}") if kind == "html" else None
    return Sample(shown - landed_ms, float(navigation) - landed_ms if navigation else None), landed


def clock_offset(page: Any, samples: int = 15) -> tuple[float, float]:
    """The page's wall clock minus Python's (ms), from the sample with the shortest round trip."""
    best = (math.inf, 0.0)
    for _ in range(samples):
        before = time.time() * 1000
        inside = float(page.evaluate("() => performance.timeOrigin + performance.now()"))
        after = time.time() * 1000
        best = min(best, (after - before, inside - (before + after) / 2))
    return best[1], best[0]


def mtime_lag(folder: Path, samples: int = 50) -> tuple[float, float]:
    """How far a file's mtime trails time.time_ns() read right after an in-place write (ms)."""
    probe = folder / "mtime-probe"
    lags = []
    for i in range(samples):
        with open(probe, "w") as sink:
            sink.write(str(i))
        after = time.time_ns()
        lags.append((after - probe.stat().st_mtime_ns) / 1e6)
        time.sleep(0.002)  # spread the samples over different clock ticks
    return statistics.median(lags), max(lags)


# -- phases ---------------------------------------------------------------------------------


@dataclass
class Share:
    """One server's share of one writer's changes of one kind, and how far it has got."""

    wanted: int  # warm-up changes included
    made: int = 0
    misses: int = 0  # changes in a row that never showed

    def give_up(self) -> None:
        self.made = self.wanted


def measure_writer(
    running: list[Served], writer: str, kind: str, args: argparse.Namespace, staging: Path, stats: WriterStats
) -> None:
    """Each server takes its share of changes, one change at a time across servers.

    A server takes a change when its quiet time is over; while none is ready, wait for the first.
    A server's first ``warmup`` changes per writer and kind are dropped.
    """
    shares = {
        s.name: Share(
            args.warmup + (min(args.changes, args.livereload_changes) if s.name == "livereload" else args.changes)
        )
        for s in running
    }
    for served in running:
        if not served.result.error:
            served.result.cells.setdefault(writer, Cell())
    while True:
        todo = [s for s in running if not s.result.error and shares[s.name].made < shares[s.name].wanted]
        if not todo:
            break
        now = time.monotonic()
        ready = [s for s in todo if s.next_at <= now] or [min(todo, key=lambda s: s.next_at)]
        for served in ready:
            take_change(served, shares[served.name], writer, kind, args.warmup, staging, stats)
    if kind == "css":
        time.sleep(SETTLE_S)  # a reload that comes late still counts against the last change
        for served in running:
            if not served.result.error:
                check_marker(served)


def take_change(
    served: Served, share: Share, writer: str, kind: str, warmup: int, staging: Path, stats: WriterStats
) -> None:
    """One change on one server: save it with ``writer``, and file its figures in the server's cell."""
    cell = served.result.cells[writer]
    share.made += 1
    try:
        sample, landed = change(served, kind, writer, staging)
    except WriterError as exc:
        cell.note = f"{kind} save failed: {exc}"[:160]
        share.give_up()
        return
    except Exception as exc:  # a timeout, or the browser or server failing: stop this one only
        served.result.error = f"{type(exc).__name__}: {exc}"[:200]
        return
    stats.to_landed.append((landed.mtime - landed.started) / 1e6)
    stats.after_landed.append((landed.returned - landed.mtime) / 1e6)
    stats.ctime_after_mtime.append((landed.ctime - landed.mtime) / 1e6)
    measured = share.made > warmup
    if kind == "css" and measured:
        served.pending_marker = (f"m{served.changes}", cell)
    if sample is None:
        count_miss(cell, share, kind, measured)
        return
    share.misses = 0
    if not measured:
        return
    getattr(cell, kind).append(sample.total)
    if sample.to_navigation is not None:
        cell.to_navigation.append(sample.to_navigation)


def count_miss(cell: Cell, share: Share, kind: str, measured: bool) -> None:
    """A change that never showed: counted when measured; after a few in a row, the server's share ends."""
    share.misses += 1
    if measured:
        setattr(cell, f"{kind}_missed", getattr(cell, f"{kind}_missed") + 1)
    if share.misses >= MISSES_IN_A_ROW:
        cell.note = f"{kind}: gave up after {MISSES_IN_A_ROW} misses in a row"
        share.give_up()


def measure_burst(served: Served, edits: int) -> int:
    """``edits`` in-place HTML edits ``BURST_SPACING_S`` apart; how many versions ever ran on the page."""
    served.next_at = time.monotonic() + LIVERELOAD_QUIET_S  # the same clean start for every server
    prepare(served)
    versions = [f"b{i}x{time.time_ns()}" for i in range(edits)]
    start = time.monotonic()
    for i, version in enumerate(versions):
        time.sleep(max(0.0, start + i * BURST_SPACING_S - time.monotonic()))
        (served.site / "index.html").write_text(page_html(version), encoding="utf-8")
    served.version = versions[-1]
    shown_at(served.page, f"html:{versions[-1]}", 4.0)
    time.sleep(0.5)  # a late reload of an earlier version would still count
    seen = storage(served.page)
    served.settled()
    return sum(f"html:{version}" in seen for version in versions)


def measure_rename_burst(served: Served, saves: int) -> tuple[int, bool]:
    """``saves`` temp-file-and-rename saves of the page back to back; page loads, and whether the
    last version showed. Settled once the page has not loaded for ``BURST_QUIET_S``."""
    served.next_at = time.monotonic() + LIVERELOAD_QUIET_S
    prepare(served)
    path = served.site / "index.html"
    before = loads(served.page)
    versions = [f"r{i}x{time.time_ns()}" for i in range(saves)]
    for version in versions:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as sink:
            sink.write(page_html(version))
        os.replace(sink.name, path)
    served.version = versions[-1]
    last_key = f"html:{versions[-1]}"
    deadline = time.monotonic() + BURST_DEADLINE_S
    count, quiet_since, shown = before, time.monotonic(), False
    while time.monotonic() < deadline:
        seen = storage(served.page)
        if "loads" in seen:
            shown = shown or last_key in seen
            if int(seen["loads"]) != count:
                count, quiet_since = int(seen["loads"]), time.monotonic()
            elif time.monotonic() - quiet_since >= BURST_QUIET_S and (shown or count > before):
                break
        time.sleep(0.05)  # polling interval, bounded by the deadline
    served.settled()
    return count - before, shown


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


def run(args: argparse.Namespace) -> tuple[list[Result], dict[str, WriterStats], list[str]]:
    from playwright.sync_api import sync_playwright

    notes: list[str] = []
    stats: dict[str, WriterStats] = {}
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reload-bench-", dir=WORK) as tmp_name:
        tmp = Path(tmp_name)
        staging = tmp / "staging"  # rsync's prepared copies and the clock probe: outside every site
        staging.mkdir()
        writers, skipped = available_writers(args.writers)
        writers, how, failed = check_writers(writers, tmp / "writer-check", staging)
        if skipped:
            notes.append(f"skipped writers, program missing: {'; '.join(skipped)}")
        if failed:
            notes.append(f"skipped writers, check failed: {'; '.join(failed)}")
        notes.append("how each writer saves: " + "; ".join(how))
        lag, lag_max = mtime_lag(staging)
        notes.append(f"file mtime trails time.time_ns() after an in-place write by {lag:.2f} ms (max {lag_max:.2f})")
        with servers(args.only, tmp) as (running, results), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                notes.append(f"Chromium {browser.version}")
                running = open_pages(browser, running)
                time.sleep(LIVERELOAD_QUIET_S)  # python-livereload's start-up reload comes and goes
                if running:
                    offset, rtt = clock_offset(running[0].page)
                    notes.append(
                        f"page clock - Python clock = {offset:+.1f} ms (round trip {rtt:.1f} ms); not corrected"
                    )
                hidden = [s.name for s in running if s.page.evaluate("document.visibilityState") != "visible"]
                if hidden:
                    notes.append(f"measured page hidden for {', '.join(hidden)}: rAF may be throttled")
                untouched = {s.name: loads(s.other) for s in running}
                for writer in writers:
                    stats[writer] = WriterStats()
                    for kind in ("html", "css"):
                        print(f"  {writer}: {kind} changes ...", flush=True)
                        measure_changes_safely(running, writer, kind, args, staging, stats[writer])
                for served in running:
                    if not served.result.error:
                        served.result.untouched_reloads = loads(served.other) - untouched[served.name]
                print("  edits 0.3 s apart and rename bursts ...", flush=True)
                for served in running:
                    if served.result.error:
                        continue
                    try:
                        if args.burst:
                            served.result.burst_shown = measure_burst(served, args.burst)
                        if args.burst_renames:
                            loaded, shown = measure_rename_burst(served, args.burst_renames)
                            served.result.rename_loads, served.result.rename_last_shown = loaded, shown
                    except Exception as exc:  # as in measure_writer: stop this one only
                        served.result.error = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                browser.close()
    return results, stats, notes


def measure_changes_safely(
    running: list[Served], writer: str, kind: str, args: argparse.Namespace, staging: Path, stats: WriterStats
) -> None:
    try:
        measure_writer(running, writer, kind, args, staging, stats)
    except Exception as exc:  # the browser failing under all of them: report what was measured
        for served in running:
            served.result.error = served.result.error or f"{type(exc).__name__}: {exc}"[:200]


# -- report ---------------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def median_text(values: list[float], missed: int) -> str:
    if not values:
        return "-" + (f" ({missed} missed)" if missed else "")
    return f"{statistics.median(values):.1f}" + (f" ({missed} missed)" if missed else "")


def count(value: int | None, of: int | None = None) -> str:
    if value is None:
        return "-"
    return f"{value}/{of}" if of is not None else str(value)


def print_table(
    results: list[Result], stats: dict[str, WriterStats], notes: list[str], args: argparse.Namespace
) -> None:
    print()
    print(
        f"save -> change visible in Chromium (ms from the file's mtime to the in-page wall-clock stamp);"
        f" {args.changes} changes per writer and kind"
    )
    print(
        f"(livereload: {min(args.changes, args.livereload_changes)}), {args.warmup} warm-up change(s) dropped;"
        " medians; 'to nav' = mtime -> the reloaded document's navigation start;"
    )
    print("'CSS full reloads' = measured CSS changes after which window.__marker was gone (a reload, not a swap)")
    header = (
        f"{'writer':<14} {'server':<18} {'HTML median':>16} {'HTML p90':>9} {'to nav':>7}"
        f" {'CSS median':>16} {'CSS p90':>8} {'CSS full reloads':>17}"
    )
    print(header)
    print("-" * len(header))
    for writer in stats:
        for r in results:
            cell = r.cells.get(writer)
            if cell is None:
                print(f"{writer:<14} {r.name:<18} {r.error or 'not measured'}")
                continue
            nav = f"{statistics.median(cell.to_navigation):.1f}" if cell.to_navigation else "-"
            html_p90 = f"{p90(cell.html):.1f}" if cell.html else "-"
            css_p90 = f"{p90(cell.css):.1f}" if cell.css else "-"
            print(
                f"{writer:<14} {r.name:<18} {median_text(cell.html, cell.html_missed):>16} {html_p90:>9} {nav:>7}"
                f" {median_text(cell.css, cell.css_missed):>16} {css_p90:>8}"
                f" {count(cell.css_reloads, cell.css_checked):>17}" + (f"  [{cell.note}]" if cell.note else "")
            )
        print()
    print_servers(results, args)
    print_ratios(results, stats)
    print_goals(results, stats, args)
    print_writer_notes(stats)
    for note in notes:
        print(f"note: {note}")
    print()


def print_servers(results: list[Result], args: argparse.Namespace) -> None:
    print(
        "per server: in-place edits 0.3 s apart that ever showed; loads of the untouched tab over the whole"
        " matrix;\npage loads for the back-to-back renames and whether the last version showed; pages the"
        " benchmark had to reopen (no live-reload connection left)"
    )
    header = (
        f"{'server':<18} {'0.3s edits shown':>17} {'untouched reloads':>18}"
        f" {f'loads for {args.burst_renames} renames':>22} {'last shown':>11} {'pages reopened':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        shown = "-" if r.rename_last_shown is None else ("yes" if r.rename_last_shown else "no")
        print(
            f"{r.name:<18} {count(r.burst_shown, args.burst or None):>17} {count(r.untouched_reloads):>18}"
            f" {count(r.rename_loads):>22} {shown:>11} {r.stuck:>15}"
        )
        if r.error:
            print(f"{'':<18} stopped early: {r.error}")
    print()


def medians(cell: Cell | None) -> tuple[float, float] | None:
    if cell is None or not (cell.html and cell.css):
        return None
    return statistics.median(cell.html), statistics.median(cell.css)


def print_ratios(results: list[Result], stats: dict[str, WriterStats]) -> None:
    ours = next((r for r in results if r.name == "execlib"), None)
    if ours is None:
        return
    for writer in stats:
        mine = medians(ours.cells.get(writer))
        if mine is None:
            continue
        parts = []
        for peer in results:
            theirs = medians(peer.cells.get(writer)) if peer is not ours else None
            if theirs:
                parts.append(f"{peer.name} HTML {mine[0] / theirs[0]:.2f} CSS {mine[1] / theirs[1]:.2f}")
        if parts:
            print(f"median ratio execlib / peer [{writer}]: " + "; ".join(parts))
    print()


def print_goals(results: list[Result], stats: dict[str, WriterStats], args: argparse.Namespace) -> None:
    ours = next((r for r in results if r.name == "execlib"), None)
    if ours is None:
        return
    peer = next((r for r in results if r.name == GOAL_PEER), None)
    met_all = True
    for writer in stats:
        cell, other = ours.cells.get(writer), peer.cells.get(writer) if peer else None
        if medians(cell) is None or medians(other) is None:
            print(f"goal [{writer}]: not measured (needs execlib and {GOAL_PEER})")
            met_all = False
            continue
        assert cell is not None and other is not None
        html, css = statistics.median(cell.html), statistics.median(cell.css)
        limit = statistics.median(other.html) + GOAL_HTML_SLACK_MS
        checks = [
            (
                f"HTML {html:.1f} <= {GOAL_PEER} {limit - GOAL_HTML_SLACK_MS:.1f} + {GOAL_HTML_SLACK_MS:.0f} ms",
                html <= limit and not cell.html_missed,
            ),
            (f"CSS {css:.1f} < {GOAL_CSS_MS:.0f} ms", css < GOAL_CSS_MS and not cell.css_missed),
            (f"CSS full reloads {count(cell.css_reloads, cell.css_checked)}", cell.css_reloads == 0),
        ]
        met_all &= all(met for _, met in checks)
        print(f"goal [{writer}]: " + "; ".join(f"{text}: {'met' if met else 'NOT met'}" for text, met in checks))
    print(f"goal: every writer: {'met' if met_all and stats else 'NOT met'}")
    inplace = medians(ours.cells.get("inplace"))
    if inplace:
        cell = ours.cells["inplace"]
        print(
            f"goal [inplace]: HTML median {inplace[0]:.1f} ms < {GOALS['html']:.0f} ms:"
            f" {'met' if inplace[0] < GOALS['html'] and not cell.html_missed else 'NOT met'};"
            f" CSS median {inplace[1]:.1f} ms < {GOALS['css']:.0f} ms:"
            f" {'met' if inplace[1] < GOALS['css'] and not cell.css_missed else 'NOT met'}"
        )
    if args.burst:
        shown = count(ours.burst_shown, args.burst)
        print(f"goal: every edit 0.3 s apart shown ({shown}): {'met' if ours.burst_shown == args.burst else 'NOT met'}")
    met = ours.untouched_reloads == 0
    print(f"goal: no reload of the untouched page ({count(ours.untouched_reloads)}): {'met' if met else 'NOT met'}")
    if args.burst_renames:
        met = ours.rename_loads == 1 and bool(ours.rename_last_shown)
        print(
            f"goal: {args.burst_renames} back-to-back renames -> one page load showing the last version"
            f" ({count(ours.rename_loads)} load(s), last {'shown' if ours.rename_last_shown else 'not shown'}):"
            f" {'met' if met else 'NOT met'}"
        )
    print()


def print_writer_notes(stats: dict[str, WriterStats]) -> None:
    """What the timing leaves out (start-up) and keeps (what the writer does after writing the data)."""
    for writer, s in stats.items():
        if s.to_landed:
            print(
                f"note: {writer}: start -> mtime {statistics.median(s.to_landed):.1f} ms (excluded),"
                f" mtime -> writer returned {statistics.median(s.after_landed):.1f} ms (included),"
                f" ctime - mtime {statistics.median(s.ctime_after_mtime):.2f} ms (medians)"
            )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--changes", type=int, default=20, help="measured HTML and CSS changes per writer and server (default 20)"
    )
    parser.add_argument(
        "--livereload-changes",
        type=int,
        default=5,
        help="python-livereload's share instead (it needs 3.2 s between changes; default 5)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="changes dropped first, per writer and kind (default 1)")
    parser.add_argument("--burst", type=int, default=10, help="in-place HTML edits made 0.3 s apart (default 10)")
    parser.add_argument(
        "--burst-renames",
        type=int,
        default=300,
        metavar="N",
        help="temp-file-and-rename saves of the page back to back; page loads counted (default 300, 0: skip)",
    )
    default = ",".join(name for name in SERVERS if name != "execlib-poll")
    parser.add_argument("--only", default=default, help=f"comma-separated subset of {','.join(SERVERS)}")
    parser.add_argument(
        "--writers",
        default=",".join(WRITERS),
        help=f"comma-separated subset of {','.join(WRITERS)} (default: all; those not installed are skipped)",
    )
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SERVERS))
    if unknown:
        parser.error(f"--only: unknown server {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    args.writers = [name.strip() for name in args.writers.split(",") if name.strip()]
    unknown = sorted(set(args.writers) - set(WRITERS))
    if unknown or not args.writers:
        parser.error(f"--writers: unknown writer {', '.join(unknown) or '(none)'}; choose from {', '.join(WRITERS)}")
    if args.changes < 1 or args.livereload_changes < 1 or args.burst_renames < 0:
        parser.error("--changes and --livereload-changes must be at least 1, --burst-renames at least 0")
    if args.burst != 0 and args.burst < 2:
        parser.error("--burst must be at least 2 (or 0: skip)")
    return args


def main() -> int:
    args = parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"reload_latency: Chromium not found at {CHROMIUM}; apt-get install chromium", file=sys.stderr)
        return 2
    started, load = time.monotonic(), os.getloadavg()[0]
    results, stats, notes = run(args)
    notes.append(
        f"whole run {time.monotonic() - started:.0f} s; load average {load:.1f} at the start,"
        f" {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs): other work on the machine skews figures"
    )
    print_table(results, stats, notes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
