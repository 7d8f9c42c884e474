from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from execlib import Server
from execlib.server import backends

#: EXECLIB_TEST_BACKEND=hypercorn runs the tests against Hypercorn: every Server left at
#: backend="auto" gets it (scripts/test runs the core tests so, after the whole suite on uvicorn)
TEST_BACKEND = os.environ.get("EXECLIB_TEST_BACKEND", "")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backend_limit(name, reason): a documented limit of backend NAME (docs/backends.rst): "
        "the test is expected to fail when the suite runs on it",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers("backend_limit"):
            if mark.args[0] == TEST_BACKEND:
                # strict: a limit that went away (a newer Hypercorn) should be noticed and undocumented
                item.add_marker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))


@pytest.fixture(autouse=True)
def _test_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    if TEST_BACKEND:
        assert TEST_BACKEND in backends.BACKENDS, f"EXECLIB_TEST_BACKEND={TEST_BACKEND!r} names no backend"
        monkeypatch.setattr(backends, "DEFAULT_BACKEND", TEST_BACKEND)


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Put back what an in-process ``execlib.cli.main()`` sets (its handlers write to that test's
    captured streams, closed afterwards, and stop records reaching pytest's caplog)."""
    names = ("execlib", "execlib.access", "uvicorn", "uvicorn.error")
    saved = [(logger, logger.handlers[:], logger.propagate, logger.level) for logger in map(logging.getLogger, names)]
    yield
    for logger, handlers, propagate, level in saved:
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    write(root / "index.html", "<html><head><title>Home</title></head><body><h1>Home</h1></body></html>")
    write(root / "about.html", "<html><body><p>About</p></body></html>")
    write(root / "style.css", "body { color: red; }")
    write(root / "app.js", "console.log('hi');")
    write(root / "sub" / "index.html", "<html><body>Sub index</body></html>")
    write(root / "nolisting" / "a.txt", "a")
    return root


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Factory: start a Server on port 0 in a background thread; all are shut down at teardown."""
    servers: list[Server] = []

    def start(root: os.PathLike[str] | str, **kwargs) -> Server:
        kwargs.setdefault("port", 0)
        server = Server(root, **kwargs)
        servers.append(server)
        return server.start_in_thread()

    yield start
    for server in servers:
        server.shutdown()
        assert server.wait(10), "server did not stop"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, follow_redirects=False) as c:
        yield c
