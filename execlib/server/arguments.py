"""Checking ``Server``'s arguments, all in one place, before anything starts.

A mistake is a ConfigError naming the parameter as the caller wrote it (``port='8000' must be
...``), raised before anything starts: not a TypeError from deep inside, nor a surprise later
(``delay=-5`` used to fail only once the listener started, and a single ``watch`` string was read
one letter at a time). The command line shows the same errors with its flags.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Iterable
from typing import Any

from ..errors import ConfigError
from ..fspath import given_path
from ..listener import Listener
from .warm import WarmCommand

#: the Server parameters that are plain True/False switches
SWITCHES = (
    "static",
    "livereload",
    "follow_symlinks",
    "handle_signals",
    "poll",
    "gitignore",
    "build_on_start",
    "warnings_as_errors",
)


def check_server_arguments(args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Check ``Server``'s arguments (its ``locals()``); return its watch paths and ignore globs as lists."""
    _check_switches_and_address(args)
    _check_durations_and_limits(args)
    _check_callables(args)
    _check_listeners(args["managed_listeners"])
    watch, watch_paths = _watch_paths(args["watch"])
    ignore_globs = _ignore_globs(args["ignore"])
    _check_build_sources(args, watch, watch_paths)
    return watch_paths, ignore_globs


def _is_number(value: object, kind: type | tuple[type, ...] = (int, float)) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _check_switches_and_address(args: dict[str, Any]) -> None:
    for name in SWITCHES:
        if not isinstance(args[name], bool):
            raise ConfigError("must be True or False", option=name, value=args[name])
    if not isinstance(args["root"], (str, os.PathLike)):
        raise ConfigError("must be the path of a folder", option="root", value=args["root"])
    host = args["host"]
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("must be a host name or an address (127.0.0.1, ::1, 0.0.0.0)", option="host", value=host)
    port = args["port"]
    if not _is_number(port, int):
        raise ConfigError("must be an int from 0 to 65535 (0 picks a free port)", option="port", value=port)
    if not 0 <= port <= 65535:
        raise ConfigError("is out of range: use 0-65535 (0 picks a free port)", option="port", value=port)


def _check_durations_and_limits(args: dict[str, Any]) -> None:
    for name, unit in (("delay", "milliseconds"), ("graceful_timeout", "seconds")):
        if not _is_number(args[name]) or not args[name] >= 0:  # written so that NaN fails too
            raise ConfigError(f"must be a number of {unit}, 0 or more", option=name, value=args[name])
    timeout = args["build_timeout"]
    if timeout is not None and (not _is_number(timeout) or not timeout > 0):
        raise ConfigError("must be a number of seconds more than 0", option="build_timeout", value=timeout)
    header_timeout, max_header_bytes = args["header_timeout"], args["max_header_bytes"]
    if not _is_number(header_timeout) or not header_timeout > 0:
        raise ConfigError("must be a number of seconds more than 0", option="header_timeout", value=header_timeout)
    if not _is_number(max_header_bytes, int) or max_header_bytes < 1024:
        # below a browser's ordinary request head: every page would get 431
        raise ConfigError("must be an int of 1024 bytes or more", option="max_header_bytes", value=max_header_bytes)


def _check_callables(args: dict[str, Any]) -> None:
    build = args["build"]
    if (
        build is not None
        and not callable(build)
        and not isinstance(build, WarmCommand)
        and not (isinstance(build, str) and build.strip())
    ):
        raise ConfigError("must be a shell command or a callable", option="build", value=build)
    fallback = args["fallback"]
    if fallback is not None and not isinstance(fallback, (str, os.PathLike)):
        raise ConfigError("must be the path of a file in root", option="fallback", value=fallback)
    if args["pre_serve"] is not None and not callable(args["pre_serve"]):
        raise ConfigError("must be a callable taking the Server", option="pre_serve", value=args["pre_serve"])
    if args["loop"] is not None and not isinstance(args["loop"], asyncio.AbstractEventLoop):
        raise ConfigError("must be an asyncio event loop", option="loop", value=args["loop"])


def _check_listeners(listeners: object) -> None:
    if listeners is None:
        return
    if isinstance(listeners, (str, bytes)) or not isinstance(listeners, Iterable):
        raise ConfigError("must be a list of listeners", option="managed_listeners", value=listeners)
    # a one-shot iterator is left for Server.__init__ to read: only collections are looked into here
    for listener in listeners if isinstance(listeners, Collection) else ():
        if not isinstance(listener, Listener):
            raise ConfigError(
                "is not a Listener (router.get_listener() makes one)", option="managed_listeners", value=listener
            )


def _watch_paths(watch: object) -> tuple[list[Any], list[str]]:
    """(the watch paths as given, the same kept as paths for the listener)."""
    if isinstance(watch, (str, os.PathLike)):
        watch = [watch]  # one path; iterating a string would watch each of its letters
    elif isinstance(watch, bytes) or not isinstance(watch, Iterable):
        raise ConfigError("must be a path or a list of paths", option="watch", value=watch)
    given = list(watch)  # read once: it may be an iterator
    paths: list[str] = []
    for path in given:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError("must be a path or a list of paths", option="watch", value=path)
        if not os.path.exists(path):
            raise ConfigError("does not exist", option="watch", value=os.fspath(path))
        paths.append(given_path(path))
    return given, paths


def _ignore_globs(ignore: object) -> list[str]:
    if isinstance(ignore, (list, tuple)) and not ignore:
        return []
    from ..routers.path import check_globs  # wcmatch (tens of ms): imported when there are globs to check

    return check_globs("ignore", ignore)


def _check_build_sources(args: dict[str, Any], watch: list[Any], watch_paths: list[str]) -> None:
    build = args["build"]
    if build is None:
        return
    if not watch_paths:
        raise ConfigError("needs watch= paths: the sources it rebuilds from", option="build", value=build)
    root = os.path.realpath(args["root"])
    for given, path in zip(watch, watch_paths, strict=True):
        if os.path.realpath(path) == root:
            raise ConfigError(
                "is the served folder itself, which build= writes into: watch the sources instead",
                option="watch",
                value=os.fspath(given),
            )
