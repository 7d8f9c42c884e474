"""Pieces shared by Server and ListenerServer for owning an event loop in a blocking ``start()``.

Free of uvicorn, FastAPI and Starlette, so ListenerServer stays light.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (uvicorn[standard] brings it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


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
