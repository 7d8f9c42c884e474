"""Router: sends events to the callbacks registered for them, with debounce, delay, frames and timeouts.

A *route* is (endpoint, pattern, callback, options). ``Router.submit`` matches
each event against every route and adds it to that route's pending *burst*:

- **debounce** (ms): the burst stays open while events keep arriving less than
  ``debounce`` apart; the callback runs once, after the burst, so it sees the
  final state on disk.
- **delay** (ms): once the burst has settled, wait this much longer before the
  run starts (events arriving meanwhile join it without postponing it again).
- **frames**: a route never runs concurrently with itself for the same key;
  events arriving while it runs are queued and cause exactly one more run.
  The key is the event's name (one run per changed file) for ordinary routes,
  and the whole route for ``batch=True`` routes (one run per burst).
- **callback_timeout** (s): a run still going after it is logged by name and
  the route moves on; its future fails with ``CallbackTimeout``.

Callbacks are called as ``func(event)`` with the last event of the burst, or
``func(events)`` with the whole burst (in order, deduplicated by
(name, action), keeping the last) when registered with ``batch=True``. Plain
functions run in the router's thread pool; ``async def`` functions run on the
loop given to ``attach_loop`` (the Server's loop when a Server manages the
listener) through ``asyncio.run_coroutine_threadsafe``, or, with no loop
attached, on one background loop thread the router starts on first need.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .event import Action, Event, FileEvent
from .net_effect import net_effect

if TYPE_CHECKING:
    from .listener import Listener

logger = logging.getLogger("execlib.router")

Callback = Callable[..., Any]
PostCallback = Callable[[list[Event], list[Any]], Any]


class CallbackTimeout(TimeoutError):
    """A callback ran past its route's ``callback_timeout``; the router moved on without it."""


@dataclass(eq=False)
class Route:
    """One registration: which events (endpoint + pattern + actions) go to which callback, and how."""

    endpoint: str
    func: Callback
    pattern: Any
    # seconds, named so: register() takes milliseconds under the plain names debounce and delay
    debounce_s: float
    delay_s: float
    callback_timeout: float | None
    actions: frozenset[Action] | None
    batch: bool
    name: str
    is_async: bool
    #: what a subclass keeps per route (PathRouter: its ignore matchers); not user options
    options: dict[str, Any] = field(default_factory=dict)
    net: bool = False  # batch routes: reduce each burst to its net effect on the tree


class _Run:
    """One execution of a route's callback for a burst of events."""

    __slots__ = ("slot", "events", "future", "abandoned", "outcome")

    def __init__(self, slot: _Slot, events: list[Event], future: Future[Any]) -> None:
        self.slot, self.events, self.future = slot, events, future
        self.abandoned = False
        self.outcome: Future[Any] | None = None


class _Slot:
    """Coalescing state of one (route, key): the open burst, its future and the run in progress."""

    __slots__ = ("route", "key", "pending", "future", "due", "settled", "scheduled", "running")

    def __init__(self, route: Route, key: object) -> None:
        self.route, self.key = route, key
        # keyed by (name, action) so a repeat replaces the earlier one; on a net route by arrival
        # number instead, since the net effect needs every event (Router._add)
        self.pending: dict[tuple[str, object] | int, Event] = {}
        self.future: Future[Any] | None = None
        self.due = 0.0
        self.settled = False  # debounce over, waiting out the delay
        self.scheduled = False  # an entry for this slot is in the timer heap
        self.running: _Run | None = None


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    inner = getattr(func, "func", None)  # functools.partial
    if inner is not None and inspect.iscoroutinefunction(inner):
        return True
    return inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004


def _callback_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module and module != "__main__" else name


