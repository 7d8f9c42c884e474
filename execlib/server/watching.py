"""The live-reload and rebuild routes: ordinary PathRouter routes that feed the ReloadHub.

- Changes under the site root go to the hub as site-relative names (it decides
  which pages they touch), except the files a build just wrote: the reload after
  a successful build already covers those.
- Changes under extra ``watch`` paths run the build when there is one, else
  reload every page. The site root is ignored inside watch paths, and whatever
  else a build writes there is told from your edits (``buildwrites``), so a
  build's output never triggers another build (no rebuild loop).

Each coalesced change is reported in one INFO line on ``execlib.changes``
(``changed: index.rst -> building``, ``changed: style.css -> css swapped in 2
pages``) and each build's outcome in one on ``execlib.build`` (``build ok in
0.46 s -> reloaded 1 page``); the raw events are DEBUG lines.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import posixpath
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..event import Action, Event, FileEvent
from ..mounts import prefix_of
from .build import BuildResult, BuildRunner, BuildTarget
from .buildwrites import BuildWrites
from .burst import ChangeGate
from .filecache import content_digest
from .livereload import CSS_EXTENSIONS, IMAGE_EXTENSIONS, ReloadHub
from .mounts import url_name

logger = logging.getLogger("execlib.livereload")
changes_logger = logging.getLogger("execlib.changes")
build_logger = logging.getLogger("execlib.build")

# Changes under --watch paths (build sources) are grouped by the router: a save is one build.
SOURCES_DEBOUNCE_MS = 8
# How long before a build's start a source change still counts as made during it: the kernel stamps
# files with a clock that can lag time.time() by a tick (1-4 ms). None after its end: the build has
# written everything by then, and a save made just after it is yours.
SOURCE_SLACK_S = 0.005
# How many names a "changed:" line shows before it says how many more there are.
SHOWN_NAMES = 3
# Files up to this size are hashed on a change, so a rewrite with the same bytes reloads nothing.
DIGEST_MAX_BYTES = 4 << 20
DIGEST_MEMO_ENTRIES = 8192

ChangeHook = Callable[[list[Any]], object]

SWAPPED_EXTENSIONS = CSS_EXTENSIONS | IMAGE_EXTENSIONS


def site_relative(root: str, path: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it lies outside."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))  # either may go through a symlink
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def shown_names(names: Sequence[str]) -> str:
    """``a, b, c and 4 more``: the names a change line shows."""
    names = list(dict.fromkeys(names))
    if len(names) <= SHOWN_NAMES + 1:
        return ", ".join(names)
    return f"{', '.join(names[:SHOWN_NAMES])} and {len(names) - SHOWN_NAMES} more"


def shown_path(path: str) -> str:
    """A source path as the user would type it: relative to the current folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel.replace(os.sep, "/")


