"""Pieces shared by Server and ListenerServer for owning an event loop in a blocking ``start()``
and supervising the listeners that feed it.

Free of uvicorn, FastAPI and Starlette, so ListenerServer stays light.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    from .listener import Listener

_Service = TypeVar("_Service", bound="BlockingService")


def new_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A new loop of ``kind``: "uvloop", "asyncio", or "auto" (uvloop when installed, with
    ``execlib[fast]``; else asyncio's). ServerConfig has checked that a "uvloop" asked for is there."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio": which loop serves (the banner and the JSON start line say it)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def install_shutdown_signals(enabled: bool, shutdown: Callable[[], None]) -> Callable[[], None]:
    """Route SIGINT/SIGTERM to ``shutdown`` while serving; returns the function that restores
    the previous handlers. Does nothing outside the main thread, where signals cannot be handled."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, lambda signum, frame: shutdown()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def close_loop(loop: asyncio.AbstractEventLoop, owned: bool) -> None:
    """Cancel what is left on ``loop``, join its executor, and close it if we created it."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        if owned:
            loop.close()


class BlockingService:
    """``start_in_thread()``, ``wait()`` and the context manager, around a subclass's blocking
    ``start()`` and thread-safe ``shutdown()``.

    The subclass sets ``_ready`` once it serves (or gives up) and ``_finished``
    when ``start()`` is over; ``_before_ready_wait()`` may block first for work
    that the start-up timeout should not count (a first build).

    It also supervises the listeners: ``start()`` calls ``_start_listeners(loop)``
    and ``_stop_listeners()`` when it ends; a listener that dies for good records
    ``fatal_error`` and shuts the service down, and ``start()`` then raises a
    ``ListenerDiedError``. One copy of this, so both hosts treat a listener alike.
    """

    handle_signals: bool
    managed_listeners: list[Listener]
    #: the error that made a listener give up, once one has
    fatal_error: BaseException | None
    #: passed to each listener's ``stop()``; None leaves each listener its own ``stop_timeout``
    stop_timeout: float | None = None
    #: each subclass logs listener failures under its own name, as it did before this code was shared
    _log: ClassVar[logging.Logger]
    _loop: asyncio.AbstractEventLoop | None
    _ready: threading.Event
    _finished: threading.Event
    _thread: threading.Thread | None
    _thread_error: BaseException | None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop that async callbacks (and a Server's requests) run on while it runs; None before.

        Hand coroutines to it with ``asyncio.run_coroutine_threadsafe``.
        """
        return self._loop

    @property
    def is_running(self) -> bool:
        """True from the moment it serves (requests, or the listeners' events) until serving has ended."""
        return self._ready.is_set() and not self._finished.is_set()

    def start(self) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def _before_ready_wait(self) -> None:
        """Called after the thread starts, before the start-up timeout begins."""

    def _thread_ended(self) -> None:
        """Called in the background thread once ``start()`` has returned or raised."""

    def _start_thread(self, name: str, timeout: float, what: str) -> None:
        self.handle_signals = False  # signals belong to the main thread

        def run() -> None:
            try:
                self.start()
            except BaseException as exc:  # handed to the caller waiting below
                self._thread_error = exc
                self._ready.set()
            finally:
                self._thread_ended()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        self._before_ready_wait()
        if not self._ready.wait(timeout):
            self.shutdown()
            raise RuntimeError(f"{what} did not start within {timeout} s")
        if self._thread_error is not None:
            raise self._thread_error

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until it serves (a Server: requests answered and files watched) or gave up trying;
        True when it is running then. From any thread but the one running ``start()``."""
        self._ready.wait(timeout)
        return self.is_running

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until serving has ended (and its thread, when started in one, has ended)."""
        done = self._finished.wait(timeout)
        if done and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return done

    def start_in_thread(self: _Service, timeout: float = 10.0) -> _Service:
        raise NotImplementedError

    # -- listeners ------------------------------------------------------------------------

    @property
    def _all_listeners(self) -> list[Listener]:
        """The listeners started with the service and stopped first when it stops."""
        return self.managed_listeners

    def _start_listeners(self, loop: asyncio.AbstractEventLoop, started: list[Listener] | None = None) -> None:
        """Start each listener with its async callbacks on ``loop`` and its death reported here.

        Each one that started is appended to ``started``: if a later one fails, the caller knows
        which ones are watching.
        """
        for listener in self._all_listeners:
            listener.attach_loop(loop)
            listener.on_fatal = self._listener_failed
            listener.start()
            if started is not None:
                started.append(listener)

    def _stop_listeners(self) -> None:
        """Stop every listener; one that fails to stop is logged, and the others are still stopped."""
        for listener in self._all_listeners:
            try:
                listener.stop(self.stop_timeout)
            except Exception:
                self._log.exception("stopping listener %r failed", listener)

    def _listener_failed(self, error: BaseException) -> None:
        """A listener's ``on_fatal``: serving without watching would go stale unnoticed, so stop."""
        self._log.error("a file listener failed for good, shutting down: %s", error)
        self.fatal_error = error
        self.shutdown()

    def __enter__(self: _Service) -> _Service:
        return self.start_in_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
        self.wait(10)
