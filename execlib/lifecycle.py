"""Serving with a PID file (single instance, port holder, ``--replace``) and starting detached servers.

``Lifecycle`` wraps one Server's run in ``execlib serve`` and ``execlib.serve()``: it claims the
PID file, binds (naming or replacing an execlib server that holds the port), writes the port file
and removes both files when serving ends. ``start_detached`` is ``execlib start`` and
``execlib.serve_background()``: an ``execlib serve`` child in its own session, waited on until healthy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AlreadyRunningError, ConfigError, ExeclibError, PortInUseError
from .process import (
    DEFAULT_STOP_TIMEOUT,
    RunFiles,
    fetch_health,
    is_execlib_server,
    read_pid,
    read_port,
    reap_detached,
    register_in_process,
    remove_if_owned,
    running_owner,
    server_url,
    stop,
    terminate,
    track_detached,
    write_atomic,
)

if TYPE_CHECKING:
    from .server.server import Server

logger = logging.getLogger("execlib")

DEFAULT_START_TIMEOUT = 10.0

# Test-only hooks, read when a server starts serving (see docs/lifecycle.rst). They let the tests
# simulate a server that ignores SIGTERM and one with a child process in its group. Never set them
# otherwise.
ENV_TEST_IGNORE_SIGTERM = "EXECLIB_TEST_IGNORE_SIGTERM"
ENV_TEST_SPAWN_CHILD = "EXECLIB_TEST_SPAWN_CHILD"

_POLL = 0.02  # seconds between checks while waiting on another process


class StartError(ExeclibError, RuntimeError):
    """A background server exited during start-up or did not become healthy in time.

    Also a RuntimeError, as the Python API promises; ``str()`` ends with the log's last lines.
    """


class Lifecycle:
    """Claims the PID file, binds the server's socket (reclaiming it with ``replace``), writes the port
    file, and removes both when serving ends. Used by ``execlib serve`` and ``execlib.serve()``.

    ``pid_path`` None means no files, but the port-holder check and ``replace`` still apply.
    """

    def __init__(
        self,
        pid_path: str | os.PathLike[str] | None = None,
        *,
        single_instance: bool = True,
        replace: bool = False,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self.files = RunFiles.for_pid_file(pid_path) if pid_path is not None else None
        self.single_instance = single_instance
        self.replace = replace
        self.stop_timeout = stop_timeout
        self._claimed = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Lifecycle:
        """From ``execlib serve`` options (``--pid-file``, ``--no-single-instance``, ``--replace``)."""
        return cls(
            getattr(args, "pid_file", None),
            single_instance=not getattr(args, "no_single_instance", False),
            replace=getattr(args, "replace", False),
        )

    def run(self, server: Server) -> None:
        """Prepare, serve in this thread until shutdown (signals end it gracefully), then release."""
        self.prepare(server)
        user_hook = server.pre_serve
        test_children: list[subprocess.Popen[bytes]] = []

        def pre_serve(srv: Server) -> None:
            test_children.extend(_apply_test_hooks())
            if user_hook is not None:
                user_hook(srv)

        server.pre_serve = pre_serve
        try:
            server.start()
        finally:
            self.release()
            for child in test_children:
                child.kill()
                child.wait()

    def prepare(self, server: Server) -> None:
        """Claim the PID file, bind, write the port file. Raises AlreadyRunningError or PortInUseError."""
        self.claim()
        try:
            self.bind(server)
            if self.files is not None:
                write_atomic(self.files.port, f"{server.bound_addr[1]}\n")
                register_in_process(self.files.pid, server)
        except BaseException:
            self.release()
            raise

    def claim(self) -> None:
        """Create the PID file with our pid; O_EXCL makes two concurrent starts race fairly."""
        files = self.files
        if files is None:
            return
        if not files.pid.parent.is_dir():
            raise ConfigError(f"folder for the PID file not found: {files.pid.parent}")
        for _ in range(5):
            try:
                fd = os.open(files.pid, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = running_owner(files)
                if owner is None:
                    logger.info("removed stale PID file %s", files.pid)
                    remove_if_owned(files, read_pid(files.pid))
                    continue
                if self.replace:
                    logger.info("stopping execlib server pid %d to replace it", owner)
                    stop(files.pid, self.stop_timeout)  # also handles a server running in this process
                    continue
                if self.single_instance:
                    raise AlreadyRunningError(owner, str(files.pid)) from None
                # --no-single-instance: take the file over; `execlib stop` will then stop this server
                write_atomic(files.pid, f"{os.getpid()}\n")
                break
            except OSError as exc:
                raise ConfigError(f"cannot create the PID file {files.pid}: {exc.strerror}") from None
            else:
                with os.fdopen(fd, "w", encoding="ascii") as out:
                    out.write(f"{os.getpid()}\n")
                break
        else:
            raise ExeclibError(f"could not take the PID file {files.pid}: other servers keep claiming it")
        self._claimed = True
        with contextlib.suppress(FileNotFoundError):
            files.port.unlink()  # a previous server's port; ours is written once bound

    def bind(self, server: Server) -> None:
        """Bind the server's socket; name an execlib server holding the port, or replace it."""
        try:
            server.bind()
            return
        except PortInUseError:
            holder = fetch_health(server_url(server.host, server.port))
            if holder is None:
                raise
        holder_pid = check_port_holder(server.host, server.port, holder, replace=self.replace)
        holder_root = holder.get("root")
        logger.info(
            "stopping execlib server pid %d (serving %s) to reclaim port %d", holder_pid, holder_root, server.port
        )
        terminate(holder_pid, self.stop_timeout)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                server.bind()
                return
            except PortInUseError:
                # the old socket can outlive its process briefly (a forked child still holding it)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(_POLL)

    def release(self) -> None:
        """Remove our PID and port files (only if they are still ours). Safe to call twice."""
        if self.files is None or not self._claimed:
            return
        self._claimed = False
        register_in_process(self.files.pid, None)
        remove_if_owned(self.files, os.getpid())


