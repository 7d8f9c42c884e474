"""Running a build on source changes: never overlapping, never queueing, failures shown in the page.

A change during a build marks the build dirty, and exactly one more build runs
after it. A build is a shell command (run in the current folder, output
captured, killed with its process group on timeout) or a Python callable (sync
in a thread, or async on the server's loop) that reports failure by raising.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import logging
import os
import signal
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

logger = logging.getLogger("execlib.build")

TAIL_LINES = 50

BuildTarget = str | Callable[[], object] | Callable[[], Awaitable[object]]

# Where the frames that call a build callable live: execlib itself, asyncio, and the thread pool
# of asyncio.to_thread. A failed build's traceback starts below them, at the user's own code.
_CALLER_DIRS = tuple(
    os.path.dirname(path) + os.sep
    for path in (
        os.path.dirname(os.path.abspath(__file__)),  # execlib/server -> execlib/
        os.path.abspath(asyncio.__file__),
        os.path.dirname(os.path.abspath(concurrent.futures.__file__)),  # concurrent/futures -> concurrent/
    )
)


@dataclass(frozen=True)
class BuildResult:
    """What one build did: ``ok``, a one-line ``summary``, the output tail, and its time window."""

    ok: bool
    summary: str
    output: str
    started: float
    finished: float
    returncode: int | None = None


class BuildRunner:
    """Runs the build when asked, coalescing requests that arrive while it runs.

    ``on_result`` (async) is awaited after every build with its BuildResult.
    Lives on the server's event loop: call ``request()`` from that loop.
    """

    def __init__(
        self,
        target: BuildTarget,
        on_result: Callable[[BuildResult], Awaitable[None]],
        timeout: float | None = None,
        cwd: str | None = None,
    ) -> None:
        self.target = target
        self.on_result = on_result
        self.timeout = timeout
        self.cwd = cwd
        self.running = False
        self.dirty = False
        self.builds = 0
        self.last: BuildResult | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def description(self) -> str:
        if isinstance(self.target, str):
            return self.target
        return getattr(self.target, "__qualname__", repr(self.target))

    def request(self) -> None:
        """Ask for a build: start one now, or one more after the running one."""
        if self.running:
            self.dirty = True
            return
        self.running = True
        self._idle.clear()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def overlaps(self, mtime: float, slack: float = 0.05) -> bool:
        """Whether a file modified at ``mtime`` was written during a build (its output)."""
        if self.running:
            return True
        last = self.last
        return last is not None and last.started - slack <= mtime <= last.finished + slack

    async def _loop(self) -> None:
        try:
            while True:
                self.dirty = False
                result = await self.run_once()
                if not self.dirty:
                    self.running = False  # before on_result: a change seen during it builds again
                await self.on_result(result)
                if not self.dirty:
                    break
        finally:
            self.running = False
            self._idle.set()

    async def run_once(self) -> BuildResult:
        self.builds += 1
        started = time.time()
        logger.debug("build: running %s", self.description)  # the outcome is the one line shown at INFO
        try:
            if isinstance(self.target, str):
                result = await self._run_command(self.target, started)
            else:
                result = await self._run_callable(started)
        except Exception as error:  # a broken build must never take the server down
            result = BuildResult(False, f"Build could not run: {error}", "", started, time.time())
        self.last = result
        if result.ok:
            logger.info("%s", result.summary)  # "build succeeded in 0.46 s"
        else:
            tail = "\n".join("    " + line for line in result.output.splitlines())
            logger.error("%s%s", result.summary, "\n" + tail if tail else "")
        return result

    async def _run_command(self, command: str, started: float) -> BuildResult:
        process = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=True,  # its own process group, so a timeout kills the whole build
        )
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

        async def collect() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

        try:
            await asyncio.wait_for(asyncio.gather(collect(), process.wait()), self.timeout)
        except asyncio.TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            return BuildResult(
                False,
                f"Build timed out after {self.timeout:g} s: {command}",
                "\n".join(tail),
                started,
                time.time(),
                process.returncode,
            )
        except asyncio.CancelledError:
            _kill_group(process.pid)
            raise
        code = process.returncode
        finished = time.time()
        if code == 0:
            return BuildResult(
                True, f"build succeeded in {finished - started:.2f} s", "\n".join(tail), started, finished, code
            )
        summary = f"Build failed: {command} (exit status {code})"
        if code == 127:
            summary = f"Build could not start: {command} (command not found, exit status 127)"
        return BuildResult(False, summary, "\n".join(tail), started, finished, code)

    async def _run_callable(self, started: float) -> BuildResult:
        target = self.target
        assert callable(target)
        try:
            if inspect.iscoroutinefunction(target):
                await asyncio.wait_for(target(), self.timeout)
            else:
                outcome = await asyncio.wait_for(asyncio.to_thread(target), self.timeout)
                if inspect.isawaitable(outcome):
                    await asyncio.wait_for(outcome, self.timeout)
        except asyncio.TimeoutError:
            return BuildResult(
                False, f"Build timed out after {self.timeout:g} s: {self.description}", "", started, time.time()
            )
        except Exception as error:
            text = "".join(traceback.format_exception_only(type(error), error)).strip()
            lines = user_traceback(error).splitlines()[-TAIL_LINES:]
            return BuildResult(False, f"Build failed: {text}", "\n".join(lines), started, time.time())
        finished = time.time()
        return BuildResult(True, f"build succeeded in {finished - started:.2f} s", "", started, finished)


def user_traceback(error: BaseException) -> str:
    """``error``'s formatted traceback, from the build callable's frame down.

    The frames above it (execlib's build runner, asyncio's wait_for and to_thread, the worker
    thread) say nothing about the user's bug, and pushed its lines out of the overlay's tail.
    """
    tb: TracebackType | None = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_CALLER_DIRS):
        tb = tb.tb_next
    if tb is None:  # raised inside those frames themselves: better all of it than nothing
        tb = error.__traceback__
    return "".join(traceback.TracebackException(type(error), error, tb).format())


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
