"""Errors a user can cause, each carrying a one-line message fit for a terminal."""

from __future__ import annotations


class ExeclibError(Exception):
    """Base class: ``str(error)`` is a complete one-line message; ``exit_code`` is for the CLI."""

    exit_code = 1


class ConfigError(ExeclibError):
    """A bad option or argument (missing folder, bad port, missing fallback file).

    With ``option``, the message is about that parameter's ``value`` and reads as the Python API
    spells it: ``ConfigError("must be 0 or more milliseconds", option="delay", value=-5)`` is
    ``delay=-5 must be 0 or more milliseconds``. ``problem`` (the rest of the message) is written
    by execlib, never taken from the user, and names other parameters as ``name=`` too, so the
    command line can show its flags instead (``--delay -5 must be ...``).
    """

    exit_code = 2

    def __init__(self, message: str, *, option: str | None = None, value: object = None) -> None:
        self.option = option
        self.value = value
        self.problem = message
        super().__init__(f"{option}={value!r} {message}" if option is not None else message)


class BindError(ExeclibError):
    """The server could not bind its listening socket."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host, self.port, self.reason = host, port, reason
        super().__init__(f"cannot listen on {host}:{port}: {reason}")


class PortInUseError(BindError):
    """The port is taken by another process."""

    def __init__(self, host: str, port: int, detail: str = "") -> None:
        reason = detail or "the port is already in use; pick another with --port, or --port 0 for a free one"
        super().__init__(host, port, reason)


class AlreadyServedError(PortInUseError):
    """The port is held by an execlib server serving the same folder: ``url`` is where it is."""

    def __init__(self, host: str, port: int, url: str, pid: object) -> None:
        self.url = url
        super().__init__(
            host,
            port,
            f"the same folder is already served there by execlib (pid {pid}): open {url}, "
            "stop it, take its place with --replace, or pick another port with --port",
        )


class AlreadyRunningError(ExeclibError):
    """A live execlib server already owns the PID file."""

    def __init__(self, pid: int, pid_path: str) -> None:
        self.pid, self.pid_path = pid, pid_path
        super().__init__(
            f"an execlib server is already running with pid {pid} (PID file {pid_path}); "
            "stop it with 'execlib stop' or pass --no-single-instance"
        )


class AppError(ExeclibError):
    """App mode: the app could not be served (it cannot be imported, or its workers keep failing).

    ``exit_code`` is 2 when the import string names nothing (a mistake in the command), 1 when
    the app's own code fails (its traceback was shown once already).
    """

    def __init__(self, message: str, *, target_error: bool = False) -> None:
        self.exit_code = 2 if target_error else 1
        super().__init__(message)
