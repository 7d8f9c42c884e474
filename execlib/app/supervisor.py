"""The Supervisor: the app's worker processes, in generations, on the server's event loop.

A *generation* is a port on 127.0.0.1 (one the OS picks) and its workers (``--workers N``),
each listening on a socket of its own bound to that port with ``SO_REUSEPORT``: the kernel
spreads new connections evenly over them (one shared socket would let whichever worker wakes
first take them all). The front server forwards to the
live generation only. ``restart_workers()`` (a code change) starts a new generation beside the
old one; once every new worker answers, the new one goes live, the old one is drained (SIGTERM:
in-flight requests finish, up to the drain timeout, then SIGKILL), and ``on_live`` is told (the
pages reload). Changes made while a new generation is starting make it stale: it is stopped and
another one started, so the generation that goes live has the latest code.

With ``standby``, the next generation's workers are started ahead, once a generation is live
(``execlib.app.worker``: they import what the app's workers had imported from the installed
libraries, then wait); a restart tells them to go. A generation whose standby is missing or
has died is started from scratch, as the first one is.

A worker that dies unexpectedly is respawned into its generation (on its socket: requests in the
socket's queue are answered by the new process), up to a budget (``RESTART_BUDGET`` in
``RESTART_WINDOW_S``). Past it, or when a generation cannot start (an import error, a failing
lifespan startup, no answer within the startup timeout), the supervisor has a ``problem``: the
front shows it in every page until a later change starts a generation that works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import sysconfig
import textwrap
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from .target import AppTarget
from .worker import ENV, EXIT_LOAD_FAILED

logger = logging.getLogger("execlib.app")

RESTART_BUDGET = 5
RESTART_WINDOW_S = 60.0
OUTPUT_TAIL_LINES = 20
# Longest line of a worker's output echoed whole, and of its status messages.
OUTPUT_LINE_LIMIT = 1 << 20
STATUS_LINE_LIMIT = 16 << 20


@dataclass(frozen=True)
class AppProblem:
    """Why the app is not being served: a one-line ``title`` and the ``text`` (a traceback) shown in pages."""

    title: str
    text: str
    #: the import string names nothing (no such module or attribute, not callable)
    target_error: bool = False


class Worker:
    """One worker process: its status (ready, or the problem that stopped it) and its output's tail."""

    def __init__(self, process: asyncio.subprocess.Process, generation: int, index: int) -> None:
        self.process = process
        self.generation = generation
        self.index = index  # which of the generation's sockets it listens on
        self.pid = process.pid
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
        self.stopping = False
        self.reported: AppProblem | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def output_tail(self) -> str:
        return "\n".join(self.tail)

    async def stop(self, drain_timeout: float) -> None:
        """SIGTERM (uvicorn drains its connections), then SIGKILL past the deadline."""
        self.stopping = True
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), drain_timeout + 1.0)
            except asyncio.TimeoutError:
                logger.warning("worker %d did not stop within %.1f s; killing it", self.pid, drain_timeout + 1.0)
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        for task in self._tasks:
            await task  # the output read to its end, the exit seen


class Generation:
    """A listening socket and the workers serving from it."""

    def __init__(self, number: int, workers: int) -> None:
        self.number = number
        self.socks: list[socket.socket] = []
        self.port = 0
        reuse_port = getattr(socket, "SO_REUSEPORT", None)  # not on Windows: one shared socket there
        try:
            for _ in range(workers if reuse_port is not None else 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.socks.append(sock)
                if reuse_port is not None:
                    sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
                sock.bind(("127.0.0.1", self.port))
                sock.listen(2048)
                self.port = sock.getsockname()[1]
        except OSError:
            self.close()
            raise
        while len(self.socks) < workers:
            self.socks.append(self.socks[0])
        self.workers: list[Worker] = []
        self.started_at = time.monotonic()
        #: when requests began to come here, and when the first answer went back
        self.live_at: float | None = None
        self.first_answer_at: float | None = None
        #: after a restart: (ms from the change to going live, the slowest worker's start-up ms),
        #: and the ms the previous generation took to stop; logged with the first answer
        self.restart_figures: tuple[float, float] | None = None
        self.old_stopped_ms: float | None = None
        #: a standby's view of the installed packages when it preloaded them (``_libraries_stamp``)
        self.libraries: tuple[int, ...] = ()

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers if worker.alive]

    async def stop(self, drain_timeout: float) -> None:
        await asyncio.gather(*(worker.stop(drain_timeout) for worker in self.workers))
        self.close()

    def close(self) -> None:
        for sock in set(self.socks):
            sock.close()


