"""Backends for the proxy tests: a Starlette app on uvicorn (port 0, its own thread) and a raw
socket server that answers with garbage."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import threading
import zlib
from collections.abc import Sequence
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .helpers import wait_until

HOST = "127.0.0.1"
PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>backend</title>{head}</head>"
    "<body><p id='msg'>{msg}</p></body></html>"
)
BINARY = os.urandom(1 << 20)


class BackendState:
    """What the tests steer and observe in the backend, across restarts."""

    def __init__(self) -> None:
        self.msg = "from the backend"
        self.head = ""
        self.sse_second = threading.Event()  # the test lets the second event go
        self.stream_rest = threading.Event()  # the test lets the rest of the streamed page go
        self.upstream_closed = threading.Event()  # /hold saw its client (the proxy) go away
        self.hold_started = threading.Event()
        self.uploads: list[dict[str, Any]] = []


def make_app(state: BackendState, extra: Sequence[BaseRoute] = ()) -> Any:
    return Starlette(routes=[*extra, *_page_routes(state), *_stream_routes(state), *_header_routes()])


def _page_routes(state: BackendState) -> list[Route]:
    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.format(msg=state.msg, head=state.head))

    async def gzipped(request: Request) -> Response:
        body = gzip.compress(PAGE.format(msg="gzipped", head="").encode())
        return Response(body, media_type="text/html", headers={"content-encoding": "gzip"})

    async def deflated(request: Request) -> Response:
        body = zlib.compress(PAGE.format(msg="deflated", head="").encode())
        return Response(body, media_type="text/html", headers={"content-encoding": "deflate"})

    async def brotli_page(request: Request) -> Response:
        import brotli

        body = brotli.compress(PAGE.format(msg="brotli", head="").encode())
        return Response(body, media_type="text/html", headers={"content-encoding": "br"})

    async def brotli_streamed(request: Request) -> Response:
        import brotli

        body = brotli.compress(PAGE.format(msg="brotli streamed", head="").encode() * 50)

        async def pieces() -> Any:  # compressed bytes in small pieces, with no length: decoded on the fly
            for start in range(0, len(body), 97):
                yield body[start : start + 97]

        return StreamingResponse(pieces(), media_type="text/html", headers={"content-encoding": "br"})

    async def bad_gzip(request: Request) -> Response:
        return Response(b"not gzip at all", media_type="text/html", headers={"content-encoding": "gzip"})

    async def streamed(request: Request) -> Response:
        async def pieces() -> Any:
            yield b"<!DOCTYPE html><html><head><title>s</title></head><body><p id='first'>first</p>"
            await anyio.to_thread.run_sync(state.stream_rest.wait, 10)
            yield b"<p id='second'>second</p></bo"
            yield b"dy></html>"

        return StreamingResponse(pieces(), media_type="text/html")

    return [
        Route("/", page),
        Route("/page", page),
        Route("/gzip", gzipped),
        Route("/deflate", deflated),
        Route("/br", brotli_page),
        Route("/br-stream", brotli_streamed),
        Route("/bad-gzip", bad_gzip),
        Route("/stream", streamed),
    ]


def _stream_routes(state: BackendState) -> list[Route]:
    async def data(request: Request) -> Response:
        return JSONResponse({"html": "</body>", "ok": True})

    async def binary(request: Request) -> Response:
        return Response(BINARY, media_type="application/octet-stream")

    async def big(request: Request) -> Response:
        total = int(request.query_params["mb"]) << 20
        chunk = b"x" * (1 << 16)

        async def pieces() -> Any:
            for _ in range(total // len(chunk)):
                yield chunk

        return StreamingResponse(
            pieces(), media_type="application/octet-stream", headers={"content-length": str(total)}
        )

    async def upload(request: Request) -> Response:
        digest, size, pieces = hashlib.sha256(), 0, 0
        async for piece in request.stream():
            if piece:
                digest.update(piece)
                size += len(piece)
                pieces += 1
        seen = {"size": size, "sha256": digest.hexdigest(), "pieces": pieces, "headers": dict(request.headers)}
        state.uploads.append(seen)
        return JSONResponse({k: v for k, v in seen.items() if k != "headers"})

    async def sse(request: Request) -> Response:
        async def events() -> Any:
            yield b"data: one\n\n"
            await anyio.to_thread.run_sync(state.sse_second.wait, 10)
            yield b"data: two\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return [
        Route("/data.json", data),
        Route("/binary", binary),
        Route("/big", big),
        Route("/upload", upload, methods=["POST", "PUT"]),
        Route("/sse", sse),
    ]


def _header_routes() -> list[Route]:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"http://{HOST}:{request.url.port}/target?x=1", status_code=302)

    async def cookie(request: Request) -> Response:
        response = Response("ok")
        response.headers.append("set-cookie", f"session=abc; Domain={HOST}; Path=/; HttpOnly")
        response.headers.append("set-cookie", "other=1; Domain=example.org; Path=/")
        return response

    async def csp(request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(msg="csp", head=""),
            headers={"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )

    async def csp_nonce(request: Request) -> Response:
        return HTMLResponse(
            PAGE.format(msg="nonce", head=""),
            headers={"content-security-policy": "script-src 'nonce-r4nd0m' 'strict-dynamic'; object-src 'none'"},
        )

    async def headers(request: Request) -> Response:
        return JSONResponse({"headers": [[k, v] for k, v in request.headers.items()]})

    async def hop(request: Request) -> Response:
        return Response(
            "hop",
            headers={"connection": "x-hop-secret", "x-hop-secret": "1", "keep-alive": "timeout=99", "x-end": "kept"},
        )

    return [
        Route("/redirect", redirect),
        Route("/cookie", cookie),
        Route("/csp", csp),
        Route("/csp-nonce", csp_nonce),
        Route("/headers", headers, methods=["GET", "POST"]),
        Route("/hop", hop),
    ]


class HoldApp:
    """``/hold`` as plain ASGI: starts a response, then waits for its client to go away."""

    def __init__(self, app: Any, state: BackendState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/hold":
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
        self.state.hold_started.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.state.upstream_closed.set()


class Backend:
    """The test backend on uvicorn in a thread; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self, port: int = 0, routes: Sequence[BaseRoute] = ()) -> None:
        self.state = BackendState()
        self.port = port
        self.routes = routes
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Backend:
        app = HoldApp(make_app(self.state, self.routes), self.state)
        config = uvicorn.Config(app, host=HOST, port=self.port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        self.server = server
        self.thread = threading.Thread(target=server.run, name="proxy-test-backend", daemon=True)
        self.thread.start()
        thread = self.thread
        wait_until(lambda: server.started or not thread.is_alive(), 10, message="the backend to start")
        assert server.started, "the backend did not start"
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
            assert not self.thread.is_alive(), "the backend did not stop"
            self.server = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class GarbageBackend:
    """Accepts connections and answers each with bytes that are not HTTP (``reply``; empty: it hangs
    up without answering), keeping each request's first line in ``requests``."""

    def __init__(self, reply: bytes = b"SPEAKING NONSENSE \x00\x01\x02\r\n\r\n") -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="garbage-backend", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    request = conn.recv(65536)
                    if request:  # not the proxy's probe at start (a connection opened and closed)
                        self.requests.append(request.split(b"\r\n", 1)[0])
                    if self.reply:
                        conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the thread (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def json_of(response: Any) -> Any:
    return json.loads(response.content)
