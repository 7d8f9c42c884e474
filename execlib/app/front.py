"""AppFront: the front server's way to the app: requests held while workers start, then forwarded.

Each generation of workers gets a ``ProxyApp`` of its own (``execlib.proxy``: streaming both ways,
injection of the live-reload client into HTML, WebSockets), pointed at the generation's socket.
A request that arrives while a generation starts waits for it (``Supervisor.settled``), so a code
change costs the browser a delay, never an error; one in flight to the old generation finishes
there (the old workers drain). When the app cannot be served (``Supervisor.problem``) a page gets
the problem as an error page carrying the live-reload client, so saving a fix reloads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from typing import TYPE_CHECKING, Any

from ..proxy.backend import Backend
from ..proxy.forward import ProxyApp, send_whole, wants_html
from ..proxy.headers import script_tag
from .supervisor import AppProblem, Generation, Supervisor

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger("execlib.app")


class AppFront:
    """ASGI app forwarding to the live generation of ``supervisor`` (see the module's doc)."""

    def __init__(self, supervisor: Supervisor, *, inject: bool, hold_timeout: float) -> None:
        self.supervisor = supervisor
        self.inject = inject
        self.hold_timeout = hold_timeout
        self._proxies: dict[int, ProxyApp] = {}
        # HTTP requests in flight per generation, and an event set when a generation has none
        self._busy: dict[int, int] = {}
        self._idle: dict[int, asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        supervisor = self.supervisor
        if not supervisor.settled.is_set():
            try:
                await asyncio.wait_for(supervisor.settled.wait(), self.hold_timeout)
            except asyncio.TimeoutError:
                await self._unavailable(scope, send, AppProblem("the app is still starting", "", False), 503)
                return
        generation = supervisor.live
        if generation is None:
            problem = supervisor.problem or AppProblem("the app is not running", "", False)
            await self._unavailable(scope, send, problem, 500 if supervisor.problem else 503)
            return
        proxy = self._proxy_for(generation)
        if scope["type"] != "http":
            await proxy(scope, receive, send)  # a WebSocket lasts as long as its page: not waited for
            return
        if generation.first_answer_at is None:
            send = self._timing_send(send, generation)
        number = generation.number
        self._busy[number] = self._busy.get(number, 0) + 1
        self._idle.setdefault(number, asyncio.Event()).clear()
        try:
            await proxy(scope, receive, send)
        finally:
            self._busy[number] -= 1
            if not self._busy[number]:
                self._idle[number].set()

    async def wait_idle(self, generation: Generation, timeout: float) -> None:
        """Wait (up to ``timeout``) until no HTTP request to ``generation`` is in flight."""
        if self._busy.get(generation.number, 0):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle[generation.number].wait(), timeout)

    def _proxy_for(self, generation: Generation) -> ProxyApp:
        proxy = self._proxies.get(generation.number)
        if proxy is None:
            backend = Backend("http", "127.0.0.1", generation.port)
            proxy = ProxyApp(backend, timeout=self.supervisor.startup_timeout, inject=self.inject)
            self._proxies[generation.number] = proxy
        return proxy

    def _timing_send(self, send: Send, generation: Generation) -> Send:
        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.supervisor.answered(generation)
            await send(message)

        return timed

    async def keep_only(self, number: int | None) -> None:
        """Close the connections to every generation but ``number`` (they have stopped)."""
        for old in [n for n in self._proxies if n != number]:
            await self._proxies.pop(old).aclose()
        for old in [n for n in self._busy if n != number and not self._busy[n]]:
            del self._busy[old], self._idle[old]

    async def aclose(self) -> None:
        proxies, self._proxies = list(self._proxies.values()), {}
        for proxy in proxies:
            await proxy.aclose()

    async def backend_state(self) -> dict[str, Any]:
        live = self.supervisor.live
        return {
            "app": self.supervisor.target.import_string,
            "up": live is not None,
            "pids": live.pids if live is not None else [],
            "generation": live.number if live is not None else None,
            "problem": self.supervisor.problem.title if self.supervisor.problem else None,
        }

    async def _unavailable(self, scope: Scope, send: Send, problem: AppProblem, status: int) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        if scope["type"] != "http":
            return
        if wants_html(scope):
            body = problem_page(problem, script_tag(None) if self.inject else b"")
            content_type = b"text/html; charset=utf-8"
        else:
            body = f"execlib: {problem.title}\n".encode()
            content_type = b"text/plain; charset=utf-8"
        await send_whole(scope, send, status, body, content_type)


def problem_page(problem: AppProblem, client: bytes) -> bytes:
    """The page shown instead of the app: the problem, escaped, and the client (a fix reloads it)."""
    title = html.escape(problem.title)
    text = html.escape(problem.text)
    page = (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>execlib: the app is not running</title>"
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}"
        "pre{background:#fbeaea;padding:1em;overflow:auto;font:13px/1.4 ui-monospace,monospace}</style>"
        f"</head><body><h1>The app is not running</h1><p id='execlib-problem'>{title}</p>"
        f"<pre>{text}</pre><p>Save a fix: this page reloads by itself.</p></body></html>\n"
    )
    return page.encode().replace(b"</body>", client + b"</body>", 1)
