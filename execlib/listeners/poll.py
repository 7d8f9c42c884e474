"""PollingListener: watching by comparing snapshots, for mounts where OS notifications never arrive.

Network shares, Docker bind mounts and WSL drives deliver no inotify events,
so the only way to see a change there is to look. Two things make looking
hard: not losing a save, and not spending a core doing it.

Never losing a save. A file's snapshot is ``(st_mtime_ns, st_size, st_ino,
st_dev)``. Timestamps are coarser than they look: Linux stamps files from a
clock that ticks every few milliseconds, FAT keeps two seconds and many
network file systems whole seconds. So while a file's timestamp is within
``RECENT_NS`` of now (or we saw it change less than that long ago) a rewrite
could leave the stat tuple unchanged: for those files (up to ``hash_limit``
bytes) the snapshot also holds a content hash, compared at every scan until
the file has been quiet long enough that any new write must move its mtime.
A folder whose own mtime is that recent is likewise scanned every tick.

Not spending a core. A snapshot of one folder is one directory listing and
one ``stat`` per file: 3-6 µs per file in Python, so sweeping a
100,000-file tree every 300 ms would take more than a core. So folders are
split:

- hot folders (a change seen in the last ``hot_seconds``, or still settling)
  are scanned every tick (``poll_delay_ms``): an edit there is seen within
  one tick;
- every other folder has its own ``stat`` checked every ``check_delay_ms``,
  which catches files created, deleted and renamed (editors' temp-file-and-
  rename saves included), and is scanned in full every ``cold_delay_ms``,
  which catches files rewritten in place;
- the two cold cadences are cursors going round the folder list, each tick
  visiting the share that is due, so the work is spread evenly; together
  they stay under ``max_rate`` stats per second (on a tree too big for that
  they slow down in proportion instead of eating the CPU), and under half a
  tick of wall time per tick (on a slow network mount the cold sweep lags,
  hot folders do not).

A slower cadence only delays a change, never hides it: every folder is
compared with its own previous snapshot, whenever that was taken.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..event import Action, FileEvent
from ..listener import Listener
from .order import chronological, written_ns

if TYPE_CHECKING:
    from ..router import BaseRouter

logger = logging.getLogger("execlib.listener")

#: what a subfolder is to us: watched (scanned), a link to a folder (reported, not followed), or ignored by the router
_DIR, _LINK, _IGNORED = 0, 1, 2
_S_IFMT, _S_IFDIR = 0o170000, 0o040000
#: listing through an open folder lets each stat resolve one name instead of the whole path (not on Windows)
_SCANDIR_FD = os.scandir in os.supports_fd

FileKey = tuple[int, int, int, int]  # st_mtime_ns, st_size, st_ino, st_dev


class _Folder:
    """One watched folder's last snapshot."""

    __slots__ = ("path", "root", "rel", "key", "files", "dirs", "digests", "hot_until", "settling")

    def __init__(self, path: str, root: str, rel: str) -> None:
        self.path = path
        self.root = root
        self.rel = rel  # relative to the root, "/"-separated; "" for the root itself
        self.key: tuple[int, int] | None = None  # the folder's own (st_mtime_ns, st_ino)
        self.files: dict[str, FileKey] = {}
        self.dirs: dict[str, int] = {}  # name -> _DIR, _LINK or _IGNORED
        self.digests: dict[str, tuple[bytes, float]] = {}  # recent files: content hash, compare-until (monotonic)
        self.hot_until = 0.0
        self.settling = False  # recent files or a recent folder mtime: stay hot until they are quiet

    def name(self, entry: str) -> str:
        return f"{self.rel}/{entry}" if self.rel else entry


class _Sweep:
    """A cursor going round the folder list once per period; ``owed`` is how many visits are due."""

    __slots__ = ("index", "owed")

    def __init__(self) -> None:
        self.index = 0
        self.owed = 0.0


