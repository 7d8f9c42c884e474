#!/usr/bin/env python3
"""Start-up: launch to first 200, and memory after serving, execlib vs python -m http.server and python-livereload.

For each server and site, a fresh process is spawned and the clock starts right before
``Popen``; the script then polls the port (a plain socket, every 1 ms) with ``GET /`` until
the first byte of a 200 arrives. That is what a user waits for between pressing Enter and
the page being there. After it, ``--requests`` more requests (pages, a stylesheet, a
script, a missing file) are made and the process's resident memory (VmRSS) is read.

Servers, each given ``--port P`` picked free just before it starts, on 127.0.0.1:

- **execlib**: ``execlib serve DIR --port P -q`` (the installed console script);
- **http.server**: ``python -m http.server P -d DIR -b 127.0.0.1``, the floor (no watching,
  no injection);
- **livereload**: python-livereload, ``Server().watch(DIR)`` then ``serve(root=DIR)``. When it
  is not importable the script installs it with pip (``--no-install``: skip it instead), and
  says which it did.

For execlib the table also gives **ready**: launch to its start line (``Serving ... at URL``),
which it prints once files are watched too. execlib serves the first requests while it sets its
watches up, so on a big tree the first 200 comes well before ready; a page served in between
and changed before watching began is still announced (docs/design.rst, "Start-up order").

Sites: a small one (a few pages and assets) and, unless ``--tree-files 0``, a tree of
``--tree-files`` files (default 100,000; 20 to a folder, as in a big docs build), in which
execlib sets up its file watching before serving.

execlib's modules are byte-compiled first (``compileall``), as ``pip install`` does: under
``PYTHONDONTWRITEBYTECODE`` a checkout has no ``.pyc`` files, and each start would compile
them again. Runs are interleaved (every server and site once per round, after one warm-up round that
is dropped), so that machine noise hits all of them alike; medians are printed with the
ratios execlib / peer.

Usage::

    python benchmarks/startup.py [--runs 15] [--tree-files 100000] [--requests 10] [--no-install]
        [--only execlib,http.server,livereload] [--baseline DIR]

``--baseline DIR`` adds ``execlib@base``: the same command run with ``PYTHONPATH=DIR``, so an
older checkout of execlib (``git worktree add DIR REV``) is measured in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
POLL_S = 0.001  # polling interval while waiting for the port; well under the figures measured
LIVERELOAD_SCRIPT = """import sys
from livereload import Server
root, port = sys.argv[1], int(sys.argv[2])
server = Server()
server.watch(root)
server.serve(root=root, host="127.0.0.1", port=port)
"""
SMALL_SITE = {
    "index.html": "<!doctype html><html><head><link rel=stylesheet href=style.css></head>"
    "<body><h1>Home</h1><script src=app.js></script></body></html>",
    "about.html": "<!doctype html><html><body><p>About</p></body></html>",
    "style.css": "body { font-family: sans-serif; color: #222 }\n",
    "app.js": "console.log('hello')\n",
    "docs/index.html": "<!doctype html><html><body><p>Docs</p></body></html>",
    "img/logo.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>',
}
# asked for after the first 200, before RSS is read (the last one is a 404 everywhere)
REQUESTS = ["/", "/style.css", "/app.js", "/about.html", "/docs/", "/img/logo.svg", "/missing.html"]


class StartError(Exception):
    pass


@dataclass
class Samples:
    first_ms: list[float] = field(default_factory=list)
    ready_ms: list[float] = field(default_factory=list)  # execlib: launch -> start line (watching too)
    rss_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    # the peers do not report a port they picked themselves, so every server is given one
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def write_site(root: Path, tree_files: int = 0, per_folder: int = 20) -> None:
    for name, text in SMALL_SITE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for i in range(tree_files):
        folder = root / "tree" / f"g{i // (per_folder * 50):03d}" / f"d{i // per_folder:05d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"page{i % per_folder:02d}.html").write_text(f"<p>{i}</p>", encoding="utf-8")


def execlib_argv(site: Path, port: int, scratch: Path) -> list[str]:
    script = Path(sys.executable).with_name("execlib")
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "execlib"]
    return [*launcher, "serve", str(site), "--port", str(port), "-q"]


def http_server_argv(site: Path, port: int, scratch: Path) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "-d", str(site), "-b", HOST]


def livereload_argv(site: Path, port: int, scratch: Path) -> list[str]:
    script = scratch / "livereload_serve.py"
    if not script.exists():
        script.write_text(LIVERELOAD_SCRIPT, encoding="utf-8")
    return [sys.executable, str(script), str(site), str(port)]


SERVERS: dict[str, Callable[[Path, int, Path], list[str]]] = {
    "execlib": execlib_argv,
    "http.server": http_server_argv,
    "livereload": livereload_argv,
}


def ensure_livereload(install: bool) -> str | None:
    """None when python-livereload can run; otherwise why it is skipped."""
    probe = [sys.executable, "-c", "import livereload"]
    if subprocess.run(probe, capture_output=True, timeout=60).returncode == 0:
        return None
    if not install:
        return "not installed (--no-install): skipped"
    print("python-livereload is not installed: pip install livereload ...", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "livereload"], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0 or subprocess.run(probe, capture_output=True, timeout=60).returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"pip install livereload failed ({lines[-1][:80] if lines else done.returncode}): skipped"
    print("installed python-livereload into", sys.prefix, flush=True)
    return None


def compile_package(where: str | None) -> None:
    """Write execlib's .pyc files (into its __pycache__ folders), as pip install does.

    With PYTHONDONTWRITEBYTECODE set (as in some CI and dev shells) a checkout never gets
    them, and every start would compile execlib's modules from source, which a user's
    installed copy does not.
    """
    env = {**os.environ, "PYTHONPATH": where} if where else None
    find = [sys.executable, "-c", "import execlib, os; print(os.path.dirname(execlib.__file__))"]
    package = subprocess.run(find, capture_output=True, text=True, check=True, env=env).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)


def status_of(port: int, path: str, timeout: float = 5.0) -> int | None:
    """The status of GET path (None when the port refuses); reads only up to the status line."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(256)
                if not chunk:
                    return None
                head += chunk
            return int(head.split(b" ", 2)[1])
    except (ConnectionRefusedError, ConnectionResetError):
        return None


