"""``execlib watch PATH... -- COMMAND``: run a command once per coalesced change, never two at once.

Each PATH gets a ``batch=True, net=True`` route on one ``PathRouter`` (a burst's net
effect: a temp-file-and-rename save is one change of its target); every route feeds
one ``CommandRunner``, which runs COMMAND in its own process group (so Ctrl-C
and shutdown stop the whole tree it starts) and, when changes arrive while
COMMAND runs, runs it exactly once more afterwards with all of them.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

from ..errors import ConfigError
from ..event import FileEvent
from ..listener_server import ListenerServer
from ..log import configure_logging

logger = logging.getLogger("execlib.watch")

#: how many changed names the "changed:" line shows before summarising
SHOWN_NAMES = 10


def _say(message: str) -> None:
    print(f"execlib: {message}", file=sys.stderr, flush=True)


def check_command(command: Sequence[str]) -> None:
    """Raise ConfigError unless COMMAND names something that can be started."""
    if not command:
        raise ConfigError("no COMMAND given: put it after '--', e.g. execlib watch src -- make html")
    program = command[0]
    if os.sep in program or (os.altsep and os.altsep in program):
        if not os.path.isfile(program):
            raise ConfigError(f"cannot run {program!r}: no such file")
        if not os.access(program, os.X_OK):
            raise ConfigError(f"cannot run {program!r}: not executable (chmod +x it)")
    elif shutil.which(program) is None:
        raise ConfigError(f"cannot run {program!r}: command not found on PATH")


def _shown(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


class CommandRunner:
    """The callback of every watched PATH: runs COMMAND for a burst, one run at a time."""

    def __init__(self, command: Sequence[str], kill_timeout: float = 3.0) -> None:
        self.command = list(command)
        self.kill_timeout = kill_timeout
        self.runs = 0
        self._lock = threading.Lock()
        self._pending: dict[str, FileEvent] = {}
        self._running = False
        self._closing = False
        self._proc: subprocess.Popen[bytes] | None = None

    def __call__(self, events: list[FileEvent]) -> None:
        with self._lock:
            for event in events:
                self._pending[event.path] = event
            if self._running:
                return  # the run in progress picks these up when it ends: exactly one more run
            self._running = True
        try:
            while True:
                with self._lock:
                    if not self._pending or self._closing:
                        self._running = False
                        return
                    burst, self._pending = list(self._pending.values()), {}
                self._run(burst)
        except BaseException:
            with self._lock:
                self._running = False
            raise

    def _run(self, events: list[FileEvent]) -> None:
        names = [_shown(e.path) for e in events]
        more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
        _say(f"changed: {', '.join(names[:SHOWN_NAMES])}{more}")
        _say(f"running: {shlex.join(self.command)}")
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            _say(f"cannot run {self.command[0]!r}: {exc.strerror or exc}")
            return
        with self._lock:
            self._proc = proc
            self.runs += 1
        code = proc.wait()
        with self._lock:
            self._proc = None
        if code < 0:
            _say(f"{self.command[0]} was stopped by signal {signal.Signals(-code).name}")
        else:
            _say(f"{self.command[0]} exited with status {code}")

    def terminate(self) -> None:
        """Stop the running command (its whole process group) and run no more: SIGTERM, then SIGKILL."""
        with self._lock:
            self._closing = True
            self._pending.clear()
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(self.kill_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass  # it ended on its own meanwhile


def run_watch(args: argparse.Namespace) -> int:
    """The ``execlib watch`` command: validate, build the router and listener, block until Ctrl-C."""
    configure_logging(-1 if args.quiet else 1 if args.verbose else 0)
    command = list(args.watch_command or [])
    check_command(command)
    for path in args.paths:
        if not os.path.exists(path):
            raise ConfigError(f"path not found: {path}")
    if args.debounce < 0:
        raise ConfigError(f"--debounce must be 0 or more milliseconds, not {args.debounce}")

    from ..routers.path import PathRouter

    runner = CommandRunner(command)
    router = PathRouter()
    for path in args.paths:
        router.register(
            path,
            runner,
            glob=args.glob or "**/*",
            ignore=args.ignore or (),
            debounce=args.debounce,
            batch=True,
            net=True,  # a temp-file-and-rename save is one change of the target, and runs COMMAND once
            gitignore=args.gitignore,
            name="execlib watch",
        )
    listener = router.get_listener(poll=args.poll)

    def announce(_: ListenerServer) -> None:
        backend = getattr(listener, "active_backend", listener.backend)
        _say(f"watching {', '.join(args.paths)} ({backend}); will run: {shlex.join(command)} (Ctrl-C to stop)")

    server = ListenerServer([listener], pre_serve=announce, stop_timeout=runner.kill_timeout + 2)
    server.before_stop = runner.terminate
    server.start()
    return 0
