"""WebSocket proxying (execlib.proxy.websocket) between a real backend and real clients.

The backend is a Starlette app on uvicorn; the proxy is a bare ASGI app that hands websocket
scopes to ``proxy_websocket``, on uvicorn too; the client is the ``websockets`` asyncio client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from execlib.proxy.websocket import _sendable, proxy_websocket, upstream_url
from tests.helpers import run_async, wait_until

HOST = "127.0.0.1"
TIMEOUT = 10.0


# -- the backend -------------------------------------------------------------------------


class Backend:
    """A Starlette app with WebSocket routes; what it saw is put on thread-safe queues."""

    def __init__(self) -> None:
        self.disconnects: queue.Queue[tuple[int, str | None]] = queue.Queue()
        self.app = Starlette(
            routes=[
                WebSocketRoute("/echo", self.echo),
                WebSocketRoute("/info", self.info),
                WebSocketRoute("/bye", self.bye),
                WebSocketRoute("/proto", self.proto),
                WebSocketRoute("/listen", self.listen),
                WebSocketRoute("/refuse", self.refuse),
                WebSocketRoute("/cookie", self.cookie),
            ]
        )

    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await ws.send_text(message["text"])
                else:
                    await ws.send_bytes(message["bytes"])
        except WebSocketDisconnect:
            return

    async def info(self, ws: WebSocket) -> None:
        """Tells what the upstream handshake looked like, then closes."""
        await ws.accept()
        headers: dict[str, list[str]] = {}
        for name, value in ws.scope["headers"]:
            headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        raw_path = ws.scope.get("raw_path") or b""
        await ws.send_json(
            {
                "path": ws.scope["path"],
                "raw_path": raw_path.decode("latin-1"),
                "query": ws.scope["query_string"].decode("latin-1"),
                "headers": headers,
            }
        )
        await ws.close()

    async def bye(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        await ws.close(4001, "bye")

    async def proto(self, ws: WebSocket) -> None:
        offered = ws.scope["subprotocols"]
        chosen = "v2.chat" if "v2.chat" in offered else None
        await ws.accept(subprotocol=chosen)
        await ws.send_text(f"chose {chosen}; offered {','.join(offered)}")
        await ws.close()

    async def listen(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("ready")
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect as exc:
            self.disconnects.put((exc.code, exc.reason))

    async def cookie(self, ws: WebSocket) -> None:
        await ws.accept(headers=[(b"set-cookie", b"ws=1; Path=/"), (b"x-backend", b"yes")])
        await ws.close()

    async def refuse(self, ws: WebSocket) -> None:
        await ws.close(1008)  # before accepting: an HTTP 403


# -- the proxy ---------------------------------------------------------------------------


class Proxy:
    """A bare ASGI app: WebSockets go to ``proxy_websocket``, HTTP gets a 404. Counts live handlers."""

    def __init__(self, backend: str, rewrite_host: bool = False) -> None:
        self.backend = backend
        self.rewrite_host = rewrite_host
        self.active = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.loop = asyncio.get_running_loop()
            self.active += 1
            try:
                await proxy_websocket(
                    scope, receive, send, self.backend, rewrite_host=self.rewrite_host, open_timeout=5
                )
            finally:
                self.active -= 1
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})


class Running:
    def __init__(self, app: Any, port: int = 0) -> None:
        # proxy_headers off: uvicorn would otherwise take the test's X-Forwarded-For as the client
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off", proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), TIMEOUT, message="uvicorn start")
        assert self.server.started, "uvicorn did not start"
        self.port: int = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[Backend, int]]:
    app = Backend()
    running = Running(app.app)
    try:
        yield app, running.port
    finally:
        running.stop()


@pytest.fixture(scope="module")
def proxy_server(backend: tuple[Backend, int]) -> Iterator[tuple[Proxy, int]]:
    app = Proxy(f"http://{HOST}:{backend[1]}")
    running = Running(app)
    try:
        yield app, running.port
    finally:
        running.stop()


@pytest.fixture
def proxy(proxy_server: tuple[Proxy, int]) -> Iterator[str]:
    """The proxy's ws:// base URL; after the test, every proxied connection must have ended."""
    app, port = proxy_server
    yield f"ws://{HOST}:{port}"
    wait_until(lambda: app.active == 0, TIMEOUT, message="the proxy handlers to end")


# -- tests -------------------------------------------------------------------------------


def test_upstream_url() -> None:
    scope = {"path": "/a b", "raw_path": b"/a%20b", "query_string": b"x=1&y=%2F"}
    assert upstream_url("http://127.0.0.1:3000", scope) == "ws://127.0.0.1:3000/a%20b?x=1&y=%2F"
    assert upstream_url("https://example.test/", scope) == "wss://example.test/a%20b?x=1&y=%2F"
    assert upstream_url("http://h:1/app/", {"path": "/ws", "query_string": b""}) == "ws://h:1/app/ws"


