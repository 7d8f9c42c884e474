#!/usr/bin/env python3
"""Import time: ``import execlib`` side by side with ``import uvicorn, fastapi``.

execlib imports uvicorn, FastAPI and Starlette lazily, so ``import execlib``,
``execlib --help``, ``execlib status`` and ``execlib stop`` should cost a small
fraction of what the web stack costs. Two measures, from the same run:

* wall time of fresh interpreters (``python -c STATEMENT``), median of ``--runs``
  runs, the statements interleaved so that machine noise hits all of them alike;
  the bare interpreter (``python -c pass``) is measured too, as the floor. This is
  what a user waits for;
* ``python -X importtime``'s own cumulative figure for the top-level imports,
  median over the same number of runs: the import cost alone, without the
  interpreter's start-up (whose noise of a few ms would swamp execlib's import).

It prints both, and the ratios execlib / (uvicorn + fastapi).

Usage::

    python benchmarks/import_time.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": ["-c", "pass"],
    "import execlib": ["-c", "import execlib"],
    "import uvicorn, fastapi": ["-c", "import uvicorn, fastapi"],
    "execlib --help": ["-m", "execlib", "--help"],
}
PEER = "import uvicorn, fastapi"


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def importtime_us(modules: list[str]) -> int:
    """Sum of -X importtime's cumulative microseconds for these top-level modules, in one interpreter."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import " + ", ".join(modules)],
        check=True,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in result.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"; top-level entries are not indented
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name.startswith("  ") and name.strip() in modules:  # nested imports are indented further
            total += int(cumulative)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per measurement (default 20)")
    runs = parser.parse_args().runs

    for args in CASES.values():  # warm the OS file cache and the .pyc files first
        wall(args)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, args in CASES.items():
            samples[name].append(wall(args))
    median = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    base = median["python -c pass"]

    print(f"Python {sys.version.split()[0]}, {runs} runs each, median wall time of a fresh interpreter")
    print(f"{'':26}{'wall ms':>9}{'minus start-up':>16}")
    for name in CASES:
        print(f"{name:26}{median[name]:9.1f}{median[name] - base:16.1f}")

    print()
    print(f"wall ratio  import execlib / import uvicorn, fastapi: {median['import execlib'] / median[PEER]:.2f}")
    print(f"wall ratio  execlib --help / import uvicorn, fastapi: {median['execlib --help'] / median[PEER]:.2f}")

    ours = statistics.median(importtime_us(["execlib"]) for _ in range(runs))
    theirs = statistics.median(importtime_us(["uvicorn", "fastapi"]) for _ in range(runs))
    print()
    print("python -X importtime, cumulative, median:")
    print(f"  import execlib            {ours / 1000:7.1f} ms")
    print(f"  import uvicorn, fastapi   {theirs / 1000:7.1f} ms")
    print(f"  ratio                     {ours / theirs:7.4f}  (1/{theirs / ours:.0f})")


if __name__ == "__main__":
    main()
