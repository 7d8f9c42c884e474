"""Mapping request paths to files under the site root, refusing anything outside it.

The live-reload hub uses the same mapping to learn which file a connected page
shows, so both live here.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from enum import Enum

# Encoded slashes, backslashes and NUL bytes never name a file under root.
_HOSTILE_RAW = re.compile(rb"%2f|%5c|%00|\\", re.IGNORECASE)


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


@dataclass(frozen=True, slots=True)
class Target:
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
    """Resolves URL paths against one root folder with development-server rules."""

    def __init__(self, root: str | os.PathLike[str], follow_symlinks: bool = False) -> None:
        self.root = os.path.realpath(root)
        self.follow_symlinks = follow_symlinks
        self._root_prefix = self.root.rstrip(os.sep) + os.sep

    def is_inside(self, fs_path: str) -> bool:
        real = os.path.realpath(fs_path)
        return real == self.root or real.startswith(self._root_prefix)

    def fs_path(self, segments: list[str]) -> str:
        return os.path.join(self.root, *segments) if segments else self.root

    def resolve(self, path: str, raw_path: bytes | None = None) -> Target:
        """Resolve a decoded URL path (``/a/b.html``); raises BadPath for hostile paths."""
        segments = url_segments(path, raw_path)
        fs_path = self.fs_path(segments)
        if not self.follow_symlinks and not self.is_inside(fs_path):
            return Target(Kind.MISSING)
        try:
            st = os.stat(fs_path)
        except (FileNotFoundError, NotADirectoryError, PermissionError, OSError):
            return Target(Kind.MISSING)
        if stat.S_ISDIR(st.st_mode):
            if not path.endswith("/"):
                return Target(Kind.REDIRECT, fs_path)
            index = os.path.join(fs_path, "index.html")
            try:
                index_st = os.stat(index)
            except OSError:
                return Target(Kind.DIRECTORY, fs_path, st)
            if stat.S_ISREG(index_st.st_mode) and (self.follow_symlinks or self.is_inside(index)):
                return Target(Kind.FILE, index, index_st)
            return Target(Kind.DIRECTORY, fs_path, st)
        if stat.S_ISREG(st.st_mode):
            return Target(Kind.FILE, fs_path, st)
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
