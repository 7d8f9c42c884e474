"""LiveReload protocol 7 with a plain `websockets` client: handshake, targeting, bad input."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from execlib import Server

from .conftest import write
from .helpers import run_async

PROTOCOL = "http://livereload.com/protocols/official-7"


def ws_url(server: Server) -> str:
    return server.url.replace("http://", "ws://") + "livereload"


async def handshake(server: Server, page: str | None = None, resources: list[str] | None = None) -> ClientConnection:
    ws = await connect(ws_url(server))
    await ws.send(json.dumps({"command": "hello", "protocols": [PROTOCOL]}))
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["command"] == "hello" and PROTOCOL in hello["protocols"]
    if page is not None:
        info: dict = {"command": "info", "url": server.url.rstrip("/") + page, "plugins": {}}
        if resources is not None:
            info["resources"] = resources
        await ws.send(json.dumps(info))
    return ws


async def until_pages_known(server: Server, count: int) -> None:
    async def known() -> None:
        while sum(1 for p in server.hub.pages if p.url) < count:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(known(), 10)


async def next_message(ws: ClientConnection, timeout: float = 5) -> dict:
    """The next message, skipping the generation notes sent to pages a change did not touch."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message.get("command") != "execlib-generation":
            return message


async def nothing_within(ws: ClientConnection, seconds: float) -> bool:
    """True when no message arrives in ``seconds`` (used to assert a page was NOT told)."""
    try:
        await next_message(ws, seconds)
    except asyncio.TimeoutError:
        return True
    return False


async def closed_with(ws: ClientConnection, timeout: float = 5) -> int:
    async def drain() -> None:
        while True:
            await ws.recv()

    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(drain(), timeout)
    return ws.close_code


@pytest.fixture
def demo(site: Path, serve) -> Server:
    write(site / "img.png", b"\x89PNG")
    return serve(site)


def test_handshake_and_client_script(demo: Server) -> None:
    import httpx

    script = httpx.get(demo.url + "livereload.js", timeout=10)
    assert script.status_code == 200 and "official-7" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    page = httpx.get(demo.url, timeout=10).text
    assert page.endswith('<script src="/livereload.js" async></script></body></html>')

    async def run() -> None:
        ws = await connect(ws_url(demo))
        await ws.send(json.dumps({"command": "hello", "protocols": ["other", PROTOCOL]}))
        hello = await next_message(ws)
        assert hello == {**hello, "command": "hello", "protocols": [PROTOCOL], "serverName": "execlib"}
        await ws.close()

    run_async(run())


def test_page_targeting(demo: Server) -> None:
    async def run() -> None:
        home = await handshake(demo, "/", ["/style.css", "/app.js", "/img.png"])
        about = await handshake(demo, "/about.html", [])
        stock = await handshake(demo, "/about.html")  # reports no resources: gets everything
        await until_pages_known(demo, 3)

        assert await asyncio.to_thread(demo.reload, ["about.html"]) == 2
        assert (await next_message(about))["path"] == "/about.html"
        assert (await next_message(stock))["path"] == "/about.html"
        assert await nothing_within(home, 0.2)

        await asyncio.to_thread(demo.reload, ["style.css"])
        css = await next_message(home)
        assert css == {**css, "command": "reload", "path": "/style.css", "liveCSS": True}
        assert (await next_message(stock))["path"] == "/style.css"
        assert await nothing_within(about, 0.2)

        await asyncio.to_thread(demo.reload, [str(Path(demo.root) / "img.png")])
        assert (await next_message(home))["path"] == "/img.png"

        await asyncio.to_thread(demo.reload, ["app.js"])
        assert (await next_message(home))["path"] == "/app.js"
        assert await nothing_within(about, 0.2)

        assert await asyncio.to_thread(demo.reload) == 3  # None: every page
        for ws in (home, about, stock):
            assert (await next_message(ws))["command"] == "reload"
            await ws.close()

    run_async(run())


