"""Events: the small immutable values that listeners hand to routers.

``Event`` is anything that happened at a name under an endpoint; ``FileEvent``
adds what happened to the file (``Action``) and whether it is a folder.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass


class Action(str, enum.Enum):
    """The kind of change a ``FileEvent`` reports."""

    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED_FROM = "moved_from"
    MOVED_TO = "moved_to"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Event:
    """Something happened at ``name`` (relative, POSIX separators) under ``endpoint`` (absolute)."""

    endpoint: str
    name: str


@dataclass(frozen=True, slots=True)
class FileEvent(Event):
    """A change to a file or folder below a watched root.

    ``endpoint`` is the watched root (absolute), ``name`` the path relative to
    it with ``/`` separators, ``action`` what happened and ``is_dir`` whether
    the path is (or was) a folder.
    """

    action: Action
    is_dir: bool = False

    @property
    def path(self) -> str:
        """The absolute path the event is about."""
        if not self.name:
            return self.endpoint
        return os.path.join(self.endpoint, *self.name.split("/"))

    def __str__(self) -> str:
        kind = "folder " if self.is_dir else ""
        return f"{kind}{self.name or '.'} {self.action.value}"
