"""File changes on disk -> the right pages told, through the real watcher (inotify)."""

from __future__ import annotations

import time
from pathlib import Path

from execlib import Server

from .conftest import write
from .helpers import run_async
from .test_livereload_protocol import handshake, next_message, nothing_within, until_pages_known


def test_change_under_an_extra_watch_path_reloads_every_page(tmp_path: Path, serve) -> None:
    site, templates = tmp_path / "site", tmp_path / "templates"
    write(site / "index.html", "<html><body>home</body></html>")
    write(site / "about.html", "<html><body>about</body></html>")
    write(templates / "base.html", "{{ content }}")
    server = serve(site, watch=[templates])

    async def run() -> None:
        home = await handshake(server, "/", [])
        about = await handshake(server, "/about.html", [])
        await until_pages_known(server, 2)
        write(templates / "base.html", "<main>{{ content }}</main>")
        assert (await next_message(home))["command"] == "reload"
        assert (await next_message(about))["command"] == "reload"

    run_async(run())


def test_ignored_files_do_not_reload(tmp_path: Path, serve) -> None:
    write(tmp_path / "index.html", "<html><body>home</body></html>")
    server = serve(tmp_path, ignore=["*.log", "drafts/"])

    async def run() -> None:
        stock = await handshake(server, "/")  # reports no resources: told about every change
        await until_pages_known(server, 1)
        write(tmp_path / "debug.log", "x")
        write(tmp_path / "drafts" / "new.html", "x")
        write(tmp_path / ".index.html.swp", "x")  # an editor swap file: a default ignore
        write(tmp_path / "node_modules" / "pkg" / "index.js", "x")
        write(tmp_path / "real.css", "body{}")  # the first change the page may hear about
        message = await next_message(stock)
        assert message["path"] == "/real.css"
        assert await nothing_within(stock, 0.3)

    run_async(run())


def test_delay_waits_before_reloading(tmp_path: Path, serve) -> None:
    write(tmp_path / "index.html", "<html><body>home</body></html>")
    server = serve(tmp_path, delay=300)

    async def run() -> None:
        page = await handshake(server, "/", [])
        await until_pages_known(server, 1)
        written = time.monotonic()
        write(tmp_path / "index.html", "<html><body>again</body></html>")
        await next_message(page)
        assert time.monotonic() - written >= 0.3  # a lower bound the delay guarantees

    run_async(run())


def test_fallback_pages_reload_when_the_fallback_file_changes(tmp_path: Path, serve) -> None:
    write(tmp_path / "app.html", "<html><body>shell</body></html>")
    write(tmp_path / "other.html", "<html><body>other</body></html>")
    server: Server = serve(tmp_path, fallback="app.html")

    async def run() -> None:
        spa = await handshake(server, "/users/42", [])
        other = await handshake(server, "/other.html", [])
        await until_pages_known(server, 2)
        write(tmp_path / "app.html", "<html><body>shell v2</body></html>")
        assert (await next_message(spa))["path"] == "/app.html"
        assert await nothing_within(other, 0.3)

    run_async(run())


def test_listing_page_reloads_when_its_folder_changes(tmp_path: Path, serve) -> None:
    write(tmp_path / "files" / "a.txt", "a")
    server = serve(tmp_path)

    async def run() -> None:
        listing = await handshake(server, "/files/", [])
        await until_pages_known(server, 1)
        write(tmp_path / "files" / "b.txt", "b")
        assert (await next_message(listing))["command"] == "reload"

    run_async(run())
