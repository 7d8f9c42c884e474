"""Finding a server again: PID and port files, "is that pid our server?", stop and status.

A server that should be found again writes a PID file (default ``.execlib.pid``)
and, once its socket is bound, a companion port file (``.execlib.port``) holding
only the port number, so ``--port 0`` is usable from scripts. A background
server's output goes to a log file next to them (``.execlib.log``).

A PID file is trusted only while its process is alive *and* is an execlib server:
PIDs are reused, so a file left behind by a crash may name an unrelated process,
which must never be signalled. Nothing here imports uvicorn or FastAPI, so
``execlib stop`` and ``execlib status`` start quickly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ExeclibError

if TYPE_CHECKING:
    from .server.server import Server

logger = logging.getLogger("execlib")

DEFAULT_PID_FILE = ".execlib.pid"
DEFAULT_STOP_TIMEOUT = 10.0
HEALTH_PATH = "/__execlib__/health"

_POLL = 0.02  # seconds between liveness checks while waiting on another process


class NotRunningError(ExeclibError):
    """``stop`` found no PID file: there is no server to stop."""


# -- files ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFiles:
    """The PID file of one server and its companions: ``X.pid`` -> ``X.port`` and ``X.log``."""

    pid: Path
    port: Path
    log: Path

    @classmethod
    def for_pid_file(cls, pid_path: str | os.PathLike[str] | None = None) -> RunFiles:
        path = Path(os.path.abspath(os.fspath(pid_path if pid_path is not None else DEFAULT_PID_FILE)))
        if path.is_dir():
            raise ConfigError(f"PID file {path} is a folder: give the path of a file, e.g. {path / DEFAULT_PID_FILE}")
        stem = path.name[: -len(".pid")] if path.name.endswith(".pid") and path.name != ".pid" else path.name
        return cls(path, path.with_name(stem + ".port"), path.with_name(stem + ".log"))


def _read_int(path: Path) -> int | None:
    """The integer in a PID or port file; None when the file is missing or does not hold one."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value > 0 else None


def read_pid(pid_path: str | os.PathLike[str]) -> int | None:
    """The pid in a PID file, or None when it is missing or unreadable."""
    return _read_int(Path(pid_path))


def read_port(port_path: str | os.PathLike[str]) -> int | None:
    """The port in a port file, or None when it is missing or unreadable."""
    port = _read_int(Path(port_path))
    return port if port is not None and port <= 65535 else None


def write_atomic(path: Path, text: str) -> None:
    # write-then-rename: a reader never sees a half-written number
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)


def remove_if_owned(files: RunFiles, pid: int | None) -> None:
    """Remove the PID and port files, unless the PID file has meanwhile been taken by another pid."""
    current = read_pid(files.pid)
    if pid is not None and current is not None and current != pid:
        return
    for path in (files.port, files.pid):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# -- is that pid alive, and is it an execlib server? -----------------------------------------------------


def _proc_available() -> bool:
    return os.path.isdir("/proc/self")


def _proc_state(pid: int) -> str | None:
    """The one-letter state in /proc/PID/stat ('Z' for a zombie), or None when unknown."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    # the command name is in parentheses and may itself contain ') ': the state follows the last one
    end = data.rfind(")")
    return data[end + 2 : end + 3] or None


def pid_alive(pid: int) -> bool:
    """True when the process exists and has not exited (a zombie waiting to be reaped counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to another user
    if _proc_available():
        return _proc_state(pid) not in (None, "Z", "X")
    return "Z" not in (_ps(pid, "stat") or "")


def _ps(pid: int, field: str) -> str | None:
    """One ``ps`` column for a pid, where there is no /proc (macOS, BSD)."""
    import subprocess

    try:
        result = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def process_cmdline(pid: int) -> list[str] | None:
    """The process's argument vector, or None when it cannot be read."""
    if _proc_available():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]] or None
    command = _ps(pid, "command")
    return command.split() if command else None


def is_execlib_serve_command(argv: Sequence[str]) -> bool:
    """Whether an argument vector runs ``execlib serve`` (console script, ``-m execlib`` or __main__.py).

    Deliberately strict: a test run or an editor with "execlib" somewhere in a path is not a server.
    """
    if not argv:
        return False
    rest: Sequence[str] | None = None
    program = os.path.basename(argv[0])
    if program in ("execlib", "execlib.exe"):
        rest = argv[1:]
    elif program.startswith(("python", "pypy")):
        i = 1
        while i < len(argv):
            arg = argv[i]
            if arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")):
                module = arg[2:] or (argv[i + 1] if i + 1 < len(argv) else "")
                if module in ("execlib", "execlib.cli", "execlib.__main__"):
                    rest = argv[i + (1 if arg[2:] else 2) :]
                break
            if arg == "-c" or arg.startswith("-c"):
                break
            if arg in ("-X", "-W", "--check-hash-based-pycs"):
                i += 2
                continue
            if arg.startswith("-"):
                i += 1
                continue
            if os.path.basename(arg) == "execlib" or arg.endswith(os.path.join("execlib", "__main__.py")):
                rest = argv[i + 1 :]
            break
    if rest is None:
        return False
    command = next((arg for arg in rest if not arg.startswith("-")), None)
    return command == "serve"


