"""Server: serves a folder (and a FastAPI app, if a tool adds routes) on an event loop it manages,
with a backend (uvicorn, or Hypercorn: server/backends) speaking HTTP.

Threading model (docs/design.rst, "Threads and loops"): ``start()`` blocks the calling thread and
runs the backend's ``serve()`` with ``run_until_complete``; ``shutdown()`` is
safe from any thread, from a signal handler, twice, or before ``start()``. It
stops managed listeners first, then calls the backend's ``request_exit()`` through
``loop.call_soon_threadsafe``. We bind the socket ourselves so that a taken
port raises ``PortInUseError`` in the caller instead of the backend's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..config import OPTION_NAMES, HeadersOption, ServerConfig
from ..errors import AppError, BindError, ConfigError, PortInUseError
from ..fspath import given_path
from ..listener import Listener, ListenerDiedError
from ..netaddrs import url_for
from ..runloop import BlockingService, close_loop, install_shutdown_signals, loop_name, new_loop
from . import backends
from .app import Dispatcher, build_asgi
from .arguments import check_runtime_arguments
from .backends import BackendOptions, ServerBackend, TLSFilesLike, choose_backend, create_backend
from .build import BuildTarget
from .filecache import FileCache
from .limits import HEADER_TIMEOUT, MAX_HEADER_BYTES, raise_open_file_limit
from .livereload import ReloadHub, Sent
from .mounts import MountedSites, SiteMap
from .static import StaticSite
from .watching import ReloadController, build_reload_listener, run_on_loop

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp

    from ..app.mode import AppMode
    from ..proxy.forward import ProxyApp

logger = logging.getLogger("execlib.server")


class ListenerFailedError(ListenerDiedError):
    """A managed listener died for good; the server shut down rather than run without watching.

    A ListenerDiedError, like ListenerServer's: one ``except`` catches a dead listener whichever ran it.
    """


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; raises PortInUseError or BindError with one-line reasons."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range: use 0-65535 (0 picks a free port)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(host, port, f"unknown host ({exc.strerror})") from None
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(host, port) from None
        raise BindError(host, port, exc.strerror or str(exc)) from None
    return sock


class Server(BlockingService):
    """A development server for one folder, startable and stoppable from any thread.

    ``root`` is the folder to serve. ``port=0`` lets the OS pick a free port
    (read it back from ``bound_addr`` or ``url``). ``managed_listeners`` are
    started with the server, get the server's loop for their async callbacks,
    and are stopped first on shutdown. ``pre_serve`` is called with the Server
    once the socket is bound, before requests are served. ``mounts`` serves other folders at URL
    prefixes (``{"/assets": "../shared"}``, or ``"PREFIX=DIR"`` strings), watched like ``root``.
    ``header_timeout`` (seconds) and ``max_header_bytes`` bound each request head: a client
    slower than that gets 408 (or is closed, if it sent nothing), one larger gets 431.
    ``clean_urls`` serves ``/about`` from ``about.html`` when no file or folder ``about`` answers
    it (docs/static.rst has the precedence). ``headers``
    (``"Name: value"`` strings, or a dict) are added to every response; ``cors`` adds permissive
    CORS headers and answers preflights. ``proxy`` (a backend's URL) puts the server in front of
    another one: what ROOT has no file for goes to it (docs/proxy.rst); pass ``static=False`` to
    send it every path. ``proxy_host_header`` ("preserve" or "rewrite") is the ``Host`` it is
    told, ``proxy_timeout`` how many seconds a request waits for it to accept a connection.
    ``https`` serves over TLS with a certificate from execlib's local CA, ``ssl_certfile`` (with
    ``ssl_keyfile``, ``ssl_keyfile_password``) with the user's own; ``tls`` holds the files served,
    and ``url`` starts with ``https://`` (docs/https.rst).

    ``app`` (``"module:attribute"``) serves the user's ASGI or WSGI app from supervised worker
    processes (``workers``), restarted when its Python files change (``reload``), or those
    under ``reload_dirs``; what ROOT and the mounts have no file for goes to it (docs/app.rst).
    """

    _log = logger

    def __init__(
        self,
        root: str | os.PathLike[str] = ".",
        host: str = "127.0.0.1",
        port: int = 8000,
        static: bool = True,
        livereload: bool = True,
        managed_listeners: Iterable[Listener] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        follow_symlinks: bool = False,
        fallback: str | None = None,
        clean_urls: bool = False,
        pre_serve: Callable[[Server], None] | None = None,
        handle_signals: bool = True,
        graceful_timeout: float = 1.0,
        watch: Iterable[str | os.PathLike[str]] = (),
        ignore: Iterable[str] = (),
        delay: float = 0,
        poll: bool | None = None,
        gitignore: bool = False,
        build: BuildTarget | None = None,
        build_timeout: float | None = None,
        build_on_start: bool = False,
        warnings_as_errors: bool = False,
        header_timeout: float = HEADER_TIMEOUT,
        max_header_bytes: int = MAX_HEADER_BYTES,
        mounts: Iterable[str | tuple[str, str | os.PathLike[str]]] | Mapping[str, str | os.PathLike[str]] = (),
        event_loop: str = "auto",
        headers: HeadersOption = (),
        cors: bool = False,
        proxy: str | None = None,
        proxy_host_header: str = "preserve",
        proxy_timeout: float = 5.0,
        https: bool = False,
        ssl_certfile: str | os.PathLike[str] | None = None,
        ssl_keyfile: str | os.PathLike[str] | None = None,
        ssl_keyfile_password: str | None = None,
        backend: str = "auto",
        http2: bool = False,
        app: Any = None,
        app_dir: str | os.PathLike[str] | None = None,
        factory: bool = False,
        reload: bool | None = None,
        reload_dirs: Iterable[str | os.PathLike[str]] | str = (),
        workers: int = 1,
        interface: str = "auto",
        app_startup_timeout: float = 30.0,
        config: ServerConfig | None = None,
    ) -> None:
        # locals() holds exactly the arguments at this point: every one is checked before any is used
        arguments = locals()
        check_runtime_arguments(arguments)
        config = _config_of(arguments, config)
        self.config = config
        # Kept as given: a root reached through a symlink is served (and watched) wherever it points now.
        self.root = given_path(config.root)
        shown_root = os.fspath(config.root)
        if config.build is not None and not os.path.lexists(self.root):
            _create_output_folder(self.root, shown_root)  # a project never built yet: the build fills it
        _check_readable_folder(self.root, shown_root)
        fallback = config.fallback
        if fallback is not None and not os.path.isfile(os.path.join(self.root, fallback)):
            raise ConfigError(f"fallback file not found: {fallback} (relative to {self.root})")
        self.host = config.host
        self.port = config.port
        # before binding: a bad certificate is a one-line error, and the local CA exists once serving
        #: the certificate files served with (HTTPS), or None: plain HTTP
        self.tls: TLSFilesLike | None = backends.tls_of(config)  # through the module: replaceable
        #: which HTTP server serves: "uvicorn" or "hypercorn" (``backend="auto"`` resolved)
        self.backend = choose_backend(config, self.tls)
        self.livereload = livereload = config.livereload
        self.managed_listeners: list[Listener] = list(managed_listeners or [])
        self.pre_serve = pre_serve
        self.handle_signals = config.handle_signals
        self.graceful_timeout = config.graceful_timeout
        self.header_timeout = config.header_timeout
        self.max_header_bytes = config.max_header_bytes
        self.event_loop = config.event_loop
        self.fatal_error: BaseException | None = None
        self.watch = [os.fspath(path) for path in config.watch]  # ServerConfig made them str already
        self.ignore = tuple(config.ignore)
        self.delay = config.delay
        self.poll = config.poll
        self.gitignore = config.gitignore
        build, build_timeout, warnings_as_errors = config.build, config.build_timeout, config.warnings_as_errors

        self.mounts: tuple[tuple[str, str], ...] = tuple(config.mounts)  # type: ignore[arg-type]  # checked pairs
        self.static_site = (
            StaticSite(
                self.root,
                follow_symlinks=config.follow_symlinks,
                fallback=fallback,
                inject=livereload,
                clean_urls=config.clean_urls,
            )
            if config.static
            else None
        )
        # One StaticSite per mount, sharing ROOT's file cache and its 404 page. With no ROOT
        # (static=False: proxy mode without one) the mounts are served alone, sharing a cache of
        # their own, with execlib's 404 page: nothing of the current folder is served.
        self._file_cache = self.static_site.cache if self.static_site is not None else FileCache()
        self.mount_sites = [
            StaticSite(
                folder,
                follow_symlinks=config.follow_symlinks,
                inject=livereload,
                cache=self._file_cache,
                prefix=prefix,
                not_found_page=self.static_site.not_found_page if self.static_site is not None else "",
                clean_urls=config.clean_urls,
            )
            for prefix, folder in self.mounts
        ]
        served = [site for site in (self.static_site, *self.mount_sites) if site is not None]
        self.build_on_start = config.build_on_start
        # The hub maps page URLs to files with the static sites' own resolvers (mounts and clean
        # URLs included), so a page is reloaded for exactly the file it was served.
        sites = (
            SiteMap(
                self.static_site.resolver if self.static_site is not None else None,
                [(site.prefix, site.resolver) for site in self.mount_sites],
            )
            if served
            else None
        )
        self.hub = ReloadHub(sites, fallback=fallback)
        self.hub.url_resources = config.proxy is not None  # the backend's URLs are names too
        self.controller = ReloadController(
            self.hub,
            self.root,
            build=build,
            build_timeout=build_timeout,
            warnings_as_errors=warnings_as_errors,
            mounts=self.mounts,
            # proxy or app mode without ROOT: ROOT is not served, so it is not watched (the mounts are)
            watch_root=(config.proxy is None and config.app is None) or self.static_site is not None,
        )
        self.controller.match_resources = config.proxy is not None
        if livereload and served:
            for site in served:
                site.on_html_served = self.hub.record_served
            self.controller.known_digest = self._file_cache.digest_of
        files: ASGIApp | None = self.static_site
        if self.mount_sites:
            files = MountedSites(self.static_site, self.mount_sites)
        self.proxy = _proxy_app(config, sites, inject=livereload)
        #: app mode (docs/app.rst): the user's app in supervised workers, forwarded to like a backend
        self.app_mode = _app_mode(config, self.hub if livereload else None, self._app_failed)
        self.hub.url_resources = self.hub.url_resources or self.app_mode is not None
        self.controller.match_resources = self.controller.match_resources or self.app_mode is not None
        # FastAPI is built only if someone reads server.app (see the property)
        self.dispatcher = Dispatcher(
            self.root,
            files,
            self.hub if livereload else None,
            inject=livereload,
            proxy=self.app_mode.front if self.app_mode is not None else self.proxy,
            serves_file=sites.serves_file if sites is not None else None,
        )
        self.headers = tuple(map(str, config.headers))  # "Name: value" strings: ServerConfig made them so
        self.asgi = build_asgi(self.dispatcher, self.headers, cors=config.cors)
        self._own_listeners: list[Listener] = []

        self._loop_arg = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backend: ServerBackend | None = None
        self._socket: socket.socket | None = None
        self._bound: tuple[str, int] | None = None
        self._lock = threading.RLock()
        self._shutdown_requested = False
        self._started = False
        self._ready = threading.Event()
        self._not_ready = 1  # what ready still waits for (see _serving_started)
        # its own lock: the watch set-up holds self._lock while the loop may count a part ready
        self._ready_count_lock = threading.Lock()
        self._app_settled = threading.Event()  # app mode: the first generation answered or failed
        self._startup_built = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._watcher: threading.Thread | None = None  # sets watching up once serving (see start())
        self._background: set[asyncio.Task[None]] = set()

    # -- addresses ----------------------------------------------------------------

    @property
    def bound_addr(self) -> tuple[str, int] | None:
        """The actual (host, port) the server bound to, or None if not yet started.

        The port is the OS's choice when ``port`` was 0. Set by ``bind()``, ``start()`` or
        ``start_in_thread()``, and kept after shutdown.
        """
        return self._bound

    @property
    def url(self) -> str:
        """``http://host:port/`` of the bound socket (``https://`` with TLS; IPv6 hosts in brackets).

        Raises RuntimeError before the socket is bound.
        """
        bound = self._bound
        if bound is None:
            raise RuntimeError("the server is not bound yet; call bind(), start() or start_in_thread() first")
        return url_for(bound[0], bound[1], self.scheme)

    @property
    def scheme(self) -> str:
        """``https`` when the server speaks TLS (``https``, ``ssl_certfile``), else ``http``."""
        return "https" if self.tls is not None else "http"

    @property
    def loop_name(self) -> str | None:
        """Which event loop serves, "uvloop" or "asyncio"; None before ``start()`` has made it."""
        loop = self._loop
        return loop_name(loop) if loop is not None else None

    @property
    def app(self) -> FastAPI:
        """The FastAPI app for a tool's own routes; requests its routes match go to it.

        Built, and FastAPI imported, on first read: ``execlib serve`` never needs it, and it is
        most of a server's start-up time and memory. Read it before ``start()`` for its startup
        and shutdown handlers to run.
        """
        return self.dispatcher.api

    def bind(self) -> None:
        """Bind the listening socket now (start() does it otherwise). Raises PortInUseError."""
        with self._lock:
            if self._socket is None:
                self._socket = bind_socket(self.host, self.port)
                addr = self._socket.getsockname()
                self._bound = (addr[0], addr[1])

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Serve until shutdown(); blocks. Returns at once if shutdown() came first."""
        with self._lock:
            if self._started:
                raise RuntimeError("this Server was already started; create a new one")
            self._started = True
            if self._shutdown_requested:
                self._close_socket()
                self._finished.set()
                return
            try:
                self.bind()
            except BaseException:
                self._finished.set()
                raise
            raise_open_file_limit()  # idle connections must not run the process out of descriptors
            loop = self._loop_arg or new_loop(self.event_loop)
            self._loop = loop
            options = BackendOptions(
                header_timeout=self.header_timeout,
                max_header_bytes=self.max_header_bytes,
                graceful_timeout=self.graceful_timeout,
                tls=self.tls,
                http2=self.config.http2,
            )
            sock = self._socket
            assert sock is not None  # bound above
            self._backend = create_backend(self.backend, self.asgi, sock, options, self._serving_started)
            if not self._watch_before_serving():
                self._watcher = threading.Thread(
                    target=self._watch_while_serving, args=(loop,), name="execlib-watch-setup", daemon=True
                )

        restore_signals = install_shutdown_signals(self.handle_signals, self.shutdown)
        try:
            if self._watcher is None:
                self._start_watching(loop)
                self._build_on_start(loop)
            self._startup_built.set()
            if self.pre_serve is not None:
                self.pre_serve(self)
            if not self._shutdown_requested and self._socket is not None:
                loop.run_until_complete(self._backend.serve())
        finally:
            self._startup_built.set()
            if self._watcher is not None and self._watcher.is_alive():
                self._watcher.join()  # it sees the shutdown and starts nothing more
            self._stop_listeners()
            self.controller.gate.close()  # its timer lives on this loop; a restart starts afresh
            self._close_builder(loop)
            self._close_proxy(loop)
            self._close_app(loop)
            restore_signals()
            close_loop(loop, owned=self._loop_arg is None)
            self._close_socket()
            self._ready.set()
            self._finished.set()
        if isinstance(self.fatal_error, AppError):
            raise self.fatal_error  # one line for the terminal, already (the app's traceback was logged)
        if self.fatal_error is not None:
            raise ListenerFailedError(f"stopped serving: {self.fatal_error}")

    # Watching is set up while the first requests are served, when nothing needs it before:
    # importing and compiling the watch rules and starting inotify is a fifth of the time from
    # launch to the first response. Ready (``start_in_thread()``, the banner) still means
    # watching; a file served before watching began and changed before then is announced once
    # it has (``_catch_up``). A build on start keeps the order watch, build, serve: changes made
    # during the build must not be lost, and nothing is served before it anyway.

    def _watch_before_serving(self) -> bool:
        return self.build_on_start and self.controller.build_target is not None

    def _start_watching(self, loop: asyncio.AbstractEventLoop) -> None:
        # proxy mode with neither ROOT nor --watch paths has nothing to watch
        app = self.app_mode if self.app_mode is not None and self.app_mode.reload else None
        something = bool(self.controller.folders or self.watch or app)
        if something and (self.livereload or self.controller.build_target is not None or app):
            self._own_listeners.append(
                build_reload_listener(
                    self.controller,
                    extra_watch=self.watch,
                    ignore=self.ignore,
                    delay_ms=self.delay,
                    poll=self.poll,
                    gitignore=self.gitignore,
                    app_code=(app.folders, app.files_changed) if app is not None else None,
                )
            )
        self._start_listeners(loop)

    def _build_on_start(self, loop: asyncio.AbstractEventLoop) -> None:
        builder = self.controller.ensure_builder()
        if builder is not None and self.build_on_start and not self._shutdown_requested:
            # Through the runner, like every other build: a change the listeners report meanwhile
            # waits for it (one more build after it), never runs beside it.
            loop.run_until_complete(builder.build_now())

    def _serving_started(self) -> None:
        """The backend accepts connections (on the loop): ready now, or once watching is set up
        (and, in app mode, once the app's first workers answer or have failed)."""
        if self.proxy is not None:
            # not awaited: a backend that is not up yet is a warning, and serving starts regardless
            self._in_background(self.proxy.status.check_at_start())
        self._not_ready = 1 + (self._watcher is not None) + (self.app_mode is not None)
        if self.app_mode is not None:
            self._in_background(self._start_app(self.app_mode))
        if self._watcher is not None:
            self._watcher.start()
        self._part_ready()

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _part_ready(self) -> None:
        """One of the things ready waits for is done (serving, watching, the app's first workers)."""
        with self._ready_count_lock:
            self._not_ready -= 1
            if self._not_ready <= 0:
                self._ready.set()

    async def _start_app(self, app_mode: AppMode) -> None:
        try:
            await app_mode.start()
        finally:
            self._app_settled.set()
            self._part_ready()

    def _app_failed(self, error: BaseException) -> None:
        """App mode cannot go on (no such module; a failure with reload off): stop; run() raises it."""
        self.fatal_error = error
        threading.Thread(target=self.shutdown, name="execlib-app-failed", daemon=True).start()

    def _watch_while_serving(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            with self._lock:  # shutdown() waits for this, then stops what it started
                if self._shutdown_requested:
                    return
                self._start_watching(loop)
            self._catch_up(loop)
        except Exception as error:
            self._listener_failed(error)
        finally:
            self._part_ready()

    def _catch_up(self, loop: asyncio.AbstractEventLoop) -> None:
        """Announce the files served before watching began that have changed since they were served."""
        if not self.livereload or (self.static_site is None and not self.mount_sites):
            return
        events = self.controller.served_events(self._file_cache.stale_paths())  # ROOT's and the mounts'
        if events:
            run_on_loop(loop, self.controller.site_changed(events))

    def start_in_thread(self, timeout: float = 10.0) -> Server:
        """Start in a background thread; return once requests are being served and files watched.

        Bind errors (PortInUseError) are raised here, in the caller's thread.
        ``timeout`` bounds the start-up itself; a ``build_on_start`` build is
        waited for on top of it (bounded by ``build_timeout``), and so are app
        mode's first workers (bounded by ``app_startup_timeout``).
        """
        self.bind()
        port = self._bound[1] if self._bound is not None else self.port
        self._start_thread(f"execlib-server-{port}", timeout, "the server")
        return self

    def _before_ready_wait(self) -> None:
        if self.build_on_start and self.controller.build_target is not None:
            self._startup_built.wait()  # set even when start() fails before or during the build
        if self.app_mode is not None:
            # the app's first workers are waited for on top of ``timeout``, as long as they may take
            self._app_settled.wait(self.config.app_startup_timeout + 5)

    def _thread_ended(self) -> None:
        self._startup_built.set()  # never leave the caller waiting on a build that won't come
        self._app_settled.set()

    def shutdown(self) -> None:
        """Stop serving: listeners first, then the backend. Safe from any thread, any number of times."""
        with self._lock:
            first = not self._shutdown_requested
            self._shutdown_requested = True
            loop, backend = self._loop, self._backend
        if first:
            self._stop_listeners()
        if loop is not None and backend is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed: serving is over
                loop.call_soon_threadsafe(backend.request_exit)

    # -- hooks and talking to pages (any thread) ------------------------------------------

    def on_change(self, callback: Callable[[list[Any]], object]) -> Callable[[list[Any]], object]:
        """Call ``callback(events)`` with each coalesced batch of file events, before any build runs.

        Async callbacks run on the server's loop, sync ones in a worker thread. Usable as a decorator.
        """
        self.controller.hooks.append(callback)
        return callback

    def reload(self, paths: Iterable[str | os.PathLike[str]] | None = None) -> int:
        """Reload the pages that ``paths`` touch (all pages when None); returns pages told."""
        if paths is None:
            return run_on_loop(self._loop, _pages(self.hub.reload_all())) or 0
        names: list[str] = []
        for path in paths:
            text = os.fspath(path)
            if not os.path.isabs(text):
                names.append(text.replace(os.sep, "/"))  # a URL path, or a name relative to ROOT
                continue
            served = self.controller.names_of_path(text)  # a file of ROOT or of a mount
            if not served:
                return run_on_loop(self._loop, _pages(self.hub.reload_all())) or 0
            names.extend(served)
        return run_on_loop(self._loop, _pages(self.hub.changed(names))) or 0

    def alert(self, message: str) -> int:
        """Show a message in every open page (LiveReload ``alert``)."""
        return run_on_loop(self._loop, self.hub.alert(message)) or 0

    def show_error(self, title: str, text: str) -> int:
        """Show the error overlay in every open page (and in pages opened later) until cleared."""
        return run_on_loop(self._loop, self.hub.show_error(title, text)) or 0

    def clear_error(self) -> int:
        """Remove the error overlay."""
        return run_on_loop(self._loop, self.hub.clear_error()) or 0

    # -- listeners ------------------------------------------------------------------------

    @property
    def _all_listeners(self) -> list[Listener]:
        return [*self._own_listeners, *self.managed_listeners]

    def _close_builder(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop the build's helper process (a warm build) on the loop it was started on."""
        if self.controller.builder is None or loop.is_closed():
            return
        try:
            loop.run_until_complete(self.controller.aclose())
        except Exception:
            logger.exception("stopping the build's helper process failed")

    def _close_proxy(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the connections to the backend on the loop that made them."""
        if self.proxy is None or loop.is_closed():
            return
        try:
            loop.run_until_complete(self.proxy.aclose())
        except Exception:
            logger.exception("closing the connections to the backend failed")

    def _close_app(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drain and stop the app's workers on the loop that started them."""
        if self.app_mode is None or loop.is_closed():
            return
        try:
            loop.run_until_complete(self.app_mode.aclose())
        except Exception:
            logger.exception("stopping the app's workers failed")

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def _pages(sending: Awaitable[Sent]) -> int:
    """How many pages a change was sent to (what ``Server.reload()`` returns)."""
    return (await sending).pages


def _config_of(arguments: dict[str, Any], config: ServerConfig | None) -> ServerConfig:
    """``config``, or the ServerConfig the keyword arguments make (checking them all)."""
    options = {name: arguments[name] for name in OPTION_NAMES}
    if config is None:
        return ServerConfig(**options)
    if not isinstance(config, ServerConfig):
        raise ConfigError("must be a ServerConfig", option="config", value=config)
    defaults = ServerConfig.__dataclass_fields__
    given = [
        name
        for name, value in options.items()
        if value is not defaults[name].default and value != defaults[name].default
    ]
    if given:
        # two sources for one option: which would win is a guess, so neither does
        raise TypeError(f"Server(): pass {', '.join(given)} in config=ServerConfig(...), not beside it")
    return config


def _proxy_app(config: ServerConfig, sites: SiteMap | None, *, inject: bool) -> ProxyApp | None:
    if config.proxy is None:
        return None
    from ..proxy.backend import parse_backend
    from ..proxy.forward import ProxyApp  # httpcore: imported in proxy mode only (start-up time)

    return ProxyApp(
        parse_backend(config.proxy),
        rewrite_host=config.proxy_host_header == "rewrite",
        timeout=config.proxy_timeout,
        inject=inject,
    )


def _app_mode(config: ServerConfig, hub: ReloadHub | None, on_fatal: Callable[[BaseException], None]) -> AppMode | None:
    if config.app is None:
        return None
    from ..app.mode import AppMode  # the proxy (httpcore) and the supervisor: app mode only

    return AppMode(config, hub, on_fatal=on_fatal)


def _create_output_folder(path: str, shown: str) -> None:
    """Create the folder a build writes into, saying so: ``--build-on-start`` on a fresh project."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {shown}: {exc.strerror or exc}") from None
    logging.getLogger("execlib.build").info("created %s: the build writes the site there", shown)


def _check_readable_folder(path: str, shown: str) -> None:
    """Raise ConfigError unless the server's user may list ``path`` and enter it.

    Otherwise every request would be a 404 (or a 403) with nothing saying why; better to refuse at
    start with the reason. Tried for real rather than asked of ``os.access``, which answers for
    the real user id, not the effective one the server reads files with.
    """
    try:
        with os.scandir(path):  # listing needs read permission
            pass
        os.stat(os.path.join(path, os.curdir))  # looking anything up inside needs search (x)
    except OSError as exc:
        reason = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        raise ConfigError(f"cannot read folder {shown}: {reason}") from None
