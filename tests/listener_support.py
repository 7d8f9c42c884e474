"""Helpers for the listener tests: a recording callback and a started listener fixture factory."""

from __future__ import annotations

import threading
from collections.abc import Callable

from execlib import Action, FileEvent
from tests.helpers import wait_until


class Recorder:
    """A route callback (batch or not) that keeps every call, thread-safely, for deadline waits."""

    def __init__(self) -> None:
        self.calls: list[list[FileEvent]] = []
        self._lock = threading.Lock()

    def __call__(self, arg: FileEvent | list[FileEvent]) -> None:
        batch = list(arg) if isinstance(arg, list) else [arg]
        with self._lock:
            self.calls.append(batch)

    @property
    def events(self) -> list[FileEvent]:
        with self._lock:
            return [e for call in self.calls for e in call]

    def has(self, name: str, action: Action | None = None) -> bool:
        return any(e.name == name and (action is None or e.action is action) for e in self.events)

    def wait_for(self, name: str, action: Action | None = None, timeout: float = 5.0) -> None:
        wait_until(lambda: self.has(name, action), timeout=timeout, message=f"{name} {action or ''}")

    def wait_calls(self, count: int, timeout: float = 5.0) -> None:
        wait_until(lambda: len(self.calls) >= count, timeout=timeout, message=f"{count} calls")

    def names(self, predicate: Callable[[FileEvent], bool] = lambda e: True) -> set[str]:
        return {e.name for e in self.events if predicate(e)}
