"""``--clean-urls``: ``/about`` served from ``about.html`` (GitHub Pages / Netlify style), with
Netlify's precedence, the usual serving rules, and live reload that knows the mapping."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from execlib.api import _serve_args
from execlib.cli import build_parser
from execlib.cli.lifecycle import forwarded_serve_args
from execlib.config import load_config
from execlib.errors import ConfigError
from execlib.server import Server
from execlib.server.inject import SCRIPT_TAG
from execlib.server.paths import Kind, SiteResolver

from .conftest import write
from .helpers import execlib_cmd, run_async
from .test_livereload_protocol import handshake, next_message, until_pages_known
from .test_static import raw_request

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def pretty(tmp_path: Path) -> Path:
    """A site written for a clean-URL host: pages as ``name.html``, linked as ``/name``."""
    root = tmp_path / "site"
    write(root / "index.html", "<html><body>home</body></html>")
    write(root / "about.html", "<html><body>About</body></html>")
    write(root / "other.html", "<html><body>Other</body></html>")
    write(root / "docs" / "intro.html", "<html><body>Intro</body></html>")
    # a file named exactly like the clean URL, beside its .html twin
    write(root / "exact", "plain exact file")
    write(root / "exact.html", "<html><body>exact twin</body></html>")
    # a page and a folder of the same name (Netlify: the page owns /guide and /guide/)
    write(root / "guide.html", "<html><body>guide page</body></html>")
    write(root / "guide" / "index.html", "<html><body>guide folder index</body></html>")
    write(root / "guide" / "step.html", "<html><body>step</body></html>")
    # a folder alone keeps today's rules
    write(root / "blog" / "index.html", "<html><body>blog index</body></html>")
    # a folder whose name ends in .html is not a page
    (root / "odd.html").mkdir()
    return root


# -- the mapping and its precedence ------------------------------------------------------------


def test_off_by_default(pretty: Path, serve, client: httpx.Client) -> None:
    server = serve(pretty, livereload=False)
    assert client.get(server.url + "about").status_code == 404
    assert client.get(server.url + "docs/intro").status_code == 404
    assert client.get(server.url + "about.html").text == "<html><body>About</body></html>"
    assert client.get(server.url + "guide").headers["location"] == "/guide/"  # the folder, as always


def test_clean_url_serves_the_html_file_nested_and_with_a_query(pretty: Path, serve, client: httpx.Client) -> None:
    server = serve(pretty, clean_urls=True)
    about = client.get(server.url + "about")
    assert about.status_code == 200
    assert about.headers["content-type"] == "text/html; charset=utf-8"
    assert about.text.startswith("<html><body>About") and SCRIPT_TAG.decode() in about.text  # live reload injected
    assert "Intro" in client.get(server.url + "docs/intro").text
    queried = client.get(server.url + "docs/intro?lang=en&x=1")
    assert queried.status_code == 200 and "Intro" in queried.text
    # /about.html is served too, not redirected: both spellings work, as on GitHub Pages
    plain = client.get(server.url + "about.html")
    assert plain.status_code == 200 and plain.text == about.text
    assert client.get(server.url).text.startswith("<html><body>home")  # / is still index.html


def test_precedence(pretty: Path, serve, client: httpx.Client) -> None:
    server = serve(pretty, livereload=False, clean_urls=True)
    # 1. a file named exactly ``exact`` wins over exact.html
    assert client.get(server.url + "exact").text == "plain exact file"
    # 2. a page and a folder of the same name: the page answers /guide ...
    assert client.get(server.url + "guide").text == "<html><body>guide page</body></html>"
    # ... and /guide/ redirects to it (Netlify), keeping the query string
    slashed = client.get(server.url + "guide/?tab=2")
    assert slashed.status_code == 307 and slashed.headers["location"] == "/guide?tab=2"
    # what lies below the folder is reached as usual
    assert client.get(server.url + "guide/step").text == "<html><body>step</body></html>"
    assert client.get(server.url + "guide/index.html").text == "<html><body>guide folder index</body></html>"
    # 3. a folder alone: today's redirect to the slashed path, then its index.html
    folder = client.get(server.url + "blog?page=3")
    assert folder.status_code == 307 and folder.headers["location"] == "/blog/?page=3"
    assert client.get(server.url + "blog/").text == "<html><body>blog index</body></html>"
    # 4. /about/ with only about.html: redirect to /about, so relative links resolve as deployed
    only_page = client.get(server.url + "about/")
    assert only_page.status_code == 307 and only_page.headers["location"] == "/about"
    assert client.get(server.url + "docs/intro/").headers["location"] == "/docs/intro"
    # 5. a *folder* called odd.html is no page
    assert client.get(server.url + "odd").status_code == 404


def test_redirects_follow_through_to_the_page(pretty: Path, serve) -> None:
    server = serve(pretty, livereload=False, clean_urls=True)
    with httpx.Client(timeout=10, follow_redirects=True) as follow:
        response = follow.get(server.url + "about/?q=1")
    assert response.status_code == 200 and str(response.url).endswith("/about?q=1")
    assert response.text == "<html><body>About</body></html>"


def test_head_and_conditional_requests(pretty: Path, serve, client: httpx.Client) -> None:
    server = serve(pretty, clean_urls=True)
    get = client.get(server.url + "about")
    head = client.head(server.url + "about")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["etag"] == get.headers["etag"]
    # one file, one validator, whichever URL fetched it
    assert client.get(server.url + "about.html").headers["etag"] == get.headers["etag"]
    cached = client.get(server.url + "about", headers={"If-None-Match": get.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    since = client.get(server.url + "about", headers={"If-Modified-Since": get.headers["last-modified"]})
    assert since.status_code == 304
    # HEAD of a redirect carries the location, no body
    redirect = client.head(server.url + "about/")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/about" and redirect.content == b""


def test_missing_pages_get_the_404_page(pretty: Path, serve, client: httpx.Client) -> None:
    server = serve(pretty, livereload=False, clean_urls=True)
    plain = client.get(server.url + "nowhere", headers=HTML)
    assert plain.status_code == 404 and "nowhere" in plain.text
    write(pretty / "404.html", "<html><body>custom missing</body></html>")
    custom = client.get(server.url + "docs/nowhere/")
    assert custom.status_code == 404 and "custom missing" in custom.text


# -- safety ---------------------------------------------------------------------------------------

HOSTILE = [
    b"/..%2fsecret",
    b"/../secret",
    b"/%2e%2e/secret",
    b"/docs/..%2f..%2fsecret",
    b"/docs/%2e%2e/%2e%2e/secret",
    b"/..%5csecret",
    b"//secret",
    b"/./secret",
    b"/secret%00",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_no_new_way_out_of_root(tmp_path: Path, serve, target: bytes) -> None:
    site = tmp_path / "site"
    write(site / "docs" / "intro.html", "intro")
    write(tmp_path / "secret.html", "TOP SECRET")  # what /../secret would name, with .html added
    server = serve(site, livereload=False, clean_urls=True)
    status, body = raw_request(server, target)
    assert status in (400, 404)
    assert b"TOP SECRET" not in body


def test_symlinked_page_outside_root_is_refused(tmp_path: Path, serve, client: httpx.Client) -> None:
    site = tmp_path / "site"
    write(tmp_path / "outside" / "secret.html", "outside")
    write(site / "inside.html", "inside")
    os.symlink(tmp_path / "outside" / "secret.html", site / "leak.html")
    os.symlink(site / "inside.html", site / "alias.html")
    strict = serve(site, livereload=False, clean_urls=True)
    assert client.get(strict.url + "leak").status_code == 404
    assert client.get(strict.url + "leak/").status_code == 404  # no redirect that tells it exists
    assert client.get(strict.url + "alias").text == "inside"
    relaxed = serve(site, livereload=False, clean_urls=True, follow_symlinks=True)
    assert client.get(relaxed.url + "leak").text == "outside"


# -- the SPA fallback comes after the clean-URL lookup -----------------------------------------


def test_fallback_applies_after_the_clean_url_lookup_fails(pretty: Path, serve, client: httpx.Client) -> None:
    write(pretty / "app.html", "<html><body>spa shell</body></html>")
    server = serve(pretty, livereload=False, clean_urls=True, fallback="app.html")
    assert client.get(server.url + "about", headers=HTML).text == "<html><body>About</body></html>"
    assert client.get(server.url + "docs/intro", headers=HTML).text == "<html><body>Intro</body></html>"
    routed = client.get(server.url + "users/42", headers=HTML)
    assert routed.status_code == 200 and "spa shell" in routed.text
    assert client.get(server.url + "users/42.png", headers=HTML).status_code == 404
    assert client.head(server.url + "users/42", headers=HTML).status_code == 404  # fallback is GET only
    assert client.get(server.url + "app").text == "<html><body>spa shell</body></html>"  # itself by clean URL


# -- the one mapping the static site and the hub share -------------------------------------------


def test_resolver_mapping(pretty: Path) -> None:
    resolver = SiteResolver(pretty, clean_urls=True)
    assert resolver.resolve("/about").kind is Kind.FILE
    assert resolver.resolve("/about/").kind is Kind.UNSLASH
    assert resolver.resolve("/blog").kind is Kind.REDIRECT
    assert resolver.resolve("/odd").kind is Kind.MISSING
    assert resolver.page_file("/about") == "about.html"
    assert resolver.page_file("/about/") == "about.html"  # followed through the redirect
    assert resolver.page_file("/guide/") == "guide.html"
    assert resolver.page_file("/guide/step") == "guide/step.html"
    assert resolver.page_file("/exact") == "exact"
    assert resolver.page_file("/blog") == "blog/index.html"
    assert resolver.page_file("/..%2fsecret") is None
    assert resolver.wanted_files("/later") == {"later", "later.html", "later/index.html"}
    assert resolver.wanted_files("/later/") == {"later.html", "later/index.html"}
    plain = SiteResolver(pretty)
    assert plain.page_file("/about") is None
    assert plain.wanted_files("/later") == {"later", "later/index.html"}


def test_page_at_a_clean_url_reloads_for_its_file_only(pretty: Path, serve) -> None:
    server: Server = serve(pretty, clean_urls=True)

    async def run() -> None:
        about = await handshake(server, "/about", [])
        other = await handshake(server, "/other", [])
        await until_pages_known(server, 2)
        assert {page.page_file for page in server.hub.pages} == {"about.html", "other.html"}
        write(pretty / "about.html", "<html><body>About, edited</body></html>")
        assert (await next_message(about))["path"] == "/about.html"
        # The negative, without sleeping: other's first message must be for its own file.
        write(pretty / "other.html", "<html><body>Other, edited</body></html>")
        first = await next_message(other)
        assert first["command"] == "reload" and first["path"] == "/other.html"
        await about.close()
        await other.close()

    run_async(run())


def test_missing_clean_url_page_reloads_when_its_html_file_appears(pretty: Path, serve) -> None:
    server: Server = serve(pretty, clean_urls=True)

    async def run() -> None:
        waiting = await handshake(server, "/later", [])
        bystander = await handshake(server, "/about", [])
        await until_pages_known(server, 2)
        write(pretty / "later.html", "<html><body>now here</body></html>")
        assert (await next_message(waiting))["path"] == "/later.html"
        write(pretty / "about.html", "<html><body>About v2</body></html>")
        assert (await next_message(bystander))["path"] == "/about.html"  # later.html was not its first
        await waiting.close()
        await bystander.close()

    run_async(run())


# -- the option and its sources -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "env", "flag", "value", "source"),
    [
        (None, None, None, False, "default"),
        ("clean_urls = true", None, None, True, "file"),
        ("clean-urls = true", None, None, True, "file"),
        ("clean_urls = true", "0", None, False, "env"),
        (None, "1", None, True, "env"),
        ("clean_urls = false", "0", True, True, "flag"),
    ],
)
def test_config_precedence(
    tmp_path: Path, file: str | None, env: str | None, flag: bool | None, value: bool, source: str
) -> None:
    config_file = None
    if file is not None:
        config_file = str(write(tmp_path / "execlib.toml", file + "\n"))
    resolved = load_config(
        {"root": str(tmp_path), "clean_urls": flag},
        env={"EXECLIB_CLEAN_URLS": env} if env is not None else {},
        config_file=config_file,
        use_files=False,
    )
    assert resolved.config.clean_urls is value
    assert resolved.origins["clean_urls"].kind == source


def test_command_line_flag_and_bad_values(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    shown = subprocess.run(
        execlib_cmd("config", "--no-config", "--clean-urls", str(tmp_path)),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    assert "clean_urls" in shown.stdout and "true  (flag --clean-urls)" in shown.stdout
    with pytest.raises(ConfigError, match="EXECLIB_CLEAN_URLS='maybe' must be 1 or 0"):
        load_config({"root": str(tmp_path)}, env={"EXECLIB_CLEAN_URLS": "maybe"}, use_files=False)
    with pytest.raises(ConfigError, match="clean_urls='yes' must be True or False"):
        Server(tmp_path, clean_urls="yes")  # type: ignore[arg-type]
    # serve_background() and `execlib start` pass it on to the detached `execlib serve`
    assert _serve_args({"clean_urls": True}) == ["--clean-urls"]
    assert _serve_args({"clean_urls": False}) == []
    start = build_parser().parse_args(["start", "--clean-urls", str(tmp_path)])
    assert "--clean-urls" in forwarded_serve_args(start.subparser, start)


def test_clean_urls_in_a_mount_serve_and_target_reloads(pretty: Path, tmp_path: Path, serve) -> None:
    shared = tmp_path / "shared"
    write(shared / "guide.html", "<html><body>Guide</body></html>")
    server: Server = serve(pretty, clean_urls=True, mounts=[f"/docs={shared}"])
    response = httpx.get(server.url + "docs/guide", timeout=10)
    assert response.status_code == 200 and b"Guide" in response.content

    async def run() -> None:
        guide = await handshake(server, "/docs/guide", [])
        await until_pages_known(server, 1)
        assert {page.page_file for page in server.hub.pages} == {"docs/guide.html"}
        write(shared / "guide.html", "<html><body>Guide, edited</body></html>")
        message = await next_message(guide)
        assert message["command"] == "reload" and message["path"] == "/docs/guide.html"
        await guide.close()

    run_async(run())
