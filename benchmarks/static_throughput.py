#!/usr/bin/env python3
"""Static-file throughput: execlib side by side with ``python -m http.server``.

Serves one temporary folder (a 2 KB HTML page and a 1 MB binary) with

* ``python -m execlib serve DIR --port 0 -q`` (live reload on, the default),
* the same with ``--no-livereload``,
* with ``--headers``: ``execlib+headers``, live reload on plus ``--header "X-Test: 1" --cors``
  (the extra-headers middleware in the chain), to compare with the first row,
* with ``--loops``: ``execlib --loop asyncio``, live reload on, to compare with the first row
  (which runs ``auto``: uvloop when installed),
* with ``--baseline DIR``: the execlib of another checkout (``PYTHONPATH=DIR``, e.g. made with
  ``git worktree add DIR REV``), live reload on: what a change costs the common case,
* ``python -m http.server`` bound to 127.0.0.1,

one server at a time, and loads each from a separate ``wrk`` process with
keep-alive connections. It prints requests/s for the page, MB/s of payload for
the binary, and the ratios execlib / http.server, all from the same run.
It also checks that execlib shows an edit of the page on the very next request.

Default load: ``wrk -t1 -c16 -d5s`` per measurement. One wrk thread leaves the
second core of a 2-core machine to the server; 16 connections keep the server
busy without making the test about accept() storms (``--sweep`` tries 1, 16
and 64 connections). ``python -m http.server`` speaks HTTP/1.0 and closes the
connection after each response, so wrk reconnects for it: that is the peer as
users run it.

Usage::

    python benchmarks/static_throughput.py [--duration 5] [--connections 16] [--rounds 3] [--sweep]
        [--headers] [--loops] [--baseline DIR] [--no-blob]

All the servers stay up for the whole run and are measured in turn, round
after round; the table shows medians. On a machine shared with other work
this keeps the ratios meaningful even when absolute figures drift.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
PAGE = "page.html"
BLOB = "blob.bin"
BLOB_SIZE = 1 << 20
START_TIMEOUT = 20.0
# What execlib adds to HTML when live reload is on; the edit check strips it.
SCRIPT_TAG = b'<script src="/livereload.js" async></script>'


# -- the site --------------------------------------------------------------------------


def page_bytes(marker: str) -> bytes:
    """A 2048-byte HTML page; ``marker`` (fixed width) makes each version distinct."""
    head = f"<!doctype html><html><head><title>bench {marker}</title></head><body>\n".encode()
    tail = b"\n</body></html>\n"
    filler = (b"<p>lorem ipsum dolor sit amet</p>\n" * 64)[: 2048 - len(head) - len(tail)]
    body = head + filler + tail
    assert len(body) == 2048
    return body


def make_site(folder: Path) -> None:
    (folder / PAGE).write_bytes(page_bytes("v0000000"))
    (folder / BLOB).write_bytes(os.urandom(BLOB_SIZE))


# -- processes ---------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The path of wrk, installing the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print("wrk not found: installing it with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update"], check=True, timeout=600, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True, timeout=600, env=env)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install -y wrk")
    return found


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period; only the process we started (its own group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def read_first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line of ``proc``, with a deadline (a hung server must not hang us)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no line from {proc.args} within {timeout} s")
            if sel.select(left):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"{proc.args} exited before printing its URL: {proc.wait()}")
                buf += chunk
    return buf.split(b"\n", 1)[0].decode()


# what the execlib+headers row adds to plain execlib
HEADER_ARGS = ("--header", "X-Test: 1", "--cors")
HEADERS_ROW = "execlib+headers"
ASYNCIO_ROW = "execlib --loop asyncio"
BASELINE_ROW = "execlib@base (live reload)"


@contextlib.contextmanager
def execlib_server(
    folder: Path, livereload: bool, extra: tuple[str, ...] = (), pythonpath: str | None = None
) -> Iterator[str]:
    cmd = [sys.executable, "-m", "execlib", "serve", str(folder), "--host", HOST, "--port", "0", "-q", *extra]
    if not livereload:
        cmd.append("--no-livereload")
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, start_new_session=True, env=env)
    try:
        line = read_first_line(proc, START_TIMEOUT)
        match = re.search(r"http://[^\s]+/", line)
        if not match:
            raise RuntimeError(f"cannot find the URL in execlib's first line: {line!r}")
        yield match.group(0)
    finally:
        stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args} did not listen on port {port} within {timeout} s")


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    # http.server does not print the port it got for port 0, so we pick one; another
    # process could take it in between, hence a few attempts.
    for attempt in range(3):
        port = free_port()
        cmd = [sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(folder)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            try:
                wait_listening(proc, port, START_TIMEOUT)
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            yield f"http://{HOST}:{port}/"
            return
        finally:
            stop(proc)


# -- measuring ---------------------------------------------------------------------------


@dataclass
class Load:
    requests_per_s: float
    errors: str


def run_wrk(wrk: str, url: str, connections: int, threads: int, duration: float) -> Load:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=duration + 30)
    finally:
        stop(proc)
    text = out.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode().strip()}")
    match = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if not match:
        raise RuntimeError(f"cannot parse wrk output:\n{text}")
    problems = []
    for pattern in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: [^\n]+"):
        found = re.search(pattern, text)
        if found:
            problems.append(found.group(0))
    return Load(float(match.group(1)), "; ".join(problems))


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: status {response.status}")
    return body


def check_added_headers(url: str) -> None:
    """The execlib+headers row must really send what it is measured with."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/" + PAGE)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.getheader("x-test") != "1" or response.getheader("access-control-allow-origin") != "*":
        raise RuntimeError(f"{HEADERS_ROW}: the page lacks X-Test or Access-Control-Allow-Origin")


