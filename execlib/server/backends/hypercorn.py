"""The Hypercorn backend (``execlib[http2]``): HTTP/1.1, and HTTP/2 over TLS.

Hypercorn's public ``serve()`` binds its own sockets and, once shutdown starts, waits for every
connection to close: a client that stops reading in the middle of a download holds it (and
``Server.wait()``) for as long as it likes, as the task Hypercorn cancels after its graceful
timeout then waits to flush to it. So this module runs Hypercorn's connection handling
(``TCPServer``, its lifespan and worker context: what ``hypercorn.asyncio.run.worker_serve``
runs) on execlib's own socket and loop, and ends a shutdown as uvicorn's backend does: after
``graceful_timeout`` the connections still open are dropped, which their requests see as a
client disconnect.

Limits mapped from execlib's options (docs/backends.rst lists the differences):

- ``max_header_bytes`` -> ``h11_max_incomplete_size`` (HTTP/1.1: a head that outgrows it before
  it is complete is refused by h11) and ``h2_max_header_list_size`` (HTTP/2);
- ``header_timeout`` -> ``keep_alive_timeout``: Hypercorn closes a connection that has no request
  in progress for that long, from the moment it opens and between requests. A client slower than
  that is closed without the 408 uvicorn's protocol sends.

HTTP/2 stream priorities are ignored (every stream gets an equal share), as RFC 9113 allows:
with Chromium's priority frames, Hypercorn's priority tree (the ``priority`` package) ended up
"in a priority loop" on pages of a few hundred modules, and the exception killed the connection
with every request on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.utils import wrap_app
from priority.priority import PriorityTree  # (Hypercorn's dependency; its __init__ re-exports it untyped)

from .base import BackendOptions, socket_address
from .wsclose import ClosingWebSockets

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# WebSocket messages from a page are small (LiveReload's hello and info): uvicorn's backend has the same cap.
_WS_MAX_SIZE = 1 << 20


# Seconds after dropping the connections left at the graceful timeout before the tasks that
# still run are cancelled: the backstop for a request that ignores the disconnect.
_CANCEL_BACKSTOP = 0.5

# The listening backlog: bind_socket's. asyncio calls listen() again with what it is given.
_BACKLOG = 2048

_log = logging.getLogger("execlib.server.hypercorn")


def hypercorn_config(options: BackendOptions) -> Config:
    """Hypercorn's Config for execlib's options (no binding: the socket is handed over)."""
    config = Config()
    config.accesslog = None  # execlib's own access log (accesslog.py) sits in the app
    config.errorlog = _log  # a Logger: Hypercorn adds no handler of its own to it
    config.graceful_timeout = options.graceful_timeout
    config.keep_alive_timeout = options.header_timeout
    config.h11_max_incomplete_size = options.max_header_bytes
    config.h2_max_header_list_size = options.max_header_bytes
    config.websocket_max_message_size = _WS_MAX_SIZE
    config.include_server_header = False  # as with uvicorn (server_header=False)
    tls = options.tls
    if tls is not None:
        config.certfile, config.keyfile, config.keyfile_password = tls.certfile, tls.keyfile, tls.password
        config.alpn_protocols = ["h2", "http/1.1"] if options.http2 else ["http/1.1"]
    return config


class HypercornBackend:
    """Hypercorn's connection handling on the given socket."""

    name: ClassVar[str] = "hypercorn"

    def __init__(
        self, app: ASGIApp, sock: socket.socket, options: BackendOptions, on_started: Callable[[], None]
    ) -> None:
        # open WebSockets get uvicorn's 1012 on shutdown, not 1011 a graceful timeout later (wsclose.py)
        self._app = ClosingWebSockets(app)
        self._socket = sock
        self._on_started = on_started
        self.config = hypercorn_config(options)
        # Made here, set on the loop: an Event binds to a loop only once awaited, and
        # request_exit() may come before serve() has started.
        self._exit = asyncio.Event()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        app = wrap_app(self._app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
        state: dict[str, Any] = {}
        lifespan = Lifespan(app, config, loop, state)
        lifespan_task = loop.create_task(lifespan.handle_lifespan())
        await lifespan.wait_for_startup()
        if lifespan_task.done() and lifespan_task.exception() is not None:
            raise lifespan_task.exception()  # type: ignore[misc]  # checked just above
        context = WorkerContext(None)
        connections = _Connections()

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.open[task] = writer
            try:
                await _TCPServer(app, loop, config, context, state, reader, writer)
            except asyncio.CancelledError:
                if not connections.cancelling:
                    raise
                # Ended by the backstop below: said here, at debug level. Raised on, asyncio's
                # stream callback would log it as an error with a traceback.
                _log.debug("cancelled a connection still open after the graceful timeout")
            except Exception as error:  # one connection's failure, logged in one line
                # Hypercorn's protocol code raising for one client's frames (an HTTP/2 priority
                # loop, seen under h2load) ends that connection; asyncio would log a traceback.
                writer.transport.abort()  # TCPServer closes it itself only when it ends normally
                _log.warning("closed a connection: %s", _summary(error))
                _log.debug("the connection's error", exc_info=error)
            finally:
                connections.open.pop(task, None)

        ssl_context = config.create_ssl_context()
        server = await asyncio.start_server(
            connected,
            sock=self._socket,
            ssl=ssl_context,
            ssl_handshake_timeout=config.ssl_handshake_timeout if ssl_context is not None else None,
            backlog=_BACKLOG,
        )
        try:
            self._on_started()
            await self._exit.wait()
        finally:
            await context.terminated.set()  # idle connections close now
            server.close()
            await connections.end(config.graceful_timeout)
            await server.wait_closed()
            await lifespan.wait_for_shutdown()
            lifespan_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lifespan_task

    def request_exit(self) -> None:
        self._exit.set()
        self._app.close_all()

    @property
    def bound_address(self) -> tuple[str, int]:
        return socket_address(self._socket)


class _FlatPriorityTree(PriorityTree):
    """A priority tree in which every stream depends on the connection with the same weight:
    the priority signals of the client are ignored (see the module's docstring)."""

    def insert_stream(
        self, stream_id: int, depends_on: int | None = None, weight: int = 16, exclusive: bool = False
    ) -> None:
        super().insert_stream(stream_id)

    def reprioritize(
        self, stream_id: int, depends_on: int | None = None, weight: int = 16, exclusive: bool = False
    ) -> None:
        return None


class _TCPServer(TCPServer):
    """Hypercorn's connection handler, whose HTTP/2 protocol (negotiated by ALPN, so known when the
    protocol is set up) gets a flat priority tree."""

    @property  # an attribute in TCPServer, set once in run(): the wrapper made for this connection
    def protocol(self) -> ProtocolWrapper:
        return self._wrapper

    @protocol.setter
    def protocol(self, wrapper: ProtocolWrapper) -> None:
        self._wrapper = wrapper
        if isinstance(wrapper.protocol, H2Protocol):
            wrapper.protocol.priority = _FlatPriorityTree()


def _summary(error: BaseException) -> str:
    """``Type: message`` of ``error``, or of the first error inside an exception group."""
    # an exception group has ``exceptions`` (the exceptiongroup backport's too, on Python 3.10)
    while isinstance(getattr(error, "exceptions", None), tuple) and error.exceptions:  # type: ignore[attr-defined]
        error = error.exceptions[0]  # type: ignore[attr-defined]
    return f"{type(error).__name__}: {error}"


class _Connections:
    """The open connections (each one's task and writer), and how a shutdown ends them."""

    def __init__(self) -> None:
        self.open: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.cancelling = False

    async def end(self, graceful: float) -> None:
        """Give open connections ``graceful`` seconds, then drop the rest (see the module's docstring).

        Some end only by the cancel after that: an HTTP/2 connection whose client has gone waits
        out Hypercorn's idle timer before its task ends, and may not have noticed the shutdown.
        """
        pending = set(self.open)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=graceful)
        for task in pending:
            # abort(), not close(): close() would wait to flush to a client that reads slowly
            self.open[task].transport.abort()
        if pending:
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_BACKSTOP)
        self.cancelling = True
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
