"""The proxy's pure parts: URL checks, header rewriting, CSP, and injecting into a stream."""

from __future__ import annotations

import pytest

from execlib.errors import ConfigError
from execlib.proxy.backend import parse_backend
from execlib.proxy.headers import allow_client, end_to_end, rewrite_location, strip_cookie_domain
from execlib.proxy.htmlstream import StreamInjector

TAG = b"<script src='/livereload.js'></script>"


def stream(pieces: list[bytes]) -> tuple[list[bytes], bytes]:
    injector = StreamInjector(TAG)
    sent = [injector.feed(piece) for piece in pieces]
    return sent, b"".join(sent) + injector.finish()


@pytest.mark.parametrize("cut", range(1, 30))
def test_body_end_split_anywhere_is_found(cut: int) -> None:
    page = b"<html><body><p>x</p></body  >\n</html>"
    _, whole = stream([page[:cut], page[cut:]])
    assert whole == page.replace(b"</body  >", TAG + b"</body  >")


def test_pieces_go_on_at_once_unless_they_may_start_the_body_end() -> None:
    sent, whole = stream([b"<html><body><p>one</p>", b"<p>two</p></b", b"ody></html>"])
    assert sent[0] == b"<html><body><p>one</p>"  # nothing held back: no "<" that could open </body>
    assert sent[1] == b"<p>two</p>"  # "</b" waits for the next piece
    assert whole == b"<html><body><p>one</p><p>two</p>" + TAG + b"</body></html>"


def test_page_without_body_end_gets_the_tag_at_the_end() -> None:
    _, whole = stream([b"<p>fragment</p>", b"<b>bold</b>"])
    assert whole == b"<p>fragment</p><b>bold</b>" + TAG


def test_backend_url_forms() -> None:
    assert parse_backend("http://LocalHost:3000/").origin == "http://localhost:3000"
    assert parse_backend("https://[::1]").origin == "https://[::1]:443"
    assert parse_backend("http://[::1]:80").netloc == "[::1]"
    for bad in ("", "ws://h:1", "http://h:65536", "http://h:x", "http://", "http://h:1/p", "http://u:p@h:1"):
        with pytest.raises(ConfigError):
            parse_backend(bad)


def test_location_and_cookie_rewrites() -> None:
    backend = parse_backend("http://127.0.0.1:3000")
    proxy = "http://127.0.0.1:8000"
    assert rewrite_location(b"http://127.0.0.1:3000/a?b#c", backend, proxy) == b"http://127.0.0.1:8000/a?b#c"
    assert rewrite_location(b"/relative", backend, proxy) == b"/relative"
    assert rewrite_location(b"http://127.0.0.1:3001/x", backend, proxy) == b"http://127.0.0.1:3001/x"
    assert rewrite_location(b"https://example.org/", backend, proxy) == b"https://example.org/"
    assert strip_cookie_domain(b"a=1; domain=.127.0.0.1; Secure", backend) == b"a=1; Secure"
    assert strip_cookie_domain(b"a=1; Domain=other.test", backend) == b"a=1; Domain=other.test"


def test_connection_named_headers_are_dropped() -> None:
    headers = [(b"connection", b"close, X-A"), (b"x-a", b"1"), (b"x-b", b"2"), (b"transfer-encoding", b"chunked")]
    assert end_to_end(headers) == [(b"x-b", b"2")]


@pytest.mark.parametrize(
    ("policy", "expected", "nonce"),
    [
        ("script-src 'none'", "script-src 'self'", None),
        ("script-src https://cdn.test; img-src *", "script-src https://cdn.test 'self'; img-src *", None),
        (
            "default-src 'self' https://x.test",
            "default-src 'self' https://x.test; script-src 'self' https://x.test; connect-src 'self' https://x.test",
            None,
        ),
        ("script-src 'nonce-abc' 'strict-dynamic'", "script-src 'nonce-abc' 'strict-dynamic' 'self'", "abc"),
        ("img-src *", "img-src *", None),  # nothing restricts scripts or connections: left as it was
        ("script-src 'self', connect-src 'none'", "script-src 'self',connect-src 'self'", None),
    ],
)
def test_csp_widened_only_for_the_client(policy: str, expected: str, nonce: str | None) -> None:
    assert allow_client(policy) == (expected, nonce)


def test_location_naming_the_proxy_over_http_moves_to_https_behind_tls() -> None:
    from execlib.proxy.backend import parse_backend
    from execlib.proxy.headers import rewrite_location

    backend = parse_backend("http://127.0.0.1:3000")
    https = "https://localhost:8443"
    assert rewrite_location(b"http://localhost:8443/next?a=1", backend, https) == b"https://localhost:8443/next?a=1"
    assert rewrite_location(b"http://127.0.0.1:3000/x", backend, https) == b"https://localhost:8443/x"
    assert rewrite_location(b"http://localhost:8443/x", backend, "http://localhost:8443") == b"http://localhost:8443/x"
    assert rewrite_location(b"http://example.com/x", backend, https) == b"http://example.com/x"
    assert rewrite_location(b"/relative", backend, https) == b"/relative"
