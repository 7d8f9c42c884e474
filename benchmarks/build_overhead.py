"""Build-tool benchmark: source edit to rebuilt page visible in Chromium, minus the build itself.

Run:  python benchmarks/build_overhead.py [--edits 12] [--warmup 2]

Two previews run side by side in one run, both on 127.0.0.1:

- **execlib**: the worked example ``examples/mdsite`` (its own ``make_server``:
  a Python build callable, ``watch=[content, templates]``) building a copy of
  its content. The build's own duration is timed around the callable.
- **sphinx-autobuild**: a minimal Sphinx project (conf.py + index.rst) in a temp
  folder. The build's own duration is the window between its ``--pre-build``
  and ``--post-build`` commands (``date``), which run just before and after
  ``python -m sphinx build``; one ``date`` run's cost is taken off its overhead,
  since those stamps are ours, not sphinx-autobuild's.

Each round edits the Markdown page, then the reST page, each time writing a
new token. The page records when it ran (an inline script storing
``performance.timeOrigin + performance.now()``) and that is compared with
``time.time()`` taken right before the write. Overhead = edit-to-visible minus
the build's own duration: watching, debouncing, starting the build, telling the
page, and the page reloading. Medians over ``--edits`` rounds after
``--warmup`` discarded ones; every wait has a deadline.

Needs Debian's chromium (/usr/bin/chromium), playwright (Python package only)
and sphinx-autobuild (``pip install sphinx-autobuild``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mdsite"
CHROMIUM = os.environ.get("EXECLIB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
STAMP = "<script>window.__shown = performance.timeOrigin + performance.now();</script>"
HOST = "127.0.0.1"


@dataclass
class Tool:
    """One preview under test: how to edit it, where its page is, and its per-edit figures (ms)."""

    name: str
    url: str
    edit: Callable[[str], None]
    connected: str  # JS expression: the page's live-reload socket is open
    builds: Callable[[float], tuple[float, float] | None]  # build window (s) that started after a time
    stamp_cost_ms: float = 0.0
    visible: list[float] = field(default_factory=list)
    build: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    before_reload: list[float] = field(default_factory=list)
    page_load: list[float] = field(default_factory=list)


def free_port() -> int:
    # sphinx-autobuild does not report the port it got for 0; another process could take this one first.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)  # polling interval, bounded by the deadline above


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)  # polling interval, bounded by the deadline above
    return value


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mdsite_example", EXAMPLE / "mdsite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- execlib with the example generator ---------------------------------------------------


def start_execlib(tmp: Path) -> tuple[Any, Tool]:
    src = tmp / "md"
    shutil.copytree(EXAMPLE / "content", src / "content")
    shutil.copytree(EXAMPLE / "templates", src / "templates")
    template = src / "templates" / "page.html"
    template.write_text(template.read_text().replace("</body>", f"{STAMP}\n</body>"))
    mdsite = load_example()
    windows: list[tuple[float, float]] = []
    build_site = mdsite.build_site

    def timed_build(source: Path, out: Path) -> list[Path]:
        started = time.time()
        try:
            return build_site(source, out)
        finally:
            windows.append((started, time.time()))

    mdsite.build_site = timed_build  # make_server's build callable looks it up at each build
    server = mdsite.make_server(src, tmp / "md-site", host=HOST, port=0).start_in_thread()
    page_md = src / "content" / "index.md"

    def edit(token: str) -> None:
        page_md.write_text(f"# Benchmark\n\nEdit {token} here.\n", encoding="utf-8")

    tool = Tool(
        "execlib (mdsite)",
        server.url + "index.html",
        edit,
        "window.__execlibLiveReload && window.__execlibLiveReload.state.ws"
        " && window.__execlibLiveReload.state.ws.readyState === 1",
        lambda after: next(((s, e) for s, e in windows if s >= after), None),
    )
    return server, tool


# -- sphinx-autobuild with a minimal Sphinx project ---------------------------------------


def start_sphinx_autobuild(tmp: Path, timeout: float) -> tuple[subprocess.Popen[str], Tool]:
    src, out = tmp / "rst", tmp / "rst-html"
    src.mkdir()
    (src / "conf.py").write_text('project = "bench"\nextensions = []\n', encoding="utf-8")
    index = src / "index.rst"

    def edit(token: str) -> None:
        index.write_text(
            f"Benchmark\n=========\n\nEdit {token} here.\n\n.. raw:: html\n\n   {STAMP}\n", encoding="utf-8"
        )

    edit("initial")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sphinx_autobuild",
            str(src),
            str(out),
            "--host",
            HOST,
            "--port",
            str(port),
            "--pre-build",
            "date +SAB_START=%s.%N",
            "--post-build",
            "date +SAB_END=%s.%N",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    starts: list[float] = []
    ends: list[float] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := re.match(r"SAB_(START|END)=([\d.]+)", line.strip()):
                (starts if match.group(1) == "START" else ends).append(float(match.group(2)))

    threading.Thread(target=pump, daemon=True).start()

    def window(after: float) -> tuple[float, float] | None:
        for i, started in enumerate(starts):
            if started >= after and i < len(ends):
                return started, ends[i]
        return None

    url = f"http://{HOST}:{port}/index.html"
    wait_http(url, timeout)
    tool = Tool(
        "sphinx-autobuild",
        url,
        edit,
        "typeof ws !== 'undefined' && ws.readyState === 1",
        window,
        stamp_cost_ms=date_cost_ms(),
    )
    return proc, tool


def date_cost_ms(runs: int = 20) -> float:
    """Median wall time of one ``date`` run: what our build stamps add to sphinx-autobuild's overhead."""
    costs = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["date", "+%s.%N"], check=True, capture_output=True)
        costs.append((time.perf_counter() - started) * 1000)
    return statistics.median(costs)


