"""The order a listener reports changes in when the OS gave none: by modification time.

A listener that looks into a new folder (its files were written before the folder was watched)
or is handed an unordered set (watchfiles) only knows when each file was last written. Reported
in that order, a batch reads as the changes happened, which the routers promise their callbacks.
"""

from __future__ import annotations

import os
import sys

from ..event import FileEvent


def written_ns(path: str) -> int:
    """When ``path`` was last written (ns); a path gone already sorts last."""
    try:
        return os.lstat(path).st_mtime_ns
    except OSError:
        return sys.maxsize


def chronological(timed: list[tuple[int, FileEvent]]) -> list[FileEvent]:
    """The events of ``(mtime_ns, event)`` pairs, oldest first, each folder before what it holds.

    Files written within one tick of the kernel's clock (a few ms) keep a stable order: shallower
    first, then by name. A folder's own mtime is that of its last entry's creation, so it is moved
    up before its contents rather than trusted.
    """
    by_time = sorted(timed, key=lambda pair: (pair[0], pair[1].name.count("/"), pair[1].name))
    folders = {(event.endpoint, event.name): event for _, event in timed if event.is_dir}
    ordered: list[FileEvent] = []
    placed: set[int] = set()

    def place(event: FileEvent) -> None:
        if id(event) in placed:
            return
        placed.add(id(event))
        parent = folders.get((event.endpoint, event.name.rpartition("/")[0]))
        if parent is not None:
            place(parent)
        ordered.append(event)

    for _, event in by_time:
        place(event)
    return ordered
