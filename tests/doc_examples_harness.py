"""Runs the Python examples of one docs page; test_doc_examples.py starts it in a scratch folder.

Usage: ``python doc_examples_harness.py EXAMPLES.json``, where the file holds a list of
``{"doc": "docs/x.rst", "line": N, "code": "..."}`` in page order. The examples run in that order
in one namespace, as a reader runs them: a later example may use a name an earlier one defined
(``router``, ``server``). Each one that finishes prints ``ran docs/x.rst:N`` on stdout; the first
that raises ends the run with its traceback, whose line numbers are the page's, and exit status 1.

What the harness adds, and why:

* ``PLACEHOLDERS``: the names the pages use for the reader's own code (``render_site``,
  ``run_my_build``, ...), as stand-ins that do nothing.
* Every ``Server`` gets ``port=0``: the examples name port 8000, which another server on this
  machine may hold.
* ``Server.start()`` and ``ListenerServer.start()`` called in the main thread block until Ctrl-C
  in the examples; here a thread waits until they serve, fetches the server's page (a Server
  must answer), and shuts them down.
* Listeners an example started and left running are stopped at the end.
"""

from __future__ import annotations

import inspect
import json
import sys
import threading
import traceback
import urllib.request
from collections.abc import Callable
from typing import Any

from execlib.listener import Listener
from execlib.listener_server import ListenerServer
from execlib.runloop import BlockingService
from execlib.server.server import Server

READY_TIMEOUT = 20.0  # seconds for a server started by an example to serve (a build may run first)


def render_site(source: str, output: str) -> None:
    """Stand-in for the reader's site generator."""


def run_my_build() -> list[str]:
    """Stand-in for the reader's build; returns the files it wrote."""
    return ["index.html"]


class BuildError(Exception):
    """Stand-in for the error the reader's build raises."""


def run_my_tool() -> None:
    """Stand-in for the reader's tool, which runs while the preview serves."""


def last_build_time() -> float:
    return 0.0


def rebuild(event_or_events: object) -> None:
    """Stand-in for the reader's route callback."""


PLACEHOLDERS: dict[str, Any] = {
    "render_site": render_site,
    "run_my_build": run_my_build,
    "BuildError": BuildError,
    "run_my_tool": run_my_tool,
    "last_build_time": last_build_time,
    "rebuild": rebuild,
}

errors: list[BaseException] = []  # from the threads that end the examples' servers
started_listeners: list[Listener] = []


def _on_any_port(init: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(init)

    def wrapper(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        config = bound.arguments.get("config")
        if config is not None:  # a ServerConfig (serve() makes one) holds the port
            bound.arguments["config"] = config.replace(port=0)
        else:
            bound.arguments["port"] = 0
        init(*bound.args, **bound.kwargs)

    return wrapper


def _fetch_page(server: Server) -> None:
    with urllib.request.urlopen(server.url, timeout=10) as response:
        response.read()


def _end_when_serving(service: BlockingService, check: Callable[[Any], None] | None) -> None:
    try:
        if not service._ready.wait(READY_TIMEOUT):
            raise TimeoutError(f"{type(service).__name__} did not serve within {READY_TIMEOUT} s")
        if check is not None:
            check(service)
    except BaseException as error:
        errors.append(error)
    finally:
        service.shutdown()


def _serve_briefly(start: Callable[[Any], None], check: Callable[[Any], None] | None) -> Callable[[Any], None]:
    def wrapper(service: BlockingService) -> None:
        # start_in_thread() and `with` run start() in a thread of their own: those end as the example says
        if threading.current_thread() is threading.main_thread():
            threading.Thread(target=_end_when_serving, args=(service, check), daemon=True).start()
        start(service)

    return wrapper


def _recording(start: Callable[[Listener], None]) -> Callable[[Listener], None]:
    def wrapper(listener: Listener) -> None:
        started_listeners.append(listener)
        start(listener)

    return wrapper


def main(examples_file: str) -> int:
    Server.__init__ = _on_any_port(Server.__init__)
    Server.start = _serve_briefly(Server.start, _fetch_page)
    ListenerServer.start = _serve_briefly(ListenerServer.start, None)
    Listener.start = _recording(Listener.start)
    with open(examples_file, encoding="utf-8") as f:
        examples = json.load(f)
    namespace: dict[str, Any] = {"__name__": "__main__", **PLACEHOLDERS}
    try:
        for example in examples:
            where = f"{example['doc']}:{example['line']}"
            # blank lines first, so that a traceback's line numbers are the page's
            code = compile("\n" * (example["line"] - 1) + example["code"], example["doc"], "exec")
            try:
                exec(code, namespace)
                if errors:
                    raise errors[0]
            except BaseException:
                print(f"failed {where}", flush=True)
                traceback.print_exc()
                return 1
            print(f"ran {where}", flush=True)
    finally:
        for listener in started_listeners:
            listener.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
