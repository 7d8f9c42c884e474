"""The start line of ``execlib serve``: where to open the site, as text for people or JSON for tools.

Text: ``Serving ROOT at URL (LOOP[; BACKEND][; port 8000 was in use])`` (the backend when not
uvicorn), then one ``  on the network: URL`` line per address another machine can use when the
host is a wildcard (``0.0.0.0``, ``::``), and one ``  /PREFIX/ serves DIR`` line per mounted folder.
JSON (``--banner json``, or ``--log-format json``): one object on one line, so a tool that starts
execlib reads where it is instead of scraping text; its keys are documented in docs/cli.rst.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..netaddrs import AddressLister, interface_addresses, reachable_urls

if TYPE_CHECKING:
    from ..config import CommandOptions, Origin
    from ..server import Server


def served_urls(server: Server, addresses: AddressLister = interface_addresses) -> list[str]:
    """The URLs the bound ``server`` is reached at: the one to open first, then the network's."""
    bound = server.bound_addr
    if bound is None:
        raise RuntimeError("the server is not bound yet")
    return reachable_urls(bound[0], bound[1], addresses, server.scheme)


def config_sources(origins: Mapping[str, Origin]) -> dict[str, str]:
    """Each option not left at its default, and where it was set: ``{"port": "flag --port"}``."""
    return {name: f"{origin.kind} {origin.label}" for name, origin in origins.items() if origin.kind != "default"}


def start_line(
    server: Server,
    root: str,
    command: CommandOptions,
    *,
    fell_back_from: int | None = None,
    origins: Mapping[str, Origin] | None = None,
    addresses: AddressLister = interface_addresses,
) -> str:
    urls = served_urls(server, addresses)
    loop = server.loop_name or "asyncio"
    if command.json_banner:
        fields: dict[str, Any] = {
            "url": urls[0],
            "urls": urls,
            "root": root,
            "mounts": _mounts(server),
            "pid": os.getpid(),
            "version": __version__,
            "loop": loop,
            "backend": server.backend,
            "config_sources": config_sources(origins or {}),
            "port_fallback_from": fell_back_from,
        }
        if server.config.proxy is not None:
            fields["proxy"] = server.config.proxy
        if server.app_mode is not None:
            live = server.app_mode.supervisor.live
            fields["app"] = server.config.app
            fields["workers"] = live.pids if live is not None else []
            fields["reload"] = server.app_mode.reload
        return json.dumps(fields)
    notes = [loop] + ([server.backend] if server.backend != "uvicorn" else [])  # uvicorn: the usual, unsaid
    notes += [f"port {fell_back_from} was in use"] if fell_back_from is not None else []
    served = root
    if server.config.proxy is not None:
        # proxy mode: the backend is what is served; ROOT only when it serves files in front of it
        served = f"{server.config.proxy} (and {root})" if server.static_site is not None else server.config.proxy
    if server.app_mode is not None:
        app = f"app {server.config.app}"
        served = f"{app} (and {root})" if server.static_site is not None else app
        notes += [] if server.app_mode.reload else ["no reload"]
    lines = [f"Serving {served} at {urls[0]} ({'; '.join(notes)})"]
    lines += [f"  on the network: {url}" for url in urls[1:]]
    # what else is served, and from where: a mount pointing at the wrong folder shows at once
    lines += [f"  {prefix.rstrip('/')}/ serves {os.fspath(path)}" for prefix, path in server.mounts]
    return "\n".join(lines)


def _mounts(server: Server) -> list[dict[str, str]]:
    return [{"prefix": prefix, "path": os.fspath(path)} for prefix, path in server.mounts]
