"""``--mount PREFIX=DIR``: other folders served (and watched) at URL prefixes, with ROOT's static rules."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from execlib import Server
from execlib.config import ServerConfig, load_config
from execlib.errors import ConfigError
from execlib.event import Action, FileEvent
from execlib.server.mounts import SiteMap
from execlib.server.paths import Kind, SiteResolver

from .conftest import write
from .helpers import execlib_cmd, run_async, wait_until
from .test_hostile_input import raw_request
from .test_livereload_protocol import handshake, next_message, nothing_within, until_pages_known

OUTSIDE = b"OUTSIDE-THE-MOUNT-51c0"


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """ROOT (site/) with its own assets/ folder, a shared folder to mount, and a secret beside them."""
    write(tmp_path / "site" / "index.html", "<html><head><link rel='stylesheet' href='/assets/style.css'></head>")
    write(tmp_path / "site" / "assets" / "style.css", "root's own, shadowed")
    write(tmp_path / "site" / "assets2.txt", "not under /assets")
    write(tmp_path / "site" / "404.html", "<html><body>site 404</body></html>")
    write(tmp_path / "shared" / "style.css", "body { color: red; }")
    write(tmp_path / "shared" / "logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")
    write(tmp_path / "shared" / "big.bin", bytes(range(256)) * 4)
    write(tmp_path / "shared" / "docs" / "page.html", "<html><body>mounted page</body></html>")
    write(tmp_path / "secret.txt", OUTSIDE)
    return tmp_path


def mount_server(serve, layout: Path, **kwargs) -> Server:
    server: Server = serve(layout / "site", mounts=[f"/assets={layout / 'shared'}"], **kwargs)
    return server


# -- serving ------------------------------------------------------------------------------


def test_files_of_a_mount_are_served_with_roots_rules(layout: Path, serve, client: httpx.Client) -> None:
    url = mount_server(serve, layout).url.rstrip("/")
    css = client.get(url + "/assets/style.css")
    assert css.status_code == 200 and css.text == "body { color: red; }"
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "no-cache"
    assert client.get(url + "/assets/logo.svg").headers["content-type"].startswith("image/svg+xml")
    page = client.get(url + "/assets/docs/page.html")
    assert "mounted page" in page.text and "/livereload.js" in page.text  # the client is injected here too
    assert client.get(url + "/assets2.txt").text == "not under /assets"  # a prefix is a whole segment


def test_a_mount_without_its_slash_redirects_and_lists(layout: Path, serve, client: httpx.Client) -> None:
    url = mount_server(serve, layout).url.rstrip("/")
    redirect = client.get(url + "/assets?x=1")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/assets/?x=1"
    assert client.get(url + "/assets/docs").headers["location"] == "/assets/docs/"
    listing = client.get(url + "/assets/")
    assert listing.status_code == 200
    assert "style.css" in listing.text and "docs/" in listing.text and "/livereload.js" in listing.text


def test_conditional_and_range_requests_in_a_mount(layout: Path, serve, client: httpx.Client) -> None:
    url = mount_server(serve, layout).url.rstrip("/") + "/assets/big.bin"
    first = client.get(url)
    etag = first.headers["etag"]
    again = client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    part = client.get(url, headers={"range": "bytes=256-259"})
    assert part.status_code == 206 and part.content == bytes([0, 1, 2, 3])
    assert part.headers["content-range"] == "bytes 256-259/1024"


def test_missing_files_in_a_mount_get_the_sites_404_page(layout: Path, serve, client: httpx.Client) -> None:
    url = mount_server(serve, layout).url.rstrip("/")
    missing = client.get(url + "/assets/nothing.css")
    assert missing.status_code == 404 and "site 404" in missing.text


def test_a_mount_shadows_roots_folder_of_the_same_path(layout: Path, serve, client: httpx.Client) -> None:
    url = mount_server(serve, layout).url.rstrip("/")
    assert client.get(url + "/assets/style.css").text == "body { color: red; }"  # not site/assets/style.css
    write(layout / "site" / "assets" / "only-in-root.txt", "x")
    assert client.get(url + "/assets/only-in-root.txt").status_code == 404  # ROOT's folder is hidden whole


def test_the_longest_prefix_wins(tmp_path: Path, serve, client: httpx.Client) -> None:
    write(tmp_path / "site" / "index.html", "root")
    write(tmp_path / "a" / "f.txt", "from a")
    write(tmp_path / "a" / "b" / "f.txt", "a's own b")
    write(tmp_path / "b" / "f.txt", "from b")
    mounts = {"/x/y/": str(tmp_path / "b"), "/x": str(tmp_path / "a")}  # given shortest last: order is no matter
    url = serve(tmp_path / "site", mounts=mounts).url.rstrip("/")
    assert client.get(url + "/x/f.txt").text == "from a"
    assert client.get(url + "/x/y/f.txt").text == "from b"
    assert client.get(url + "/x/b/f.txt").text == "a's own b"
    assert client.get(url + "/x/y").headers["location"] == "/x/y/"


def test_traversal_through_a_mount_is_refused(layout: Path, serve) -> None:
    os.symlink(layout / "secret.txt", layout / "shared" / "leak.txt")
    os.symlink(layout / "site", layout / "shared" / "to-root")  # ROOT is outside the mount too
    server = mount_server(serve, layout)
    assert server.bound_addr is not None
    targets = [
        b"/assets/../secret.txt",
        b"/assets/%2e%2e/secret.txt",
        b"/assets/%2E%2E/%2e%2e/secret.txt",
        b"/assets/.%2e/secret.txt",
        b"/assets/..%2fsecret.txt",
        b"/assets%2f..%2fsecret.txt",
        b"/assets/..%5csecret.txt",
        b"/assets/..\\secret.txt",
        b"/assets\\..\\secret.txt",
        b"/assets/docs/../../secret.txt",
        b"/assets/leak.txt",
        b"/assets/to-root/index.html",
        b"/assets/%00",
    ]
    for target in targets:
        status, response = raw_request(server.bound_addr, target)
        assert status in (400, 404), (target, status)
        assert OUTSIDE not in response, target


def test_follow_symlinks_applies_to_mounts(layout: Path, serve, client: httpx.Client) -> None:
    os.symlink(layout / "secret.txt", layout / "shared" / "leak.txt")
    url = mount_server(serve, layout, follow_symlinks=True).url.rstrip("/")
    assert client.get(url + "/assets/leak.txt").content == OUTSIDE


def test_reserved_paths_stay_execlibs(layout: Path, serve, client: httpx.Client) -> None:
    url = mount_server(serve, layout).url.rstrip("/")
    assert client.get(url + "/__execlib__/health").json()["status"] == "ok"
    script = client.get(url + "/livereload.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


# -- configuration ------------------------------------------------------------------------


def test_mount_forms_are_normalised(layout: Path) -> None:
    shared = str(layout / "shared")
    expected = (("/assets", shared),)
    assert ServerConfig(root=layout / "site", mounts=[f"/assets/={shared}"]).mounts == expected
    assert ServerConfig(root=layout / "site", mounts=f"/assets={shared}").mounts == expected
    assert ServerConfig(root=layout / "site", mounts=[("/assets", Path(shared))]).mounts == expected
    assert ServerConfig(root=layout / "site", mounts={"/assets": shared}).mounts == expected


@pytest.mark.parametrize(
    ("mounts", "message"),
    [
        (["/a={shared}", "/a/={site}"], "mounts='/a/={site}' mounts a second folder at /a (after /a={shared})"),
        (["/a={nowhere}"], "mounts='/a={nowhere}' names a folder that does not exist"),
        (["/a={shared}/style.css"], "mounts='/a={shared}/style.css' names a file, not a folder"),
        (["assets={shared}"], "needs a URL path starting with /, like /assets"),
        (["/={shared}"], "mounts at /, which is ROOT's"),
        (["//={shared}"], "mounts at /, which is ROOT's"),
        (["/livereload={shared}"], "takes /livereload, which execlib answers itself"),
        (["/livereload.js={shared}"], "takes /livereload.js, which execlib answers itself"),
        (["/__execlib__={shared}"], "takes /__execlib__, which execlib answers itself"),
        (["/__execlib__/x={shared}"], "takes /__execlib__/x, which execlib answers itself"),
        (["/a/../b={shared}"], "/a/../b is not a plain URL path"),
        (["/a//b={shared}"], "/a//b is not a plain URL path"),
        (["/a"], "mounts='/a' must be 'PREFIX=DIR'"),
        ([42], "mounts=42 must be 'PREFIX=DIR'"),
        (7, "mounts=7 must be a list of 'PREFIX=DIR' mounts"),
    ],
)
def test_bad_mounts_are_one_line_config_errors(layout: Path, mounts: object, message: str) -> None:
    places = {"shared": layout / "shared", "site": layout / "site", "nowhere": layout / "nowhere"}
    if isinstance(mounts, list):
        mounts = [m.format(**places) if isinstance(m, str) else m for m in mounts]
    for make in (ServerConfig, Server):
        with pytest.raises(ConfigError) as error:
            make(root=layout / "site", mounts=mounts)  # type: ignore[operator]
        assert message.format(**places) in str(error.value)
        assert "\n" not in str(error.value)


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    return subprocess.run(
        execlib_cmd(*args), cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mount", "/a=nowhere"], "--mount /a=nowhere names a folder that does not exist"),
        (["--mount", "/a=shared", "--mount", "/a=site"], "--mount /a=site mounts a second folder at /a (after /a=sh"),
        (["--mount", "/livereload=shared"], "--mount /livereload=shared takes /livereload, which execlib answers it"),
        (["--mount", "a=shared"], "--mount a=shared needs a URL path starting with /, like /a"),
    ],
)
def test_bad_mounts_on_the_command_line_exit_2(layout: Path, args: list[str], message: str) -> None:
    result = cli(layout, "serve", "site", "--no-config", "--port", "0", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"execlib: error: {message}") and result.stderr.count("\n") == 1


def test_mounts_from_a_file_are_relative_to_its_folder(layout: Path) -> None:
    (layout / "conf").mkdir()
    (layout / "conf" / "execlib.toml").write_text('root = "../site"\n\n[mounts]\n"/assets" = "../shared"\n')
    resolved = load_config({}, config_file=str(layout / "conf" / "execlib.toml"))
    assert resolved.config.mounts == (("/assets", str(layout / "shared")),)
    (layout / "conf" / "execlib.toml").write_text('root = "../site"\nmounts = ["/a=../shared", "/b/=../site"]\n')
    resolved = load_config({}, config_file=str(layout / "conf" / "execlib.toml"))
    assert resolved.config.mounts == (("/a", str(layout / "shared")), ("/b", str(layout / "site")))


def test_a_bad_mount_names_its_source(layout: Path) -> None:
    (layout / "execlib.toml").write_text('root = "site"\n[mounts]\n"/a" = "nowhere"\n')
    result = cli(layout, "config")
    assert result.returncode == 2
    assert result.stderr == "execlib: error: execlib.toml: mounts = '/a=" + str(layout / "nowhere") + (
        "' names a folder that does not exist\n"
    )
    result = cli(layout, "config", "--no-config", "site", env={"EXECLIB_MOUNTS": "/a=shared, /b=nowhere"})
    assert result.returncode == 2
    assert result.stderr == (
        "execlib: error: EXECLIB_MOUNTS='/a=shared, /b=nowhere': '/b=nowhere' names a folder that does not exist\n"
    )


# -- naming files for live reload ------------------------------------------------------------


def test_the_hub_names_mounted_files_by_their_url(layout: Path) -> None:
    sites = SiteMap(SiteResolver(layout / "site"), [("/assets", SiteResolver(layout / "shared"))])
    target, name = sites.resolve("/assets/style.css")
    assert target.kind is Kind.FILE and target.fs_path == str(layout / "shared" / "style.css")
    assert name == "assets/style.css"
    assert sites.resolve("/assets/docs/")[1] == "assets/docs"  # a listing's folder
    assert sites.resolve("/assets/")[1] == "assets"
    assert sites.resolve("/assets")[0].kind is Kind.REDIRECT
    assert sites.resolve("/index.html")[1] == "index.html"
    assert sites.fs_path("assets/docs/page.html") == str(layout / "shared" / "docs" / "page.html")
    assert sites.fs_path("index.html") == str(layout / "site" / "index.html")


def test_events_are_named_by_the_urls_that_serve_them(layout: Path) -> None:
    site, shared = str(layout / "site"), str(layout / "shared")
    server = Server(site, port=0, mounts={"/assets": shared, "/also": shared, "/assets/docs": site})
    controller = server.controller

    def names(endpoint: str, name: str) -> list[str]:
        return controller.url_names(FileEvent(endpoint, name, Action.MODIFIED))

    assert names(shared, "style.css") == ["assets/style.css", "also/style.css"]  # one folder, two prefixes
    assert names(shared, "docs/page.html") == ["also/docs/page.html"]  # /assets/docs is another mount's
    assert names(site, "index.html") == ["index.html", "assets/docs/index.html"]
    # shadowed by the mount at /assets, but ROOT is mounted at /assets/docs too, which does serve it
    assert names(site, "assets/style.css") == ["assets/docs/assets/style.css"]
    assert controller.names_of_path(str(layout / "shared" / "logo.svg")) == ["assets/logo.svg", "also/logo.svg"]
    assert controller.names_of_path(str(layout / "secret.txt")) == []
    plain = Server(site, port=0, mounts={"/assets": shared}).controller
    assert plain.url_names(FileEvent(site, "assets/style.css", Action.MODIFIED)) == []  # no URL serves it


# -- live reload ------------------------------------------------------------------------------


def test_a_stylesheet_edited_in_a_mount_is_swapped_in_roots_page(layout: Path, serve) -> None:
    server = mount_server(serve, layout)

    async def run() -> None:
        home = await handshake(server, "/", ["/assets/style.css"])
        other = await handshake(server, "/", ["/assets2.txt"])
        await until_pages_known(server, 2)
        write(layout / "site" / "assets" / "style.css", "shadowed: no page sees it")
        write(layout / "shared" / "style.css", "body { color: blue; }")
        message = await next_message(home)
        assert message["command"] == "reload" and message["path"] == "/assets/style.css"
        assert message["liveCSS"] is True
        assert await nothing_within(other, 0.2)
        assert await nothing_within(home, 0.2)  # the shadowed file announced nothing

    run_async(run())


def test_a_page_in_a_mount_reloads_when_its_file_changes(layout: Path, serve) -> None:
    server = mount_server(serve, layout)

    async def run() -> None:
        page = await handshake(server, "/assets/docs/page.html", [])
        listing = await handshake(server, "/assets/", [])
        await until_pages_known(server, 2)
        write(layout / "shared" / "docs" / "page.html", "<html><body>edited</body></html>")
        assert (await next_message(page))["path"] == "/assets/docs/page.html"
        write(layout / "shared" / "new.txt", "a new file in the listed folder")
        assert (await next_message(listing))["command"] == "reload"

    run_async(run())


def test_server_reload_takes_a_mounted_files_path(layout: Path, serve) -> None:
    server = mount_server(serve, layout)

    async def run() -> None:
        home = await handshake(server, "/", ["/assets/style.css"])
        await until_pages_known(server, 1)
        told = await asyncio.to_thread(server.reload, [layout / "shared" / "style.css"])
        assert told == 1
        assert (await next_message(home))["path"] == "/assets/style.css"

    run_async(run())


def test_a_mounted_file_changed_before_watching_began_is_announced(layout: Path, serve) -> None:
    server = mount_server(serve, layout)
    wait_until(lambda: server._ready.is_set(), 10)
    stale = [(str(layout / "shared" / "style.css"), False), (str(layout / "site" / "index.html"), True)]
    events = server.controller.served_events(stale)
    assert [(e.endpoint, e.name, e.action) for e in events] == [
        (str(layout / "shared"), "style.css", Action.MODIFIED),
        (str(layout / "site"), "index.html", Action.DELETED),
    ]


def test_serve_background_passes_mounts_on_absolute(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from execlib.api import _serve_args

    monkeypatch.chdir(layout)
    assert _serve_args({"mounts": {"/assets/": "shared"}}) == ["--mount", f"/assets={layout / 'shared'}"]


def test_a_404_page_in_a_mount_recovers_and_the_fallback_stays_roots(layout: Path, serve) -> None:
    write(layout / "site" / "app.html", "<html><body>shell</body></html>")
    server = mount_server(serve, layout, fallback="app.html")

    async def run() -> None:
        missing = await handshake(server, "/assets/new.html", [])
        spa = await handshake(server, "/users/42", [])
        await until_pages_known(server, 2)
        assert {p.page_file for p in server.hub.pages} == {None, "app.html"}  # /assets/new.html is a 404
        write(layout / "shared" / "new.html", "<html><body>new</body></html>")
        assert (await next_message(missing))["path"] == "/assets/new.html"
        write(layout / "site" / "app.html", "<html><body>shell v2</body></html>")
        assert (await next_message(spa))["path"] == "/app.html"
        assert await nothing_within(missing, 0.2)

    run_async(run())
