"""The interface between ``Server`` and the HTTP server that speaks to clients (docs/backends.rst).

``Server`` owns the event loop, the listening socket and the lifecycle; a backend only serves
the ASGI app on that socket, on that loop, until asked to stop. So every backend gets the same
start-up order, the same ``shutdown()`` from any thread and the same clean-up, and a backend
that cannot run on a loop it is handed (one that owns its runtime) cannot be one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp


class TLSFilesLike(Protocol):
    """A certificate and its key, as PEM files (``execlib.tls.TLSFiles`` is one).

    Any object with these three attributes will do, so the backends need nothing from the code
    that finds or makes the files.
    """

    @property
    def certfile(self) -> str: ...

    @property
    def keyfile(self) -> str: ...

    @property
    def password(self) -> str | None: ...


@dataclass(frozen=True)
class BackendOptions:
    """What a backend needs beside the app and the socket; the numbers are ServerConfig's."""

    #: seconds for a whole request head, from the connection opening or the next request's first byte
    header_timeout: float
    #: bytes a request head may take
    max_header_bytes: int
    #: seconds open requests get to finish once shutdown starts
    graceful_timeout: float
    #: serve HTTPS with these files; None: plain HTTP
    tls: TLSFilesLike | None = None
    #: offer HTTP/2 (ALPN "h2") beside HTTP/1.1; only over TLS, and only backends that speak it
    http2: bool = False


class ServerBackend(Protocol):
    """One HTTP server serving ``app`` on an already listening socket.

    Made in the thread that calls ``Server.start()``, before the loop runs; ``serve()`` runs on
    the loop execlib manages and returns once serving has ended and its connections are closed
    (or dropped after ``graceful_timeout``); ``request_exit()`` is called on that loop (``Server.
    shutdown()`` sends it there with ``call_soon_threadsafe``), possibly before ``serve()`` has
    started, and possibly twice. ``on_started`` (given to the constructor) is called on the loop
    once connections are accepted.
    """

    #: the name ``backend=`` takes
    name: ClassVar[str]

    async def serve(self) -> None: ...

    def request_exit(self) -> None: ...

    @property
    def bound_address(self) -> tuple[str, int]: ...


#: what a backend's constructor takes; ``create_backend`` calls it
BackendFactory = Callable[["ASGIApp", socket.socket, BackendOptions, Callable[[], None]], ServerBackend]


def socket_address(sock: socket.socket) -> tuple[str, int]:
    """(host, port) a listening socket is bound to (IPv6 addresses come with two more fields)."""
    address = sock.getsockname()
    return address[0], address[1]
