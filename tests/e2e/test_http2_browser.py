"""Chromium over HTTPS with HTTP/2 (Hypercorn): the page comes over h2 and live-reloads over wss.

The browser context ignores certificate errors (the issue allows it here): that the certificate
is the one served and that verification happens is proven with httpx in tests/test_http2.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from execlib import Server

from ..backend_support import make_cert_files, serve_tls_with
from .pages import loads, open_page, wait_reported, write_page


@pytest.fixture
def tls_context(browser) -> Iterator[object]:
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "http1.1"])
def test_https_page_live_reloads_over_wss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_context, http2: bool
) -> None:
    serve_tls_with(monkeypatch, make_cert_files(tmp_path / "certs"))
    site = tmp_path / "site"
    write_page(site / "index.html", "<p id='msg'>one</p>")
    server = Server(site, port=0, backend="hypercorn", http2=http2).start_in_thread()
    try:
        page = open_page(tls_context, server.url)  # waits for the live-reload socket to open
        protocol = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        assert protocol == ("h2" if http2 else "http/1.1")
        assert page.evaluate("location.protocol") == "https:"
        wait_reported(server, 1)
        write_page(site / "index.html", "<p id='msg'>two</p>")
        page.wait_for_function("document.getElementById('msg').textContent === 'two'")
        assert loads(page) == 2
    finally:
        server.shutdown()
        assert server.wait(5)
