"""WatchfilesListener: file watching on any OS through watchfiles (the Rust notify crate), with a polling mode.

We drive watchfiles' ``RustNotify`` directly rather than its ``watch()``
generator so that the watches are in place when ``start()`` returns (the
generator only sets them up on first iteration) and so that the grouping
step is short: our router does the debouncing, watchfiles only has to hand
changes over promptly.

watchfiles reports added, modified and deleted paths (a rename is a delete and
an add) as an unordered set per group; we report deletions first, then
creations, then modifications, and drop the "modified" notes notify emits for
folders themselves. A new folder's contents are reported as created too, since
files written into it before notify watched it produce no event.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from ..event import Action, FileEvent
from ..listener import Listener

logger = logging.getLogger("execlib.listener")

_ACTIONS = {Change.added: Action.CREATED, Change.modified: Action.MODIFIED, Change.deleted: Action.DELETED}
_ORDER = {Action.DELETED: 0, Action.CREATED: 1, Action.MODIFIED: 2}


class WatchfilesListener(Listener):
    """Watches every endpoint of a router with watchfiles.

    ``poll=True`` polls every ``poll_delay_ms`` instead of using OS
    notifications: for network shares, Docker bind mounts and WSL, where
    notifications do not arrive. ``step_ms`` is how long watchfiles waits for
    a group of changes to settle before handing it over.
    """

    backend = "watchfiles"

    def __init__(
        self, router: Any, *, poll: bool = False, poll_delay_ms: int = 300, step_ms: int = 5, **kwargs: Any
    ) -> None:
        super().__init__(router, **kwargs)
        self.poll = poll
        self.poll_delay_ms = poll_delay_ms
        self.step_ms = step_ms
        self._notify: RustNotify | None = None
        self._stop_flag = threading.Event()
        self._roots: list[str] = []
        self._missing: set[str] = set()
        if poll:
            self.backend = "watchfiles-poll"

    def _setup(self) -> None:
        self._stop_flag.clear()
        self._roots = self.roots
        present = [root for root in self._roots if os.path.isdir(root)]
        self._missing = set(self._roots) - set(present)
        self._notify = RustNotify(present, False, self.poll, self.poll_delay_ms, True, True) if present else None

    def _run(self) -> None:
        while not self._stopping.is_set() and not self._stop_flag.is_set():
            if self._notify is None:
                # every root is gone: wait for one to come back
                if self._stop_flag.wait(0.25) or self._stopping.is_set():
                    return
                self._check_roots()
                continue
            raw = self._notify.watch(max(50, self.step_ms * 10), self.step_ms, 1000, self._stop_flag)
            if raw == "stop":
                return
            if isinstance(raw, set):
                events = self._translate(raw)
                if events:
                    self.router.submit(events)
            self._check_roots()

    def _wake(self) -> None:
        self._stop_flag.set()

    def _teardown(self) -> None:
        notify, self._notify = self._notify, None
        if notify is not None:
            notify.close()

    def _check_roots(self) -> None:
        """Notice roots deleted (notify stops watching them) and recreated (watch them again)."""
        gone = {root for root in self._roots if not os.path.isdir(root)}
        back = self._missing - gone
        if gone == self._missing:
            return
        self._teardown()
        self._setup()
        events = []
        for root in back:
            logger.info("%s is back; watching it again", root)
            for folder, dirs, files in os.walk(root):
                for name in dirs:
                    events.append(self._event(os.path.join(folder, name), Action.CREATED, True))
                events.extend(self._event(os.path.join(folder, name), Action.CREATED, False) for name in files)
        if events:
            self.router.submit(events)

    def _event(self, path: str, action: Action, is_dir: bool) -> FileEvent:
        best = ""
        for root in self._roots:
            if path.startswith(root + os.sep) and len(root) > len(best):
                best = root
        if not best:
            return FileEvent(path, "", action, is_dir)
        return FileEvent(best, path[len(best) + 1 :].replace(os.sep, "/"), action, is_dir)

    def _translate(self, raw: set[tuple[int, str]]) -> list[FileEvent]:
        events = []
        for change, path in raw:
            action = _ACTIONS[Change(change)]
            is_dir = action is not Action.DELETED and os.path.isdir(path)
            if is_dir and action is Action.MODIFIED:
                continue  # a folder's own mtime/metadata: its files' changes are reported themselves
            events.append(self._event(path, action, is_dir))
            if is_dir and action is Action.CREATED:
                # notify watches a new folder only once it has seen it: report what was written before that
                for folder, dirs, files in os.walk(path):
                    events.extend(self._event(os.path.join(folder, d), Action.CREATED, True) for d in dirs)
                    events.extend(self._event(os.path.join(folder, f), Action.CREATED, False) for f in files)
        events.sort(key=lambda e: (_ORDER[e.action], e.name))
        return events
