"""Telling a build's own writes from your edits, on the routes that run the build.

A build writes wherever it likes inside the sources it watches: Sphinx's ``doctrees``, a
``.cache``, ``__pycache__``, a ``site/`` of mkdocs'. Were those writes taken for edits, every
build would run another. The served folder is left out of those routes from the start; for
the rest, execlib learns from what it sees:

- A file that changes while no build runs is yours: a build follows, and execlib remembers it as
  a **source**.
- A file that changes while a build runs (it changed within the build's time, or it is deleted
  while the build runs) is the build's **output** when an earlier build wrote it too; or, when
  it is not a known source and its folder holds none, when it lies in (or below) a folder that
  builds write files into, or the build is the first one (the start-up build included: there
  is no record to go by yet, so everything it writes is taken for its own).
- Any other change during a build is yours (a source you saved while it ran): exactly one more
  build follows. If that build writes the same file again, the file is the build's after all
  and is taken for output from then on; so an unknown output costs at most one extra build.

Paths are compared as the events name them (absolute, symlinks as given).
"""

from __future__ import annotations

import posixpath

from ..event import FileEvent


class BuildWrites:
    """What execlib has learned about which paths the build writes and which are sources."""

    def __init__(self) -> None:
        self.outputs: set[str] = set()
        self.sources: set[str] = set()
        self.output_folders: set[str] = set()  # folders (endpoint-qualified) directly holding outputs
        self.source_folders: set[str] = set()  # ... and holding sources, the watched root included
        self.suspects: dict[str, int] = {}  # path -> the build during which it was taken for yours

    def changed_outside_build(self, event: FileEvent) -> None:
        """A change no build made: the path is a source."""
        path = event.path
        self.sources.add(path)
        self.outputs.discard(path)
        self.suspects.pop(path, None)
        self.source_folders.add(_folder(event))

    def is_build_output(self, event: FileEvent, build: int) -> bool:
        """Whether a change made while build number ``build`` (1 for the first) ran is the build's own."""
        path = event.path
        if path in self.outputs:
            return True
        earlier = self.suspects.get(path)
        if earlier is not None and earlier < build:
            return self._learn_output(event)  # taken for yours, then written by the next build again
        folder = _folder(event)
        unknown = path not in self.sources and folder not in self.source_folders
        if unknown and (build <= 1 or self._in_output_folder(folder)):
            return self._learn_output(event)
        self.suspects[path] = build
        return False

    def _learn_output(self, event: FileEvent) -> bool:
        path = event.path
        self.outputs.add(path)
        self.sources.discard(path)
        self.suspects.pop(path, None)
        folder = _folder(event)
        if not folder.endswith("\0"):  # never the watched root: it holds the sources of most projects
            self.output_folders.add(folder)  # not the folders above it either (docs/ above docs/_build/)
        return True

    def _in_output_folder(self, folder: str) -> bool:
        """Whether ``folder`` is, or lies below, a folder builds write into that holds no source."""
        while True:
            if folder in self.output_folders and folder not in self.source_folders:
                return True
            parent = _parent(folder)
            if parent is None:
                return False
            folder = parent


def _folder(event: FileEvent) -> str:
    """The event's folder as ``endpoint\\0relative/folder`` (``endpoint\\0`` for the watched root)."""
    return f"{event.endpoint}\0{posixpath.dirname(event.name)}"


def _parent(folder: str) -> str | None:
    endpoint, _, relative = folder.partition("\0")
    if not relative:
        return None
    return f"{endpoint}\0{posixpath.dirname(relative)}"
