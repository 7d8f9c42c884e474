"""Development static-file serving as a plain ASGI app.

Rules: every response carries ``Cache-Control: no-cache``; files have a
content-hash ``ETag`` and ``Last-Modified`` and answer conditional requests
with 304; ``Range`` is honoured (via Starlette's ``FileResponse``); folders
redirect to their slashed form and show ``index.html`` or a listing; with clean
URLs ``/about`` serves ``about.html`` (and ``/about/`` redirects to ``/about``); missing
paths get the site's ``404.html`` or ours, or the SPA fallback page. A file or
folder the server's user may not read gets 403 and one log line; a request
target over ``MAX_TARGET_BYTES`` gets 414 before anything is resolved.
The hot path (a small file, no Range) is answered from ``FileCache`` without
touching a thread pool.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from .filecache import NO_CACHE, FileCache, http_date, weak_etag
from .inject import SCRIPT_TAG, inject_script
from .mimetypes import content_type, is_html
from .paths import BadPath, Kind, SiteResolver, Target, target_too_long

logger = logging.getLogger("execlib.static")


@functools.cache
def _templates() -> Any:
    """The listing and 404 templates; jinja2 is imported on the first page that needs one (start-up time)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("execlib.server", "templates"),
        autoescape=True,
        auto_reload=False,
    )


