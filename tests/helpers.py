"""Shared test helpers: deadline polling and CLI subprocesses."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, message: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")
        time.sleep(interval)  # polling interval, bounded by the deadline above


def read_line(proc: subprocess.Popen[str], timeout: float = 15.0, stream: str = "stdout") -> str:
    """Read one line from a child's pipe, failing after ``timeout`` instead of hanging.

    A reader thread per pipe feeds a queue: ``select`` on the pipe alone would miss
    lines already sitting in Python's buffer.
    """
    readers = proc.__dict__.setdefault("_line_queues", {})
    lines = readers.get(stream)
    if lines is None:
        lines = readers[stream] = queue.Queue()
        pipe = getattr(proc, stream)

        def pump() -> None:
            try:
                for line in pipe:
                    lines.put(line)
            except (ValueError, OSError):
                pass  # the pipe was closed by communicate(): the test has what it needs
            lines.put("")  # end of stream

        threading.Thread(target=pump, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line on {stream} within {timeout} s") from None


def remaining_lines(proc: subprocess.Popen[str], timeout: float = 15.0) -> list[str]:
    """Every further stdout line until the child closes it (use after it was told to exit)."""
    collected = []
    while line := read_line(proc, timeout):
        collected.append(line)
    return collected


def execlib_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "execlib", *args]


def start_cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> tuple[subprocess.Popen[str], str]:
    """Start ``execlib serve ...`` and return (process, url) once it announced its URL."""
    proc = subprocess.Popen(
        execlib_cmd(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )
    line = read_line(proc)
    if line.startswith("{"):  # the JSON start line (--banner json, --log-format json)
        return proc, json.loads(line)["url"]
    match = re.search(r"at (http://\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"unexpected first line {line!r}; stderr: {proc.stderr.read()}")
    return proc, match.group(1)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop in its own thread.

    Playwright's sync API keeps an event loop running in the main thread for the
    browser tests' session, so ``asyncio.run`` there would refuse to start.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