def check_edits(url: str, folder: Path, rounds: int = 50) -> int:
    """Write a new same-size page, GET it on a keep-alive connection, compare; returns stale count.

    Same size and well within one timestamp tick on purpose: that is the case a stat-only
    cache gets wrong.
    """
    port = int(url.rsplit(":", 1)[1].strip("/"))
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    stale = 0
    try:
        get(conn, "/" + PAGE)  # make sure the page is cached before editing it
        for i in range(rounds):
            content = page_bytes(f"e{i:07d}")
            (folder / PAGE).write_bytes(content)
            body = get(conn, "/" + PAGE).replace(SCRIPT_TAG, b"")
            if body != content:
                stale += 1
        (folder / PAGE).write_bytes(page_bytes("v0000000"))
        if get(conn, "/" + PAGE).replace(SCRIPT_TAG, b"") != page_bytes("v0000000"):
            stale += 1
    finally:
        conn.close()
    return stale


@dataclass
class Row:
    name: str
    url: str
    folder: Path | None  # set for execlib: the folder whose edits must show at once
    page: dict[int, list[Load]] = field(default_factory=dict)
    blob: dict[int, list[Load]] = field(default_factory=dict)
    stale: int | None = None

    def page_rps(self, c: int) -> float:
        return statistics.median(load.requests_per_s for load in self.page[c])

    def blob_mbs(self, c: int) -> float:
        if not self.blob.get(c):
            return 0.0  # --no-blob
        return statistics.median(load.requests_per_s for load in self.blob[c]) * BLOB_SIZE / 1e6


def measure(wrk: str, rows: list[Row], conns: list[int], args: argparse.Namespace) -> None:
    """Rounds of every server in turn, so background load drifting during the run hits all alike."""
    for row in rows:
        if row.folder is not None:
            row.stale = check_edits(row.url, row.folder)
        run_wrk(wrk, row.url + PAGE, conns[0], args.threads, 1)  # warm-up: lazy imports, caches
    for _ in range(args.rounds):
        for c in conns:
            for row in rows:
                row.page.setdefault(c, []).append(run_wrk(wrk, row.url + PAGE, c, args.threads, args.duration))
                if not args.no_blob:
                    row.blob.setdefault(c, []).append(run_wrk(wrk, row.url + BLOB, c, args.threads, args.duration))
    for row in rows:
        if row.folder is not None:
            row.stale = (row.stale or 0) + check_edits(row.url, row.folder)  # again, cache warmed by the load


