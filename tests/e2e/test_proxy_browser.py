"""Proxy mode in headless Chromium: the waiting page, reloads and stylesheet swaps through the proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from ..conftest import write
from ..helpers import wait_until
from ..proxy_support import HOST, Backend, free_port
from .pages import connected, loads, page_html, wait_reported

BOX = "<div id='box'>styled</div>"


def color(page) -> str:
    return str(page.evaluate("getComputedStyle(document.getElementById('box')).color"))


def template_backend(project: Path) -> Backend:
    """A backend rendering ``templates/index.html`` on each request, and serving ``static/`` at ``/static/``."""

    async def index(request: Request) -> Response:
        return HTMLResponse((project / "templates" / "index.html").read_text(encoding="utf-8"))

    async def static(request: Request) -> Response:
        return FileResponse(project / "static" / request.path_params["name"], headers={"cache-control": "no-cache"})

    return Backend(routes=[Route("/", index), Route("/static/{name:path}", static)])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, Backend]]:
    write(tmp_path / "static" / "css" / "site.css", "#box { color: rgb(255, 0, 0); }")
    head = "<link rel='stylesheet' href='/static/css/site.css'>"
    write(tmp_path / "templates" / "index.html", page_html("<p id='msg'>one</p>" + BOX, head))
    backend = template_backend(tmp_path).start()
    yield tmp_path, backend
    backend.stop()


def test_waiting_page_turns_into_the_page_when_the_backend_comes_up(serve, tmp_path: Path, context) -> None:
    port = free_port()
    server = serve(tmp_path, static=False, proxy=f"http://{HOST}:{port}", proxy_timeout=0.2)
    page = context.new_page()
    page.goto(server.url + "page")
    assert f"waiting for http://{HOST}:{port}" in page.text_content("h1")
    connected(page)  # the waiting page has the live-reload client too
    backend = Backend(port).start()
    try:
        page.wait_for_selector("#msg")  # no manual refresh: the page reloaded itself
        assert page.text_content("#msg") == "from the backend"
        connected(page)
    finally:
        backend.stop()


def test_watched_template_edit_reloads_the_page(serve, project, context) -> None:
    folder, backend = project
    server = serve(folder, static=False, proxy=backend.url, watch=[folder / "templates"])
    page = context.new_page()
    page.goto(server.url)
    connected(page)
    wait_reported(server, 1)
    head = "<link rel='stylesheet' href='/static/css/site.css'>"
    write(folder / "templates" / "index.html", page_html("<p id='msg'>two</p>" + BOX, head))
    page.wait_for_function("document.getElementById('msg')?.textContent === 'two'")
    assert loads(page) == 2


def test_watched_stylesheet_served_by_the_backend_is_swapped(serve, project, context) -> None:
    folder, backend = project
    server = serve(folder, static=False, proxy=backend.url, watch=[folder / "templates", folder / "static"])
    page = context.new_page()
    page.goto(server.url)
    connected(page)
    wait_reported(server, 1)
    wait_until(lambda: any("static/css/site.css" in (p.resources or ()) for p in server.hub.pages), 10)
    page.evaluate("window.marker = 'kept'")
    assert color(page) == "rgb(255, 0, 0)"
    write(folder / "static" / "css" / "site.css", "#box { color: rgb(0, 0, 255); }")
    page.wait_for_function("getComputedStyle(document.getElementById('box')).color === 'rgb(0, 0, 255)'")
    assert page.evaluate("window.marker") == "kept"  # swapped in place: no reload
    assert loads(page) == 1


def test_stylesheet_from_root_is_swapped(serve, tmp_path: Path, context) -> None:
    root = tmp_path / "public"
    write(root / "css" / "root.css", "#box { color: rgb(255, 0, 0); }")

    async def index(request: Request) -> Response:
        return HTMLResponse(page_html(BOX, "<link rel='stylesheet' href='/css/root.css'>"))

    backend = Backend(routes=[Route("/", index)]).start()
    try:
        server = serve(root, proxy=backend.url)
        page = context.new_page()
        page.goto(server.url)
        connected(page)
        wait_reported(server, 1)
        page.evaluate("window.marker = 'kept'")
        assert color(page) == "rgb(255, 0, 0)"
        write(root / "css" / "root.css", "#box { color: rgb(0, 128, 0); }")
        page.wait_for_function("getComputedStyle(document.getElementById('box')).color === 'rgb(0, 128, 0)'")
        assert page.evaluate("window.marker") == "kept"
        assert loads(page) == 1
    finally:
        backend.stop()


def test_client_runs_under_the_backends_csp(serve, tmp_path: Path, context) -> None:
    backend = Backend().start()
    try:
        server = serve(tmp_path, static=False, proxy=backend.url)
        page = context.new_page()
        blocked: list[str] = []
        page.on("console", lambda message: blocked.append(message.text) if "Content Security" in message.text else None)
        page.goto(server.url + "csp")  # default-src 'none' from the backend
        connected(page)  # the script loaded and its WebSocket opened
        page.goto(server.url + "csp-nonce")  # 'strict-dynamic' with a nonce
        connected(page)
        assert not [line for line in blocked if "livereload" in line or "/livereload" in line], blocked
    finally:
        backend.stop()
