"""The uvicorn backend, the default: uvicorn's serving parts (never its command line, see
``uvicorn_core``) with execlib's protocol classes for request-head limits and quiet WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ClassVar

from ..protocols import http_protocol, websocket_protocol
from ..uvicorn_core import Config as UvicornConfig
from ..uvicorn_core import Server as UvicornServer
from .base import BackendOptions, socket_address

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# Seconds after the graceful timeout at which uvicorn cancels requests that a dropped connection did not end.
_CANCEL_BACKSTOP = 0.5


class _Uvicorn(UvicornServer):
    """uvicorn's Server with our readiness hook, without its signal capture, and with a shutdown
    that ends what outlives the graceful timeout as a client disconnect.

    uvicorn re-raises captured signals after serving, which would turn a clean
    Ctrl-C into KeyboardInterrupt; ``Server.start`` installs its own handlers.
    """

    def __init__(self, config: UvicornConfig, on_started: Callable[[], None], drop_after: float) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._drop_after = drop_after

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's graceful shutdown, but connections still open after ``drop_after`` seconds
        are dropped rather than their requests cancelled.

        uvicorn cancels the requests still running when its graceful timeout ends, and logs each
        CancelledError with a traceback ("Exception in ASGI application"): what every large
        download to a slow client got on Ctrl-C. Aborting the connection first makes the request
        see a client disconnect instead, and it ends normally (Starlette's FileResponse stops
        streaming on ``http.disconnect``). uvicorn's own timeout, set a little later, stays as the
        backstop for a request that ignores the disconnect.
        """
        timer = asyncio.get_running_loop().call_later(self._drop_after, self._drop_connections)
        try:
            await super().shutdown(sockets=sockets)
        finally:
            timer.cancel()

    def _drop_connections(self) -> None:
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()  # not close(): that would wait to flush to a client that reads slowly


class UvicornBackend:
    """uvicorn on the given socket; HTTP/1.1 only (uvicorn has no HTTP/2)."""

    name: ClassVar[str] = "uvicorn"

    def __init__(
        self, app: ASGIApp, sock: socket.socket, options: BackendOptions, on_started: Callable[[], None]
    ) -> None:
        tls = options.tls
        config = UvicornConfig(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            # our subclasses of uvicorn's httptools and websockets-sansio protocols: request
            # heads get a deadline and a size cap, and bad UTF-8 one log line (protocols.py)
            http=http_protocol(options.header_timeout, options.max_header_bytes),
            ws=websocket_protocol,  # type: ignore[arg-type]  # a factory: see protocols.websocket_protocol
            ws_max_size=1 << 20,
            # connections still open after graceful_timeout are dropped (see _Uvicorn.shutdown);
            # uvicorn's cancelling of what still runs then is only the backstop
            # typed int by uvicorn, but it only goes to asyncio.wait_for: fractions of a second work
            timeout_graceful_shutdown=options.graceful_timeout + _CANCEL_BACKSTOP,  # type: ignore[arg-type]
            server_header=False,
            proxy_headers=False,  # a dev server is not behind a proxy; skip the per-request check
            ssl_certfile=tls.certfile if tls is not None else None,
            ssl_keyfile=tls.keyfile if tls is not None else None,
            ssl_keyfile_password=tls.password if tls is not None else None,
        )
        self.server = _Uvicorn(config, on_started=on_started, drop_after=options.graceful_timeout)
        self._socket = sock

    async def serve(self) -> None:
        await self.server.serve(sockets=[self._socket])

    def request_exit(self) -> None:
        # uvicorn's main loop looks at this every tenth of a second, and before it starts
        self.server.should_exit = True

    @property
    def bound_address(self) -> tuple[str, int]:
        return socket_address(self._socket)
