#!/usr/bin/env python3
"""Memory over many Servers in one process: RSS after N create/start/request/stop cycles.

A build tool that embeds a new ``Server`` per run creates and drops many of them in one
process; each must leave nothing behind. Each cycle creates a ``Server`` on port 0, starts it
in a thread, makes two requests (a page and the live-reload client), shuts it down and
waits for it. Two modes, run one after the other in separate fresh processes (so neither
inherits the other's heap):

- **plain**: the server as ``execlib serve`` uses it;
- **routes**: an embedding tool's server: it reads ``server.app`` and adds a route (a closure
  over the server, as a tool's routes often are), which is asked for too.

Printed per mode: VmRSS after the first cycle and at checkpoints up to ``--cycles``, and
how many of the Servers are still alive (weak references, after ``gc.collect()``) at the
end. A Server that outlives its cycle keeps its app, hub, caches and closures.

Usage::

    python benchmarks/server_cycles.py [--cycles 1000] [--mode plain,routes] [--baseline DIR]

``--baseline DIR`` runs the cycles with ``PYTHONPATH=DIR`` instead: another checkout of execlib
(``git worktree add DIR REV``), for a before/after figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def get(port: int, path: str) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def one_cycle(site: Path, mode: str, cycle: int) -> weakref.ref[Any]:
    """Create, start, ask, stop one Server; a weak reference to it."""
    from execlib import Server

    server = Server(site, port=0, handle_signals=False)
    paths = ["/", "/livereload.js"]
    if mode == "routes":
        # a closure over the server, as a tool's routes often are (a route that reloads pages, or
        # reports the build); an exact path, so that versions without path patterns serve it too
        @server.app.get("/api/status")
        async def status() -> dict[str, str]:
            return {"root": server.root}

        paths.append("/api/status")
    server.start_in_thread()
    port = server.bound_addr[1] if server.bound_addr else 0
    statuses = [get(port, path) for path in paths]
    server.shutdown()
    if not server.wait(10):
        raise RuntimeError(f"cycle {cycle}: the server did not stop")
    if statuses != [200] * len(statuses):
        raise RuntimeError(f"cycle {cycle}: statuses {statuses} for {paths}")
    return weakref.ref(server)


def run_cycles(cycles: int, mode: str) -> dict[str, object]:
    import logging

    logging.getLogger("execlib").setLevel(logging.WARNING)  # no access-log lines for thousands of requests
    site = Path(tempfile.mkdtemp(prefix="execlib-cycles-"))
    (site / "index.html").write_text("<html><body><h1>Home</h1></body></html>", encoding="utf-8")
    checkpoints = sorted({1, *(c for c in (10, 100, 250, 500, 750, 1000, 2000, 5000) if c <= cycles), cycles})
    refs: list[weakref.ref[Any]] = []
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    for cycle in range(1, cycles + 1):
        refs.append(one_cycle(site, mode, cycle))
        if cycle in checkpoints:
            gc.collect()
            samples.append((cycle, rss_mb()))
    gc.collect()
    return {
        "samples": samples,
        "alive": sum(ref() is not None for ref in refs),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000, help="servers per mode (default 1000)")
    parser.add_argument("--mode", default="plain,routes", help="plain, routes or both (comma-separated)")
    parser.add_argument("--baseline", metavar="DIR", help="run the execlib at DIR (PYTHONPATH=DIR) instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one mode, in this fresh process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_cycles(args.cycles, args.child)))
        return

    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, object]] = {}
    for mode in [m for m in args.mode.split(",") if m]:
        if mode not in ("plain", "routes"):
            parser.error(f"unknown mode {mode!r}")
        done = subprocess.run(
            [sys.executable, __file__, "--cycles", str(args.cycles), "--child", mode],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": os.path.abspath(args.baseline)} if args.baseline else None,
        )
        if done.returncode != 0:
            print(f"{mode}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])

    which = f"execlib from {args.baseline}" if args.baseline else "execlib"
    print(f"VmRSS (MB) of one process after N Server create/start/request/stop cycles ({which});")
    print(f"Python {sys.version.split()[0]}")
    for mode, result in results.items():
        samples = result["samples"]
        assert isinstance(samples, list)
        row = "  ".join(f"{cycle}: {mb:.1f}" for cycle, mb in samples)
        first, last = samples[0][1], samples[-1][1]
        print(f"{mode:7} {row}")
        print(
            f"{'':7} growth after cycle 1: {last - first:+.1f} MB"
            f" ({(last - first) * 1024 / max(1, samples[-1][0] - 1):.1f} KB per cycle);"
            f" Servers still alive: {result['alive']} of {samples[-1][0]};"
            f" {result['seconds']:.0f} s"
        )
    load_after = os.getloadavg()[0]
    print(f"note: load average {load_before:.1f} at the start, {load_after:.1f} at the end ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
