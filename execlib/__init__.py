"""execlib: a development static-file server with live reload, and a file-event routing framework.

Heavy modules (uvicorn, FastAPI, Starlette) are imported lazily, on first use
of a name that needs them, so ``import execlib`` and ``execlib --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import AlreadyRunningError, BindError, ConfigError, ExeclibError, PortInUseError

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "Server": "execlib.server.server",
    "ServerConfig": "execlib.config",
    "ListenerFailedError": "execlib.server.server",
    "StaticSite": "execlib.server.static",
    "serve": "execlib.api",
    "serve_background": "execlib.api",
    "stop": "execlib.process",
    "status": "execlib.process",
    "ServerStatus": "execlib.process",
    "configure_logging": "execlib.log",
    # file-event routing (no HTTP imports)
    "Event": "execlib.event",
    "FileEvent": "execlib.event",
    "Action": "execlib.event",
    "Router": "execlib.router",
    "ChainRouter": "execlib.routers.chain",
    "RouterBuilder": "execlib.routers.builder",
    "route": "execlib.routers.builder",
    "CallbackTimeout": "execlib.router",
    "PathRouter": "execlib.routers.path",
    "Listener": "execlib.listener",
    "ListenerDiedError": "execlib.listener",
    "InotifyListener": "execlib.listeners.inotify",
    "WatchfilesListener": "execlib.listeners.watchfiles",
    "get_listener": "execlib.listeners",
    "ListenerServer": "execlib.listener_server",
}

if TYPE_CHECKING:
    from .api import serve, serve_background
    from .config import ServerConfig
    from .event import Action, Event, FileEvent
    from .listener import Listener, ListenerDiedError
    from .listener_server import ListenerServer
    from .listeners import get_listener
    from .listeners.inotify import InotifyListener
    from .listeners.watchfiles import WatchfilesListener
    from .log import configure_logging
    from .process import ServerStatus, status, stop
    from .router import CallbackTimeout, Router
    from .routers.builder import RouterBuilder, route
    from .routers.chain import ChainRouter
    from .routers.path import PathRouter
    from .server.server import ListenerFailedError, Server
    from .server.static import StaticSite


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'execlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AlreadyRunningError",
    "BindError",
    "ConfigError",
    "ExeclibError",
    "ListenerFailedError",
    "PortInUseError",
    "Server",
    "ServerConfig",
    "StaticSite",
    "__version__",
    "configure_logging",
    "serve",
    "serve_background",
    "ServerStatus",
    "status",
    "stop",
    "Action",
    "CallbackTimeout",
    "ChainRouter",
    "Event",
    "FileEvent",
    "InotifyListener",
    "Listener",
    "ListenerDiedError",
    "ListenerServer",
    "PathRouter",
    "Router",
    "RouterBuilder",
    "WatchfilesListener",
    "get_listener",
    "route",
]
