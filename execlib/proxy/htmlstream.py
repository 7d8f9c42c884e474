"""Injecting the live-reload client into HTML that arrives in pieces, possibly compressed.

A page with a known length is read whole (pages are small), decoded, injected with the static
site's own rule (``inject_script``: before the last ``</body>``, else ``</html>``, else at the
end) and sent with its new ``Content-Length``. A page streamed without a length is injected on
the fly: each piece is passed on as soon as it is known not to hold the start of ``</body>``,
and the client goes before the first ``</body>`` seen (or at the end when there is none), so
the browser renders it as it arrives, as it would without the proxy.
"""

from __future__ import annotations

import importlib.util
import re
import zlib
from typing import Any, Protocol

from ..server.inject import inject_script

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
_BODY_START = re.compile(rb"<(/(b(o(d(y\s*)?)?)?)?)?", re.IGNORECASE)
# How much of a piece's end is held back: enough for "</body" and some spaces before its ">".
_HOLD = 64


class Decoder(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped (as the RFC says) or raw (as some send)."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj()
        self._first = True

    def decompress(self, data: bytes) -> bytes:
        if self._first and data:
            self._first = False
            try:
                return self._decoder.decompress(data)
            except zlib.error:
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._decoder.decompress(data)


class _Identity:
    def decompress(self, data: bytes) -> bytes:
        return data


def supported_encodings() -> frozenset[str]:
    """The content codings execlib can decode to inject: br only with a brotli decoder installed."""
    found = {"", "identity", "gzip", "x-gzip", "deflate"}
    if importlib.util.find_spec("brotli") is not None:
        found.add("br")
    return frozenset(found)


def decoder_for(encoding: str) -> Decoder:
    """A decoder for one ``Content-Encoding`` of ``supported_encodings()``."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    if encoding == "br":
        brotli: Any = importlib.import_module("brotli")  # optional: found by supported_encodings()
        return _Brotli(brotli.Decompressor())
    return _Identity()


class _Brotli:
    """The ``brotli`` package's streaming decoder, whose method is ``process`` (brotlicffi's:
    ``decompress``)."""

    def __init__(self, decompressor: Any) -> None:
        self._step = getattr(decompressor, "process", None) or decompressor.decompress

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._step(data))


def inject_whole(html: bytes, tag: bytes) -> bytes:
    """The static site's rule, for a page read whole."""
    return inject_script(html, tag)


class StreamInjector:
    """Feeds pieces of an HTML page through, adding ``tag`` before its first ``</body>``."""

    def __init__(self, tag: bytes) -> None:
        self.tag = tag
        self._held = b""
        self._done = False

    def feed(self, piece: bytes) -> bytes:
        """What can be sent of the page so far."""
        if self._done:
            return piece
        data = self._held + piece
        match = _BODY_END.search(data)
        if match is not None:
            self._done, self._held = True, b""
            return data[: match.start()] + self.tag + data[match.start() :]
        # Hold back an end that may be the start of "</body>" cut by the piece's end; nothing else
        # waits, so a page streamed in pieces shows each as it comes.
        cut = data.rfind(b"<", max(0, len(data) - _HOLD))
        if cut < 0 or not _BODY_START.fullmatch(data[cut:]):
            self._held = b""
            return data
        self._held = data[cut:]
        return data[:cut]

    def finish(self) -> bytes:
        """The rest: what was held back, with the tag if no ``</body>`` came."""
        if self._done:
            return self._held
        self._done = True
        return inject_script(self._held, self.tag)
