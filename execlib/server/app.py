"""Builds the ASGI app a Server runs: a FastAPI app for our own endpoints and the static site.

Static requests skip FastAPI's routing and middleware stack: they are the hot
path, and a dev server should answer them as fast as the file system allows.
Paths under ``/__execlib__/`` and the live-reload endpoints go to FastAPI,
as does everything when static serving is off.
"""

from __future__ import annotations

import os
from importlib.resources import files

from fastapi import FastAPI, WebSocket
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .accesslog import AccessLogMiddleware
from .inject import InjectMiddleware
from .livereload import ReloadHub
from .paths import target_too_long

RESERVED_PREFIX = "/__execlib__/"
LIVERELOAD_PATHS = frozenset({"/livereload", "/livereload.js"})


def build_api(root: str) -> FastAPI:
    """The FastAPI app with the server's own endpoints; embedding tools may add routes to it."""
    api = FastAPI(title="execlib", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get(RESERVED_PREFIX + "health")
    async def health() -> JSONResponse:
        body = {"status": "ok", "root": root, "pid": os.getpid(), "server": "execlib"}
        return JSONResponse(body, headers={"cache-control": "no-cache"})

    return api


def add_livereload_routes(api: FastAPI, hub: ReloadHub) -> None:
    """``/livereload`` (the protocol 7 WebSocket) and ``/livereload.js`` (our client)."""
    client = files("execlib.server").joinpath("client/livereload.js").read_bytes()

    @api.get("/livereload.js", include_in_schema=False)
    async def livereload_js() -> Response:
        return Response(client, media_type="text/javascript; charset=utf-8", headers={"cache-control": "no-cache"})

    @api.websocket("/livereload")
    async def livereload_socket(websocket: WebSocket) -> None:
        await hub.serve(websocket)


class Dispatcher:
    """Sends reserved paths, the exact paths of routes added to the API app, and lifespan to the
    API app; everything else to the static site. A request target over ``MAX_TARGET_BYTES``
    gets 414 before either sees it."""

    def __init__(self, api: FastAPI, static: ASGIApp | None, api_app: ASGIApp | None = None) -> None:
        self.api = api
        self.api_app = api_app or api  # the API app with its middleware
        self.static = static
        self._route_count = -1
        self._api_paths: frozenset[str] = LIVERELOAD_PATHS

    def api_paths(self) -> frozenset[str]:
        """Paths (without parameters) of the API's routes; recomputed when routes are added."""
        routes = self.api.router.routes
        if len(routes) != self._route_count:
            self._route_count = len(routes)
            self._api_paths = frozenset(path for route in routes if "{" not in (path := getattr(route, "path", "{")))
        return self._api_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.api_app(scope, receive, send)
            return
        path = scope["path"]
        if target_too_long(path, scope.get("raw_path"), scope.get("query_string", b"")):
            # Refused here, whichever app it was for: no routing, matching or resolving of a huge path.
            await _refuse_too_long(scope, send)
            return
        if self.static is None:
            await self.api_app(scope, receive, send)
            return
        if path.startswith(RESERVED_PREFIX) or path in self.api_paths():
            await self.api_app(scope, receive, send)
        else:
            await self.static(scope, receive, send)


async def _refuse_too_long(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # before accepting: the server answers 403
        return
    body = b"URI Too Long\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": 414, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def build_asgi(api: FastAPI, static: ASGIApp | None, *, inject: bool) -> ASGIApp:
    """The whole app: access log outermost; the static site injects the client into its own HTML
    (into the cached bytes, once per edit), the middleware does it for the API's HTML responses."""
    return AccessLogMiddleware(Dispatcher(api, static, InjectMiddleware(api) if inject else api))
