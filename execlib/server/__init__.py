"""The HTTP side of execlib: Server, the static site, live reload.

The names below are imported on first use (PEP 562): an app-mode worker process imports
``execlib.server.uvicorn_core`` alone, without the Server and all it brings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import ListenerFailedError, Server, bind_socket

__all__ = ["Server", "ListenerFailedError", "bind_socket"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".server", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
