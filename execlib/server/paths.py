"""Mapping request paths to files under the site root, refusing anything outside it.

The live-reload hub uses the same mapping to learn which file a connected page
shows, so both live here.
"""

from __future__ import annotations

import os
import re
import stat
from enum import Enum
from typing import NamedTuple

from ..fspath import given_path

# Encoded slashes, backslashes and NUL bytes never name a file under root.
_HOSTILE_RAW = re.compile(rb"%2f|%5c|%00|\\", re.IGNORECASE)
# How many URL -> filesystem mappings SiteResolver remembers; the memo is cleared when
# full, so a client requesting endless distinct paths costs memory only up to this.
_MEMO_SIZE = 4096


class BadPath(Exception):
    """A request path that can never name a file; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Kind(Enum):
    FILE = "file"
    DIRECTORY = "directory"
    REDIRECT = "redirect"
    MISSING = "missing"


class Target(NamedTuple):
    """What a URL path names: a file, a folder (listing), a redirect to the slashed folder, or nothing."""

    kind: Kind
    fs_path: str = ""
    st: os.stat_result | None = None


def url_segments(path: str, raw_path: bytes | None = None) -> list[str]:
    """Split a decoded URL path into safe segments, or raise BadPath.

    ``raw_path`` is the path as sent, still percent-encoded; it lets us refuse
    ``%2f`` and ``%5c`` that decoding would turn into separators.
    """
    if "\x00" in path or (raw_path is not None and b"%00" in raw_path.lower()):
        raise BadPath(400)
    if raw_path is not None and _HOSTILE_RAW.search(raw_path):
        raise BadPath(404)
    if not path.startswith("/") or "\\" in path or "//" in path:
        raise BadPath(404)
    segments = path[1:].split("/")
    if segments and segments[-1] == "":
        segments.pop()
    for segment in segments:
        if segment in (".", "..") or segment == "":
            raise BadPath(404)
    return segments


class SiteResolver:
    """Resolves URL paths against one root folder with development-server rules.

    Refusing symlinks that leave root used to cost an ``os.path.realpath`` per
    request (an ``lstat`` per path component plus a lot of Python). Instead,
    each request ``lstat``s the file and every folder between root and it: when
    none of them is a symlink the path cannot leave root, and ``lstat`` of a
    regular file is its ``stat``. Only a path that does contain a symlink pays
    for ``realpath``. Nothing about the file system is cached across requests
    (a symlink created after a first request is still refused); only the pure
    URL -> path mapping is memoised.

    ``root`` is kept as given, symlinks and all, so every request goes through
    it to the folder it names at that moment: a ``current`` symlink swapped to
    a new release is served from at once, costing nothing when root is a plain folder.
    """

    def __init__(self, root: str | os.PathLike[str], follow_symlinks: bool = False) -> None:
        self.root = given_path(root)
        self.follow_symlinks = follow_symlinks
        # (path, raw_path) -> (filesystem path, the folders between root and it).
        self._memo: dict[tuple[str, bytes | None], tuple[str, tuple[str, ...]]] = {}

    def is_inside(self, fs_path: str) -> bool:
        # root's own real path is looked up now: it may have been re-pointed since the last request
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(fs_path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def fs_path(self, segments: list[str]) -> str:
        return os.path.join(self.root, *segments) if segments else self.root

    def _map(self, path: str, raw_path: bytes | None) -> tuple[str, tuple[str, ...]]:
        """The filesystem path a URL names and its folders below root (memoised; raises BadPath)."""
        key = (path, raw_path)
        mapped = self._memo.get(key)
        if mapped is None:
            segments = url_segments(path, raw_path)
            folders = tuple(self.fs_path(segments[:i]) for i in range(1, len(segments)))
            mapped = (self.fs_path(segments), folders)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = mapped
        return mapped

    def _stat_inside(self, fs_path: str, folders: tuple[str, ...]) -> os.stat_result | None:
        """``stat`` of ``fs_path`` if it exists and (unless following symlinks) stays inside root."""
        try:
            if self.follow_symlinks:
                return os.stat(fs_path)
            st = os.lstat(fs_path)
            plain = not stat.S_ISLNK(st.st_mode)
            if plain:
                for folder in folders:
                    if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a symlink: it may point anywhere
                        plain = False
                        break
            if plain:
                return st
            # The path goes through a symlink: allowed only when it resolves inside root.
            return os.stat(fs_path) if self.is_inside(fs_path) else None
        except OSError:  # missing, not a folder, no permission, name too long...
            return None

    def resolve(self, path: str, raw_path: bytes | None = None) -> Target:
        """Resolve a decoded URL path (``/a/b.html``); raises BadPath for hostile paths."""
        fs_path, folders = self._map(path, raw_path)
        st = self._stat_inside(fs_path, folders)
        if st is None:
            return Target(Kind.MISSING)
        if stat.S_ISREG(st.st_mode):
            return Target(Kind.FILE, fs_path, st)
        if stat.S_ISDIR(st.st_mode):
            if not path.endswith("/"):
                return Target(Kind.REDIRECT, fs_path)
            index = os.path.join(fs_path, "index.html")
            # When fs_path is root itself it is no folder "between": the user named it, symlink or not.
            index_st = self._stat_inside(index, (*folders, fs_path) if fs_path != self.root else folders)
            if index_st is not None and stat.S_ISREG(index_st.st_mode):
                return Target(Kind.FILE, index, index_st)
            return Target(Kind.DIRECTORY, fs_path, st)
        return Target(Kind.MISSING)

    def page_file(self, path: str) -> str | None:
        """The file a page URL shows (``/`` -> ``index.html``), relative to root with ``/``; None if none."""
        try:
            target = self.resolve(path)
        except BadPath:
            return None
        if target.kind is Kind.REDIRECT:
            target = self.resolve(path + "/")
        if target.kind is not Kind.FILE:
            return None
        return os.path.relpath(target.fs_path, self.root).replace(os.sep, "/")
