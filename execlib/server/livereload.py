"""LiveReload protocol 7 over a WebSocket, and the hub that decides which pages a change touches.

Protocol: the client sends ``hello`` (with the protocols it speaks), we answer
``hello``; the client sends ``info`` with its page ``url``; we send ``reload``
(``path``, ``liveCSS``, ``liveImg``) and ``alert``. Our own client also sends
``resources`` (same-origin URL paths its page loaded) inside ``info``, and
understands ``execlib-error`` / ``execlib-clear-error`` (the build overlay).
Stock clients (livereload.js, the browser extensions) ignore the extra fields.

Targeting (documented in docs/livereload.rst):
- an HTML file change reloads the pages showing that file (a 404 page reloads
  when the file it wanted appears);
- a stylesheet or image change is sent as liveCSS/liveImg to pages that loaded it;
- any other file reloads the pages that loaded it;
- a change outside the site root (``--watch``) reloads every page;
- a client that reports no resources (a stock client) gets every change.
All of this runs on the server's event loop; other threads go through
``asyncio.run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import posixpath
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .mounts import SiteMap
from .paths import MAX_TARGET_BYTES, BadPath, Kind, SiteResolver

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

logger = logging.getLogger("execlib.livereload")

PROTOCOL_7 = "http://livereload.com/protocols/official-7"
MAX_MESSAGE_BYTES = 256 * 1024
HANDSHAKE_TIMEOUT = 10.0
SEND_TIMEOUT = 1.0
FLOOD_MESSAGES = 200  # per FLOOD_WINDOW seconds; a real client sends a handful
FLOOD_WINDOW = 1.0
CSS_EXTENSIONS = frozenset({".css"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico", ".bmp"})
HTML_EXTENSIONS = frozenset({".html", ".htm"})


class ProtocolError(Exception):
    """The peer broke the protocol badly enough that we close the connection."""

    def __init__(self, reason: str, code: int = 1008) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Sent:
    """What one change sent: how many pages reloaded, and how many swapped a stylesheet or an image in place.

    ``open_pages`` is how many pages were connected, so "no open page shows it" and "no page
    open" can be told apart.
    """

    reloaded: int = 0
    swapped: int = 0  # pages that swapped something in place (a page that swapped both counts once)
    css: int = 0
    images: int = 0
    open_pages: int = 0

    @property
    def pages(self) -> int:
        """How many pages were told to do something."""
        return self.reloaded + self.swapped

    def summary(self) -> str:
        """``reloaded 1 page``, ``css swapped in 2 pages``, ``no open page shows it``, ``no page open``."""
        parts = []
        if self.reloaded:
            parts.append(f"reloaded {_pages(self.reloaded)}")
        if self.css:
            parts.append(f"css swapped in {_pages(self.css)}")
        if self.images:
            parts.append(f"image swapped in {_pages(self.images)}")
        if parts:
            return ", ".join(parts)
        return "no open page shows it" if self.open_pages else "no page open"


def _pages(count: int) -> str:
    return f"{count} page" if count == 1 else f"{count} pages"


@dataclass(eq=False)
class Page:
    """One connected client and what we know of the page it shows."""

    websocket: WebSocket
    peer: str
    url: str | None = None
    page_file: str | None = None  # site-relative file the page shows
    wanted: frozenset[str] = frozenset()  # files a 404 page is waiting for
    listing: str | None = None  # site-relative folder whose listing the page shows
    resources: frozenset[str] | None = None  # site-relative files it loaded; None: reports nothing
    greeted: bool = False
    arrivals: list[float] = field(default_factory=list)
    # resource URL path -> file name, as resolved for an earlier report: a page reports its whole
    # list again every time it loads more (every 50 ms while a 300-module page loads)
    known: dict[str, str] = field(default_factory=dict)


class ReloadHub:
    """Tracks connected pages and sends each change to the pages it touches."""

    def __init__(self, resolver: SiteResolver | SiteMap | None, fallback: str | None = None) -> None:
        # Files are named by the URL path they are served at (execlib.server.mounts): a SiteMap
        # maps between the two across ROOT and its mounts (the mounts alone when no ROOT is served);
        # a lone resolver is ROOT alone; None: no folder is served.
        self.sites = SiteMap(resolver) if isinstance(resolver, SiteResolver) else resolver
        self.fallback = fallback
        self.pages: set[Page] = set()
        self.boot_id = os.urandom(16).hex()  # tells a restarted server's pages apart
        self.generation = 0
        self.error: tuple[str, str] | None = None  # the build overlay shown to new pages
        self.served: dict[str, tuple[int, int]] = {}  # page's file path -> (mtime_ns, size) when last served
        # True while changes are being held back (a burst in progress): they will be sent when it
        # ends, so a page that reconnects meanwhile must not be reloaded early as well.
        self.changes_pending: Callable[[], bool] = lambda: False
        self.handshake_timeout = HANDSHAKE_TIMEOUT
        # Proxy mode: a page or resource that no file of ROOT serves is the backend's, named by its
        # URL path (without the leading slash) so that a watched file can be matched to it.
        self.url_resources = False
        self.send_timeout = SEND_TIMEOUT

    # -- the WebSocket endpoint ---------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one client connection until it closes."""
        # Starlette's websockets module is imported by the caller, which made ``websocket``; the
        # functions below that name its exceptions only ever run for a connection (see app.py).
        from starlette.websockets import WebSocketDisconnect

        await websocket.accept()
        client = websocket.client
        page = Page(websocket, f"{client.host}:{client.port}" if client else "?")
        self.pages.add(page)
        try:
            await asyncio.wait_for(self._handshake(page), self.handshake_timeout)
            while True:
                await self._handle(page, await self._receive(page))
        except asyncio.TimeoutError:
            logger.info("livereload: %s never completed the handshake; closing", page.peer)
            await _close(websocket, 1008)
        except ProtocolError as error:
            logger.warning("livereload: closing %s: %s", page.peer, error)
            await _close(websocket, error.code)
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass  # the page went away (navigation, reload, closed tab)
        finally:
            self.pages.discard(page)

    async def _receive(self, page: Page) -> dict[str, Any]:
        from starlette.websockets import WebSocketDisconnect

        message = await page.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        now = time.monotonic()
        page.arrivals = [t for t in page.arrivals if now - t < FLOOD_WINDOW]
        page.arrivals.append(now)
        if len(page.arrivals) > FLOOD_MESSAGES:
            raise ProtocolError("too many messages (flood)")
        if message.get("text") is None:
            raise ProtocolError("binary frames are not part of the protocol", 1003)
        text = message["text"]
        if len(text) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"message of {len(text)} bytes is over the {MAX_MESSAGE_BYTES} byte cap", 1009)
        try:
            data = json.loads(text)
        except ValueError:
            logger.warning("livereload: ignoring malformed JSON from %s", page.peer)
            return {}
        except RecursionError:
            # Nested deeper than the parser can go: too big to process, like an over-long message.
            # Caught here, since serve() takes any other RuntimeError for a page that went away.
            raise ProtocolError("message nested too deeply", 1009) from None
        if not isinstance(data, dict):
            logger.warning("livereload: ignoring a non-object message from %s", page.peer)
            return {}
        if not isinstance(data.get("command") or "", str):
            # Commands are names; anything else would only be logged (with repr, and so recursion).
            logger.warning("livereload: ignoring a message whose command is not a string from %s", page.peer)
            return {}
        return data

    async def _handshake(self, page: Page) -> None:
        while not page.greeted:
            data = await self._receive(page)
            if data.get("command") == "hello":
                protocols = data.get("protocols")
                if not isinstance(protocols, list) or PROTOCOL_7 not in protocols:
                    raise ProtocolError("the client does not speak LiveReload protocol 7")
                page.greeted = True
                await page.websocket.send_text(
                    json.dumps(
                        {
                            "command": "hello",
                            "protocols": [PROTOCOL_7],
                            "serverName": "execlib",
                            "execlibBoot": self.boot_id,
                            "execlibGeneration": self.generation,
                        }
                    )
                )
            elif data:
                logger.info("livereload: %s sent %r before hello; ignored", page.peer, data.get("command"))

    async def _handle(self, page: Page, data: dict[str, Any]) -> None:
        command = data.get("command")
        if command == "info":
            first = page.url is None
            self._learn(page, data)
            if first and self.error is not None:
                await self._send(page, _error_message(*self.error))
            if first and self._is_stale(page):
                # The page was fetched before its file changed (the edit raced its reload).
                logger.debug("livereload: %s shows a page changed since it was served; reloading", page.peer)
                await self._send(page, self._reload_message("/" + (page.page_file or "")))
        elif command == "hello":
            pass  # a repeated hello changes nothing
        elif command is not None:
            logger.debug("livereload: ignoring unknown command %r from %s", command, page.peer)

    # -- what a page shows ----------------------------------------------------------------

    def _learn(self, page: Page, data: dict[str, Any]) -> None:
        url = data.get("url")
        resources = data.get("resources")
        if isinstance(resources, list):
            page.resources = frozenset(self._files_for(page, resources[:5000]))
        if isinstance(url, str) and url != page.url:
            path = urlsplit(url).path or "/"
            if len(path) > MAX_TARGET_BYTES:
                # The server answers such a URL 414, so no page of ours shows it; whatever the
                # client claims, resolving it would only cost time on the loop.
                page.page_file, page.wanted, page.listing = None, frozenset(), None
            else:
                page.page_file, page.wanted = self._page_files(path)
                page.listing = self._listing_for(path) if page.page_file is None else None
            # Set last: another thread that sees a page's URL (a test, a tool reading hub.pages)
            # then sees the file it shows and the files it uses too. A stylesheet deleted just after
            # the page was seen was once missed: its name was not yet resolved, and then not found.
            page.url = url

    def _files_for(self, page: Page, resources: list[object]) -> set[str]:
        """The file names of a page's resources; each URL is resolved once per page (the rest of the
        list is known from its earlier reports), not on every report: resolving is a stat or more,
        on the loop that serves the very requests the page is making."""
        known = page.known
        files = set()
        for resource in resources:
            if not isinstance(resource, str):
                continue
            name = known.get(resource)
            if name is None:
                name = self._file_for(resource)
                if name is None:
                    continue  # not a file (yet): asked again in the next report
                if len(known) < 5000:
                    known[resource] = name
            files.add(name)
        return files

    def _page_files(self, path: str) -> tuple[str | None, frozenset[str]]:
        """(file the page shows, files a 404 page waits for), both by the static sites' own rules."""
        if self.sites is None:
            return None, frozenset()
        shown = self._file_for(path)
        if shown is not None:
            return shown, frozenset()
        wanted = self.sites.wanted_files(path)
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if wanted and self.fallback and "." not in last and not self.sites.split(path)[0]:  # mounts have no fallback
            return self.fallback, wanted
        return None, wanted

    def _listing_for(self, path: str) -> str | None:
        if self.sites is None or not path.endswith("/"):
            return None
        try:
            target, name = self.sites.resolve(path)
        except BadPath:
            return None
        return name if target.kind is Kind.DIRECTORY else None

    def _file_for(self, url_path: str) -> str | None:
        if len(url_path) > MAX_TARGET_BYTES:  # a URL the server would answer 414
            return None
        found = self.sites.page_file(url_path) if self.sites is not None else None
        if found is None and self.url_resources and url_path.startswith("/"):
            return url_path.lstrip("/") or None
        return found

    def _is_stale(self, page: Page) -> bool:
        if page.page_file is None or self.sites is None or self.changes_pending():
            return False
        fs_path = self.sites.fs_path(page.page_file)
        served = self.served.get(fs_path) if fs_path is not None else None
        if fs_path is None or served is None:
            return False
        try:
            st = os.stat(fs_path)
        except OSError:
            return False
        return (st.st_mtime_ns, st.st_size) != served

    def record_served(self, fs_path: str, st: os.stat_result) -> None:
        """Called by the static site (ROOT's or a mount's) when it serves an HTML page."""
        # keyed by the path the site served it from, which is the path SiteMap.fs_path gives its name
        self.served[fs_path] = (st.st_mtime_ns, st.st_size)

    # -- changes ----------------------------------------------------------------------

    async def changed(self, names: Iterable[str], external: bool = False, deleted: Iterable[str] = ()) -> Sent:
        """Tell pages about changed files (site-relative names); returns what was sent (``Sent``).

        ``deleted`` names those of ``names`` that no longer exist: a page that
        used a deleted stylesheet, image or script reloads itself (naming its
        own path), since there is nothing left to swap in.
        """
        names = list(dict.fromkeys(n.replace(os.sep, "/").lstrip("/") for n in names))
        gone = frozenset(n.replace(os.sep, "/").lstrip("/") for n in deleted)
        greeted = [page for page in list(self.pages) if page.greeted]
        if not names and not external:
            return Sent(open_pages=len(greeted))
        self.generation += 1
        sends = []
        kinds: list[str] = []  # per send: "reload", "css", "img", "css+img" or "" (nothing for that page)
        for page in greeted:
            messages = self._messages_for(page, names, external, gone)
            if not messages:
                messages = [{"command": "execlib-generation", "execlibGeneration": self.generation}]
                sends.append(self._send_many(page, messages, count=False))
                kinds.append("")
            else:
                logger.debug("livereload: %s <- %s", page.url, [m.get("path") for m in messages])
                sends.append(self._send_many(page, messages))
                kinds.append(_kind_of(messages))
        results = await asyncio.gather(*sends)
        told = [kind for kind, ok in zip(kinds, results, strict=True) if ok]
        return Sent(
            reloaded=told.count("reload"),
            swapped=sum(1 for kind in told if kind not in ("reload", "")),
            css=sum(1 for kind in told if "css" in kind),
            images=sum(1 for kind in told if "img" in kind),
            open_pages=len(greeted),
        )

    def _messages_for(self, page: Page, names: list[str], external: bool, gone: frozenset[str]) -> list[dict[str, Any]]:
        if external:
            return [self._reload_message(_page_path(page))]
        live: list[dict[str, Any]] = []
        for name in names:
            ext = posixpath.splitext(name)[1].lower()
            touched = (
                page.resources is None
                or name == page.page_file
                or name in page.wanted
                or name in page.resources
                or (page.listing is not None and posixpath.dirname(name) == page.listing)
                or (name == "404.html" and bool(page.wanted))
            )
            if not touched:
                continue
            if name in gone and ext not in HTML_EXTENSIONS:
                return [self._reload_message(_page_path(page))]  # nothing left to swap in: reload the page
            if ext in CSS_EXTENSIONS or ext in IMAGE_EXTENSIONS:
                live.append(self._reload_message("/" + name))
            else:
                return [self._reload_message("/" + name)]  # one full reload covers everything else
        return live

    def _reload_message(self, path: str) -> dict[str, Any]:
        return {
            "command": "reload",
            "path": path,
            "liveCSS": True,
            "liveImg": True,
            "execlibGeneration": self.generation,
        }

    async def reload_all(self) -> Sent:
        return await self.changed([], external=True)

    async def alert(self, message: str) -> int:
        return await self.broadcast({"command": "alert", "message": message})

    async def show_error(self, title: str, text: str) -> int:
        self.error = (title, text)
        return await self.broadcast(_error_message(title, text))

    async def clear_error(self) -> int:
        self.error = None
        return await self.broadcast({"command": "execlib-clear-error"})

    async def broadcast(self, message: dict[str, Any]) -> int:
        results = await asyncio.gather(*(self._send(p, message) for p in list(self.pages) if p.greeted))
        return sum(1 for r in results if r)

    async def _send_many(self, page: Page, messages: list[dict[str, Any]], count: bool = True) -> bool:
        for message in messages:
            if not await self._send(page, message):
                return False
        return count

    async def _send(self, page: Page, message: dict[str, Any]) -> bool:
        """Send with a deadline: a client that vanished without closing must not delay the others."""
        from starlette.websockets import WebSocketDisconnect

        try:
            await asyncio.wait_for(page.websocket.send_text(json.dumps(message)), self.send_timeout)
            return True
        except asyncio.TimeoutError:
            logger.warning("livereload: %s took no message within %s s; dropping it", page.peer, self.send_timeout)
            self.pages.discard(page)
            await _close(page.websocket, 1001)
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            self.pages.discard(page)
        return False


def _kind_of(messages: list[dict[str, Any]]) -> str:
    """What a page's messages make it do: a full "reload", or swap "css" and/or "img" in place."""
    kinds = set()
    for message in messages:
        ext = posixpath.splitext(message.get("path") or "")[1].lower()
        if ext in CSS_EXTENSIONS:
            kinds.add("css")
        elif ext in IMAGE_EXTENSIONS:
            kinds.add("img")
        else:
            return "reload"
    return "+".join(sorted(kinds))


def _page_path(page: Page) -> str:
    return (page.url and urlsplit(page.url).path) or "/"


def _error_message(title: str, text: str) -> dict[str, Any]:
    return {"command": "execlib-error", "title": title, "text": text}


async def _close(websocket: WebSocket, code: int) -> None:
    from starlette.websockets import WebSocketDisconnect, WebSocketState

    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    try:
        await asyncio.wait_for(websocket.close(code), SEND_TIMEOUT)
    except (asyncio.TimeoutError, RuntimeError, ConnectionError, WebSocketDisconnect):
        pass
