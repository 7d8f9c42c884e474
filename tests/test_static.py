"""Static serving rules, each checked with a real HTTP client against a real socket."""

from __future__ import annotations

import os
import socket
import tracemalloc
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from execlib.errors import ConfigError
from execlib.server import Server
from execlib.server.paths import _MEMO_BYTES, MAX_TARGET_BYTES, Kind, SiteResolver
from execlib.server.static import StaticSite

from .conftest import write
from .helpers import run_async


def raw_request(server: Server, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send a request line exactly as given (httpx would normalise hostile paths away)."""
    host, port = server.bound_addr
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


MIME_CASES = {
    "a.html": "text/html; charset=utf-8",
    "a.css": "text/css",
    "a.js": "text/javascript",
    "a.mjs": "text/javascript",
    "a.json": "application/json",
    "a.svg": "image/svg+xml",
    "a.png": "image/png",
    "a.jpg": "image/jpeg",
    "a.gif": "image/gif",
    "a.webp": "image/webp",
    "a.ico": "image/x-icon",
    "a.wasm": "application/wasm",
    "a.woff2": "font/woff2",
    "a.map": "application/json",
    "a.txt": "text/plain",
    "a.xml": "application/xml",
    "a.pdf": "application/pdf",
    "a.mp4": "video/mp4",
}


def test_content_types(tmp_path: Path, serve, client: httpx.Client) -> None:
    for name in MIME_CASES:
        write(tmp_path / name, b"x")
    server = serve(tmp_path, livereload=False)
    for name, expected in MIME_CASES.items():
        response = client.get(server.url + name)
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(expected), (name, response.headers["content-type"])
    assert client.get(server.url + "a.html").headers["content-type"] == "text/html; charset=utf-8"


def test_get_head_and_other_methods(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, livereload=False)
    get = client.get(server.url + "style.css")
    head = client.head(server.url + "style.css")
    assert get.text == "body { color: red; }"
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.request(method, server.url + "style.css")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


def test_no_cache_etag_and_conditional_requests(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, livereload=False)
    first = client.get(server.url + "style.css")
    assert first.headers["cache-control"] == "no-cache"
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    assert client.get(server.url + "style.css", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(server.url + "style.css", headers={"If-None-Match": '"other"'}).status_code == 200
    not_modified = client.get(server.url + "style.css", headers={"If-Modified-Since": last_modified})
    assert not_modified.status_code == 304 and not_modified.headers["cache-control"] == "no-cache"
    old = formatdate(0, usegmt=True)
    assert client.get(server.url + "style.css", headers={"If-Modified-Since": old}).status_code == 200
    for path in ("", "sub", "nolisting/", "missing.html"):
        assert client.get(server.url + path).headers["cache-control"] == "no-cache", path


def test_edit_is_visible_on_the_very_next_request(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, livereload=False)
    etags = set()
    for i in range(20):
        # Same size every time and well within one timestamp tick: only content tells them apart.
        (site / "style.css").write_text(f"body {{ color: #{i:06d}; }}")
        response = client.get(server.url + "style.css")
        assert response.text == f"body {{ color: #{i:06d}; }}"
        etags.add(response.headers["etag"])
    assert len(etags) == 20


def test_range_requests(tmp_path: Path, serve, client: httpx.Client) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    write(tmp_path / "video.mp4", data)
    write(tmp_path / "small.bin", data[:1000])
    server = serve(tmp_path, livereload=False)
    for name, size in (("video.mp4", len(data)), ("small.bin", 1000)):
        partial = client.get(server.url + name, headers={"Range": "bytes=100-199"})
        assert partial.status_code == 206
        assert partial.headers["content-range"] == f"bytes 100-199/{size}"
        assert partial.content == data[100:200]
        assert partial.headers["cache-control"] == "no-cache"
        suffix = client.get(server.url + name, headers={"Range": "bytes=-10"})
        assert suffix.status_code == 206 and suffix.content == data[size - 10 : size]
        unsatisfiable = client.get(server.url + name, headers={"Range": f"bytes={size + 10}-"})
        assert unsatisfiable.status_code == 416
        assert unsatisfiable.headers["content-range"] == f"bytes */{size}"
    full = client.get(server.url + "video.mp4")
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    # If-Range with the current validator honours the range; a stale one gets the whole file.
    etag = full.headers["etag"]
    assert client.get(server.url + "video.mp4", headers={"Range": "bytes=0-0", "If-Range": etag}).status_code == 206
    stale = client.get(server.url + "video.mp4", headers={"Range": "bytes=0-0", "If-Range": '"stale"'})
    assert stale.status_code == 200


def test_demo_video_can_be_seeked(serve, client: httpx.Client) -> None:
    demo = Path(__file__).parent.parent / "static_demo"
    server = serve(demo)
    head = client.head(server.url + "media/clip.mp4")
    size = int(head.headers["content-length"])
    assert head.headers["content-type"] == "video/mp4"
    seek = client.get(server.url + "media/clip.mp4", headers={"Range": f"bytes={size // 2}-"})
    assert seek.status_code == 206
    assert len(seek.content) == size - size // 2


def test_directory_redirect_index_and_listing(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, livereload=False)
    redirect = client.get(server.url + "sub?x=1")
    assert redirect.status_code in (301, 302, 307, 308)
    assert redirect.headers["location"] == "/sub/?x=1"
    assert client.get(server.url + "sub/").text == "<html><body>Sub index</body></html>"
    listing = client.get(server.url + "nolisting/")
    assert listing.status_code == 200 and "a.txt" in listing.text
    assert listing.headers["content-type"] == "text/html; charset=utf-8"


def test_listing_sorting_escaping_and_links(tmp_path: Path, serve, client: httpx.Client) -> None:
    names = ["b file.txt", "a#hash.txt", "q?mark.txt", "100%.txt", "ünïcødé.txt", "<script>x.txt", "Zed.txt"]
    for name in names:
        write(tmp_path / "d" / name, name)
    (tmp_path / "d" / "zfolder").mkdir()
    (tmp_path / "d" / "Afolder").mkdir()
    server = serve(tmp_path, livereload=False)
    page = client.get(server.url + "d/").text
    assert "<script>x.txt" not in page and "&lt;script&gt;x.txt" in page
    assert 'href="../"' in page
    # folders first, then files, case-insensitively sorted
    order = [page.index(n) for n in ("Afolder/", "zfolder/", "100%.txt", "a#hash.txt", "b file.txt", "Zed.txt")]
    assert order == sorted(order)
    assert "KB" in page or " B<" in page
    import re

    hrefs = re.findall(r'<a href="([^"]+)"', page)
    for name in names:
        href = next(
            h for h in hrefs if not h.endswith("/") and h != "../" and httpx.URL("http://x/d/" + h).path == "/d/" + name
        )
        response = client.get(server.url + "d/" + href)
        assert response.status_code == 200 and response.text == name, name


def test_404_page_default_and_custom(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, livereload=False)
    default = client.get(server.url + "nothing/here.html")
    assert default.status_code == 404 and "Not Found" in default.text
    assert default.headers["content-type"] == "text/html; charset=utf-8"
    evil = client.get(server.url + "%3Cb%3Ehi%3C/b%3E")
    assert evil.status_code == 404 and "<b>hi</b>" not in evil.text
    write(site / "404.html", "<html><body>custom missing page</body></html>")
    custom = client.get(server.url + "nothing.html")
    assert custom.status_code == 404 and "custom missing page" in custom.text


HOSTILE = [
    b"/../../../../etc/passwd",
    b"/sub/../../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/%2e%2e/secret.txt",
    b"/sub%2f..%2f..%2fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..%5csecret.txt",
    b"/..\\secret.txt",
    b"//etc/passwd",
    b"/sub//../../secret.txt",
    b"/%2fetc%2fpasswd",
    b"/./secret.txt",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_paths_never_escape_root(tmp_path: Path, serve, target: bytes) -> None:
    site = tmp_path / "site"
    write(site / "sub" / "index.html", "sub")
    write(tmp_path / "secret.txt", "TOP SECRET")
    server = serve(site, livereload=False)
    status, body = raw_request(server, target)
    assert status in (400, 404)
    assert b"TOP SECRET" not in body and b"root:" not in body


def test_nul_byte_and_absolute_form(tmp_path: Path, serve) -> None:
    write(tmp_path / "site" / "a.txt", "a")
    server = serve(tmp_path / "site", livereload=False)
    assert raw_request(server, b"/a.txt%00.html")[0] == 400
    status, body = raw_request(server, b"http://x/../../etc/passwd")
    assert status in (400, 404) and b"root:" not in body


def test_symlinks_outside_root(tmp_path: Path, serve, client: httpx.Client) -> None:
    site = tmp_path / "site"
    write(tmp_path / "outside" / "secret.txt", "outside")
    write(site / "inside.txt", "inside")
    os.symlink(tmp_path / "outside" / "secret.txt", site / "link.txt")
    os.symlink(tmp_path / "outside", site / "linkdir")
    os.symlink(site / "inside.txt", site / "internal.txt")
    strict = serve(site, livereload=False)
    assert client.get(strict.url + "link.txt").status_code == 404
    assert client.get(strict.url + "linkdir/secret.txt").status_code == 404
    assert client.get(strict.url + "internal.txt").text == "inside"
    relaxed = serve(site, livereload=False, follow_symlinks=True)
    assert client.get(relaxed.url + "link.txt").text == "outside"
    assert client.get(relaxed.url + "linkdir/secret.txt").text == "outside"


def test_spa_fallback(site: Path, serve, client: httpx.Client) -> None:
    write(site / "app.html", "<html><body>spa shell</body></html>")
    server = serve(site, livereload=False, fallback="app.html")
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    routed = client.get(server.url + "users/42/profile", headers=html)
    assert routed.status_code == 200 and "spa shell" in routed.text
    assert client.get(server.url + "missing.js", headers=html).status_code == 404
    assert client.get(server.url + "users/42", headers={"Accept": "application/json"}).status_code == 404
    assert client.post(server.url + "users/42", headers=html).status_code == 405
    with pytest.raises(ConfigError, match="fallback file not found"):
        Server(site, fallback="nope.html")


def test_health_endpoint(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site)
    response = client.get(server.url + "__execlib__/health")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok" and data["pid"] == os.getpid() and data["root"] == str(site.resolve())
    assert client.get(server.url + "__execlib__/nothing").status_code == 404


def test_static_off_serves_only_the_api(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, static=False)
    assert client.get(server.url + "index.html").status_code == 404
    assert client.get(server.url + "__execlib__/health").status_code == 200


def test_long_paths_get_414_from_the_server_and_from_the_static_site(site: Path, serve) -> None:
    server = serve(site)
    long_path = b"/a" * 32_000  # 64 KB: resolving it used to block the server for minutes
    assert raw_request(server, long_path) == (414, b"URI Too Long\n")
    assert raw_request(server, long_path, b"HEAD") == (414, b"")
    assert raw_request(server, b"/__execlib__/health?" + b"x" * MAX_TARGET_BYTES)[0] == 414
    assert raw_request(server, b"/index.html")[0] == 200

    async def static_alone() -> list[int]:
        # StaticSite used on its own (no dispatcher in front) refuses them too.
        app = StaticSite(site, inject=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return [(await c.get(path)).status_code for path in ("/a" * 32_000, "/style.css")]

    assert run_async(static_alone()) == [414, 200]


def test_resolving_a_long_path_builds_nothing_quadratic(tmp_path: Path) -> None:
    resolver = SiteResolver(tmp_path)
    long_path = "/a" * 32_768  # 64 KB, called directly: the resolver itself has no length limit
    tracemalloc.start()
    try:
        assert resolver.resolve(long_path, long_path.encode()).kind is Kind.MISSING
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Every prefix of the path would be ~1 GB; a few copies of it are all resolution needs.
    assert peak < 32 * len(long_path)
    assert resolver.memo_bytes <= _MEMO_BYTES


def test_resolver_memo_is_bounded_by_size(tmp_path: Path) -> None:
    write(tmp_path / "deep" / "er" / "page.html", "x")
    resolver = SiteResolver(tmp_path)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):  # distinct paths just under the request limit: ~5 MB if all were kept
            path = ("/a" * MAX_TARGET_BYTES)[: MAX_TARGET_BYTES - 8] + f"/{i:06d}"
            assert resolver.resolve(path).kind is Kind.MISSING
            assert resolver.memo_bytes <= _MEMO_BYTES
        for i in range(6_000):  # and many ordinary ones (~700 bytes each)
            resolver.resolve(f"/deep/er/page{i}.html")
            assert resolver.memo_bytes <= _MEMO_BYTES
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 2 * _MEMO_BYTES
    # Memoised or not, mappings are right.
    assert resolver.resolve("/deep/er/page.html").fs_path == str(tmp_path / "deep" / "er" / "page.html")
