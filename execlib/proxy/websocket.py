"""WebSocket proxying: one client connection (ASGI) bridged to one upstream connection (``websockets``).

The client's handshake is answered only once the backend has answered its own: the client is
accepted with the subprotocol the backend chose, or refused when the backend refuses or is down.
After that, two pumps copy text and binary messages each way until one side closes; its close
code and reason are passed on to the other side, and both pumps and the upstream connection end
with the proxied connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.http11 import Request
from websockets.typing import Origin, Subprotocol

from ..log import escape_controls

logger = logging.getLogger("execlib.proxy")

#: Request headers never passed upstream. Hop-by-hop headers (RFC 9110 7.6.1) belong to one
#: connection; the WebSocket handshake headers (Sec-WebSocket-*, Upgrade, Connection) are made
#: anew by the upstream client for its own connection; Host and Origin are set on purpose below.
_DROPPED_REQUEST = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "origin",
        "user-agent",
        "content-length",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    }
)
#: Handshake response headers not passed back to the client: the same hop-by-hop set, the
#: handshake's own headers, and those the client-side server writes itself.
_DROPPED_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
    }
)

# Close codes that may not be sent in a close frame (RFC 6455 7.4.1): they only report what
# happened. websockets and uvicorn both refuse to send them, so they are translated.
# 1006 (connection lost) and 1015 (TLS failure) become 1011, "something went wrong".
_NO_STATUS = 1005  # the peer closed without a code: pass on a plain normal closure

#: how long the upstream handshake may take before the client is refused
DEFAULT_OPEN_TIMEOUT = 10.0
# how long a refusal waits for the server to see the connection closed (see _refuse)
_LOSS_WAIT = 1.0

# Backends that refused the last WebSocket: a page's client retrying every second while its
# backend restarts must not print a line per attempt, only one when it goes down and one when
# it answers again. Touched only from the server's event loop.
_unreachable: set[str] = set()


def upstream_url(backend: str, scope: Scope) -> str:
    """The backend's WebSocket URL for this request: ws(s)://, its host and port, the same path and query."""
    parts = urlsplit(backend)
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    # raw_path keeps the client's percent-encoding exactly (path is decoded); a backend mounted
    # under a prefix (http://host/app) gets that prefix in front.
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope.get("path", "/")
    prefix = parts.path.rstrip("/")
    url = f"{scheme}://{parts.netloc}{prefix}{path}"
    query: bytes = scope.get("query_string", b"")
    return f"{url}?{query.decode('latin-1')}" if query else url


def _backend_origin(backend: str) -> str:
    parts = urlsplit(backend)
    return f"{parts.scheme}://{parts.netloc}"


def _proxy_origins(scope: Scope, host: str | None) -> set[str]:
    """The origins a page served through this proxy has: the scheme (http or https) and the client's Host."""
    if not host:
        return set()
    secure = scope.get("scheme") in ("wss", "https")
    return {f"{'https' if secure else 'http'}://{host}"}


@dataclass
class UpstreamHandshake:
    """What the upstream handshake carries besides what the WebSocket client makes itself."""

    headers: list[tuple[str, str]]
    host: str | None  # the Host to send instead of the backend's own; None: the backend's
    origin: str | None
    user_agent: str | None


def upstream_headers(scope: Scope, backend: str, *, rewrite_host: bool = False) -> UpstreamHandshake:
    """The headers for the upstream handshake.

    Cookies, Authorization and any other end-to-end header go through as they came (several
    Cookie lines stay several). Host is the browser's, as the HTTP side sends it by default, so
    that a backend sees one host for its pages and its sockets, and its same-origin check
    (Origin against Host: Rails' Action Cable, Django Channels' validators) passes for a page
    loaded through the proxy. With ``rewrite_host``, Host is the backend's own, and an Origin
    that is the proxy's is rewritten to the backend's to match it; any other Origin is kept
    either way, so that the backend's cross-site checks still see cross-site requests.
    """
    headers: list[tuple[str, str]] = []
    host = origin = agent = None
    forwarded_for: list[str] = []
    connection_tokens: set[str] = set()
    raw: Iterable[tuple[bytes, bytes]] = scope.get("headers", [])
    decoded = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw]
    for name, value in decoded:
        if name == "connection":
            # headers named in Connection are hop-by-hop for this hop too (RFC 9110 7.6.1)
            connection_tokens.update(token.strip().lower() for token in value.split(","))
    for name, value in decoded:
        if name == "host":
            host = value
        elif name == "origin":
            origin = value
        elif name == "user-agent":
            agent = value
        elif name == "x-forwarded-for":
            forwarded_for.append(value)
        elif name in _DROPPED_REQUEST or name in connection_tokens or name.startswith("sec-websocket-"):
            continue
        else:
            headers.append((name, value))
    if rewrite_host and origin is not None and origin in _proxy_origins(scope, host):
        origin = _backend_origin(backend)
    client = scope.get("client")
    if client:
        # the chain a proxy in front of this one started, then the address this one saw
        headers.append(("x-forwarded-for", ", ".join([*forwarded_for, str(client[0])])))
    headers.append(("x-forwarded-proto", "https" if scope.get("scheme") == "wss" else "http"))
    if host:
        headers.append(("x-forwarded-host", host))
    return UpstreamHandshake(headers, None if rewrite_host else host, origin, agent)


