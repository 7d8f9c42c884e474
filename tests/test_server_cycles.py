"""Many Servers in one process (a build tool that embeds a new one per run): nothing of a stopped
Server may stay reachable, from process-wide caches (FastAPI's) or anywhere else."""

from __future__ import annotations

import gc
import http.client
import weakref
from pathlib import Path

from execlib import Server

CYCLES = 15  # per test; 30 Servers in all


def get(server: Server, path: str) -> int:
    assert server.bound_addr is not None
    conn = http.client.HTTPConnection("127.0.0.1", server.bound_addr[1], timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def plain_cycle(site: Path) -> list[weakref.ref[object]]:
    server = Server(site, port=0)
    server.start_in_thread()
    assert [get(server, "/"), get(server, "/livereload.js"), get(server, "/__execlib__/health")] == [200] * 3
    server.shutdown()
    assert server.wait(10)
    # the hub is what execlib's own endpoints used to hold on to; the site, its file cache
    return [weakref.ref(server), weakref.ref(server.hub), weakref.ref(server.static_site)]


def routes_cycle(site: Path) -> list[weakref.ref[object]]:
    server = Server(site, port=0)

    # closures over the server, as an embedding tool's routes often are
    @server.app.get("/status/{part}")
    async def status(part: str) -> dict[str, str]:
        return {"part": part, "root": server.root}

    @server.app.websocket("/events/{room}")
    async def events(websocket: object, room: str) -> None:
        server.reload()

    server.start_in_thread()
    assert [get(server, "/"), get(server, "/status/1")] == [200, 200]
    server.shutdown()
    assert server.wait(10)
    return [weakref.ref(server), weakref.ref(server.app), weakref.ref(status)]


def late_routes_cycle(site: Path) -> list[weakref.ref[object]]:
    server = Server(site, port=0)
    server.start_in_thread()

    @server.app.get("/status/{part}")  # the app is built while serving: no lifespan of its own
    async def status(part: str) -> dict[str, str]:
        return {"part": part, "root": server.root}

    assert get(server, "/status/1") == 200
    server.shutdown()
    assert server.wait(10)
    return [weakref.ref(server), weakref.ref(status)]


def alive(refs: list[weakref.ref[object]]) -> list[object]:
    gc.collect()
    return [obj for ref in refs if (obj := ref()) is not None]


def test_stopped_servers_are_freed(site: Path) -> None:
    refs = [ref for _ in range(CYCLES) for ref in plain_cycle(site)]
    assert len(refs) == 3 * CYCLES
    assert alive(refs) == []


def test_stopped_servers_with_routes_of_their_own_are_freed(site: Path) -> None:
    refs = [ref for _ in range(CYCLES) for ref in routes_cycle(site)]
    assert len(refs) == 3 * CYCLES
    assert alive(refs) == []


def test_the_check_can_fail(site: Path) -> None:
    # a Server still referenced is found alive: the weak references above do see survivors
    kept = Server(site, port=0)
    refs = [weakref.ref(kept)]
    assert alive(refs) == [kept]


def test_stopped_servers_whose_routes_came_while_serving_are_freed(site: Path) -> None:
    refs = [ref for _ in range(5) for ref in late_routes_cycle(site)]
    assert len(refs) == 2 * 5
    assert alive(refs) == []
