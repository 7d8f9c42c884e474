"""Checking the ``Server`` arguments that are objects of this process rather than options.

The options (port, host, watch, ...) are checked by ``ServerConfig`` (execlib/config.py); what is
left here cannot come from a command line or a file: the callbacks, the event loop and the
listeners. A mistake is a ConfigError naming the parameter, raised before anything starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from typing import Any

from ..errors import ConfigError
from ..listener import Listener


def check_runtime_arguments(args: dict[str, Any]) -> None:
    """Check ``Server``'s ``pre_serve``, ``loop`` and ``managed_listeners`` (from its ``locals()``)."""
    if args["pre_serve"] is not None and not callable(args["pre_serve"]):
        raise ConfigError("must be a callable taking the Server", option="pre_serve", value=args["pre_serve"])
    if args["loop"] is not None and not isinstance(args["loop"], asyncio.AbstractEventLoop):
        raise ConfigError("must be an asyncio event loop", option="loop", value=args["loop"])
    _check_listeners(args["managed_listeners"])


def _check_listeners(listeners: object) -> None:
    if listeners is None:
        return
    if isinstance(listeners, (str, bytes)) or not isinstance(listeners, Iterable):
        raise ConfigError("must be a list of listeners", option="managed_listeners", value=listeners)
    # a one-shot iterator is left for Server.__init__ to read: only collections are looked into here
    for listener in listeners if isinstance(listeners, Collection) else ():
        if not isinstance(listener, Listener):
            raise ConfigError(
                "is not a Listener (router.get_listener() makes one)", option="managed_listeners", value=listener
            )