def _connection_class(host: str | None) -> type[ClientConnection]:
    """The upstream connection class: websockets' own, or one whose handshake sends ``host`` as Host.

    websockets writes Host from the URL and only appends further headers, so a second Host line
    would go out; the request is edited as it is made instead, before it is sent.
    """
    if host is None:
        return ClientConnection
    keep = host

    class HostKeepingConnection(ClientConnection):
        def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
            super().__init__(protocol, **kwargs)
            make_request = protocol.connect

            def connect() -> Request:
                request = make_request()
                others = [(name, value) for name, value in request.headers.raw_items() if name.lower() != "host"]
                request.headers = Headers([("Host", keep), *others])
                return request

            protocol.connect = connect  # type: ignore[method-assign]

    return HostKeepingConnection


def _sendable(code: int | None, reason: str) -> tuple[int, str]:
    """A close code and reason that may go in a close frame, for a close the other side reported."""
    if code is None or code == _NO_STATUS:
        return 1000, ""
    if 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999:
        return code, reason
    return 1011, ""  # 1006, 1015, or a code no frame may carry


async def _disconnects(receive: Receive, count: int) -> None:
    while count:
        if (await receive())["type"] == "websocket.disconnect":
            count -= 1


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, body: bytes, content_type: str) -> None:
    """Refuse the client's handshake: with an HTTP response when the server can send one, else a close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [(b"content-type", content_type.encode("latin-1"))]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        # uvicorn's WebSocket protocol counts the handshake as done only when the connection is
        # lost, a moment after the response is written: returning before that makes it log an
        # error ("returned without completing handshake"). It reports the response sent, then
        # the loss, each as a websocket.disconnect; wait for both, briefly (a server that
        # reports once costs this wait, after the client has its answer).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_disconnects(receive, 2), _LOSS_WAIT)
    else:
        # before the accept this becomes an HTTP 403; 1011 says why on servers that expose it
        await send({"type": "websocket.close", "code": 1011})


async def _open_upstream(
    scope: Scope, receive: Receive, send: Send, backend: str, open_timeout: float, rewrite_host: bool
) -> ClientConnection | None:
    """Connect to the backend; on failure, refuse the client, log one line and return None."""
    url = upstream_url(backend, scope)
    shown = escape_controls(url)  # what a client sent must not forge or colour terminal lines
    handshake = upstream_headers(scope, backend, rewrite_host=rewrite_host)
    subprotocols = list(scope.get("subprotocols") or ())
    try:
        return await connect(
            url,
            additional_headers=handshake.headers,
            origin=None if handshake.origin is None else Origin(handshake.origin),
            user_agent_header=handshake.user_agent,
            create_connection=_connection_class(handshake.host),
            subprotocols=[Subprotocol(name) for name in subprotocols] or None,
            # The client and the proxy's server negotiate compression between themselves; the
            # local hop would only spend CPU on it.
            compression=None,
            open_timeout=open_timeout,
            # No keepalive pings: a backend paused at a breakpoint would otherwise lose every
            # WebSocket after 40 s. A backend that is gone closes the TCP connection anyway.
            ping_interval=None,
            # The backend is the developer's own; the client-side server applies its own limit,
            # and the proxy must not close connections the backend alone would keep.
            max_size=None,
            # the address is the backend's, not a proxy's to go through
            proxy=None,
        )
    except InvalidStatus as exc:
        # The backend answered the handshake with an HTTP status (403 for a bad Origin, 404 for
        # no such route): the client gets the same status, so it sees what the backend said.
        _answered(backend)
        response = exc.response
        # the backend's own decision, shown by the access log too: not a warning
        logger.info("WebSocket %s: the backend refused the handshake (%d)", shown, response.status_code)
        content_type = response.headers.get("Content-Type", "text/plain; charset=utf-8")
        await _refuse(scope, receive, send, response.status_code, bytes(response.body or b""), content_type)
    except (OSError, asyncio.TimeoutError, TimeoutError, WebSocketException) as exc:  # distinct before 3.11
        reason = str(exc) or type(exc).__name__
        if backend in _unreachable:
            logger.debug("WebSocket %s: cannot reach the backend: %s", shown, reason)
        else:
            _unreachable.add(backend)
            logger.warning("WebSocket %s: cannot reach the backend: %s", shown, reason)
        body = f"502 Bad Gateway: cannot open a WebSocket to {backend}: {reason}\n".encode()
        await _refuse(scope, receive, send, 502, body, "text/plain; charset=utf-8")
    return None


def _answered(backend: str) -> None:
    if backend in _unreachable:
        _unreachable.discard(backend)
        logger.info("WebSocket: the backend %s answers again", backend)


def _accept_headers(upstream: ClientConnection) -> list[tuple[bytes, bytes]]:
    """End-to-end headers of the backend's handshake response (Set-Cookie, say) for the client's."""
    response = upstream.response
    if response is None:  # pragma: no cover - set once connect() has returned
        return []
    out = []
    for name, value in response.headers.raw_items():
        lowered = name.lower()
        if lowered in _DROPPED_RESPONSE or lowered.startswith("sec-websocket-"):
            continue
        out.append((lowered.encode("latin-1"), value.encode("latin-1")))
    return out


async def _client_to_upstream(receive: Receive, upstream: ClientConnection) -> tuple[int | None, str] | None:
    """Copy the client's messages upstream. Returns the client's close (code, reason) when it
    leaves, or None when the upstream went away first (its pump reports that close)."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text: str | None = message.get("text")
            data: str | bytes = text if text is not None else (message.get("bytes") or b"")
            try:
                await upstream.send(data)
            except ConnectionClosed:
                return None
        elif kind == "websocket.disconnect":
            return message.get("code"), message.get("reason") or ""


