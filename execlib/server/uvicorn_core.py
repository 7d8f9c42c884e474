"""uvicorn's serving parts, without its command line.

``import uvicorn`` runs ``uvicorn/__init__.py``, which imports ``uvicorn.main``: click, the reload
and worker supervisors, multiprocessing and watchfiles. execlib uses none of them (it drives
``uvicorn.server.Server`` itself), yet they were a sixth of the time from launch to the first
response. So the ``uvicorn`` package is registered without running its ``__init__``, and the
submodules execlib needs are imported from it.

Nothing is lost for code that imports uvicorn later in the same process: the package module
gets a module ``__getattr__`` (PEP 562) that runs the real ``__init__`` the first time anything
only it defines is asked for (``uvicorn.run``, ``uvicorn.Config``, ``uvicorn.__version__``, a
``from uvicorn import ...``), and then answers as the real package would. When uvicorn was
imported before execlib, the package is used as it is.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any


def _register_package_without_init(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not a regular package: let the imports below go the normal way
    package = importlib.util.module_from_spec(spec)
    lock = threading.Lock()
    loader = spec.loader

    def complete(attribute: str) -> Any:
        """Run the package's own ``__init__`` once, then look ``attribute`` up as usual."""
        with lock:
            if package.__dict__.pop("__getattr__", None) is not None:
                loader.exec_module(package)
        return getattr(package, attribute)

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[name] = package


_register_package_without_init("uvicorn")

# execlib's modules import uvicorn's through this one, so that this comes first.
from uvicorn.config import Config  # noqa: E402  (after the package is registered)
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402
from uvicorn.server import Server, ServerState  # noqa: E402

# uvicorn's own modules take these from the package (``from uvicorn import Config`` in its
# lifespan module): the same objects its ``__init__`` would bind, so that needs no ``__init__``.
for _name, _value in (("Config", Config), ("Server", Server)):
    sys.modules["uvicorn"].__dict__.setdefault(_name, _value)

__all__ = ["Config", "HttpToolsProtocol", "Server", "ServerState"]
