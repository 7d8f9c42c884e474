"""Listener benchmark: write->callback latency and watch set-up cost, inotify vs watchfiles vs watchdog.

Run:  python benchmarks/listener_latency.py [--changes 200] [--files 20000] [--folders 2000]

1. Latency: for each backend, ``--changes`` sequential writes to a watched
   file; each time from just before the write to the callback starting
   (median, p99). Our inotify backend reports a change when the writer
   closes the file; watchdog is shown at its first event (IN_MODIFY, sent at
   truncation, before the new content is there) and at its close event, the
   like-for-like figure. Our backends run with debounce 0 (delay 0) and with the
   route defaults (debounce 200 ms, delay 30 ms); watchdog, the peer, has no
   debounce and is measured raw.
2. Set-up: a tree of ``--files`` files in ``--folders`` folders; each backend
   in a fresh process: time for start() to return with every folder watched
   and the resident memory it added, then one change deep in the tree must be
   seen (a check that the watch really is in place).

Needs watchdog (``pip install watchdog``) for the peer column.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- latency ------------------------------------------------------------------------------


def latency_execlib(backend: str, changes: int, debounce: int | None, folder: Path) -> list[float]:
    from execlib import PathRouter

    started = threading.Event()
    stamp: list[float] = []

    def callback(event: object) -> None:
        stamp.append(time.perf_counter())
        started.set()

    router = PathRouter()
    kwargs = {} if debounce is None else {"debounce": debounce, "delay": 0}
    router.register(folder, callback, glob="target.txt", **kwargs)
    listener = router.get_listener(backend=backend)
    target = folder / "target.txt"
    target.write_text("start")
    results = []
    with listener:
        for i in range(changes):
            started.clear()
            stamp.clear()
            begin = time.perf_counter()
            target.write_text(f"change {i}")
            if not started.wait(5):
                raise RuntimeError(f"{backend}: change {i} was not seen")
            results.append((stamp[0] - begin) * 1000)
    return results


def latency_watchdog(changes: int, folder: Path, on_close: bool) -> list[float]:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    started = threading.Event()
    stamp: list[float] = []
    target = folder / "target.txt"
    target.write_text("start")

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
            if on_close and event.event_type != "closed":
                return
            if event.src_path.endswith("target.txt") and not started.is_set():
                stamp.append(time.perf_counter())
                started.set()

    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=True)
    observer.start()
    results = []
    try:
        for i in range(changes):
            started.clear()
            stamp.clear()
            begin = time.perf_counter()
            target.write_text(f"change {i}")
            if not started.wait(5):
                raise RuntimeError(f"watchdog: change {i} was not seen")
            results.append((stamp[0] - begin) * 1000)
            # let this write's remaining events (modify, close) drain before the next measurement
            time.sleep(0.005)
    finally:
        observer.stop()
        observer.join(5)
    return results


# -- set-up ---------------------------------------------------------------------------------


def make_tree(root: Path, files: int, folders: int) -> Path:
    """``folders`` leaf folders (in groups of 50) holding ``files`` files; returns the last folder."""
    per_folder = files // folders
    for d in range(folders):
        folder = root / f"group{d // 50:03d}" / f"dir{d:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(per_folder):
            (folder / f"file{f:02d}.txt").write_text("x")
    return folder


def setup_child(backend: str, root: str, last_folder: str) -> None:
    """Runs in a fresh process: time start(), measure RSS added, check a deep change is seen; print JSON."""
    seen = threading.Event()
    deep = os.path.join(last_folder, "probe.txt")
    if backend == "watchdog":
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
                if event.src_path.endswith("probe.txt"):
                    seen.set()

        observer = Observer()
        observer.schedule(Handler(), root, recursive=True)
        before = rss_kib()
        begin = time.perf_counter()
        observer.start()
        elapsed = time.perf_counter() - begin
        after = rss_kib()

        def stop() -> None:
            observer.stop()
            observer.join(5)

    else:
        from execlib import PathRouter
        from execlib.listeners import get_listener

        router = PathRouter()
        router.register(root, lambda e: seen.set(), glob="**/probe.txt", debounce=0, delay=0)
        listener = get_listener(router, backend=backend)
        before = rss_kib()
        begin = time.perf_counter()
        listener.start()
        elapsed = time.perf_counter() - begin
        after = rss_kib()
        stop = listener.stop
    with open(deep, "w") as f:
        f.write("probe")
    ok = seen.wait(10)
    stop()
    os.unlink(deep)
    print(json.dumps({"setup_s": elapsed, "rss_kib": after - before, "seen": ok}))


def measure_setup(backend: str, root: Path, last: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--setup-child", backend, str(root), str(last)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- report -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--folders", type=int, default=2_000)
    parser.add_argument("--setup-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_child:
        setup_child(*args.setup_child)
        return
    try:
        import watchdog  # noqa: F401

        peers = ["watchdog"]
    except ImportError:
        print("watchdog is not installed (pip install watchdog): no peer column", file=sys.stderr)
        peers = []

    print(f"write->callback-start latency over {args.changes} changes (ms)")
    print(f"{'backend':<12} {'debounce':<16} {'median':>8} {'p99':>8}")
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("inotify", "watchfiles"):
            for label, debounce in (("0", 0), ("default (200+30)", None)):
                folder = Path(tmp) / f"{backend}-{label[:1]}"
                folder.mkdir()
                values = latency_execlib(backend, args.changes, debounce, folder)
                med, p99 = statistics.median(values), percentile(values, 99)
                medians[f"{backend}/{label[:1]}"] = med
                print(f"{backend:<12} {label:<16} {med:8.2f} {p99:8.2f}", flush=True)
        for peer in peers:
            # first event (IN_MODIFY at truncation: before the new content is written), and on close
            for label, on_close in (("none, 1st event", False), ("none, on close", True)):
                folder = Path(tmp) / f"watchdog-{on_close}"
                folder.mkdir()
                values = latency_watchdog(args.changes, folder, on_close)
                med, p99 = statistics.median(values), percentile(values, 99)
                medians["watchdog" if on_close else "watchdog-first"] = med
                print(f"{peer:<12} {label:<16} {med:8.2f} {p99:8.2f}", flush=True)
    if "watchdog" in medians:
        for backend in ("inotify", "watchfiles"):
            ratio = medians["watchdog"] / medians[f"{backend}/0"]
            print(f"  watchdog (on close) median / {backend} (debounce 0) median = {ratio:.2f}x")

    print()
    print(f"watch set-up for {args.files} files in {args.folders} folders (fresh process each)")
    print(f"{'backend':<12} {'set-up (s)':>10} {'RSS added (MiB)':>16} {'change seen':>12}")
    setups: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        last = make_tree(root, args.files, args.folders)
        for backend in ("inotify", "watchfiles", *peers):
            result = measure_setup(backend, root, last)
            setups[backend] = result
            print(
                f"{backend:<12} {result['setup_s']:10.3f} {result['rss_kib'] / 1024:16.1f} "
                f"{'yes' if result['seen'] else 'NO':>12}",
                flush=True,
            )
    if "watchdog" in setups:
        for backend in ("inotify", "watchfiles"):
            ratio = setups["watchdog"]["setup_s"] / setups[backend]["setup_s"]
            print(f"  watchdog set-up / {backend} set-up = {ratio:.2f}x")


if __name__ == "__main__":
    main()
