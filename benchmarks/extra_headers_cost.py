#!/usr/bin/env python3
"""What ``--header`` and ``--cors`` cost per request, in the ASGI app alone (no socket, no uvicorn).

Calls the app ``execlib serve`` builds, with and without ``--header "X-Test: 1" --cors``, for a
cached 2 KB page, in one process and on one event loop, rounds interleaved, and prints the best
microseconds per request of each. Over a socket (``static_throughput.py --headers``) the same cost
is lost in the noise of a shared machine; here it is what the middleware adds, and nothing else.

Usage::

    python benchmarks/extra_headers_cost.py [--requests 20000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

from execlib.server.app import Dispatcher, build_asgi
from execlib.server.static import StaticSite

SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/page.html",
    "raw_path": b"/page.html",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1")],
}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    pass


async def requests(app: Any, count: int) -> None:
    for _ in range(count):
        await app(dict(SCOPE), receive, send)


def per_request(app: Any, count: int) -> float:
    started = time.perf_counter()
    asyncio.run(requests(app, count))
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per timing (default 20000)")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds; the best is kept (default 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execlib-bench-") as folder:
        with open(os.path.join(folder, "page.html"), "wb") as f:
            f.write(b"<p>x</p>" * 256)  # 2 KB
        site = StaticSite(folder, inject=False)
        dispatcher = Dispatcher(folder, site, None, inject=False)
        apps = {
            "execlib": build_asgi(dispatcher),
            "execlib --header 'X-Test: 1' --cors": build_asgi(dispatcher, ["X-Test: 1"], cors=True),
        }
        best = dict.fromkeys(apps, float("inf"))
        for _ in range(args.rounds):  # interleaved: load drifting on a shared machine hits both alike
            for name, app in apps.items():
                best[name] = min(best[name], per_request(app, args.requests))
    plain, extra = best.values()
    for name, micros in best.items():
        print(f"{name:<36} {micros:6.2f} us/request")
    print(f"added by the middleware: {extra - plain:.2f} us/request")


if __name__ == "__main__":
    main()
