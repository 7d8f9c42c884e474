"""The live-reload and rebuild routes: ordinary PathRouter routes that feed the ReloadHub.

- Changes under the site root go to the hub as site-relative names (it decides
  which pages they touch), except the files a build just wrote: the reload after
  a successful build already covers those.
- Changes under extra ``watch`` paths run the build when there is one, else
  reload every page. The site root is ignored inside watch paths, so a build's
  output never triggers another build (no rebuild loop).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .build import BuildResult, BuildRunner, BuildTarget
from .livereload import ReloadHub

logger = logging.getLogger("execlib.livereload")

# The listener reports a file once it is closed (complete), so this only groups files written
# back to back: a build's first few files land in one batch and BurstGate holds the rest.
# The browser's own reload of a page takes ~35 ms; every ms here adds to it.
LIVERELOAD_DEBOUNCE_MS = 8

# A batch bigger than this, or one following another within BURST_QUIET_S, means a build or a
# checkout is writing: wait for BURST_QUIET_S of quiet and reload once, instead of once per gap.
# The quiet time stays under 0.3 s so hand edits 0.3 s apart each show; BURST_MAX_HOLD_S caps
# how long a never-ending stream of changes can hold pages back.
SMALL_BATCH = 3
BURST_QUIET_S = 0.2
BURST_MAX_HOLD_S = 2.0

ChangeHook = Callable[[list[Any]], object]


class BurstGate:
    """Passes a lone save straight through; holds the batches of a burst until it goes quiet."""

    def __init__(
        self, flush: Callable[[list[str]], Awaitable[object]], quiet: float = BURST_QUIET_S, small: int = SMALL_BATCH
    ) -> None:
        self.flush = flush
        self.quiet = quiet
        self.small = small
        self.pending: dict[str, None] = {}
        self.last_batch = float("-inf")
        self.held_since = 0.0
        self.timer: asyncio.TimerHandle | None = None

    async def add(self, names: list[str]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        in_burst = self.timer is not None or now - self.last_batch < self.quiet or len(names) > self.small
        self.last_batch = now
        if not in_burst:
            await self.flush(names)
            return
        if self.timer is None:
            self.held_since = now
        else:
            self.timer.cancel()
        self.pending.update(dict.fromkeys(names))
        wait = min(self.quiet, max(0.0, self.held_since + BURST_MAX_HOLD_S - now))
        self.timer = loop.call_later(wait, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        names, self.pending = list(self.pending), {}
        loop.create_task(self.flush(names))


def site_relative(root: str, path: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it lies outside."""
    rel = os.path.relpath(os.path.realpath(path), root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


class ReloadController:
    """Decides what a coalesced batch of file events does: reload pages, run the build, or both."""

    def __init__(
        self, hub: ReloadHub, root: str, build: BuildTarget | None = None, build_timeout: float | None = None
    ) -> None:
        self.hub = hub
        self.root = root
        self.hooks: list[ChangeHook] = []
        self.build_target = build
        self.build_timeout = build_timeout
        self.builder: BuildRunner | None = None
        self.gate = BurstGate(self.hub.changed)
        hub.changes_pending = lambda: self.gate.timer is not None

    def ensure_builder(self) -> BuildRunner | None:
        """The build runner, created on the server's loop the first time it is needed."""
        if self.builder is None and self.build_target is not None:
            self.builder = BuildRunner(self.build_target, self._build_done, timeout=self.build_timeout)
        return self.builder

    async def _build_done(self, result: BuildResult) -> None:
        if result.ok:
            await self.hub.clear_error()
            await self.hub.reload_all()
        else:
            await self.hub.show_error(result.summary, result.output)

    async def run_hooks(self, events: list[Any]) -> None:
        for hook in self.hooks:
            try:
                if inspect.iscoroutinefunction(hook):
                    await hook(events)
                else:  # keep the loop free while a sync hook works
                    outcome = await asyncio.to_thread(hook, events)
                    if inspect.isawaitable(outcome):
                        await outcome
            except Exception:
                logger.exception("on_change hook %r failed", hook)

    async def site_changed(self, events: list[Any]) -> None:
        await self.run_hooks(events)
        builder = self.builder
        names = []
        for event in events:
            if builder is not None and self._written_by_build(builder, event.path):
                continue
            names.append(event.name)
        if names:
            await self.gate.add(names)

    async def sources_changed(self, events: list[Any]) -> None:
        await self.run_hooks(events)
        builder = self.ensure_builder()
        if builder is not None:
            builder.request()
        else:
            await self.hub.changed([], external=True)

    @staticmethod
    def _written_by_build(builder: BuildRunner, path: str) -> bool:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return builder.running  # deleted while a build ran: the build's doing
        return builder.overlaps(mtime)


def build_reload_listener(
    controller: ReloadController,
    *,
    extra_watch: Sequence[str] = (),
    ignore: Sequence[str] = (),
    delay_ms: float = 0,
    debounce_ms: float = LIVERELOAD_DEBOUNCE_MS,
    poll: bool = False,
    gitignore: bool = False,
) -> Any:
    """A listener whose router sends each coalesced burst of changes to ``controller``."""
    from ..routers.path import PathRouter

    router = PathRouter()
    common: dict[str, Any] = {"debounce": debounce_ms, "delay": delay_ms, "batch": True, "gitignore": gitignore}
    router.register(controller.root, controller.site_changed, glob="**/*", ignore=tuple(ignore), **common)
    for path in extra_watch:
        own = tuple(ignore)
        inside = site_relative(path, controller.root) if os.path.isdir(path) else None
        if inside is not None:
            own += ("/" + inside + "/",) if inside not in ("", ".") else ()
        router.register(path, controller.sources_changed, glob="**/*", ignore=own, **common)
    return router.get_listener(poll=poll)


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
