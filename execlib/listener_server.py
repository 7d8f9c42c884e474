"""ListenerServer: runs file listeners without HTTP, with the same lifecycle as ``Server``.

``start()`` blocks the calling thread on an asyncio loop that the listeners'
``async def`` callbacks run on, until ``shutdown()`` (from any thread, a
signal handler, twice, or before ``start()``), SIGINT/SIGTERM (when started
in the main thread), or a listener spending its restart budget, which makes
``start()`` raise ``ListenerDiedError`` once everything is stopped.

This module must stay free of uvicorn, FastAPI and Starlette.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable

from .listener import Listener, ListenerDiedError
from .runloop import BlockingService, close_loop, install_shutdown_signals

logger = logging.getLogger("execlib.listener")


class ListenerServer(BlockingService):
    """Runs ``managed_listeners`` until shut down; their async callbacks run on this server's loop.

    ``stop_timeout`` is passed to each listener's ``stop()`` (None: the
    listener's own). ``before_stop`` is called first when stopping, in the
    thread that runs ``start()``.
    """

    _log = logger

    def __init__(
        self,
        managed_listeners: Iterable[Listener],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        handle_signals: bool = True,
        stop_timeout: float | None = None,
        pre_serve: Callable[[ListenerServer], None] | None = None,
    ) -> None:
        self.managed_listeners = list(managed_listeners)
        self.handle_signals = handle_signals
        self.stop_timeout = stop_timeout
        #: called with the server once every listener is watching (e.g. to print a banner)
        self.pre_serve = pre_serve
        #: the error that made a listener give up, once one has
        self.fatal_error: BaseException | None = None
        self._loop_arg = loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._lock = threading.RLock()  # re-entrant: shutdown() may run in a signal handler on a locked thread
        self._started = False
        self._shutdown_requested = False
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        #: called (in the thread that runs start()) right before the listeners are stopped
        self.before_stop: Callable[[], None] | None = None

    def start(self) -> None:
        """Start the listeners and block until shutdown; raises ListenerDiedError if a listener gave up."""
        with self._lock:
            if self._started:
                raise RuntimeError("this ListenerServer was already started; create a new one")
            self._started = True
            if self._shutdown_requested:
                self._ready.set()
                self._finished.set()
                return
            loop = self._loop_arg or asyncio.new_event_loop()
            self._loop = loop
        restore_signals = install_shutdown_signals(self.handle_signals, self.shutdown)
        try:
            started: list[Listener] = []
            try:
                self._start_listeners(loop, started)
            except BaseException:
                self.managed_listeners = started  # only those need stopping
                raise
            if self.pre_serve is not None:
                self.pre_serve(self)
            self._ready.set()
            loop.run_until_complete(self._serve())
        finally:
            try:
                if self.before_stop is not None:
                    self.before_stop()
                # stop on a worker thread while the loop keeps running the async callbacks being waited for
                loop.run_until_complete(asyncio.to_thread(self._stop_listeners))
            finally:
                restore_signals()
                close_loop(loop, owned=self._loop_arg is None)
                self._ready.set()
                self._finished.set()
        if self.fatal_error is not None:
            raise ListenerDiedError(f"stopped watching: {self.fatal_error}") from self.fatal_error

    def start_in_thread(self, timeout: float = 10.0) -> ListenerServer:
        """Start in a background thread; return once the listeners are watching."""
        self._start_thread("execlib-listener-server", timeout, "the listeners")
        return self

    def shutdown(self) -> None:
        """Stop: safe from any thread, a signal handler, any number of times, or before start()."""
        with self._lock:
            self._shutdown_requested = True
            loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                pass  # the loop is closed: serving is already over

    # -- internals ---------------------------------------------------------------------

    async def _serve(self) -> None:
        self._wakeup = asyncio.Event()  # created before the flag is read, so a racing shutdown() sets it
        if self._shutdown_requested:
            return
        await self._wakeup.wait()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
