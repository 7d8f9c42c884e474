"""The live-reload route: an ordinary PathRouter route that feeds the ReloadHub.

Changes under the site root are sent as site-relative names (the hub decides
which pages they touch); changes under extra ``watch`` paths outside the root
reload every page.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .livereload import ReloadHub

# Short enough to keep a save-to-visible reload well under 60 ms, long enough that a
# build or a checkout writing files back to back is one burst (one reload per page).
LIVERELOAD_DEBOUNCE_MS = 20


def site_relative(root: str, path: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it lies outside."""
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def build_reload_listener(
    hub: ReloadHub,
    root: str,
    *,
    extra_watch: Sequence[str] = (),
    ignore: Sequence[str] = (),
    delay_ms: float = 0,
    debounce_ms: float = LIVERELOAD_DEBOUNCE_MS,
    poll: bool = False,
    gitignore: bool = False,
    on_change: Callable[[list[Any]], Awaitable[None]] | None = None,
) -> Any:
    """A listener whose router sends every coalesced burst of changes to ``hub``."""
    try:
        from ..routers.path import PathRouter
    except ImportError:  # TEMPORARY while the routing framework lands
        return None

    router = PathRouter()

    async def site_changed(events: list[Any]) -> None:
        if on_change is not None:
            await on_change(events)
        names = [event.name for event in events]
        await hub.changed(names)

    async def elsewhere_changed(events: list[Any]) -> None:
        if on_change is not None:
            await on_change(events)
        await hub.changed([], external=True)

    common = {
        "debounce": debounce_ms,
        "delay": delay_ms,
        "ignore": tuple(ignore),
        "batch": True,
        "gitignore": gitignore,
    }
    router.register(root, site_changed, glob="**/*", **common)
    for path in extra_watch:
        router.register(os.path.realpath(path), elsewhere_changed, glob="**/*", **common)
    return router.get_listener(poll=poll) if poll else router.get_listener()


def run_on_loop(loop: asyncio.AbstractEventLoop | None, coroutine: Awaitable[Any], timeout: float = 10.0) -> Any:
    """Run a coroutine on the server's loop from another thread and wait for its result."""
    if loop is None or loop.is_closed() or not loop.is_running():
        if asyncio.iscoroutine(coroutine):
            coroutine.close()
        return None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return asyncio.ensure_future(coroutine)  # already on the loop: schedule, don't block it
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)  # type: ignore[arg-type]
