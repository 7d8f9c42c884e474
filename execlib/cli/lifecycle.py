"""``execlib start``, ``execlib stop`` and ``execlib status``: the library calls behind them, with terminal output.

Nothing here imports uvicorn or FastAPI: the server runs in the detached child, so these commands
start in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..config import ServerConfig
from ..errors import ConfigError
from ..lifecycle import precheck_port, print_notice, replace_servers, start_detached
from ..process import RunFiles, already_running_error, running_server, status, stop
from ..tls import resolve_tls
from .serve import config_from_args

# `execlib start` options that are not passed on to the `execlib serve` child (or are passed explicitly)
# (the key's password goes by environment: a command line is visible to every user in `ps`)
_NOT_FORWARDED = frozenset({"root", "host", "port", "pid_file", "timeout", "help", "ssl_keyfile_password"})

# exit statuses of `execlib status`
STATUS_RUNNING, STATUS_STOPPED, STATUS_UNHEALTHY = 0, 1, 3


def parse_timeout(value: str | float, option: str = "--timeout") -> float:
    """Seconds from the command line; a clear error for anything but a positive number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds


def forwarded_serve_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The serve options given to ``execlib start``, rebuilt as ``execlib serve`` arguments.

    Generic over the parser's actions, so options added to the serve command later are passed on too.
    """
    out: list[str] = []
    for action in parser._actions:
        if action.dest in _NOT_FORWARDED or not action.option_strings:
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        option = max(action.option_strings, key=len)  # the long spelling reads better in `ps`
        if isinstance(action, argparse.BooleanOptionalAction):
            out.append(action.option_strings[0] if value else action.option_strings[1])
        elif isinstance(action, argparse._CountAction):
            out += [option] * int(value)
        elif action.nargs == 0:  # store_true / store_false / store_const
            out.append(option)
        elif action.nargs == "?":  # --open [PATH]: the bare flag, or its value joined by "="
            out.append(option if value == action.const else f"{option}={value}")
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                out += [option, str(item)]
        elif isinstance(value, (list, tuple)):
            out += [option, *map(str, value)]
        else:
            out += [option, str(value)]
    return out


def run_start(args: argparse.Namespace) -> int:
    # checked here, in full, so that a mistake is said on this terminal rather than in the child's log
    config = config_from_args(args).config
    host, port = config.host, config.port
    timeout = parse_timeout(args.timeout)
    root = os.path.abspath(config.root)
    files = RunFiles.for_pid_file(args.pid_file)
    if args.replace:
        # done here, not (only) in the detached child, whose output goes to the log: the user must see
        # on the terminal which servers were stopped
        replace_servers(files, host, port, announce=print_notice)
    elif not args.no_single_instance:
        # the child checks again atomically; checking here first avoids spawning it for nothing
        owner = running_server(files)
        if owner is not None:
            raise already_running_error(files, owner)
    precheck_port(host, port, replace=args.replace)
    # here too: a bad certificate is said on this terminal, and the local CA is made once, before the child
    scheme = "https" if resolve_tls(config) is not None else "http"
    # proxy or app mode with no ROOT serves no folder: the child must not be given one (the current
    # folder, the app's source among its files, would be served in front of the backend)
    served = [root] if config.static else []
    serve_args = [*served, "--host", host, "--port", str(port), *forwarded_serve_args(args.subparser, args)]
    password = config.ssl_keyfile_password
    env = {"EXECLIB_SSL_KEYFILE_PASSWORD": password} if password is not None else None
    pid, url = start_detached(
        serve_args, host=host, pid_path=files.pid, timeout=timeout, announce=print_notice, env=env, scheme=scheme
    )
    print(f"Serving {_what_is_served(config, root)} at {url} (pid {pid})", flush=True)
    print(f"log: {files.log}; stop it with: {_stop_hint(args.pid_file, files)}", flush=True)
    return 0


def _what_is_served(config: ServerConfig, root: str) -> str:
    """ROOT, or the app or backend (with ROOT when its files are served in front of it)."""
    front = f"app {config.app}" if config.app is not None else config.proxy
    if front is None:
        return root
    return f"{front} (and {root})" if config.static else front


def _stop_hint(pid_option: str | None, files: RunFiles) -> str:
    return "execlib stop" if pid_option is None else files.stop_command()


def run_stop(args: argparse.Namespace) -> int:
    result = stop(args.pid_file, parse_timeout(args.timeout))
    print(result.message, flush=True)
    return 0


def run_status(args: argparse.Namespace) -> int:
    if args.url is not None and not args.url.startswith(("http://", "https://")):
        raise ConfigError(f"--url must be an http:// or https:// URL, not {args.url!r}")
    state = status(args.pid_file, health_url=args.url)
    code = STATUS_STOPPED if not state.running else STATUS_RUNNING if state.healthy else STATUS_UNHEALTHY
    if args.json:
        json.dump({**state.to_dict(), "exit_status": code}, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return code
    if state.stale:
        print(f"stopped: stale PID file {state.pid_path} (no running execlib server has pid {state.pid})")
    elif not state.running:
        print(f"stopped: no PID file at {state.pid_path}")
    elif state.healthy:
        print(f"running: pid {state.pid} at {state.url} serving {state.root} (healthy)")
    else:
        where = state.url or "(no port file yet)"
        print(f"running: pid {state.pid} at {where}, but not healthy: its health endpoint did not answer")
    sys.stdout.flush()
    return code
