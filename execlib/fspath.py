"""Paths as the user names them, and what they resolve to right now.

A folder given as ``current`` (a symlink to ``releases/v1``) must keep meaning
"whatever ``current`` names now": deploys swap it with ``ln -sfn v2 current``
or by renaming a new symlink over it. So endpoints and site roots keep the
path as given (absolute, symlinks intact) and the file listeners, which need
real folders to watch, ask ``trace`` what it resolves to and which directory
entries to watch to hear about it changing.
"""

from __future__ import annotations

import os
import stat

#: how many symlinks one resolution may cross before we call it a loop (the kernel's limit is 40)
MAX_HOPS = 40


def given_path(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute, its symlinks kept (the realpath if ``..`` after a symlink makes them differ)."""
    text = os.fspath(path)
    absolute = os.path.abspath(text)
    # abspath folds "link/.." lexically; the kernel goes to the link target's parent instead.
    if ".." in text.split(os.sep) and os.path.realpath(absolute) != os.path.realpath(text):
        return os.path.realpath(text)
    return absolute


def trace(path: str) -> tuple[str | None, list[tuple[str, str]]]:
    """Resolve absolute ``path`` the way the kernel does, noting what could change the answer.

    Returns the real folder ``path`` names now (None when it names no folder)
    and the directory entries ``(real parent folder, name)`` whose replacement
    would change that: every symlink crossed, and the first missing component.
    A real folder that is itself deleted or moved is not listed: a watch on it
    reports that.
    """
    entries: list[tuple[str, str]] = []
    parts = [p for p in path.split(os.sep) if p]
    resolved = os.sep
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            resolved = os.path.dirname(resolved)
            continue
        entry = os.path.join(resolved, name)
        try:
            st = os.lstat(entry)
        except OSError:  # missing (or unreadable): its appearance is what to wait for
            entries.append((resolved, name))
            return None, entries
        if stat.S_ISLNK(st.st_mode):
            entries.append((resolved, name))
            hops += 1
            try:
                target = os.readlink(entry)
            except OSError:
                return None, entries
            if hops > MAX_HOPS:
                return None, entries
            if os.path.isabs(target):
                resolved = os.sep
            parts[:0] = [p for p in target.split(os.sep) if p]
            continue
        if not stat.S_ISDIR(st.st_mode):  # a file where a folder should be
            entries.append((resolved, name))
            return None, entries
        resolved = entry
    return resolved, entries
