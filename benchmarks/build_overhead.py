"""Build-tool benchmark: source edit to rebuilt page visible in Chromium, presets against their peers.

Run:  python benchmarks/build_overhead.py [--suite all|presets|overhead] [--edits 12] [--warmup 2]

**presets** (the ``execlib sphinx`` / ``execlib mkdocs`` commands): a ``sphinx-quickstart``
project under ``execlib sphinx`` and under ``sphinx-autobuild . _build/html`` (its defaults: it has
no faster setting), and a ``mkdocs new`` project under ``execlib mkdocs``, ``mkdocs serve``
(defaults) and ``mkdocs serve --dirty`` (its fastest: rebuilds only changed pages). Each tool gets
its own copy of the project, all run at once, saves interleaved. Per tool: the median time from
``time.time()`` right before a save to the in-page stamp of the page showing it, builds per save
(counted from each tool's own output: ``build ok``, ``build succeeded``, ``Documentation built``)
and page loads per save (Playwright's ``load`` events). Missing peers are pip-installed into this
environment, and the notes say what was installed or skipped.

**overhead** (the original comparison, below):

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

Needs Debian's chromium (/usr/bin/chromium), playwright (Python package only), sphinx and
mkdocs; sphinx-autobuild is installed with pip when missing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
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


# -- presets: a sphinx-quickstart and an mkdocs new project, execlib's preset against each peer ---------


@dataclass
class Preview:
    """One previewing command on its own copy of a project: how to save, where its page is, what it counted."""

    name: str
    proc: subprocess.Popen[str]
    url: str
    source: Path
    text: Callable[[str], str]
    builds: Callable[[], int]  # builds so far, counted from the tool's own output
    connected: str  # JS: the page is ready to hear of a change
    visible: list[float] = field(default_factory=list)
    builds_per_save: float = 0.0
    loads_per_save: float = 0.0


def ensure_package(module: str, package: str, notes: list[str]) -> bool:
    """Install a peer into this environment when missing (pip, by name); say what was done."""
    if importlib.util.find_spec(module) is not None:
        version = (
            subprocess.run([sys.executable, "-m", "pip", "show", package], capture_output=True, text=True)
            .stdout.partition("Version: ")[2]
            .split("\n")[0]
        )
        notes.append(f"{package} {version} was installed already")
        return True
    result = subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], capture_output=True, text=True)
    if result.returncode != 0 or importlib.util.find_spec(module) is None:
        importlib.invalidate_caches()
        if importlib.util.find_spec(module) is None:
            notes.append(f"{package} could not be installed ({result.stderr.strip()[:200]}): its rows are skipped")
            return False
    notes.append(f"installed {package} with pip for this run")
    return True


def pump_lines(proc: subprocess.Popen[str], pattern: str) -> Callable[[], int]:
    """Count the child's output lines that match ``pattern`` (from a thread, as they come)."""
    counted = [0]
    matcher = re.compile(pattern)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if matcher.search(line):
                counted[0] += 1

    threading.Thread(target=pump, daemon=True).start()
    return lambda: counted[0]


def start_preview(
    name: str,
    argv: list[str],
    cwd: Path,
    url_of: Callable[[str], str | None],
    timeout: float,
    build_pattern: str,
    source: Path,
    text: Callable[[str], str],
    connected: str,
) -> Preview:
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    url = None
    assert proc.stdout is not None
    while url is None:  # read until the tool says where it serves
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start: {''.join(lines)[-2000:]}")
        lines.append(line)
        url = url_of(line)
    counted = sum(1 for line in lines if re.search(build_pattern, line))
    more = pump_lines(proc, build_pattern)
    return Preview(name, proc, url, source, text, lambda: counted + more(), connected)


EXECLIB_READY = (
    "window.__execlibLiveReload && window.__execlibLiveReload.state.ws"
    " && window.__execlibLiveReload.state.ws.readyState === 1"
)


