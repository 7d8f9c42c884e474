"""Listener backends and ``get_listener``, which picks the best one for the platform.

"auto" is inotify on Linux (when inotify-simple imports) and watchfiles
elsewhere. ``poll=True`` means our own polling listener ("poll"), which
compares nanosecond mtimes, sizes, inodes and the content of recently changed
files; ``backend="watchfiles", poll=True`` still gives watchfiles' polling.
``poll=None`` (the default) polls when a watched folder lies on a file system
whose changes notifications miss (a network share, a host's folder shared into
a VM or container: ``filesystems``), saying so once; ``poll=False`` never does.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..listener import Listener, top_roots

if TYPE_CHECKING:
    from ..router import BaseRouter

logger = logging.getLogger("execlib.listener")

BACKENDS = ("auto", "inotify", "watchfiles", "poll")


def inotify_available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import inotify_simple  # noqa: F401
    except ImportError:
        return False
    return True


def get_listener(router: BaseRouter, backend: str = "auto", poll: bool | None = None, **options: Any) -> Listener:
    """A listener of the chosen backend watching every endpoint of ``router``."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown listener backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if poll is None:
        poll = backend in ("auto", "watchfiles") and must_poll(top_roots(router.endpoints()))
    if poll and backend == "inotify":
        raise ConfigError("inotify does not poll: for polling drop backend='inotify' (or use backend='poll')")
    if backend == "poll" or (poll and backend == "auto"):
        from .poll import PollingListener

        return PollingListener(router, **options)
    if backend == "auto":
        backend = "inotify" if inotify_available() else "watchfiles"
    if backend == "inotify":
        if not inotify_available():
            raise ConfigError("the inotify backend needs Linux and the inotify-simple package; use 'watchfiles'")
        from .inotify import InotifyListener

        return InotifyListener(router, **options)
    from .watchfiles import WatchfilesListener

    return WatchfilesListener(router, poll=poll, **options)


def must_poll(folders: list[str]) -> bool:
    """Whether some of ``folders`` lie where notifications miss changes; if so, says which, once."""
    from .filesystems import unnotified_folders

    found = unnotified_folders(folders)
    if not found:
        return False
    shown = ", ".join(f"{folder} ({kind})" for folder, kind in found[:3]) + (" and more" if len(found) > 3 else "")
    logger.warning(
        "watching by polling: %s %s on a file system whose change notifications miss edits made on the other "
        "side (a network share, or a host's folder shared into this machine); --no-poll (poll=False) watches "
        "with notifications anyway",
        shown,
        "is" if len(found) == 1 else "are",
    )
    return True


def __getattr__(name: str) -> Any:
    # the backends import lazily: watchfiles' Rust extension is not loaded until asked for
    if name == "InotifyListener":
        from .inotify import InotifyListener

        return InotifyListener
    if name == "PollingListener":
        from .poll import PollingListener

        return PollingListener
    if name == "WatchfilesListener":
        from .watchfiles import WatchfilesListener

        return WatchfilesListener
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "InotifyListener",
    "Listener",
    "PollingListener",
    "WatchfilesListener",
    "get_listener",
    "inotify_available",
    "must_poll",
]
