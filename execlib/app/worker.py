"""An app-mode worker process: load the user's app and serve it on the socket the supervisor made.

Run as ``python -m execlib.app.worker`` with its orders in ``$EXECLIB_APP_WORKER`` (JSON): the
app to load (``AppTarget``), the listening socket's descriptor (shared by the generation's
workers, so the kernel spreads connections over them), the descriptor of the status pipe, and
the drain timeout. What it tells the supervisor goes through the status pipe, one JSON object a
line: ``{"event": "ready"}`` once uvicorn serves (lifespan startup done), or ``{"event": "error",
...}`` with the traceback when the app cannot load or start. Its stdout and stderr are the app's
output, which the supervisor echoes and keeps the tail of.

A *standby* worker (``"standby": true``) is started before it is needed: it imports uvicorn and
the third-party and standard-library modules the app's last workers had loaded (``"preload"``;
never a module of the app's own folder, nor one outside the installation's library folders, such
as an editable install), then waits for a line on standard input. ``go`` makes it load the app and
serve; end of input makes it exit. A restart then costs the app's own import, not the interpreter's
start-up and FastAPI's import. Once serving, a worker reports the modules it has loaded that a
standby may preload (``{"event": "modules"}``).

Stopping: SIGTERM drains (uvicorn's graceful shutdown: in-flight requests finish, up to the drain
timeout, then the lifespan's shutdown). SIGINT is ignored: Ctrl-C reaches the whole process group,
and the supervisor, not each worker, decides what stops. Standard input is a lifeline: when the
supervisor's process ends, however it ends, the pipe closes and the worker stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

from .target import AppLoadError, AppTarget, load_app

ENV = "EXECLIB_APP_WORKER"
# Exit statuses the supervisor reads: the app could not be loaded or started.
EXIT_LOAD_FAILED = 3


class StatusPipe:
    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def send(self, **message: Any) -> None:
        with self._lock, contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
            self._file.write(json.dumps(message) + "\n")
            self._file.flush()


class LifespanWatch:
    """Wraps the app to keep the traceback of a failing lifespan startup (uvicorn only logs it)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.reported: str | None = None  # what the app said in lifespan.startup.failed (Starlette: its traceback)
        self.raised: str | None = None  # the traceback of what it raised while starting

    @property
    def failure(self) -> str | None:
        return self.reported or self.raised

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        phase = "before"

        async def watched_receive() -> Any:
            nonlocal phase
            message = await receive()
            if message["type"] == "lifespan.startup":
                phase = "startup"
            return message

        async def watched_send(message: Any) -> None:
            nonlocal phase
            if message["type"] == "lifespan.startup.complete":
                phase = "started"
            elif message["type"] == "lifespan.startup.failed" and self.reported is None:
                self.reported = str(message.get("message") or "") or None
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        except BaseException:
            if phase == "startup":
                self.raised = traceback.format_exc()
            raise


