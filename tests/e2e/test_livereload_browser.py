"""Live reload end to end in headless Chromium: what a user sees after saving a file."""

from __future__ import annotations

import math
import struct
import time
import zlib
from pathlib import Path

import pytest

from execlib import Server
from execlib.server.burst import BURST_MAX_HOLD_S

from ..conftest import write
from ..helpers import wait_until
from ..save_patterns import dot_temp_rename, in_place, random_temp_rename
from .pages import connected, loads, open_page, page_html, settled, wait_reported, write_page

BOX_WATCH = """
<script>
window.marker = 42; window.colorsSeen = new Set(); window.linkEvents = [];
new MutationObserver(ms => ms.forEach(m => {
  m.addedNodes.forEach(n => n.tagName === 'LINK' && linkEvents.push(['added', n.href]));
  m.removedNodes.forEach(n => n.tagName === 'LINK' && linkEvents.push(['removed', n.href]));
})).observe(document.head, {childList: true});
document.addEventListener('load', e => {
  if (e.target.tagName === 'LINK') linkEvents.push(['loaded', e.target.href]);
}, true);
(function watch() {
  const el = document.getElementById('box');
  if (el) colorsSeen.add(getComputedStyle(el).color);
  requestAnimationFrame(watch);
})();
</script>
"""


def png(width: int, height: int) -> bytes:
    raw = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def changed_since(server: Server, generation: int) -> None:
    wait_until(lambda: server.hub.generation > generation, 10, message="the server to see the change")


