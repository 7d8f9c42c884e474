"""Watching is set up while the first requests are served (a fifth of the start-up otherwise).

What must still hold: ``start_in_thread()`` (ready) means watching; a page served before
watching began and changed before then is announced once it has; a build on start still runs
before anything is served. Real uvicorn, real inotify; the watch set-up is held back with an
event so that "before watching began" is a state the test controls, not a race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from execlib import Server
from execlib.server import server as server_module

from .conftest import write
from .helpers import wait_until


@pytest.fixture
def held_watching(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Until the event is set, the server's reload listener is not built (so nothing is watched)."""
    release = threading.Event()
    real = server_module.build_reload_listener

    def held(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(10), "the test never released the watch set-up"
        return real(*args, **kwargs)

    monkeypatch.setattr(server_module, "build_reload_listener", held)
    yield release
    release.set()


def start_serving(server: Server) -> threading.Thread:
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    wait_until(lambda: server.bound_addr is not None, message="server never bound")
    return thread


def test_pages_are_served_before_watching_is_set_up(site: Path, held_watching: threading.Event) -> None:
    server = Server(site, port=0)
    thread = start_serving(server)
    try:
        response = httpx.get(server.url + "index.html", timeout=10)
        assert response.status_code == 200 and b"<h1>Home</h1>" in response.content
        assert not server._ready.is_set()  # serving, not yet ready: watching is not set up
        held_watching.set()
        wait_until(server._ready.is_set, message="never ready after the watch set-up")
        assert server._own_listeners and all(listener.is_running for listener in server._own_listeners)
    finally:
        server.shutdown()
        thread.join(10)


def test_a_page_changed_before_watching_began_is_announced(site: Path, held_watching: threading.Event) -> None:
    server = Server(site, port=0)
    announced: list[tuple[str, str]] = []
    done = threading.Event()

    def hook(events: list[Any]) -> None:
        announced.extend((event.name, str(event.action)) for event in events)
        done.set()

    server.on_change(hook)
    thread = start_serving(server)
    try:
        for name in ("index.html", "about.html", "style.css", "app.js"):
            assert httpx.get(server.url + name, timeout=10).status_code == 200
        write(site / "index.html", "<html><body><h1>Edited before watching</h1></body></html>")
        (site / "style.css").unlink()
        held_watching.set()
        assert done.wait(10), "the change made before watching began was never announced"
        # about.html and app.js were served too, but did not change: not announced
        assert sorted(announced) == [("index.html", "modified"), ("style.css", "deleted")]
    finally:
        server.shutdown()
        thread.join(10)


def test_ready_means_watching(site: Path) -> None:
    changed = threading.Event()
    server = Server(site, port=0)
    server.on_change(lambda events: changed.set())
    with server:
        write(site / "about.html", "<html><body><p>Changed right after ready</p></body></html>")
        assert changed.wait(10), "a change right after start_in_thread() returned was missed"


def test_a_build_on_start_still_comes_before_serving(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    write(source / "page.txt", "built")
    built_before_serving: list[bool] = []

    def build() -> None:
        built_before_serving.append(not server._ready.is_set())
        write(out / "index.html", "<html><body>" + (source / "page.txt").read_text() + "</body></html>")

    out.mkdir()
    server = Server(out, port=0, build=build, watch=[str(source)], build_on_start=True)
    with server:
        assert built_before_serving == [True]
        assert b"built" in httpx.get(server.url, timeout=10).content
