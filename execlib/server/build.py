"""Running a build on source changes: never overlapping, never queueing, failures shown in the page.

A change during a build marks the build dirty, and exactly one more build runs
after it. A build is a shell command (run in the current folder, its output
streamed to the ``execlib.build.output`` logger as it runs, killed with its
process group on timeout), a ``WarmCommand`` (a generator run in a warm helper
process, the same way: ``execlib.server.warm``) or a Python callable (sync in a
thread, or async on the server's loop) that reports failure by raising.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import inspect
import logging
import os
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from ..log import BUILD_OUTPUT_LOGGER
from .warm import BuildProcess, ColdProcess, WarmCommand

logger = logging.getLogger("execlib.build")

TAIL_LINES = 50

BuildTarget = str | WarmCommand | Callable[[], object] | Callable[[], Awaitable[object]]

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
    """What one build did: ``ok``, a one-line ``summary``, the output tail, and its time window.

    ``warnings`` holds the lines of its output that were warnings (``WARNING_PATTERN``, or the
    runner's own pattern).
    """

    ok: bool
    summary: str
    output: str
    started: float
    finished: float
    returncode: int | None = None
    warnings: tuple[str, ...] = ()
    streamed: bool = False  # its output was shown line by line as it ran (a command; not a callable)


# A warning line as Sphinx ("index.rst:3: WARNING: ..."; docutils' "ERROR:" messages too, which
# Sphinx also counts as warnings of a build that succeeded), MkDocs ("WARNING -  ..."), compilers
# ("a.c:1:2: warning: ...") and Python's warnings ("UserWarning: ...") print it, not a line that
# only mentions warnings ("build succeeded, 2 warnings.").
WARNING_PATTERN = re.compile(r"(?:^|:\s*|\]\s*)(?:WARNING|ERROR|CRITICAL|SEVERE|[A-Za-z]*Warning|warning)\s*[:-]")
# Kept apart from a summary's warning count: what an overlay can usefully show.
MAX_WARNING_LINES = 200
# How long a killed build may take to report its end before its helper is given up on.
KILL_GRACE_S = 5.0

output_logger = logging.getLogger(BUILD_OUTPUT_LOGGER)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class BuildRunner:
    """Runs the build when asked, coalescing requests that arrive while it runs.

    ``on_result`` (async) is awaited after every build with its BuildResult.
    Lives on the server's event loop: call ``request()`` from that loop.
    A command's output goes to the ``execlib.build.output`` logger line by line as it is printed
    (warning lines at WARNING, so ``-q`` still shows them). With ``warnings_as_errors`` a build
    that printed warnings counts as failed, and its warnings are what the overlay shows.
    """

    def __init__(
        self,
        target: BuildTarget,
        on_result: Callable[[BuildResult], Awaitable[None]],
        timeout: float | None = None,
        cwd: str | None = None,
        *,
        warnings_as_errors: bool = False,
        warning_pattern: re.Pattern[str] = WARNING_PATTERN,
    ) -> None:
        self.target = target
        self.on_result = on_result
        self.timeout = timeout
        self.cwd = cwd
        self.warnings_as_errors = warnings_as_errors
        self.warning_pattern = warning_pattern
        self.running = False
        self.dirty = False
        self.builds = 0
        self.last: BuildResult | None = None
        #: (started, finished, number) of recent builds, oldest first, and the start of the one running
        self.windows: collections.deque[tuple[float, float, int]] = collections.deque(maxlen=32)
        self.started_at: float | None = None
        self._said_cold = False
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def description(self) -> str:
        if isinstance(self.target, str):
            return self.target
        if isinstance(self.target, WarmCommand):
            return self.target.description
        return getattr(self.target, "__qualname__", repr(self.target))

    def request(self) -> None:
        """Ask for a build: start one now, or one more after the running one."""
        if self.running:
            self.dirty = True
            return
        self.running = True
        self._idle.clear()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def build_now(self) -> BuildResult | None:
        """Request a build and wait until no build runs (the start-up build: serialised with the rest)."""
        self.request()
        await self._idle.wait()
        return self.last

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def overlaps(self, mtime: float, slack: float = 0.05) -> bool:
        """Whether a file modified at ``mtime`` was written during a build (its output)."""
        return self.build_at(mtime, slack) is not None

    def build_at(self, mtime: float, slack: float = 0.05, end_slack: float | None = None) -> int | None:
        """The number (1 for the first) of the build that ``mtime`` falls within.

        ``slack`` widens each build's time before its start and, unless ``end_slack`` says
        otherwise, after its end.
        """
        after = slack if end_slack is None else end_slack
        if self.started_at is not None and mtime >= self.started_at - slack:
            return self.builds
        for started, finished, number in reversed(self.windows):
            if started - slack <= mtime <= finished + after:
                return number
            if mtime > finished + after:
                break  # windows are in order: older ones end earlier still
        return None

    async def aclose(self) -> None:
        """Stop what a build keeps between builds (a warm helper process)."""
        if isinstance(self.target, WarmCommand):
            await self.target.aclose()

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
        self.started_at = started
        logger.debug("build: running %s", self.description)
        try:
            if isinstance(self.target, (str, WarmCommand)):
                result = dataclasses.replace(await self._run_process(started), streamed=True)
            else:
                result = await self._run_callable(started)
        except Exception as error:  # a broken build must never take the server down
            result = BuildResult(False, f"Build could not run: {error}", "", started, time.time())
        finally:
            self.started_at = None
        self.windows.append((result.started, result.finished, self.builds))
        self.last = result
        return result  # on_result says how it went, with what it did to the pages

    async def _start(self) -> BuildProcess:
        if isinstance(self.target, WarmCommand):
            process = await self.target.start()
            if self.target.cold_reason is not None and not self._said_cold:
                self._said_cold = True
                logger.warning("builds run the plain command each time: %s", self.target.cold_reason)
            return process
        assert isinstance(self.target, str)
        shell = await asyncio.create_subprocess_shell(
            self.target,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # a Python build's output streams as it runs
            start_new_session=True,  # its own process group, so a timeout kills the whole build
        )
        return ColdProcess(shell)

    async def _run_process(self, started: float) -> BuildResult:
        command = self.description
        process = await self._start()
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        warnings: list[str] = []
        count = 0

        async def collect() -> None:
            nonlocal count
            async for line in process.lines():
                tail.append(line)
                if self.warning_pattern.search(line):
                    count += 1
                    if len(warnings) < MAX_WARNING_LINES:
                        warnings.append(line)
                    output_logger.warning("%s", line)
                else:
                    output_logger.info("%s", line)

        reader = asyncio.ensure_future(collect())
        try:
            await asyncio.wait_for(asyncio.shield(reader), self.timeout)
            code = await process.wait()
        except asyncio.TimeoutError:
            process.kill()
            await self._drain(reader)
            return BuildResult(
                False,
                f"Build timed out after {self.timeout:g} s: {command}",
                "\n".join(tail),
                started,
                time.time(),
                None,
            )
        except asyncio.CancelledError:
            process.kill()
            reader.cancel()
            raise
        finished = time.time()
        took = finished - started
        if code == 0 and count and self.warnings_as_errors:
            return BuildResult(
                False,
                f"Build had {_plural(count, 'warning')}, and warnings are errors: {command}",
                "\n".join(warnings),
                started,
                finished,
                code,
                tuple(warnings),
            )
        if code == 0:
            said = f" with {_plural(count, 'warning')}" if count else ""
            return BuildResult(
                True, f"build ok{said} in {took:.2f} s", "\n".join(tail), started, finished, code, tuple(warnings)
            )
        summary = f"Build failed: {command} (exit status {code})"
        if code == 127 and isinstance(self.target, str):
            summary = f"Build could not start: {command} (command not found, exit status 127)"
        return BuildResult(False, summary, "\n".join(tail), started, finished, code, tuple(warnings))

    @staticmethod
    async def _drain(reader: asyncio.Future[None]) -> None:
        """Let a killed build's output run out (a warm helper then reports the end and carries on)."""
        try:
            await asyncio.wait_for(reader, KILL_GRACE_S)
        except asyncio.TimeoutError:
            reader.cancel()

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
        return BuildResult(True, f"build ok in {finished - started:.2f} s", "", started, finished)


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
