"""``--header`` and ``--cors``: headers added to every HTTP response, and CORS preflights answered.

One plain ASGI middleware for both, and only when one of them is on: without them the app is
what it always was, with no layer more on the hot path. With them, each response start gets a
list of header tuples encoded once, here, when the server is made.

Starlette's ``CORSMiddleware`` is not used: it parses every request's headers into a ``Headers``
object and edits each response's through ``MutableHeaders`` (work per request on the static fast
path), it adds its headers only to requests that carry ``Origin``, it answers a preflight with
200 and a body rather than 204, and it imports ``starlette.responses``, which a plain ``execlib
serve`` never needs at start-up.

CORS here is the permissive kind a development server wants: ``Access-Control-Allow-Origin: *``
on every response, without credentials (a browser never sends cookies to a ``*`` origin, so no
other site can act as the user on a tool's own routes), and the headers a page needs to read
validators and ranges from ``fetch()`` exposed.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import header_pairs

Header = tuple[bytes, bytes]

#: response headers a cross-origin ``fetch()`` may read besides the always-safe ones
EXPOSED = ("ETag", "Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified")
#: methods a preflight is told are allowed (a method asked for outside these is allowed too)
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_METHODS = ", ".join(ALLOWED_METHODS).encode()
_METHOD_SET = frozenset(method.encode() for method in ALLOWED_METHODS)
# Seconds a browser may reuse a preflight's answer. Short: a restarted dev server may answer
# differently, and browsers cap it anyway (Chromium at 2 hours).
MAX_AGE = 600


class ExtraHeadersMiddleware:
    """Adds ``headers`` (checked ``"Name: value"`` strings) and, with ``cors``, CORS headers to
    every HTTP response; with ``cors``, answers CORS preflight requests itself with 204.

    A header of the same name that the app set is replaced, not repeated: the user's choice wins
    over execlib's (``Cache-Control``), and over CORS's. WebSocket and lifespan pass untouched.
    """

    def __init__(self, app: ASGIApp, headers: Iterable[str] = (), *, cors: bool = False) -> None:
        self.app = app
        self.cors = cors
        user = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in header_pairs(headers)]
        user_names = {name for name, _ in user}
        cors_headers: list[Header] = []
        if cors:
            exposed = [*EXPOSED, *(name for name, _ in header_pairs(headers))]
            cors_headers = [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-expose-headers", ", ".join(dict.fromkeys(exposed)).encode("latin-1")),
            ]
        # the user's headers win over CORS's of the same name; every one replaces the app's
        self.added: list[Header] = [*(h for h in cors_headers if h[0] not in user_names), *user]
        self.names = frozenset(name for name, _ in self.added)
        self._preflight_fixed = _preflight_headers(user)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.cors and scope["method"] == "OPTIONS":
            asked = _preflight_request(scope)
            if asked is not None:
                await self._preflight(send, asked)
                return
        added, names = self.added, self.names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a new list: the app's may be shared (FileCache's encoded headers); the message is
                # the app's to give away, as Starlette's own middleware treats it
                kept = [header for header in message.get("headers", ()) if header[0].lower() not in names]
                kept += added
                message["headers"] = kept
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _preflight(self, send: Send, asked: dict[bytes, bytes]) -> None:
        """204 for ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``, whatever the path:
        the static site would answer 405, and a tool's routes rarely know CORS."""
        headers = list(self._preflight_fixed)
        names = {name for name, _ in headers}
        method = asked[b"access-control-request-method"]
        methods = _METHODS if method in _METHOD_SET else _METHODS + b", " + method
        answer: list[Header] = [(b"access-control-allow-methods", methods)]
        if b"access-control-request-headers" in asked:
            answer.append((b"access-control-allow-headers", asked[b"access-control-request-headers"]))
        if asked.get(b"access-control-request-private-network", b"").lower() == b"true":
            # Chromium asks this before a public site's page may fetch from a local server: the
            # case --cors is for (a hosted app loading assets from localhost)
            answer.append((b"access-control-allow-private-network", b"true"))
        headers.extend(header for header in answer if header[0] not in names)
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _preflight_headers(user: list[Header]) -> list[Header]:
    """The headers every preflight answer carries (the user's win over these of the same name)."""
    user_names = {name for name, _ in user}
    fixed: list[Header] = [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-max-age", str(MAX_AGE).encode()),
        # the allowed headers echo the request's: an answer for one request is not one for another
        (b"vary", b"Access-Control-Request-Method, Access-Control-Request-Headers"),
    ]
    return [*(h for h in fixed if h[0] not in user_names), *user]


_PREFLIGHT_NAMES = frozenset(
    {
        b"origin",
        b"access-control-request-method",
        b"access-control-request-headers",
        b"access-control-request-private-network",
    }
)


def _preflight_request(scope: Scope) -> dict[bytes, bytes] | None:
    """The CORS request headers of a preflight (ASGI gives names lowercased), or None for another ``OPTIONS``."""
    asked = {name: value.strip() for name, value in scope["headers"] if name in _PREFLIGHT_NAMES}
    method = asked.get(b"access-control-request-method")
    if b"origin" not in asked or not method or not _is_token(method):
        return None
    return asked


def _is_token(value: bytes) -> bool:
    # a method is a token: anything else is not echoed into a response header
    return all(33 <= byte < 127 and byte not in b'"(),/:;<=>?@[\\]{}' for byte in value)