def drain(port: int, path: str) -> int:
    """GET path to the end (so the server does the whole response), returning the status."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise StartError("no VmRSS")


def stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)  # its own group: whatever it started goes too
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1][:120] if lines else "(no output)"


def measure(
    argv: list[str], port: int, log: Path, requests: int, env: dict[str, str] | None, ready_mark: bytes | None = None
) -> tuple[float, float, float | None]:
    """(ms from Popen to the first 200 of GET /, RSS in MB after ``requests`` more requests, ms from
    Popen to ``ready_mark`` in the output: execlib's start line, printed once files are watched too)."""
    with log.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    try:
        deadline = start + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise StartError(f"exited with {proc.returncode}: {tail(log)}")
            if status_of(port, "/") == 200:
                first = (time.perf_counter() - start) * 1000
                break
            if time.perf_counter() > deadline:
                raise StartError(f"no 200 within {START_TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        ready = None
        while ready_mark is not None and ready is None:
            if ready_mark in log.read_bytes():
                ready = (time.perf_counter() - start) * 1000
            elif time.perf_counter() > deadline or proc.poll() is not None:
                raise StartError(f"no start line within {START_TIMEOUT_S:.0f} s: {tail(log)}")
            else:
                time.sleep(POLL_S)
        for i in range(requests):
            drain(port, REQUESTS[i % len(REQUESTS)])
        return first, rss_mb(proc.pid), ready
    finally:
        stop(proc)


def fmt(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f}" if values else "-"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured rounds (default 15)")
    parser.add_argument("--tree-files", type=int, default=100_000, help="files in the big tree (0: small site only)")
    parser.add_argument("--requests", type=int, default=10, help="requests after the first 200, before RSS")
    parser.add_argument("--no-install", action="store_true", help="skip python-livereload when it is missing")
    parser.add_argument("--only", default=",".join(SERVERS), help="servers to run, comma-separated")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run execlib from the checkout at DIR (PYTHONPATH=DIR), as execlib@base: before/after in one run",
    )
    args = parser.parse_args()
    args.only = [name for name in args.only.split(",") if name]
    for name in args.only:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    return args


def choose_servers(
    args: argparse.Namespace, notes: list[str], skipped: dict[str, str]
) -> tuple[list[str], dict[str, dict[str, str] | None]]:
    """The servers to run (python-livereload installed or skipped) and the environment of each."""
    if "livereload" in args.only:
        reason = ensure_livereload(not args.no_install)
        if reason is not None:
            skipped["livereload"] = reason
        else:
            probe = [sys.executable, "-c", "import livereload; print(livereload.__version__)"]
            version = subprocess.run(probe, capture_output=True, text=True, timeout=60).stdout.strip()
            notes.append(f"python-livereload {version or '(version unknown)'}")
    servers = [name for name in args.only if name not in skipped]
    envs: dict[str, dict[str, str] | None] = {name: None for name in servers}
    if args.baseline:
        servers.insert(1, "execlib@base")
        envs["execlib@base"] = {**os.environ, "PYTHONPATH": os.path.abspath(args.baseline)}
    return servers, envs


