"""Test-only switches for execlib processes the tests start (``execlib start`` and its detached server).

The lifecycle tests put this folder on PYTHONPATH, so Python imports this module at start-up in
every process that inherits that environment, and set one of the variables below:

``EXECLIB_TEST_IGNORE_SIGTERM=1``
    The serving process ignores SIGTERM, to test that ``execlib stop`` escalates to SIGKILL.
``EXECLIB_TEST_SPAWN_CHILD=1``
    The serving process starts a child in its process group (as a build command would) and prints
    ``child pid N`` on stderr, to test that ``execlib stop`` leaves no process behind.

Both act through ``execlib.runloop.install_shutdown_signals``, the function with which a server
takes SIGINT/SIGTERM when it starts serving: ignoring SIGTERM must come after that, or the server's
own handler would replace ours. This module runs before execlib is imported anywhere, so the
modules that import the function by name get the wrapped one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

IGNORE_SIGTERM = "EXECLIB_TEST_IGNORE_SIGTERM"
SPAWN_CHILD = "EXECLIB_TEST_SPAWN_CHILD"


def _wrap_install_shutdown_signals() -> None:
    from execlib import runloop

    install = runloop.install_shutdown_signals

    def install_with_test_hooks(enabled: bool, shutdown: Callable[[], None]) -> Callable[[], None]:
        restore = install(enabled, shutdown)
        if os.environ.get(IGNORE_SIGTERM) == "1" and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # restore() puts back the handler from before serving
        children: list[subprocess.Popen[bytes]] = []
        if os.environ.get(SPAWN_CHILD) == "1":
            # no start_new_session: it stays in the server's process group, as a build command would;
            # -S: no site, so the child does not load this module (and execlib) again
            child = subprocess.Popen(
                [sys.executable, "-S", "-c", "import time; time.sleep(600)"], stdin=subprocess.DEVNULL
            )
            children.append(child)
            print(f"execlib: test hook: child pid {child.pid}", file=sys.stderr, flush=True)

        def restore_and_reap() -> None:
            restore()
            for child in children:  # serving ended without `execlib stop` (which kills the group)
                child.kill()
                child.wait()

        return restore_and_reap

    runloop.install_shutdown_signals = install_with_test_hooks


if os.environ.get(IGNORE_SIGTERM) == "1" or os.environ.get(SPAWN_CHILD) == "1":
    _wrap_install_shutdown_signals()