class _LoopThread:
    """The router's own event loop for async callbacks when no loop is attached: one thread, reused."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="execlib-router-loop", daemon=True)
        self.thread.start()

    def stop(self, timeout: float) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()


class BaseRouter:
    """What a listener needs from a router: the folders to watch, where events go, and how to stop.

    ``Router`` (routes with debounce, delay, frames and timeouts) and
    ``ChainRouter`` (routers run in sequence) implement it as siblings, so
    neither carries machinery of the other's that it would have to refuse.
    Listeners take any ``BaseRouter``.
    """

    def endpoints(self) -> list[str]:
        """The endpoints to watch, in order, without repeats."""
        raise NotImplementedError

    def should_watch_dir(self, path: str) -> bool:
        """Whether a listener needs to watch this folder at all."""
        raise NotImplementedError

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Run ``async def`` callbacks on ``loop`` from now on (None: a loop of the router's own)."""
        raise NotImplementedError

    def submit(self, events: Event | Iterable[Event]) -> list[Future[Any]]:
        """Hand events over; one future per piece of work they started, done when that work is."""
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        """Stop: cancel queued work, wait up to ``timeout`` s for running callbacks, stop threads."""
        raise NotImplementedError

    def get_listener(self, backend: str = "auto", poll: bool | None = None, **options: Any) -> Listener:
        """A listener watching every endpoint registered on this router.

        ``backend`` is "auto" (inotify on Linux, watchfiles elsewhere),
        "inotify", "watchfiles" or "poll"; ``poll=True`` polls (network, Docker
        and WSL mounts) with execlib's own polling listener, or with
        watchfiles' when ``backend="watchfiles"``. ``poll=None`` polls when an
        endpoint lies on such a mount (found from the mount table, and said in
        a warning), ``poll=False`` never.
        """
        # Imported here, not at the top: routers are usable without loading any listener backend.
        from .listeners import get_listener

        return get_listener(self, backend=backend, poll=poll, **options)