# (the generation now live, whether a problem was shown before, the generation it replaces)
OnLive = Callable[[Generation, bool, "Generation | None"], Awaitable[None]]
OnProblem = Callable[[AppProblem], Awaitable[None]]


class Supervisor:
    """Starts, respawns, drains and restarts the app's workers (see the module's doc). Loop-only."""

    def __init__(
        self,
        target: AppTarget,
        *,
        workers: int = 1,
        startup_timeout: float = 30.0,
        drain_timeout: float = 1.0,
        on_live: OnLive | None = None,
        on_problem: OnProblem | None = None,
        budget: int = RESTART_BUDGET,
        window: float = RESTART_WINDOW_S,
        standby: bool = False,
        code_dirs: tuple[str, ...] = (),
    ) -> None:
        self.target = target
        #: folders besides the app's own whose modules are the app's code: never preloaded
        self.code_dirs = code_dirs
        self.worker_count = workers
        self.startup_timeout = startup_timeout
        self.drain_timeout = drain_timeout
        self.on_live = on_live
        self.on_problem = on_problem
        self.budget = budget
        self.window = window
        #: the generation requests go to (None before the first one is up, or after a problem)
        self.live: Generation | None = None
        self.problem: AppProblem | None = None
        self.crashes: deque[float] = deque()
        self.respawned = 0
        self._numbers = 0
        self._settled: asyncio.Event | None = None
        self._changed_at: float | None = None  # a change is waiting for a generation that has it
        self._restarting: asyncio.Task[None] | None = None
        self._stopping = False
        self._draining: set[asyncio.Task[None]] = set()
        self.use_standby = standby
        self._standby: Generation | None = None
        self._preload: list[str] = []  # what the last workers had imported from the installed libraries
        #: how many generations started from a standby (the rest started from scratch)
        self.standby_starts = 0

    # -- what the front asks ------------------------------------------------------------

    @property
    def standby_pids(self) -> list[int]:
        """The pids of the workers waiting to serve the next generation."""
        return self._standby.pids if self._standby is not None else []

    @property
    def settled(self) -> asyncio.Event:
        """Set while no generation is starting: held requests wait on it."""
        if self._settled is None:
            self._settled = asyncio.Event()
        return self._settled

    # -- starting and restarting ----------------------------------------------------------

    async def start(self) -> AppProblem | None:
        """Start the first generation; returns the problem when it cannot start."""
        self.settled.clear()
        self._changed_at = time.monotonic()
        # a task, like every restart: a change saved while the first generation starts joins it
        self._restarting = asyncio.get_running_loop().create_task(self._run_restarts())
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._restarting)
        return self.problem

    def restart_workers(self) -> None:
        """Start a new generation (a code change); coalesced with one already starting."""
        if self._stopping:
            return
        if self._changed_at is None:
            self._changed_at = time.monotonic()
        self.settled.clear()
        if self._restarting is None or self._restarting.done():
            self._restarting = asyncio.get_running_loop().create_task(self._run_restarts())

    async def _run_restarts(self) -> None:
        try:
            while self._changed_at is not None and not self._stopping:
                changed_at, self._changed_at = self._changed_at, None
                generation = await self._start_generation()
                if self._stopping:
                    await generation.stop(self.drain_timeout)
                    return
                if self._changed_at is not None:
                    # changed again while it started: its code may be stale, start one with the latest
                    await generation.stop(self.drain_timeout)
                    continue
                await self._settle(generation, changed_at)
        finally:
            if not self._stopping:
                self.settled.set()

    async def _start_generation(self) -> Generation:
        self._numbers += 1
        generation = await self._take_standby()
        if generation is None:
            generation = Generation(self._numbers, self.worker_count)
            try:
                for index in range(self.worker_count):
                    generation.workers.append(await self._spawn(generation, index))
            except BaseException:
                await generation.stop(0)
                raise
        try:
            await self._wait_ready(generation)
        except BaseException:  # cancelled by shutdown() while it started: none of it may be left running
            await asyncio.shield(generation.stop(0))
            raise
        return generation

    async def _take_standby(self) -> Generation | None:
        """The standby generation, told to go, if all its workers are still waiting."""
        standby, self._standby = self._standby, None
        if standby is None:
            return None
        if not all(worker.alive for worker in standby.workers) or _libraries_stamp() != standby.libraries:
            # one died, or packages were installed or upgraded since it imported them: start afresh
            await standby.stop(0)
            return None
        standby.number = self._numbers
        standby.started_at = time.monotonic()
        for worker in standby.workers:
            stdin = worker.process.stdin
            assert stdin is not None
            stdin.write(b"go\n")
        self.standby_starts += 1
        return standby

    async def _prepare_standby(self) -> None:
        """Start the next generation's workers ahead, waiting (see the module's doc)."""
        if not self.use_standby or self._stopping or self._standby is not None:
            return
        generation = Generation(0, self.worker_count)
        generation.libraries = _libraries_stamp()
        self._standby = generation
        try:
            for index in range(self.worker_count):
                generation.workers.append(await self._spawn(generation, index, standby=True))
        except Exception:
            logger.debug("starting a standby worker failed", exc_info=True)
            if self._standby is generation:
                self._standby = None
            await generation.stop(0)
            return
        if self._stopping and self._standby is generation:  # stopped meanwhile: shutdown() missed it
            self._standby = None
            await generation.stop(0)

    async def _wait_ready(self, generation: Generation) -> None:
        waiting = [worker.ready for worker in generation.workers]
        # the first failure ends the wait: the others would only tell the same
        done, pending = await asyncio.wait(waiting, timeout=self.startup_timeout, return_when=asyncio.FIRST_EXCEPTION)
        for future in pending:
            future.cancel()

    def _problem_of(self, generation: Generation) -> AppProblem | None:
        for worker in generation.workers:
            future = worker.ready
            if future.cancelled():
                tail = worker.output_tail()
                return AppProblem(
                    f"the app did not answer within {self.startup_timeout:g} s of starting (worker {worker.pid})",
                    "Its output's last lines:\n" + tail if tail else "It wrote nothing.",
                )
            error = future.exception()
            if isinstance(error, AppProblemError):
                return error.problem
        return None

    async def _settle(self, generation: Generation, changed_at: float) -> None:
        problem = self._problem_of(generation)
        previous, had_problem = self.live, self.problem is not None
        if problem is not None:
            await generation.stop(self.drain_timeout)
            self.live, self.problem = None, problem
            logger.error("%s\n%s", problem.title, textwrap.indent(problem.text, "    "))
            if self.on_problem is not None:
                await self.on_problem(problem)  # shown in the pages before any held request gets it
            self.settled.set()  # held requests get the problem page now
            if previous is not None:
                await previous.stop(self.drain_timeout)
            self._in_background(self._prepare_standby())
            return
        self.live, self.problem = generation, None
        self.crashes.clear()
        generation.live_at = time.monotonic()
        self.settled.set()  # held requests go to the new generation
        if generation.number == 1:
            logger.info("app %s: %s", self.target.import_string, _workers_line(generation))
        else:
            answered = (generation.live_at - changed_at) * 1000
            startup = max(float(w.ready.result().get("startup_ms", 0.0)) for w in generation.workers)
            generation.restart_figures = (answered, startup)
        if previous is not None:
            self._in_background(self._stop_previous(previous, generation))
        else:
            self._in_background(self._prepare_standby())
        if self.on_live is not None:
            await self.on_live(generation, had_problem, previous)

    async def _stop_previous(self, previous: Generation, generation: Generation) -> None:
        """Drain the generation that was live (in the background: requests go to the new one already)."""
        began = time.monotonic()
        await previous.stop(self.drain_timeout)
        generation.old_stopped_ms = (time.monotonic() - began) * 1000
        self._log_restart(generation)
        await self._prepare_standby()  # once the old workers are gone: they do not compete for the CPU

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def answered(self, generation: Generation) -> None:
        """The front got a generation's first response."""
        if generation.first_answer_at is None:
            generation.first_answer_at = time.monotonic()
            self._log_restart(generation)

    def _log_restart(self, generation: Generation) -> None:
        """How long a restart took, once its figures are all known (the old workers stopped, an answer sent)."""
        figures, first_at, live_at = generation.restart_figures, generation.first_answer_at, generation.live_at
        stopped = generation.old_stopped_ms
        if figures is None or first_at is None or live_at is None or stopped is None:
            return
        generation.restart_figures = None
        first = (first_at - live_at) * 1000
        answered, startup = figures
        logger.info(
            "app reloaded: generation %d answered %.0f ms after the change (start-up %.0f ms, first answer %.0f ms); "
            "old workers stopped in %.0f ms",
            generation.number,
            answered,
            startup,
            first,
            stopped,
        )

    # -- workers ----------------------------------------------------------------------

    async def _spawn(self, generation: Generation, index: int, *, standby: bool = False) -> Worker:
        status_read, status_write = os.pipe()
        orders: dict[str, Any] = {
            "import_string": self.target.import_string,
            "app_dir": self.target.app_dir,
            "code_dirs": list(self.code_dirs),
            "factory": self.target.factory,
            "interface": self.target.interface,
            "fd": generation.socks[index].fileno(),
            "status_fd": status_write,
            "graceful_timeout": self.drain_timeout,
        }
        if standby:
            orders.update(standby=True, preload=self._preload)
        env = {**os.environ, ENV: json.dumps(orders), "PYTHONUNBUFFERED": "1"}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "execlib.app.worker",
                stdin=asyncio.subprocess.PIPE,  # the lifeline: closed when this process ends
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=OUTPUT_LINE_LIMIT,
                pass_fds=(generation.socks[index].fileno(), status_write),
                env=env,
            )
        finally:
            os.close(status_write)
        worker = Worker(process, generation.number, index)
        loop = asyncio.get_running_loop()
        worker._tasks = [
            loop.create_task(self._read_status(worker, status_read)),
            loop.create_task(self._echo_output(worker)),
        ]
        worker._tasks.append(loop.create_task(self._watch_exit(worker, generation, worker._tasks[:2])))
        return worker

    async def _read_status(self, worker: Worker, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STATUS_LINE_LIMIT)  # an error's traceback is one line of JSON
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if message.get("event") == "ready" and not worker.ready.done():
                    worker.ready.set_result(message)
                elif message.get("event") == "modules" and isinstance(message.get("modules"), list):
                    self._preload = [str(name) for name in message["modules"]]
                elif message.get("event") == "error":
                    worker.reported = AppProblem(
                        str(message.get("title", "the app failed")),
                        str(message.get("text", "")),
                        bool(message.get("target")),
                    )
        finally:
            transport.close()

    async def _echo_output(self, worker: Worker) -> None:
        stream = worker.process.stdout
        assert stream is not None
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: dropped (the reader goes on), not a stalled worker
                line = b"[execlib: a line of the app's output was too long to show]\n"
            if not line:
                break
            text = line.decode(errors="replace").rstrip("\n")
            worker.tail.append(text)
            print(text, file=sys.stderr, flush=True)  # the app's output, as it would show without execlib

    async def _watch_exit(self, worker: Worker, generation: Generation, readers: list[asyncio.Task[None]]) -> None:
        code = await worker.process.wait()
        await asyncio.gather(*readers, return_exceptions=True)  # its last words read
        if not worker.ready.done():
            problem = worker.reported or AppProblem(
                f"the app's worker exited with status {_status(code)} before it answered",
                "Its output's last lines:\n" + worker.output_tail() if worker.tail else "It wrote nothing.",
            )
            worker.ready.set_exception(AppProblemError(problem))
            worker.ready.exception()  # retrieved: the supervisor reads it through _problem_of
            return
        if worker.stopping or self._stopping or generation is not self.live:
            return
        self._respawn_or_give_up(worker, generation, code)

    def _respawn_or_give_up(self, worker: Worker, generation: Generation, code: int) -> None:
        now = time.monotonic()
        while self.crashes and now - self.crashes[0] > self.window:
            self.crashes.popleft()
        self.crashes.append(now)
        if len(self.crashes) > self.budget:
            tail = worker.output_tail()
            problem = AppProblem(
                f"the app's workers died {len(self.crashes)} times within {self.window:g} s; not restarting them "
                "until the code changes",
                ("The last one exited with status " + _status(code)) + (":\n" + tail if tail else "."),
            )
            self._in_background(self._give_up(generation, problem))
            return
        logger.warning(
            "worker %d exited unexpectedly (status %s); starting another (%d of %d restarts within %g s)",
            worker.pid,
            _status(code),
            len(self.crashes),
            self.budget,
            self.window,
        )
        self._in_background(self._replace(worker, generation))

    async def _replace(self, worker: Worker, generation: Generation) -> None:
        replacement = await self._spawn(generation, worker.index)
        if generation is not self.live or self._stopping:  # given up, replaced or stopped meanwhile
            await replacement.stop(0)
            return
        index = generation.workers.index(worker)
        generation.workers[index] = replacement
        self.respawned += 1
        await asyncio.wait([replacement.ready], timeout=self.startup_timeout)

    async def _give_up(self, generation: Generation, problem: AppProblem) -> None:
        if generation is not self.live:
            return
        self.live, self.problem = None, problem
        await generation.stop(self.drain_timeout)
        logger.error("%s\n%s", problem.title, textwrap.indent(problem.text, "    "))
        if self.on_problem is not None:
            await self.on_problem(problem)
        await self._prepare_standby()

    # -- stopping -----------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Drain and stop every worker (Ctrl-C, ``Server.shutdown()``); nothing is left running."""
        self._stopping = True
        if self._restarting is not None and not self._restarting.done():
            self._restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._restarting
        for task in list(self._draining):
            with contextlib.suppress(BaseException):
                await task
        live, self.live = self.live, None
        standby, self._standby = self._standby, None
        await asyncio.gather(
            *(generation.stop(self.drain_timeout) for generation in (live, standby) if generation is not None)
        )
        self.settled.set()


class AppProblemError(Exception):
    def __init__(self, problem: AppProblem) -> None:
        super().__init__(problem.title)
        self.problem = problem


def _libraries_stamp() -> tuple[int, ...]:
    """When the site-packages folders last changed: installing, upgrading or removing a package
    adds or renames entries there, so a standby that preloaded the old versions is not used."""
    stamps = []
    for key in ("purelib", "platlib"):
        try:
            stamps.append(os.stat(sysconfig.get_paths()[key]).st_mtime_ns)
        except (OSError, KeyError):
            stamps.append(0)
    return tuple(stamps)


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"{-code} ({signal.Signals(-code).name})"
    if code == EXIT_LOAD_FAILED:
        return f"{code} (the app failed to load)"
    return str(code)


def _workers_line(generation: Generation) -> str:
    pids = ", ".join(map(str, generation.pids))
    count = len(generation.workers)
    return f"{count} worker{'s' if count != 1 else ''} (pid {pids}) on 127.0.0.1:{generation.port}"
