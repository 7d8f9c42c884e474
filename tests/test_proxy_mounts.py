"""Proxy mode with ``--mount`` and no ROOT: the mounted folders are served from disk (and watched),
everything else goes to the backend, and nothing of the current folder is ever served."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from execlib import Server
from execlib.server.inject import SCRIPT_TAG
from execlib.server.mounts import SiteMap
from execlib.server.paths import Kind, SiteResolver

from .conftest import write
from .helpers import execlib_cmd, read_line, run_async
from .proxy_support import Backend
from .test_hostile_input import raw_request
from .test_livereload_protocol import handshake, next_message, until_pages_known

SECRET = b"IN-THE-CURRENT-FOLDER-7d2a"


async def backend_stylesheet(request: Request) -> Response:
    return Response("/* the backend's */", media_type="text/css")


@pytest.fixture
def backend() -> Iterator[Backend]:
    # a file under the mount's prefix that only the backend has (as Django's admin stylesheets under /static/)
    server = Backend(routes=[Route("/static/admin.css", backend_stylesheet)]).start()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's current folder: a project with its static folder, and files that must never be served."""
    write(tmp_path / "secret.txt", SECRET)
    write(tmp_path / "index.html", SECRET)
    write(tmp_path / "page", SECRET)  # named like the backend's page
    write(tmp_path / "404.html", SECRET)  # no ROOT: no custom 404 page either
    write(tmp_path / "static" / "style.css", "body { color: red; }")
    write(tmp_path / "static" / "page.html", "<html><body><p>mounted page</p></body></html>")
    write(tmp_path / "static" / "big.bin", bytes(range(256)) * 4)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_root_server(serve, backend: Backend, **kwargs: object) -> Server:
    """What ``execlib serve --proxy URL --mount /static=static`` builds: ROOT is the current folder, unserved."""
    server: Server = serve(".", static=False, proxy=backend.url, mounts=["/static=static"], **kwargs)
    return server


def test_a_mounted_file_is_served_from_disk_with_the_static_rules(
    project: Path, backend: Backend, serve, client: httpx.Client
) -> None:
    url = no_root_server(serve, backend).url
    css = client.get(url + "static/style.css")
    assert css.status_code == 200 and css.text == "body { color: red; }"
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "no-cache"
    etag = css.headers["etag"]
    again = client.get(url + "static/style.css", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    part = client.get(url + "static/big.bin", headers={"range": "bytes=256-259"})
    assert part.status_code == 206 and part.content == bytes([0, 1, 2, 3])


def test_the_rest_goes_to_the_backend_and_the_current_folder_is_never_served(
    project: Path, backend: Backend, serve, client: httpx.Client
) -> None:
    server = no_root_server(serve, backend)
    home = client.get(server.url)
    assert "from the backend" in home.text and SECRET.decode() not in home.text
    page = client.get(server.url + "page")
    assert "from the backend" in page.text and SECRET.decode() not in page.text
    secret = client.get(server.url + "secret.txt")
    assert secret.status_code == 404 and SECRET not in secret.content  # the backend's 404
    assert client.get(server.url + "static/admin.css").text == "/* the backend's */"  # no such file: the backend's
    assert client.get(server.url + "__execlib__/health").json()["status"] == "ok"
    assert server.bound_addr is not None
    for target in (b"/static/../secret.txt", b"/static/%2e%2e/secret.txt", b"/static/..%2f404.html", b"/secret.txt"):
        status, response = raw_request(server.bound_addr, target)
        assert status in (400, 404), (target, status)
        assert SECRET not in response, target


def test_a_mounted_page_gets_the_live_reload_client(project: Path, backend: Backend, serve, client) -> None:
    server = no_root_server(serve, backend)
    page = client.get(server.url + "static/page.html")
    assert page.status_code == 200
    assert page.text == "<html><body><p>mounted page</p>" + SCRIPT_TAG.decode() + "</body></html>"
    assert "etag" in page.headers


def test_only_the_mounted_folders_are_watched(project: Path, backend: Backend, serve) -> None:
    server = no_root_server(serve, backend)
    assert server.controller.folders == {str(project / "static"): ["/static"]}


def test_a_mounted_stylesheet_is_swapped_in_a_backend_page(project: Path, backend: Backend, serve) -> None:
    server = no_root_server(serve, backend)

    async def run() -> None:
        page = await handshake(server, "/page", ["/static/style.css"])
        await until_pages_known(server, 1)
        write(project / "static" / "style.css", "body { color: blue; }")
        message = await next_message(page)
        assert message["command"] == "reload" and message["path"] == "/static/style.css"
        assert message["liveCSS"] is True

    run_async(run())


def test_a_mounted_page_reloads_when_its_file_changes(project: Path, backend: Backend, serve) -> None:
    server = no_root_server(serve, backend)

    async def run() -> None:
        page = await handshake(server, "/static/page.html", [])
        await until_pages_known(server, 1)
        write(project / "static" / "page.html", "<html><body>edited</body></html>")
        assert (await next_message(page))["path"] == "/static/page.html"

    run_async(run())


def test_no_root_without_a_backend_serves_only_the_mounts(project: Path, serve, client: httpx.Client) -> None:
    # static=False with no proxy (an embedding tool's own routes): the mounts, and the 404 it had
    url = serve(".", static=False, mounts={"/static": "static"}).url
    assert client.get(url + "static/style.css").text == "body { color: red; }"
    assert "style.css" in client.get(url + "static/").text  # a listing
    missing = client.get(url + "static/missing.css")
    assert missing.status_code == 404 and SECRET not in missing.content  # execlib's page, not ./404.html
    for path in ("secret.txt", "", "index.html"):
        outside = client.get(url + path)
        assert outside.status_code == 404 and outside.json() == {"detail": "Not Found"}, path


def test_the_site_map_without_root_names_only_mounted_files(project: Path) -> None:
    sites = SiteMap(None, [("/static", SiteResolver(project / "static"))])
    assert sites.serves_file("/static/style.css")
    assert not sites.serves_file("/secret.txt") and not sites.serves_file("/")
    assert not sites.serves_file("/static/")  # a folder: the backend's, as with ROOT
    assert sites.resolve("/secret.txt") == ((Kind.MISSING, "", None), None)
    assert sites.page_file("/static/page.html") == "static/page.html"
    assert sites.page_file("/index.html") is None and sites.page_file("/") is None
    assert sites.wanted_files("/new.html") == frozenset()
    assert "static/new.html" in sites.wanted_files("/static/new.html")
    assert sites.fs_path("static/style.css") == str(project / "static" / "style.css")
    assert sites.fs_path("secret.txt") is None


def test_the_command_line_serves_mounts_with_no_root(project: Path, backend: Backend) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    config = subprocess.run(
        execlib_cmd("config", "--no-config", "--proxy", backend.url, "--mount", "/static=static"),
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert config.returncode == 0, config.stderr
    assert f'mounts               = [["/static", "{project / "static"}"]]  (flag --mount)' in config.stdout
    args = ("serve", "--no-config", "--proxy", backend.url, "--mount", "/static=static", "--port", "0")
    proc = subprocess.Popen(
        execlib_cmd(*args, "--banner", "json"), env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        banner = json.loads(read_line(proc))
        assert banner["mounts"] == [{"prefix": "/static", "path": str(project / "static")}]
        assert banner["proxy"] == backend.url
        url = banner["url"]
        with httpx.Client(timeout=10) as client:
            css = client.get(url + "static/style.css")
            assert css.text == "body { color: red; }" and "etag" in css.headers
            assert "from the backend" in client.get(url + "page").text
            assert SECRET not in client.get(url + "secret.txt").content
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
