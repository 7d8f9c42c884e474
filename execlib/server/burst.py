"""ChangeGate: decides when the site's file changes go out to the pages.

The live-reload route reaches the gate with no router debounce, one call per
read of the listener, so the gate sees the real rhythm of the writes:

- **settle**: a *group* of events ends after ``SETTLE_S`` without another.
  Most tools finish a save (write a temp file, rename it over the target; or
  move the target to a backup and write a new file) within a millisecond, so
  a save is one group however it was written.
- **lone save**: a group that is short (``LONE_SPAN_S``), made of few events
  (``LONE_EVENTS``), names few files once reduced to its net effect
  (``SMALL_BATCH``) and does not follow the last flush within
  ``BURST_QUIET_S`` goes out at once, provided each file in it was written
  once (a file written twice is a tool writing in a loop). When the disk
  disagrees with the group's net effect (a file it deletes, or a file it
  creates that is gone again) the rest of the save is still on its way: the
  gate waits up to ``REPLACE_WAIT_S`` for it. A writer that moves the target
  away before writing the new one (vim, emacs) may pause in between (fsync),
  and a page must not reload onto a 404. A group that only creates files
  waits as long: it may be the first half of a temp-file-and-rename save
  whose rename is late (a busy machine), and a page that reloads on any
  change (a stock client) must not reload for the temporary file.
- **burst**: anything else (a build, a checkout, a formatter, a stream of
  saves) is held until ``BURST_QUIET_S`` passes with no event at all, and
  flushed at least every ``BURST_MAX_HOLD_S`` meanwhile, showing the state so
  far; the last flush always shows the final state.

Each flush is the net effect of everything held (``execlib.net_effect``).
Everything here runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from ..event import Action, Event, FileEvent
from ..net_effect import net_effect

logger = logging.getLogger("execlib.livereload")

# A group ends after this much silence. Every ms here adds to every reload; 3 ms still keeps a
# writer's choreography (microseconds apart) and a tight loop of saves (sub-ms apart) together.
SETTLE_S = 0.003
# How long a group that deletes a file waits for it to come back (a backup-then-write save).
REPLACE_WAIT_S = 0.05
# Largest lone save: what a single save of a few files looks like once ignores have dropped the
# editor's backup and swap files.
LONE_SPAN_S = 0.1
LONE_EVENTS = 16
SMALL_BATCH = 3
# The quiet that ends a burst stays under 0.3 s so hand edits 0.3 s apart each show;
# BURST_MAX_HOLD_S caps how long a never-ending stream of changes can hold pages back.
BURST_QUIET_S = 0.2
BURST_MAX_HOLD_S = 2.0

Flush = Callable[[list[Event]], Awaitable[object]]

_CONTENT = frozenset({Action.CREATED, Action.MODIFIED, Action.MOVED_TO})


def _disk_agrees(net: list[Event]) -> bool:
    """Whether the tree looks as the events say: no file reported gone, none reported there but missing.

    A deletion never agrees: the target of a backup-then-write save is briefly gone (vim, emacs).
    """
    for event in net:
        if not isinstance(event, FileEvent):
            continue
        if event.action is Action.DELETED or not os.path.lexists(event.path):
            return False
    return True


def _only_creates(net: list[Event]) -> bool:
    """Whether the group only made new files: perhaps the temporary half of a save, its rename still to come."""
    return bool(net) and all(isinstance(e, FileEvent) and e.action is Action.CREATED and not e.is_dir for e in net)


class ChangeGate:
    """Groups raw file events into flushes: a lone save at once, a burst once it goes quiet."""

    def __init__(
        self,
        flush: Flush,
        *,
        settle: float = SETTLE_S,
        replace_wait: float = REPLACE_WAIT_S,
        quiet: float = BURST_QUIET_S,
        max_hold: float = BURST_MAX_HOLD_S,
        swapped: Callable[[str], bool] | None = None,
    ) -> None:
        self.flush = flush
        #: names whose change pages take in place (stylesheets, images): see ``_swap_save``
        self.swapped = swapped
        self.settle = settle
        self.replace_wait = replace_wait
        self.quiet = quiet
        self.max_hold = max_hold
        self.pending: list[Event] = []
        self.first_at = 0.0  # when the pending group began
        self.last_at = 0.0  # when the latest event arrived
        self.last_flush = float("-inf")
        self.burst_since: float | None = None  # start of the burst (or of its current hold)
        self.timer: asyncio.Handle | None = None
        self.timer_due = 0.0  # loop time the timer fires at (uvloop's handles do not say)
        self._flushing: asyncio.Lock | None = None  # flushes go out in order, one at a time
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: how many flushes went out as a lone save, at the end of a burst, or mid-burst (the 2 s cap)
        self.flushes: Counter[str] = Counter()

    @property
    def holding(self) -> bool:
        """Whether changes are waiting to go out (a page reloading now would be reloaded again)."""
        return bool(self.pending) or self.burst_since is not None

    def add(self, events: Iterable[Event]) -> None:
        """Take the events of one listener read (on the loop)."""
        events = list(events)
        if not events:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self.pending:
            self.first_at = now
        self.pending.extend(events)
        self.last_at = now
        if self.burst_since is None and now - self.last_flush < self.quiet:
            self.burst_since = self.first_at  # hot on the heels of the last flush: a burst
        if self.burst_since is None and (net := self._swap_save()) is not None:
            self._flush(loop, now, kind="lone", net=net)
            return
        self._arm(loop)

    def _swap_save(self) -> list[Event] | None:
        """The net effect of the pending group when it is a complete save of stylesheets or images only.

        Such a save goes out at once, without the settle time: pages swap those in place, so if a burst
        follows, the extra swap costs them nothing, while every save of a stylesheet shows 3 ms sooner.
        """
        if self.swapped is None or len(self.pending) > LONE_EVENTS:  # a big group is no save: don't even look
            return None
        net = net_effect(self.pending)
        for event in net:
            if not isinstance(event, FileEvent) or event.is_dir or event.action is not Action.MODIFIED:
                return None
            if not self.swapped(event.name):
                return None
        if not net or not self._looks_lone(net) or not _disk_agrees(net):
            return None
        return net

    # -- timing ---------------------------------------------------------------------------

    def _due(self) -> float:
        if self.burst_since is not None:
            return min(self.last_at + self.quiet, self.burst_since + self.max_hold)
        return self.last_at + self.settle

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float | None = None) -> None:
        due = self._due() if at is None else at
        if self.timer is not None:
            if self.timer_due <= due:
                return  # fires sooner and looks again then
            self.timer.cancel()
        self.timer = loop.call_at(due, self._fire, loop)
        self.timer_due = due

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        if self.burst_since is None:
            self._group_settled(loop, now)
            return
        if now >= self.last_at + self.quiet:
            self.burst_since = None  # the burst is over: show the final state
            self._flush(loop, now, kind="burst")
        elif now >= self.burst_since + self.max_hold:
            self.burst_since = now  # still going: show the state so far, keep holding
            self._flush(loop, now, kind="hold")
            self._arm(loop)
        else:
            self._arm(loop)

    def _group_settled(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        if not self.pending:
            return
        if now < self.last_at + self.settle:
            self._arm(loop)
            return
        net = net_effect(self.pending)
        if not self._looks_lone(net):
            self.burst_since = self.first_at
            self._arm(loop)
            return
        if now < self.last_at + self.replace_wait and (not _disk_agrees(net) or _only_creates(net)):
            # Part of the save is still on its way (the listener or this loop was slow, or the writer has
            # yet to rename its temporary file) or the file is between a move to a backup and its new
            # version: wait for the rest, within limits.
            self._arm(loop, self.last_at + self.replace_wait)
            return
        self._flush(loop, now, kind="lone", net=net)

    def _looks_lone(self, net: list[Event]) -> bool:
        """Whether the settled group looks like one save: short, small, and each file written once."""
        if len(self.pending) > LONE_EVENTS or self.last_at - self.first_at > LONE_SPAN_S or len(net) > SMALL_BATCH:
            return False
        # The same file written twice (two in-place writes, two renames onto it) is a tool writing in a
        # loop, not a save. CREATED then MODIFIED is one write: the listener reports a new file as
        # created at once when it reads the events late (the file already renamed away), then its close.
        written: set[tuple[str, Action]] = set()
        for event in self.pending:
            if isinstance(event, FileEvent) and event.action in _CONTENT:
                key = (event.name, event.action)
                if key in written:
                    return False
                written.add(key)
        return True

    # -- flushing -------------------------------------------------------------------------

    def _flush(self, loop: asyncio.AbstractEventLoop, now: float, kind: str, net: list[Event] | None = None) -> None:
        if net is None:
            net = net_effect(self.pending)
        logger.debug("live reload: %s flush: %d event(s) as %d change(s)", kind, len(self.pending), len(net))
        self.flushes[kind] += 1
        self.pending = []
        self.last_flush = now
        if not net:
            return
        task = loop.create_task(self._send(net))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, net: list[Event]) -> None:
        loop = asyncio.get_running_loop()
        if self._flushing is None or self._lock_loop is not loop:  # a Server can be started again
            self._flushing, self._lock_loop = asyncio.Lock(), loop
        async with self._flushing:
            try:
                await self.flush(net)
            except Exception:
                logger.exception("live reload: sending %d change(s) failed", len(net))

    def close(self) -> None:
        """Drop held changes and the timer (the server is stopping)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pending = []
        self.burst_since = None
