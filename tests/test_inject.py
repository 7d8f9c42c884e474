"""Injection of the live-reload client into HTML responses, and only those."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.responses import HTMLResponse, PlainTextResponse

from execlib.server.inject import SCRIPT_TAG, inject_script

from .conftest import write

TAG = SCRIPT_TAG.decode()


def test_inject_script_placement() -> None:
    assert inject_script(b"<html><body>a</body></html>") == b"<html><body>a" + SCRIPT_TAG + b"</body></html>"
    # the last </body>, case-insensitively, even with a decoy in a comment before it
    page = b"<!-- </body> --><BODY>x</BODY >\n</HTML>"
    assert inject_script(page) == b"<!-- </body> --><BODY>x" + SCRIPT_TAG + b"</BODY >\n</HTML>"
    assert inject_script(b"<html><p>no body end</html>") == b"<html><p>no body end" + SCRIPT_TAG + b"</html>"
    assert inject_script(b"<p>fragment") == b"<p>fragment" + SCRIPT_TAG
    assert inject_script(b"") == SCRIPT_TAG


def test_static_pages_listing_404_and_fallback_are_injected(tmp_path: Path, serve, client: httpx.Client) -> None:
    write(tmp_path / "index.html", "<html><body>home</body></html>")
    write(tmp_path / "app.html", "<html><body>shell</body></html>")
    write(tmp_path / "data.json", '{"html": "</body>"}')
    write(tmp_path / "folder" / "x.txt", "x")
    server = serve(tmp_path, fallback="app.html")
    for path, headers in (("", {}), ("folder/", {}), ("missing.html", {}), ("spa/route", {"Accept": "text/html"})):
        response = client.get(server.url + path, headers=headers)
        assert response.text.count(TAG) == 1, path
        assert int(response.headers["content-length"]) == len(response.content), path
    assert client.get(server.url).text == "<html><body>home" + TAG + "</body></html>"
    head = client.head(server.url)
    assert int(head.headers["content-length"]) == len(client.get(server.url).content)
    for path in ("data.json", "folder/x.txt", "livereload.js", "__execlib__/health"):
        assert TAG not in client.get(server.url + path).text, path


def test_nothing_injected_with_livereload_off(tmp_path: Path, serve, client: httpx.Client) -> None:
    write(tmp_path / "index.html", "<html><body>home</body></html>")
    server = serve(tmp_path, livereload=False)
    assert client.get(server.url).text == "<html><body>home</body></html>"
    assert client.get(server.url + "nothing.html").status_code == 404
    assert TAG not in client.get(server.url + "nothing.html").text
    assert client.get(server.url + "livereload.js").status_code == 404


def test_api_routes_of_an_embedding_tool_are_injected(tmp_path: Path, serve, client: httpx.Client) -> None:
    from execlib import Server

    server = Server(tmp_path, port=0)

    @server.app.get("/__execlib__/preview")
    async def preview() -> HTMLResponse:
        return HTMLResponse("<html><body>preview</body></html>")

    @server.app.get("/__execlib__/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("</body>")

    server.start_in_thread()
    try:
        page = client.get(server.url + "__execlib__/preview")
        assert page.text == "<html><body>preview" + TAG + "</body></html>"
        assert int(page.headers["content-length"]) == len(page.content)
        assert client.get(server.url + "__execlib__/text").text == "</body>"
    finally:
        server.shutdown()
        server.wait(5)


def test_big_html_page_streamed_from_disk_is_injected(tmp_path: Path, serve, client: httpx.Client) -> None:
    body = "<p>" + "x" * (5 << 20) + "</p>"  # over the in-memory cache limit: streamed by FileResponse
    write(tmp_path / "big.html", f"<html><body>{body}</body></html>")
    server = serve(tmp_path)
    response = client.get(server.url + "big.html")
    assert response.text.endswith(TAG + "</body></html>")
    assert int(response.headers["content-length"]) == len(response.content)


def test_routes_added_to_the_api_answer_at_their_own_paths(tmp_path: Path, client: httpx.Client) -> None:
    from execlib import Server

    write(tmp_path / "index.html", "<html><body>home</body></html>")
    write(tmp_path / "api" / "status.json", '{"from": "file"}')
    server = Server(tmp_path, port=0)

    @server.app.get("/api/status.json")
    async def status() -> dict[str, str]:
        return {"from": "route"}

    with server:
        assert client.get(server.url + "api/status.json").json() == {"from": "route"}
        assert "home" in client.get(server.url).text  # everything else is still the folder
