"""The official livereload.js (npm's livereload-js) against our /livereload WebSocket, in Chromium.

scripts/test installs it; EXECLIB_STOCK_LIVERELOAD_JS names the file. With CI=true a missing
client is an error, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..conftest import write
from ..helpers import wait_until
from ..save_patterns import dot_temp_rename, in_place, random_temp_rename
from .pages import loads, write_page

STOCK = os.environ.get("EXECLIB_STOCK_LIVERELOAD_JS", "")


@pytest.fixture
def stock_client() -> bytes:
    if not STOCK or not os.path.exists(STOCK):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the official livereload.js is missing: scripts/test installs it (npm livereload-js)")
        pytest.skip("set EXECLIB_STOCK_LIVERELOAD_JS (scripts/test installs npm's livereload-js)")
    return Path(STOCK).read_bytes()


@pytest.mark.parametrize("save", [in_place, random_temp_rename, dot_temp_rename], ids=lambda f: f.__name__)
def test_official_client_reloads_and_swaps_css(tmp_path: Path, serve, context, stock_client: bytes, save) -> None:
    site = tmp_path / "site"
    write(site / "vendor" / "livereload.js", stock_client)
    write(site / "style.css", "#box { color: rgb(255, 0, 0); }")
    # Our own injected client stands aside (it checks this flag), so only the official one talks.
    head = (
        "<script>window.__execlibLiveReload = {stockOnly: true};</script>"
        "<script src='/vendor/livereload.js'></script><link rel='stylesheet' href='style.css'>"
    )
    write_page(site / "index.html", "<p id='msg'>one</p><div id='box'>box</div>", head=head)
    server = serve(site)
    page = context.new_page()
    page.goto(server.url)
    # The official client completed the protocol 7 handshake and sent 'info' with its URL.
    wait_until(lambda: any(p.url and p.resources is None for p in server.hub.pages), 10, message="the handshake")
    page.evaluate("window.marker = 'kept'")
    save(site / "style.css", "#box { color: rgb(0, 0, 255); }")
    page.wait_for_function("getComputedStyle(document.getElementById('box')).color === 'rgb(0, 0, 255)'")
    assert page.evaluate("window.marker") == "kept"  # swapped in place, no reload
    write_page(site / "index.html", "<p id='msg'>two</p><div id='box'>box</div>", head=head)
    page.wait_for_function("document.getElementById('msg').textContent === 'two'")
    assert loads(page) == 2
