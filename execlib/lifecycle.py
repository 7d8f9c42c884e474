"""Serving with a PID file (single instance, port holder, ``--replace``) and starting detached servers.

``Lifecycle`` wraps one Server's run in ``execlib serve`` and ``execlib.serve()``: it claims the
PID file, binds (naming or replacing an execlib server that holds the port), writes the port file
and removes both files when serving ends. ``start_detached`` is ``execlib start`` and
``execlib.serve_background()``: an ``execlib serve`` child in its own session, waited on until healthy,
its output appended to a log file that is rotated at ``LOG_MAX_BYTES`` (one ``.1`` backup kept).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AlreadyServedError, ConfigError, ExeclibError, PortInUseError
from .process import (
    DEFAULT_STOP_TIMEOUT,
    POLL_INTERVAL,
    RunFiles,
    RunInfo,
    already_running_error,
    check_port_file,
    create_exclusive,
    describe_server,
    fetch_health,
    fs_error,
    holder_url,
    is_execlib_server,
    read_pid,
    read_pid_file,
    read_port,
    reap_detached,
    register_in_process,
    remove_if_owned,
    running_server,
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
# with the default port taken: how many of the next ports to try before letting the OS pick one
FALLBACK_TRIES = 10

# A detached server's log is rotated once it is larger than this: at `execlib start`, and while the
# server runs (checked every LOG_CHECK_INTERVAL seconds). One backup, LOG.1, is kept.
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_CHECK_INTERVAL = 2.0
# Appended to a log just before it becomes LOG.1: how a later rotation knows that LOG.1 is a backup
# execlib made, which it may replace, and not some file of the user's, which it must not.
_ROTATED_MARK = "execlib: log rotated"

Announce = Callable[[str], None]


def print_notice(message: str) -> None:
    """Tell the user at the terminal about something done on their behalf (a server stopped)."""
    print(f"execlib: {message}", file=sys.stderr, flush=True)


def _write(path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise fs_error("write", path, exc) from None


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
        announce: Announce | None = None,
        port_fallback: bool = False,
    ) -> None:
        self.files = RunFiles.for_pid_file(pid_path) if pid_path is not None else None
        self.single_instance = single_instance
        self.replace = replace
        self.stop_timeout = stop_timeout
        # stopping a server is never silent: the command line prints it, the Python API logs a warning
        self.announce: Announce = announce if announce is not None else logger.warning
        self.root: str | None = None
        self._claimed = False
        # the port was nobody's choice (the default): when it is taken, try the next ones
        self.port_fallback = port_fallback
        #: the port asked for, when another one was taken instead (the banner says so)
        self.fell_back_from: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, port_fallback: bool = False) -> Lifecycle:
        """From ``execlib serve`` options (``--pid-file``, ``--no-single-instance``, ``--replace``)."""
        return cls(
            getattr(args, "pid_file", None),
            single_instance=not getattr(args, "no_single_instance", False),
            replace=getattr(args, "replace", False),
            announce=print_notice,
            port_fallback=port_fallback,
        )

    def run(self, server: Server) -> None:
        """Prepare, serve in this thread until shutdown (signals end it gracefully), then release."""
        self.prepare(server)
        rotation: LogRotation | None = None
        try:
            if self.files is not None:
                rotation = LogRotation.for_stdout(self.files.log)
                if rotation is not None:
                    rotation.start()
            server.start()
        finally:
            if rotation is not None:
                rotation.stop()
            self.release()

    def prepare(self, server: Server) -> None:
        """Claim the PID file, bind, write the port file. Raises AlreadyRunningError or PortInUseError."""
        self.root = os.path.abspath(os.fspath(server.root))
        self.claim()
        try:
            self.bind(server)
            if self.files is not None:
                bound = server.bound_addr
                assert bound is not None  # bind() above succeeded
                port = bound[1]
                _write(self.files.port, f"{port}\n")
                # now the PID file records the address too: status and stop need no other file
                if read_pid(self.files.pid) == os.getpid():
                    # the scheme only for https: a plain server's file stays as earlier versions wrote it
                    scheme = server.scheme if server.scheme != "http" else None
                    info = RunInfo(os.getpid(), self.root, server.host, port, scheme=scheme)
                    _write(self.files.pid, info.to_text())
                register_in_process(self.files.pid, server)
        except BaseException:
            self.release()
            raise

    def claim(self) -> None:
        """Create the PID file with our pid, atomically (two concurrent starts race fairly).

        Only an execlib PID file is ever treated as stale, taken over or replaced; any other file at
        the PID or port file's path raises ForeignFileError and is left as it is.
        """
        files = self.files
        if files is None:
            return
        if not files.pid.parent.is_dir():
            raise ConfigError(f"folder for the PID file not found: {files.pid.parent}")
        check_port_file(files.port)  # before creating anything, so a refusal leaves no trace
        mine = RunInfo(os.getpid(), self.root).to_text()
        for _ in range(5):
            try:
                create_exclusive(files.pid, mine)
            except FileExistsError:
                info = read_pid_file(files.pid)
                if info is None:
                    continue  # removed meanwhile
                owner = running_server(files)
                if owner is None:
                    logger.info("removed stale PID file %s", files.pid)
                    remove_if_owned(files, info.pid)
                    continue
                if self.replace:
                    stop(files.pid, self.stop_timeout)  # also handles a server running in this process
                    self.announce(f"stopped execlib server {owner.describe()}, which owned the PID file {files.pid}")
                    continue
                if self.single_instance:
                    raise already_running_error(files, owner) from None
                # --no-single-instance: take the file over; `execlib stop` will then stop this server
                _write(files.pid, mine)
                break
            except OSError as exc:
                raise fs_error("create the PID file", files.pid, exc) from None
            else:
                break
        else:
            raise ExeclibError(f"could not take the PID file {files.pid}: other servers keep claiming it")
        self._claimed = True
        if read_port(files.port) is not None:  # a previous server's port; ours is written once bound
            try:
                files.port.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.release()
                raise fs_error("remove", files.port, exc) from None

    def bind(self, server: Server) -> None:
        """Bind the server's socket; name an execlib server holding the port, or replace it.

        An execlib server serving the same folder raises AlreadyServedError (with its URL) unless
        ``replace``. With ``port_fallback``, a port held by anything else is left alone and the
        next ones are tried (FALLBACK_TRIES of them, then one the OS picks).
        """
        try:
            server.bind()
            return
        except PortInUseError:
            holder = fetch_health(server_url(server.host, server.port))
            url = holder_url(server.host, server.port, holder or {})
            if holder is not None and not self.replace and self._same_root(holder):
                raise AlreadyServedError(server.host, server.port, url, holder.get("pid")) from None
            if self.port_fallback and not (self.replace and holder is not None):
                self._bind_next_free(server)
                return
            if holder is None:
                raise
        holder_pid = check_port_holder(server.host, server.port, holder, replace=self.replace)
        terminate(holder_pid, self.stop_timeout)
        self.announce(
            f"stopped execlib server {describe_server(holder_pid, holder.get('root'), url)}, "
            f"which held port {server.port}"
        )
        deadline = time.monotonic() + 5.0
        while True:
            try:
                server.bind()
                return
            except PortInUseError:
                # the old socket can outlive its process briefly (a forked child still holding it)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(POLL_INTERVAL)

    def _same_root(self, holder: dict[str, Any]) -> bool:
        root = holder.get("root")
        if not isinstance(root, str) or self.root is None:
            return False
        return os.path.realpath(root) == os.path.realpath(self.root)

    def _bind_next_free(self, server: Server) -> None:
        asked = server.port
        for port in [*range(asked + 1, min(asked + 1 + FALLBACK_TRIES, 65536)), 0]:
            server.port = port
            try:
                server.bind()
            except PortInUseError:
                continue
            self.fell_back_from = asked
            return

    def release(self) -> None:
        """Remove our PID and port files (only if they are still ours). Safe to call twice."""
        if self.files is None or not self._claimed:
            return
        self._claimed = False
        register_in_process(self.files.pid, None)
        try:
            remove_if_owned(self.files, os.getpid())
        except ExeclibError as error:
            # serving has ended (maybe with an error of its own, which must not be masked): report it
            logger.warning("%s", error)


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


def replace_servers(
    files: RunFiles,
    host: str,
    port: int,
    *,
    announce: Announce | None = None,
    timeout: float = DEFAULT_STOP_TIMEOUT,
) -> None:
    """``--replace`` for a background start, done by the process the user is watching (a detached
    child's output goes only to the log): stop the execlib server owning the PID file and the one
    holding the port, naming each (pid, root, URL) through ``announce``."""
    say = announce if announce is not None else logger.warning
    owner = running_server(files)
    if owner is not None:
        stop(files.pid, timeout)
        say(f"stopped execlib server {owner.describe()}, which owned the PID file {files.pid}")
    if port == 0:
        return
    url = server_url(host, port)
    holder = fetch_health(url, timeout=1.0)
    if holder is None:
        return
    holder_pid = check_port_holder(host, port, holder, replace=True)
    terminate(holder_pid, timeout)
    shown = holder_url(host, port, holder)
    say(f"stopped execlib server {describe_server(holder_pid, holder.get('root'), shown)}, which held port {port}")


def precheck_port(host: str, port: int, *, replace: bool) -> None:
    """Before spawning a background server: fail early, with a one-line error, when an execlib server
    that ``replace`` does not allow us to stop holds the port. Anything else is left to the child."""
    if port == 0:
        return
    holder = fetch_health(server_url(host, port), timeout=1.0)
    if holder is not None:
        check_port_holder(host, port, holder, replace=replace)


# -- the background server's log ----------------------------------------------------------------------------


def backup_path(log: Path) -> Path:
    return log.with_name(log.name + ".1")


def _is_rotated_log(path: Path) -> bool:
    """Whether ``path`` is a log backup execlib made (its last lines carry the rotation mark)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            # late lines from processes still holding the old file may follow the mark
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return False
    return _ROTATED_MARK.encode() in tail


def rotate_log(log: Path, max_bytes: int = LOG_MAX_BYTES) -> tuple[bool, str | None]:
    """Move a log larger than ``max_bytes`` to LOG.1, replacing the previous backup execlib made.

    Returns (rotated, problem): ``problem`` explains a rotation that was due but not done, because
    LOG.1 is not an execlib backup (it is kept; the log keeps growing) or the folder refused.
    """
    try:
        info = os.stat(log)
    except OSError:
        return False, None
    if not stat.S_ISREG(info.st_mode) or info.st_size <= max_bytes:
        return False, None
    backup = backup_path(log)
    if os.path.lexists(backup) and not _is_rotated_log(backup):
        return False, (
            f"{log} is over {max_bytes // (1024 * 1024)} MB but was not rotated: {backup} is not a log backup "
            "execlib made, and is kept; move it away to let the log rotate"
        )
    try:
        with log.open("ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n{_ROTATED_MARK} at {stamp}: newer lines are in {log.name}\n".encode())
        os.replace(log, backup)
    except OSError as exc:
        return False, f"could not rotate {log}: {exc.strerror}"
    return True, None


class LogRotation:
    """Rotates the log a detached server writes to, while it runs.

    ``execlib start`` points the server's stdout and stderr at the log file, so everything it prints
    (access log, errors, a build command's output) lands there; nothing goes through one Python
    handler that could rotate. So a thread checks the file's size every ``interval`` seconds and, past
    ``max_bytes``, renames it to LOG.1 and re-points file descriptors 1 and 2 at a new LOG (``dup2``
    swaps them atomically for every writer in this process). A server sharing the log
    (``--no-single-instance``) sees that the path now names another file and follows it.
    """

    def __init__(
        self, log: Path, fds: Sequence[int], max_bytes: int = LOG_MAX_BYTES, interval: float = LOG_CHECK_INTERVAL
    ) -> None:
        self.log = log
        self.fds = list(fds)
        self.max_bytes = max_bytes
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="execlib-log-rotation", daemon=True)
        self._warned = False

    @classmethod
    def for_stdout(cls, log: Path) -> LogRotation | None:
        """A rotation for this process's stdout/stderr when they write to ``log``; None otherwise
        (a foreground server writes to the terminal, and there is nothing to rotate)."""
        try:
            target = os.stat(log)
        except OSError:
            return None
        fds = []
        for fd in (1, 2):
            try:
                mine = os.fstat(fd)
            except OSError:
                continue
            if (mine.st_dev, mine.st_ino) == (target.st_dev, target.st_ino):
                fds.append(fd)
        return cls(log, fds) if fds else None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        self.check()
        while not self._stopping.wait(self.interval):
            self.check()

    def check(self) -> None:
        """Rotate if the file we write to is too large; follow the path if someone else rotated it."""
        try:
            mine = os.fstat(self.fds[0])
        except OSError:
            return
        if mine.st_size > self.max_bytes:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()  # buffered lines belong to the old file
            rotated, problem = rotate_log(self.log, self.max_bytes)
            if rotated:
                self._follow(note=f"{_ROTATED_MARK}: older lines are in {backup_path(self.log).name}\n")
                return
            if problem is not None and not self._warned:
                self._warned = True  # once: the check runs every few seconds
                logger.warning("%s", problem)
        try:
            current = os.stat(self.log)
        except OSError:
            return  # the log was removed: keep writing where we are rather than recreate it
        if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            self._follow()

    def _follow(self, note: str = "") -> None:
        try:
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            logger.warning("cannot reopen the log %s: %s", self.log, exc.strerror)
            return
        try:
            if note:
                os.write(fd, note.encode())
            for target in self.fds:
                os.dup2(fd, target)
        finally:
            os.close(fd)


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
    announce: Announce | None = None,
    scheme: str = "http",
) -> tuple[int, str]:
    """Run ``execlib serve SERVE_ARGS --pid-file PID`` detached; return (pid, url) once it is healthy.

    The server gets its own session and process group (no terminal, no SIGHUP when the caller's
    terminal closes), stdin from /dev/null, and stdout/stderr appended to the log file next to the PID
    file. Raises StartError with the log's last lines if it exits early or is not healthy within
    ``timeout`` seconds (a server that never became healthy is stopped, not left running). A log
    larger than LOG_MAX_BYTES is first moved to LOG.1.
    """
    files = RunFiles.for_pid_file(pid_path)
    if not files.pid.parent.is_dir():
        raise ConfigError(f"folder for the PID file not found: {files.pid.parent}")
    # the child refuses these too, but only into the log; here the user gets the one-line error
    read_pid_file(files.pid)
    check_port_file(files.port)
    _, problem = rotate_log(files.log)
    if problem is not None:
        (announce or logger.warning)(problem)
    command = [sys.executable, "-m", "execlib", "serve", *serve_args, "--pid-file", str(files.pid)]
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    reap_detached()
    try:
        log_file = files.log.open("ab")
    except OSError as exc:
        raise fs_error("write the log file", files.log, exc) from None
    with log_file as log:
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
            url = server_url(host, port, scheme)
            health = fetch_health(url, timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            if health is not None and health.get("pid") == proc.pid:
                return proc.pid, url
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)  # a detached child we cannot wait on otherwise; bounded by the deadline
    tail = _log_tail(files.log, offset)
    with contextlib.suppress(ExeclibError):
        terminate(proc.pid, timeout=5.0)
    remove_if_owned(files, proc.pid)
    raise StartError(
        f"the server did not become healthy within {timeout:g} s and was stopped; last lines of {files.log}:\n" + tail
    )