def test_index_and_missing_pages_map_to_files(demo: Server) -> None:
    async def run() -> None:
        sub = await handshake(demo, "/sub/", [])
        missing = await handshake(demo, "/later.html", [])
        await until_pages_known(demo, 2)
        await asyncio.to_thread(demo.reload, ["sub/index.html"])
        assert (await next_message(sub))["path"] == "/sub/index.html"
        await asyncio.to_thread(demo.reload, ["later.html"])
        assert (await next_message(missing))["path"] == "/later.html"
        assert await nothing_within(sub, 0.2)

    run_async(run())


def test_alert_and_error_overlay_messages(demo: Server) -> None:
    async def run() -> None:
        ws = await handshake(demo, "/", [])
        await until_pages_known(demo, 1)
        assert await asyncio.to_thread(demo.alert, "hello <b>there</b>") == 1
        assert await next_message(ws) == {"command": "alert", "message": "hello <b>there</b>"}
        await asyncio.to_thread(demo.show_error, "Build failed", "line 1")
        assert (await next_message(ws))["command"] == "execlib-error"
        late = await handshake(demo, "/about.html", [])  # opened while the error stands: sees it too
        assert (await next_message(late))["text"] == "line 1"
        await asyncio.to_thread(demo.clear_error)
        assert (await next_message(ws))["command"] == "execlib-clear-error"

    run_async(run())


def test_malformed_json_and_unknown_commands_are_ignored(demo: Server) -> None:
    async def run() -> None:
        ws = await handshake(demo)
        await ws.send("{not json")
        await ws.send(json.dumps([1, 2, 3]))
        await ws.send(json.dumps({"command": "teleport"}))
        await ws.send(json.dumps({"command": "info", "url": demo.url + "about.html", "resources": "nope"}))
        await until_pages_known(demo, 1)
        await asyncio.to_thread(demo.reload, ["about.html"])
        assert (await next_message(ws))["path"] == "/about.html"  # still connected and served

    run_async(run())


@pytest.mark.parametrize(
    "payload, code",
    [(b"\x00\x01binary", 1003), ("x" * (300 * 1024), 1009), ("y" * (2 << 20), 1009)],
    ids=["binary", "over-our-cap", "over-uvicorn-cap"],
)
def test_bad_frames_close_the_connection(demo: Server, payload: str | bytes, code: int) -> None:
    async def run() -> None:
        ws = await handshake(demo)
        bystander = await handshake(demo, "/about.html", [])
        await ws.send(payload)
        assert await closed_with(ws) == code
        await until_pages_known(demo, 1)
        await asyncio.to_thread(demo.reload, ["about.html"])
        assert (await next_message(bystander))["path"] == "/about.html"

    run_async(run())


def test_hello_without_protocol_7_is_refused(demo: Server) -> None:
    async def run() -> None:
        ws = await connect(ws_url(demo))
        await ws.send(json.dumps({"command": "hello", "protocols": ["http://example.invalid/v1"]}))
        assert await closed_with(ws) == 1008

    run_async(run())


def test_flood_closes_the_connection(demo: Server) -> None:
    async def run() -> None:
        ws = await handshake(demo)
        for _ in range(500):
            try:
                await ws.send(json.dumps({"command": "info", "url": demo.url}))
            except ConnectionClosed:
                break
        assert await closed_with(ws) == 1008

    run_async(run())


def test_handshake_never_completed(demo: Server) -> None:
    demo.hub.handshake_timeout = 0.3

    async def run() -> None:
        silent = await connect(ws_url(demo))
        assert await closed_with(silent) == 1008
        chatty = await connect(ws_url(demo))
        await chatty.send(json.dumps({"command": "info", "url": demo.url}))  # info before hello
        assert await closed_with(chatty) == 1008

    run_async(run())