def test_html_edit_shows_new_content(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write_page(site / "index.html", "<p id='msg'>one</p>")
    server = serve(site)
    page = open_page(context, server.url)
    wait_reported(server, 1)
    write_page(site / "index.html", "<p id='msg'>two</p>")
    page.wait_for_function("document.getElementById('msg')?.textContent === 'two'")
    assert loads(page) == 2


@pytest.mark.parametrize("save", [in_place, random_temp_rename, dot_temp_rename], ids=lambda f: f.__name__)
def test_css_edit_swaps_the_sheet_without_reloading(tmp_path: Path, serve, context, save) -> None:
    site = tmp_path / "site"
    write(site / "style.css", "#box { color: rgb(255, 0, 0); }")
    write_page(
        site / "index.html", "<div id='box'>styled</div>", head="<link rel='stylesheet' href='style.css'>" + BOX_WATCH
    )
    server = serve(site)
    page = open_page(context, server.url)
    wait_reported(server, 1)
    save(site / "style.css", "#box { color: rgb(0, 0, 255); }")
    page.wait_for_function("getComputedStyle(document.getElementById('box')).color === 'rgb(0, 0, 255)'")
    assert page.evaluate("window.marker") == 42  # same document: no navigation happened
    assert loads(page) == 1
    # Every frame was styled: red, then blue, never the unstyled default in between.
    assert set(page.evaluate("[...window.colorsSeen]")) <= {"rgb(255, 0, 0)", "rgb(0, 0, 255)"}
    events = page.evaluate("window.linkEvents")
    kinds = [kind for kind, _ in events]
    assert kinds.index("loaded") < kinds.index("removed"), events  # old sheet removed after the new one loaded
    assert page.evaluate("document.querySelectorAll('link[rel=stylesheet]').length") == 1


def test_imported_stylesheet_is_swapped(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write(site / "main.css", "@import url('theme.css');")
    write(site / "theme.css", "#box { color: rgb(255, 0, 0); }")
    write_page(site / "index.html", "<div id='box'>x</div>", head="<link rel='stylesheet' href='main.css'>")
    server = serve(site)
    page = open_page(context, server.url)
    page.evaluate("window.marker = 7")
    wait_reported(server, 1)
    wait_until(lambda: any("theme.css" in (p.resources or ()) for p in server.hub.pages), 10)
    write(site / "theme.css", "#box { color: rgb(0, 128, 0); }")
    page.wait_for_function("getComputedStyle(document.getElementById('box')).color === 'rgb(0, 128, 0)'")
    assert page.evaluate("window.marker") == 7


def test_image_swapped_in_place(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write(site / "pic.png", png(10, 10))
    body = (
        "<img id='pic' src='pic.png'><div id='bg' style=\"width:5px;height:5px;background-image:url('pic.png')\"></div>"
    )
    write_page(site / "index.html", body)
    server = serve(site)
    page = open_page(context, server.url)
    page.wait_for_function("document.getElementById('pic').naturalWidth === 10")
    page.evaluate("window.marker = 'kept'")
    wait_reported(server, 1)
    write(site / "pic.png", png(20, 20))
    page.wait_for_function("document.getElementById('pic').naturalWidth === 20")
    assert page.evaluate("window.marker") == "kept"
    assert "livereload=" in page.evaluate("document.getElementById('bg').style.backgroundImage")
    assert loads(page) == 1


def test_editing_another_page_does_not_reload_this_one(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write_page(site / "index.html", "home")
    write_page(site / "about.html", "<p id='msg'>about one</p>")
    server = serve(site)
    home = open_page(context, server.url)
    about = open_page(context, server.url + "about.html")
    wait_reported(server, 2)
    generation = server.hub.generation
    write_page(site / "about.html", "<p id='msg'>about two</p>")
    about.wait_for_function("document.getElementById('msg')?.textContent === 'about two'")
    changed_since(server, generation)
    settled(home, server)
    assert loads(home) == 1


def test_a_burst_reloads_once_with_the_final_content(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write(site / "sentinel.css", "#s { color: rgb(1, 1, 1); }")
    head = "<link rel='stylesheet' href='sentinel.css'>"
    write_page(site / "index.html", "<p id='msg'>v0</p><p id='s'>s</p>", head=head)
    server = serve(site)
    page = open_page(context, server.url)
    wait_reported(server, 1)
    (site / "out").mkdir()
    began = time.monotonic()
    for i in range(1, 301):  # a build rewriting 300 files, the page among them
        (site / "out" / f"file{i}.html").write_text(page_html(str(i)))
        if i % 30 == 0:
            write_page(site / "index.html", f"<p id='msg'>v{i}</p><p id='s'>s</p>", head=head)
    lasted = time.monotonic() - began
    page.wait_for_function("document.getElementById('msg')?.textContent === 'v300'")
    # A later, separate change the page reacts to in place: once it shows, every earlier
    # message has been handled, so the load count is final.
    write(site / "sentinel.css", "#s { color: rgb(2, 2, 2); }")
    page.wait_for_function("getComputedStyle(document.getElementById('s')).color === 'rgb(2, 2, 2)'")
    if lasted <= BURST_MAX_HOLD_S:
        assert loads(page) == 2  # the first load, and one reload for the whole burst
    else:  # a starved machine writing slowly: the gate flushes the state so far once per hold (burst.py)
        assert 2 <= loads(page) <= 1 + math.ceil(lasted / BURST_MAX_HOLD_S)


def test_page_reconnects_and_reloads_after_a_server_restart(tmp_path: Path, context) -> None:
    site = tmp_path / "site"
    write_page(site / "index.html", "<p id='msg'>before</p>")
    first = Server(site, port=0).start_in_thread()
    port = first.bound_addr[1]
    second = None
    try:
        page = open_page(context, first.url)
        first.shutdown()
        assert first.wait(5)
        page.wait_for_function("!window.__execlibLiveReload.state.ws")  # it noticed
        write_page(site / "index.html", "<p id='msg'>after</p>")
        second = Server(site, port=port).start_in_thread()
        page.wait_for_function("document.getElementById('msg')?.textContent === 'after'")
        connected(page)
    finally:
        first.shutdown()
        if second is not None:
            second.shutdown()
            second.wait(5)


def test_404_page_recovers_when_the_file_appears(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write_page(site / "index.html", "home")
    server = serve(site)
    page = context.new_page()
    response = page.goto(server.url + "later.html")
    assert response.status == 404
    connected(page)
    wait_reported(server, 1)
    write_page(site / "later.html", "<p id='msg'>here now</p>")
    page.wait_for_function(
        "document.getElementById('msg') && document.getElementById('msg').textContent === 'here now'"
    )


def test_deleted_page_reloads_to_404(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write_page(site / "gone.html", "<p id='msg'>soon gone</p>")
    server = serve(site)
    page = open_page(context, server.url + "gone.html")
    wait_reported(server, 1)
    (site / "gone.html").unlink()
    page.wait_for_function("(document.body?.textContent ?? '').includes('404')")


def test_scroll_position_kept_across_a_reload(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    tall = "<div style='height: 6000px'>tall</div>"
    write_page(site / "index.html", f"<p id='msg'>one</p>{tall}")
    server = serve(site)
    page = open_page(context, server.url)
    page.evaluate("window.scrollTo(0, 1500)")
    page.wait_for_function("window.scrollY === 1500")
    wait_reported(server, 1)
    write_page(site / "index.html", f"<p id='msg'>two</p>{tall}")
    page.wait_for_function("document.getElementById('msg')?.textContent === 'two'")
    page.wait_for_function("window.scrollY === 1500")
    assert loads(page) == 2


def test_js_change_reloads_only_pages_that_loaded_it(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write(site / "app.js", "window.appVersion = 1;")
    write_page(site / "a.html", "with script", head="<script src='app.js'></script>")
    write_page(site / "b.html", "without script")
    server = serve(site)
    a = open_page(context, server.url + "a.html")
    b = open_page(context, server.url + "b.html")
    wait_reported(server, 2)
    wait_until(lambda: any("app.js" in (p.resources or ()) for p in server.hub.pages), 10)
    generation = server.hub.generation
    write(site / "app.js", "window.appVersion = 2;")
    a.wait_for_function("window.appVersion === 2")
    changed_since(server, generation)
    settled(b, server)
    assert loads(a) == 2 and loads(b) == 1


def test_alert_box_shows_and_dismisses(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write_page(site / "index.html", "<p>page</p>")
    server = serve(site)
    page = open_page(context, server.url)
    wait_reported(server, 1)
    assert server.alert("Deploy <b>finished</b>") == 1
    box = page.locator("#execlib-alert")
    box.wait_for()
    assert page.locator("#execlib-alert pre").inner_text() == "Deploy <b>finished</b>"  # text, not markup
    page.locator("#execlib-alert button").click()
    box.wait_for(state="detached")
    assert loads(page) == 1


def test_srcset_images_are_swapped(tmp_path: Path, serve, context) -> None:
    site = tmp_path / "site"
    write(site / "a.png", png(10, 10))
    write(site / "b.png", png(12, 12))
    write_page(site / "index.html", "<img id='pic' src='a.png' srcset='a.png 1x, b.png 2x'>")
    server = serve(site)
    page = open_page(context, server.url)
    wait_reported(server, 1)
    write(site / "a.png", png(30, 30))
    page.wait_for_function("document.getElementById('pic').srcset.includes('a.png?livereload=')")
    assert "b.png 2x" in page.evaluate("document.getElementById('pic').srcset")
    assert loads(page) == 1
