"""Finding a server again: PID and port files, "is that pid our server?", stop and status.

A server that should be found again writes a PID file (default ``.execlib.pid``): one
line of JSON naming execlib, the pid, the root and, once bound, the host and port. It
also writes a companion port file (``.execlib.port``) holding only the port number, so
``--port 0`` is usable from scripts. A background server's output goes to a log file
next to them (``.execlib.log``).

execlib removes or overwrites only files it recognises as its own: a JSON PID file
with the ``execlib`` key, a bare pid as earlier versions wrote it, a port file holding
just a port number. Anything else at those paths (a mistyped ``--pid-file``) is refused
with ForeignFileError and left untouched.

A PID file is trusted only while its process is alive *and* is an execlib server:
PIDs are reused, so a file left behind by a crash may name an unrelated process,
which must never be signalled. Nothing here imports uvicorn or FastAPI, so
``execlib stop`` and ``execlib status`` start quickly.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AlreadyRunningError, ConfigError, ExeclibError

if TYPE_CHECKING:
    from .server.server import Server

logger = logging.getLogger("execlib")

DEFAULT_PID_FILE = ".execlib.pid"
DEFAULT_STOP_TIMEOUT = 10.0
HEALTH_PATH = "/__execlib__/health"
SCHEMES = ("http", "https")

# Seconds between checks while waiting on another process (its exit, its socket, its health answer):
# there is no portable event to wait on. Every such wait loop is bounded by a deadline.
POLL_INTERVAL = 0.02


class NotRunningError(ExeclibError):
    """``stop`` found no PID file: there is no server to stop."""


# -- files ----------------------------------------------------------------------------------------------

# Version of the PID file's JSON form; a reader accepts any integer here, so a later version that only
# adds keys is still recognised (and so never mistaken for a user's file).
PID_FILE_FORMAT = 1
# An execlib PID file is a few hundred bytes; anything much larger is not one, and is not read whole.
_MAX_RUN_FILE = 4096
# The form earlier versions wrote: the pid alone, digits and a newline. Only exactly this shape counts
# as ours: a file with anything else in it may be the user's, and is never removed or overwritten.
_LEGACY_PID = re.compile(rb"[0-9]{1,10}\n?")
# The port file stays a bare number so scripts can use $(cat .execlib.port); that exact shape is ours.
_PORT_TEXT = re.compile(rb"[0-9]{1,5}\n?")


class ForeignFileError(ConfigError):
    """A path given as a PID or port file holds something execlib did not write; it is left untouched."""


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

    @property
    def is_default(self) -> bool:
        return self.pid == Path(os.path.abspath(DEFAULT_PID_FILE))

    def stop_command(self) -> str:
        return "execlib stop" if self.is_default else f"execlib stop --pid-file {self.pid}"


@dataclass(frozen=True)
class RunInfo:
    """What a PID file says: the server's pid and, in the JSON form, its root and address.

    ``legacy`` marks the bare-pid form of earlier versions, which carries nothing else.
    """

    pid: int
    root: str | None = None
    host: str | None = None
    port: int | None = None
    legacy: bool = False
    scheme: str | None = None  # "https" for a TLS server; absent (http) in files of earlier versions

    def to_text(self) -> str:
        data: dict[str, Any] = {
            "execlib": PID_FILE_FORMAT,
            "pid": self.pid,
            "root": self.root,
            "host": self.host,
            "port": self.port,
        }
        if self.scheme is not None:
            data["scheme"] = self.scheme
        return json.dumps(data) + "\n"

    def url(self, fallback_port: int | None = None) -> str | None:
        port = self.port if self.port is not None else fallback_port
        return server_url(self.host, port, self.scheme or "http") if port is not None else None


def fs_error(action: str, path: Path, exc: OSError) -> ConfigError:
    """A one-line error for a file execlib could not create, write or remove."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT and path.parent.is_dir():
        # /proc, /sys and the like: the folder exists but cannot hold new files
        reason = f"{path.parent} does not accept new files"
    return ConfigError(f"cannot {action} {path}: {reason}; give --pid-file a path in a writable folder")


