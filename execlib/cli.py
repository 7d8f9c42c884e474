"""Command line: parses arguments and calls into the library, nothing more.

Every error a user can cause becomes one line on stderr and a non-zero exit
status (``ExeclibError.exit_code``), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ExeclibError

PROG = "execlib"


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?", default=".", help="folder to serve (default: the current folder)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1, or $EXECLIB_HOST)")
    parser.add_argument(
        "--port", default=None, help="port to listen on (default 8000, or $EXECLIB_PORT; 0 picks a free one)"
    )
    parser.add_argument("--no-livereload", action="store_true", help="do not inject the live-reload client")
    parser.add_argument("--follow-symlinks", action="store_true", help="serve symlinks that point outside ROOT")
    parser.add_argument("--fallback", metavar="FILE", help="page served for unknown extensionless paths (SPA)")
    parser.add_argument("--open", action="store_true", help="open the default browser once ready")
    parser.add_argument("-q", "--quiet", action="store_true", help="no access log, errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="A development server with live reload.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser("serve", help="serve a folder with live reload")
    _add_serve_options(serve)
    serve.set_defaults(handler=_serve)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .serve_command import run_serve

    return run_serve(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ExeclibError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