def serve(orders: dict[str, Any], status: StatusPipe, started: float) -> int:
    target = AppTarget(
        orders["import_string"],
        orders["app_dir"],
        factory=orders["factory"],
        interface=orders["interface"],
    )
    try:
        app, interface = load_app(target)
    except AppLoadError as error:
        status.send(event="error", target=error.target_error, title=str(error), text=str(error))
        return EXIT_LOAD_FAILED
    except BaseException as error:  # the app's code failed: its traceback, from its own frames
        title = f"cannot load {target.import_string}: {type(error).__name__}: {error}".splitlines()[0]
        status.send(event="error", target=False, title=title, text=_app_traceback(error))
        return EXIT_LOAD_FAILED
    loaded = time.monotonic()

    from ..server.uvicorn_core import Config, Server

    watched = LifespanWatch(app)
    # the supervisor shows a failing startup (once, with its traceback): uvicorn need not log it too
    logging.getLogger("uvicorn.error").addFilter(_not_lifespan_failures)
    config = Config(
        watched,
        interface="asgi3",
        lifespan="auto",
        access_log=False,  # the front server logs every request once
        log_level="warning",
        timeout_graceful_shutdown=orders["graceful_timeout"],
        forwarded_allow_ips="127.0.0.1",  # the front server sets X-Forwarded-*: the app sees the browser
    )
    sock = socket.socket(fileno=orders["fd"])

    class WorkerServer(Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                ms = (time.monotonic() - started) * 1000
                status.send(
                    event="ready",
                    pid=os.getpid(),
                    interface=interface,
                    startup_ms=ms,
                    import_ms=(loaded - started) * 1000,
                    standby=bool(orders.get("standby")),
                )
                code = [target.app_dir, *orders.get("code_dirs", [])]
                status.send(event="modules", modules=preloadable_modules(code))

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, self.handle_exit)
            yield

        async def main_loop(self) -> None:
            # uvicorn looks at should_exit every 0.1 s; a restart should not wait for that
            self.wake = asyncio.Event()
            self.wake_loop = asyncio.get_running_loop()
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 1) % 864000
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.1)
                should_exit = await self.on_tick(counter)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            wake = getattr(self, "wake", None)
            if wake is not None:  # through the loop's self-pipe: it may be asleep in its selector
                self.wake_loop.call_soon_threadsafe(wake.set)

    server = WorkerServer(config)
    threading.Thread(target=_lifeline, args=(server, orders["graceful_timeout"]), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's exit when the lifespan startup failed
        text = watched.failure or "the app's lifespan startup failed (see the output above)"
        status.send(event="error", target=False, title=f"{target.import_string}: startup failed", text=text)
        return EXIT_LOAD_FAILED
    if not server.started:
        text = watched.failure or "the app's lifespan startup failed (see the output above)"
        status.send(event="error", target=False, title=f"{target.import_string}: startup failed", text=text)
        return EXIT_LOAD_FAILED
    return 0


def _not_lifespan_failures(record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR and "lifespan" in record.pathname)


def _lifeline(server: Any, graceful: float) -> None:
    """Stop when the supervisor's end of standard input closes (its process ended)."""
    with contextlib.suppress(OSError):
        while os.read(0, 1 << 12):  # the raw descriptor: a buffered reader's lock would block exiting
            pass
    server.should_exit = True
    time.sleep(graceful + 2.0)  # a graceful stop's deadline: past it, nothing waits for this process
    os._exit(1)


def _app_traceback(error: BaseException) -> str:
    """The traceback without execlib's own frames: from where the app's code was entered."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    skip = 0
    for index, frame in enumerate(frames):
        if frame.filename.startswith(ours) or "importlib" in frame.filename:
            skip = index + 1
        else:
            break
    lines = traceback.format_list(frames[skip:]) if skip < len(frames) else []
    head = "Traceback (most recent call last):\n" if lines else ""
    return head + "".join(lines) + "".join(traceback.format_exception_only(type(error), error))


def preloadable_modules(code_dirs: list[str]) -> list[str]:
    """The loaded modules a standby worker may import ahead: those of the installation's library
    folders (the standard library, site-packages), never the app's own (``code_dirs``: its folder
    and the reload folders, which may lie in site-packages) nor an editable install's."""
    libraries = {os.path.realpath(path) for key, path in sysconfig.get_paths().items() if "lib" in key}
    libraries |= {os.path.realpath(os.path.dirname(os.__file__))}
    own = [os.path.realpath(folder) + os.sep for folder in code_dirs]
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or name.startswith("__"):
            continue
        path = os.path.realpath(path)
        if any(path.startswith(folder) for folder in own):
            continue
        if any(path.startswith(folder + os.sep) for folder in libraries):
            names.append(name)
    return names


def _preload(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001  (a module that cannot be imported ahead is imported by the app, or not)
            continue


def _wait_for_go() -> bool:
    """Read standard input up to the first line: True for ``go``, False at its end (not needed)."""
    line = b""
    while not line.endswith(b"\n"):
        piece = os.read(0, 1)
        if not piece:
            return False
        line += piece
    return line.strip() == b"go"


def main() -> int:
    orders = json.loads(os.environ.pop(ENV))
    status = StatusPipe(orders["status_fd"])
    if orders.get("standby"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the supervisor decides
        from ..server.uvicorn_core import Config, Server  # noqa: F401  (imported ahead, like the preload)

        _preload(orders.get("preload", []))
        if not _wait_for_go():
            return 0
    return serve(orders, status, time.monotonic())


if __name__ == "__main__":
    sys.exit(main())
