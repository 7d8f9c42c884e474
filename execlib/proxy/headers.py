"""The headers that cross the proxy: what the backend is told, and what the browser is given.

Hop-by-hop headers describe one connection, not the message, and never cross (RFC 9110, 7.6.1):
those listed here and any the ``Connection`` header names. The backend learns who asked through
``X-Forwarded-For``, ``-Proto`` and ``-Host``. On the way back, a ``Location`` naming the backend's
origin is rewritten to the address the browser used, a cookie's ``Domain`` naming the backend
host is dropped (so the cookie belongs to the proxy's host), and a ``Content-Security-Policy``
gets ``'self'`` for scripts and connections, which is where the live-reload client comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..server.inject import SCRIPT_TAG
from .backend import Backend

if TYPE_CHECKING:
    from starlette.types import Scope

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Set by execlib itself from what it knows of the client: a value from the client would be a lie
# passed on (the client is the browser, not another proxy).
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """``headers`` without the hop-by-hop ones (and those their ``Connection`` header names)."""
    pairs = list(headers)
    named = {
        token.strip().lower().encode("latin-1")
        for name, value in pairs
        if name.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
        if token.strip()
    }
    return [(name, value) for name, value in pairs if name.lower() not in HOP_BY_HOP and name.lower() not in named]


def request_headers(scope: Scope, backend: Backend, *, rewrite_host: bool) -> Headers:
    """The headers to send the backend for the request ``scope``."""
    raw: Headers = list(scope.get("headers", []))
    host = next((value for name, value in raw if name == b"host"), b"")
    forwarded_for = [value for name, value in raw if name == b"x-forwarded-for"]
    headers = [(name, value) for name, value in end_to_end(raw) if name not in _FORWARDED]
    if rewrite_host or not host:
        headers = [(name, value) for name, value in headers if name != b"host"]
        headers.insert(0, (b"host", backend.netloc.encode("latin-1")))
    client = scope.get("client")
    if client:
        address = str(client[0]).encode("latin-1")
        # a chain the client was given by a proxy of its own is kept, with this hop added
        chain = b", ".join([*forwarded_for, address]) if forwarded_for else address
        headers.append((b"x-forwarded-for", chain))
    headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers


def proxy_origin(scope: Scope) -> str:
    """``scheme://host[:port]`` as the browser reached the proxy (its Host header)."""
    scheme = str(scope.get("scheme", "http"))
    host: bytes = next((value for name, value in scope.get("headers", []) if name == b"host"), b"")
    if not host:
        address, port = scope.get("server") or ("127.0.0.1", 80)
        shown = f"[{address}]" if ":" in str(address) else str(address)
        return f"{scheme}://{shown}:{port}"
    return f"{scheme}://{host.decode('latin-1')}"


def rewrite_location(value: bytes, backend: Backend, origin: str) -> bytes:
    """A redirect's target moved from the backend's origin to the proxy's; others unchanged.

    Behind ``--https``, a target naming the proxy's own host over plain ``http`` is moved to
    ``https`` too: a backend told the browser's Host (the default) but not aware of TLS builds
    such URLs, and nothing answers plain HTTP on that port.
    """
    text = value.decode("latin-1")
    rest = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", "", text)
    if backend.same_origin(text):
        return (origin + rest).encode("latin-1")
    scheme, _, authority = origin.partition("://")
    if scheme == "https" and text[: len(text) - len(rest)].lower() == f"http://{authority}".lower():
        return (origin + rest).encode("latin-1")
    return value


def strip_cookie_domain(value: bytes, backend: Backend) -> bytes:
    """A ``Set-Cookie`` without a ``Domain`` naming the backend host: the browser would refuse it
    for the proxy's host (or keep it for the wrong one); without it, it is the proxy's cookie."""
    parts = value.decode("latin-1").split(";")
    kept = [parts[0]]
    for attribute in parts[1:]:
        name, _, domain = attribute.partition("=")
        if name.strip().lower() == "domain" and domain.strip().lstrip(".").lower() == backend.hostname:
            continue
        kept.append(attribute)
    return ";".join(kept).encode("latin-1")


# -- Content-Security-Policy ----------------------------------------------------------------

_NONCE = re.compile(r"'nonce-([A-Za-z0-9+/_=-]+)'")


def allow_client(policy: str) -> tuple[str, str | None]:
    """``policy`` letting the page load ``/livereload.js`` and open its WebSocket, and a nonce for the
    script tag if the policy has one (needed with ``'strict-dynamic'``, which ignores ``'self'``).

    Only the script and connection sources are widened, and only by ``'self'``: the proxy's own
    origin, where the client is served from. A header may hold several policies (commas); each
    must allow it.
    """
    nonce = None
    policies = []
    for one in policy.split(","):
        widened, found = _allow_in_one(one)
        nonce = nonce or found
        policies.append(widened)
    return ",".join(policies), nonce


def _allow_in_one(policy: str) -> tuple[str, str | None]:
    directives = [part.strip() for part in policy.split(";") if part.strip()]
    names = [directive.split(None, 1)[0].lower() for directive in directives]
    default = next((d for d, n in zip(directives, names, strict=True) if n == "default-src"), None)
    nonce = None
    for wanted in ("script-src", "script-src-elem", "connect-src"):
        if wanted in names:
            index = names.index(wanted)
            directives[index] = _with_self(directives[index])
        elif default is not None and wanted != "script-src-elem":
            # default-src stands for it: a directive of its own, default-src's sources plus 'self',
            # leaves every other kind of fetch as the page asked
            directives.append(_with_self(wanted + default[len("default-src") :]))
    for directive in directives:
        if directive.lower().startswith(("script-src ", "script-src-elem ")):
            match = _NONCE.search(directive)
            nonce = nonce or (match.group(1) if match else None)
    return "; ".join(directives), nonce


def _with_self(directive: str) -> str:
    name, *sources = directive.split()
    sources = [source for source in sources if source.lower() != "'none'"]
    if "'self'" not in (source.lower() for source in sources):
        sources.append("'self'")
    return " ".join([name, *sources])


def script_tag(nonce: str | None) -> bytes:
    """The client's script tag, as static pages get it, with the page's nonce when it needs one."""
    if nonce is None:
        return SCRIPT_TAG
    return SCRIPT_TAG.replace(b"<script ", b'<script nonce="' + nonce.encode("ascii") + b'" ', 1)