def run_rounds(
    args: argparse.Namespace,
    servers: list[str],
    envs: dict[str, dict[str, str] | None],
    sites: dict[str, Path],
    scratch: Path,
) -> dict[tuple[str, str], Samples]:
    """Every server on every site, ``args.runs`` measured rounds after one warm-up, interleaved."""
    samples = {(s, site): Samples() for s in servers for site in sites}
    for round_no in range(args.runs + 1):  # round 0 warms the page cache and the .pyc files
        for site_name, site in sites.items():
            for server in servers:
                cell = samples[(server, site_name)]
                try:
                    first, rss, ready = measure(
                        SERVERS[server.split("@")[0]](site, port := free_port(), scratch),
                        port,
                        scratch / f"{server}.log",
                        args.requests,
                        envs[server],
                        b"Serving " if server == "execlib" else None,
                    )
                except (StartError, OSError) as exc:
                    cell.errors.append(str(exc))
                    continue
                if round_no > 0:
                    cell.first_ms.append(first)
                    cell.rss_mb.append(rss)
                    if ready is not None:
                        cell.ready_ms.append(ready)
    return samples


def print_table(args: argparse.Namespace, servers: list[str], sites: list[str], samples: dict) -> None:
    print(
        f"launch -> first 200 of GET / (ms), and VmRSS (MB) after {args.requests} more requests;"
        f" medians of {args.runs} interleaved runs (1 warm-up dropped); Python {sys.version.split()[0]}"
    )
    header = f"{'site':16}{'server':14}{'first 200 ms':>14}{'min':>8}{'max':>8}{'RSS MB':>9}{'ready ms':>10}  errors"
    print(header)
    print("-" * len(header))
    for site_name in sites:
        for server in servers:
            cell = samples[(server, site_name)]
            low = f"{min(cell.first_ms):.1f}" if cell.first_ms else "-"
            high = f"{max(cell.first_ms):.1f}" if cell.first_ms else "-"
            errors = f"{len(cell.errors)}: {cell.errors[-1]}" if cell.errors else ""
            ready = fmt(cell.ready_ms)
            row = f"{site_name:16}{server:14}{fmt(cell.first_ms):>14}{low:>8}{high:>8}{fmt(cell.rss_mb):>9}{ready:>10}"
            print(f"{row}  {errors}")
        print()


def print_ratios_and_goals(servers: list[str], sites: list[str], samples: dict) -> None:
    for site_name in sites:
        ours = samples.get(("execlib", site_name))
        if ours is None or not ours.first_ms:
            continue
        for peer in servers:
            theirs = samples[(peer, site_name)]
            if peer == "execlib" or not theirs.first_ms:
                continue
            first_ratio = statistics.median(ours.first_ms) / statistics.median(theirs.first_ms)
            rss_ratio = statistics.median(ours.rss_mb) / statistics.median(theirs.rss_mb)
            print(f"ratio execlib / {peer} [{site_name}]: first 200 {first_ratio:.2f}, RSS {rss_ratio:.2f}")
    goals = dict(zip(sites, (120.0, 500.0), strict=False))  # the small site, then the big tree
    for site_name, goal_ms in goals.items():
        ours = samples.get(("execlib", site_name))
        if ours is not None and ours.first_ms:
            got = statistics.median(ours.first_ms)
            verdict = "met" if got < goal_ms else "NOT met"
            print(f"goal [{site_name}]: first 200 {got:.1f} ms < {goal_ms:.0f} ms: {verdict}")
    ours = samples.get(("execlib", "small"))
    if ours is not None and ours.rss_mb:
        got = statistics.median(ours.rss_mb)
        print(f"goal [small]: RSS after serving {got:.1f} MB < 40 MB: {'met' if got < 40 else 'NOT met'}")


def main() -> None:
    args = parse_args()
    notes: list[str] = []
    skipped: dict[str, str] = {}
    servers, envs = choose_servers(args, notes, skipped)
    compile_package(None)
    if args.baseline:
        compile_package(os.path.abspath(args.baseline))
    scratch = Path(tempfile.mkdtemp(prefix="execlib-startup-"))
    try:
        sites = {"small": scratch / "small"}
        write_site(sites["small"])
        if args.tree_files > 0:
            began = time.perf_counter()
            sites[f"{args.tree_files:,} files"] = scratch / "tree"
            write_site(scratch / "tree", args.tree_files)
            notes.append(f"tree of {args.tree_files:,} files written in {time.perf_counter() - began:.1f} s")
        load_before = os.getloadavg()[0]
        samples = run_rounds(args, servers, envs, sites, scratch)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(args, servers, list(sites), samples)
    print_ratios_and_goals(servers, list(sites), samples)
    for name, reason in skipped.items():
        print(f"note: {name}: {reason}")
    notes.append(f"load average {load_before:.1f} at the start, {load_after:.1f} at the end ({os.cpu_count()} CPUs)")
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