async def _upstream_to_client(upstream: ClientConnection, send: Send) -> None:
    """Copy the backend's messages to the client until the upstream connection closes."""
    while True:
        try:
            data = await upstream.recv()
        except ConnectionClosed:
            return
        if isinstance(data, str):
            await send({"type": "websocket.send", "text": data})
        else:
            await send({"type": "websocket.send", "bytes": data})


async def _cancel(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    # its outcome is already accounted for (or no longer matters): only make sure it has ended
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _bridge(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    to_upstream = asyncio.ensure_future(_client_to_upstream(receive, upstream))
    to_client = asyncio.ensure_future(_upstream_to_client(upstream, send))
    try:
        await asyncio.wait((to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED)
        client_close = to_upstream.result() if to_upstream.done() else None  # re-raises an unexpected error
        if client_close is not None:
            # The client left: its code and reason go to the backend (close waits for the
            # backend's reply, bounded by the connection's close_timeout).
            await _cancel(to_client)
            await upstream.close(*_sendable(*client_close))
            return
        if to_client.done() and to_client.exception() is not None:
            # Sending to the client failed: it is gone without a close we could read.
            await _cancel(to_upstream)
            await upstream.close(1001, "")
            return
        # The backend closed (or its connection dropped): wait for its pump to see the end, then
        # pass the backend's code and reason to the client.
        with contextlib.suppress(OSError):  # a send that failed as the client left too
            await to_client
        await _cancel(to_upstream)
        code, reason = _sendable(upstream.close_code, upstream.close_reason or "")
        with contextlib.suppress(OSError):  # the client may have left meanwhile (ClientDisconnected)
            await send({"type": "websocket.close", "code": code, "reason": reason})
    finally:
        # cancellation (server shutdown) or an error above: neither pump nor the upstream outlives us
        await _cancel(to_upstream)
        await _cancel(to_client)
        await upstream.close()


async def proxy_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    backend: str,
    *,
    rewrite_host: bool = False,
    open_timeout: float = DEFAULT_OPEN_TIMEOUT,
) -> None:
    """Proxy one WebSocket connection (an ASGI ``websocket`` scope) to ``backend`` (``http(s)://host:port``).

    The upstream URL is ``backend`` with ws/wss for http/https and the client's path and query
    string. The browser's Host goes to the backend, or the backend's own with ``rewrite_host``
    (``--proxy-host-header rewrite``). Returns when both sides are closed.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before its handshake reached us
    upstream = await _open_upstream(scope, receive, send, backend, open_timeout, rewrite_host)
    if upstream is None:
        return
    _answered(backend)
    try:
        await send(
            {"type": "websocket.accept", "subprotocol": upstream.subprotocol, "headers": _accept_headers(upstream)}
        )
    except BaseException:
        await upstream.close()
        raise
    await _bridge(receive, send, upstream)
