"""Server backends: which HTTP server serves the app (docs/backends.rst).

Each backend is imported only when chosen: a server on uvicorn never imports Hypercorn, and
``execlib --help`` imports neither.
"""

from __future__ import annotations

import importlib
import importlib.util
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from .base import BackendOptions, ServerBackend, TLSFilesLike

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from ...config import ServerConfig

__all__ = [
    "BACKENDS",
    "BackendOptions",
    "ServerBackend",
    "TLSFilesLike",
    "choose_backend",
    "create_backend",
    "tls_of",
]

#: the backends ``backend=`` names, with the module and class of each
BACKENDS = {
    "uvicorn": ("execlib.server.backends.uvicorn", "UvicornBackend"),
    "hypercorn": ("execlib.server.backends.hypercorn", "HypercornBackend"),
}

#: what ``backend="auto"`` is without HTTP/2 (the test suite points it at another backend to run
#: the same tests on it: tests/conftest.py)
DEFAULT_BACKEND = "uvicorn"

# Parameters are named as ``name=``, which the command line shows as its flags (cli.error_message).
HTTP2_NEEDS_TLS = "needs TLS (https=, or ssl_certfile= and ssl_keyfile=): browsers only speak HTTP/2 over TLS"
HYPERCORN_MISSING = "Hypercorn is not installed (pip install 'execlib[http2]')"


def tls_of(config: ServerConfig) -> TLSFilesLike | None:
    """The certificate files ``config`` asks to serve HTTPS with, or None for plain HTTP.

    ``execlib.tls`` finds or makes them (``--https``, ``--ssl-certfile``); without that module
    every server is plain HTTP. Looked up through this module at each call, so a tool (or a test)
    may replace it to hand a backend its own files.
    """
    if not hasattr(config, "https") and not hasattr(config, "ssl_certfile"):
        return None  # a configuration without the TLS options cannot ask for TLS
    try:
        tls = importlib.import_module("execlib.tls")
    except ImportError:
        return None
    resolve: Callable[[ServerConfig], TLSFilesLike | None] = tls.resolve_tls
    return resolve(config)


def hypercorn_installed() -> bool:
    return importlib.util.find_spec("hypercorn") is not None


def choose_backend(config: ServerConfig, tls: TLSFilesLike | None) -> str:
    """The backend that serves ``config``: ``backend`` when named, else Hypercorn for HTTP/2
    and ``DEFAULT_BACKEND`` otherwise. ConfigError for HTTP/2 without TLS or a missing Hypercorn."""
    if config.http2 and tls is None:
        raise ConfigError(HTTP2_NEEDS_TLS, option="http2", value=True)
    name = config.backend
    if name == "auto":
        name = "hypercorn" if config.http2 else DEFAULT_BACKEND
    if name == "hypercorn" and not hypercorn_installed():
        if config.backend == "auto":
            raise ConfigError(f"needs the Hypercorn backend, but {HYPERCORN_MISSING}", option="http2", value=True)
        raise ConfigError(f"cannot be used: {HYPERCORN_MISSING}", option="backend", value=name)
    return name


def create_backend(
    name: str, app: ASGIApp, sock: socket.socket, options: BackendOptions, on_started: Callable[[], None]
) -> ServerBackend:
    """The backend ``name`` (a key of BACKENDS), importing its module now."""
    module_name, class_name = BACKENDS[name]
    backend_class: Any = getattr(importlib.import_module(module_name), class_name)
    backend: ServerBackend = backend_class(app, sock, options, on_started)
    return backend
