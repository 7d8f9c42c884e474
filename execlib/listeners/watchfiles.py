"""WatchfilesListener: file watching on any OS through watchfiles (the Rust notify crate), with a polling mode.

We drive watchfiles' ``RustNotify`` directly rather than its ``watch()``
generator so that the watches are in place when ``start()`` returns (the
generator only sets them up on first iteration) and so that the grouping
step is short: our router does the debouncing, watchfiles only has to hand
changes over promptly.

watchfiles reports added, modified and deleted paths (a rename is a delete and
an add) as an unordered set per group; we report deletions first (there is
no telling when they happened), then creations and modifications in the order
the files were last written (each folder before its contents), and drop the
"modified" notes notify emits for folders themselves. A new folder's contents
are reported as created too, since files written into it before notify
watched it produce no event.

Roots are kept as given (a symlink ``current`` stays ``current``); notify
watches the real folder each names, and after every wait we check that each
root still names the same folder: the same real path and (st_dev, st_ino),
and not reported deleted by notify (a folder recreated at once may get the
freed inode number back). A root deleted and recreated between two checks,
or a symlink re-pointed, has notify set up again on what the root names now
and its contents reported as created (and, for a re-pointed symlink, what
the old folder holds as deleted).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from typing import TYPE_CHECKING, Any

from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from ..event import Action, FileEvent
from ..listener import Listener
from .order import chronological, written_ns

if TYPE_CHECKING:
    from ..router import BaseRouter

logger = logging.getLogger("execlib.listener")

_ACTIONS = {Change.added: Action.CREATED, Change.modified: Action.MODIFIED, Change.deleted: Action.DELETED}
_ORDER = {Action.DELETED: 0, Action.CREATED: 1, Action.MODIFIED: 2}

#: what a root names: its real path and that folder's (st_dev, st_ino); None when it names no folder
Identity = tuple[str, int, int] | None


def identity(root: str) -> Identity:
    real = os.path.realpath(root)
    try:
        st = os.stat(real)
    except OSError:
        return None
    return (real, st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class WatchfilesListener(Listener):
    """Watches every endpoint of a router with watchfiles.

    ``poll=True`` polls every ``poll_delay_ms`` instead of using OS
    notifications: for network shares, Docker bind mounts and WSL, where
    notifications do not arrive. ``step_ms`` is how long watchfiles waits for
    a group of changes to settle before handing it over.
    """

    backend = "watchfiles"

    def __init__(
        self, router: BaseRouter, *, poll: bool = False, poll_delay_ms: int = 300, step_ms: int = 5, **kwargs: Any
    ) -> None:
        super().__init__(router, **kwargs)
        self.poll = poll
        self.poll_delay_ms = poll_delay_ms
        self.step_ms = step_ms
        self._notify: RustNotify | None = None
        self._stop_flag = threading.Event()
        self._roots: list[str] = []
        self._found: dict[str, Identity] = {}  # root -> what it named when notify was set up
        if poll:
            self.backend = "watchfiles-poll"

    def _setup(self) -> None:
        self._stop_flag.clear()
        self._roots = self.roots
        # Identities first, watches second: a folder replaced in between is caught by the next check.
        self._found = {root: identity(root) for root in self._roots}
        present = [found[0] for found in self._found.values() if found is not None]
        self._notify = RustNotify(present, False, self.poll, self.poll_delay_ms, True, True) if present else None

    def _run(self) -> None:
        while not self._stopping.is_set() and not self._stop_flag.is_set():
            if self._notify is None:
                # every root is gone: wait for one to come back
                if self._stop_flag.wait(0.25) or self._stopping.is_set():
                    return
                self._check_roots()
                continue
            raw = self._notify.watch(max(50, self.step_ms * 10), self.step_ms, 1000, self._stop_flag)
            if raw == "stop":
                return
            deleted: set[str] = set()
            if isinstance(raw, set):
                events = self._translate(raw)
                if events:
                    self.router.submit(events)
                deleted = {path for change, path in raw if change == Change.deleted}
            self._check_roots(deleted)

    def _wake(self) -> None:
        self._stop_flag.set()

    def _teardown(self) -> None:
        notify, self._notify = self._notify, None
        if notify is not None:
            notify.close()

    def _check_roots(self, deleted: set[str] | frozenset[str] = frozenset()) -> None:
        """Set notify up again when a root names another folder than it did: deleted, recreated, re-pointed.

        ``deleted``: paths notify just reported deleted. A root folder among them is dead even if a
        new one already stands in its place with the same inode number (ext4 hands a freed one out
        again at once), so the identity check alone cannot be trusted for it.
        """
        dead = {root for root, found in self._found.items() if found is not None and found[0] in deleted}
        if not dead and {root: identity(root) for root in self._roots} == self._found:
            return
        before = self._found
        self._drain()
        self._teardown()
        self._setup()
        events: list[FileEvent] = []
        for root in self._roots:
            old = None if root in dead else before.get(root)
            new = self._found.get(root)
            if old == new and root not in dead:
                continue
            if old is not None and (new is None or old[0] != new[0]) and os.path.isdir(old[0]):
                # the folder is still there but root no longer names it: from root's side it is gone
                events.extend(self._tree_events(root, old[0], Action.DELETED))
            if new is None:
                logger.info("%s was removed; watching for it to come back", root)
                continue
            if old is not None and old[0] != new[0]:
                logger.info("%s now names %s; watching it instead of %s", root, new[0], old[0])
            else:
                logger.info("%s is back; watching it again", root)
            events.extend(self._tree_events(root, new[0], Action.CREATED))
        if events:
            self.router.submit(events)

    def _drain(self) -> None:
        """Report what notify still holds before it is replaced: the files of a deleted root, whose
        deletions it may not have handed over yet (a busy machine), would otherwise be lost."""
        if self._notify is None:
            return
        raw = self._notify.watch(self.step_ms, self.step_ms, max(50, self.step_ms * 10), self._stop_flag)
        if isinstance(raw, set):
            events = self._translate(raw)
            if events:
                self.router.submit(events)

    def _tree_events(self, root: str, real: str, action: Action) -> list[FileEvent]:
        """``action`` for every folder and file in ``real``, named as under ``root``."""
        events: list[FileEvent] = []
        for folder, dirs, files in os.walk(real):
            base = root + folder[len(real) :]
            dirs[:] = [d for d in dirs if self.router.should_watch_dir(os.path.join(base, d))]
            events.extend(FileEvent(root, _relative(root, os.path.join(base, d)), action, True) for d in dirs)
            events.extend(FileEvent(root, _relative(root, os.path.join(base, f)), action, False) for f in files)
        return events

    def _event(self, path: str, action: Action, is_dir: bool) -> FileEvent:
        """The event for ``path`` as notify reports it (under a real folder), named under its root as given."""
        best_root, best_real = "", ""
        for root, found in self._found.items():
            if found is not None and path.startswith(found[0] + os.sep) and len(found[0]) > len(best_real):
                best_root, best_real = root, found[0]
        if not best_root:
            return FileEvent(path, "", action, is_dir)
        return FileEvent(best_root, path[len(best_real) + 1 :].replace(os.sep, "/"), action, is_dir)

    def _translate(self, raw: set[tuple[int, str]]) -> list[FileEvent]:
        """The group's events in the order they happened, as far as the disk can tell (module docstring)."""
        deleted: list[FileEvent] = []
        timed: list[tuple[int, FileEvent]] = []  # (mtime_ns, event): what is there to look at
        for change, path in raw:
            action = _ACTIONS[Change(change)]
            if action is Action.DELETED:
                deleted.append(self._event(path, action, False))
                continue
            try:
                st = os.stat(path)
            except OSError:  # gone again already; its deletion comes in a later group
                written, is_dir = sys.maxsize, False
            else:
                written, is_dir = st.st_mtime_ns, stat.S_ISDIR(st.st_mode)
            if is_dir and action is Action.MODIFIED:
                continue  # a folder's own mtime/metadata: its files' changes are reported themselves
            timed.append((written, self._event(path, action, is_dir)))
            if is_dir and action is Action.CREATED:
                # notify watches a new folder only once it has seen it: report what was written before that
                for folder, dirs, files in os.walk(path):
                    for name, is_folder in [*((d, True) for d in dirs), *((f, False) for f in files)]:
                        found = os.path.join(folder, name)
                        timed.append((written_ns(found), self._event(found, Action.CREATED, is_folder)))
        deleted.sort(key=lambda e: e.name)
        # a file both added and modified in one group: "created" first (the stable sort keeps it so)
        timed.sort(key=lambda pair: _ORDER[pair[1].action])
        return deleted + chronological(timed)


def _relative(root: str, path: str) -> str:
    return path[len(root) + 1 :].replace(os.sep, "/")
