"""InotifyListener: recursive folder watching on Linux with inotify (through inotify-simple).

inotify watches one folder per watch descriptor, so this module keeps the
map from descriptors to folders up to date: folders created or moved in are
watched (and what they already hold is reported, since it may have been
written before the watch existed); folders renamed within the tree keep
their descriptors and are re-labelled; folders moved out are unwatched; a
deleted watched root is watched for from its parent and set up again when
it comes back.

A file's change is reported when its writer closes it (IN_CLOSE_WRITE), not on
every write(), so callbacks see whole files; a new regular file is reported
once, as CREATED, when it is first closed.

When the kernel's watch limit (``fs.inotify.max_user_watches``) is reached,
the error says how many watches are needed and how to raise the limit, and
the listener carries on with the watchfiles backend instead.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
from typing import Any

from inotify_simple import INotify
from inotify_simple import flags as F

from ..event import Action, FileEvent
from ..listener import Listener

logger = logging.getLogger("execlib.listener")

#: what we ask inotify for on every watched folder
WATCH_MASK = (
    F.CREATE
    | F.CLOSE_WRITE
    | F.DELETE
    | F.MOVED_FROM
    | F.MOVED_TO
    | F.DELETE_SELF
    | F.MOVE_SELF
    | F.ONLYDIR
    | F.DONT_FOLLOW
    | F.EXCL_UNLINK
)
#: what we ask for on the parent of a deleted root, to see it come back
PARENT_MASK = F.CREATE | F.MOVED_TO | F.ONLYDIR

MAX_WATCHES_FILE = "/proc/sys/fs/inotify/max_user_watches"


class WatchLimitError(OSError):
    """inotify_add_watch failed with ENOSPC: the per-user watch limit is reached."""


def read_watch_limit() -> int | None:
    try:
        with open(MAX_WATCHES_FILE) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def count_folders(roots: list[str]) -> int:
    """How many folders (one watch each) watching ``roots`` takes."""
    total = 0
    for root in roots:
        for _, _, _ in os.walk(root):
            total += 1
    return total


def watch_limit_message(needed: int, limit: int | None, roots: list[str]) -> str:
    """The one error a user sees when the limit is hit: the setting, the numbers and the fix."""
    current = limit if limit is not None else 8192
    suggested = max(current * 2, current + needed)
    suggested = -(-suggested // 1024) * 1024
    return (
        f"inotify watch limit reached: fs.inotify.max_user_watches is {limit if limit is not None else 'unknown'} "
        f"and watching {', '.join(roots)} needs {needed} watches (one per folder) on top of those already in use; "
        f"raise it with 'sudo sysctl fs.inotify.max_user_watches={suggested}' (to keep it, add "
        f"'fs.inotify.max_user_watches={suggested}' to /etc/sysctl.d/90-inotify.conf); "
        "falling back to the watchfiles backend"
    )


class InotifyListener(Listener):
    """Recursive inotify watcher for every endpoint of a router (Linux only)."""

    backend = "inotify"

    def __init__(self, router: Any, **kwargs: Any) -> None:
        super().__init__(router, **kwargs)
        self._inotify: INotify | None = None
        self._stop_r = self._stop_w = -1
        self._dirs: dict[int, str] = {}  # watch descriptor -> absolute folder path
        self._wds: dict[str, int] = {}  # absolute folder path -> watch descriptor
        self._parents: dict[int, tuple[str, set[str]]] = {}  # parent watches of deleted roots
        self._creating: set[str] = set()  # new files not yet closed by their writer
        self._roots: list[str] = []
        self._fallback: Listener | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _setup(self) -> None:
        self._roots = self.roots
        if self._stop_r < 0:
            self._stop_r, self._stop_w = os.pipe()
        self._inotify = INotify()
        try:
            for root in self._roots:
                self._add_tree(root, None)
        except WatchLimitError:
            self._fall_back()
        logger.debug("inotify watching %d folders", len(self._wds))

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._fallback is not None:
                self._fallback._run()
                return
            assert self._inotify is not None
            ready, _, _ = select.select([self._inotify.fileno(), self._stop_r], [], [])
            if self._stop_r in ready or self._stopping.is_set():
                return
            raw = self._inotify.read(timeout=0)
            try:
                events = self._translate(raw)
            except WatchLimitError:
                self._fall_back()
                continue
            if events:
                self.router.submit(events)

    def _wake(self) -> None:
        if self._fallback is not None:
            self._fallback._stopping.set()
            self._fallback._wake()
        if self._stop_w >= 0:
            try:
                os.write(self._stop_w, b"x")
            except OSError:
                pass  # already closed: the thread is gone

    def _teardown(self) -> None:
        if self._fallback is not None:
            self._fallback._teardown()
            self._fallback = None
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1
        self._dirs.clear()
        self._wds.clear()
        self._parents.clear()
        self._creating.clear()

    def _fall_back(self) -> None:
        """Swap inotify for watchfiles after ENOSPC, logging what to change."""
        from .watchfiles import WatchfilesListener

        needed = count_folders(self._roots)
        logger.error("%s", watch_limit_message(needed, read_watch_limit(), self._roots))
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._dirs.clear()
        self._wds.clear()
        self._parents.clear()
        fallback = WatchfilesListener(self.router)
        fallback._setup()
        self._fallback = fallback

    @property
    def active_backend(self) -> str:
        """ "inotify", or "watchfiles" after falling back from the watch limit."""
        return self._fallback.backend if self._fallback is not None else self.backend

    # -- watches ------------------------------------------------------------------------------

    def _watch(self, path: str) -> bool:
        assert self._inotify is not None
        try:
            wd = self._inotify.add_watch(path, WATCH_MASK)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise WatchLimitError(exc.errno, exc.strerror) from exc
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return False  # gone (or replaced by a file) before we got to it
            if exc.errno == errno.EACCES:
                logger.warning("cannot watch %s: permission denied", path)
                return False
            raise
        old = self._dirs.get(wd)
        if old is not None and old != path:
            self._wds.pop(old, None)
        self._dirs[wd] = path
        self._wds[path] = wd
        return True

    def _add_tree(self, top: str, out: list[FileEvent] | None) -> None:
        """Watch ``top`` and the folders below it; with ``out``, report what they hold as CREATED."""
        if not self.router.should_watch_dir(top) or not self._watch(top):
            return
        for folder, dirs, files in os.walk(top):
            kept = []
            for name in dirs:
                path = os.path.join(folder, name)
                if self.router.should_watch_dir(path) and self._watch(path):
                    kept.append(name)
                    if out is not None:
                        out.append(self._event(path, Action.CREATED, True))
            dirs[:] = kept
            if out is not None:
                out.extend(self._event(os.path.join(folder, name), Action.CREATED, False) for name in files)

    def _drop_tree(self, top: str) -> None:
        """Forget the watches of ``top`` and everything below it (moved out of the tree)."""
        prefix = top + os.sep
        for path in [p for p in self._wds if p == top or p.startswith(prefix)]:
            wd = self._wds.pop(path)
            self._dirs.pop(wd, None)
            try:
                assert self._inotify is not None
                self._inotify.rm_watch(wd)
            except OSError:
                pass  # the kernel already dropped it

    def _rename_tree(self, old: str, new: str) -> None:
        """A watched folder moved within the tree: its watches stay, their paths change."""
        prefix = old + os.sep
        for wd, path in list(self._dirs.items()):
            if path == old or path.startswith(prefix):
                moved = new + path[len(old) :]
                self._dirs[wd] = moved
                self._wds.pop(path, None)
                self._wds[moved] = wd

    def _root_gone(self, root: str) -> None:
        self._drop_tree(root)
        self._watch_parent(root)

    def _watch_parent(self, root: str) -> None:
        """Watch the nearest existing ancestor of a vanished root, to notice it coming back."""
        assert self._inotify is not None
        parent = os.path.dirname(root)
        while parent and not os.path.isdir(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        try:
            wd = self._inotify.add_watch(parent, PARENT_MASK)
        except OSError as exc:
            logger.warning("%s is gone and its parent cannot be watched (%s); it will not be watched again", root, exc)
            return
        _, waiting = self._parents.setdefault(wd, (parent, set()))
        waiting.add(root)
        logger.info("%s was removed; watching for it to come back", root)

    def _parent_event(self, wd: int, out: list[FileEvent]) -> None:
        parent, waiting = self._parents.pop(wd)
        assert self._inotify is not None
        try:
            self._inotify.rm_watch(wd)
        except OSError:
            pass
        for root in waiting:
            if os.path.isdir(root):
                logger.info("%s is back; watching it again", root)
                self._add_tree(root, out)
            else:
                self._watch_parent(root)  # maybe a deeper ancestor exists now

    # -- translating ----------------------------------------------------------------------------

    def _event(self, path: str, action: Action, is_dir: bool) -> FileEvent:
        for root in self._roots:
            if path.startswith(root + os.sep):
                return FileEvent(root, path[len(root) + 1 :].replace(os.sep, "/"), action, is_dir)
        return FileEvent(path, "", action, is_dir)

    def _translate(self, raw: list[Any]) -> list[FileEvent]:
        """Turn one read of inotify events into FileEvents, updating the watches on the way."""
        out: list[FileEvent] = []
        moved_dirs: dict[int, str] = {}  # cookie -> old path of folders moved away in this read
        for ev in raw:
            mask = ev.mask
            if mask & F.Q_OVERFLOW:
                logger.warning("inotify queue overflowed: some changes were missed; rescanning folders")
                for root in self._roots:
                    self._add_tree(root, None)
                continue
            if ev.wd in self._parents:
                if not mask & F.IGNORED:
                    self._parent_event(ev.wd, out)
                continue
            base = self._dirs.get(ev.wd)
            if base is None:
                continue  # a watch we already forgot
            if mask & (F.IGNORED | F.DELETE_SELF | F.MOVE_SELF):
                if base in self._roots:
                    if base in self._wds:
                        self._root_gone(base)
                elif mask & F.IGNORED:
                    self._dirs.pop(ev.wd, None)
                    if self._wds.get(base) == ev.wd:
                        del self._wds[base]
                continue
            path = os.path.join(base, ev.name) if ev.name else base
            is_dir = bool(mask & F.ISDIR)
            if mask & F.CREATE:
                if is_dir:
                    out.append(self._event(path, Action.CREATED, True))
                    self._add_tree(path, out)
                elif self._written_later(path):
                    self._creating.add(path)
                else:
                    out.append(self._event(path, Action.CREATED, False))
            elif mask & F.CLOSE_WRITE:
                if path in self._creating:
                    self._creating.discard(path)
                    out.append(self._event(path, Action.CREATED, False))
                else:
                    out.append(self._event(path, Action.MODIFIED, False))
            elif mask & F.DELETE:
                self._creating.discard(path)
                out.append(self._event(path, Action.DELETED, is_dir))
            elif mask & F.MOVED_FROM:
                self._creating.discard(path)
                out.append(self._event(path, Action.MOVED_FROM, is_dir))
                if is_dir:
                    moved_dirs[ev.cookie] = path
            elif mask & F.MOVED_TO:
                out.append(self._event(path, Action.MOVED_TO, is_dir))
                if is_dir:
                    old = moved_dirs.pop(ev.cookie, None)
                    if old is not None and old in self._wds:
                        self._rename_tree(old, path)
                    else:
                        self._add_tree(path, out)  # moved in from outside the watched tree
        for old in moved_dirs.values():
            self._drop_tree(old)  # moved out of the watched tree
        return out

    @staticmethod
    def _written_later(path: str) -> bool:
        """Whether a new file will be reported on close: regular, not a hard link (those never get written)."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_nlink == 1
