"""The connections to the backend: httpcore's HTTP/1.1 connections, pooled here, over asyncio.

httpx's ``AsyncClient`` costs more per request than the rest of the proxy together: building its
``Request`` and ``Response`` models, merging URLs, cookies, auth and event hooks the proxy has no
use for, and httpcore's general pool, which checks every connection it holds (a ``poll()`` each,
through anyio's socket attributes) twice per request. The proxy talks to one origin over HTTP/1.1,
so it drives httpcore's ``AsyncHTTP11Connection`` (the same HTTP machinery, h11 underneath)
itself, keeping idle connections in a list: the last one used is the next one taken.

For an ``http://`` backend the connections run on ``_Protocol``, an asyncio protocol on the
server's own loop (uvloop when installed): bytes go to h11 as the loop received them, with no
stream layer or buffer of ours between, and a connection the backend closed while idle is known
from the loop's callbacks, without asking the socket. An ``https://`` backend goes through
httpcore's anyio backend, which does TLS.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import AsyncIterable
from typing import Any, cast

import httpcore

from .backend import Backend

Headers = list[tuple[bytes, bytes]]

# Idle connections kept for reuse; more are closed as their responses end.
MAX_IDLE = 32
# An idle connection older than this is closed rather than reused (httpx's default).
KEEPALIVE_EXPIRY = 5.0
# A connection stops reading from the socket while this much has arrived unread: a slow browser
# holds back the backend (through TCP) instead of filling the proxy's memory.
HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10

# The errors a request to the backend can end with (httpcore's own kinds).
UpstreamError = (
    httpcore.ProtocolError,
    httpcore.NetworkError,
    httpcore.TimeoutException,
    httpcore.UnsupportedProtocol,
)


class Connection(httpcore.AsyncHTTP11Connection):
    # Read as much as the loop has received (uvloop hands over up to 256 KiB at a time): a large
    # body takes fewer trips through h11 and the relay than at httpcore's 64 KiB.
    READ_NUM_BYTES = 256 << 10

    def __init__(self, origin: httpcore.Origin, stream: httpcore.AsyncNetworkStream, keepalive_expiry: float) -> None:
        super().__init__(origin, stream, keepalive_expiry)
        # httpcore's lock (anyio's, after asking sniffio which library runs) yields to the loop in
        # a shielded cancel scope on every acquire, twice a request; asyncio's takes a free lock
        # at once. The loop is always asyncio's (or uvloop) here.
        self._state_lock = asyncio.Lock()  # type: ignore[assignment]


class Upstream:
    """HTTP/1.1 connections to ``backend``, reused while they stay open."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._origin = httpcore.Origin(backend.scheme.encode(), backend.hostname.encode("idna"), backend.port)
        self._idle: list[Connection] = []
        self._ssl: ssl.SSLContext | None = None

    async def send(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        content: AsyncIterable[bytes] | None,
        *,
        connect_timeout: float,
    ) -> tuple[httpcore.Response, Connection]:
        """The backend's response to one request (headers read, body not yet), and its connection:
        pass both to ``release`` once done with the body."""
        connection = await self._take_idle() or await self._connect(connect_timeout)
        url = httpcore.URL(scheme=self._origin.scheme, host=self._origin.host, port=self._origin.port, target=target)
        request = httpcore.Request(method, url, headers=headers, content=content)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await connection.aclose()
            raise
        return response, connection

    async def release(self, response: httpcore.Response, connection: Connection) -> None:
        """End ``response`` (mid-body, its connection is closed) and keep the connection if it is reusable."""
        await response.aclose()
        if connection.is_idle() and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        elif not connection.is_closed():
            await connection.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()

    async def _take_idle(self) -> Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed() and not connection.has_expired():
                return connection
            await connection.aclose()  # closed by the backend meanwhile, or kept too long
        return None

    async def _connect(self, timeout: float) -> Connection:
        host = self.backend.hostname
        stream: httpcore.AsyncNetworkStream
        if self.backend.scheme == "https":
            stream = await httpcore.AnyIOBackend().connect_tcp(host, self.backend.port, timeout=timeout)
            stream = await stream.start_tls(self._ssl_context(), server_hostname=host, timeout=timeout)
        else:
            stream = await _open(host, self.backend.port, timeout)
        return Connection(self._origin, stream, keepalive_expiry=KEEPALIVE_EXPIRY)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # a development backend's certificate is usually self-signed
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl


async def _open(host: str, port: int, timeout: float) -> _Stream:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(loop), host, port), timeout
        )
    except asyncio.TimeoutError:
        raise httpcore.ConnectTimeout("timed out") from None
    except OSError as error:
        # the system's words for the errno ("Connection refused"), the same on every event loop
        # (asyncio's own says "Connect call failed"): what the waiting page shows
        cause = OSError(error.errno, os.strerror(error.errno)) if error.errno else error
        raise httpcore.ConnectError(str(cause)) from cause
    return _Stream(transport, protocol)


class _Protocol(asyncio.Protocol):
    """Received data as the loop delivered it, in order, for one reader; and write flow control."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self._reading_paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # the backend is done sending: close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    async def read(self, max_bytes: int) -> bytes:
        while not self.chunks:
            if self.eof:
                if self.error is not None:
                    raise httpcore.ReadError(str(self.error) or type(self.error).__name__) from self.error
                return b""
            self._readable = self._loop.create_future()
            try:
                await self._readable
            finally:
                self._readable = None
        chunk = self.chunks[0]
        if len(chunk) <= max_bytes:
            self.chunks.popleft()
        else:
            chunk, self.chunks[0] = chunk[:max_bytes], chunk[max_bytes:]
        self.buffered -= len(chunk)
        if self._reading_paused and self.buffered <= LOW_WATER and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def drained(self) -> None:
        writable = self._writable
        if writable is not None and not writable.done():
            await writable
        if self.transport is None or self.transport.is_closing():
            raise httpcore.WriteError("the backend closed the connection")


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's view of a connection on ``_Protocol``."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if timeout is None:  # the proxy never sets a read timeout: a backend may think for long
            return await self._protocol.read(max_bytes)
        try:
            return await asyncio.wait_for(self._protocol.read(max_bytes), timeout)
        except asyncio.TimeoutError:
            raise httpcore.ReadTimeout("timed out") from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the backend closed the connection")
        self._transport.write(buffer)
        await self._protocol.drained()

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("TLS goes through httpcore's anyio backend")

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # idle and readable means the backend closed it (or sent what it should not have):
            # httpcore then drops the connection rather than reusing it
            return bool(self._protocol.chunks) or self._protocol.eof
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        return None
