#!/usr/bin/env python3
"""HTTPS throughput on each backend, and a 300-module page over HTTP/1.1 and HTTP/2, in one run.

Servers (``execlib serve DIR --port 0 -q``, live reload on, one process each, all up for the run):

* ``uvicorn http``: plain HTTP on the default backend: the reference;
* ``uvicorn https``: the same over TLS (HTTP/1.1);
* ``hypercorn http`` and ``hypercorn https``: ``--backend hypercorn``, HTTP/1.1;
* ``hypercorn https h2``: ``--http2`` (Hypercorn chosen by ``auto``), loaded over HTTP/2.

Static load: a 2 KB page (requests/s) and a 1 MB file (MB/s of payload) from ``wrk -t1 -c16``
with keep-alive (wrk speaks TLS, HTTP/1.1 only), and ``h2load -t1 -c16 -m1`` for the h2 row
(16 connections, one stream at a time each: the same concurrency as wrk's). h2load comes from
Debian's ``nghttp2-client``, installed with apt-get when missing; without it the h2 row is
skipped and says so. Rounds are interleaved (every server in turn, round after round) and the
table shows medians, so background load on a shared machine hits all rows alike.

Browser: a page whose ``main.js`` imports 300 small ES modules, loaded in headless Chromium
(Debian's ``/usr/bin/chromium`` through Playwright) from Hypercorn over TLS, once offering
HTTP/1.1 only and once HTTP/2, and, as the floor, from uvicorn over plain HTTP with no
live-reload client (the browser's own work, whatever serves the page); each load is a fresh
browser context (no cache, no open connection), alternated, median of ``--loads``. The time is
the page's own ``performance.now()`` when the last module has run, and the protocol is checked
from the navigation entry. Each ``--latency`` (ms, default ``0,20``) is a set of loads: 0 is
loopback as it is; otherwise Chromium's own network emulation (DevTools
``Network.emulateNetworkConditions``) adds that latency to every request, as a phone on the LAN
or a forwarded Codespaces port sees, without touching the machine's network (``tc netem`` would
slow every other process on it too).

TLS files: a throwaway CA and a certificate for 127.0.0.1 made with trustme, served with
``--ssl-certfile``/``--ssl-keyfile``.

Usage::

    python benchmarks/https_throughput.py [--duration 5] [--connections 16] [--rounds 3]
        [--modules 300] [--loads 7] [--latency 0,20] [--no-browser] [--no-static]
"""

from __future__ import annotations

import argparse
import contextlib
import os
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
from static_throughput import (  # noqa: E402  (the sibling module: one copy of wrk driving and the site)
    BLOB,
    BLOB_SIZE,
    HOST,
    PAGE,
    START_TIMEOUT,
    ensure_wrk,
    make_site,
    read_first_line,
    run_wrk,
    stop,
)

CHROMIUM = os.environ.get("EXECLIB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--ignore-certificate-errors"]


@dataclass
class Row:
    name: str
    url: str
    h2: bool = False
    page: list[float] = field(default_factory=list)
    blob: list[float] = field(default_factory=list)
    note: str = ""

    def page_rps(self) -> float:
        return statistics.median(self.page) if self.page else 0.0

    def blob_mbs(self) -> float:
        return statistics.median(self.blob) * BLOB_SIZE / 1e6 if self.blob else 0.0


# -- TLS files and servers ------------------------------------------------------------------


def make_tls_files(folder: Path) -> tuple[str, str]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    cert, key = folder / "cert.pem", folder / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    leaf.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


