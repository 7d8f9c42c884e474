"""``execlib serve``: the library calls behind the command, with terminal output."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import socket
import sys
import threading
import webbrowser
from typing import Any

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


def check_host(host: str) -> None:
    """Raise ConfigError (naming ``--host``) unless this machine can listen on ``host`` at all.

    Done before anything else is set up, so that an address of another machine, a typo or an
    empty value is a bad option, not a failure after a warning about being visible on the network.
    A port that is taken is another matter, found out when the server binds its own.
    """
    if not host.strip():
        raise ConfigError(f"--host {host!r} is empty: give a host name or an address (127.0.0.1, ::1, 0.0.0.0)")
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host} is not a known host name or address ({exc.strerror})") from None
    family, socktype, proto, _, address = infos[0]
    with socket.socket(family, socktype, proto) as probe:
        try:
            probe.bind(address)  # port 0: never conflicts with anything
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"--host {host} is not an address of this machine; use 127.0.0.1, or 0.0.0.0 for every network"
                ) from None
            raise ConfigError(f"--host {host} cannot be listened on: {exc.strerror or exc}") from None


def open_browser(url: str) -> None:
    """Open ``url`` in the user's browser, or say that it did not happen (and where to go)."""
    try:
        opened = webbrowser.open(url)
    except Exception as exc:  # webbrowser raises what its launchers raise; none of it may end serving
        logger.debug("opening a browser failed: %r", exc)
        opened = False
    if not opened:
        print(f"execlib: warning: could not open a browser; open {url} yourself", file=sys.stderr, flush=True)


def run_serve(args: argparse.Namespace) -> int:
    configure_logging(-1 if args.quiet else 1 if args.verbose else 0, args.log_format)
    host, port = resolve_host_port(args.host, args.port)
    # With a build the folder may not exist yet (a project never built): the Server creates it.
    if not os.path.exists(args.root) and args.build is None:
        raise ConfigError(f"folder not found: {args.root}")
    if os.path.exists(args.root) and not os.path.isdir(args.root):
        raise ConfigError(f"not a folder: {args.root}")
    if args.build is not None and not os.path.exists(args.root) and _root_follows_build(args):
        # `--build make html` takes "html" as the folder to serve: not a folder to create
        from .cli import build_quoting_hint

        raise ConfigError(f"folder not found: {args.root} ({build_quoting_hint(args.build, [args.root])})")
    check_host(host)
    return serve_folder(
        args,
        args.root,
        host,
        port,
        livereload=not args.no_livereload,
        follow_symlinks=args.follow_symlinks,
        fallback=args.fallback,
        watch=args.watch,
        ignore=args.ignore,
        delay=args.delay,
        poll=args.poll,
        gitignore=args.gitignore,
        build=args.build,
        build_timeout=args.build_timeout,
        build_on_start=args.build_on_start,
        warnings_as_errors=args.warnings_as_errors,
    )


def _root_follows_build(args: argparse.Namespace) -> bool:
    """Whether ROOT was typed right after a one-word ``--build`` value (an unquoted command's next word)."""
    argv = list(getattr(args, "argv", None) or [])
    if " " in args.build.strip():
        return False
    for i, word in enumerate(argv):
        if word == "--build":
            return argv[i + 2 : i + 3] == [args.root]
        if word.startswith("--build="):
            return argv[i + 1 : i + 2] == [args.root]
    return False


def serve_folder(args: argparse.Namespace, root: str, host: str, port: int, **options: Any) -> int:
    """Serve ``root`` with a ``Server`` made of ``options``, in the foreground, with the command line's
    output (the ``Serving ... at URL`` line, --open, the network warning) and its process options."""
    from .server import Server

    def announce(server: Server) -> None:
        if not is_loopback(host):  # said once the socket is bound: a failed bind exposed nothing
            print(
                f"execlib: warning: listening on {host}: {root} is now visible to other machines on the network",
                file=sys.stderr,
                flush=True,
            )
        print(f"Serving {root} at {server.url}", flush=True)
        if args.open:
            # a thread: a browser command may only return when the browser is closed
            threading.Thread(target=open_browser, args=(server.url,), daemon=True).start()

    server = Server(root, host=host, port=port, pre_serve=announce, **options)
    from .lifecycle import Lifecycle

    Lifecycle.from_args(args).run(server)  # serves; PID/port files, single instance, port holder, --replace
    return 0
