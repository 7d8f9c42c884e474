"""Listener base: the thread that turns OS file notifications into events for a router.

What every backend shares lives here: ``start()`` sets the watches up in the
caller's thread (so changes made after it returns are seen) and starts one
thread; ``stop()`` is prompt, safe from any thread, twice or before
``start()``, and closes the router (running callbacks get a timeout, queued
ones are cancelled); a thread that dies from an unexpected error is set up
again and restarted, within a restart budget, after which ``on_fatal`` is
called so the owner (a Server, a ListenerServer) can shut down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ConfigError, ExeclibError

if TYPE_CHECKING:
    from .router import BaseRouter

logger = logging.getLogger("execlib.listener")


class ListenerDiedError(ExeclibError):
    """A listener's thread kept dying and its restart budget is spent: changes are no longer watched."""


def top_roots(endpoints: list[str]) -> list[str]:
    """The endpoints that are not inside another one (nested folders need no second watch)."""
    roots: list[str] = []
    for endpoint in sorted(set(endpoints), key=len):
        if not any(endpoint == r or endpoint.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
            roots.append(endpoint)
    return roots


class Listener(ABC):
    """Watches every endpoint of ``router`` on a thread of its own and submits the events to it.

    ``max_restarts`` unexpected deaths within ``restart_window`` seconds are
    survived (each logged); the next one calls ``on_fatal(error)``.
    ``stop_timeout`` is how long ``stop()`` waits for running callbacks.
    """

    #: backend name, for logs and the ``execlib watch`` banner
    backend = "base"

    def __init__(
        self,
        router: BaseRouter,
        *,
        max_restarts: int = 3,
        restart_window: float = 60.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.router = router
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.stop_timeout = stop_timeout
        #: called with a ListenerDiedError once the restart budget is spent (set by the owner)
        self.on_fatal: Callable[[BaseException], None] | None = None
        #: how many times the thread was restarted (and is watching again) since start()
        self.restarts = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._deaths: list[float] = []

    # -- what a backend provides -------------------------------------------------------

    @abstractmethod
    def _setup(self) -> None:
        """Open the OS resources and set the watches up (runs in start(), and again on restart)."""

    @abstractmethod
    def _run(self) -> None:
        """Block, submitting events to the router, until ``_stopping`` is set (or raise)."""

    @abstractmethod
    def _teardown(self) -> None:
        """Release what ``_setup`` opened; must be safe to call twice."""

    def _wake(self) -> None:  # noqa: B027 (optional hook: a backend that polls its stop flag needs none)
        """Make a blocked ``_run`` notice ``_stopping`` promptly."""

    # -- public API ----------------------------------------------------------------------

    @property
    def roots(self) -> list[str]:
        """The folders this listener watches: the router's endpoints, minus those nested in another."""
        return top_roots(self.router.endpoints())

    @property
    def is_running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Run the router's ``async def`` callbacks on ``loop``."""
        self.router.attach_loop(loop)

    def start(self) -> None:
        """Set the watches up, then watch on a background thread; returns once changes are being watched.

        Starting a running listener does nothing; a stopped one can be started again.
        """
        with self._lock:
            if self._thread is not None:
                return
            if not self.router.endpoints():
                raise ConfigError("nothing to watch: register a route on the router before starting its listener")
            self._stopping.clear()
            self.restarts = 0
            self._deaths = []
            self._setup()
            self._thread = threading.Thread(
                target=self._supervise, name=f"execlib-listener-{self.backend}", daemon=True
            )
            self._thread.start()
        logger.debug("%s listener watching %s", self.backend, ", ".join(self.roots))

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching and close the router; safe from any thread (the listener's own too), and repeatable.

        Running callbacks get up to ``timeout`` seconds (default
        ``stop_timeout``) to finish; queued ones are cancelled.
        """
        timeout = self.stop_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            self._wake()
            if thread is not threading.current_thread():
                thread.join(max(0.5, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning("%s listener thread did not stop within %.3g s", self.backend, timeout)
        self.router.close(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- supervision -------------------------------------------------------------------------

    def _supervise(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._run()
                    return
                except Exception as exc:
                    if self._stopping.is_set():
                        return
                    self._teardown()
                    if not self._restart_allowed(exc):
                        return
                    try:
                        self._setup()
                        self.restarts += 1  # counted once watching again, so a caller can wait on it
                    except Exception as setup_exc:
                        # a set-up that fails counts as one more death
                        if not self._restart_allowed(setup_exc):
                            return
        finally:
            self._teardown()

    def _restart_allowed(self, exc: BaseException) -> bool:
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < self.restart_window] + [now]
        if len(self._deaths) > self.max_restarts:
            error = ListenerDiedError(
                f"the {self.backend} file listener died {len(self._deaths)} times within "
                f"{self.restart_window:g} s (last error: {type(exc).__name__}: {exc}); changes are no longer watched"
            )
            logger.error("%s", error, exc_info=exc)
            self._fatal(error)
            return False
        logger.error(
            "%s listener thread died (%s: %s); restarting it (%d of %d allowed)",
            self.backend,
            type(exc).__name__,
            exc,
            len(self._deaths),
            self.max_restarts,
            exc_info=exc,
        )
        return True

    def _fatal(self, error: BaseException) -> None:
        handler = self.on_fatal
        if handler is None:
            return
        try:
            handler(error)
        except Exception:
            logger.exception("on_fatal handler of the %s listener failed", self.backend)