def test_echo_text_and_binary(proxy: str) -> None:
    async def scenario() -> None:
        async with connect(proxy + "/echo", open_timeout=TIMEOUT, max_size=None) as ws:
            await ws.send("hello ünïcode")
            assert await ws.recv() == "hello ünïcode"
            await ws.send(b"\x00\x01\xffbinary")
            assert await ws.recv() == b"\x00\x01\xffbinary"
            big = bytes(range(256)) * 8192  # 2 MiB: over websockets' default 1 MiB limit
            await ws.send(big)
            assert await ws.recv() == big

    run_async(asyncio.wait_for(scenario(), TIMEOUT))


def _connections_to(port: int) -> int:
    """Established IPv4 TCP connections on this machine whose remote end is 127.0.0.1:``port``."""
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and remote == f"0100007F:{port:04X}":
                count += 1
    return count


def test_many_connections_leave_no_tasks_behind(
    proxy: str, proxy_server: tuple[Proxy, int], backend: tuple[Backend, int]
) -> None:
    app = proxy_server[0]

    async def one(number: int, close_first: bool) -> None:
        async with connect(proxy + ("/echo" if close_first else "/bye"), open_timeout=TIMEOUT) as ws:
            await ws.send(f"n{number}")
            if close_first:
                assert await ws.recv() == f"n{number}"  # then the client closes, leaving the block
            else:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()  # the backend closes

    def proxy_tasks() -> int:
        assert app.loop is not None

        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), app.loop).result(TIMEOUT)

    run_async(asyncio.wait_for(one(0, True), TIMEOUT))  # the proxy's loop is known from here on
    wait_until(lambda: app.active == 0, TIMEOUT, message="the first handler to end")
    baseline = proxy_tasks()

    async def burst() -> None:
        await asyncio.gather(*(one(number, number % 2 == 0) for number in range(60)))

    run_async(asyncio.wait_for(burst(), 3 * TIMEOUT))
    wait_until(lambda: app.active == 0, TIMEOUT, message="every handler to end")
    # pumps and upstream connections (their reader tasks) all gone; uvicorn's own may linger a moment
    wait_until(lambda: proxy_tasks() <= baseline, TIMEOUT, message="the proxy's tasks back to the baseline")
    # and no upstream connection left open (the tests' only clients of the backend are the proxy's)
    wait_until(lambda: _connections_to(backend[1]) == 0, TIMEOUT, message="the upstream connections to close")


def test_many_messages_in_order(proxy: str) -> None:
    count = 2000

    async def scenario() -> None:
        async with connect(proxy + "/echo", open_timeout=TIMEOUT) as ws:

            async def produce() -> None:
                for i in range(count):
                    await ws.send(f"m{i}" if i % 2 else f"m{i}".encode())

            producer = asyncio.ensure_future(produce())
            received = [await ws.recv() for _ in range(count)]
            await producer
        assert received == [f"m{i}" if i % 2 else f"m{i}".encode() for i in range(count)]

    run_async(asyncio.wait_for(scenario(), 3 * TIMEOUT))