class Router(BaseRouter):
    """Routes events to registered callbacks; see the module docstring for the rules.

    ``workers`` sizes the thread pool sync callbacks run in. Threads (pool,
    timer, private loop) start on first need and are stopped by ``close()``;
    a closed router starts them again if used again.
    """

    #: default debounce and delay, in milliseconds
    DEFAULT_DEBOUNCE = 200
    DEFAULT_DELAY = 30

    def __init__(self, workers: int = 8) -> None:
        self.routes: list[Route] = []
        self.post_callbacks: list[PostCallback] = []
        self._workers = workers
        self._lock = threading.RLock()
        self._slots: dict[tuple[int, object], _Slot] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: _LoopThread | None = None
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._timer: threading.Thread | None = None
        self._timer_wake = threading.Condition(self._lock)
        self._timer_stop = False
        self._outstanding: set[Future[Any]] = set()
        self._post_waiting: set[frozenset[int]] = set()

    # -- registration ---------------------------------------------------------------

    def register(
        self,
        endpoint: str,
        callback: Callback,
        pattern: Callable[[Event], bool] | None = None,
        debounce: float = DEFAULT_DEBOUNCE,
        delay: float = DEFAULT_DELAY,
        callback_timeout: float | None = None,
        actions: Iterable[Action | str] | None = None,
        batch: bool = False,
        name: str | None = None,
        net: bool = False,
    ) -> Route:
        """Route events of ``endpoint`` accepted by ``pattern`` (a predicate; None: all) to ``callback``.

        ``debounce`` and ``delay`` are in milliseconds, ``callback_timeout`` in
        seconds. ``actions`` restricts the route to those kinds of change.
        ``net=True`` (with ``batch=True``) hands the callback each burst's net
        effect on the tree (see ``execlib.net_effect``): a temp-file-and-rename
        save is one "modified", and a burst that changed nothing runs nothing.
        ``actions`` then applies to the net events. An unknown keyword is a
        TypeError: a misspelt option must not quietly widen the route.
        """
        return self._add_route(
            endpoint,
            callback,
            pattern,
            debounce=debounce,
            delay=delay,
            callback_timeout=callback_timeout,
            actions=actions,
            batch=batch,
            name=name,
            net=net,
        )

    def _add_route(
        self,
        endpoint: str,
        callback: Callback,
        pattern: object,
        *,
        debounce: float,
        delay: float,
        callback_timeout: float | None,
        actions: Iterable[Action | str] | None,
        batch: bool,
        name: str | None,
        net: bool,
    ) -> Route:
        """``register()`` for any kind of ``pattern``.

        ``register()`` takes the predicate that this class's ``match()`` calls. A subclass whose
        ``match()`` reads a pattern of its own (PathRouter: a compiled glob) adds its routes here,
        so that pattern is not passed off as a predicate.
        """
        if net and not batch:
            raise ValueError("net=True needs batch=True: a net effect is a property of a whole burst")
        if debounce < 0 or delay < 0:
            raise ValueError("debounce and delay must be >= 0 milliseconds")
        if callback_timeout is not None and callback_timeout <= 0:
            raise ValueError("callback_timeout must be a positive number of seconds or None")
        route = Route(
            endpoint=endpoint,
            func=callback,
            pattern=pattern,
            debounce_s=debounce / 1000.0,
            delay_s=delay / 1000.0,
            callback_timeout=callback_timeout,
            actions=None if actions is None else frozenset(Action(a) for a in actions),
            batch=batch,
            name=name or _callback_name(callback),
            is_async=_is_async(callback),
            net=net,
        )
        with self._lock:
            self.routes.append(route)
        return route

    def add_post_callback(self, func: PostCallback) -> PostCallback:
        """Call ``func(events, results)`` after all callbacks that one ``submit`` started have finished.

        ``results`` holds each run's return value, or its exception. Returns
        ``func`` so it can be used as a decorator.
        """
        self.post_callbacks.append(func)
        return func

    def endpoints(self) -> list[str]:
        """The distinct endpoints of all routes, in registration order (what a listener watches)."""
        return list(dict.fromkeys(route.endpoint for route in self.routes))

    def should_watch_dir(self, path: str) -> bool:
        """Whether a listener needs to watch this folder at all (False when every route ignores it)."""
        return True

    def match(self, route: Route, event: Event) -> Event | None:
        """The event as the route's callback should see it, or None if the route does not take it."""
        if event.endpoint != route.endpoint:
            return None
        if (
            route.actions is not None
            and not route.net
            and isinstance(event, FileEvent)
            and event.action not in route.actions
        ):
            return None
        if route.pattern is not None and not route.pattern(event):
            return None
        return event

    # -- loops -------------------------------------------------------------------------

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Run ``async def`` callbacks on ``loop`` from now on (None: the router's own loop thread)."""
        with self._lock:
            self._loop = loop

    def _async_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None and not self._loop.is_closed():
            return self._loop
        if self._own_loop is None:
            self._own_loop = _LoopThread()
        return self._own_loop.loop

    # -- submitting ----------------------------------------------------------------------

    def submit(self, events: Event | Iterable[Event]) -> list[Future[Any]]:
        """Hand events to the matching routes; return one future per callback run they joined.

        A future completes when that run has finished, with the callback's
        return value or exception (``CallbackTimeout`` past its timeout).
        """
        batch = [events] if isinstance(events, Event) else list(events)
        futures: dict[int, Future[Any]] = {}
        now = time.monotonic()
        with self._lock:
            for event in batch:
                for route in self.routes:
                    routed = self.match(route, event)
                    if routed is not None:
                        future = self._add(route, routed, now)
                        futures[id(future)] = future
        result = list(futures.values())
        if result and self.post_callbacks:
            self._watch_post(batch, result)
        return result

    def _add(self, route: Route, event: Event, now: float) -> Future[Any]:
        key = None if route.batch else event.name
        slot = self._slots.get((id(route), key))
        if slot is None:
            slot = self._slots[(id(route), key)] = _Slot(route, key)
        # A net route keeps every event in order: the net effect depends on the sequence.
        dedup = next(self._seq) if route.net else (event.name, getattr(event, "action", None))
        slot.pending.pop(dedup, None)  # re-insert so the order is that of the last occurrence
        slot.pending[dedup] = event
        if slot.future is None:
            slot.future = Future()
        future = slot.future
        if not slot.settled:
            slot.due = now + route.debounce_s
        if route.debounce_s == 0 and route.delay_s == 0 and slot.running is None:
            self._dispatch(slot)  # nothing to wait for: start now, from this thread
        elif not slot.scheduled and slot.running is None:
            self._schedule(slot.due, "slot", slot)
            slot.scheduled = True
        return future

    # -- timer ----------------------------------------------------------------------------

    def _schedule(self, when: float, kind: str, obj: Any) -> None:
        """Queue a timer entry; called with the lock held."""
        heapq.heappush(self._heap, (when, next(self._seq), kind, obj))
        if self._timer is None or not self._timer.is_alive():
            self._timer_stop = False
            self._timer = threading.Thread(target=self._timer_main, name="execlib-router-timer", daemon=True)
            self._timer.start()
        else:
            self._timer_wake.notify()

    def _timer_main(self) -> None:
        while True:
            later: list[Callable[[], None]] = []  # future completions, run without the lock held
            with self._lock:
                if self._timer_stop:
                    return
                now = time.monotonic()
                if not self._heap:
                    self._timer_wake.wait()
                    continue
                when = self._heap[0][0]
                if when > now:
                    self._timer_wake.wait(when - now)
                    continue
                _, _, kind, obj = heapq.heappop(self._heap)
                try:
                    if kind == "slot":
                        self._tick(obj, now)
                    else:
                        self._timed_out(obj, later)
                except Exception:  # the timer must survive anything a tick runs into
                    logger.exception("router timer entry %s failed", kind)
            for action in later:
                action()

    def _tick(self, slot: _Slot, now: float) -> None:
        slot.scheduled = False
        if not slot.pending or slot.running is not None:
            return  # a finishing run picks the pending events up
        if slot.due > now:
            self._schedule(slot.due, "slot", slot)
            slot.scheduled = True
            return
        if not slot.settled and slot.route.delay_s > 0:
            slot.settled = True
            slot.due = now + slot.route.delay_s
            self._schedule(slot.due, "slot", slot)
            slot.scheduled = True
            return
        self._dispatch(slot)

    # -- running --------------------------------------------------------------------------

    def _dispatch(self, slot: _Slot) -> None:
        """Start a run with the slot's pending burst; called with the lock held."""
        route = slot.route
        events = list(slot.pending.values())
        future = slot.future or Future()
        slot.pending, slot.future, slot.settled = {}, None, False
        if route.net:
            events = _net_events(route, events)
            if not events:  # the burst changed nothing (a temp file come and gone, say): no run
                future.set_result(None)
                if not slot.scheduled:
                    self._slots.pop((id(route), slot.key), None)
                return
        run = _Run(slot, events, future)
        slot.running = run
        arg: Any = events if route.batch else events[-1]
        try:
            if route.is_async:
                coro = self._call_async(route, arg)
                try:
                    outcome: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._async_loop())
                except RuntimeError:
                    coro.close()  # the attached loop is closed: fall back to our own
                    self._loop = None
                    outcome = asyncio.run_coroutine_threadsafe(self._call_async(route, arg), self._async_loop())
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="execlib-callback")
                outcome = self._pool.submit(self._call_sync, route, arg)
        except Exception as exc:
            logger.error("could not start callback %s: %s", route.name, exc)
            slot.running = None
            future.set_exception(exc)
            return
        run.outcome = outcome
        self._outstanding.add(outcome)
        if route.callback_timeout is not None:
            self._schedule(time.monotonic() + route.callback_timeout, "timeout", run)
        outcome.add_done_callback(lambda done: self._finished(run, done))

    @staticmethod
    def _call_sync(route: Route, arg: Any) -> Any:
        try:
            return route.func(arg)
        except BaseException:
            logger.exception("callback %s failed on %s", route.name, _describe(arg))
            raise

    @staticmethod
    async def _call_async(route: Route, arg: Any) -> Any:
        try:
            return await route.func(arg)
        except asyncio.CancelledError:
            raise
        except BaseException:
            logger.exception("callback %s failed on %s", route.name, _describe(arg))
            raise

    def _finished(self, run: _Run, outcome: Future[Any]) -> None:
        with self._lock:
            self._outstanding.discard(outcome)
            if run.abandoned:
                logger.info("callback %s finished after its timeout", run.slot.route.name)
                return
            self._release(run.slot)
        _settle(run.future, outcome)

    def _timed_out(self, run: _Run, later: list[Callable[[], None]]) -> None:
        slot = run.slot
        if slot.running is not run:
            return
        route = slot.route
        logger.warning(
            "callback %s still running after its %.3g s callback_timeout; moving on without it",
            route.name,
            route.callback_timeout,
        )
        run.abandoned = True
        if run.outcome is not None and route.is_async:
            run.outcome.cancel()
        self._release(slot)
        error = CallbackTimeout(f"callback {route.name} ran past its {route.callback_timeout} s timeout")
        later.append(lambda: _set_exception(run.future, error))

    def _release(self, slot: _Slot) -> None:
        """The slot's run is over: start the queued burst if it is ripe; called with the lock held."""
        slot.running = None
        if slot.pending:
            self._tick(slot, time.monotonic())
        elif not slot.scheduled:
            self._slots.pop((id(slot.route), slot.key), None)

    # -- post-callbacks ---------------------------------------------------------------------

    def _watch_post(self, events: list[Event], futures: list[Future[Any]]) -> None:
        key = frozenset(id(f) for f in futures)
        with self._lock:
            if key in self._post_waiting:
                return  # the same runs already have a post-callback pending (one burst, many submits)
            self._post_waiting.add(key)

        def all_done() -> None:
            with self._lock:
                self._post_waiting.discard(key)
            results = [result_or_exception(f) for f in futures]
            for post in list(self.post_callbacks):
                try:
                    post(events, results)
                except Exception:
                    logger.exception("post-callback %s failed", _callback_name(post))

        when_all(futures, all_done)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Cancel queued bursts, wait up to ``timeout`` s for running callbacks, stop the router's threads."""
        deadline = time.monotonic() + timeout
        with self._lock:
            cancelled = []
            for slot in self._slots.values():
                if slot.future is not None:
                    cancelled.append(slot.future)
                slot.pending, slot.future, slot.settled = {}, None, False
            self._slots = {k: s for k, s in self._slots.items() if s.running is not None}
            self._heap.clear()
            for slot in self._slots.values():
                slot.scheduled = False
            running = list(self._outstanding)
        for future in cancelled:
            future.cancel()
        _, still = wait_futures(running, timeout=max(0.0, deadline - time.monotonic()))
        if still:
            logger.warning("%d callback(s) still running after %.3g s; not waiting for them", len(still), timeout)
        with self._lock:
            self._timer_stop = True
            self._timer_wake.notify_all()
            timer, self._timer = self._timer, None
            pool, self._pool = self._pool, None
            own, self._own_loop = self._own_loop, None
        if timer is not None and timer is not threading.current_thread():
            timer.join(max(0.1, deadline - time.monotonic()))
        if pool is not None:
            pool.shutdown(wait=not still, cancel_futures=True)
        if own is not None:
            own.stop(max(0.1, deadline - time.monotonic()))