def sphinx_project(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "sphinx.cmd.quickstart", "-q", "-p", "Bench", "-a", "Me", "--no-sep", str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


def rst_text(token: str) -> str:
    return f"Bench\n=====\n\nSaved {token} here.\n\n.. raw:: html\n\n   {STAMP}\n"


def md_text(token: str) -> str:
    return f"# Bench\n\nSaved {token} here.\n\n{STAMP}\n"


def start_presets(tmp: Path, timeout: float, notes: list[str]) -> list[tuple[str, list[Preview]]]:
    """The previews to compare, per project: execlib's preset first, then each peer setting."""
    execlib = [sys.executable, "-m", "execlib"]
    served = lambda line: m.group(1) if (m := re.search(r" at (http://\S+)", line)) else None  # noqa: E731
    groups: list[tuple[str, list[Preview]]] = []

    if ensure_package("sphinx_autobuild", "sphinx-autobuild", notes):
        previews = []
        ours = sphinx_project(tmp / "sphinx-execlib")
        (ours / "index.rst").write_text(rst_text("initial"), encoding="utf-8")
        previews.append(
            start_preview(
                "execlib sphinx",
                [*execlib, "sphinx", "--port", "0"],
                ours,
                served,
                timeout,
                r"^execlib: build ok",
                ours / "index.rst",
                rst_text,
                EXECLIB_READY,
            )
        )
        peer = sphinx_project(tmp / "sphinx-autobuild")
        (peer / "index.rst").write_text(rst_text("initial"), encoding="utf-8")
        port = free_port()
        previews.append(
            start_preview(
                "sphinx-autobuild",
                [sys.executable, "-m", "sphinx_autobuild", ".", "_build/html", "--host", HOST, "--port", str(port)],
                peer,
                lambda line: f"http://{HOST}:{port}/" if "Serving on" in line else None,
                timeout,
                r"build succeeded",
                peer / "index.rst",
                rst_text,
                "typeof ws !== 'undefined' && ws.readyState === 1",
            )
        )
        groups.append(("sphinx-quickstart", previews))

    if ensure_package("mkdocs", "mkdocs", notes):
        previews = []
        for name, extra in (("execlib mkdocs", None), ("mkdocs serve", []), ("mkdocs serve --dirty", ["--dirty"])):
            folder = tmp / name.replace(" ", "-")
            subprocess.run([sys.executable, "-m", "mkdocs", "new", str(folder)], check=True, capture_output=True)
            source = folder / "docs" / "index.md"
            source.write_text(md_text("initial"), encoding="utf-8")
            if extra is None:
                previews.append(
                    start_preview(
                        name,
                        [*execlib, "mkdocs", "--port", "0"],
                        folder,
                        served,
                        timeout,
                        r"^execlib: build ok",
                        source,
                        md_text,
                        EXECLIB_READY,
                    )
                )
                continue
            port = free_port()
            previews.append(
                start_preview(
                    name,
                    [sys.executable, "-m", "mkdocs", "serve", "-a", f"{HOST}:{port}", *extra],
                    folder,
                    lambda line, port=port: f"http://{HOST}:{port}/" if "Serving on" in line else None,
                    timeout,
                    r"Documentation built in",
                    source,
                    md_text,
                    "document.readyState === 'complete'",
                )
            )
        groups.append(("mkdocs new", previews))
    return groups


def run_presets(args: argparse.Namespace, notes: list[str]) -> list[tuple[str, list[Preview]]]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="execlib-bench-presets-") as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        groups: list[tuple[str, list[Preview]]] = []
        try:
            groups = start_presets(Path(tmp), args.timeout, notes)
            for _, previews in groups:
                pages = []
                for preview in previews:
                    page = browser.new_page()
                    loads = [0]
                    page.on("load", lambda _page, loads=loads: loads.__setitem__(0, loads[0] + 1))
                    page.goto(preview.url)
                    pages.append((page, loads))
                counted: dict[str, tuple[int, int]] = {}
                for round_no in range(args.warmup + args.edits):
                    for preview, (page, loads) in zip(previews, pages, strict=True):
                        if round_no == args.warmup:
                            counted[preview.name] = (preview.builds(), loads[0])
                        page.wait_for_function(preview.connected, timeout=args.timeout * 1000)
                        page.wait_for_load_state("load")
                        token = f"token{round_no}x{time.time_ns()}"
                        before = time.time()
                        preview.source.write_text(preview.text(token), encoding="utf-8")
                        page.wait_for_function(
                            "t => document.body && document.body.textContent.includes(t)",
                            arg=token,
                            timeout=args.timeout * 1000,
                        )
                        shown = page.evaluate("window.__shown")
                        page.wait_for_load_state("load")
                        if round_no >= args.warmup:
                            preview.visible.append(shown - before * 1000)
                # a last quiet moment so the last save's builds and loads are all counted
                time.sleep(1.0)  # benchmark only: lets stray extra builds show up in the counts
                for preview, (_page, loads) in zip(previews, pages, strict=True):
                    builds0, loads0 = counted[preview.name]
                    preview.builds_per_save = (preview.builds() - builds0) / args.edits
                    preview.loads_per_save = (loads[0] - loads0) / args.edits
            return groups
        finally:
            browser.close()
            for _, previews in groups:
                for preview in previews:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(preview.proc.pid, signal.SIGINT)
                    try:
                        preview.proc.wait(10)
                    except subprocess.TimeoutExpired:
                        os.killpg(preview.proc.pid, signal.SIGKILL)
                        preview.proc.wait(10)