def _read_small(path: Path, kind: str) -> bytes | None:
    """The bytes of a small regular file; None when it is missing. Never blocks on a FIFO or a device,
    never reads more than an execlib file can hold. Raises ForeignFileError for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the {kind} {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ForeignFileError(_foreign_message(path, kind, "it is not a regular file"))
        data = os.read(fd, _MAX_RUN_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {kind} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_RUN_FILE:
        raise ForeignFileError(_foreign_message(path, kind, "it is far larger than one"))
    return data


def _foreign_message(path: Path, kind: str, why: str) -> str:
    return (
        f"{path} is not an execlib {kind} ({why}), so execlib leaves it untouched; "
        "give --pid-file a path of its own (default .execlib.pid), or remove that file yourself"
    )


def _parse_pid_file(data: bytes) -> RunInfo | None:
    """The RunInfo of an execlib PID file's bytes (JSON, or a bare pid from earlier versions), else None."""
    if _LEGACY_PID.fullmatch(data):
        legacy_pid = int(data)
        return RunInfo(legacy_pid, legacy=True) if legacy_pid > 0 else None
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict) or type(obj.get("execlib")) is not int:
        return None
    pid, root, host, port = obj.get("pid"), obj.get("root"), obj.get("host"), obj.get("port")
    if type(pid) is not int or pid <= 0:
        return None
    return RunInfo(
        pid,
        root=root if isinstance(root, str) else None,
        host=host if isinstance(host, str) else None,
        port=port if type(port) is int and 0 < port <= 65535 else None,
        scheme=obj["scheme"] if obj.get("scheme") in SCHEMES else None,
    )


def read_pid_file(pid_path: str | os.PathLike[str]) -> RunInfo | None:
    """What an execlib PID file says; None when there is no file.

    Raises ForeignFileError when the file exists but is not one execlib wrote: such a file is never
    treated as stale, removed or overwritten, because it may be the user's (a mistyped ``--pid-file``).
    """
    path = Path(pid_path)
    data = _read_small(path, "PID file")
    if data is None:
        return None
    info = _parse_pid_file(data)
    if info is None:
        raise ForeignFileError(_foreign_message(path, "PID file", "it holds something else"))
    return info


def read_pid(pid_path: str | os.PathLike[str]) -> int | None:
    """The pid in an execlib PID file, or None when it is missing or not an execlib PID file."""
    try:
        info = read_pid_file(pid_path)
    except ConfigError:
        return None
    return info.pid if info is not None else None


def read_port(port_path: str | os.PathLike[str]) -> int | None:
    """The port in an execlib port file, or None when it is missing or not an execlib port file."""
    try:
        data = _read_small(Path(port_path), "port file")
    except ConfigError:
        return None
    if data is None or not _PORT_TEXT.fullmatch(data):
        return None
    port = int(data)
    return port if 0 < port <= 65535 else None


def check_port_file(port_path: Path) -> None:
    """Raise ForeignFileError when a file execlib would replace or remove as its port file is not one."""
    data = _read_small(port_path, "port file")
    if data is not None and read_port(port_path) is None:
        raise ForeignFileError(_foreign_message(port_path, "port file", "it holds something else"))


