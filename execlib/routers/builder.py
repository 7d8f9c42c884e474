"""RouterBuilder and ``@route``: routers declared as marked methods of a class, built into a ChainRouter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..router import Router
from .chain import ChainRouter
from .path import PathRouter

F = TypeVar("F", bound=Callable[..., Any])


def route(router: str, group: str, **kwargs: Any) -> Callable[[F], F]:
    """Mark a method of a ``RouterBuilder`` subclass as a callback of route group ``group`` on router ``router``.

    ``kwargs`` go to that router's ``register`` (glob, debounce, ...). Stack
    the decorator to register one method several times.
    """

    def mark(func: F) -> F:
        marks = list(getattr(func, "__execlib_routes__", ()))
        marks.append((router, group, kwargs))
        func.__execlib_routes__ = marks  # type: ignore[attr-defined]
        return func

    return mark


class RouterBuilder:
    """Build routers from methods marked with ``@route(router, group, **kwargs)``.

    ``endpoints`` maps each route group to the endpoint (a folder, for a
    PathRouter) its routes watch; ``routers`` maps router names to Router
    instances (a missing name gets a new ``PathRouter``). ``build()``
    registers every marked method, bound to this instance, and returns a
    ``ChainRouter`` over the routers in the order of ``routers`` and then of
    first use, so a router's callbacks for an event finish before the next
    router's start.
    """

    def __init__(self, endpoints: Mapping[str, Any], routers: Mapping[str, Router] | None = None) -> None:
        self.endpoints = dict(endpoints)
        self.routers: dict[str, Router] = dict(routers or {})

    def marked(self) -> list[tuple[str, str, dict[str, Any], Callable[..., Any]]]:
        """(router name, group, register kwargs, bound method) for every marked method, in definition order."""
        found = []
        seen: set[str] = set()
        for klass in type(self).__mro__:
            for attr, value in vars(klass).items():
                if attr in seen or not hasattr(value, "__execlib_routes__"):
                    continue
                seen.add(attr)
                for router_name, group, kwargs in value.__execlib_routes__:
                    found.append((router_name, group, kwargs, getattr(self, attr)))
        return found

    def build(self) -> ChainRouter:
        """Register the marked methods on their routers and chain the routers."""
        for router_name, group, kwargs, method in self.marked():
            if group not in self.endpoints:
                raise KeyError(f"route group {group!r} has no endpoint; pass it in RouterBuilder(endpoints=...)")
            router = self.routers.get(router_name)
            if router is None:
                router = self.routers[router_name] = PathRouter()
            router.register(self.endpoints[group], method, **kwargs)
        return ChainRouter(list(self.routers.values()))