def check_port_holder(host: str, port: int, holder: dict[str, Any], *, replace: bool) -> int:
    """Given the health answer of the execlib server holding a port, raise PortInUseError naming it,
    unless ``replace`` may stop it: then return its pid (checked to be that server, on this machine)."""
    holder_pid, holder_root = holder.get("pid"), holder.get("root")
    if not replace or not isinstance(holder_pid, int) or holder_pid == os.getpid():
        raise PortInUseError(
            host,
            port,
            f"the port is held by another execlib server (pid {holder_pid}, serving {holder_root}); "
            "stop it, take its place with --replace, or pick another port with --port (0 picks a free one)",
        )
    if not is_execlib_server(holder_pid, port, host):
        # the health answer names a pid that is not that server here (another container or machine)
        raise PortInUseError(
            host,
            port,
            f"the port is held by an execlib server whose pid {holder_pid} is not a process on this machine, "
            "so --replace cannot stop it; pick another port with --port",
        )
    return holder_pid


def precheck_port(host: str, port: int, *, replace: bool) -> None:
    """Before spawning a background server: fail early, with a one-line error, when an execlib server
    that ``replace`` does not allow us to stop holds the port. Anything else is left to the child."""
    if port == 0:
        return
    holder = fetch_health(server_url(host, port), timeout=1.0)
    if holder is not None:
        check_port_holder(host, port, holder, replace=replace)


def _apply_test_hooks() -> list[subprocess.Popen[bytes]]:
    """Test-only behaviour switched on by environment variables (documented in docs/lifecycle.rst).

    Returns the child processes it started, which the caller ends when serving ends.
    """
    if os.environ.get(ENV_TEST_IGNORE_SIGTERM) == "1" and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get(ENV_TEST_SPAWN_CHILD) != "1":
        return []
    # stays in our process group, like a build command or a worker would
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdin=subprocess.DEVNULL)
    print(f"execlib: test hook: child pid {child.pid}", file=sys.stderr, flush=True)
    return [child]


def _log_tail(log: Path, offset: int, lines: int = 20) -> str:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("  " + line for line in tail)


def start_detached(
    serve_args: Sequence[str],
    *,
    host: str,
    pid_path: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    env: dict[str, str] | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Run ``execlib serve SERVE_ARGS --pid-file PID`` detached; return (pid, url) once it is healthy.

    The server gets its own session and process group (no terminal, no SIGHUP when the caller's
    terminal closes), stdin from /dev/null, and stdout/stderr appended to the log file next to the PID
    file. Raises StartError with the log's last lines if it exits early or is not healthy within
    ``timeout`` seconds (a server that never became healthy is stopped, not left running).
    """
    files = RunFiles.for_pid_file(pid_path)
    if not files.pid.parent.is_dir():
        raise ConfigError(f"folder for the PID file not found: {files.pid.parent}")
    command = [sys.executable, "-m", "execlib", "serve", *serve_args, "--pid-file", str(files.pid)]
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    reap_detached()
    with files.log.open("ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=child_env,
        )
    track_detached(proc)
    if on_spawn is not None:
        on_spawn(proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            reap_detached()
            raise StartError(
                f"the server exited during start-up (exit status {code}); last lines of {files.log}:\n"
                + _log_tail(files.log, offset)
            )
        port = read_port(files.port) if read_pid(files.pid) == proc.pid else None
        if port is not None:
            url = server_url(host, port)
            health = fetch_health(url, timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            if health is not None and health.get("pid") == proc.pid:
                return proc.pid, url
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)  # polling a process we cannot wait on otherwise; bounded by the deadline
    tail = _log_tail(files.log, offset)
    with contextlib.suppress(ExeclibError):
        terminate(proc.pid, timeout=5.0)
    remove_if_owned(files, proc.pid)
    raise StartError(
        f"the server did not become healthy within {timeout:g} s and was stopped; last lines of {files.log}:\n" + tail
    )
