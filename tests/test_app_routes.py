"""Routes an embedding tool adds to ``server.app``: any path pattern reaches them, the rest is
still the folder, and execlib's own endpoints need no FastAPI at all."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import WebSocket  # at module level: FastAPI resolves the endpoints' string annotations here
from websockets.sync.client import connect

from execlib import Server
from execlib.server.app import MATCH_CACHE_SIZE, Dispatcher

from .conftest import write

PROTOCOL = "http://livereload.com/protocols/official-7"


def ws_url(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path.lstrip("/")


def test_route_with_a_path_parameter(site: Path, client: httpx.Client) -> None:
    server = Server(site, port=0)

    @server.app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"item": item_id}

    with server:
        assert client.get(server.url + "items/42").json() == {"item": "42"}
        assert client.get(server.url + "items/a%20b").json() == {"item": "a b"}
        assert client.get(server.url + "items/42/more").status_code == 404  # not the pattern: the folder's 404
        assert "<h1>Home</h1>" in client.get(server.url).text


def test_route_with_a_converter(site: Path, client: httpx.Client) -> None:
    write(site / "pages" / "intro", "a file named like no number")
    server = Server(site, port=0)

    @server.app.get("/pages/{n:int}")
    async def page(n: int) -> dict[str, int]:
        return {"page": n}

    with server:
        assert client.get(server.url + "pages/7").json() == {"page": 7}
        # the converter does not match, so the file at that path is served
        assert client.get(server.url + "pages/intro").text == "a file named like no number"
        missing = client.get(server.url + "pages/x")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_mounted_sub_app(site: Path, client: httpx.Client) -> None:
    from fastapi import FastAPI

    sub = FastAPI()

    @sub.get("/hello/{name}")
    async def hello(name: str) -> dict[str, str]:
        return {"hello": name}

    server = Server(site, port=0)
    server.app.mount("/api", sub)
    with server:
        assert client.get(server.url + "api/hello/you").json() == {"hello": "you"}
        assert client.get(server.url + "api/nothing").json() == {"detail": "Not Found"}  # the sub-app's own 404
        assert client.get(server.url + "style.css").text == "body { color: red; }"


def test_static_files_still_serve_beside_routes(site: Path, client: httpx.Client) -> None:
    server = Server(site, port=0)

    @server.app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"item": item_id}

    with server:
        home = client.get(server.url)
        assert home.status_code == 200 and '<script src="/livereload.js" async></script>' in home.text
        assert client.get(server.url + "app.js").text == "console.log('hi');"
        assert client.get(server.url + "sub/").text.startswith("<html><body>Sub index")
        assert client.get(server.url + "sub").status_code in (301, 307, 308)  # the folder redirect, unchanged
        assert client.get(server.url + "missing.html").status_code == 404


def test_html_from_a_route_gets_the_client(site: Path, client: httpx.Client) -> None:
    from starlette.responses import HTMLResponse

    server = Server(site, port=0)

    @server.app.get("/preview/{name}")
    async def preview(name: str) -> HTMLResponse:
        return HTMLResponse(f"<html><body>{name}</body></html>")

    with server:
        page = client.get(server.url + "preview/draft")
        assert page.text == '<html><body>draft<script src="/livereload.js" async></script></body></html>'
        assert int(page.headers["content-length"]) == len(page.content)


def test_a_route_wins_over_a_file_at_the_same_path(site: Path, client: httpx.Client) -> None:
    write(site / "items" / "1", "the file")
    server = Server(site, port=0)

    @server.app.get("/items/{item_id}")
    async def item(item_id: str) -> str:
        return "the route"

    with server:
        assert client.get(server.url + "items/1").json() == "the route"


def test_wrong_method_gets_the_apps_405(site: Path, client: httpx.Client) -> None:
    server = Server(site, port=0)

    @server.app.post("/items/{item_id}")
    async def create(item_id: str) -> dict[str, str]:
        return {"created": item_id}

    with server:
        assert client.post(server.url + "items/9").json() == {"created": "9"}
        wrong = client.get(server.url + "items/9")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"


def test_websocket_route_with_a_parameter_and_the_livereload_socket(site: Path) -> None:
    server = Server(site, port=0)

    @server.app.websocket("/rooms/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.send_text(f"welcome to {room}")
        await websocket.close()

    with server:
        with connect(ws_url(server, "rooms/blue"), open_timeout=5) as ws:
            assert ws.recv(timeout=5) == "welcome to blue"
        with connect(ws_url(server, "livereload"), open_timeout=5) as ws:
            ws.send(json.dumps({"command": "hello", "protocols": [PROTOCOL]}))
            assert json.loads(ws.recv(timeout=5))["command"] == "hello"


def test_routes_added_while_serving_are_found(site: Path, client: httpx.Client) -> None:
    server = Server(site, port=0)
    app = server.app
    with server:
        assert client.get(server.url + "late/1").status_code == 404  # remembered as "no route" for this path

        @app.get("/late/{n}")
        async def late(n: str) -> dict[str, str]:
            return {"late": n}

        assert client.get(server.url + "late/1").json() == {"late": "1"}
        app.router.routes.remove(next(r for r in app.router.routes if getattr(r, "path", "") == "/late/{n}"))
        assert client.get(server.url + "late/1").status_code == 404


def test_host_route_is_asked_on_every_request(site: Path, client: httpx.Client) -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Host

    async def other_site(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await PlainTextResponse("other host")(scope, receive, send)

    server = Server(site, port=0)
    server.app.router.routes.append(Host("other.test", app=other_site))
    with server:
        # same path, different Host header: the answer must not be cached per path
        assert client.get(server.url + "style.css", headers={"host": "other.test"}).text == "other host"
        assert client.get(server.url + "style.css").text == "body { color: red; }"
        assert client.get(server.url + "style.css", headers={"host": "other.test"}).text == "other host"


def test_a_route_that_fails_to_match_is_reported_not_a_quiet_404(
    site: Path, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.routing import BaseRoute

    class Broken(BaseRoute):
        def matches(self, scope):  # type: ignore[no-untyped-def]
            raise ValueError("broken route")

    server = Server(site, port=0)
    server.app.router.routes.append(Broken())
    with caplog.at_level(logging.ERROR), server:
        assert client.get(server.url + "style.css").status_code == 500
    reports = [r for r in caplog.records if r.name == "execlib.server" and "Broken" in r.getMessage()]
    assert len(reports) == 1 and "style.css" in reports[0].getMessage()


def test_own_endpoints_need_no_fastapi(site: Path, client: httpx.Client) -> None:
    server = Server(site, port=0)
    with server:
        health = client.get(server.url + "__execlib__/health")
        assert health.json()["status"] == "ok" and health.json()["server"] == "execlib"
        assert health.headers["content-type"] == "application/json"
        assert health.headers["cache-control"] == "no-cache"
        script = client.get(server.url + "livereload.js")
        assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
        head = client.head(server.url + "livereload.js")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(script.content))
        assert client.post(server.url + "__execlib__/health").status_code == 405
        unknown = client.get(server.url + "__execlib__/nothing")
        assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
    assert not server.dispatcher.api_built  # nothing above built the FastAPI app


def test_reserved_paths_go_to_the_app_once_built(site: Path, client: httpx.Client) -> None:
    server = Server(site, port=0)

    @server.app.get("/__execlib__/build/{step}")
    async def build(step: str) -> dict[str, str]:
        return {"step": step}

    with server:
        assert client.get(server.url + "__execlib__/build/3").json() == {"step": "3"}
        assert client.get(server.url + "__execlib__/health").json()["status"] == "ok"  # still ours
        assert client.get(server.url + "__execlib__/nothing").json() == {"detail": "Not Found"}


def test_startup_handlers_of_the_app_run(site: Path) -> None:
    server = Server(site, port=0)
    events: list[str] = []
    server.app.router.add_event_handler("startup", lambda: events.append("startup"))
    server.app.router.add_event_handler("shutdown", lambda: events.append("shutdown"))
    with server:
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_without_static_files_everything_else_is_the_apps(site: Path, client: httpx.Client) -> None:
    plain = Server(site, port=0, static=False)
    with plain:
        assert client.get(plain.url + "index.html").json() == {"detail": "Not Found"}
        assert client.get(plain.url + "__execlib__/health").status_code == 200
    routed = Server(site, port=0, static=False)

    @routed.app.get("/{anything:path}")
    async def anything(anything: str) -> dict[str, str]:
        return {"path": anything}

    with routed:
        assert client.get(routed.url + "a/b").json() == {"path": "a/b"}


def test_match_cache_is_bounded(site: Path) -> None:
    dispatcher = Dispatcher(str(site), None, None, inject=False)

    @dispatcher.api.get("/items/{item_id}")
    async def item(item_id: str) -> None:
        return None

    for i in range(MATCH_CACHE_SIZE * 2 + 10):
        matched = dispatcher._route_matches({"type": "http", "path": f"/p/{i}", "method": "GET", "root_path": ""})
        assert not matched
        assert len(dispatcher._matches) <= MATCH_CACHE_SIZE
    assert dispatcher._route_matches({"type": "http", "path": "/items/1", "method": "GET", "root_path": ""})
