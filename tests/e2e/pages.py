"""Helpers for browser tests: instrumented pages and waiting on what the page shows."""

from __future__ import annotations

from pathlib import Path

from ..conftest import write

# Counts page loads across reloads (sessionStorage survives location.reload()).
LOAD_COUNTER = "<script>sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);</script>"


def page_html(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}{LOAD_COUNTER}</head><body>{body}</body></html>"


def write_page(path: Path, body: str, head: str = "") -> Path:
    return write(path, page_html(body, head))


def loads(page) -> int:
    return int(page.evaluate("Number(sessionStorage.loads || 0)"))


def connected(page) -> None:
    """Wait until the page's live-reload client has finished its handshake and reported."""
    page.wait_for_function(
        "() => window.__execlibLiveReload && window.__execlibLiveReload.state.ws"
        " && window.__execlibLiveReload.state.ws.readyState === 1 && window.__execlibLiveReload.state.boot"
    )


def open_page(context, url: str):
    page = context.new_page()
    page.goto(url)
    connected(page)
    return page


def wait_reported(server, count: int) -> None:
    """Wait until the server knows ``count`` pages with their resources."""
    from ..helpers import wait_until

    wait_until(
        lambda: sum(1 for p in server.hub.pages if p.url and p.resources is not None) >= count,
        10,
        message=f"{count} pages to report",
    )


def settled(page, server) -> None:
    """Wait until the page has processed every change the server has sent so far."""
    generation = server.hub.generation
    page.wait_for_function(
        "g => window.__execlibLiveReload && window.__execlibLiveReload.state.generation >= g", arg=generation
    )
