"""Mapping request paths to files under the site root, refusing anything outside it.

The live-reload hub uses the same mapping to learn which file a connected page
shows, so both live here.

Every step is linear in the path's length: a request path is attacker-chosen,
and the resolver runs on the event loop, so anything quadratic (building every
prefix of ``/a/a/a/...``) would freeze the server for seconds per request.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import sys
from collections.abc import Iterator
from enum import Enum
from typing import NamedTuple

from ..fspath import given_path

# Encoded slashes, backslashes and NUL bytes never name a file under root.
_HOSTILE_RAW = re.compile(rb"%2f|%5c|%00|\\", re.IGNORECASE)
#: Longest request target (path and query string, as sent) the server answers; longer ones get
#: 414 URI Too Long. 8 KB is what common servers and proxies allow; no real page URL comes close.
MAX_TARGET_BYTES = 8192
# Total size in bytes (keys, values and their dict slot) of the URL -> filesystem mappings
# SiteResolver remembers; the memo is cleared when it would grow past this, so a client requesting
# endless distinct (or very long) paths costs at most this much memory. A typical entry is ~500 bytes.
_MEMO_BYTES = 2 << 20
# The key tuple and the dict slot of one entry, on top of its strings (CPython, 64-bit).
_ENTRY_OVERHEAD = 120
# A mapping bigger than this is not remembered: only hostile or broken clients send such paths,
# and one of them must not push out the site's real pages.
_MEMO_ENTRY_BYTES = _MEMO_BYTES // 64
# Folders below root of a path are memoised (saving a slice per folder per request) only while
# their total length is under this; a longer path's folders are sliced out of it when needed.
_FOLDERS_CHARS = 1024


class BadPath(Exception):
    """A request path that can never name a file; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Kind(Enum):
    FILE = "file"
    DIRECTORY = "directory"
    REDIRECT = "redirect"  # to the path with a slash added: a folder named without one
    UNSLASH = "unslash"  # to the path without its trailing slash: ``/about/`` when ``about.html`` answers ``/about``
    MISSING = "missing"
    FORBIDDEN = "forbidden"  # inside root, but the server's user may not read or enter it


class Target(NamedTuple):
    """What a URL path names: a file, a folder (listing), a redirect (adding or removing the slash), or nothing."""

    kind: Kind
    fs_path: str = ""
    st: os.stat_result | None = None