def _listening_inodes(pid: int, port: int) -> set[str] | None:
    """Socket inodes listening on ``port`` in the process's network namespace; None when unknown."""
    inodes: set[str] = set()
    found_table = False
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            # fields: sl local_address rem_address st ... uid timeout inode; state 0A is LISTEN
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if found_table else None


def holds_port(pid: int, port: int) -> bool | None:
    """Whether ``pid`` has a socket listening on ``port`` (Linux); None when it cannot be told."""
    if not _proc_available():
        return None
    inodes = _listening_inodes(pid, port)
    if inodes is None:
        return None
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def connect_host(host: str | None) -> str:
    """The address to reach a server listening on ``host`` from this machine (wildcards -> loopback)."""
    if not host or host == "0.0.0.0":
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def server_url(host: str | None, port: int) -> str:
    shown = connect_host(host)
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def fetch_health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The JSON of an execlib health endpoint at ``url`` (a base URL or the endpoint itself); None otherwise.

    Uses http.client directly: light to import, and it ignores proxy settings, which must not apply here.
    """
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path if parts.path.rstrip("/").endswith(HEALTH_PATH) else parts.path.rstrip("/") + HEALTH_PATH
    try:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read(65536) if response.status == 200 else b""
        finally:
            conn.close()
        data = json.loads(body) if body else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    if isinstance(data, dict) and data.get("server") == "execlib":
        return data
    return None


def _host_from_cmdline(argv: Sequence[str] | None) -> str | None:
    """The ``--host`` an execlib command line was given (``execlib start`` always passes one)."""
    if not argv:
        return None
    for i, arg in enumerate(argv):
        if arg == "--host" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--host="):
            return arg[len("--host=") :]
    return None


def is_execlib_server(pid: int, port: int | None = None, host: str | None = None) -> bool:
    """Whether ``pid`` is a live execlib server (and, when ``port`` is known, the one listening on it).

    Evidence, in order: the process must be alive; if it demonstrably does not hold the recorded port,
    it is some other process that got the pid; its command line runs ``execlib serve``; or, for servers
    embedded in another program, the health endpoint on the recorded port reports this very pid.
    """
    if not pid_alive(pid):
        return False
    if port is not None and holds_port(pid, port) is False:
        return False
    argv = process_cmdline(pid)
    if argv is not None and is_execlib_serve_command(argv):
        return True
    if port is None:
        return False
    health = fetch_health(server_url(host or _host_from_cmdline(argv), port))
    return health is not None and health.get("pid") == pid


# -- child processes we started in the background -------------------------------------------------------

# Popen objects of servers this process started in the background: kept so that they are reaped
# (polled) when they exit, instead of lingering as zombies or warning when garbage-collected.
_DETACHED: list[Any] = []


def track_detached(proc: Any) -> None:
    """Keep the Popen of a background server we started, to reap it once it exits."""
    _DETACHED.append(proc)


def reap_detached() -> None:
    """Collect the exit status of background servers we started that have exited (no zombies)."""
    for proc in list(_DETACHED):
        if proc.poll() is not None:
            _DETACHED.remove(proc)


# -- stopping a process ------------------------------------------------------------------------------------


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process remains in process group ``pgid``."""
    if not _proc_available():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_text(errors="replace")
        except OSError:
            continue
        fields = data[data.rfind(")") + 2 :].split()
        # after the name: state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _send(pid: int, sig: signal.Signals, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        raise ExeclibError(f"not allowed to signal pid {pid}: it belongs to another user") from None