def _net_events(route: Route, events: list[Event]) -> list[Event]:
    net = net_effect(events)
    if route.actions is None:
        return net
    return [e for e in net if not isinstance(e, FileEvent) or e.action in route.actions]


def _describe(arg: Any) -> str:
    if isinstance(arg, list):
        names = ", ".join(getattr(e, "name", str(e)) for e in arg[:5])
        return f"{len(arg)} events ({names}{', ...' if len(arg) > 5 else ''})"
    return str(arg)


def result_or_exception(future: Future[Any]) -> Any:
    """A done future's value for post-callbacks and chains: its result, its exception, or None if cancelled."""
    if future.cancelled():
        return None
    return future.exception() or future.result()


def when_all(futures: Sequence[Future[Any]], then: Callable[[], None]) -> None:
    """Call ``then()`` once, when every one of ``futures`` is done (at once if there are none).

    ``then`` runs in the thread that finished the last future, outside the
    counter's lock: it may take other locks or submit more work.
    """
    if not futures:
        then()
        return
    remaining = len(futures)
    lock = threading.Lock()

    def one_done(_: Future[Any]) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            if remaining:
                return
        then()

    for future in futures:
        future.add_done_callback(one_done)


def _settle(target: Future[Any], outcome: Future[Any]) -> None:
    if target.done():
        return
    if outcome.cancelled():
        target.cancel()
    elif outcome.exception() is not None:
        target.set_exception(outcome.exception())
    else:
        target.set_result(outcome.result())


def _set_exception(future: Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
