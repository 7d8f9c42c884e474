"""Hostile input against a real server: fuzzed and overlong paths, page URLs sent to the live-reload
hub, and files or folders the server's user may not read.

The site sits next to a file OUTSIDE its root (and holds symlinks to it); no answer may ever carry a
byte of that file, and nothing a client sends may earn a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from execlib import Server
from execlib.server.livereload import Page
from execlib.server.paths import MAX_TARGET_BYTES

from .conftest import write
from .helpers import read_line, run_async

OUTSIDE = b"OUTSIDE-THE-ROOT-7f3a9c"
PROTOCOL = "http://livereload.com/protocols/official-7"


def raw_request(address: tuple[str, int], target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send a request line exactly as given (an HTTP client would normalise hostile paths away)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for every example: a site, and a file and a folder outside it with symlinks to them."""
    base = tmp_path_factory.mktemp("hostile")
    site = base / "site"
    write(base / "secret.txt", OUTSIDE * 4)
    write(base / "outside" / "index.html", OUTSIDE)
    write(site / "index.html", "<html><body>home</body></html>")
    write(site / "sub" / "index.html", "<html><body>sub</body></html>")
    write(site / "sub" / "a.txt", "a")
    write(site / "style.css", "body {}")
    os.symlink(base / "secret.txt", site / "link.txt")
    os.symlink(base / "outside", site / "linkdir")
    server = Server(site, port=0)  # live reload on: the dispatcher's own routes are fuzzed too
    server.start_in_thread()
    yield server
    server.shutdown()
    assert server.wait(10), "server did not stop"


# Pieces a path is built from: names that exist, traversal in every spelling we know, separators
# and bytes that decoding turns into something else.
TOKENS = [
    "",
    ".",
    "..",
    "%2e",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2f",
    "%2F",
    "%5c",
    "%00",
    "\\",
    "..\\",
    "%252e%252e",
    "%c0%ae%c0%ae",
    "index.html",
    "sub",
    "a.txt",
    "secret.txt",
    "link.txt",
    "linkdir",
    "outside",
    "livereload.js",
    "__execlib__",
    "health",
    "%ff",
    "%",
    "%zz",
    "?",
    "#",
    ";",
]

segment = st.one_of(
    st.sampled_from(TOKENS),
    # Any text at all, percent-encoded as a browser would send it (a raw space would end the target).
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12).map(lambda text: quote(text, safe="")),
)
separator = st.sampled_from(["/", "/", "/", "//", "\\", "/./", "/../"])


@st.composite
def request_targets(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.tuples(separator, segment), min_size=1, max_size=8))
    path = "".join(sep + seg for sep, seg in parts)
    return path.encode("ascii")


@settings(max_examples=300, deadline=None, database=None)  # no example database written into the checkout
@given(target=request_targets(), method=st.sampled_from([b"GET", b"HEAD"]))
def test_fuzzed_paths_never_5xx_never_leak(hostile_server: Server, target: bytes, method: bytes) -> None:
    status, response = raw_request(hostile_server.bound_addr, target, method)
    assert status < 500, (target, status, response[:300])
    assert OUTSIDE not in response, target


LONG = 64_000  # just under uvicorn's own cap on a request line (64 KiB), so the request reaches us