def test_subprotocol_negotiated_by_backend(proxy: str) -> None:
    async def scenario() -> None:
        async with connect(proxy + "/proto", subprotocols=["v1.chat", "v2.chat"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "v2.chat"
            assert await ws.recv() == "chose v2.chat; offered v1.chat,v2.chat"
        async with connect(proxy + "/proto", subprotocols=["v1.chat"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
            assert ws.subprotocol is None
            assert await ws.recv() == "chose None; offered v1.chat"
        async with connect(proxy + "/proto", open_timeout=TIMEOUT) as ws:
            assert ws.subprotocol is None
            assert await ws.recv() == "chose None; offered "

    run_async(asyncio.wait_for(scenario(), TIMEOUT))


def test_close_from_backend_reaches_client_with_code(proxy: str) -> None:
    async def scenario() -> None:
        async with connect(proxy + "/bye", open_timeout=TIMEOUT) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "bye"

    run_async(asyncio.wait_for(scenario(), TIMEOUT))


def test_close_from_client_reaches_backend_with_code(proxy: str, backend: tuple[Backend, int]) -> None:
    app = backend[0]

    async def scenario() -> None:
        async with connect(proxy + "/listen", open_timeout=TIMEOUT) as ws:
            assert await ws.recv() == "ready"
            await ws.send("something")
            await ws.close(4002, "client done")

    run_async(asyncio.wait_for(scenario(), TIMEOUT))
    assert app.disconnects.get(timeout=TIMEOUT) == (4002, "client done")


def test_client_dropping_the_connection_closes_the_upstream(proxy: str, backend: tuple[Backend, int]) -> None:
    """A client that vanishes without a close frame: the backend still sees its connection end."""
    app = backend[0]

    async def scenario() -> None:
        ws = await connect(proxy + "/listen", open_timeout=TIMEOUT)
        assert await ws.recv() == "ready"
        ws.transport.abort()  # TCP reset, no closing handshake
        await ws.wait_closed()

    run_async(asyncio.wait_for(scenario(), TIMEOUT))
    code, _ = app.disconnects.get(timeout=TIMEOUT)
    assert code in (1000, 1001, 1011)  # a sendable code, whichever the client-side server reported


async def _handshake_seen(url: str, origin: str) -> dict[str, Any]:
    """What the backend's /info route saw of a handshake made through the proxy at ``url``."""
    async with connect(
        url + "/info?a=1&b=%2Fx%20y",
        open_timeout=TIMEOUT,
        origin=origin,  # type: ignore[arg-type]
        additional_headers=[
            ("Cookie", "session=abc; theme=dark"),
            ("Authorization", "Bearer t0ken"),
            ("X-Custom", "kept"),
            ("Connection", "Upgrade, X-Hop"),
            ("X-Hop", "dropped: named in Connection"),
            ("Keep-Alive", "timeout=5"),
            ("X-Forwarded-For", "10.9.9.9"),  # from a proxy in front: the chain goes on
        ],
        user_agent_header="test-agent/1",
    ) as ws:
        info: dict[str, Any] = json.loads(await ws.recv())
        return info


def test_query_string_path_and_headers_forwarded(proxy: str, proxy_server: tuple[Proxy, int]) -> None:
    proxy_origin = f"http://{HOST}:{proxy_server[1]}"
    info = run_async(asyncio.wait_for(_handshake_seen(proxy, proxy_origin), TIMEOUT))
    headers = info["headers"]
    assert info["path"] == "/info"
    assert info["query"] == "a=1&b=%2Fx%20y"
    assert headers["cookie"] == ["session=abc; theme=dark"]
    assert headers["authorization"] == ["Bearer t0ken"]
    assert headers["x-custom"] == ["kept"]
    assert headers["user-agent"] == ["test-agent/1"]
    # Host is the browser's, as the HTTP side sends it; Origin then matches it as it is
    assert headers["host"] == [f"{HOST}:{proxy_server[1]}"]
    assert headers["origin"] == [proxy_origin]
    assert headers["x-forwarded-for"] == [f"10.9.9.9, {HOST}"]
    assert headers["x-forwarded-host"] == [f"{HOST}:{proxy_server[1]}"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert "x-hop" not in headers and "keep-alive" not in headers
    # the upstream handshake is the upstream client's own: one of each, no copies of the client's
    for name in ("host", "sec-websocket-key", "sec-websocket-version", "upgrade", "connection"):
        assert len(headers[name]) == 1, name
    assert "sec-websocket-extensions" not in headers  # no compression on the local hop


def test_rewritten_host_takes_the_origin_along(backend: tuple[Backend, int]) -> None:
    backend_origin = f"http://{HOST}:{backend[1]}"
    running = Running(Proxy(backend_origin, rewrite_host=True))
    try:
        proxy = f"ws://{HOST}:{running.port}"
        info = run_async(asyncio.wait_for(_handshake_seen(proxy, f"http://{HOST}:{running.port}"), TIMEOUT))
        assert info["headers"]["host"] == [f"{HOST}:{backend[1]}"]
        # the proxy's own origin becomes the backend's, so same-origin checks against Host pass
        assert info["headers"]["origin"] == [backend_origin]
        assert info["headers"]["x-forwarded-host"] == [f"{HOST}:{running.port}"]
        # a page from elsewhere keeps its Origin: the backend's cross-site check must still see it
        info = run_async(asyncio.wait_for(_handshake_seen(proxy, "http://evil.example"), TIMEOUT))
        assert info["headers"]["origin"] == ["http://evil.example"]
    finally:
        running.stop()


def test_handshake_response_headers_reach_client(proxy: str) -> None:
    async def scenario() -> None:
        async with connect(proxy + "/cookie", open_timeout=TIMEOUT) as ws:
            assert ws.response is not None
            headers = ws.response.headers
            assert headers.get_all("Set-Cookie") == ["ws=1; Path=/"]
            assert headers["X-Backend"] == "yes"
            assert len(headers.get_all("Sec-WebSocket-Accept")) == 1  # the proxy's own, not a copy of the backend's
            assert len(headers.get_all("Server")) <= 1

    run_async(asyncio.wait_for(scenario(), TIMEOUT))


def test_backend_refusing_handshake_passes_status(proxy: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            await connect(proxy + "/refuse", open_timeout=TIMEOUT)
        assert info.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as info:
            await connect(proxy + "/no-such-route", open_timeout=TIMEOUT)
        assert info.value.response.status_code == 403  # Starlette refuses unknown WebSocket routes so

    run_async(asyncio.wait_for(scenario(), TIMEOUT))
    lines = [r for r in caplog.records if r.name == "execlib.proxy"]
    assert len(lines) == 2 and all("refused the handshake (403)" in r.getMessage() for r in lines)
    # nothing from the servers either ("returned without completing handshake" and the like)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_backend_down_fails_cleanly_then_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind((HOST, 0))
        dead_port = sock.getsockname()[1]
    app = Proxy(f"http://{HOST}:{dead_port}")
    running = Running(app)
    revived: Running | None = None
    try:

        async def refused() -> None:
            for _ in range(3):  # a page's client retrying: one line, not one per attempt
                with pytest.raises(InvalidStatus) as info:
                    await connect(f"ws://{HOST}:{running.port}/echo?x=1", open_timeout=TIMEOUT)
                response = info.value.response
                assert response.status_code == 502
                assert f"http://{HOST}:{dead_port}" in response.body.decode()

        run_async(asyncio.wait_for(refused(), TIMEOUT))
        wait_until(lambda: app.active == 0, TIMEOUT, message="the proxy handler to end")
        lines = [r for r in caplog.records if r.name == "execlib.proxy" and r.levelno >= logging.INFO]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert "cannot reach the backend" in lines[0].getMessage()
        assert f"ws://{HOST}:{dead_port}/echo?x=1" in lines[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]

        # the backend starts (again) on its port: the next connection goes through
        revived = Running(Backend().app, port=dead_port)

        async def echoed() -> None:
            async with connect(f"ws://{HOST}:{running.port}/echo", open_timeout=TIMEOUT) as ws:
                await ws.send("back")
                assert await ws.recv() == "back"

        run_async(asyncio.wait_for(echoed(), TIMEOUT))
        wait_until(lambda: app.active == 0, TIMEOUT, message="the proxy handler to end")
    finally:
        running.stop()
        if revived is not None:
            revived.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "execlib.proxy" and r.levelno >= logging.INFO]
    assert len(lines) == 2 and "answers again" in lines[1], lines


def test_close_codes_that_cannot_be_sent_are_translated() -> None:
    assert _sendable(None, "") == (1000, "")
    assert _sendable(1005, "") == (1000, "")
    assert _sendable(1006, "lost") == (1011, "")
    assert _sendable(4001, "bye") == (4001, "bye")
    assert _sendable(1012, "restart") == (1012, "restart")
    assert _sendable(1004, "reserved") == (1011, "")
    assert _sendable(999, "") == (1011, "")


def test_backend_stopping_closes_client_and_ends_handler() -> None:
    """A backend shut down (a code reloader restarting it) mid-connection: the client learns it."""
    app = Backend()
    backend = Running(app.app)
    proxy_app = Proxy(f"http://{HOST}:{backend.port}")
    proxy = Running(proxy_app)
    try:

        async def scenario() -> None:
            async with connect(f"ws://{HOST}:{proxy.port}/listen", open_timeout=TIMEOUT) as ws:
                assert await ws.recv() == "ready"
                await asyncio.get_running_loop().run_in_executor(None, backend.stop)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                # uvicorn closes with 1012 (service restart) as it shuts down; the proxy passes that on
                assert ws.close_code == 1012, ws.close_code

        run_async(asyncio.wait_for(scenario(), 2 * TIMEOUT))
        wait_until(lambda: proxy_app.active == 0, TIMEOUT, message="the proxy handler to end")
    finally:
        proxy.stop()
        if backend.thread.is_alive():
            backend.stop()


def test_backend_dropping_the_connection_closes_client_with_1011() -> None:
    """A backend that dies mid-connection (no close frame, the TCP connection just ends): 1011."""
    accepted = threading.Event()

    def raw_backend(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            digest = hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n\r\n"
            )
            accepted.set()
            conn.recv(4096)  # the client's first message: then the backend "crashes"

    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        thread = threading.Thread(target=raw_backend, args=(listener,), daemon=True)
        thread.start()
        app = Proxy(f"http://{HOST}:{listener.getsockname()[1]}")
        running = Running(app)
        try:

            async def scenario() -> None:
                async with connect(f"ws://{HOST}:{running.port}/", open_timeout=TIMEOUT) as ws:
                    await ws.send("hello")
                    with pytest.raises(ConnectionClosed):
                        await ws.recv()
                    assert ws.close_code == 1011

            run_async(asyncio.wait_for(scenario(), TIMEOUT))
            assert accepted.is_set()
            wait_until(lambda: app.active == 0, TIMEOUT, message="the proxy handler to end")
        finally:
            running.stop()
            thread.join(TIMEOUT)
