"""The static hot path's shortcuts must not weaken its rules.

The resolver skips ``realpath`` when no path component is a symlink and
memoises URL -> path mappings; the file cache keeps encoded headers. These
tests change the file system *after* a first request, when anything cached
would show.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from execlib.server.filecache import FileCache
from execlib.server.static import StaticSite

from .conftest import write
from .helpers import run_async


def test_symlinks_created_after_a_first_request_are_refused(tmp_path: Path, serve, client: httpx.Client) -> None:
    site = tmp_path / "site"
    write(tmp_path / "outside" / "page.html", "OUTSIDE")
    write(tmp_path / "outside" / "sub" / "a.txt", "OUTSIDE SUB")
    write(site / "page.html", "inside")
    write(site / "sub" / "a.txt", "inside sub")
    write(site / "sub" / "index.html", "inside index")
    server = serve(site, livereload=False)
    for name in ("page.html", "sub/a.txt", "sub/"):
        assert client.get(server.url + name).status_code == 200

    # The file itself becomes a symlink out of root.
    (site / "page.html").unlink()
    os.symlink(tmp_path / "outside" / "page.html", site / "page.html")
    assert client.get(server.url + "page.html").status_code == 404
    # A folder on the way becomes one: same file name, same content-free check.
    shutil.rmtree(site / "sub")
    os.symlink(tmp_path / "outside" / "sub", site / "sub")
    write(tmp_path / "outside" / "sub" / "index.html", "OUTSIDE INDEX")
    for name in ("sub/a.txt", "sub/", "sub/index.html"):
        response = client.get(server.url + name)
        assert response.status_code == 404, name
        assert b"OUTSIDE" not in response.content


def test_symlinks_inside_root_still_work(tmp_path: Path, serve, client: httpx.Client) -> None:
    site = tmp_path / "site"
    write(site / "real" / "a.txt", "a")
    write(site / "real" / "index.html", "index")
    os.symlink(site / "real", site / "alias")
    os.symlink(site / "real" / "index.html", site / "real" / "home.html")
    server = serve(site, livereload=False)
    assert client.get(server.url + "alias/a.txt").text == "a"
    assert client.get(server.url + "alias/").text == "index"
    assert client.get(server.url + "real/home.html").text == "index"


def test_cached_headers_follow_the_file(tmp_path: Path, serve, client: httpx.Client) -> None:
    write(tmp_path / "a.txt", "one")
    server = serve(tmp_path, livereload=False)
    first = client.get(server.url + "a.txt")
    write(tmp_path / "a.txt", "three")
    second = client.get(server.url + "a.txt")
    assert second.text == "three" and second.headers["content-length"] == "5"
    assert second.headers["etag"] != first.headers["etag"]
    assert second.headers["cache-control"] == "no-cache"
    assert client.get(server.url + "a.txt", headers={"If-None-Match": first.headers["etag"]}).status_code == 200
    assert client.get(server.url + "a.txt", headers={"If-None-Match": second.headers["etag"]}).status_code == 304
    os.unlink(tmp_path / "a.txt")
    assert client.get(server.url + "a.txt").status_code == 404


def test_html_page_headers_with_and_without_injection(tmp_path: Path) -> None:
    # StaticSite on its own: the cache keys its encoded headers on the injection too.
    write(tmp_path / "index.html", "<html><body>hi</body></html>")
    cache = FileCache()  # shared, so an entry made for one site must not leak into the other

    async def fetch(inject: bool) -> httpx.Response:
        app = StaticSite(tmp_path, inject=inject, cache=cache)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get("/")

    plain = run_async(fetch(False))
    assert plain.headers["accept-ranges"] == "bytes" and "livereload.js" not in plain.text
    injected = run_async(fetch(True))
    assert injected.headers["accept-ranges"] == "none" and "livereload.js" in injected.text
    assert injected.headers["content-length"] == str(len(injected.content))
    assert injected.headers["etag"] != plain.headers["etag"]