def print_table(rows: list[Row], conns: list[int], args: argparse.Namespace) -> None:
    peer = rows[-1]
    print()
    print(
        f"wrk -t{args.threads} -d{args.duration:g}s, keep-alive, median of {args.rounds} interleaved rounds;"
        f" {os.cpu_count()} CPUs shared by wrk and the server"
    )
    print(f"2 KB = {PAGE} (2048 bytes), 1 MB = {BLOB} ({BLOB_SIZE} bytes); MB/s = payload in 10^6 bytes/s")
    header = f"{'server':<26} {'conns':>5} {'2 KB req/s':>11} {'ratio':>7} {'1 MB MB/s':>10} {'ratio':>7}  edits"
    print(header)
    print("-" * len(header))
    for row in rows:
        for c in conns:
            page, mbs = row.page_rps(c), row.blob_mbs(c)
            page_ratio = page / peer.page_rps(c) if peer.page_rps(c) else 0.0
            blob_ratio = mbs / peer.blob_mbs(c) if peer.blob_mbs(c) else 0.0
            edits = "-" if row.stale is None else ("ok" if row.stale == 0 else f"{row.stale} STALE")
            blob = f"{mbs:>10,.0f} {blob_ratio:>6.2f}x" if row.blob.get(c) else f"{'-':>10} {'-':>7}"
            print(f"{row.name:<26} {c:>5} {page:>11,.0f} {page_ratio:>6.2f}x {blob}  {edits}")
            errors = {load.errors for load in (*row.page[c], *row.blob.get(c, [])) if load.errors}
            for error in sorted(errors):
                print(f"{'':<26}       ! {error}")
    with_headers = [row for row in rows if row.name == HEADERS_ROW]
    for c in conns if with_headers else []:
        plain, headers = rows[0].page_rps(c), with_headers[0].page_rps(c)
        print(
            f"\n{HEADERS_ROW} / {rows[0].name}, 2 KB, {c} connections: {headers:,.0f} / {plain:,.0f} req/s"
            f" = {headers / plain if plain else 0.0:.3f}"
        )
    for name in (ASYNCIO_ROW, BASELINE_ROW):
        other = [row for row in rows if row.name == name]
        for c in conns if other else []:
            first, row = rows[0], other[0]
            line = f"\n{name} / {first.name}, {c} connections: 2 KB {row.page_rps(c) / first.page_rps(c):.3f}"
            if row.blob.get(c) and first.blob_mbs(c):
                line += f", 1 MB {row.blob_mbs(c) / first.blob_mbs(c):.3f}"
            print(line)
    if args.rounds > 1:
        print(
            "\nper-round 2 KB req/s: "
            + "; ".join(
                f"{row.name} " + "/".join(f"{load.requests_per_s:,.0f}" for load in row.page[conns[-1]]) for row in rows
            )
        )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians reported (default 3)")
    parser.add_argument("--sweep", action="store_true", help="measure with 1, 16 and 64 connections")
    parser.add_argument(
        "--headers", action="store_true", help=f"add a row for execlib with {' '.join(HEADER_ARGS)} (live reload on)"
    )
    parser.add_argument("--no-blob", action="store_true", help="measure the 2 KB page only, not the 1 MB file")
    parser.add_argument(
        "--loops", action="store_true", help="add a row for execlib --loop asyncio (the first row runs auto: uvloop)"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="add a row for the execlib of another checkout (PYTHONPATH=DIR), live reload on",
    )
    args = parser.parse_args()
    if not 0 < args.duration <= 60:
        parser.error("--duration must be in (0, 60] seconds")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be from 1 to 10")
    conns = [1, 16, 64] if args.sweep else [args.connections]

    # SIGTERM should unwind through the finally blocks that stop our servers, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="execlib-bench-") as tmp, contextlib.ExitStack() as servers:
        folder = Path(tmp)
        make_site(folder)
        # All are up for the whole run (an idle server costs nothing) and measured in turn.
        rows = [
            Row("execlib (live reload)", servers.enter_context(execlib_server(folder, True)), folder),
            Row("execlib --no-livereload", servers.enter_context(execlib_server(folder, False)), folder),
        ]
        if args.headers:
            url = servers.enter_context(execlib_server(folder, True, HEADER_ARGS))
            check_added_headers(url)
            rows.append(Row(HEADERS_ROW, url, folder))
        if args.loops:
            rows.append(
                Row(ASYNCIO_ROW, servers.enter_context(execlib_server(folder, True, ("--loop", "asyncio"))), folder)
            )
        if args.baseline:
            url = servers.enter_context(execlib_server(folder, True, pythonpath=args.baseline))
            rows.append(Row(BASELINE_ROW, url, folder))
        rows.append(Row("python -m http.server", servers.enter_context(http_server(folder)), None))
        measure(wrk, rows, conns, args)
    print_table(rows, conns, args)
    return 1 if any(row.stale for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
