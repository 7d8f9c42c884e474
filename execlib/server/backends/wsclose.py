"""Closing open WebSockets when serving ends, for backends that do not do it themselves.

uvicorn sends each open WebSocket a close frame with code 1012 (service restart) on shutdown, and
the app's ``receive()`` returns a disconnect. Hypercorn leaves them open until its graceful
timeout and then cancels the app, which a page sees as 1011 (internal error) a second later. A
live-reload page reconnects after either, but "the server restarts" is what happened, and a
restart should not wait out the timeout. This ASGI wrapper gives any backend uvicorn's behaviour.

It also reads what a client still sends after the server's close frame, until the client's own
close frame (or ``LINGER`` seconds): Hypercorn hands each message to the app through a queue of
ten, and stops reading the connection once the queue is full. A client flooding a page's socket
until the app closes it (livereload.py) filled that queue for good, so Hypercorn never read the
client's answer to the close, and the connection stayed open until the server stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ..limits import LINGER

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: "Service Restart" (RFC 6455 registry): the code uvicorn sends too
GOING_AWAY_CODE = 1012


class _OpenSocket:
    """One WebSocket's receive and send, with a way to end it from outside."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._accepted = False
        self._closed = False
        self._closing = asyncio.Event()
        self._disconnected = False  # the backend said the client is gone: nothing left to read

    async def receive(self) -> Message:
        if not self._closing.is_set():
            message = asyncio.ensure_future(self._receive())
            closing = asyncio.ensure_future(self._closing.wait())
            await asyncio.wait((message, closing), return_when=asyncio.FIRST_COMPLETED)
            closing.cancel()
            if message.done():
                received: Message = message.result()
                self._disconnected = received["type"] == "websocket.disconnect"
                return received
            message.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await message
        return {"type": "websocket.disconnect", "code": GOING_AWAY_CODE}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self._closed and kind in ("websocket.send", "websocket.close"):
            return  # closed by us already: the app's goodbye has nowhere to go
        self._accepted = self._accepted or kind == "websocket.accept"
        self._closed = self._closed or kind == "websocket.close"
        await self._send(message)

    @property
    def closed(self) -> bool:
        """Whether a close frame was sent (by the app, or by ``close()``) to a client still there."""
        return self._closed and not self._disconnected

    async def linger(self) -> None:
        """Read and drop what the client sends until it has closed too (or LINGER seconds)."""

        async def until_disconnect() -> None:
            while (await self._receive())["type"] != "websocket.disconnect":
                pass

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(until_disconnect(), LINGER)

    async def close(self) -> None:
        """Send the close frame (once accepted) and end the app's wait for the next message."""
        self._closing.set()
        if self._accepted and not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # the client may have gone meanwhile
                await self._send({"type": "websocket.close", "code": GOING_AWAY_CODE})


class ClosingWebSockets:
    """``app`` with every open WebSocket closed by ``close_all()`` (called on the loop)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._open: set[_OpenSocket] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        socket = _OpenSocket(receive, send)
        self._open.add(socket)
        try:
            await self.app(scope, socket.receive, socket.send)
        finally:
            self._open.discard(socket)
        if socket.closed:
            await socket.linger()

    def close_all(self) -> None:
        for socket in list(self._open):
            task = asyncio.ensure_future(socket.close())
            self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
            task.add_done_callback(self._tasks.discard)