def target_too_long(path: str, raw_path: bytes | None, query_string: bytes = b"") -> bool:
    """True when a request target is over ``MAX_TARGET_BYTES`` (answer 414, resolve nothing).

    ``raw_path`` (as sent) is measured when the server gives it; the decoded path is never longer.
    """
    length = len(raw_path) if raw_path is not None else len(path)
    if query_string:
        length += 1 + len(query_string)
    return length > MAX_TARGET_BYTES


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

    With ``clean_urls``, a path that names no file also tries the same path plus ``.html``
    (``/about`` -> ``about.html``), the way GitHub Pages and Netlify serve sites; see ``resolve``
    for the precedence. The static site and the live-reload hub both ask this resolver, so a page
    and the file it shows are matched by one rule.
    """

    def __init__(self, root: str | os.PathLike[str], follow_symlinks: bool = False, clean_urls: bool = False) -> None:
        self.root = given_path(root)
        self.follow_symlinks = follow_symlinks
        self.clean_urls = clean_urls
        # Segments are joined onto this; each separator after it ends one folder below root.
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        # (path, raw_path) -> (filesystem path, the folders between root and it when they are
        # short, else None: see _short_folders).
        self._memo: dict[tuple[str, bytes | None], tuple[str, tuple[str, ...] | None]] = {}
        self.memo_bytes = 0  # the memo's size, as counted against _MEMO_BYTES

    def is_inside(self, fs_path: str) -> bool:
        # root's own real path is looked up now: it may have been re-pointed since the last request
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(fs_path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def fs_path(self, segments: list[str]) -> str:
        # Plain concatenation, not os.path.join: it is linear in the segments (join loops in
        # Python), and the segments are already checked to hold no separator.
        return self._prefix + os.sep.join(segments) if segments else self.root

    def _map(self, path: str, raw_path: bytes | None) -> tuple[str, tuple[str, ...] | None]:
        """The filesystem path a URL names and its folders below root, when short (memoised; raises BadPath)."""
        key = (path, raw_path)
        mapped = self._memo.get(key)
        if mapped is None:
            fs_path = self.fs_path(url_segments(path, raw_path))
            folders = self._short_folders(fs_path)
            mapped = (fs_path, folders)
            size = sys.getsizeof(path) + sys.getsizeof(raw_path) + sys.getsizeof(fs_path) + _ENTRY_OVERHEAD
            if folders:
                size += sum(map(sys.getsizeof, folders)) + sys.getsizeof(folders)
            if size <= _MEMO_ENTRY_BYTES:
                if self.memo_bytes + size > _MEMO_BYTES:
                    self._memo.clear()
                    self.memo_bytes = 0
                self._memo[key] = mapped
                self.memo_bytes += size
        return mapped

    def _short_folders(self, fs_path: str) -> tuple[str, ...] | None:
        """The folders between root and ``fs_path``, or None when together they are over
        ``_FOLDERS_CHARS`` long: each is a prefix of the path, so keeping them all would grow with
        the square of its length. Stops as soon as the limit is reached: linear in the path."""
        sep, folders, total = os.sep, [], 0
        end = fs_path.find(sep, len(self._prefix))
        while end != -1:
            total += end
            if total > _FOLDERS_CHARS:
                return None
            folders.append(fs_path[:end])
            end = fs_path.find(sep, end + 1)
        return tuple(folders)

    def _folders(self, fs_path: str) -> Iterator[str]:
        """The folders between root and ``fs_path``, shallowest first, sliced out one at a time."""
        sep = os.sep
        end = fs_path.find(sep, len(self._prefix))
        while end != -1:
            yield fs_path[:end]
            end = fs_path.find(sep, end + 1)

    def _stat_inside(self, fs_path: str, folders: tuple[str, ...] | None) -> os.stat_result | None:
        """``stat`` of ``fs_path`` if it exists and (unless following symlinks) stays inside root.

        ``folders`` are those between root and it, None to find them in ``fs_path``. Raises
        PermissionError when the server may not look at the path and what blocks it is inside
        root (a folder it cannot enter): that is a 403, not a 404.
        """
        try:
            if self.follow_symlinks:
                return os.stat(fs_path)
            st = os.lstat(fs_path)
            plain = not stat.S_ISLNK(st.st_mode)
            if plain:
                # Slicing long paths' folders out here is bounded: the lstat above succeeded, so
                # the path is shorter than PATH_MAX and its folders really exist.
                for folder in self._folders(fs_path) if folders is None else folders:
                    if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a symlink: it may point anywhere
                        plain = False
                        break
            if plain:
                return st
            # The path goes through a symlink: allowed only when it resolves inside root.
            return os.stat(fs_path) if self.is_inside(fs_path) else None
        except PermissionError:
            if self.follow_symlinks or self.is_inside(self._searchable_part(fs_path)):
                raise
            return None  # blocked somewhere outside root, reached through a symlink: not ours to tell
        except OSError:  # missing, not a folder, name too long...
            return None

    def _searchable_part(self, fs_path: str) -> str:
        """The longest folder prefix of ``fs_path`` (root at least) that can be ``lstat``-ed.

        Only called after a permission error: the walk stops at the first folder that cannot be
        entered, so it costs one ``lstat`` per folder that really exists on the way.
        """
        reached = self.root
        for folder in self._folders(fs_path):
            try:
                os.lstat(folder)
            except OSError:
                break
            reached = folder
        return reached

    def resolve(self, path: str, raw_path: bytes | None = None) -> Target:
        """Resolve a decoded URL path (``/a/b.html``); raises BadPath for hostile paths.

        With ``clean_urls``, when the path names no regular file, ``<path>.html`` is tried before
        the folder rules (Netlify's precedence): ``/about`` serves ``about.html`` even when a folder
        ``about/`` exists too, and ``/about/`` redirects to ``/about`` (Kind.UNSLASH) rather than
        showing that folder, so each page has one URL and its relative links resolve as they will
        when deployed. A file named exactly ``about`` still wins.
        """
        fs_path, folders = self._map(path, raw_path)
        try:
            st = self._stat_inside(fs_path, folders)
            if st is not None and stat.S_ISREG(st.st_mode):
                return Target(Kind.FILE, fs_path, st)
            if self.clean_urls and fs_path != self.root and (st is None or stat.S_ISDIR(st.st_mode)):
                # Same folders as fs_path: only the last segment grows, and it was checked to hold
                # no separator or dot-segment, so this opens no new way out of root.
                html = fs_path + ".html"
                html_st = self._stat_inside(html, folders)
                if html_st is not None and stat.S_ISREG(html_st.st_mode):
                    return Target(Kind.UNSLASH if path.endswith("/") else Kind.FILE, html, html_st)
            if st is not None and stat.S_ISDIR(st.st_mode):
                return self._folder(path, fs_path, folders, st)
        except PermissionError:
            return Target(Kind.FORBIDDEN, fs_path)
        return Target(Kind.MISSING)

    def _folder(self, path: str, fs_path: str, folders: tuple[str, ...] | None, st: os.stat_result) -> Target:
        """A folder: the redirect to its slashed path, its ``index.html``, or its listing."""
        if not path.endswith("/"):
            return Target(Kind.REDIRECT, fs_path)
        # When fs_path is root it is no folder "between": the user named it, symlink or not.
        if fs_path == self.root:
            index, index_folders = self._prefix + "index.html", folders
        else:
            index = fs_path + os.sep + "index.html"
            index_folders = None if folders is None else (*folders, fs_path)
        index_st = self._stat_inside(index, index_folders)
        if index_st is not None and stat.S_ISREG(index_st.st_mode):
            return Target(Kind.FILE, index, index_st)
        return Target(Kind.DIRECTORY, fs_path, st)

    def page_file(self, path: str) -> str | None:
        """The file a page URL shows (``/`` -> ``index.html``), relative to root with ``/``; None if none.

        Redirects are followed as a browser would, so ``/docs`` shows ``docs/index.html`` and, with
        clean URLs, ``/about/`` shows ``about.html``.
        """
        try:
            target = self.resolve(path)
            if target.kind is Kind.REDIRECT:
                target = self.resolve(path + "/")
            elif target.kind is Kind.UNSLASH:
                target = self.resolve(path[:-1])
        except BadPath:
            return None
        if target.kind is not Kind.FILE:
            return None
        return os.path.relpath(target.fs_path, self.root).replace(os.sep, "/")

    def wanted_files(self, path: str) -> frozenset[str]:
        """The files (relative to root, with ``/``) that would give a page at ``path`` if they appeared.

        A 404 page waits for these: ``/docs`` for ``docs`` or ``docs/index.html``, and with clean
        URLs for ``docs.html`` too. Empty for a path that can never name a file.
        """
        try:
            segments = url_segments(path)
        except BadPath:
            return frozenset()
        base = "/".join(segments)
        if not base:
            return frozenset({"index.html"})
        wanted = {posixpath.join(base, "index.html")}
        if not path.endswith("/"):
            wanted.add(base)
        if self.clean_urls:
            wanted.add(base + ".html")
        return frozenset(wanted)
