"""Whether the backend is up, said once per change in the terminal (never once per request)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .backend import Backend

logger = logging.getLogger("execlib.proxy")

# How long the waiting page's check (and the one at start) waits for the backend to accept.
PROBE_TIMEOUT = 1.0


class BackendStatus:
    """Up or down, as the last connection attempt found it; logs each change once."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.up: bool | None = None  # None: not tried yet

    def answered(self) -> None:
        if self.up is False:
            logger.info("backend %s is back", self.backend.origin)
        self.up = True

    def refused(self, reason: str) -> None:
        if self.up is not False:
            logger.warning("backend %s is down (%s); requests wait for it", self.backend.origin, reason)
        self.up = False

    async def probe(self) -> bool:
        """Try a connection to the backend now (the waiting page asks this until it is back)."""
        failure = await self._connect()
        if failure is None:
            self.answered()
            return True
        self.refused(failure)
        return False

    async def check_at_start(self) -> None:
        """Warn when the backend is not answering as serving starts; serving goes on regardless."""
        failure = await self._connect()
        if failure is None:
            if self.up is None:
                self.up = True
            return
        self.up = False  # said here, in the start's own words: not again as "down"
        logger.warning(
            "backend %s is not answering (%s); pages show a waiting page until it does", self.backend.origin, failure
        )

    async def _connect(self) -> str | None:
        """Open and close a TCP connection to the backend: None when it accepted, else why not.

        A connection accepted is what a request waits for; nothing is sent, so the backend's own
        log stays free of these checks.
        """
        try:
            connecting = asyncio.open_connection(self.backend.hostname, self.backend.port)
            _, writer = await asyncio.wait_for(connecting, PROBE_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as error:
            return reason_of(error)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None


def reason_of(error: BaseException) -> str:
    """A few words for why a connection failed: ``connection refused``, ``timed out``."""
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    return str(error).splitlines()[0] if str(error) else type(error).__name__