class StaticSite:
    """ASGI app serving one folder for development.

    ``prefix`` is the URL path it is served at (``/assets`` for a mount, ``""`` for ROOT): it is
    taken off request paths to find files, and kept in redirects, listings and 404 pages.
    ``not_found_page`` is the custom 404 page (default: ``404.html`` in ``root``; ``""``: none,
    execlib's own page is shown).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        follow_symlinks: bool = False,
        fallback: str | None = None,
        inject: bool = True,
        cache: FileCache | None = None,
        prefix: str = "",
        not_found_page: str | None = None,
        clean_urls: bool = False,
    ) -> None:
        self.resolver = SiteResolver(root, follow_symlinks, clean_urls)
        self.root = self.resolver.root
        self.prefix = prefix
        self.not_found_page = os.path.join(self.root, "404.html") if not_found_page is None else not_found_page
        self.fallback = fallback
        self.inject = inject
        self.cache = cache or FileCache()
        self._transform: Callable[[bytes], bytes] | None = inject_script if inject else None
        # Told (path, stat) whenever an HTML page is served; the live-reload hub uses it to spot
        # a page that was fetched just before its file changed.
        self.on_html_served: Callable[[str, os.stat_result], None] | None = None

    # -- ASGI entry -----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        path = scope["path"]
        if target_too_long(path, scope.get("raw_path"), scope.get("query_string", b"")):
            # Before anything else looks at the path: its cost must not grow with what a client sends.
            await self._send_simple(send, 414, b"URI Too Long\n", head=method == "HEAD")
            return
        if method not in ("GET", "HEAD"):
            await self._send_simple(send, 405, b"Method Not Allowed\n", extra=[(b"allow", b"GET, HEAD")], head=False)
            return
        head = method == "HEAD"
        if self.prefix:
            # The dispatcher sent only paths under the prefix here. The raw path stays whole: it is
            # only searched for encoded separators, which are refused in the prefix as anywhere.
            path = path[len(self.prefix) :]
            if not path:  # the mount itself, like a folder without its slash
                await self._redirect(scope, send, head)
                return
        try:
            target = self.resolver.resolve(path, scope.get("raw_path"))
        except BadPath as bad:
            if bad.status == 400:
                await self._send_simple(send, 400, b"Bad Request\n", head=head)
            else:
                await self._not_found(scope, send, head)
            return
        await self._answer(scope, receive, send, target, head)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, target: Target, head: bool) -> None:
        """Send what the resolver found for the request's path."""
        if target.kind is Kind.FILE:
            await self._send_file(scope, receive, send, target.fs_path, target.st, head, 200)
        elif target.kind is Kind.REDIRECT:
            await self._redirect(scope, send, head)
        elif target.kind is Kind.UNSLASH:
            await self._redirect(scope, send, head, slash=False)
        elif target.kind is Kind.DIRECTORY:
            await self._listing(scope, send, target, head)
        elif target.kind is Kind.FORBIDDEN:
            await self._forbidden(send, head, target.fs_path)
        elif (fallback := self._fallback_for(scope)) is not None:
            await self._send_file(scope, receive, send, fallback[0], fallback[1], head, 200)
        else:
            await self._not_found(scope, send, head)

    # -- files ------------------------------------------------------------------------

    async def _send_file(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        fs_path: str,
        st: os.stat_result | None,
        head: bool,
        status: int,
    ) -> None:
        if st is None:
            st = os.stat(fs_path)
        ctype = content_type(fs_path)
        html_page = is_html(ctype)
        transform = self._transform if html_page else None
        if html_page and self.on_html_served is not None:
            self.on_html_served(fs_path, st)
        headers = _conditional_headers(scope)
        wants_range = status == 200 and b"range" in headers and transform is None
        try:
            entry = self.cache.get(fs_path, st, transform, ctype)
            if entry is None or wants_range:
                # Streamed below: FileResponse would open the file only after sending its headers,
                # too late to answer 403 instead of breaking the connection. Find out now.
                os.close(os.open(fs_path, os.O_RDONLY))
        except PermissionError:
            await self._forbidden(send, head, fs_path)
            return
        except (FileNotFoundError, NotADirectoryError):  # deleted since it was stat-ed: nothing to log
            await self._not_found(scope, send, head)
            return

        if entry is None and transform is not None:
            # An HTML page too big for the cache: still injected, read whole (pages that big are rare).
            etag, last_modified = weak_etag(st), http_date(st.st_mtime)
            if status == 200 and _not_modified(headers, etag, st.st_mtime):
                await self._send_not_modified(send, etag.encode(), last_modified.encode())
                return
            with open(fs_path, "rb") as f:
                body = transform(f.read())
            extra = [(b"etag", etag.encode()), (b"last-modified", last_modified.encode())]
            await self._send_simple(send, status, body, ctype=ctype.encode(), extra=extra, head=head)
            return

        if entry is None or wants_range:
            # A big file or a Range request: Starlette's FileResponse streams it and handles ranges.
            etag = entry.etag if entry is not None else weak_etag(st)
            last_modified = http_date(st.st_mtime)
            if status == 200 and _not_modified(headers, etag, st.st_mtime):
                await self._send_not_modified(send, etag.encode(), last_modified.encode())
                return
            # Imported here: Starlette's responses (and anyio behind them) are a tenth of the
            # start-up, and small files, the first page among them, never need them.
            from starlette.responses import FileResponse

            response = FileResponse(
                fs_path,
                status_code=status,
                media_type=ctype,
                stat_result=st,
                headers={"cache-control": "no-cache", "etag": etag, "last-modified": last_modified},
            )
            await response(scope, receive, _ensure_no_cache(send))
            return

        # The hot path: a cached file, headers encoded once per file version by the cache.
        if headers and status == 200 and _not_modified(headers, entry.etag, entry.mtime):
            await self._send_not_modified(send, entry.etag.encode(), entry.last_modified.encode())
            return
        # A fresh list: middleware may edit the headers it is given, the cached ones must not change.
        await send({"type": "http.response.start", "status": status, "headers": list(entry.headers)})
        await send({"type": "http.response.body", "body": b"" if head else entry.body})

    async def _send_not_modified(self, send: Send, etag: bytes, last_modified: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 304,
                "headers": [(b"etag", etag), (b"last-modified", last_modified), NO_CACHE],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    # -- folders, redirects, errors ----------------------------------------------------

    async def _redirect(self, scope: Scope, send: Send, head: bool, slash: bool = True) -> None:
        """307 to the path with a slash added (a folder) or, with ``slash=False``, its trailing one removed."""
        raw = scope.get("raw_path") or quote(scope["path"]).encode()
        location = raw + b"/" if slash else raw[:-1]
        if scope.get("query_string"):
            location += b"?" + scope["query_string"]
        await self._send_simple(send, 307, b"", extra=[(b"location", location)], head=head)

    async def _listing(self, scope: Scope, send: Send, target: Target, head: bool) -> None:
        entries: list[dict[str, Any]] = []
        try:
            with os.scandir(target.fs_path) as it:
                for item in it:
                    try:
                        st = item.stat()
                    except OSError:
                        continue  # a dangling symlink, or a file deleted while we list
                    is_dir = stat.S_ISDIR(st.st_mode)
                    name = item.name
                    entries.append(
                        {
                            "name": os.fsencode(name).decode("utf-8", "replace"),
                            "href": quote(os.fsencode(name)) + ("/" if is_dir else ""),
                            "is_dir": is_dir,
                            "size": "-" if is_dir else _human_size(st.st_size),
                            "mtime": datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M"),
                        }
                    )
        except PermissionError:  # a folder we may enter (x) but not list (r)
            await self._forbidden(send, head, target.fs_path)
            return
        except OSError:
            await self._not_found(scope, send, head)
            return
        entries.sort(key=lambda e: (not e["is_dir"], e["name"].casefold(), e["name"]))
        page = (
            _templates()
            .get_template("listing.html")
            .render(path=scope["path"], parent=scope["path"] != "/", entries=entries)
        )
        await self._send_html(scope, send, 200, page.encode(), head)

    async def _not_found(self, scope: Scope, send: Send, head: bool) -> None:
        try:
            with open(self.not_found_page, "rb") as f:
                body = f.read()
        except OSError:
            body = _templates().get_template("404.html").render(path=scope["path"]).encode()
        await self._send_html(scope, send, 404, body, head)

    async def _forbidden(self, send: Send, head: bool, fs_path: str) -> None:
        # One line, no traceback: the fix is a chmod, and a reloading page would repeat it per request.
        logger.warning("403: cannot read %s (permission denied)", fs_path)
        await self._send_simple(send, 403, b"Forbidden: the server may not read this file or folder\n", head=head)

    def _fallback_for(self, scope: Scope) -> tuple[str, os.stat_result] | None:
        """The SPA fallback file for a GET of an extensionless path that accepts HTML."""
        if self.fallback is None or scope["method"] != "GET":
            return None
        last = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        if "." in last or b"text/html" not in _request_headers(scope).get(b"accept", b""):
            return None
        fs_path = os.path.join(self.root, self.fallback)
        try:
            st = os.stat(fs_path)
        except OSError:
            return None
        return (fs_path, st) if stat.S_ISREG(st.st_mode) else None

    async def _send_html(self, scope: Scope, send: Send, status: int, body: bytes, head: bool) -> None:
        if self.inject:
            body = inject_script(body)
        await self._send_simple(send, status, body, ctype=b"text/html; charset=utf-8", head=head)

    async def _send_simple(
        self,
        send: Send,
        status: int,
        body: bytes,
        *,
        ctype: bytes = b"text/plain; charset=utf-8",
        extra: list[tuple[bytes, bytes]] | None = None,
        head: bool,
    ) -> None:
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), NO_CACHE]
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})


# The request headers a file response depends on; most requests carry none of them.
_CONDITIONAL = frozenset({b"range", b"if-range", b"if-none-match", b"if-modified-since"})


def _conditional_headers(scope: Scope) -> dict[bytes, bytes]:
    """Range and conditional headers of a request, without building a dict of all of them.

    ASGI servers give header names lowercased (the spec requires it), so no ``lower()`` here.
    """
    return {name: value for name, value in scope["headers"] if name in _CONDITIONAL}


def _request_headers(scope: Scope) -> dict[bytes, bytes]:
    cached = scope.get("execlib.headers")
    if cached is None:
        cached = scope["execlib.headers"] = {k.lower(): v for k, v in scope["headers"]}
    return cached


def _not_modified(headers: dict[bytes, bytes], etag: str, mtime: float) -> bool:
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")}
        return b"*" in tags or etag.encode() in tags
    if_modified_since = headers.get(b"if-modified-since")
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since.decode("latin-1")).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return int(mtime) <= since
    return False


def _ensure_no_cache(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            message = {**message, "headers": [*headers, NO_CACHE]}
        await send(message)

    return wrapped


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


__all__ = ["StaticSite", "SCRIPT_TAG"]