@pytest.mark.parametrize(
    "target",
    [
        b"/a" * (LONG // 2),  # many short segments: what made resolution quadratic
        b"/" + b"a" * LONG,  # one long segment
        b"/%2e%2e" * (LONG // 7),  # traversal, over and over
        b"/" + b"%41" * (LONG // 3),  # long as sent, a third as long decoded
        b"/__execlib__/" + b"x/" * (LONG // 2),  # for the API app, not the static site
        b"/livereload.js?" + b"q" * LONG,  # a short path with a long query string
    ],
    ids=["segments", "one-segment", "traversal", "encoded", "api", "query"],
)
def test_overlong_targets_get_414(hostile_server: Server, target: bytes) -> None:
    address = hostile_server.bound_addr
    status, response = raw_request(address, target)
    assert status == 414, (status, response[:300])
    assert OUTSIDE not in response
    # The server was not held up: an ordinary request right after is answered normally.
    assert raw_request(address, b"/sub/a.txt")[0] == 200


def test_target_of_the_limit_is_still_served(hostile_server: Server) -> None:
    at_limit = b"/sub/a.txt?" + b"q" * (MAX_TARGET_BYTES - len(b"/sub/a.txt?"))
    assert len(at_limit) == MAX_TARGET_BYTES
    address = hostile_server.bound_addr
    assert raw_request(address, at_limit)[0] == 200
    assert raw_request(address, at_limit + b"q")[0] == 414
    status, _ = raw_request(address, (b"/a" * MAX_TARGET_BYTES)[:MAX_TARGET_BYTES])
    assert status == 404  # under the limit, resolved, and simply missing


# -- the live-reload hub ---------------------------------------------------------------------


async def _tell_page(server: Server, path: str, resources: list[str]) -> Page:
    """Connect a live-reload client, say which page it shows, and return the hub's view of it."""
    url = server.url.rstrip("/") + path
    ws_url = server.url.replace("http://", "ws://") + "livereload"
    async with connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"command": "hello", "protocols": [PROTOCOL]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["command"] == "hello"
        await ws.send(json.dumps({"command": "info", "url": url, "plugins": {}, "resources": resources}))

        async def known() -> Page:
            while True:
                for page in list(server.hub.pages):
                    if page.url == url and page.resources is not None:
                        return page
                await asyncio.sleep(0.005)

        return await asyncio.wait_for(known(), 10)


def test_hub_resolves_no_overlong_page_url(tmp_path: Path, serve) -> None:
    write(tmp_path / "index.html", "<html><body>home</body></html>")
    write(tmp_path / "style.css", "body {}")
    server = serve(tmp_path)
    resolver = server.static_site.resolver
    memo_before = resolver.memo_bytes
    overlong = "/a" * (LONG // 2)
    page = run_async(_tell_page(server, overlong, [overlong, "/style.css"]))
    assert page.page_file is None and page.wanted == frozenset() and page.listing is None
    assert page.resources == frozenset({"style.css"})
    # Nothing of the long URL reached the resolver: only /style.css was added to its memo.
    assert 0 < resolver.memo_bytes - memo_before < 1024

    # A URL at the limit is resolved, into a memo entry linear in its length (not one per prefix).
    at_limit = ("/a" * MAX_TARGET_BYTES)[:MAX_TARGET_BYTES]
    memo_before = resolver.memo_bytes
    page = run_async(_tell_page(server, at_limit, []))
    assert page.page_file is None and page.wanted == frozenset({at_limit[1:], at_limit[1:] + "/index.html"})
    assert 0 < resolver.memo_bytes - memo_before < 8 * MAX_TARGET_BYTES

    # The hub still knows real pages afterwards.
    assert run_async(_tell_page(server, "/", ["/style.css"])).page_file == "index.html"


# -- files and folders the server may not read -----------------------------------------------

# Run in a child process: the server as a user the permission bits apply to. As root, which
# bypasses them, the child gives up the two capabilities that do the bypassing (root still owns
# the test's files, so the owner's bits decide). Switching to another user instead would lose
# access to the interpreter's own files where it lives under a private home folder.
CHILD = r"""
import ctypes, os, runpy, sys

def drop_permission_override() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    override = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    data[0].effective &= ~override
    data[0].permitted &= ~override
    data[0].inheritable &= ~override
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

if os.geteuid() == 0:
    drop_permission_override()
try:
    open(os.environ["PROBE"], "rb").close()
except PermissionError:
    pass  # as it must be: the server below will meet the same refusal
else:
    sys.exit("permission bits are not enforced for this process; the test would prove nothing")
sys.argv = ["execlib", *sys.argv[1:]]
runpy.run_module("execlib", run_name="__main__", alter_sys=True)
"""

needs_permission_bits = pytest.mark.skipif(
    sys.platform == "win32" or (os.geteuid() == 0 and sys.platform != "linux"),
    reason="needs POSIX permission bits that apply to this user",
)


def run_child(probe: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PROBE": str(probe)},
    )


@pytest.fixture
def locked_site(tmp_path: Path) -> Iterator[Path]:
    site = tmp_path / "site"
    write(site / "ok.txt", "fine")
    write(site / "secret.txt", "nobody may read this")
    write(site / "page.html", "<html><body>" + "big page " * 600_000 + "</body></html>")  # too big to cache
    write(site / "locked" / "a.txt", "a")
    write(site / "listonly" / "b.txt", "b")
    write(tmp_path / "elsewhere" / "c.txt", "c")
    os.symlink(tmp_path / "elsewhere", site / "outlink")  # leads out of root, to a folder it cannot enter
    unreadable = {
        site / "secret.txt": 0o000,
        site / "page.html": 0o000,
        site / "locked": 0o000,  # cannot be entered
        site / "listonly": 0o100,  # can be entered (x), not listed (r)
        tmp_path / "elsewhere": 0o000,
    }
    for path, mode in unreadable.items():
        path.chmod(mode)
    yield site
    for path in unreadable:
        path.chmod(0o755)  # so pytest can clean up


@needs_permission_bits
def test_unreadable_files_and_folders_get_403_and_one_log_line(locked_site: Path) -> None:
    proc = run_child(locked_site / "secret.txt", "serve", str(locked_site), "--port", "0")
    expected = {
        b"/secret.txt": "secret.txt",  # small: read into the cache
        b"/page.html": "page.html",  # big HTML, streamed with the live-reload script
        b"/locked/a.txt": "locked/a.txt",
        b"/locked/": "locked",  # the folder's index.html cannot be looked for
        b"/listonly/": "listonly",  # entered, but not listed
    }
    try:
        first = read_line(proc)
        match = re.search(r"at (http://\S+)", first)
        assert match, (first, proc.stderr.read() if proc.poll() is not None else "")
        host, port = match.group(1).removeprefix("http://").rstrip("/").rsplit(":", 1)
        address = (host, int(port))
        for target in expected:
            status, response = raw_request(address, target)
            assert status == 403, (target, status, response[:300])
        assert raw_request(address, b"/secret.txt", b"HEAD")[0] == 403
        assert raw_request(address, b"/ok.txt")[0] == 200
        assert raw_request(address, b"/listonly/b.txt")[0] == 200
        # Outside root a symlink is a 404, permission error or not: nothing is told about the outside.
        assert raw_request(address, b"/outlink/c.txt")[0] == 404
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    refusals = [line for line in err.splitlines() if "403: cannot read" in line]
    # One line per refused request (secret.txt twice: GET and HEAD), each naming what it could not read.
    assert len(refusals) == len(expected) + 1, err
    for name in expected.values():
        assert sum(line.endswith(f"{os.sep}{name} (permission denied)") for line in refusals) == (
            2 if name == "secret.txt" else 1
        ), (name, err)


@needs_permission_bits
@pytest.mark.parametrize("mode", [0o000, 0o600, 0o300], ids=["no-access", "cannot-enter", "cannot-list"])
def test_unreadable_root_is_refused_at_start(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "site"
    write(root / "index.html", "home")
    write(tmp_path / "probe.txt", "probe").chmod(0o000)
    root.chmod(mode)
    proc = run_child(tmp_path / "probe.txt", "serve", str(root), "--port", "0")
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it started serving after all: stop it, the assertions below say so
        proc.kill()
        out, err = proc.communicate()
    finally:
        root.chmod(0o755)
    assert proc.returncode == 2, (out, err)
    assert out == ""  # never started serving
    assert err.splitlines() == [f"execlib: error: cannot read folder {root}: permission denied"]