def _temp_beside(path: Path, text: str) -> Path:
    """A new file next to ``path`` holding ``text``, under a fresh name (O_EXCL: no file is touched)."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue  # a 32-bit random clash: pick another name
        break
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``. Callers check first that ``path`` is missing or an execlib file.

    Write-then-rename: a reader never sees a half-written file.
    """
    tmp = _temp_beside(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def create_exclusive(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, or raise FileExistsError; never touches an existing file.

    A hard link of a complete temporary file appears atomically with its content, so a concurrent reader
    never sees an empty PID file (which would not be recognisably ours). Where the file system has no
    hard links, O_EXCL and a write.
    """
    tmp = _temp_beside(path, text)
    try:
        os.link(tmp, path)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise fs_error("remove", path, exc) from None


def remove_if_owned(files: RunFiles, pid: int | None) -> None:
    """Remove the PID and port files, if they are execlib's and the PID file still names ``pid``.

    A PID file another server has taken over is kept, and so is its port file. A file that is not an
    execlib file is never removed. ``pid`` None removes the files whatever pid the PID file names.
    """
    try:
        info = read_pid_file(files.pid)
    except ConfigError:
        return  # not ours (or unreadable): leave both files alone
    if info is not None and pid is not None and info.pid != pid:
        return
    if read_port(files.port) is not None:
        _unlink(files.port)
    if info is not None:
        _unlink(files.pid)


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


def server_url(host: str | None, port: int, scheme: str = "http") -> str:
    shown = connect_host(host)
    return f"{scheme}://[{shown}]:{port}/" if ":" in shown else f"{scheme}://{shown}:{port}/"


def holder_url(host: str | None, port: int, holder: dict[str, Any]) -> str:
    """The URL of the server whose health answer is ``holder`` (it says whether it speaks https)."""
    scheme = holder.get("scheme")
    return server_url(host, port, scheme if scheme in SCHEMES else "http")


def fetch_health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The JSON of an execlib health endpoint at ``url`` (a base URL or the endpoint itself); None otherwise.

    Uses http.client directly: light to import, and it ignores proxy settings, which must not apply here.
    An ``http://`` URL whose server drops the connection without an answer is asked again over
    https: a server started with ``--https`` closes plain HTTP connections, and the callers here
    (the port holder check, ``status``) often know only a host and a port.

    Over https the certificate is not verified. This request only identifies a server (its pid
    and root, which are then checked against this machine's processes before any is signalled),
    sends nothing secret, and goes to a server the user runs, whose certificate may be the local
    CA's, their own, or one their system does not trust yet.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path if parts.path.rstrip("/").endswith(HEALTH_PATH) else parts.path.rstrip("/") + HEALTH_PATH
    data, dropped = _get_json(parts.scheme, parts.hostname or "127.0.0.1", parts.port, path, timeout)
    if dropped and parts.scheme == "http":
        data, _ = _get_json("https", parts.hostname or "127.0.0.1", parts.port, path, timeout)
    if isinstance(data, dict) and data.get("server") == "execlib":
        return data
    return None


def _get_json(scheme: str, host: str, port: int | None, path: str, timeout: float) -> tuple[object, bool]:
    """(the JSON at path, or None; whether the server closed the connection without answering)."""
    import http.client

    try:
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port or 443, timeout=timeout, context=_unverified_context()
            )
        else:
            conn = http.client.HTTPConnection(host, port or 80, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read(65536) if response.status == 200 else b""
        finally:
            conn.close()
        return (json.loads(body) if body else None), False
    except (ConnectionResetError, http.client.RemoteDisconnected, http.client.BadStatusLine):
        return None, True
    except (OSError, ValueError, http.client.HTTPException):
        return None, False


def _unverified_context() -> Any:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # see fetch_health: identification only, checked locally after
    return context


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
        time.sleep(POLL_INTERVAL)


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


def _port_of(files: RunFiles, info: RunInfo) -> int | None:
    """The server's port: the PID file's record, else (older PID files) the port file."""
    return info.port if info.port is not None else read_port(files.port)


def _host_of(info: RunInfo, pid: int) -> str | None:
    """The server's host: the PID file's record, else its command line's ``--host``."""
    return info.host if info.host is not None else _host_from_cmdline(process_cmdline(pid))


def describe_server(pid: int, root: str | None, url: str | None) -> str:
    """``pid N serving ROOT at URL``, leaving out what is not known."""
    return f"pid {pid}" + (f" serving {root}" if root else "") + (f" at {url}" if url else "")


@dataclass(frozen=True)
class Owner:
    """The live execlib server named by a PID file, with what is known of it."""

    pid: int
    root: str | None
    url: str | None

    def describe(self) -> str:
        return describe_server(self.pid, self.root, self.url)


def already_running_error(files: RunFiles, owner: Owner) -> AlreadyRunningError:
    """AlreadyRunningError naming the running server and the ways forward.

    Its default text advises --no-single-instance, which starts a second server that then takes the
    PID file over and leaves the first one running untracked (``status`` calls it stopped); this one
    offers ``stop`` or ``--replace``, which keep exactly one tracked server.
    """
    error = AlreadyRunningError(owner.pid, str(files.pid))
    error.args = (
        f"an execlib server is already running: {owner.describe()} (PID file {files.pid}); "
        f"use it, stop it with '{files.stop_command()}', or take its place with --replace",
    )
    return error


@dataclass(frozen=True)
class StopResult:
    """What ``stop`` did: outcome is "stopped" (SIGTERM sufficed), "killed" (needed SIGKILL) or "stale"."""

    outcome: str
    pid: int | None
    pid_path: str
    message: str


def stop(pid_path: str | os.PathLike[str] | None = None, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopResult:
    """Stop the server named by a PID file and remove its PID and port files.

    Raises NotRunningError when there is no PID file, and ForeignFileError (a ConfigError), touching
    nothing, when the file is not an execlib PID file. A stale file (process gone, or a pid reused by a
    process that is not an execlib server) is removed without signalling anything.
    """
    files = RunFiles.for_pid_file(pid_path)
    info = read_pid_file(files.pid)
    if info is None:
        raise NotRunningError(
            f"no PID file at {files.pid}: no execlib server was started with it (or it was already stopped)"
        )
    pid = info.pid
    port = _port_of(files, info)
    server = _in_process_server(files, pid)
    if server is not None:
        server.shutdown()
        outcome = "stopped" if server.wait(timeout) else "running"
        if outcome == "running":
            raise ExeclibError(f"the server in this process (pid {pid}) did not stop within {timeout:g} s")
        remove_if_owned(files, pid)
        return StopResult("stopped", pid, str(files.pid), f"stopped the execlib server in this process (pid {pid})")
    if not is_execlib_server(pid, port, info.host):
        remove_if_owned(files, pid)
        return StopResult(
            "stale",
            pid,
            str(files.pid),
            f"removed stale PID file {files.pid} (pid {pid} is not a running execlib server)",
        )
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

    ``health_url`` overrides where to ask (by default the recorded port on the server's host). Raises
    ForeignFileError when the file is not an execlib PID file.
    """
    files = RunFiles.for_pid_file(pid_path)
    where = str(files.pid)
    info = read_pid_file(files.pid)
    if info is None:
        return ServerStatus(False, None, False, None, pid_path=where)
    pid = info.pid
    port = _port_of(files, info)
    if not is_execlib_server(pid, port, info.host):
        return ServerStatus(False, pid, False, None, port=port, root=info.root, pid_path=where, stale=True)
    url = health_url
    if url is None and port is not None:
        url = server_url(_host_of(info, pid), port, info.scheme or "http")
    health = fetch_health(url, timeout) if url else None
    healthy = health is not None and health.get("pid") == pid
    root = health.get("root") if health else info.root
    return ServerStatus(True, pid, healthy, url, port=port, root=root, pid_path=where)


def running_server(files: RunFiles) -> Owner | None:
    """The live execlib server owning these files, or None.

    Raises ForeignFileError when the PID file is not an execlib PID file.
    """
    info = read_pid_file(files.pid)
    if info is None:
        return None
    pid = info.pid
    port = _port_of(files, info)
    server = _in_process_server(files, pid)
    if server is None and (pid == os.getpid() or not is_execlib_server(pid, port, info.host)):
        return None
    scheme = info.scheme or "http"
    url = server.url if server is not None else server_url(_host_of(info, pid), port, scheme) if port else None
    return Owner(pid, info.root, url)


def running_owner(files: RunFiles) -> int | None:
    """The pid of the live execlib server owning these files, or None (see ``running_server``)."""
    owner = running_server(files)
    return owner.pid if owner is not None else None
