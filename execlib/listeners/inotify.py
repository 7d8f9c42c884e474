"""InotifyListener: recursive folder watching on Linux with inotify (through inotify-simple).

inotify watches one folder per watch descriptor, so this module keeps the
map from descriptors to folders up to date: folders created or moved in are
watched (and what they already hold is reported, since it may have been
written before the watch existed); folders renamed within the tree keep
their descriptors and are re-labelled; folders moved out are unwatched.

Roots are kept as given (``current``, a symlink, stays ``current``): each is
watched at the real folder it names now, and the directory entries that
could change what it names (the symlinks on its path; once deleted, its
missing name) are watched in their parent folders. When one of them
changes, or the root folder itself is deleted or moved, the root is looked
up again: a new folder is watched and what it holds reported as created
(and what the folder it used to name holds, as deleted). Entries are
watched before the path is looked at, and looked at again once they are, so
a root that comes back before we are ready for it is still seen.

A file's change is reported when its writer closes it (IN_CLOSE_WRITE), not on
every write(), so callbacks see whole files; a new regular file is reported
once, as CREATED, when it is first closed.

Events keep the kernel's order. What a new folder was found to hold comes
last in its batch, in the order the files were last written: the scan that
finds them runs after the kernel's events were read, and what it finds may
have been written after any of them.

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
from typing import TYPE_CHECKING, Any

from inotify_simple import INotify
from inotify_simple import flags as F

from ..event import Action, FileEvent
from ..fspath import trace
from ..listener import Listener
from .order import chronological, written_ns

if TYPE_CHECKING:
    from ..router import BaseRouter

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
#: what we ask for on a folder holding an entry a root's path goes through (a symlink, or the
#: name of a deleted root): that entry created, replaced or removed, and the folder itself going.
#: A subset of WATCH_MASK, so a folder that is both keeps every event it needs.
SENTINEL_MASK = F.CREATE | F.MOVED_TO | F.DELETE | F.MOVED_FROM | F.DELETE_SELF | F.MOVE_SELF | F.ONLYDIR
#: how many times one lookup of a root is retried while its path keeps changing under us
MAX_LOOKUPS = 100

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

    def __init__(self, router: BaseRouter, **kwargs: Any) -> None:
        super().__init__(router, **kwargs)
        self._inotify: INotify | None = None
        self._stop_r = self._stop_w = -1
        # Folders are named as under their root as given (current/sub, not releases/v1/sub).
        self._dirs: dict[int, str] = {}  # watch descriptor -> folder
        self._wds: dict[str, int] = {}  # folder -> watch descriptor
        self._real: dict[str, str] = {}  # watched root -> the real folder watched for it
        # watch descriptor -> (folder, entry name -> roots whose path goes through that entry)
        self._sentinels: dict[int, tuple[str, dict[str, set[str]]]] = {}
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
                self._follow(root, None)
        except WatchLimitError:
            self._fall_back()
        logger.debug("inotify watching %d folders", len(self._wds))

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._fallback is not None:
                self._fallback._run()
                return
            assert self._inotify is not None
            # poll, not select: the server raises the open-file limit, and select() cannot take an fd >= 1024
            waiter = select.poll()
            waiter.register(self._inotify.fileno(), select.POLLIN)
            waiter.register(self._stop_r, select.POLLIN)
            ready = {fd for fd, _ in waiter.poll()}
            if self._stop_r in ready or self._stopping.is_set():
                return
            raw = self._inotify.read(timeout=0)
            found: list[FileEvent] = []  # what new folders held when we looked: reported last
            try:
                events = self._translate(raw, found)
                if found:
                    # What the kernel queued while we scanned goes before what the scan found: a
                    # file written in a new folder after a change elsewhere must not be reported first.
                    events += self._translate(self._inotify.read(timeout=0), found)
            except WatchLimitError:
                self._fall_back()
                continue
            events += chronological([(written_ns(event.path), event) for event in found])
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
        self._real.clear()
        self._sentinels.clear()
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
        self._real.clear()
        self._sentinels.clear()
        fallback = WatchfilesListener(self.router)
        fallback._setup()
        self._fallback = fallback

    @property
    def active_backend(self) -> str:
        """ "inotify", or "watchfiles" after falling back from the watch limit."""
        return self._fallback.backend if self._fallback is not None else self.backend

    # -- watches ------------------------------------------------------------------------------

    def _watch(self, path: str, label: str) -> bool:
        """Watch folder ``path``, known from now on as ``label`` (its name under its root as given)."""
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
        if old is not None and old != label:
            self._wds.pop(old, None)
        self._dirs[wd] = label
        self._wds[label] = wd
        return True

    def _on_disk(self, label: str) -> str:
        """The path to hand the OS for a folder known as ``label``: through the real folder its root names."""
        for root, real in self._real.items():
            if label == root:
                return real
            if label.startswith(root + os.sep):
                return real + label[len(root) :]
        return label

    def _add_tree(self, top: str, out: list[FileEvent] | None) -> bool:
        """Watch ``top`` and the folders below it; with ``out``, report what they hold as CREATED.

        False when ``top`` itself could not be watched (gone already, or ignored).
        """
        real_top = self._on_disk(top)
        if not self.router.should_watch_dir(top) or not self._watch(real_top, top):
            return False
        for folder, dirs, files in os.walk(real_top):
            base = top + folder[len(real_top) :]
            kept = []
            for name in dirs:
                label = os.path.join(base, name)
                if self.router.should_watch_dir(label) and self._watch(os.path.join(folder, name), label):
                    kept.append(name)
                    if out is not None:
                        out.append(self._event(label, Action.CREATED, True))
            dirs[:] = kept
            if out is not None:
                out.extend(self._event(os.path.join(base, name), Action.CREATED, False) for name in files)
        return True

    def _tree_events(self, top: str, real_top: str, action: Action) -> list[FileEvent]:
        """``action`` for every folder and file of ``real_top``, named as under ``top`` (nothing is watched)."""
        events: list[FileEvent] = []
        for folder, dirs, files in os.walk(real_top):
            base = top + folder[len(real_top) :]
            dirs[:] = [d for d in dirs if self.router.should_watch_dir(os.path.join(base, d))]
            events.extend(self._event(os.path.join(base, d), action, True) for d in dirs)
            events.extend(self._event(os.path.join(base, f), action, False) for f in files)
        return events

    def _drop_tree(self, top: str) -> None:
        """Forget the watches of ``top`` and everything below it (moved out of the tree)."""
        prefix = top + os.sep
        for path in [p for p in self._wds if p == top or p.startswith(prefix)]:
            wd = self._wds.pop(path)
            self._dirs.pop(wd, None)
            if wd in self._sentinels:
                continue  # the same folder also holds an entry a root goes through: keep its watch
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

    # -- following roots --------------------------------------------------------------------

    def _follow(self, root: str, out: list[FileEvent] | None, dead: bool = False) -> None:
        """Watch the folder ``root`` names now and the entries that could change that.

        ``dead``: the watched root folder itself was deleted or moved away.
        With ``out``, a newly watched folder's contents are reported as CREATED.
        """
        if dead:
            self._unwatch_root(root)
        for _ in range(MAX_LOOKUPS):
            real, entries = trace(root)
            if real != self._real.get(root):
                self._repoint(root, real, out)
            self._set_sentinels(root, entries)
            # What changed before those watches were in place sent us nothing: look once more, and
            # only stop when nothing moved in between (a root gone again before we could watch it
            # shows up here too).
            if trace(root) == (real, entries):
                return
        logger.warning("%s keeps changing; watching it as it is now", root)

    def _repoint(self, root: str, real: str | None, out: list[FileEvent] | None) -> None:
        """``root`` now names ``real`` (None: nothing): move its watches there."""
        old = self._real.get(root)
        if old is not None:
            # Still there, the old folder is no longer what root names: from root's side it is gone.
            self._unwatch_root(root)
            if out is not None and os.path.isdir(old):
                out.extend(self._tree_events(root, old, Action.DELETED))
        if real is None:
            if out is not None:
                logger.info("%s was removed; watching for it to come back", root)
            else:
                logger.info("%s does not exist; watching for it to appear", root)
            return
        self._real[root] = real
        if not self._add_tree(root, out):
            del self._real[root]  # gone again already: the next lookup says so
            return
        if old is not None:
            logger.info("%s now names %s; watching it instead of %s", root, real, old)
        elif out is not None:
            logger.info("%s is back; watching it again", root)

    def _unwatch_root(self, root: str) -> None:
        self._drop_tree(root)
        self._real.pop(root, None)
        prefix = root + os.sep
        self._creating = {p for p in self._creating if not p.startswith(prefix)}

    def _set_sentinels(self, root: str, entries: list[tuple[str, str]]) -> None:
        """Watch exactly ``entries`` (parent folder, name) on behalf of ``root``.

        New watches first, obsolete ones after: a folder in both keeps its watch throughout.
        """
        assert self._inotify is not None
        for folder, name in entries:
            try:
                # MASK_ADD: when the folder is also watched as part of a tree, keep that watch's mask
                wd = self._inotify.add_watch(folder, SENTINEL_MASK | F.MASK_ADD)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise WatchLimitError(exc.errno, exc.strerror) from exc
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):  # those: gone, the next lookup sees it
                    logger.warning("cannot watch %s (%s): changes to %s there go unnoticed", folder, exc, root)
                continue
            _, names = self._sentinels.get(wd, (folder, {}))
            self._sentinels[wd] = (folder, names)
            names.setdefault(name, set()).add(root)
        wanted = set(entries)
        for wd, (folder, names) in list(self._sentinels.items()):
            for name, roots in list(names.items()):
                if root in roots and (folder, name) not in wanted:
                    roots.discard(root)
                    if not roots:
                        del names[name]
            if not names:
                self._unsentinel(wd)

    def _unsentinel(self, wd: int) -> None:
        self._sentinels.pop(wd, None)
        if wd in self._dirs:
            return  # also a folder of a watched tree: that watch stays
        try:
            assert self._inotify is not None
            self._inotify.rm_watch(wd)
        except OSError:
            pass  # the kernel already dropped it

    def _sentinel_event(self, ev: Any, out: list[FileEvent]) -> None:
        _, names = self._sentinels[ev.wd]
        if ev.mask & (F.IGNORED | F.DELETE_SELF | F.MOVE_SELF):
            # The folder itself went: every root going through it is looked up from scratch.
            roots = set().union(*names.values())
            self._unsentinel(ev.wd)
        elif ev.name in names:
            roots = set(names[ev.name])
        else:
            return  # another entry of that folder: nothing to do with our roots
        for root in roots:
            self._follow(root, out)

    # -- translating ----------------------------------------------------------------------------

    def _event(self, path: str, action: Action, is_dir: bool) -> FileEvent:
        for root in self._roots:
            if path.startswith(root + os.sep):
                return FileEvent(root, path[len(root) + 1 :].replace(os.sep, "/"), action, is_dir)
        return FileEvent(path, "", action, is_dir)

    def _translate(self, raw: list[Any], found: list[FileEvent]) -> list[FileEvent]:
        """Turn one read of inotify events into FileEvents, updating the watches on the way.

        What new folders hold (written before their watch was in place) goes to ``found``.
        """
        out: list[FileEvent] = []
        moved_dirs: dict[int, str] = {}  # cookie -> old path of folders moved away in this read
        for ev in raw:
            if ev.mask & F.Q_OVERFLOW:
                self._rescan(out)
                continue
            if ev.wd in self._sentinels:
                self._sentinel_event(ev, out)
                if ev.wd not in self._dirs:
                    continue
            base = self._dirs.get(ev.wd)
            if base is None:
                continue  # a watch we already forgot
            if ev.mask & (F.IGNORED | F.DELETE_SELF | F.MOVE_SELF):
                self._watch_gone(ev, base, out)
            else:
                self._entry_changed(ev, base, out, found, moved_dirs)
        for old in moved_dirs.values():
            self._drop_tree(old)  # moved out of the watched tree
        return out

    def _rescan(self, out: list[FileEvent]) -> None:
        """The kernel dropped events (queue overflow): look every root up again and re-walk its tree."""
        logger.warning("inotify queue overflowed: some changes were missed; rescanning folders")
        for root in self._roots:
            self._follow(root, out)
            if root in self._real:
                self._add_tree(root, None)

    def _watch_gone(self, ev: Any, base: str, out: list[FileEvent]) -> None:
        """Watched folder ``base`` itself was deleted or moved, or the kernel dropped its watch (IN_IGNORED)."""
        if base in self._roots:
            # a root is looked up again (it may come back, or its name now lead elsewhere);
            # a stale descriptor of a root already re-watched is left alone
            if self._wds.get(base) == ev.wd:
                self._follow(base, out, dead=True)
        elif ev.mask & F.IGNORED:
            # below a root, the parent folder's own event reports the change: only the dead watch is forgotten
            self._dirs.pop(ev.wd, None)
            if self._wds.get(base) == ev.wd:
                del self._wds[base]

    def _entry_changed(
        self, ev: Any, base: str, out: list[FileEvent], found: list[FileEvent], moved_dirs: dict[int, str]
    ) -> None:
        """An entry of watched folder ``base`` was created, written, deleted or moved: report it, keep watches true."""
        mask = ev.mask
        path = os.path.join(base, ev.name) if ev.name else base
        is_dir = bool(mask & F.ISDIR)
        if mask & F.CREATE:
            self._created(path, is_dir, out, found)
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
                moved_dirs[ev.cookie] = path  # its MOVED_TO in this read, if any, says where it went
        elif mask & F.MOVED_TO:
            out.append(self._event(path, Action.MOVED_TO, is_dir))
            if is_dir:
                self._moved_in(path, moved_dirs.pop(ev.cookie, None), out)

    def _created(self, path: str, is_dir: bool, out: list[FileEvent], found: list[FileEvent]) -> None:
        if is_dir:
            out.append(self._event(path, Action.CREATED, True))
            self._add_tree(path, found)
        elif self._written_later(path):
            self._creating.add(path)  # reported as CREATED on its first close, once whole
        else:
            out.append(self._event(path, Action.CREATED, False))

    def _moved_in(self, path: str, old: str | None, out: list[FileEvent]) -> None:
        """A folder arrived at ``path``; ``old`` is where it was, if it moved within this read."""
        if old is not None and old in self._wds:
            self._rename_tree(old, path)  # moved within the tree: its watches stay
        else:
            self._add_tree(path, out)  # moved in from outside the watched tree

    @staticmethod
    def _written_later(path: str) -> bool:
        """Whether a new file will be reported on close: regular, not a hard link (those never get written)."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_nlink == 1
