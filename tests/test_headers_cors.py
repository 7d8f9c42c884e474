"""``--header`` and ``--cors``: headers on every response execlib makes, CORS preflights answered
before the static site, validators and ranges left intact, and one-line errors for bad headers."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from execlib import ServerConfig
from execlib.errors import ConfigError
from execlib.server.accesslog import AccessLogMiddleware
from execlib.server.app import Dispatcher
from execlib.server.extra_headers import ExtraHeadersMiddleware

from .conftest import write
from .helpers import execlib_cmd, run_async, start_cli

BIG = 5 << 20  # over FileCache's 4 MiB: streamed by FileResponse
EXPOSED = {"etag", "content-length", "content-range", "accept-ranges", "last-modified"}


@pytest.fixture
def big_site(site: Path) -> Path:
    write(site / "big.bin", bytes(range(256)) * (BIG // 256))
    write(site / "small.bin", bytes(range(256)) * 4)
    return site


def assert_added(response: httpx.Response, cors: bool = True) -> None:
    assert response.headers.get_list("x-test") == ["1"], (response.status_code, response.headers)
    if cors:
        assert response.headers.get_list("access-control-allow-origin") == ["*"]
        exposed = {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}
        assert EXPOSED | {"x-test"} <= exposed


def test_every_kind_of_response_carries_the_headers(big_site: Path, serve, client: httpx.Client) -> None:
    server = serve(big_site, headers=["X-Test: 1"], cors=True)

    @server.app.get("/api/thing")
    def thing() -> dict[str, int]:
        return {"n": 1}

    url = server.url
    page = client.get(url + "about.html")
    assert page.status_code == 200 and "livereload.js" in page.text
    assert_added(page)
    responses = {
        "304": client.get(url + "about.html", headers={"If-None-Match": page.headers["etag"]}),
        "404": client.get(url + "missing.html"),
        "reserved 404": client.get(url + "__execlib__/nothing"),
        "listing": client.get(url + "nolisting/"),
        "redirect": client.get(url + "sub"),
        "livereload.js": client.get(url + "livereload.js"),
        "health": client.get(url + "__execlib__/health"),
        "route": client.get(url + "api/thing"),
        "405": client.post(url + "about.html"),
        "HEAD": client.head(url + "style.css"),
    }
    expected = {"304": 304, "404": 404, "reserved 404": 404, "redirect": 307, "405": 405}
    for name, response in responses.items():
        assert response.status_code == expected.get(name, 200), name
        assert_added(response)
    assert responses["route"].json() == {"n": 1}


@pytest.mark.parametrize("name", ["big.bin", "small.bin"])
def test_ranges_and_304_keep_working(big_site: Path, serve, client: httpx.Client, name: str) -> None:
    server = serve(big_site, headers=["X-Test: 1"], cors=True)
    size = (big_site / name).stat().st_size
    full = client.get(server.url + name)
    assert full.status_code == 200 and len(full.content) == size
    assert full.headers["cache-control"] == "no-cache" and full.headers["accept-ranges"] == "bytes"
    assert_added(full)
    part = client.get(server.url + name, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.headers.get_list("cache-control") == ["no-cache"]
    assert_added(part)
    again = client.get(server.url + name, headers={"If-None-Match": full.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == full.headers["etag"]
    assert_added(again)


def test_a_users_header_replaces_execlibs_of_the_same_name(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, headers={"Cache-Control": "max-age=60", "X-Test": "1"})
    first = client.get(server.url + "style.css")
    assert first.headers.get_list("cache-control") == ["max-age=60"]
    assert first.headers["etag"] and first.headers["last-modified"]
    assert "access-control-allow-origin" not in first.headers  # no --cors
    assert_added(first, cors=False)
    again = client.get(server.url + "style.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers.get_list("cache-control") == ["max-age=60"]


def test_user_headers_win_over_cors_headers(site: Path, serve, client: httpx.Client) -> None:
    origin = "http://localhost:3000"
    server = serve(site, headers=[f"Access-Control-Allow-Origin: {origin}"], cors=True)
    assert client.get(server.url).headers.get_list("access-control-allow-origin") == [origin]
    preflight = client.options(server.url, headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
    assert preflight.headers.get_list("access-control-allow-origin") == [origin]


def test_preflight_is_answered_without_reaching_the_site(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, headers=["X-Test: 1"], cors=True)
    reached: list[str] = []
    static = server.dispatcher.static

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["method"])
        await static(scope, receive, send)

    server.dispatcher.static = counting
    asked = {
        "Origin": "https://example.org",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-custom",
    }
    for path in ("about.html", "missing/path", "__execlib__/health"):
        preflight = client.options(server.url + path, headers=asked)
        assert preflight.status_code == 204 and preflight.content == b""
        headers = preflight.headers
        assert headers["access-control-allow-origin"] == "*"
        assert "PUT" in [m.strip() for m in headers["access-control-allow-methods"].split(",")]
        assert headers["access-control-allow-headers"] == "content-type, x-custom"
        assert int(headers["access-control-max-age"]) > 0
        assert headers["x-test"] == "1"
        assert "content-length" not in headers and "transfer-encoding" not in headers
    odd = client.options(server.url, headers={**asked, "Access-Control-Request-Method": "QUERY"})
    assert "QUERY" in odd.headers["access-control-allow-methods"]
    assert reached == []
    # an OPTIONS that is not a preflight is the site's, as without --cors (405), with the CORS headers
    plain = client.options(server.url + "about.html")
    assert plain.status_code == 405 and plain.headers["allow"] == "GET, HEAD"
    assert_added(plain)
    assert reached == ["OPTIONS"]
    # and a simple cross-origin GET gets them too
    simple = client.get(server.url + "about.html", headers={"Origin": "https://example.org"})
    assert simple.status_code == 200
    assert_added(simple)


def test_private_network_preflight(site: Path, serve, client: httpx.Client) -> None:
    server = serve(site, cors=True)
    asked = {
        "Origin": "https://example.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Private-Network": "true",
    }
    preflight = client.options(server.url, headers=asked)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-private-network"] == "true"


def test_without_the_options_there_is_no_extra_layer(site: Path, serve) -> None:
    plain = serve(site)
    assert isinstance(plain.asgi, AccessLogMiddleware) and isinstance(plain.asgi.app, Dispatcher)
    for options in ({"headers": ["X-Test: 1"]}, {"cors": True}):
        server = serve(site, **options)
        assert isinstance(server.asgi, AccessLogMiddleware)
        assert isinstance(server.asgi.app, ExtraHeadersMiddleware) and server.asgi.app.app is server.dispatcher


def test_websocket_and_lifespan_pass_untouched() -> None:
    seen: list[tuple[str, object]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], send))

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {}

    middleware = ExtraHeadersMiddleware(app, ["X-Test: 1"], cors=True)
    for kind in ("websocket", "lifespan"):
        run_async(middleware({"type": kind, "path": "/livereload", "headers": []}, receive, send))
    assert seen == [("websocket", send), ("lifespan", send)]  # the same send: nothing added to a handshake


# -- the option: forms, checks, errors ---------------------------------------------------


def test_forms_of_the_option(site: Path) -> None:
    assert ServerConfig(site).headers == ()
    assert ServerConfig(site, headers="X-A:1").headers == ("X-A: 1",)
    assert ServerConfig(site, headers={"X-A": " 1 ", "X-B": ""}).headers == ("X-A: 1", "X-B: ")
    assert ServerConfig(site, headers=[("X-A", "1"), "Link: <a>; rel=x, <b>; rel=y"]).headers == (
        "X-A: 1",
        "Link: <a>; rel=x, <b>; rel=y",
    )
    assert ServerConfig(site, headers=iter(["X-A: 1"])).headers == ("X-A: 1",)


@pytest.mark.parametrize(
    ("value", "shown", "problem"),
    [
        ("X-A", "'X-A'", "must be a header as 'Name: value'"),
        ([": 1"], "': 1'", "has no name before its ':'"),
        (["X A: 1"], "'X A: 1'", "is not a valid HTTP header name"),
        (["X-A: 1\r\nX-B: 2"], "'X-A: 1\\r\\nX-B: 2'", "has a value with a line break"),
        ({"X-A": "a\nb"}, "('X-A', 'a\\nb')", "has a value with a line break"),
        (["X-A: \x00"], "'X-A: \\x00'", "a control character"),
        (["X-A: \u2603"], "'X-A: \u2603'", "outside Latin-1"),
        (["ETag: x"], "'ETag: x'", "names a header execlib sets per response"),
        (["content-length: 5"], "'content-length: 5'", "names a header execlib sets per response"),
        ([42], "42", "must be a header as 'Name: value'"),
        (42, "42", "must be 'Name: value' strings"),
    ],
)
def test_bad_headers_are_config_errors(site: Path, value: object, shown: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerConfig(site, headers=value)  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"headers={shown} "), str(caught.value)
    assert problem in str(caught.value)
    assert caught.value.option == "headers"


def test_cors_must_be_a_bool(site: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cors='yes' must be True or False"):
        ServerConfig(site, cors="yes")  # type: ignore[arg-type]


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXECLIB_")}
    return subprocess.run(
        execlib_cmd(*args), capture_output=True, text=True, timeout=30, cwd=cwd, env={**clean, **(env or {})}
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--header", "X-Test"], {}, "--header X-Test must be a header as 'Name: value'"),
        (["--header", "X-A: 1", "--header", "Bad Name: 2"], {}, "--header 'Bad Name: 2' has a name that is not"),
        (["--header", "Content-Range: bytes 0-1/2"], {}, "--header 'Content-Range: bytes 0-1/2' names a header"),
        ([], {"EXECLIB_HEADERS": "nocolon,X-A: 1"}, "EXECLIB_HEADERS='nocolon,X-A: 1': 'nocolon' must be a header"),
        ([], {"EXECLIB_CORS": "maybe"}, "EXECLIB_CORS='maybe' must be 1 or 0"),
    ],
)
def test_bad_header_on_the_command_line_is_one_line_exit_2(
    site: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_cli("serve", str(site), "--port", "0", *args, cwd=site, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"execlib: error: {message}"), result.stderr


def test_bad_header_in_a_config_file(site: Path) -> None:
    (site / "execlib.toml").write_text('headers = ["X-A: 1", "X-B"]\n')
    result = run_cli("serve", ".", "--port", "0", cwd=site)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "execlib: error: execlib.toml: headers = 'X-B' must be a header as 'Name: value'\n"


@pytest.mark.timeout(60)
def test_serve_with_the_flags(site: Path) -> None:
    proc, url = start_cli(
        "serve", str(site), "--port", "0", "-q", "--header", "X-Test: 1", "--header", "X-Other: a, b", "--cors"
    )
    try:
        response = httpx.get(url + "style.css", timeout=10)
        assert_added(response)
        assert response.headers["x-other"] == "a, b"
        preflight = httpx.options(url, headers={"Origin": "http://a", "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 204
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_the_python_api_takes_the_options(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from execlib import serve
    from execlib.api import _serve_args

    # serve_background() passes them on to its child as flags
    assert _serve_args({"headers": {"X-A": "1"}, "cors": True}) == ["--header", "X-A: 1", "--cors"]
    assert _serve_args({"headers": (), "cors": False}) == []
    with pytest.raises(ConfigError, match="^headers='X-A'"):
        _serve_args({"headers": ["X-A"]})
    # serve() reads EXECLIB_HEADERS / EXECLIB_CORS under its own arguments
    monkeypatch.setenv("EXECLIB_HEADERS", "X-Test: 1")
    monkeypatch.setenv("EXECLIB_CORS", "1")
    servers: list[Any] = []
    url = serve(site, foreground=False, port=0, pre_serve=servers.append)
    try:
        assert_added(httpx.get(url, timeout=10))
    finally:
        servers[0].shutdown()
        servers[0].wait()
