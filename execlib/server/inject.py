"""Inserting the live-reload client into HTML responses.

The static site injects into the bytes it caches (so a page is rewritten once
per edit, not once per request); this middleware does it for the HTML
responses of the FastAPI app (routes an embedding tool adds, error pages).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCRIPT_TAG = b'<script src="/livereload.js" async></script>'

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(rb"</html\s*>", re.IGNORECASE)


def inject_script(html: bytes, tag: bytes = SCRIPT_TAG) -> bytes:
    """Insert ``tag`` before the last ``</body>``, else the last ``</html>``, else at the end."""
    # The usual page first, without walking every match: its last "</body" (any case) closes the
    # body. The proxy runs this on every page it passes, so the regex scan is worth skipping.
    start = html.lower().rfind(b"</body")
    if start >= 0 and _BODY_END.match(html, start):
        return html[:start] + tag + html[start:]
    for pattern in (_BODY_END, _HTML_END):
        last = None
        for last in pattern.finditer(html):  # noqa: B007 - we want the last match
            pass
        if last is not None:
            return html[: last.start()] + tag + html[last.start() :]
    return html + tag


class InjectMiddleware:
    """Pure ASGI middleware: adds the client script to HTML responses that lack it."""

    def __init__(self, app: ASGIApp, tag: bytes = SCRIPT_TAG) -> None:
        self.app = app
        self.tag = tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start: Message | None = None  # held back while we collect an HTML body
        chunks: list[bytes] = []

        async def send_wrapper(message: Message) -> None:
            nonlocal start
            kind = message["type"]
            if kind == "http.response.start":
                if _wants_injection(message):
                    start = message
                else:
                    await send(message)
                return
            if kind != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            if scope["method"] == "HEAD":
                length = _content_length(start) + len(self.tag)
            else:
                body = inject_script(body, self.tag)
                length = len(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(length).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, send_wrapper)


def _wants_injection(start: Message) -> bool:
    if start.get("status", 200) in (204, 304) or 300 <= start.get("status", 200) < 400:
        return False
    content_type = b""
    for key, value in start.get("headers", []):
        lowered = key.lower()
        if lowered == b"content-encoding":
            return False  # compressed bodies cannot be edited
        if lowered == b"content-type":
            content_type = value.lower()
    return content_type.startswith(b"text/html")


def _content_length(start: Message) -> int:
    for key, value in start.get("headers", []):
        if key.lower() == b"content-length":
            return int(value)
    return 0
