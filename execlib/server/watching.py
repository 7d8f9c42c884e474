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
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..event import Action, Event, FileEvent
from .build import BuildResult, BuildRunner, BuildTarget
from .burst import ChangeGate
from .filecache import content_digest
from .livereload import ReloadHub

logger = logging.getLogger("execlib.livereload")

# Changes under --watch paths (build sources) are grouped by the router: a save is one build.
SOURCES_DEBOUNCE_MS = 8
# Files up to this size are hashed on a change, so a rewrite with the same bytes reloads nothing.
DIGEST_MAX_BYTES = 4 << 20
DIGEST_MEMO_ENTRIES = 8192

ChangeHook = Callable[[list[Any]], object]


def site_relative(root: str, path: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it lies outside."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))  # either may go through a symlink
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
        self.gate = ChangeGate(self._flush)
        hub.changes_pending = lambda: self.gate.holding
        #: the digest of an earlier version of a file, given its stat now (the Server's file cache)
        self.known_digest: Callable[[str, os.stat_result], str | None] = lambda path, st: None
        self._digests: OrderedDict[str, str] = OrderedDict()  # path -> digest when last flushed

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
        """Raw events of the site (one listener read); the gate decides when they go out."""
        builder = self.builder
        if builder is not None:
            events = [e for e in events if not self._written_by_build(builder, e.path)]
        self.gate.add(events)

    async def _flush(self, events: list[Event]) -> None:
        """A net batch from the gate: drop what did not really change, then tell the hooks and pages."""
        if len(events) > 4:  # a burst: stat and hash off the loop
            changes = await asyncio.to_thread(self._real_changes, events)
        else:
            changes = self._real_changes(events)
        if not changes:
            return
        await self.run_hooks(changes)
        deleted = [e.name for e in changes if e.action is Action.DELETED]
        await self.hub.changed([e.name for e in changes], deleted=deleted)

    def _real_changes(self, events: list[Event]) -> list[FileEvent]:
        """The net events as the tree is now: gone files are deletions, same-bytes rewrites vanish."""
        out: list[FileEvent] = []
        for event in events:
            if not isinstance(event, FileEvent):
                continue
            path = event.path
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None:
                self._digests.pop(path, None)
                out.append(event if event.action is Action.DELETED else _as(event, Action.DELETED))
                continue
            if event.action is Action.DELETED:  # gone and back again since the events were read
                event = _as(event, Action.MODIFIED)
            if not event.is_dir and self._same_bytes(path, st):
                logger.debug("livereload: %s rewritten with the same content; nothing to reload", event.name)
                continue
            out.append(event)
        return out

    def _same_bytes(self, path: str, st: os.stat_result) -> bool:
        if st.st_size > DIGEST_MAX_BYTES:
            return False
        try:
            with open(path, "rb") as f:
                digest = content_digest(f.read(DIGEST_MAX_BYTES + 1))
        except OSError:
            return False
        before = self._digests.pop(path, None) or self.known_digest(path, st)
        self._digests[path] = digest
        if len(self._digests) > DIGEST_MEMO_ENTRIES:
            self._digests.popitem(last=False)
        return before == digest

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
    poll: bool = False,
    gitignore: bool = False,
) -> Any:
    """A listener whose router sends the site's changes to ``controller``'s gate, and source changes to its build.

    The site route has no debounce: the gate times the site's changes itself
    (execlib.server.burst). Source routes get each save's net effect, so a
    temp-file-and-rename save of a source is one build.
    """
    from ..routers.path import PathRouter

    router = PathRouter()
    common: dict[str, Any] = {"delay": delay_ms, "batch": True, "gitignore": gitignore}
    router.register(controller.root, controller.site_changed, glob="**/*", ignore=tuple(ignore), debounce=0, **common)
    for path in extra_watch:
        own = tuple(ignore)
        inside = site_relative(path, controller.root) if os.path.isdir(path) else None
        if inside is not None:
            own += ("/" + inside + "/",) if inside not in ("", ".") else ()
        router.register(
            path, controller.sources_changed, glob="**/*", ignore=own, debounce=SOURCES_DEBOUNCE_MS, net=True, **common
        )
    return router.get_listener(poll=poll)


def _as(event: FileEvent, action: Action) -> FileEvent:
    return FileEvent(event.endpoint, event.name, action, event.is_dir)


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
