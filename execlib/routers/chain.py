"""ChainRouter: routers run one after another for each event, the next once the previous one's callbacks end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any, NoReturn

from ..event import Event
from ..router import BaseRouter, result_or_exception, when_all


class ChainRouter(BaseRouter):
    """Routers run in order for each event: the next one gets the event once the previous one's callbacks end.

    ``submit`` returns one future per call, done when the last router's
    callbacks have finished, with a list of each router's results. A chain
    holds no routes, timers or threads of its own: its routers do.
    """

    def __init__(self, routers: Sequence[BaseRouter]) -> None:
        self.routers = list(routers)

    def register(self, *args: Any, **kwargs: Any) -> NoReturn:
        # Kept only to say where routes go: a chain has no routes, and an AttributeError would not tell.
        raise TypeError("register routes on the chained routers, not on the ChainRouter")

    def endpoints(self) -> list[str]:
        return list(dict.fromkeys(e for router in self.routers for e in router.endpoints()))

    def should_watch_dir(self, path: str) -> bool:
        return any(router.should_watch_dir(path) for router in self.routers)

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        for router in self.routers:
            router.attach_loop(loop)

    def submit(self, events: Event | Iterable[Event]) -> list[Future[Any]]:
        batch = [events] if isinstance(events, Event) else list(events)
        chain: Future[Any] = Future()
        results: list[list[Any]] = []

        def step(index: int) -> None:
            if index == len(self.routers) or chain.cancelled():
                if not chain.done():
                    chain.set_result(results)
                return
            futures = self.routers[index].submit(batch)

            def next_router() -> None:
                results.append([result_or_exception(f) for f in futures])
                step(index + 1)

            # A router that took none of the events calls next_router at once (no futures to wait for).
            when_all(futures, next_router)

        step(0)
        return [chain]

    def close(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for router in self.routers:
            router.close(max(0.1, deadline - time.monotonic()))