@contextlib.contextmanager
def server(folder: Path, tls: tuple[str, str] | None, *flags: str) -> Iterator[str]:
    cmd = [sys.executable, "-m", "execlib", "serve", str(folder), "--host", HOST, "--port", "0", "-q", "--no-config"]
    if tls:
        cmd += ["--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]]
    proc = subprocess.Popen([*cmd, *flags], stdout=subprocess.PIPE, start_new_session=True)
    try:
        line = read_first_line(proc, START_TIMEOUT)
        match = re.search(r"https?://[^\s]+/", line)
        if not match:
            raise RuntimeError(f"cannot find the URL in execlib's first line: {line!r}")
        yield match.group(0)
    finally:
        stop(proc)


# -- load ------------------------------------------------------------------------------------


def ensure_h2load() -> str | None:
    found = shutil.which("h2load")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print("h2load not found: installing nghttp2-client with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "nghttp2-client"], check=True, timeout=600, env=env)
    return shutil.which("h2load")


def run_h2load(h2load: str, url: str, connections: int, duration: float) -> float:
    """Requests/s over HTTP/2 with one stream per connection at a time; fails unless all were 2xx."""
    cmd = [h2load, "-t1", f"-c{connections}", "-m1", f"-D{duration:g}", "--warm-up-time=1", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0 or "Application protocol: h2" not in done.stdout:
        raise RuntimeError(f"h2load failed or did not speak h2:\n{done.stdout}\n{done.stderr}")
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", done.stdout)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", done.stdout)
    failed = re.search(r"requests: .* (\d+) failed", done.stdout)
    if not match or not status or not failed or any(int(n) for n in (*status.groups()[1:], failed.group(1))):
        raise RuntimeError(f"cannot read h2load's output, or a request failed or was not 2xx:\n{done.stdout}")
    return float(match.group(1))


def measure_static(rows: list[Row], args: argparse.Namespace, wrk: str, h2load: str | None) -> None:
    def load(row: Row, path: str) -> float:
        if row.h2:
            assert h2load is not None
            return run_h2load(h2load, row.url + path, args.connections, args.duration)
        result = run_wrk(wrk, row.url + path, args.connections, 1, args.duration)
        if result.errors:
            raise RuntimeError(f"{row.name} {path}: {result.errors}")
        return result.requests_per_s

    for row in rows:  # warm-up: lazy imports, the file cache, TLS session set-up
        if row.h2:
            assert h2load is not None
            run_h2load(h2load, row.url + PAGE, args.connections, 1)
        else:
            run_wrk(wrk, row.url + PAGE, args.connections, 1, 1)
    for _ in range(args.rounds):
        for row in rows:
            row.page.append(load(row, PAGE))
            row.blob.append(load(row, BLOB))


# -- the 300-module page ---------------------------------------------------------------------


def make_module_site(folder: Path, count: int) -> None:
    """index.html -> main.js, which imports ``count`` modules of about 1 KB each."""
    folder.mkdir()
    padding = "// " + "x" * 60 + "\n"
    for i in range(count):
        (folder / f"m{i}.js").write_text(f"export const v{i} = {i};\n" + padding * 15)
    imports = "".join(f"import {{ v{i} }} from './m{i}.js';\n" for i in range(count))
    total = " + ".join(f"v{i}" for i in range(count))
    (folder / "main.js").write_text(f"{imports}window.__sum = {total};\nwindow.__done = performance.now();\n")
    (folder / "index.html").write_text(
        '<!doctype html><html><head><title>modules</title><script type="module" src="main.js"></script>'
        "</head><body><p>300 modules</p></body></html>\n"
    )


def page_load_ms(browser: object, url: str, protocol: str, count: int, latency: float) -> float:
    context = browser.new_context(ignore_https_errors=True)  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        if latency:
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            conditions = {"offline": False, "latency": latency, "downloadThroughput": -1, "uploadThroughput": -1}
            cdp.send("Network.emulateNetworkConditions", conditions)
        page.goto(url)
        page.wait_for_function("window.__done !== undefined", timeout=60_000)
        seen = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        if seen != protocol:
            raise RuntimeError(f"{url} came over {seen}, not {protocol}")
        if page.evaluate("window.__sum") != count * (count - 1) // 2:
            raise RuntimeError("not every module ran")
        return float(page.evaluate("window.__done"))
    finally:
        context.close()


def measure_browser(urls: dict[str, tuple[str, str]], args: argparse.Namespace) -> dict[float, dict[str, list[float]]]:
    """{latency: {server: [ms per load]}}."""
    from playwright.sync_api import sync_playwright

    times: dict[float, dict[str, list[float]]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for url, protocol in urls.values():
                page_load_ms(browser, url, protocol, args.modules, 0)  # warm-up: the server's file cache
            for latency in args.latency:
                runs = times.setdefault(latency, {name: [] for name in urls})
                for _ in range(args.loads):
                    for name, (url, protocol) in urls.items():
                        runs[name].append(page_load_ms(browser, url, protocol, args.modules, latency))
        finally:
            browser.close()
    return times


# -- report ----------------------------------------------------------------------------------


def print_static(rows: list[Row], args: argparse.Namespace) -> None:
    reference = rows[0]
    print(
        f"\nstatic: wrk -t1 -c{args.connections} -d{args.duration:g}s (HTTP/1.1, keep-alive), h2 rows h2load -t1"
        f" -c{args.connections} -m1; median of {args.rounds} interleaved rounds; {os.cpu_count()} CPUs shared"
    )
    print(f"2 KB = {PAGE} (2048 bytes), 1 MB = {BLOB} ({BLOB_SIZE} bytes); ratios against {reference.name}")
    header = f"{'server':<22} {'2 KB req/s':>11} {'ratio':>7} {'1 MB MB/s':>10} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        if row.note:
            print(f"{row.name:<22} {row.note}")
            continue
        page, mbs = row.page_rps(), row.blob_mbs()
        print(
            f"{row.name:<22} {page:>11,.0f} {page / reference.page_rps():>6.2f}x"
            f" {mbs:>10,.0f} {mbs / reference.blob_mbs():>6.2f}x"
        )
    print("\nper-round 2 KB req/s: " + "; ".join(f"{r.name} " + "/".join(f"{v:,.0f}" for v in r.page) for r in rows))


def print_browser(times: dict[float, dict[str, list[float]]], args: argparse.Namespace) -> None:
    print(
        f"\nbrowser: Chromium, a page importing {args.modules} ES modules (~1 KB each), fresh context per load,"
        f" median of {args.loads} alternated loads (ms to the last module run)"
    )
    for latency, runs in times.items():
        shown = "loopback" if not latency else f"+{latency:g} ms per request (Chromium's network emulation)"
        print(f"\n{shown}:")
        for name, values in runs.items():
            print(f"  {name:<32} {statistics.median(values):>8.0f} ms   ({', '.join(f'{v:.0f}' for v in values)})")
        names = list(runs)
        h1, h2 = statistics.median(runs[names[0]]), statistics.median(runs[names[1]])
        print(f"  HTTP/1.1 / h2: {h1 / h2:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians reported (default 3)")
    parser.add_argument("--modules", type=int, default=300, help="ES modules the page imports (default 300)")
    parser.add_argument("--loads", type=int, default=7, help="page loads per protocol (default 7)")
    parser.add_argument(
        "--latency",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[0.0, 20.0],
        help="ms added to each request in Chromium, comma-separated sets of loads (default 0,20)",
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measurement")
    parser.add_argument("--no-static", action="store_true", help="skip the wrk/h2load measurement")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    wrk = ensure_wrk() if not args.no_static else ""
    h2load = ensure_h2load() if not args.no_static else None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="execlib-https-bench-") as tmp, contextlib.ExitStack() as servers:
        base = Path(tmp)
        site = base / "site"
        site.mkdir()
        make_site(site)
        tls = make_tls_files(base)
        if not args.no_static:
            rows = [
                Row("uvicorn http", servers.enter_context(server(site, None))),
                Row("uvicorn https", servers.enter_context(server(site, tls))),
                Row("hypercorn http", servers.enter_context(server(site, None, "--backend", "hypercorn"))),
                Row("hypercorn https", servers.enter_context(server(site, tls, "--backend", "hypercorn"))),
                Row("hypercorn https h2", servers.enter_context(server(site, tls, "--http2")), h2=True),
            ]
            if h2load is None:
                rows[-1].note = "skipped: h2load (Debian's nghttp2-client) is not installed"
            measured = [row for row in rows if not row.note]
            measure_static(measured, args, wrk, h2load)
        if not args.no_browser:
            modules = base / "modules"
            make_module_site(modules, args.modules)
            h1_url = servers.enter_context(server(modules, tls, "--backend", "hypercorn"))
            h2_url = servers.enter_context(server(modules, tls, "--http2"))
            # the floor: no TLS, the fastest server, no live-reload client (what the browser's own work costs)
            floor_url = servers.enter_context(server(modules, None, "--no-livereload"))
            times = measure_browser(
                {
                    "hypercorn https HTTP/1.1": (h1_url, "http/1.1"),
                    "hypercorn https h2": (h2_url, "h2"),
                    "uvicorn http, no client (floor)": (floor_url, "http/1.1"),
                },
                args,
            )
    if not args.no_static:
        print_static(rows, args)
    if not args.no_browser:
        print_browser(times, args)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
