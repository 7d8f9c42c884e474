"""Polling cost and latency on a big tree: execlib's polling listener vs watchfiles' polling, inotify as reference.

Run:  python benchmarks/poll_cost.py [--files 100000] [--per-folder 20] [--idle 10] [--only poll,inotify]

Builds a tree of ``--files`` files, ``--per-folder`` to a leaf folder, in a
temp folder, and ages every timestamp by an hour (a tree at rest, as a
checkout is, not one written a second ago). Then, for each backend in a fresh
process, one after the other (never side by side: they would share the CPU):

- start: how long ``start()`` takes (the first snapshot or the watches);
- idle CPU: CPU time of the whole process (every thread, Rust ones too) over
  ``--idle`` seconds with nothing changing, as a percentage of one core;
- hot in place: a file in a folder edited a moment ago, rewritten in place
  10 times at random phases; median and max from just before the write to
  the route callback starting (debounce 0);
- cold in place: 20 files in 20 untouched folders rewritten in place (same
  inode: the folder's own mtime does not move), in two rounds of 10;
- cold rename: 10 files in untouched folders saved by temp file + rename, as
  most editors save;
- 2nd save seen: a file saved twice within one clock second with a poll in
  between (the first save's event has arrived, and 0.3 s passed for any
  straggler, before the second save), 3 tries: how many second saves were
  reported within 2 s.

An edit with no event within 5 s (hot) or 30 s (cold) counts as lost.

Each backend edits its own folders, so none sees another's edits as recent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BACKENDS = ("poll", "watchfiles-poll", "inotify")
COLD_ROUNDS, COLD_EACH = 2, 10
HOT_EDITS = 10
FOLDERS_EACH = 32  # hot 1, cold in place 20, cold rename 10, same second 1
SAME_SECOND_TRIES = 3


def build_tree(root: Path, files: int, per_folder: int) -> list[str]:
    """Leaf folders of ``per_folder`` files, 50 to a group folder; returns the leaf folders' relative paths."""
    leaves = []
    aged = time.time() - 3600
    for d in range(-(-files // per_folder)):
        rel = f"group{d // 50:03d}/dir{d:05d}"
        folder = root / rel
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(min(per_folder, files - d * per_folder)):
            path = folder / f"file{f:03d}.txt"
            path.write_text(f"content of {rel}/{f}\n")
            os.utime(path, (aged, aged))
        leaves.append(rel)
    for folder, _, _ in os.walk(root):
        os.utime(folder, (aged, aged))
    return leaves


# -- one backend, in its own process ---------------------------------------------------------------


class Arrivals:
    """The route callback: when each file's event arrived."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.cond = threading.Condition()

    def __call__(self, event: object) -> None:
        now = time.perf_counter()
        with self.cond:
            self.times.setdefault(event.name, []).append(now)  # type: ignore[attr-defined]
            self.cond.notify_all()

    def wait_after(self, name: str, since: float, timeout: float) -> float | None:
        """Seconds from ``since`` to the first event for ``name`` arriving after it, or None on timeout."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                later = [t for t in self.times.get(name, []) if t > since]
                if later:
                    return later[0] - since
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)


def rewrite_in_place(path: Path, text: str) -> float:
    began = time.perf_counter()
    path.write_text(text)  # truncate and write, same inode: the folder's own mtime does not move
    return began


def save_by_rename(path: Path, text: str) -> float:
    temp = path.with_name(f"{path.name}.saving")
    began = time.perf_counter()
    temp.write_text(text)
    os.replace(temp, path)
    return began


def run_backend(backend: str, root: str, folders: list[str], idle: float) -> dict[str, object]:
    from execlib import PathRouter
    from execlib.listeners import get_listener

    rng = random.Random(backend)
    arrivals = Arrivals()
    router = PathRouter()
    router.register(root, arrivals, debounce=0, delay=0)
    if backend == "watchfiles-poll":
        listener = get_listener(router, backend="watchfiles", poll=True)
    else:
        listener = get_listener(router, backend=backend)
    began = time.perf_counter()
    listener.start()
    result: dict[str, object] = {"start_s": time.perf_counter() - began}
    try:
        time.sleep(2)  # let start-up work (first scans, thread start) pass before measuring idle
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(idle)  # the idle window itself: nothing changes, we only watch the CPU clock
        result["idle_cpu_pct"] = 100 * (time.process_time() - cpu) / (time.perf_counter() - wall)

        hot_dir, cold_dirs, rename_dirs, same_dir = folders[0], folders[1:21], folders[21:31], folders[31]
        hot = f"{hot_dir}/file000.txt"
        latencies: dict[str, list[float | None]] = {"hot": [], "cold": [], "rename": []}
        t0 = rewrite_in_place(Path(root, hot), "warm-up\n")  # makes the folder hot
        arrivals.wait_after(hot, t0, 15)
        for i in range(HOT_EDITS):
            time.sleep(rng.uniform(0, 0.35))  # part of the workload: edits at random phases of the poll
            t0 = rewrite_in_place(Path(root, hot), f"hot edit {i}\n")
            latencies["hot"].append(arrivals.wait_after(hot, t0, 5))
        for r in range(COLD_ROUNDS):
            batch = [(f"{d}/file001.txt", 0.0) for d in cold_dirs[r * COLD_EACH : (r + 1) * COLD_EACH]]
            batch = [(rel, rewrite_in_place(Path(root, rel), f"cold edit {r}\n")) for rel, _ in batch]
            latencies["cold"].extend(arrivals.wait_after(rel, t0, 30) for rel, t0 in batch)
        batch = [(f"{d}/file002.txt", 0.0) for d in rename_dirs]
        batch = [(rel, save_by_rename(Path(root, rel), "renamed save\n")) for rel, _ in batch]
        latencies["rename"].extend(arrivals.wait_after(rel, t0, 30) for rel, t0 in batch)
        result["latency_ms"] = {k: [None if v is None else v * 1000 for v in vs] for k, vs in latencies.items()}

        same = f"{same_dir}/file003.txt"
        t0 = rewrite_in_place(Path(root, same), "make the folder hot\n")
        arrivals.wait_after(same, t0, 15)
        seen = tries = 0
        while tries < SAME_SECOND_TRIES:
            time.sleep(1 - time.time() % 1)  # align to the start of a clock second (the scenario needs it)
            second = int(time.time())
            t0 = rewrite_in_place(Path(root, same), f"first save {tries}\n")
            if arrivals.wait_after(same, t0, 0.5) is None:
                continue  # no poll between the saves within this second: not the scenario, try again
            time.sleep(0.3)  # let any straggling event of the first save arrive: it must not count as the second
            if int(time.time()) != second:
                continue
            t0 = rewrite_in_place(Path(root, same), f"second save {tries}\n")
            if int(time.time()) != second:
                continue
            tries += 1
            seen += arrivals.wait_after(same, t0, 2.0) is not None
        result["same_second_seen"] = f"{seen}/{tries}"
    finally:
        listener.stop(5)
    return result


# -- report ---------------------------------------------------------------------------------------------


def cell(values: list[float | None]) -> str:
    """median / max in ms, and how many edits were lost."""
    got = [v for v in values if v is not None]
    text = f"{statistics.median(got):.0f} / {max(got):.0f}" if got else "-"
    return text + (f", {len(values) - len(got)} lost" if len(got) < len(values) else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-folder", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument("--only", default=",".join(BACKENDS), help="comma-separated backends")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, root, folders = args.child
        print(json.dumps(run_backend(backend, root, json.loads(folders), args.idle)))
        return

    backends = [b for b in args.only.split(",") if b]
    tmp = tempfile.mkdtemp(prefix="execlib-poll-cost-")
    try:
        root = os.path.join(tmp, "tree")
        began = time.perf_counter()
        leaves = build_tree(Path(root), args.files, args.per_folder)
        folders = len(leaves) + -(-len(leaves) // 50) + 1
        print(
            f"tree: {args.files} files in {folders} folders ({args.per_folder} per leaf), "
            f"built in {time.perf_counter() - began:.1f} s; timestamps aged by an hour",
            flush=True,
        )
        random.Random(1).shuffle(leaves)
        results = {}
        for i, backend in enumerate(backends):
            own = leaves[i * FOLDERS_EACH : (i + 1) * FOLDERS_EACH]  # folders no other backend touched
            command = [sys.executable, __file__, "--idle", str(args.idle), "--child", backend, root, json.dumps(own)]
            out = subprocess.run(command, capture_output=True, text=True, timeout=170)
            if out.returncode != 0:
                print(f"{backend}: failed\n{out.stderr}", file=sys.stderr)
                continue
            results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {backend} done", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"idle CPU over {args.idle:g} s (% of one core, whole process); latency: write -> callback start, ms")
    header = (
        f"{'backend':<16} {'start s':>7} {'idle CPU %':>10}  {'hot in place':<18} {'cold in place':<18} "
        f"{'cold rename':<18} {'2nd save seen':>13}"
    )
    print(header)
    print("-" * len(header))
    for backend, r in results.items():
        lat = r["latency_ms"]
        cells = "".join(f"{cell(lat[k]):<19}" for k in ("hot", "cold", "rename"))
        print(f"{backend:<16} {r['start_s']:7.2f} {r['idle_cpu_pct']:10.1f}  {cells}{r['same_second_seen']:>13}")
    if "poll" in results and "watchfiles-poll" in results:
        ratio = results["poll"]["idle_cpu_pct"] / max(results["watchfiles-poll"]["idle_cpu_pct"], 1e-9)
        print(f"idle CPU ratio poll / watchfiles-poll = {ratio:.2f}")


if __name__ == "__main__":
    main()
