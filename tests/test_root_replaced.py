"""A served root replaced under a running Server: deleted and recreated at once, or a symlink re-pointed."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from execlib import Server

from .conftest import write
from .helpers import run_async
from .test_livereload_protocol import handshake, next_message, nothing_within


async def until_page_known(server: Server, page: str) -> None:
    """Wait until the hub has this page's info (an earlier page still closing must not count)."""

    async def known() -> None:
        while not any(p.url and p.url.endswith(page) and p.resources is not None for p in server.hub.pages):
            await asyncio.sleep(0.005)

    await asyncio.wait_for(known(), 10)


async def open_page(server: Server, page: str) -> ClientConnection:
    ws = await handshake(server, page, [])
    await until_page_known(server, page)
    return ws


def repoint(link: Path, target: Path) -> None:
    """``ln -sfn target link``: a new symlink renamed over the old one, so the link never goes missing."""
    temp = link.with_name(link.name + ".new")
    os.symlink(target, temp)
    os.replace(temp, link)


def get(server: Server, path: str) -> httpx.Response:
    return httpx.get(server.url.rstrip("/") + path, timeout=10)


@pytest.mark.parametrize("comeback", ["rename", "mkdir"])
def test_edits_after_a_fast_root_replacement_still_reload(tmp_path: Path, serve, comeback: str) -> None:
    site = tmp_path / "site"
    write(site / "index.html", "<html><body>v0</body></html>")
    server = serve(site)

    async def run() -> None:
        for i in range(10):
            # A page for a file that exists in no version of the site: only the edit below touches it.
            page = await open_page(server, f"/later{i}.html")
            new = tmp_path / "site.new"
            if comeback == "rename":
                write(new / "index.html", f"<html><body>v{i + 1}</body></html>")
            shutil.rmtree(site)
            if comeback == "rename":
                os.rename(new, site)
            else:
                os.mkdir(site)
            write(site / f"later{i}.html", "<html><body>later</body></html>")
            message = await next_message(page, timeout=10)
            assert message["command"] == "reload" and message["path"] == f"/later{i}.html", (i, message)
            await page.close()

    run_async(run())


def test_a_symlinked_root_is_served_from_its_new_target_at_once(tmp_path: Path, serve) -> None:
    # python -m http.server -d current serves the new release right after the swap: so must we
    write(tmp_path / "v1" / "index.html", "<html><body>one</body></html>")
    write(tmp_path / "v2" / "index.html", "<html><body>two</body></html>")
    os.symlink(tmp_path / "v1", tmp_path / "current")
    server = serve(tmp_path / "current", livereload=False)
    assert "one" in get(server, "/").text
    repoint(tmp_path / "current", tmp_path / "v2")
    assert "two" in get(server, "/").text


def test_a_repointed_symlink_root_reloads_pages_and_watches_the_new_target(tmp_path: Path, serve) -> None:
    v1, v2, current = tmp_path / "v1", tmp_path / "v2", tmp_path / "current"
    write(v1 / "index.html", "<html><body>one</body></html>")
    write(v1 / "only1.html", "<html><body>only in one</body></html>")
    write(v2 / "index.html", "<html><body>two</body></html>")
    write(v2 / "only2.html", "<html><body>only in two</body></html>")
    for release in (v1, v2):
        write(release / "same.html", "<html><body>the same in both</body></html>")
    os.symlink(v1, current)
    server = serve(current)
    assert "one" in get(server, "/").text
    for page in ("/only1.html", "/same.html"):  # as the browser fetched them before connecting
        assert get(server, page).status_code == 200

    async def run() -> None:
        home = await open_page(server, "/")
        gone = await open_page(server, "/only1.html")
        same = await open_page(server, "/same.html")
        repoint(current, v2)
        assert (await next_message(home, timeout=10))["path"] == "/index.html"
        assert (await next_message(gone, timeout=10))["path"] == "/only1.html"  # reloads onto the 404
        assert await nothing_within(same, 0.2), "a page whose file is the same in both releases reloaded"

        responses = await asyncio.gather(
            *(asyncio.to_thread(get, server, p) for p in ("/", "/only2.html", "/only1.html"))
        )
        assert "two" in responses[0].text
        assert [r.status_code for r in responses] == [200, 200, 404]

        # An edit in the old release must not reach anyone; a later one in the new release must.
        marker = await open_page(server, "/marker.html")
        write(v1 / "index.html", "<html><body>one, edited</body></html>")
        write(v2 / "marker.html", "<html><body>marker</body></html>")
        assert (await next_message(marker, timeout=10))["path"] == "/marker.html"
        assert await nothing_within(home, 0.2), "an edit in the release no longer served reloaded the page"
        write(v2 / "index.html", "<html><body>two, edited</body></html>")
        assert (await next_message(home, timeout=10))["path"] == "/index.html"
        assert "two, edited" in (await asyncio.to_thread(get, server, "/")).text

    run_async(run())
