"""Content types for development serving.

The platform's ``mimetypes`` tables differ between machines (``.mjs``,
``.wasm`` and ``.webp`` are missing on some), and a wrong type breaks module
scripts and WebAssembly, so the types a web developer relies on are fixed here.
"""

from __future__ import annotations

import functools
import mimetypes
import posixpath

_KNOWN = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".pdf": "application/pdf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".zip": "application/zip",
}


# Asked once per request with the same few paths: a hit costs less than splitext() alone.
@functools.lru_cache(maxsize=4096)
def content_type(path: str) -> str:
    """The Content-Type header value for a file name; text types carry charset=utf-8."""
    ext = posixpath.splitext(path)[1].lower()
    known = _KNOWN.get(ext)
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path)
    if guessed is None:
        return "application/octet-stream"
    return guessed + "; charset=utf-8" if guessed.startswith("text/") else guessed


def is_html(content_type_value: str) -> bool:
    return content_type_value.startswith("text/html")
