"""One access-log line per request: method, path, status, size, milliseconds."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("execlib.access")


class AccessLogMiddleware:
    """Pure ASGI middleware logging to ``execlib.access`` with the fields as ``extra``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            millis = (time.perf_counter() - started) * 1000
            path = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
            access_logger.info(
                "%s %s %d %d %.1fms",
                scope["method"],
                path,
                status or 500,
                size,
                millis,
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status or 500,
                    "size": size,
                    "ms": round(millis, 2),
                },
            )
