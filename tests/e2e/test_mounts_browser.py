"""Mounted folders in headless Chromium: a stylesheet edited in a mount is swapped in ROOT's page."""

from __future__ import annotations

from pathlib import Path

from ..conftest import write
from ..helpers import wait_until
from .pages import loads, open_page, wait_reported, write_page
from .test_livereload_browser import BOX_WATCH


def test_css_edit_in_a_mounted_folder_swaps_the_sheet_in_a_root_page(tmp_path: Path, serve, context) -> None:
    site, shared = tmp_path / "site", tmp_path / "shared"
    write(shared / "css" / "style.css", "#box { color: rgb(255, 0, 0); }")
    write(site / "assets" / "css" / "style.css", "#box { color: rgb(0, 128, 0); }")  # shadowed by the mount
    head = "<link rel='stylesheet' href='/assets/css/style.css'>" + BOX_WATCH
    write_page(site / "index.html", "<div id='box'>styled</div>", head=head)
    server = serve(site, mounts=[f"/assets={shared}"])
    page = open_page(context, server.url)
    wait_reported(server, 1)
    assert page.evaluate("getComputedStyle(document.getElementById('box')).color") == "rgb(255, 0, 0)"
    wait_until(lambda: any("assets/css/style.css" in (p.resources or ()) for p in server.hub.pages), 10)

    write(shared / "css" / "style.css", "#box { color: rgb(0, 0, 255); }")
    page.wait_for_function("getComputedStyle(document.getElementById('box')).color === 'rgb(0, 0, 255)'")
    assert page.evaluate("window.marker") == 42  # same document: no navigation happened
    assert loads(page) == 1
    assert set(page.evaluate("[...window.colorsSeen]")) <= {"rgb(255, 0, 0)", "rgb(0, 0, 255)"}
    assert page.evaluate("document.querySelectorAll('link[rel=stylesheet]').length") == 1
