#!/usr/bin/env python3
"""Proxy overhead: one backend reached directly, through execlib's proxy and through browser-sync's.

The backend is a Starlette app on uvicorn, started by this script in its own process, serving
``/page.html`` (2048 bytes of HTML) and ``/blob.bin`` (1 MiB of binary). Three rows load it:

* ``direct``: wrk against the backend itself, the floor;
* ``execlib``: ``python -m execlib serve --proxy http://127.0.0.1:PORT --port 0 -q`` (live reload on,
  so the page is injected with the client);
* ``browser-sync``: ``browser-sync start --proxy http://127.0.0.1:PORT ...`` (npm ``browser-sync``,
  installed by this script under ``benchmarks/.work/npm`` when missing), which injects its own
  client into HTML too.

For each row and file, wrk measures

* throughput, with ``--connections`` keep-alive connections (default 16): req/s, and p50/p99
  latency under that load (``wrk --latency``), which is mostly queueing;
* latency with one connection (``--latency-connections``, default 1): p50/p99 with no queueing,
  which is what "the latency a proxy adds" means for one developer's browser;

and each proxy's RSS (VmRSS of its whole process group, the highest seen after each measurement).
Rows are measured in turn, round after round (``--rounds``), and the tables show medians; the
ratios execlib / browser-sync and the p50 added over direct come from the same run. The goals
(execlib adds under 1 ms at p50 for the 2 KB page; execlib gives at least 2x browser-sync's
throughput on both files) are checked at the end.

Before measuring, each proxy is checked: the page comes back with a live-reload client injected,
the binary byte for byte. Until execlib has ``serve --proxy``, its row is left out with a message
saying so and the other rows still run.

Usage::

    python benchmarks/proxy_overhead.py [--duration 5] [--rounds 3] [--connections 16]
        [--latency-connections 1] [--threads 1] [--no-browser-sync] [--no-execlib]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from static_throughput import (  # noqa: E402  (a sibling script, not a package)
    ensure_wrk,
    free_port,
    page_bytes,
    read_first_line,
    stop,
    wait_listening,
)

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / ".work"
NPM_PREFIX = WORK / "npm"
BROWSER_SYNC = NPM_PREFIX / "node_modules" / ".bin" / "browser-sync"
PAGE = "/page.html"
BLOB = "/blob.bin"
BLOB_SIZE = 1 << 20
START_TIMEOUT = 30.0
FILES = {"2 KB": PAGE, "1 MB": BLOB}
# The Accept header a browser sends for each: browser-sync injects only into responses to
# requests that accept HTML, as a page navigation does; a binary is fetched with */*.
ACCEPT = {PAGE: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", BLOB: "*/*"}
# what each proxy injects into HTML: proof that the page measured went through injection
INJECTED = {"execlib": b"/livereload.js", "browser-sync": b"browser-sync-client"}
GOAL_ADDED_MS = 1.0
GOAL_RATIO = 2.0


def blob_bytes() -> bytes:
    """The same 1 MiB in the backend process and in the checks (seeded, incompressible)."""
    return random.Random(14).randbytes(BLOB_SIZE)


# -- the backend (run in a child process: python proxy_overhead.py --backend) ----------------


def serve_backend() -> None:
    """Serve the two files on an ephemeral port; print ``PORT <n>`` once listening."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    page, blob = page_bytes("backend0"), blob_bytes()

    async def page_route(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    async def blob_route(request: Request) -> Response:
        return Response(blob, media_type="application/octet-stream")

    app = Starlette(routes=[Route(PAGE, page_route), Route(BLOB, blob_route)])
    config = uvicorn.Config(app, host=HOST, port=0, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            if task.done():
                task.result()
                return
            await asyncio.sleep(0.01)  # uvicorn has no started event to await
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await task

    asyncio.run(run())


@contextlib.contextmanager
def backend() -> Iterator[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--backend"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True)
    try:
        line = read_first_line(proc, START_TIMEOUT)
        match = re.fullmatch(r"PORT (\d+)", line.strip())
        if not match:
            raise RuntimeError(f"the backend printed {line!r} instead of its port")
        yield f"http://{HOST}:{match.group(1)}"
    finally:
        stop(proc)


# -- the proxies -----------------------------------------------------------------------------


@dataclass
class Started:
    url: str
    proc: subprocess.Popen[bytes] | None  # None for direct: no proxy to weigh


class Unavailable(Exception):
    """A row that cannot run on this checkout or machine; the message says why."""


def execlib_has_proxy(env: dict[str, str], cwd: str) -> bool:
    """Whether the execlib that ``env`` and ``cwd`` import (``-m`` puts cwd first) has ``serve --proxy``."""
    cmd = [sys.executable, "-m", "execlib", "serve", "--help"]
    out = subprocess.run(cmd, capture_output=True, env=env, cwd=cwd, timeout=60, check=False)
    return re.search(rb"--proxy URL", out.stdout) is not None


@contextlib.contextmanager
def execlib_proxy(backend_url: str) -> Iterator[Started]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "execlib", "serve", "--proxy", backend_url, "--host", HOST, "--port", "0", "-q"]
    # An empty working folder, watched as users watch their templates: nothing in it to serve
    # from disk instead of proxying, and no change to reload on during the run.
    cmd += ["--watch", "."]
    with tempfile.TemporaryDirectory(prefix="execlib-proxy-bench-") as cwd:
        if not execlib_has_proxy(env, cwd):
            raise Unavailable(
                f"execlib row skipped: `python -m execlib serve --help` (execlib from {REPO}) has no --proxy"
                " option yet: issue 14's HTTP proxy has not landed in this checkout"
            )
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True, env=env, cwd=cwd)
        try:
            line = read_first_line(proc, START_TIMEOUT)
            # "Serving http://BACKEND at http://127.0.0.1:PORT/ ...": the proxy's own URL is the last
            urls = re.findall(r"http://[^\s/]+", line)
            if not urls:
                raise RuntimeError(f"cannot find the URL in execlib's first line: {line!r}")
            yield Started(urls[-1], proc)
        finally:
            stop(proc)


def ensure_browser_sync() -> Path:
    if BROWSER_SYNC.exists():
        return BROWSER_SYNC
    npm = shutil.which("npm")
    if not npm:
        raise Unavailable("browser-sync row skipped: npm is not installed (apt-get install npm)")
    print(f"installing browser-sync into {NPM_PREFIX} ...", file=sys.stderr, flush=True)
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", "--loglevel=error", "browser-sync"]
    subprocess.run(cmd, check=True, timeout=600, stdout=sys.stderr)
    if not BROWSER_SYNC.exists():
        raise Unavailable(f"browser-sync row skipped: npm install did not create {BROWSER_SYNC}")
    return BROWSER_SYNC


@contextlib.contextmanager
def browser_sync_proxy(backend_url: str) -> Iterator[Started]:
    binary = ensure_browser_sync()
    # browser-sync prints its URLs in a box after some start-up chatter, and takes the next free
    # port when the one asked for is busy: so pick a free port, make it take exactly that one by
    # checking it listens there, and retry on the rare race.
    for attempt in range(3):
        port = free_port()
        cmd = [
            str(binary), "start", "--proxy", backend_url, "--port", str(port), "--listen", HOST,
            "--no-open", "--no-notify", "--no-ui", "--no-ghost-mode", "--logLevel", "silent",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            try:
                wait_listening(proc, port, START_TIMEOUT)
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            yield Started(f"http://{HOST}:{port}", proc)
            return
        finally:
            stop(proc)


# -- checks and measures ---------------------------------------------------------------------


def fetch(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": ACCEPT[path]})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def check(name: str, url: str) -> None:
    """What is measured must be right: an injected page, an identical binary."""
    status, page = fetch(url, PAGE)
    if status != 200:
        raise RuntimeError(f"{name}: GET {PAGE} answered {status}")
    marker = INJECTED.get(name)
    if marker is not None and marker not in page:
        raise RuntimeError(f"{name}: the page has no live-reload client ({marker.decode()!r} not found)")
    if marker is None and page != page_bytes("backend0"):
        raise RuntimeError(f"{name}: the page differs from the backend's")
    status, blob = fetch(url, BLOB)
    if status != 200 or blob != blob_bytes():
        raise RuntimeError(f"{name}: GET {BLOB} answered {status} with {len(blob)} bytes, not the backend's")


def group_rss_kb(pgid: int) -> int:
    """The VmRSS of every process in a process group (a proxy and whatever it started), in KiB."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            # the fields after the command name, which is in parentheses and may hold spaces
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            for line in Path(entry.path, "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return total


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: str


def run_wrk(wrk: str, url: str, path: str, connections: int, threads: int, duration: float) -> Load:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", "--latency"]
    cmd += ["-H", f"Accept: {ACCEPT[path]}", url + path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=duration + 30)
    finally:
        stop(proc)
    text = out.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode().strip()}")
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    percentiles = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", text, re.MULTILINE))
    if not rps or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"cannot parse wrk output:\n{text}")

    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
        return float(number) * _UNITS_MS[unit]

    problems = [
        found.group(0)
        for pattern in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: [^\n]+")
        if (found := re.search(pattern, text))
    ]
    return Load(float(rps.group(1)), ms(percentiles["50"]), ms(percentiles["99"]), "; ".join(problems))


@dataclass
class Row:
    name: str
    url: str
    proc: subprocess.Popen[bytes] | None
    loaded: dict[str, list[Load]] = field(default_factory=dict)  # by file: throughput runs
    single: dict[str, list[Load]] = field(default_factory=dict)  # by file: one-connection runs
    rss_kb: int = 0

    def median(self, runs: dict[str, list[Load]], file: str, what: str) -> float:
        values: list[float] = [getattr(load, what) for load in runs[file]]
        return statistics.median(values)

    def weigh(self) -> None:
        if self.proc is not None:
            self.rss_kb = max(self.rss_kb, group_rss_kb(self.proc.pid))


def measure(wrk: str, rows: list[Row], args: argparse.Namespace) -> None:
    """Rounds of every row in turn, so load from elsewhere drifting during the run hits all alike."""
    for row in rows:
        for path in FILES.values():
            run_wrk(wrk, row.url, path, args.connections, args.threads, 1)  # warm-up: imports, JIT, pools
        row.weigh()
    for number in range(args.rounds):
        print(f"round {number + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
        for row in rows:
            for file, path in FILES.items():
                load = run_wrk(wrk, row.url, path, args.connections, args.threads, args.duration)
                row.loaded.setdefault(file, []).append(load)
                row.weigh()
                one = run_wrk(wrk, row.url, path, args.latency_connections, 1, args.duration)
                row.single.setdefault(file, []).append(one)
                row.weigh()


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(rows: list[Row], skipped: list[str], args: argparse.Namespace) -> None:
    by_name = {row.name: row for row in rows}
    print()
    print(
        f"wrk -t{args.threads} -d{args.duration:g}s --latency, keep-alive; median of {args.rounds} interleaved"
        f" rounds; {os.cpu_count()} CPUs shared by wrk, the proxy and the backend"
    )
    print(f"2 KB = {PAGE} (2048 bytes of HTML, injected by the proxies), 1 MB = {BLOB} ({BLOB_SIZE} bytes)")
    for title, kind, conns in (
        ("throughput", "loaded", args.connections),
        ("latency", "single", args.latency_connections),
    ):
        print(f"\n{title}, {conns} connection{'s' if conns != 1 else ''}:")
        header = (
            f"{'row':<14}"
            + "".join(f" {file + ' req/s':>12} {'p50 ms':>8} {'p99 ms':>8}" for file in FILES)
            + (f" {'RSS MB':>8}" if title == "throughput" else "")
        )
        print(header)
        print("-" * len(header))
        for row in rows:
            runs: dict[str, list[Load]] = getattr(row, kind)
            line = f"{row.name:<14}"
            for file in FILES:
                line += (
                    f" {row.median(runs, file, 'requests_per_s'):>12,.0f}"
                    f" {row.median(runs, file, 'p50_ms'):>8.2f} {row.median(runs, file, 'p99_ms'):>8.2f}"
                )
            if title == "throughput":
                line += f" {row.rss_kb / 1024:>8.1f}" if row.proc is not None else f" {'-':>8}"
            print(line)
            errors = {load.errors for loads in runs.values() for load in loads if load.errors}
            for error in sorted(errors):
                print(f"{'':<14} ! {error}")
    direct = by_name.get("direct")
    print()
    for name in ("execlib", "browser-sync"):
        proxy = by_name.get(name)
        if proxy is None or direct is None:
            continue
        added = [
            f"{f} {proxy.median(proxy.single, f, 'p50_ms') - direct.median(direct.single, f, 'p50_ms'):+.2f} ms"
            for f in FILES
        ]
        print(f"{name} adds at p50 over direct ({args.latency_connections} connection): {', '.join(added)}")
    ours, peer = by_name.get("execlib"), by_name.get("browser-sync")
    if ours is not None and peer is not None:
        ratios = {
            file: ours.median(ours.loaded, file, "requests_per_s") / peer.median(peer.loaded, file, "requests_per_s")
            for file in FILES
        }
        print("execlib / browser-sync req/s: " + ", ".join(f"{file} {ratio:.2f}x" for file, ratio in ratios.items()))
        print(f"execlib / browser-sync RSS: {ours.rss_kb / peer.rss_kb:.2f}x" if peer.rss_kb else "")
    print("goals:")
    if ours is not None and direct is not None:
        added_ms = ours.median(ours.single, "2 KB", "p50_ms") - direct.median(direct.single, "2 KB", "p50_ms")
        print(f"  execlib adds under {GOAL_ADDED_MS:g} ms at p50 for the 2 KB page: {verdict(added_ms < GOAL_ADDED_MS)}"
              f" ({added_ms:+.2f} ms)")  # fmt: skip
    else:
        print(f"  execlib adds under {GOAL_ADDED_MS:g} ms at p50 for the 2 KB page: not measured")
    if ours is not None and peer is not None:
        for file, ratio in ratios.items():
            goal = f"execlib >= {GOAL_RATIO:g}x browser-sync req/s, {file}"
            print(f"  {goal}: {verdict(ratio >= GOAL_RATIO)} ({ratio:.2f}x)")
    else:
        print(f"  execlib >= {GOAL_RATIO:g}x browser-sync req/s: not measured")
    for message in skipped:
        print(f"! {message}")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="store_true", help=argparse.SUPPRESS)  # the child process's role
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians reported (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="connections for throughput (default 16)")
    parser.add_argument(
        "--latency-connections", type=int, default=1, help="connections for the latency runs (default 1)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads for throughput (default 1)")
    parser.add_argument("--no-execlib", action="store_true", help="leave out the execlib row")
    parser.add_argument("--no-browser-sync", action="store_true", help="leave out the browser-sync row")
    args = parser.parse_args()
    if args.backend:
        serve_backend()
        return 0
    if not 0 < args.duration <= 60:
        parser.error("--duration must be in (0, 60] seconds")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be from 1 to 10")

    # SIGTERM should unwind through the finally blocks that stop our servers, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wrk = ensure_wrk()
    skipped: list[str] = []
    with backend() as backend_url, contextlib.ExitStack() as servers:
        rows = [Row("direct", backend_url, None)]
        proxies = [
            ("execlib", execlib_proxy, args.no_execlib),
            ("browser-sync", browser_sync_proxy, args.no_browser_sync),
        ]
        for name, start, left_out in proxies:
            if left_out:
                continue
            try:
                started = servers.enter_context(start(backend_url))
            except Unavailable as exc:
                skipped.append(str(exc))
                print(f"! {exc}", file=sys.stderr, flush=True)
                continue
            rows.append(Row(name, started.url, started.proc))
        for row in rows:
            check(row.name, row.url)
        started_at = time.monotonic()
        measure(wrk, rows, args)
        print(f"measured in {time.monotonic() - started_at:.0f} s", file=sys.stderr)
        report(rows, skipped, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
