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

from ..config import (
    ALL_OPTIONS,
    COMMAND_OPTIONS,
    FILE_OPTIONS,
    CommandOptions,
    Origin,
    Resolved,
    ServerConfig,
    load_config,
)
from ..errors import AlreadyServedError, ConfigError
from ..log import configure_logging, hold_access_log
from . import OPTION_FLAGS

logger = logging.getLogger("execlib")

# the flags of `execlib serve` whose names are not "--" + the option's name
_FLAG_NAMES = {"root": "ROOT", "livereload": "--no-livereload", **OPTION_FLAGS}


def config_from_args(args: argparse.Namespace) -> Resolved:
    """The ServerConfig of ``execlib serve`` (and ``start``, ``config``): flags > $EXECLIB_* > file > defaults.

    The command line's own options (``--open``, ``-q``, ``-v``, ``--log-format``) are resolved the
    same way, into ``resolved.command``.
    """
    _split_open_and_root(args)
    flags: dict[str, object] = {name: getattr(args, name, None) for name in ALL_OPTIONS}
    flags["livereload"] = False if args.no_livereload else None
    return load_config(
        flags, config_file=args.config, use_files=not args.no_config, flag_names=_FLAG_NAMES, command=True
    )


def _split_open_and_root(args: argparse.Namespace) -> None:
    """``--open`` takes an optional URL path, so ``serve --open site`` would read ``site`` as one:
    with no folder given, a value that does not start with ``/``, or names a folder, is the folder."""
    value = getattr(args, "open", None)
    if not isinstance(value, str):
        return
    if getattr(args, "root", None) is None and (not value.startswith("/") or os.path.isdir(value)):
        args.root, args.open = value, True
    elif not value.startswith("/"):
        raise ConfigError(f"--open {value}: the page to open must be a URL path starting with / (--open /{value})")


def resolve_host_port(host: str | None, port: str | int | None) -> tuple[str, int]:
    """Explicit values win over $EXECLIB_HOST / $EXECLIB_PORT, which win over the defaults."""
    config = load_config({"host": host, "port": port}, use_files=False).config
    return config.host, config.port


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


def open_browser(url: str, browser: str | None = None) -> None:
    """Open ``url`` in the user's browser (or ``browser``, a name ``webbrowser`` knows), or say
    that it did not happen (and where to go)."""
    import webbrowser  # here: only --open needs it, and it is start-up time

    try:
        opened = webbrowser.get(browser).open(url) if browser else webbrowser.open(url)
    except Exception as exc:  # webbrowser raises what its launchers raise; none of it may end serving
        logger.debug("opening a browser failed: %r", exc)
        opened = False
    if not opened:
        print(f"execlib: warning: could not open a browser; open {url} yourself", file=sys.stderr, flush=True)


def run_serve(args: argparse.Namespace) -> int:
    _check_build_quoting(args)
    resolved = config_from_args(args)  # first: -q, -v and --log-format may come from a file
    config = resolved.config
    for name in COMMAND_OPTIONS:
        # written back for what reads them from args (serve_folder's --open); only here: `execlib
        # start` passes its own flags on unchanged to the child, which resolves the same sources
        setattr(args, name, getattr(resolved.command, name))
    configure_logging(-1 if args.quiet else 1 if args.verbose else 0, args.log_format)
    check_host(config.host)
    return serve_folder(args, config, command=resolved.command, origins=resolved.origins)


def run_config(args: argparse.Namespace) -> int:
    """``execlib config``: each option's effective value and its source, as text or JSON."""
    import json

    resolved = config_from_args(args)
    shown = {name: _plain(getattr(resolved.config, name)) for name in FILE_OPTIONS}
    if shown.get("ssl_keyfile_password") is not None:
        shown["ssl_keyfile_password"] = "***"  # a secret: where it came from is shown, never the value
    shown.update({name: getattr(resolved.command, name) for name in COMMAND_OPTIONS})
    if args.json:
        options = {name: {"value": value, "source": _source(resolved, name)} for name, value in shown.items()}
        print(json.dumps({"file": resolved.file, "options": options}, indent=2), flush=True)
        return 0
    print(f"config file: {resolved.file or '(none)'}", flush=True)
    width = max(map(len, shown))
    for name, value in shown.items():
        print(f"{name:<{width}} = {json.dumps(value)}  ({_source(resolved, name)})", flush=True)
    return 0


def _plain(value: object) -> object:
    """``value`` as JSON can show it (paths as strings, tuples as lists)."""
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _source(resolved: Resolved, name: str) -> str:
    origin = resolved.origins[name]
    return origin.kind if origin.kind == "default" else f"{origin.kind} {origin.label}"


def _check_build_quoting(args: argparse.Namespace) -> None:
    if args.build is not None and args.root is not None and not os.path.exists(args.root) and _root_follows_build(args):
        # `--build make html` takes "html" as the folder to serve: not a folder to create
        from . import build_quoting_hint

        raise ConfigError(f"folder not found: {args.root} ({build_quoting_hint(args.build, [args.root])})")


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


def serve_folder(
    args: argparse.Namespace,
    config: ServerConfig,
    *,
    command: CommandOptions | None = None,
    origins: dict[str, Origin] | None = None,
) -> int:
    """Serve with a ``Server`` made of ``config``, in the foreground, with the command line's
    output (the start line, --open, the network warning) and its process options.

    ``origins`` (where each option came from) decide whether the port may fall back to the next
    free one: only when nobody chose it. ``command`` holds --open, --browser and --banner.
    """
    from ..lifecycle import Lifecycle
    from ..server import Server
    from .banner import served_urls, start_line

    command = command or CommandOptions(open=bool(getattr(args, "open", False)))
    root, host = os.fspath(config.root), config.host
    port_origin = (origins or {}).get("port")
    lifecycle = Lifecycle.from_args(args, port_fallback=port_origin is not None and port_origin.kind == "default")

    release_access_log = hold_access_log()  # the start line is stdout's first line (log.py)

    def when_ready(server: Server) -> None:
        # The start line means "open it now": said once files are watched too, so that a tool
        # reading it (or a user) changing a file at once is sure to see the change.
        try:
            if not server.wait_ready() or server.fatal_error is not None:
                return  # it stopped before getting there, and says why itself
            line = start_line(server, root, command, fell_back_from=lifecycle.fell_back_from, origins=origins)
            print(line, flush=True)
        finally:
            release_access_log()
        if command.open_path is not None:
            open_browser(page_url(served_urls(server)[0], command.open_path), command.browser)

    def announce(server: Server) -> None:
        if not is_loopback(host):  # said once the socket is bound: a failed bind exposed nothing
            print(
                f"execlib: warning: listening on {host}: {root} is now visible to other machines on the network",
                file=sys.stderr,
                flush=True,
            )
        # a thread: serving starts only after this returns, and a browser command may only return
        # when the browser is closed
        threading.Thread(target=when_ready, args=(server,), name="execlib-start-line", daemon=True).start()

    server = Server(config=config, pre_serve=announce)
    try:
        lifecycle.run(server)  # serves; PID/port files, single instance, port holder, --replace
    except AlreadyServedError as error:
        if command.open_path is None:
            raise
        # `execlib serve --open` again in the same folder: show the server that is already there
        print(f"{root} is already served at {error.url}; opening it", flush=True)
        open_browser(page_url(error.url, command.open_path), command.browser)
    return 0


def page_url(base: str, path: str) -> str:
    """``base`` (a server's ``http://host:port/``) with the URL path ``path``."""
    return base.rstrip("/") + "/" + path.lstrip("/")
