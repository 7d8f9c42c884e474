"""Live reload over TLS in headless Chromium: an https page whose client reconnects over wss://.

The browser context ignores certificate errors (the local CA is not in Chromium's store here);
that the certificate verifies against the local CA is proven with httpx in tests/test_https.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers import wait_until
from .pages import connected, loads, write_page


@pytest.fixture
def tls_context(browser) -> Iterator[object]:
    context = browser.new_context(ignore_https_errors=True)
    try:
        yield context
    finally:
        context.close()


def test_https_page_live_reloads_over_wss(tmp_path: Path, serve, tls_context, monkeypatch) -> None:
    monkeypatch.setenv("EXECLIB_DATA_DIR", str(tmp_path / "data"))
    site = tmp_path / "site"
    write_page(site / "index.html", "<p id='msg'>one</p>")
    server = serve(site, https=True)
    assert server.url.startswith("https://")
    page = tls_context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(server.url)
    connected(page)
    assert page.evaluate("location.protocol") == "https:"
    assert page.evaluate("window.__execlibLiveReload.state.ws.url").startswith("wss://")
    wait_until(lambda: sum(1 for p in server.hub.pages if p.url) >= 1, 10, message="the page to report")
    write_page(site / "index.html", "<p id='msg'>two</p>")
    page.wait_for_function("document.getElementById('msg') && document.getElementById('msg').textContent === 'two'")
    assert loads(page) == 2
    assert sockets and all(url.startswith("wss://") for url in sockets), sockets
