"""Warm builds: a generator's command run in a process that imported the generator once.

Starting ``sphinx-build`` or ``mkdocs build`` costs a new interpreter and the tool's imports
(0.3-0.5 s) on every save, which is most of a small site's build. A ``WarmCommand`` keeps one
helper process (``warm_worker.py``) with the tool imported and forks it for each build, so a build
starts with everything loaded but nothing left over from the one before: conf.py and mkdocs.yml are
read again, extensions set up again, and a build that crashes takes only its own fork with it.

The helper runs only on POSIX systems (it forks). It is started on the first build and stopped by
``aclose()``; if it dies, the next build starts a new one. ``argv`` is the equivalent plain command
(what ``execlib sphinx`` prints), and ``cold=True`` runs exactly that each time instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

WORKER_SOURCE = Path(__file__).with_name("warm_worker.py")


class WarmCommand:
    """A build target: ``argv`` run as ``entry(args)`` in a fork of a warm ``interpreter``.

    ``argv`` is the plain command (shown, and run as it is when ``cold``); ``args`` are the
    arguments ``entry`` gets, by default ``argv[1:]`` (``sphinx-build -b html ...``); ``entry`` is
    ``module:function`` (``sphinx.cmd.build:main``, ``mkdocs.__main__:cli``); ``preload`` names
    modules the helper imports once, up front; ``cwd`` is where builds run. When the helper
    cannot import the entry's module, builds run cold, and ``on_cold`` is called with why.
    """

    def __init__(
        self,
        argv: Sequence[str],
        entry: str,
        *,
        args: Sequence[str] | None = None,
        preload: Sequence[str] = (),
        interpreter: str = sys.executable,
        cwd: str | None = None,
        cold: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.args = list(argv[1:] if args is None else args)
        self.entry = entry
        self.preload = tuple(preload)
        self.interpreter = interpreter
        self.cwd = os.path.abspath(cwd or os.getcwd())
        self.cold = cold or not hasattr(os, "fork")
        self._worker: asyncio.subprocess.Process | None = None
        self._sentinel = ""
        self.cold_reason: str | None = None

    @property
    def description(self) -> str:
        return shlex.join(self.argv)

    async def start(self) -> BuildProcess:
        """Start one build; its output, exit status and kill switch are on the returned handle."""
        worker = None if self.cold else await self._ensure_worker()
        if worker is None:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
            return ColdProcess(process)
        assert worker.stdin is not None
        request = {"argv0": self.argv[0], "args": self.args, "cwd": self.cwd}
        import json  # only here: a cold build never needs it

        worker.stdin.write((json.dumps(request) + "\n").encode())
        await worker.stdin.drain()
        return WarmProcess(self, worker, self._sentinel)

    async def _ensure_worker(self) -> asyncio.subprocess.Process | None:
        """The helper, started (and waited for: it imports the tool) if need be; None to run cold."""
        worker = self._worker
        if worker is not None and worker.returncode is None:
            return worker
        # random enough never to occur in a tool's output by chance (not a secret)
        self._sentinel = "\x1eexeclib-" + os.urandom(8).hex()
        worker = self._worker = await asyncio.create_subprocess_exec(
            self.interpreter,
            "-c",
            WORKER_SOURCE.read_text(encoding="utf-8"),
            self._sentinel,
            self.entry,
            *self.preload,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C in the terminal is execlib's to handle, not the helper's
        )
        assert worker.stdout is not None
        while True:
            raw = await worker.stdout.readline()
            text = raw.decode("utf-8", "replace").rstrip("\r\n")  # not strip(): the sentinel's \x1e is "space"
            if not raw or text.startswith(self._sentinel + " cold"):
                self.cold = True  # an interpreter without the tool, or one that cannot fork
                self.cold_reason = text.removeprefix(self._sentinel + " cold").strip() or "its helper did not start"
                await self.aclose()
                return None
            if text == self._sentinel + " ready":
                return worker

    def forget_worker(self) -> None:
        """Kill the helper (it misbehaved); the next build starts a new one."""
        worker, self._worker = self._worker, None
        if worker is not None and worker.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()

    async def aclose(self) -> None:
        """Stop the helper and wait for it."""
        worker, self._worker = self._worker, None
        if worker is None or worker.returncode is not None:
            return
        if worker.stdin is not None:
            worker.stdin.close()  # end of requests: it leaves its loop and exits
        try:
            await asyncio.wait_for(worker.wait(), 2)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
            await worker.wait()


class BuildProcess:
    """One running build: its output lines, its exit status, and a way to kill it."""

    def lines(self) -> AsyncIterator[str]:
        raise NotImplementedError

    async def wait(self) -> int:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


class ColdProcess(BuildProcess):
    """A build in a process of its own (``asyncio`` subprocess, own session)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def lines(self) -> AsyncIterator[str]:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            yield raw.decode("utf-8", "replace").rstrip("\r\n")

    async def wait(self) -> int:
        return await self.process.wait()

    def kill(self) -> None:
        kill_group(self.process.pid)


class WarmProcess(BuildProcess):
    """A build in a fork of the warm helper: output up to the helper's ``exit`` line."""

    def __init__(self, command: WarmCommand, worker: asyncio.subprocess.Process, sentinel: str) -> None:
        self.command = command
        self.worker = worker
        self.sentinel = sentinel
        self.pid: int | None = None
        self.code: int | None = None
        self._ended = asyncio.Event()

    async def lines(self) -> AsyncIterator[str]:
        stdout = self.worker.stdout
        assert stdout is not None
        try:
            while self.code is None:
                raw = await stdout.readline()
                if not raw:  # the helper itself died: the next build starts a new one
                    self.code = self.worker.returncode if self.worker.returncode is not None else -1
                    self.command.forget_worker()
                    yield f"(the warm build process ended unexpectedly; exit status {self.code})"
                    return
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                before, mark, rest = text.partition(self.sentinel)
                if before:
                    yield before
                if not mark:
                    continue
                kind, _, value = rest.lstrip(" ").partition(" ")
                if kind == "pid":
                    self.pid = int(value)
                elif kind == "exit":
                    self.code = int(value)
        finally:
            self._ended.set()

    async def wait(self) -> int:
        await self._ended.wait()
        return self.code if self.code is not None else -1

    def kill(self) -> None:
        if self.pid is not None:
            kill_group(self.pid)  # the helper reports the killed fork's exit and carries on
        else:
            self.command.forget_worker()
            self.code = -int(signal.SIGKILL)
            self._ended.set()


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
