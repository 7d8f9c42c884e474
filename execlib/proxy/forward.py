"""The proxy's ASGI app: each request forwarded to the backend (``upstream``), streamed both ways.

Nothing is read whole but an HTML page of known length (to inject and give its new length):
request bodies go up as the client sends them, responses come down as the backend sends them,
so a large download keeps memory flat and Server-Sent Events arrive one by one. A client that
goes away mid-response ends the upstream request too (its connection is closed).

A backend that refuses connections (restarting under a code reloader) is retried with a short
backoff for up to ``timeout`` seconds: a restart costs a delay, not an error page. After that
the browser gets the waiting page (``waiting``), a 502.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpcore

from .backend import Backend
from .headers import (
    Headers,
    allow_client,
    end_to_end,
    proxy_origin,
    request_headers,
    rewrite_location,
    script_tag,
    strip_cookie_domain,
)
from .htmlstream import StreamInjector, decoder_for, inject_whole, supported_encodings
from .status import BackendStatus, reason_of
from .upstream import Connection, Upstream, UpstreamError
from .waiting import waiting_page

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger("execlib.proxy")

# An HTML page up to this size (as sent) is read whole, injected and sent with its length; a
# larger one is injected on the fly and sent without one.
WHOLE_HTML_BYTES = 8 << 20
# Methods a request may be sent again with (RFC 9110, 9.2.2), when its connection broke unanswered.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Pauses between connection attempts to a backend that refuses them: short at first (a reloader
# restarts in well under a second), then no more than this.
FIRST_RETRY = 0.05
MAX_RETRY = 0.5


class ClientGone(Exception):
    """The browser closed the connection while its request body was being forwarded."""


class BadBody(Exception):
    """A compressed HTML body that does not decode as its Content-Encoding says."""


class ProxyApp:
    """Forwards HTTP requests (and, through ``execlib.proxy.websocket``, WebSockets) to ``backend``."""

    def __init__(
        self, backend: Backend, *, rewrite_host: bool = False, timeout: float = 5.0, inject: bool = True
    ) -> None:
        self.backend = backend
        self.rewrite_host = rewrite_host
        self.timeout = timeout
        self.inject = inject
        self.status = BackendStatus(backend)
        # Connections to the backend, none at first. No environment proxies (HTTP_PROXY would
        # send the backend's traffic elsewhere), no cookie jar (cookies belong to the browser), no
        # limit on connections (each Server-Sent Events stream holds one).
        self._upstream = Upstream(backend)
        self._encodings = supported_encodings()

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def backend_state(self) -> dict[str, object]:
        """What ``/__execlib__/backend`` answers (the waiting page asks it): whether the backend is up."""
        return {"backend": self.backend.origin, "up": await self.status.probe()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # imported by name: the relay lives in its own module, which may be absent from a build
            module = importlib.import_module("execlib.proxy.websocket")
        except ImportError:
            await send({"type": "websocket.close", "code": 1011})
            return
        # the same Host policy as HTTP requests: a backend checking Origin against Host sees one rule
        await module.proxy_websocket(scope, receive, send, self.backend.origin, rewrite_host=self.rewrite_host)

    # -- HTTP -------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_done = asyncio.Event()
        content = _body(receive, body_done) if _has_body(scope) else None
        if content is None:
            body_done.set()
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        if query:
            target += b"?" + query
        headers = request_headers(scope, self.backend, rewrite_host=self.rewrite_host)
        if content is not None and not any(name == b"content-length" for name, _ in headers):
            headers.append((b"transfer-encoding", b"chunked"))  # the body goes up as it comes
        try:
            response, connection = await self._open(scope["method"], target, headers, content)
        except ClientGone:
            return
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
            await self._send_waiting(scope, send, reason_of(error))
            return
        except UpstreamError as error:
            await self._send_bad_gateway(scope, send, error)
            return
        try:
            await self._relay_until_gone(scope, receive, send, response, body_done)
        finally:
            # not shielded: a cancel (the server stopping) has been delivered by the time this runs,
            # and releasing does not wait on anything (the connection's lock is free, closing is
            # the transport's close())
            await self._upstream.release(response, connection)

    async def _relay_until_gone(
        self, scope: Scope, receive: Receive, send: Send, response: httpcore.Response, body_done: asyncio.Event
    ) -> None:
        """``_relay``, cut short when the client disconnects (a stalled or endless response included).

        The watcher is a bare asyncio task that cancels this one: an anyio task group costs several
        times more per request (its cancel scope formats the task's repr on every cancel).
        """
        task = asyncio.current_task()
        assert task is not None
        gone = False

        async def watch_disconnect() -> None:
            nonlocal gone
            await body_done.wait()  # receive() is the body's until it has all been read
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            task.cancel()  # the client left: stop reading from the backend

        watcher = asyncio.get_running_loop().create_task(watch_disconnect())
        try:
            await self._relay(scope, send, response)
        except (*UpstreamError, BadBody) as error:
            # the response was started: all that can be done is end it early, and say why
            logger.warning("backend %s broke off a response: %s", self.backend.origin, _one_line(error))
        except OSError:
            pass  # the client went away while it was being sent (uvicorn's ClientDisconnected)
        except asyncio.CancelledError:
            if not gone:
                raise
            if sys.version_info >= (3, 11):
                task.uncancel()  # this cancel was ours, and is handled: nothing after must see it
        finally:
            watcher.cancel()

    async def _open(
        self, method: str, target: bytes, headers: Headers, content: AsyncIterator[bytes] | None
    ) -> tuple[httpcore.Response, Connection]:
        """The backend's response (headers read, body not yet), connecting again while it refuses.

        An idempotent request without a body is sent once more when its connection broke before
        any answer: a kept-alive connection to a backend that has since restarted fails that way.
        """
        deadline = time.monotonic() + self.timeout
        pause = FIRST_RETRY
        # A body already read from the client cannot be sent again, and a method that is not
        # idempotent (POST, PATCH) must not be: the backend may have acted on it before the
        # connection broke, and a second time would do it twice.
        resent = content is not None or method not in IDEMPOTENT
        while True:
            left = max(deadline - time.monotonic(), 0.01)
            try:
                sent = await self._upstream.send(method, target, headers, content, connect_timeout=left)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                self.status.refused(reason_of(error))
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_RETRY)
                continue
            except (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError):
                if resent:
                    raise
                resent = True
                continue
            self.status.answered()
            return sent

    async def _relay(self, scope: Scope, send: Send, response: httpcore.Response) -> None:
        headers, nonce, found = self._response_headers(scope, response)
        status = response.status
        encoding = found.get(b"content-encoding", b"").decode("latin-1").strip().lower()
        content_type = found.get(b"content-type", b"").decode("latin-1")
        head = scope["method"] == "HEAD"
        if not self._wants_injection(scope, status, content_type, encoding):
            if head and self._wants_injection({**scope, "method": "GET"}, status, content_type, encoding):
                headers = _head_of_injected(headers, len(script_tag(nonce)), decoded=encoding not in ("", "identity"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            async for piece in response.aiter_stream():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        tag = script_tag(nonce)
        # decoded: the body goes out uncompressed, its length known only once injected
        headers = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
        decoder = decoder_for(encoding)
        length = found.get(b"content-length")
        if length is not None and length.isdigit() and int(length) <= WHOLE_HTML_BYTES:
            raw = b"".join([piece async for piece in response.aiter_stream()])
            try:
                decoded = decoder.decompress(raw)
            except Exception as error:  # zlib.error, brotli.error: the decoders' own kinds
                await self._send_bad_gateway(scope, send, BadBody(f"{encoding} body does not decode: {error}"))
                return
            body = inject_whole(decoded, tag)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        injector = StreamInjector(tag)
        async for piece in response.aiter_stream():
            try:
                decoded = decoder.decompress(piece)
            except Exception as error:
                raise BadBody(f"{encoding} body does not decode: {error}") from None
            out = injector.feed(decoded)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
        await send({"type": "http.response.body", "body": injector.finish()})

    def _wants_injection(self, scope: Scope, status: int, content_type: str, encoding: str) -> bool:
        """Whether the page gets the client: the static site's rules (HTML, a body that is a page)."""
        if not self.inject or scope["method"] == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return False
        if 300 <= status < 400 or encoding not in self._encodings:
            return False  # an encoding execlib cannot decode goes through untouched
        return content_type.lower().lstrip().startswith("text/html")

    def _response_headers(
        self, scope: Scope, response: httpcore.Response
    ) -> tuple[Headers, str | None, dict[bytes, bytes]]:
        """The headers for the browser, the CSP nonce, and the backend's values of the headers the
        relay decides by (Content-Type, -Encoding, -Length; several values joined as HTTP does)."""
        headers: Headers = []
        nonce = None
        found: dict[bytes, bytes] = {}
        for name, value in end_to_end(response.headers):
            lowered = name.lower()
            if lowered in _DECIDING:
                found[lowered] = found[lowered] + b", " + value if lowered in found else value
            elif lowered == b"location":
                value = rewrite_location(value, self.backend, proxy_origin(scope))
            elif lowered == b"set-cookie":
                value = strip_cookie_domain(value, self.backend)
            elif lowered == b"content-security-policy" and self.inject:
                policy, page_nonce = allow_client(value.decode("latin-1"))
                value, nonce = policy.encode("latin-1"), nonce or page_nonce
            headers.append((lowered, value))
        return headers, nonce, found

    # -- when the backend does not answer -------------------------------------------------------

    async def _send_waiting(self, scope: Scope, send: Send, reason: str) -> None:
        if wants_html(scope):
            body = waiting_page(self.backend.origin, reason, script_tag(None) if self.inject else b"")
            content_type = b"text/html; charset=utf-8"
        else:  # an API call or an asset: a line, not a page
            body = f"execlib: waiting for {self.backend.origin} ... ({reason})\n".encode()
            content_type = b"text/plain; charset=utf-8"
        await send_whole(scope, send, 502, body, content_type)

    async def _send_bad_gateway(self, scope: Scope, send: Send, error: Exception) -> None:
        line = f"bad response from the backend {self.backend.origin}: {_one_line(error)}"
        logger.warning("%s %s: %s", scope["method"], scope["path"], line)
        await send_whole(scope, send, 502, f"execlib: {line}\n".encode(), b"text/plain; charset=utf-8")


_DECIDING = frozenset({b"content-type", b"content-encoding", b"content-length"})


def _head_of_injected(headers: Headers, extra: int, *, decoded: bool) -> Headers:
    """A HEAD answer's headers as the GET's would be: uncompressed, the client's length added
    (unknown, so left out, when the GET's body would have been decoded first)."""
    out: Headers = []
    for name, value in headers:
        if name == b"content-encoding":
            continue
        if name == b"content-length":
            if decoded or not value.strip().isdigit():
                continue
            value = str(int(value) + extra).encode()
        out.append((name, value))
    return out


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


async def _body(receive: Receive, done: asyncio.Event) -> AsyncIterator[bytes]:
    """The request body as the client sends it, piece by piece (a chunked upload included)."""
    try:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            piece = message.get("body", b"")
            if piece:
                yield piece
            if not message.get("more_body", False):
                return
    finally:
        done.set()


def wants_html(scope: Scope) -> bool:
    """Whether the request takes a page (a browser's navigation), not only a line (an API call, an asset)."""
    accept = next((value for name, value in scope.get("headers", []) if name == b"accept"), b"")
    return b"text/html" in accept


async def send_whole(scope: Scope, send: Send, status: int, body: bytes, content_type: bytes) -> None:
    """A whole answer execlib makes itself (not the backend's): never cached, no body for HEAD."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