def print_presets(groups: list[tuple[str, list[Preview]]], args: argparse.Namespace, notes: list[str]) -> None:
    print()
    print(
        f"save -> change visible in Chromium (in-page stamp); medians over {args.edits} saves"
        f" ({args.warmup} warm-up dropped)"
    )
    header = (
        f"{'project':<18} {'tool':<22} {'median ms':>10} {'p90':>8} {'min':>8} {'builds/save':>12} {'loads/save':>11}"
    )
    print(header)
    print("-" * len(header))
    for project, previews in groups:
        for preview in previews:
            ordered = sorted(preview.visible)
            p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
            print(
                f"{project:<18} {preview.name:<22} {statistics.median(ordered):>10.1f} {p90:>8.1f} {ordered[0]:>8.1f}"
                f" {preview.builds_per_save:>12.2f} {preview.loads_per_save:>11.2f}"
            )
    for project, previews in groups:
        ours = statistics.median(previews[0].visible)
        for peer in previews[1:]:
            ratio = ours / statistics.median(peer.visible)
            verdict = "met" if ratio <= 0.6 else "NOT met"
            print(f"{project}: median ratio {previews[0].name} / {peer.name} = {ratio:.3f} (goal <= 0.6: {verdict})")
        one = previews[0].builds_per_save == 1 and previews[0].loads_per_save == 1
        print(f"{project}: one build and one page load per save for {previews[0].name}: {'met' if one else 'NOT met'}")
    for note in notes:
        print(f"note: {note}")
    print()


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
    parser.add_argument(
        "--suite",
        choices=("all", "presets", "overhead"),
        default="all",
        help="presets: execlib sphinx / mkdocs against sphinx-autobuild and mkdocs serve;"
        " overhead: the mdsite example's overhead against sphinx-autobuild (default: both)",
    )
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"build_overhead: Chromium not found at {CHROMIUM}; apt-get install chromium", file=sys.stderr)
        return 2
    notes: list[str] = []
    if args.suite in ("all", "presets"):
        print_presets(run_presets(args, notes), args, notes)
    if args.suite in ("all", "overhead"):
        if not ensure_package("sphinx_autobuild", "sphinx-autobuild", notes):
            print("build_overhead: sphinx-autobuild is not installed; pip install sphinx-autobuild", file=sys.stderr)
            return 2
        print_table(run(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