def _wait_gone(pid: int, group: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        reap_detached()
        if not pid_alive(pid) and not (group and _group_alive(pid)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)  # polling another process's exit: there is no portable event to wait on


def terminate(pid: int, timeout: float = DEFAULT_STOP_TIMEOUT, kill_timeout: float = 5.0) -> str:
    """Stop a server process: SIGTERM, then SIGKILL after ``timeout`` seconds.

    When the process leads its own process group (``execlib start`` servers do), the whole group is
    signalled and waited for, so no child it started is left behind. Returns the name of the signal
    that ended it: "SIGTERM" or "SIGKILL".
    """
    group = _leads_group(pid)
    _send(pid, signal.SIGTERM, group)
    if _wait_gone(pid, group, timeout):
        return "SIGTERM"
    logger.debug("pid %d still running %.1f s after SIGTERM; sending SIGKILL", pid, timeout)
    _send(pid, signal.SIGKILL, group)
    if _wait_gone(pid, group, kill_timeout):
        return "SIGKILL"
    raise ExeclibError(f"pid {pid} is still running {kill_timeout:g} s after SIGKILL; check it with 'ps -p {pid}'")


# -- servers in this process (Python API) -----------------------------------------------------------------

_IN_PROCESS: dict[Path, Server] = {}
_IN_PROCESS_LOCK = threading.Lock()


def register_in_process(pid_path: Path, server: Server | None) -> None:
    """Record (or, with None, forget) the Server this process runs for a PID file, so that ``stop``
    on a PID file naming our own pid shuts that server down instead of signalling ourselves."""
    with _IN_PROCESS_LOCK:
        if server is None:
            _IN_PROCESS.pop(pid_path, None)
        else:
            _IN_PROCESS[pid_path] = server


def _in_process_server(files: RunFiles, pid: int | None) -> Server | None:
    if pid != os.getpid():
        return None
    with _IN_PROCESS_LOCK:
        return _IN_PROCESS.get(files.pid)


# -- stop and status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StopResult:
    """What ``stop`` did: outcome is "stopped" (SIGTERM sufficed), "killed" (needed SIGKILL) or "stale"."""

    outcome: str
    pid: int | None
    pid_path: str
    message: str


def stop(pid_path: str | os.PathLike[str] | None = None, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopResult:
    """Stop the server named by a PID file and remove its PID and port files.

    Raises NotRunningError when there is no PID file. A stale file (process gone, or a pid reused by
    a process that is not an execlib server) is removed without signalling anything.
    """
    files = RunFiles.for_pid_file(pid_path)
    if not files.pid.exists():
        raise NotRunningError(
            f"no PID file at {files.pid}: no execlib server was started with it (or it was already stopped)"
        )
    pid = read_pid(files.pid)
    port = read_port(files.port)
    server = _in_process_server(files, pid)
    if server is not None:
        server.shutdown()
        outcome = "stopped" if server.wait(timeout) else "running"
        if outcome == "running":
            raise ExeclibError(f"the server in this process (pid {pid}) did not stop within {timeout:g} s")
        remove_if_owned(files, pid)
        return StopResult("stopped", pid, str(files.pid), f"stopped the execlib server in this process (pid {pid})")
    if pid is None or not is_execlib_server(pid, port):
        remove_if_owned(files, pid)
        why = "does not hold a pid" if pid is None else f"pid {pid} is not a running execlib server"
        return StopResult("stale", pid, str(files.pid), f"removed stale PID file {files.pid} ({why})")
    ended_by = terminate(pid, timeout)
    remove_if_owned(files, pid)
    if ended_by == "SIGTERM":
        return StopResult("stopped", pid, str(files.pid), f"stopped execlib server pid {pid}")
    return StopResult(
        "killed",
        pid,
        str(files.pid),
        f"execlib server pid {pid} ignored SIGTERM for {timeout:g} s; killed it (SIGKILL)",
    )


@dataclass(frozen=True)
class ServerStatus:
    """A server's state as seen from its PID file.

    ``running``: the PID file names a live execlib server. ``healthy``: its health endpoint answered
    with its pid. ``stale``: a PID file exists but names no live execlib server.
    """

    running: bool
    pid: int | None
    healthy: bool
    url: str | None
    port: int | None = None
    root: str | None = None
    pid_path: str | None = None
    stale: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(
    pid_path: str | os.PathLike[str] | None = None, health_url: str | None = None, timeout: float = 1.0
) -> ServerStatus:
    """Whether the server named by a PID file is running and healthy. Changes nothing on disk.

    ``health_url`` overrides where to ask (by default the port file's port on the server's host).
    """
    files = RunFiles.for_pid_file(pid_path)
    where = str(files.pid)
    if not files.pid.exists():
        return ServerStatus(False, None, False, None, pid_path=where)
    pid = read_pid(files.pid)
    port = read_port(files.port)
    if pid is None or not is_execlib_server(pid, port):
        return ServerStatus(False, pid, False, None, port=port, pid_path=where, stale=True)
    url = health_url
    if url is None and port is not None:
        url = server_url(_host_from_cmdline(process_cmdline(pid)), port)
    health = fetch_health(url, timeout) if url else None
    healthy = health is not None and health.get("pid") == pid
    root = health.get("root") if health else None
    return ServerStatus(True, pid, healthy, url, port=port, root=root, pid_path=where)


def running_owner(files: RunFiles) -> int | None:
    """The pid of the live execlib server owning these files, or None."""
    pid = read_pid(files.pid)
    if pid is None:
        return None
    if _in_process_server(files, pid) is not None:
        return pid
    if pid != os.getpid() and is_execlib_server(pid, read_port(files.port)):
        return pid
    return None
