"""Limits that keep one client from denying service to the others: how long and how big a
request head may be, and how many files the process may have open."""

from __future__ import annotations

import logging

# the request-head limits are options (ServerConfig): their defaults and reasons live there
from ..config import HEADER_TIMEOUT as HEADER_TIMEOUT
from ..config import MAX_HEADER_BYTES as MAX_HEADER_BYTES

logger = logging.getLogger("execlib.server")

# Seconds a refused connection stays open, discarding what it still sends, so that it reads our
# 408/431 answer: closing a socket with unread input makes the kernel send a reset, and a reset
# can destroy the answer before the client reads it.
LINGER = 2.0

# A soft limit to try when the hard limit is "unlimited": macOS refuses RLIM_INFINITY for files
# and caps a process at OPEN_MAX (10240) unless told otherwise.
_FALLBACK_OPEN_FILES = 10240


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise the soft limit on open files to the hard limit, as servers commonly do.

    With the usual soft limit of 1024, about a thousand idle connections leave no file
    descriptor for the next client, the files it asks for, or the file watcher. Returns
    (old, new) when the limit changed, None otherwise (no ``resource`` module, or nothing to do).
    """
    try:
        import resource
    except ImportError:  # Windows: no per-process descriptor limit of this kind
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft == hard:
        return None
    candidates = [hard] if hard != resource.RLIM_INFINITY else []
    candidates.append(_FALLBACK_OPEN_FILES)
    for target in candidates:
        if target <= soft or (hard != resource.RLIM_INFINITY and target > hard):
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.debug("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
            continue
        logger.debug("raised the open-file limit from %d to %d", soft, target)
        return soft, target
    return None