class ReloadController:
    """Decides what a coalesced batch of file events does: reload pages, run the build, or both."""

    def __init__(
        self,
        hub: ReloadHub,
        root: str,
        build: BuildTarget | None = None,
        build_timeout: float | None = None,
        *,
        warnings_as_errors: bool = False,
        mounts: Sequence[tuple[str, str]] = (),
        watch_root: bool = True,
    ) -> None:
        self.hub = hub
        self.root = root
        # The folders served, each with the URL prefixes it is served at (ROOT's is ""; one folder
        # may be mounted twice, or inside ROOT): a change is announced under each URL it has.
        self.folders: dict[str, list[str]] = {root: [""]} if watch_root else {}
        # Proxy mode: a stylesheet or image under a --watch path is swapped in the pages that
        # loaded it, found among their resources by its path (resource_names), not reloaded.
        self.match_resources = False
        for prefix, folder in mounts:
            self.folders.setdefault(folder, []).append(prefix)
        self.prefixes = [prefix for prefix, _ in mounts]
        self.hooks: list[ChangeHook] = []
        self.build_target = build
        self.build_timeout = build_timeout
        self.warnings_as_errors = warnings_as_errors
        self.builder: BuildRunner | None = None
        self.writes = BuildWrites()
        self.gate = ChangeGate(self._flush, swapped=swapped_in_place)
        hub.changes_pending = lambda: self.gate.holding
        #: the digest of an earlier version of a file, given its stat now (the Server's file cache)
        self.known_digest: Callable[[str, os.stat_result], str | None] = lambda path, st: None
        self._digests: OrderedDict[str, str] = OrderedDict()  # path -> digest when last flushed

    def ensure_builder(self) -> BuildRunner | None:
        """The build runner, created on the server's loop the first time it is needed."""
        if self.builder is None and self.build_target is not None:
            self.builder = BuildRunner(
                self.build_target,
                self._build_done,
                timeout=self.build_timeout,
                warnings_as_errors=self.warnings_as_errors,
            )
        return self.builder

    async def aclose(self) -> None:
        """Stop what the build keeps running between builds (on the server's loop, before it closes)."""
        if self.builder is not None:
            await self.builder.aclose()

    async def _build_done(self, result: BuildResult) -> None:
        if result.ok:
            await self.hub.clear_error()
            sent = await self.hub.reload_all()
            build_logger.info("%s -> %s", result.summary, sent.summary())
            return
        told = await self.hub.show_error(result.summary, result.output)
        shown = f"error shown in {told} page{'' if told == 1 else 's'}" if told else "no page open"
        # A command's output was shown as it ran; a callable's traceback was not: show it here.
        tail = "" if result.streamed else "\n".join("    " + line for line in result.output.splitlines())
        build_logger.error("%s -> %s%s", result.summary, shown, "\n" + tail if tail else "")

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
        if changes_logger.isEnabledFor(logging.DEBUG):
            changes_logger.debug("events: %s", ", ".join(str(e) for e in events))
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
        names = [name for e in changes for name in self.url_names(e)]
        if not names:
            return  # only files that a mount hides: no URL serves them
        deleted = [name for e in changes if e.action is Action.DELETED for name in self.url_names(e)]
        sent = await self.hub.changed(names, deleted=deleted)
        changes_logger.info("changed: %s -> %s", shown_names(names), sent.summary())

    def url_names(self, event: Event) -> list[str]:
        """The names (URL paths without the leading slash) a served file's event is announced as.

        ``event.endpoint`` is the served folder it was reported under. A name under a longer
        prefix than its folder's is another folder's file (``assets/x`` of ROOT when a mount is at
        ``/assets``): no URL serves it, and it has no name.
        """
        names = []
        for prefix in self.folders.get(event.endpoint, ("",)):
            name = url_name(prefix, event.name or os.curdir)
            if prefix_of("/" + name, self.prefixes) == prefix:
                names.append(name)
        return names

    def names_of_path(self, path: str) -> list[str]:
        """The names of the URLs the file at ``path`` is served at (none: it is in no served folder)."""
        return [name for event in self.served_events([(path, False)]) for name in self.url_names(event)]

    def served_events(self, paths: Sequence[tuple[str, bool]]) -> list[FileEvent]:
        """Events for files of the served folders, given as (absolute path, gone), as a listener would report them."""
        events = []
        for path, gone in paths:
            action = Action.DELETED if gone else Action.MODIFIED
            for folder in self.folders:
                name = site_relative(folder, path)
                if name is not None:
                    events.append(FileEvent(endpoint=folder, name="" if name == "." else name, action=action))
        return events

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
        """A net batch from a ``watch`` path: run the build (or reload every page), unless the build wrote it."""
        if changes_logger.isEnabledFor(logging.DEBUG):
            changes_logger.debug("events: %s", ", ".join(str(e) for e in events))
        builder = self.ensure_builder()
        if builder is not None:
            if len(events) > 4:  # a burst (a checkout, a build's own writes): stat off the loop
                events = await asyncio.to_thread(self._not_build_output, builder, events)
            else:
                events = self._not_build_output(builder, events)
            if not events:
                return
        names = shown_names([shown_path(e.path) for e in events if isinstance(e, FileEvent)] or ["?"])
        await self.run_hooks(events)
        if builder is None:
            matched = self.resource_names(events) if self.match_resources else None
            if matched:
                sent = await self.hub.changed(matched)
            else:
                sent = await self.hub.changed([], external=True)
            changes_logger.info("changed: %s -> %s", names, sent.summary())
            return
        changes_logger.info(
            "changed: %s -> %s", names, "building after the current build" if builder.running else "building"
        )
        builder.request()

    def resource_names(self, events: list[Any]) -> list[str] | None:
        """The resource names (URL paths) of pages that the watched stylesheets and images in
        ``events`` are served at; None when any change is something else, or matches no resource
        (a template, code, a file no page loaded): those reload every page.

        A file matches a resource whose URL path ends with its path inside the watched folder:
        ``static/css/site.css`` under ``--watch static`` is ``/static/css/site.css`` as Django
        and Flask serve it, and ``/assets/css/site.css`` under another prefix. The backend's URL
        layout is its own, so the suffix, not a fixed mapping, is what can be relied on.
        """
        loaded = {name for page in self.hub.pages for name in page.resources or ()}
        names: list[str] = []
        for event in events:
            if not isinstance(event, FileEvent) or event.action is Action.DELETED:
                return None
            inside = (event.name or os.path.basename(event.path)).replace(os.sep, "/")
            if not swapped_in_place(inside):
                return None
            found = [name for name in loaded if name == inside or name.endswith("/" + inside)]
            if not found:
                return None
            names.extend(found)
        return names or None

    def _not_build_output(self, builder: BuildRunner, events: list[Any]) -> list[Any]:
        """The events that are changes of the user's, not writes of a build (execlib.server.buildwrites)."""
        kept = []
        for event in events:
            if not isinstance(event, FileEvent):
                kept.append(event)
                continue
            try:
                build = builder.build_at(_changed_at(os.stat(event.path)), SOURCE_SLACK_S, end_slack=0)
            except OSError:  # gone: a deletion made while a build runs is judged as made by that build
                build = builder.builds if builder.running else None
                if build is None and event.path in self.writes.outputs:
                    continue  # a build's output, deleted (late news of a build's cleaning)
            if build is None:
                self.writes.changed_outside_build(event)
                kept.append(event)
            elif self.writes.is_build_output(event, build):
                logger.debug("build: %s was written by build %d; not a change of yours", event.name, build)
            else:
                kept.append(event)
        return kept

    @staticmethod
    def _written_by_build(builder: BuildRunner, path: str) -> bool:
        try:
            mtime = _changed_at(os.stat(path))
        except OSError:
            return builder.running  # deleted while a build ran: the build's doing
        return builder.overlaps(mtime)


