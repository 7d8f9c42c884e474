"""Builds the ASGI app a Server runs: a dispatcher in front of the static site.

Static requests skip every framework: they are the hot path, and a dev server should answer
them as fast as the file system allows. execlib's own endpoints (``/livereload``,
``/livereload.js``, ``/__execlib__/health``) are answered here directly too, as plain ASGI.

FastAPI is imported, and its app built, only when an embedding tool first reads
``server.app``: importing it is most of a server's start-up time and memory, and ``execlib
serve`` never needs it. Once built, requests under ``/__execlib__/`` and those that one of its
routes matches (any path pattern, mounts included) go to it; everything else still goes to
the static site.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from .accesslog import AccessLogMiddleware
from .inject import InjectMiddleware
from .paths import target_too_long

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ..app.front import AppFront
    from ..proxy.forward import ProxyApp
    from .livereload import ReloadHub

logger = logging.getLogger("execlib.server")

RESERVED_PREFIX = "/__execlib__/"
HEALTH_PATH = RESERVED_PREFIX + "health"
BACKEND_PATH = RESERVED_PREFIX + "backend"  # proxy mode: whether the backend answers (the waiting page asks)
LIVERELOAD_JS = "/livereload.js"
LIVERELOAD_SOCKET = "/livereload"

# Route-match answers kept per (scope type, path). A site has many paths and a crawler can ask
# for endless made-up ones, so the cache is emptied when full rather than allowed to grow.
MATCH_CACHE_SIZE = 4096

Endpoint = Callable[["Scope", "Receive", "Send"], Awaitable[None]]


def build_api() -> FastAPI:
    """An empty FastAPI app for an embedding tool's routes (execlib's own are not in it)."""
    from fastapi import FastAPI

    return FastAPI(title="execlib", docs_url=None, redoc_url=None, openapi_url=None)


class Dispatcher:
    """Sends execlib's own endpoints to their handlers; lifespan, paths under
    ``/__execlib__/`` and paths that a route of ``server.app`` matches to that app (once it is
    built); everything else to the static site. A request target over ``MAX_TARGET_BYTES``
    gets 414 before any of them sees it.

    In proxy mode (``proxy``; app mode's ``AppFront`` alike), what the static site has no file
    for (``serves_file``), and every WebSocket but the live-reload one, goes to the backend
    instead (docs/proxy.rst, docs/app.rst)."""

    def __init__(
        self,
        root: str,
        static: ASGIApp | None,
        hub: ReloadHub | None,
        *,
        inject: bool,
        proxy: ProxyApp | AppFront | None = None,
        serves_file: Callable[[str], bool] | None = None,
    ) -> None:
        self.root = root
        self.static = static
        self.hub = hub
        self.inject = inject
        self.proxy = proxy
        self.serves_file = serves_file
        self._own_http: dict[str, Endpoint] = {HEALTH_PATH: self._health}
        if proxy is not None:
            self._own_http[BACKEND_PATH] = self._backend
        self._client = b""  # the script, read on its first request (importlib.resources is start-up time)
        if hub is not None:
            self._own_http[LIVERELOAD_JS] = self._livereload_js
        self._api: FastAPI | None = None
        self._api_app: ASGIApp | None = None  # the API app with its middleware; set before _api
        self._build_lock = threading.Lock()
        # route matching (loop thread only): the routes seen, split into those whose answer
        # depends only on the scope type and path (cached) and the others (asked every time)
        self._routes_seen: tuple[int, ...] = ()
        self._path_routes: list[BaseRoute] = []
        self._other_routes: list[BaseRoute] = []
        self._matches: dict[tuple[str, str], bool] = {}
        self._reported: set[int] = set()  # routes whose matches() raised, logged once each

    @property
    def api(self) -> FastAPI:
        """The FastAPI app, built (and FastAPI imported) on first use; thread-safe."""
        api = self._api
        if api is None:
            with self._build_lock:
                if self._api is None:
                    built = build_api()
                    self._api_app = InjectMiddleware(built) if self.inject else built
                    self._api = built
                api = self._api
        assert api is not None
        return api

    @property
    def api_built(self) -> bool:
        return self._api is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = scope["path"]
        if target_too_long(path, scope.get("raw_path"), scope.get("query_string", b"")):
            # Refused here, whichever app it was for: no routing, matching or resolving of a huge path.
            await _refuse_too_long(scope, send)
            return
        if kind == "http":
            own = self._own_http.get(path)
            if own is not None:
                await own(scope, receive, send)
                return
        elif path == LIVERELOAD_SOCKET and self.hub is not None:
            # Imported on the first connection: Starlette's WebSocket brings its requests and
            # responses, which the start-up (and every plain file) does without.
            from starlette.websockets import WebSocket

            await self.hub.serve(WebSocket(scope, receive, send))
            return
        api_app = self._api_app
        no_site = self.static is None and self.proxy is None
        if api_app is not None and (no_site or path.startswith(RESERVED_PREFIX) or self._route_matches(scope)):
            await api_app(scope, receive, send)
        elif self.proxy is not None and not path.startswith(RESERVED_PREFIX) and not self._from_disk(scope):
            await self.proxy(scope, receive, send)
        elif self.static is not None and not path.startswith(RESERVED_PREFIX):
            await self.static(scope, receive, send)
        else:
            await _not_found(scope, send)

    def _from_disk(self, scope: Scope) -> bool:
        """Proxy mode: whether a file of ROOT (or a mount) answers this request, not the backend."""
        if self.static is None or self.serves_file is None or scope["type"] != "http":
            return False
        return self.serves_file(scope["path"])

    # -- routes of server.app -------------------------------------------------------------

    def _route_matches(self, scope: Scope) -> bool:
        """Whether a route of the API app matches this request (fully, or all but the method:
        the app answers that with 405, which says more than the static site's 404)."""
        routes = self._api.router.routes if self._api is not None else []
        if not routes:
            return False
        seen = tuple(map(id, routes))  # routes may be added (or removed) at any time, from any thread
        if seen != self._routes_seen:
            self._sort_routes(routes)
            self._routes_seen = seen
        key = (scope["type"], scope["path"])
        found = self._matches.get(key)
        if found is None:
            found = self._any_matches(self._path_routes, scope)
            if len(self._matches) >= MATCH_CACHE_SIZE:
                self._matches.clear()
            self._matches[key] = found
        return found or self._any_matches(self._other_routes, scope)

    def _sort_routes(self, routes: list[BaseRoute]) -> None:
        from starlette.routing import Mount, Route, WebSocketRoute

        # Starlette's route kinds (and FastAPI's, which derive from them) match on the scope type,
        # the path and the method only, so their answer is kept per path; a Host route, an
        # included router or a route class of the tool's own may look at more (headers), so it
        # is asked on every request that reaches this check.
        self._path_routes = [r for r in routes if isinstance(r, Route | WebSocketRoute | Mount)]
        self._other_routes = [r for r in routes if not isinstance(r, Route | WebSocketRoute | Mount)]
        self._matches.clear()

    def _any_matches(self, routes: list[BaseRoute], scope: Scope) -> bool:
        from starlette.routing import Match

        for route in routes:
            try:
                # a copy: some routes note what they matched in the scope they are given
                match, _ = route.matches(dict(scope))
            except Exception:
                # Not a quiet 404 from the static site: the app gets the request, and its own
                # routing meets the same error and answers 500 with the traceback in the log.
                if id(route) not in self._reported:
                    self._reported.add(id(route))
                    logger.exception(
                        "matching %s against route %r failed; sending it to server.app", scope["path"], route
                    )
                return True
            if match is not Match.NONE:
                return True
        return False

    # -- lifespan and execlib's own endpoints -------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            api_app = self._api_app
            if api_app is not None:
                await api_app(scope, receive, send)
                return
            # No app of the tool's (yet): nothing to start or stop but saying so.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        finally:
            if self._api is not None:  # built before or while serving
                release_fastapi_caches()  # serving is over: FastAPI must not keep this server's routes

    async def _health(self, scope: Scope, receive: Receive, send: Send) -> None:
        # scheme: whether this server speaks https, for a caller that only knew its port
        body = {"status": "ok", "root": self.root, "pid": os.getpid(), "server": "execlib", "scheme": scope["scheme"]}
        # encoded as FastAPI's JSONResponse did, so that readers of the endpoint see no change
        data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        await _respond(scope, send, 200, data, b"application/json")

    async def _backend(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.proxy is not None  # the endpoint exists in proxy and app mode only
        data = json.dumps(await self.proxy.backend_state(), separators=(",", ":")).encode()
        await _respond(scope, send, 200, data, b"application/json")

    async def _livereload_js(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._client:
            from importlib.resources import files

            self._client = files("execlib.server").joinpath("client/livereload.js").read_bytes()
        await _respond(scope, send, 200, self._client, b"text/javascript; charset=utf-8")


async def _respond(scope: Scope, send: Send, status: int, body: bytes, content_type: bytes) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        status, body, content_type = 405, b'{"detail":"Method Not Allowed"}', b"application/json"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache"),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _not_found(scope: Scope, send: Send) -> None:
    """What FastAPI answered for a path it had no route for (``/__execlib__/...``, or anything
    with static serving off), without building FastAPI to say it."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    body = b'{"detail":"Not Found"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


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


def release_fastapi_caches() -> None:
    """Empty FastAPI's process-wide LRU caches.

    FastAPI classifies every endpoint and dependency (coroutine? generator?) through LRU
    caches of up to 4,096 entries each, keyed by the callable itself. The routes a tool adds to
    ``server.app`` are often closures that hold the Server; in a tool that makes a Server per
    run, each would stay alive there long after its Server, with everything it refers to.
    Only bounded caches are emptied: they may lose any entry at any time by design, so other
    FastAPI apps in the process pay a re-classification at most. (An unbounded
    ``functools.cache`` may be a memoised singleton, whose identity someone relies on.)
    """
    for name, module in list(sys.modules.items()):
        if not name.startswith("fastapi.") or module is None:
            continue
        for value in list(vars(module).values()):
            parameters = getattr(value, "cache_parameters", None)
            if callable(parameters) and parameters().get("maxsize") is not None:
                value.cache_clear()


def build_asgi(dispatcher: Dispatcher, headers: Iterable[str] = (), *, cors: bool = False) -> ASGIApp:
    """The whole app: access log outermost, then (with ``headers`` or ``cors`` only) the extra
    headers, then the dispatcher. The static site injects the client into its own HTML (into the
    cached bytes, once per edit), the API's middleware does it for the API's."""
    app: ASGIApp = dispatcher
    if headers or cors:
        # Inside the access log, which then logs a preflight's 204 like any other answer.
        from .extra_headers import ExtraHeadersMiddleware

        app = ExtraHeadersMiddleware(app, headers, cors=cors)
    return AccessLogMiddleware(app)
