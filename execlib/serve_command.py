"""``execlib serve``: the library calls behind the command, with terminal output."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import threading
import webbrowser

from .errors import ConfigError
from .log import configure_logging

logger = logging.getLogger("execlib")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def parse_port(value: str | int, source: str = "--port") -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source} must be a number from 0 to 65535, not {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source} {port} is out of range: use 0-65535 (0 picks a free port)")
    return port


def resolve_host_port(host: str | None, port: str | int | None) -> tuple[str, int]:
    """Explicit options win over $EXECLIB_HOST / $EXECLIB_PORT, which win over the defaults."""
    if host is None:
        host = os.environ.get("EXECLIB_HOST") or DEFAULT_HOST
    if port is None:
        env_port = os.environ.get("EXECLIB_PORT")
        port = parse_port(env_port, "EXECLIB_PORT") if env_port else DEFAULT_PORT
    return host, parse_port(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    configure_logging(-1 if args.quiet else 1 if args.verbose else 0, args.log_format)
    host, port = resolve_host_port(args.host, args.port)
    if not os.path.exists(args.root):
        raise ConfigError(f"folder not found: {args.root}")
    if not os.path.isdir(args.root):
        raise ConfigError(f"not a folder: {args.root}")
    if not is_loopback(host):
        print(
            f"execlib: warning: listening on {host}: {args.root} is now visible to other machines on the network",
            file=sys.stderr,
            flush=True,
        )

    from .server import Server

    def announce(server: Server) -> None:
        print(f"Serving {args.root} at {server.url}", flush=True)
        if args.open:
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()

    server = Server(
        args.root,
        host=host,
        port=port,
        livereload=not args.no_livereload,
        follow_symlinks=args.follow_symlinks,
        fallback=args.fallback,
        pre_serve=announce,
        watch=args.watch,
        ignore=args.ignore,
        delay=args.delay,
        poll=args.poll,
        gitignore=args.gitignore,
        build=args.build,
        build_timeout=args.build_timeout,
        build_on_start=args.build_on_start,
    )
    from .lifecycle import Lifecycle

    Lifecycle.from_args(args).run(server)  # serves; PID/port files, single instance, port holder, --replace
    return 0