def build_reload_listener(
    controller: ReloadController,
    *,
    extra_watch: Sequence[str] = (),
    ignore: Sequence[str] = (),
    delay_ms: float = 0,
    poll: bool | None = None,
    gitignore: bool = False,
    app_code: tuple[Sequence[str], Callable[[list[Any]], Awaitable[None]]] | None = None,
) -> Any:
    """A listener whose router sends the site's changes to ``controller``'s gate, and source changes to its build.

    ``app_code`` (app mode with reload: the app's code folders and what to call) gets each save of
    the app's Python files; the other routes then leave ``.py`` files of those folders alone, so a
    code change reloads pages once, when the new workers answer, not also at once.

    The site route has no debounce: the gate times the site's changes itself
    (execlib.server.burst). Source routes get each save's net effect, so a
    temp-file-and-rename save of a source is one build.
    """
    from ..routers.path import PathRouter

    router = PathRouter()
    common: dict[str, Any] = {"delay": delay_ms, "batch": True, "gitignore": gitignore}
    code_folders = app_code[0] if app_code is not None else ()

    def site_ignores(folder: str) -> tuple[str, ...]:
        for code in code_folders:
            # one folder holding the other: the app's code may be among this route's files
            if site_relative(folder, code) is not None or site_relative(code, folder) is not None:
                return (*ignore, "*.py")
        return tuple(ignore)

    for folder in controller.folders:  # ROOT and each mounted folder
        router.register(folder, controller.site_changed, glob="**/*", ignore=site_ignores(folder), debounce=0, **common)
    if app_code is not None:
        from ..app.mode import APP_DEBOUNCE_MS, NOT_APP_CODE

        for code in code_folders:
            router.register(
                code,
                app_code[1],
                glob="**/*.py",
                ignore=(*ignore, *NOT_APP_CODE),
                debounce=APP_DEBOUNCE_MS,
                net=True,
                **common,
            )
    for path in extra_watch:
        own = site_ignores(path) if os.path.isdir(path) else tuple(ignore)
        inside = site_relative(path, controller.root) if os.path.isdir(path) else None
        if inside is not None:
            own += ("/" + inside + "/",) if inside not in ("", ".") else ()
        router.register(
            path, controller.sources_changed, glob="**/*", ignore=own, debounce=SOURCES_DEBOUNCE_MS, net=True, **common
        )
    return router.get_listener(poll=poll)


def _changed_at(st: os.stat_result) -> float:
    """When a file last changed: its ctime, which every write sets and nothing can set back.

    Not its mtime: a build that copies files keeps their mtimes (Sphinx copies its theme's static
    files with the installed package's dates), so they would look untouched by the build.
    """
    return max(st.st_mtime, st.st_ctime)


def swapped_in_place(name: str) -> bool:
    """Whether pages take a change of this file in place (a stylesheet or an image), with no reload."""
    return posixpath.splitext(name)[1].lower() in SWAPPED_EXTENSIONS


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
