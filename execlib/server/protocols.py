"""uvicorn's connection protocols, with what a server facing untrusted clients needs on top.

HTTP: uvicorn's httptools protocol plus a deadline for each request head and a cap on its size
(the numbers are in limits.py); uvicorn has neither. We name the protocol class ourselves rather
than let uvicorn pick one ("auto"), so the limits hold whatever else is installed; httptools comes
with uvicorn[standard], which execlib requires.

WebSocket: uvicorn's sans-I/O protocol, but a text message that is not UTF-8 is logged in one
line; uvicorn logs a full traceback for each one.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import logging
from typing import Any, cast

import httptools

from .limits import HEADER_TIMEOUT, LINGER, MAX_HEADER_BYTES
from .uvicorn_core import Config, HttpToolsProtocol, ServerState

logger = logging.getLogger("execlib.server")

# An unfinished head is measured in raw bytes, which hold what head_size() leaves out (method,
# version, spaces): allow that much on top, so a head is never refused unfinished that would pass
# once complete.
_RAW_SLACK = 1024


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that was already answered."""


def peer_name(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes of a request head as counted against the cap: the target, and each header line
    (name, value, and the three bytes of ':' and CRLF, the least a line can have on the wire)."""
    return len(url) + 3 * len(headers) + sum(map(len, itertools.chain.from_iterable(headers)))


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request head must arrive within ``header_timeout`` seconds
    and stay within ``max_header_bytes``. Make a configured subclass with ``http_protocol()``.

    The deadline runs from the moment the connection opens (a client that sends nothing is
    closed silently) and from the first byte of each later request (the wait between requests is
    uvicorn's keep-alive timeout); it stops when the head is complete, so bodies and responses
    take as long as they take. A head that misses the deadline gets 408, one too big gets 431
    (414 when the request target alone is too big).

    This sits on every request, so the common case costs a few attribute updates: one timer per
    connection looks at the head in progress every ``header_timeout`` seconds, rather than a
    timer armed and cancelled per request; and a head is only measured exactly when the bytes
    received since the previous request ended could hold one over the cap.
    """

    header_timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes received belong to a request head
        self._head_since: float | None = None  # loop time the head in progress began
        # Raw bytes received for that head, from whole reads while a head was awaited: it may
        # fall short of the truth (a pipelined head starting inside a read), never over it.
        self._head_bytes = 0
        # Bytes of every read since the one in which the previous request ended: never short of
        # the head in progress, so at most this much means no need to measure the head.
        self._since_message = 0
        self._read = 0  # length of the read being parsed
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False

    # -- the connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_since = self.loop.time()  # waiting for the first request counts as its head
        self._timer = self.loop.call_at(self._head_since + self.header_timeout, self._check_head)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after our answer: what still comes is discarded
        self._read = len(data)
        if self._in_head:
            self._head_bytes += self._read
            if self._head_since is None:  # the first byte of a request after a keep-alive wait
                self._head_since = self.loop.time()
        # uvicorn's data_received, except that a request already refused from a parser callback
        # is not answered a second time with a 400 and an "Invalid HTTP request" warning
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._cancel_timer()  # the connection is the WebSocket protocol's from here on
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        self._since_message += self._read
        if self._in_head and self._head_bytes > self.max_header_bytes + _RAW_SLACK:
            # refused before it ends: httptools would keep buffering a header that never ends
            self._refuse(self._too_large())

    # -- parser callbacks --------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_since = None
        self._head_bytes = 0
        if self._since_message + self._read > self.max_header_bytes and (
            head_size(self.url, self.headers) > self.max_header_bytes
        ):
            self._refuse(self._too_large())
            raise _Refused  # stops the parser: no request task starts, no body is read
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._since_message = 0  # the whole current read is added once parsed: the next head may start in it

    # -- limits ------------------------------------------------------------------------

    def _too_large(self) -> int:
        # The target alone over the cap: 414, as the app answers targets over its own, smaller
        # limit. (uvicorn sets ``url`` when a message begins: there may be none yet.)
        return 414 if len(getattr(self, "url", b"")) > self.max_header_bytes else 431

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_head(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._refused:
            return
        since = self._head_since
        if since is None:  # no head in progress: a request is running, or a keep-alive wait
            self._timer = self.loop.call_later(self.header_timeout, self._check_head)
            return
        deadline = since + self.header_timeout
        if self.loop.time() < deadline:  # a later head than the one this timer was set for
            self._timer = self.loop.call_at(deadline, self._check_head)
            return
        peer = peer_name(self.client)
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            logger.debug("closing %s: no request within %s s", peer, self.header_timeout)
            self.transport.close()
            return
        logger.debug("closing %s: no complete request head within %s s", peer, self.header_timeout)
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` and close, after letting the client read the answer."""
        self._refused = True
        self._in_head = False
        self._head_since = None
        self._cancel_timer()
        self._unset_keepalive_if_required()
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined head went wrong while a response is still being sent: no room for an answer
            self.transport.abort()
            return
        phrase = http.HTTPStatus(status).phrase
        body = f"{phrase}\n".encode()
        head = [f"HTTP/1.1 {status} {phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(b"content-type: text/plain; charset=utf-8\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client sees the end of the answer; its EOF closes us
        self._timer = self.loop.call_later(LINGER, self._end_linger)

    def _end_linger(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()


def http_protocol(header_timeout: float, max_header_bytes: int) -> type[LimitedHttpToolsProtocol]:
    """The HTTP protocol class to give uvicorn (``Config(http=...)``), with these limits."""
    attributes = {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes}
    configured = type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), attributes)
    return cast(type[LimitedHttpToolsProtocol], configured)


def websocket_protocol(*args: Any, **kwargs: Any) -> asyncio.Protocol:
    """The WebSocket protocol to give uvicorn (``Config(ws=...)``), imported on the first upgrade.

    uvicorn calls ``ws`` with keyword arguments to make the protocol of each upgraded
    connection, so a function serves as well as a class; the sans-I/O protocol and the
    ``websockets`` package behind it (a tenth of the start-up) are then imported only when a
    browser first opens the live-reload socket, never before the first page is served.
    """
    from .ws_protocol import QuietWebSocketsProtocol

    return QuietWebSocketsProtocol(*args, **kwargs)