def _digest(path: str) -> bytes:
    """Content hash of a small file; b"" if it cannot be read (that compares unequal to any hash)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return b""
    return h.digest()


def _entries(where: str | int) -> tuple[dict[str, FileKey], dict[str, bool]]:
    """A folder's files with their stat keys, and its subfolders (True: a real folder, False: a link to one)."""
    files: dict[str, FileKey] = {}
    dirs: dict[str, bool] = {}
    with os.scandir(where) as it:
        for entry in it:
            try:
                if entry.is_dir(follow_symlinks=False):  # from the listing's d_type: no stat needed
                    dirs[entry.name] = True
                    continue
                st = entry.stat()  # follows links: a linked file's content is what a build reads
            except OSError:
                continue  # deleted since the listing, or a dangling link
            if st.st_mode & _S_IFMT == _S_IFDIR:
                dirs[entry.name] = False
            else:
                files[entry.name] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
    return files, dirs


def _list(path: str) -> tuple[os.stat_result, dict[str, FileKey], dict[str, bool]]:
    """The folder's own stat and its entries."""
    if not _SCANDIR_FD:
        return os.stat(path), *_entries(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        return os.fstat(fd), *_entries(fd)
    finally:
        os.close(fd)


class PollingListener(Listener):
    """Watches every endpoint of a router by polling (see the module docstring for the cadences).

    ``poll_delay_ms`` is the tick; ``cold_delay_ms`` and ``check_delay_ms``
    the fastest cadence of full scans and own-stat checks of cold folders;
    ``max_rate`` caps their stats per second; ``hot_seconds`` is how long a
    folder stays hot after a change, ``hot_limit`` how many entries the hot
    folders may hold together (the least recently changed go cold first);
    files up to ``hash_limit`` bytes get a content hash while recent.
    """

    backend = "poll"

    #: a timestamp this close to now (either way: clocks of network servers drift) may be shared by the next write:
    #: covers the 2 s of FAT, the whole seconds of many network file systems and the kernel's coarse clock
    RECENT_NS = 2_000_000_000

    def __init__(
        self,
        router: BaseRouter,
        *,
        poll_delay_ms: int = 300,
        cold_delay_ms: int = 2000,
        check_delay_ms: int = 1000,
        max_rate: int = 20_000,
        hot_seconds: float = 60.0,
        hot_limit: int = 5_000,
        hash_limit: int = 4 << 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(router, **kwargs)
        self.poll_delay = poll_delay_ms / 1000
        self.cold_delay = cold_delay_ms / 1000
        self.check_delay = check_delay_ms / 1000
        self.max_rate = max_rate
        self.hot_seconds = hot_seconds
        self.hot_limit = hot_limit
        self.hash_limit = hash_limit
        self._teardown()

    # -- lifecycle -------------------------------------------------------------------------

    def _setup(self) -> None:
        self._teardown()
        self._roots = self.roots
        now = self._last_tick = time.monotonic()
        for root in self._roots:
            if os.path.isdir(root):
                self._add_folder(root, root, "", None, now)
            else:
                self._missing.add(root)
                logger.info("%s does not exist (yet); polling for it", root)
        logger.debug("polling %d folders, %d files", len(self._folders), self._files)

    def _run(self) -> None:
        while not self._stopping.is_set():
            began = time.monotonic()
            events = self._tick(began)
            if events:
                self.router.submit(events)
            # keep the tick's cadence; after a long tick still pause a little, so the loop never spins.
            # Waiting on the stop event (not sleeping) is what makes stop() prompt.
            pause = max(self.poll_delay - (time.monotonic() - began), self.poll_delay / 4)
            if self._stopping.wait(pause):
                return

    def _teardown(self) -> None:
        self._roots = []
        self._missing: set[str] = set()
        self._folders: dict[str, _Folder] = {}
        self._order: list[_Folder] = []  # what the cold sweeps go round; forgotten folders are skipped
        self._hot: OrderedDict[str, _Folder] = OrderedDict()  # least recently changed first
        self._checks, self._scans = _Sweep(), _Sweep()
        self._files = 0  # files in all snapshots, for pacing
        self._last_tick = 0.0

    # -- one tick ------------------------------------------------------------------------------

    def _periods(self) -> tuple[float, float]:
        """(check, full scan) period of cold folders: the fastest the ``max_rate`` stat budget allows."""
        folders = len(self._folders)
        check = max(self.check_delay, folders * 2 / self.max_rate)  # checks take at most half the budget
        spare = self.max_rate - folders / check
        return check, max(self.cold_delay, (self._files + folders) / spare)

    def _tick(self, now: float) -> list[FileEvent]:
        out: list[FileEvent] = []
        elapsed, self._last_tick = now - self._last_tick, now
        for root in list(self._missing):
            if os.path.isdir(root):
                logger.info("%s is back; polling it again", root)
                self._missing.discard(root)
                self._add_folder(root, root, "", out, now)
        scanned: set[str] = set()
        for root in self._roots:  # roots every tick: a deleted or replaced root is seen at once, whatever its cadence
            folder = self._folders.get(root)
            if folder is not None and root not in self._hot and self._moved(folder):
                self._scan(folder, out, now)  # reports the root's removal itself if it is gone
                scanned.add(root)
        for folder in list(self._hot.values()):
            if self._stopping.is_set():
                return out
            if self._folders.get(folder.path) is folder and folder.path not in scanned:
                self._scan(folder, out, now)
                scanned.add(folder.path)

        def check(folder: _Folder) -> None:
            if folder.path not in scanned and folder.path not in self._hot and self._moved(folder):
                self._scan(folder, out, now)
                scanned.add(folder.path)

        def scan(folder: _Folder) -> None:
            if folder.path not in scanned and folder.path not in self._hot:
                self._scan(folder, out, now)
                scanned.add(folder.path)

        # cold work gets half a tick of wall time, checks first (cheap, and they catch renames), so that hot
        # folders keep their latency on a slow mount; what is not done is done next tick
        check_period, scan_period = self._periods()
        slice_end = time.monotonic() + self.poll_delay / 2
        self._sweep(self._checks, elapsed / check_period, check, slice_end - self.poll_delay / 4)
        self._sweep(self._scans, elapsed / scan_period, scan, slice_end)
        self._cool(now)
        # Deletions first (they have no time left to sort by), then what was written, in the order it
        # was written (each folder before its files), as the routers promise their batch callbacks.
        gone = [e for e in out if e.action is Action.DELETED]
        written = chronological([(written_ns(e.path), e) for e in out if e.action is not Action.DELETED])
        return gone + written

    def _sweep(self, sweep: _Sweep, rounds: float, visit: Callable[[_Folder], None], until: float) -> None:
        """Visit the next ``rounds`` of the folder list (plus what is still owed), stopping at ``until``."""
        order = self._order
        live = len(self._folders)
        sweep.owed = min(sweep.owed + rounds * live, live)  # never more than a round behind
        steps = 0
        while sweep.owed >= 1 and steps < len(order) and not self._stopping.is_set() and time.monotonic() < until:
            steps += 1  # forgotten folders are stepped over, but never more than once round the list per call
            sweep.index %= len(order)
            folder = order[sweep.index]
            sweep.index += 1
            if self._folders.get(folder.path) is folder:
                sweep.owed -= 1
                visit(folder)
            order = self._order  # a visit may have added folders (appended) or compacted the list

    @staticmethod
    def _moved(folder: _Folder) -> bool:
        """Whether a folder's own stat moved: entries added, removed or renamed, the folder replaced or gone."""
        try:
            st = os.stat(folder.path)
        except OSError:
            return True  # gone: its scan reports that
        return (st.st_mtime_ns, st.st_ino) != folder.key

    def _cool(self, now: float) -> None:
        """Let quiet folders go cold, and the least recently changed ones too while the hot set is over its limit."""
        for path, folder in list(self._hot.items()):
            if folder.hot_until <= now and not folder.settling:
                del self._hot[path]
        entries = sum(len(f.files) + len(f.dirs) for f in self._hot.values())
        while entries > self.hot_limit and len(self._hot) > 1:
            _, folder = self._hot.popitem(last=False)
            entries -= len(folder.files) + len(folder.dirs)  # its digests stay: its cold scan still compares them

    # -- snapshots ------------------------------------------------------------------------------

    def _add_folder(self, path: str, root: str, rel: str, out: list[FileEvent] | None, now: float) -> None:
        """Start tracking a folder (and, through its scan, the folders below it); ``out`` gets its contents."""
        folder = _Folder(path, root, rel)
        self._folders[path] = folder
        self._order.append(folder)
        if out is not None:  # new while running: hot while it is being filled
            folder.hot_until = now + self.hot_seconds
            self._hot[path] = folder
        self._scan(folder, out, now, fresh=True)

    def _scan(self, folder: _Folder, out: list[FileEvent] | None, now: float, fresh: bool = False) -> None:
        """Compare a folder with its last snapshot, reporting the differences to ``out`` (None: report nothing).

        ``fresh``: the folder is new to us, so its files are not "changed" (hashed only if their mtime is recent).
        """
        path = folder.path
        try:
            st, files, dirs = _list(path)
        except (FileNotFoundError, NotADirectoryError):
            self._vanished(folder, out)
            return
        except OSError as exc:  # unreadable (permissions): said once, then looked at again on its cadence
            (logger.warning if fresh else logger.debug)("cannot poll %s (%s); keeping its last snapshot", path, exc)
            return
        folder.key = (st.st_mtime_ns, st.st_ino)
        wall = time.time_ns()
        digests = folder.digests
        differs = False
        for name in folder.dirs.keys() - dirs.keys():
            self._drop_dir(folder, name, out)
            differs = True
        differs = self._scan_files(folder, files, out, wall, now, fresh) or differs
        differs = self._scan_dirs(folder, dirs, out, now, fresh) or differs

        recent_folder = abs(wall - st.st_mtime_ns) < self.RECENT_NS
        folder.settling = bool(digests) or recent_folder
        if differs:
            folder.hot_until = now + self.hot_seconds
        if differs or folder.settling:
            self._hot[path] = folder
            self._hot.move_to_end(path)

    def _scan_files(
        self,
        folder: _Folder,
        files: dict[str, FileKey],
        out: list[FileEvent] | None,
        wall: int,
        now: float,
        fresh: bool,
    ) -> bool:
        """Compare a folder's files with its snapshot and keep the new listing; True if something changed."""
        old_files, digests = folder.files, folder.digests
        differs = False
        kept = 0  # old names still there: fewer than before means some were deleted
        for name, key in files.items():
            old = old_files.get(name)
            if old == key:
                kept += 1
                if name not in digests:
                    continue  # the common case: unchanged, and too old to be rewritten unseen
                if self._recheck(folder, name, key, wall, now):
                    self._emit(out, folder, name, Action.MODIFIED, False)
                    differs = True
                continue
            if old is None:
                self._emit(out, folder, name, Action.CREATED, False)
            else:
                kept += 1
                self._emit(out, folder, name, Action.MODIFIED, False)
            self._remember(folder, name, key, wall, now, changed=not fresh)
            differs = differs or not fresh
        if kept < len(old_files):
            for name in old_files.keys() - files.keys():
                digests.pop(name, None)
                self._emit(out, folder, name, Action.DELETED, False)
            differs = True
        folder.files = files
        self._files += len(files) - len(old_files)
        return differs

    def _scan_dirs(
        self, folder: _Folder, dirs: dict[str, bool], out: list[FileEvent] | None, now: float, fresh: bool
    ) -> bool:
        """Compare a folder's subfolders with its snapshot, tracking new ones; True if something changed.

        ``dirs`` maps each subfolder name to whether it is a real folder (False: a link to one).
        """
        old_dirs = folder.dirs
        differs = False
        new_dirs: dict[str, int] = {}
        for name, real in dirs.items():
            kind = old_dirs.get(name)
            if kind is None or (kind == _LINK) == real:  # new, or a link replaced by a folder (or back)
                if kind is not None:
                    self._drop_dir(folder, name, out)
                child = os.path.join(folder.path, name)
                kind = _LINK if not real else _DIR if self.router.should_watch_dir(child) else _IGNORED
                if kind != _IGNORED:
                    self._emit(out, folder, name, Action.CREATED, True)
                    differs = differs or not fresh
                new_dirs[name] = kind
                if kind == _DIR:
                    self._add_folder(child, folder.root, folder.name(name), out, now)
            else:
                new_dirs[name] = kind
        folder.dirs = new_dirs
        return differs

    def _remember(self, folder: _Folder, name: str, key: FileKey, wall: int, now: float, changed: bool) -> None:
        """Keep a content hash of a file that could be rewritten without its stat tuple changing."""
        recent = changed or abs(wall - key[0]) < self.RECENT_NS
        if recent and key[1] <= self.hash_limit:
            digest = _digest(os.path.join(folder.path, name))
            folder.digests[name] = (digest, now + self.RECENT_NS / 1e9)
        else:
            folder.digests.pop(name, None)

    def _recheck(self, folder: _Folder, name: str, key: FileKey, wall: int, now: float) -> bool:
        """Whether a recent file with an unchanged stat tuple has new content; forgets its hash once it is quiet."""
        digest, until = folder.digests[name]
        current = _digest(os.path.join(folder.path, name))
        if current != digest:
            folder.digests[name] = (current, now + self.RECENT_NS / 1e9)
            return True
        if until <= now and abs(wall - key[0]) >= self.RECENT_NS:
            del folder.digests[name]  # any later write moves its mtime: the stat tuple is enough from now on
        return False

    def _drop_dir(self, parent: _Folder, name: str, out: list[FileEvent] | None) -> None:
        """A subfolder is gone: report what it held (deepest first), then the folder, and forget it all."""
        kind = parent.dirs.pop(name, None)
        child = self._folders.get(os.path.join(parent.path, name))
        if child is not None:
            self._forget(child, out)
        if kind in (_DIR, _LINK):
            self._emit(out, parent, name, Action.DELETED, True)

    def _forget(self, folder: _Folder, out: list[FileEvent] | None) -> None:
        for name in list(folder.dirs):
            self._drop_dir(folder, name, out)
        for name in folder.files:
            self._emit(out, folder, name, Action.DELETED, False)
        self._files -= len(folder.files)
        folder.files, folder.digests = {}, {}
        self._folders.pop(folder.path, None)
        self._hot.pop(folder.path, None)
        if len(self._order) > 2 * len(self._folders) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop forgotten folders from the sweep list, keeping each cursor at the same live folder."""
        live = [self._folders.get(f.path) is f for f in self._order]
        for sweep in (self._checks, self._scans):
            sweep.index = sum(live[: sweep.index])
        self._order = [f for f, keep in zip(self._order, live, strict=True) if keep]

    def _vanished(self, folder: _Folder, out: list[FileEvent] | None) -> None:
        """A folder we were scanning is gone (deleted, renamed, replaced by a file)."""
        if not folder.rel:
            logger.info("%s was removed; polling for it to come back", folder.path)
            self._forget(folder, out)
            self._missing.add(folder.path)
            return
        parent = self._folders.get(os.path.dirname(folder.path))
        if parent is None:
            self._forget(folder, out)
            return
        self._drop_dir(parent, os.path.basename(folder.path), out)
        # its parent's listing changed too (a rename shows up there as a new name): scan it next tick
        parent.hot_until = max(parent.hot_until, time.monotonic() + self.hot_seconds)
        self._hot[parent.path] = parent

    @staticmethod
    def _emit(out: list[FileEvent] | None, folder: _Folder, name: str, action: Action, is_dir: bool) -> None:
        if out is not None:
            out.append(FileEvent(folder.root, folder.name(name), action, is_dir))