def test_200_pages_receive_a_change_and_a_stalled_client_does_not_block(demo: Server) -> None:
    demo.hub.send_timeout = 0.5
    host, port = demo.bound_addr
    # A client that completes the handshake, then never reads again, with a tiny receive window.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    stalled.connect((host, port))
    stalled.sendall(
        b"GET /livereload HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    hello = json.dumps({"command": "hello", "protocols": [PROTOCOL]}).encode()
    stalled.sendall(bytes([0x81, 0x80 | len(hello)]) + b"\x00\x00\x00\x00" + hello)  # masked with a zero key

    async def run() -> None:
        pages = await asyncio.gather(*(handshake(demo, "/about.html", []) for _ in range(200)))
        await until_pages_known(demo, 200)
        big = "z" * 200_000
        for _ in range(5):  # fill the stalled client's buffers
            told = await asyncio.to_thread(demo.alert, big)
            for ws in pages:
                assert (await next_message(ws))["message"] == big
        assert told >= 200  # the stalled client counts until its send times out and it is dropped
        assert await asyncio.to_thread(demo.reload, ["about.html"]) >= 200
        received = await asyncio.gather(*(next_message(ws) for ws in pages))
        assert all(m["path"] == "/about.html" for m in received)
        await asyncio.gather(*(ws.close() for ws in pages))

    try:
        run_async(run())
    finally:
        stalled.close()


def test_shutdown_closes_websockets_promptly(site: Path) -> None:
    server = Server(site, port=0).start_in_thread()

    async def run() -> None:
        ws = await handshake(server, "/", [])
        await asyncio.to_thread(server.shutdown)
        code = await closed_with(ws, timeout=3)
        assert code in (1001, 1012)

    run_async(run())
    assert server.wait(5)


# -- bad input that used to log tracebacks or end without a close code ------------------------


class Records(logging.Handler):
    """Every record of the execlib and uvicorn loggers, whatever an earlier test configured."""

    NAMES = ("execlib", "uvicorn", "uvicorn.error")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if all(record is not seen for seen in self.records):  # seen once per logger it propagated to
            self.records.append(record)

    def about(self, words: str) -> list[logging.LogRecord]:
        return [r for r in self.records if words in r.getMessage()]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    saved = []
    for name in Records.NAMES:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


def raw_websocket(server: Server) -> socket.socket:
    """A WebSocket to /livereload on a plain socket, to send frames no client library would."""
    sock = socket.create_connection(server.bound_addr, timeout=10)
    sock.sendall(
        b"GET /livereload HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def send_frame(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """One final, masked frame (clients must mask); payloads under 126 bytes."""
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def close_code(sock: socket.socket) -> int:
    """The code of the close frame the server sends (skipping any frame before it)."""
    data = b""
    while True:
        while len(data) < 2:
            chunk = sock.recv(4096)
            assert chunk, "closed without a close frame"
            data += chunk
        length = data[1] & 0x7F
        assert length < 126  # the server's frames here are small
        while len(data) < 2 + length:
            chunk = sock.recv(4096)
            assert chunk, "closed in the middle of a frame"
            data += chunk
        if data[0] & 0x0F == 0x8:
            return int.from_bytes(data[2:4], "big")
        data = data[2 + length :]


@pytest.mark.backend_limit(
    "hypercorn", reason="Hypercorn drops a WebSocket whose frames wsproto rejects without a close frame"
)
def test_text_that_is_not_utf8_closes_with_1007_and_logs_one_line_per_connection(
    demo: Server, records: Records
) -> None:
    for _ in range(3):
        with raw_websocket(demo) as sock:
            send_frame(sock, 0x1, b"\xff\xfe not UTF-8")
            assert close_code(sock) == 1007
    lines = records.about("not UTF-8")
    assert len(lines) == 3, [r.getMessage() for r in records.records]
    for record in lines:
        assert record.levelno == logging.WARNING
        assert record.exc_info is None and "\n" not in record.getMessage()
    assert not [r for r in records.records if r.exc_info or r.levelno >= logging.ERROR]

    async def still_served() -> None:
        ws = await handshake(demo, "/about.html", [])
        await until_pages_known(demo, 1)
        await asyncio.to_thread(demo.reload, ["about.html"])
        assert (await next_message(ws))["path"] == "/about.html"

    run_async(still_served())


def test_deeply_nested_json_closes_with_1009_in_one_log_line(demo: Server, records: Records) -> None:
    async def run() -> None:
        ws = await handshake(demo)
        bystander = await handshake(demo, "/about.html", [])
        await ws.send("[" * 100_000 + "]" * 100_000)  # under the size cap, far over any parser's depth
        assert await closed_with(ws) == 1009
        await until_pages_known(demo, 1)
        await asyncio.to_thread(demo.reload, ["about.html"])
        assert (await next_message(bystander))["path"] == "/about.html"

    run_async(run())
    lines = records.about("nested too deeply")
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in records.records]
    assert not [r for r in records.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_command_that_is_not_a_string_is_ignored(demo: Server, records: Records) -> None:
    async def run() -> None:
        ws = await handshake(demo)
        nested = {"command": [[[["info"]]]] * 3, "url": demo.url + "about.html"}
        await ws.send(json.dumps(nested))
        await ws.send(json.dumps({"command": {"deep": "x"}}))
        await ws.send(json.dumps({"command": "info", "url": demo.url + "about.html", "resources": []}))
        await until_pages_known(demo, 1)
        await asyncio.to_thread(demo.reload, ["about.html"])
        assert (await next_message(ws))["path"] == "/about.html"  # still connected and served

    run_async(run())
    assert len(records.about("command is not a string")) == 2


def test_a_page_reporting_its_resources_again_costs_one_resolution_per_new_url(tmp_path: Path, monkeypatch) -> None:
    # A 300-module page reports its whole list every 50 ms while it loads; each report must not
    # resolve (stat) every URL again on the loop that serves the page's requests.
    from execlib.server.livereload import Page, ReloadHub
    from execlib.server.static import StaticSite

    for i in range(50):
        (tmp_path / f"m{i}.js").write_text("export {};\n")
    hub = ReloadHub(StaticSite(str(tmp_path)).resolver)
    resolved: list[str] = []
    real = hub._file_for
    monkeypatch.setattr(hub, "_file_for", lambda path: resolved.append(path) or real(path))
    page = Page(websocket=None, peer="test")  # type: ignore[arg-type]
    urls = [f"/m{i}.js" for i in range(50)]
    for count in (10, 30, 50, 50):
        hub._learn(page, {"url": "http://127.0.0.1/", "resources": [*urls[:count], "/missing.js"]})
    assert page.resources == {f"m{i}.js" for i in range(50)}
    # each file once; the missing one every time (it may appear), and the page's own URL once
    assert sorted(p for p in resolved if p in urls) == sorted(urls)
    assert resolved.count("/missing.js") == 4


def test_a_page_is_published_only_once_its_resources_are_known(tmp_path: Path, monkeypatch) -> None:
    # Another thread (a tool, a test) that sees a page's URL may delete a stylesheet at once; had the
    # name not been resolved yet, it would not resolve any more and the deletion would miss the page.
    from execlib.server.livereload import Page, ReloadHub
    from execlib.server.static import StaticSite

    (tmp_path / "index.html").write_text("<p>page</p>")
    (tmp_path / "style.css").write_text("p {}")
    hub = ReloadHub(StaticSite(str(tmp_path)).resolver)
    page = Page(websocket=None, peer="test")  # type: ignore[arg-type]
    url_when_resolving: list[str | None] = []
    real = hub._files_for
    monkeypatch.setattr(hub, "_files_for", lambda p, r: url_when_resolving.append(p.url) or real(p, r))
    hub._learn(page, {"url": "http://127.0.0.1/", "resources": ["/style.css"]})
    assert url_when_resolving == [None]  # resolved before the URL went up
    assert page.url == "http://127.0.0.1/" and page.resources == {"style.css"}