# -- measuring ----------------------------------------------------------------------------


def measure_one(tool: Tool, page: Any, token: str, timeout: float) -> tuple[float, float, float, float]:
    """Edit, wait for the page to show ``token``; returns (visible, build, overhead, page load) in ms.

    Page load runs from the reload's navigation start (the new document's ``timeOrigin``) to the
    stamp script: the browser fetching and parsing the page, which depends on the page's weight.
    """
    page.wait_for_function(tool.connected, timeout=timeout * 1000)
    before = time.time()
    tool.edit(token)
    page.wait_for_function(
        "t => document.body && document.body.textContent.includes(t)", arg=token, timeout=timeout * 1000
    )
    shown, navigation = page.evaluate("[window.__shown, performance.timeOrigin]")
    # Let the page finish loading (stylesheets, scripts) so it does not compete with the next edit.
    page.wait_for_function("document.readyState === 'complete'", timeout=timeout * 1000)
    started, finished = wait_for(lambda: tool.builds(before), timeout, f"{tool.name}'s build times")
    visible = shown - before * 1000
    build = (finished - started) * 1000
    return visible, build, visible - build - tool.stamp_cost_ms, shown - navigation


def run(args: argparse.Namespace) -> list[Tool]:
    from playwright.sync_api import sync_playwright

    server = proc = None
    with tempfile.TemporaryDirectory(prefix="execlib-bench-") as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            server, execlib_tool = start_execlib(Path(tmp))
            proc, sphinx_tool = start_sphinx_autobuild(Path(tmp), args.timeout)
            tools = [execlib_tool, sphinx_tool]
            pages = []
            for tool in tools:
                page = browser.new_page()
                page.goto(tool.url)
                pages.append(page)
            for round_no in range(args.warmup + args.edits):
                for tool, page in zip(tools, pages, strict=True):
                    token = f"token{round_no}x{time.time_ns()}"
                    visible, build, overhead, page_load = measure_one(tool, page, token, args.timeout)
                    if round_no >= args.warmup:
                        tool.visible.append(visible)
                        tool.build.append(build)
                        tool.overhead.append(overhead)
                        tool.before_reload.append(overhead - page_load)
                        tool.page_load.append(page_load)
            return tools
        finally:
            browser.close()
            if server is not None:
                server.shutdown()
                server.wait(10)
            if proc is not None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(10)


def print_table(tools: list[Tool], args: argparse.Namespace) -> None:
    print()
    print(f"edit -> rebuilt page visible in Chromium; medians over {args.edits} edits ({args.warmup} warm-up dropped)")
    print("overhead = visible - build; it splits into 'to reload' (watch, debounce, build start, telling the")
    print("page) and 'page load' (the reload's navigation start to the stamp script: the page's own weight)")
    header = (
        f"{'tool':<20} {'visible ms':>11} {'build ms':>9} {'overhead ms':>12} {'p90':>7} {'min':>7}"
        f" {'to reload':>10} {'page load':>10}"
    )
    print(header)
    print("-" * len(header))
    for tool in tools:
        ordered = sorted(tool.overhead)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(
            f"{tool.name:<20} {statistics.median(tool.visible):>11.1f} {statistics.median(tool.build):>9.1f}"
            f" {statistics.median(tool.overhead):>12.1f} {p90:>7.1f} {ordered[0]:>7.1f}"
            f" {statistics.median(tool.before_reload):>10.1f} {statistics.median(tool.page_load):>10.1f}"
        )
    stamp = next(t.stamp_cost_ms for t in tools if t.stamp_cost_ms)
    print(f"(sphinx-autobuild's overhead already has one `date` stamp run, {stamp:.1f} ms, taken off)")
    ours, peer = (statistics.median(t.overhead) for t in tools)
    ratio = ours / peer
    verdict = "met" if ratio < 0.5 else "NOT met"
    print(f"overhead ratio execlib / sphinx-autobuild = {ratio:.3f} (goal < 0.5: {verdict})")
    ours, peer = (statistics.median(t.before_reload) for t in tools)
    print(f"'to reload' ratio execlib / sphinx-autobuild = {ours / peer:.3f}")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=12, help="measured edits per tool (default 12, at least 10)")
    parser.add_argument("--warmup", type=int, default=2, help="discarded first edits per tool (default 2)")
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline in s for each wait (default 60)")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"build_overhead: Chromium not found at {CHROMIUM}; apt-get install chromium", file=sys.stderr)
        return 2
    if importlib.util.find_spec("sphinx_autobuild") is None:
        print("build_overhead: sphinx-autobuild is not installed; pip install sphinx-autobuild", file=sys.stderr)
        return 2
    print_table(run(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
