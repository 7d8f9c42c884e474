"""Command line: parses arguments and calls into the library, nothing more.

Every error a user can cause becomes one line on stderr and a non-zero exit
status (``ExeclibError.exit_code``), never a traceback.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import ConfigError, ExeclibError

PROG = "execlib"


POLL_HELP = "poll for changes (network, Docker and WSL mounts); default: poll when a watched folder is on one"


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    # Defaults are None ("not given") so that a config file or $EXECLIB_* can supply the option;
    # the real defaults are ServerConfig's.
    parser.add_argument("root", nargs="?", default=None, help="folder to serve (default: the current folder)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1, or $EXECLIB_HOST)")
    parser.add_argument(
        "--port", default=None, help="port to listen on (default 8000, or $EXECLIB_PORT; 0 picks a free one)"
    )
    parser.add_argument(
        "--no-livereload", action="store_true", default=None, help="do not inject the live-reload client"
    )
    parser.add_argument(
        "--follow-symlinks", action="store_true", default=None, help="serve symlinks that point outside ROOT"
    )
    parser.add_argument("--fallback", metavar="FILE", help="page served for unknown extensionless paths (SPA)")
    parser.add_argument(
        "--mount",
        action="append",
        default=None,
        dest="mounts",
        metavar="PREFIX=DIR",
        help="also serve (and watch) DIR at the URL prefix PREFIX, like /assets=../shared (repeatable)",
    )
    parser.add_argument(
        "--clean-urls",
        action="store_true",
        default=None,
        help="serve /about from about.html when there is no file or folder about (as GitHub Pages, Netlify)",
    )
    parser.add_argument(
        "--open",
        nargs="?",
        const=True,
        default=None,
        metavar="PATH",
        help="open a browser once ready, at PATH (a URL path such as /docs/) or the home page",
    )
    parser.add_argument("--browser", metavar="NAME", help="the browser --open starts (firefox, chromium, ...)")
    parser.add_argument("-q", "--quiet", action="store_true", default=None, help="no access log, errors only")
    parser.add_argument("-v", "--verbose", action="store_true", default=None, help="debug logging")
    parser.add_argument("--log-format", choices=("text", "json"), default=None, help="log line format")
    parser.add_argument(
        "--banner",
        choices=("text", "json"),
        default=None,
        help="the start line: text, or one JSON object for tools (default: json with --log-format json)",
    )
    parser.add_argument(
        "--loop",
        dest="event_loop",
        metavar="{auto,asyncio,uvloop}",
        default=None,
        help="event loop (default auto: uvloop when installed, with execlib[fast])",
    )
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=None,
        metavar="'NAME: VALUE'",
        help="add this header to every response (repeatable)",
    )
    parser.add_argument(
        "--cors", action="store_true", default=None, help="allow cross-origin requests: CORS headers, preflights"
    )
    _add_tls_options(parser)
    parser.add_argument(
        "--backend",
        metavar="{auto,uvicorn,hypercorn}",
        default=None,
        help="HTTP server (default auto: uvicorn, or Hypercorn with --http2; hypercorn needs execlib[http2])",
    )
    parser.add_argument(
        "--http2", action="store_true", default=None, help="offer HTTP/2 over TLS (with Hypercorn, execlib[http2])"
    )
    files = parser.add_mutually_exclusive_group()
    files.add_argument(
        "--config", metavar="FILE", help="read options from FILE (default: execlib.toml or pyproject.toml, upward)"
    )
    files.add_argument("--no-config", action="store_true", default=None, help="read no config file")
    reload = parser.add_argument_group("live reload")
    reload.add_argument(
        "--watch",
        action="append",
        default=None,
        metavar="PATH",
        help="also watch PATH (outside ROOT: templates, data); a change reloads every page (repeatable)",
    )
    reload.add_argument(
        "--ignore", action="append", default=None, metavar="GLOB", help="ignore changes matching GLOB (repeatable)"
    )
    reload.add_argument("--delay", type=float, default=None, metavar="MS", help="wait MS milliseconds before reloading")
    reload.add_argument(
        "--poll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=POLL_HELP,
    )
    reload.add_argument("--gitignore", action="store_true", default=None, help="ignore what .gitignore files ignore")
    proxy = parser.add_argument_group("proxy mode")
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        default=None,
        help="serve in front of the backend at URL (http://127.0.0.1:3000): what ROOT has no file for goes there",
    )
    proxy.add_argument(
        "--proxy-host-header",
        choices=("preserve", "rewrite"),
        default=None,
        help="the Host the backend is told: the browser's (preserve, the default) or the backend's own (rewrite)",
    )
    proxy.add_argument(
        "--proxy-timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds a request waits for the backend to accept a connection before the waiting page (5)",
    )
    app = parser.add_argument_group("app mode")
    app.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        default=None,
        help="serve the ASGI or WSGI app MODULE:ATTR (main:app) from worker processes; ROOT, if given, in front",
    )
    app.add_argument(
        "--app-dir", metavar="DIR", default=None, help="import the app from DIR (default: the current folder)"
    )
    app.add_argument("--factory", action="store_true", default=None, help="ATTR is a factory that returns the app")
    app.add_argument(
        "--reload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="restart the app when its Python files change (on by default in app mode)",
    )
    app.add_argument(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=None,
        metavar="DIR",
        help="also restart the app when Python files under DIR change (a package beside it; repeatable)",
    )
    app.add_argument("--workers", type=int, default=None, metavar="N", help="run N worker processes (1)")
    app.add_argument(
        "--interface", choices=("auto", "asgi", "wsgi"), default=None, help="the app's interface (auto: detected)"
    )
    app.add_argument(
        "--app-startup-timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds a worker may take to import the app and start (30)",
    )
    build = parser.add_argument_group("building")
    build.add_argument(
        "--build",
        metavar="COMMAND",
        help="run COMMAND (through the shell) when a --watch path changes; reload pages when it succeeds",
    )
    build.add_argument("--build-on-start", action="store_true", default=None, help="run the build once before serving")
    build.add_argument("--build-timeout", type=float, metavar="S", help="kill a build that runs longer than S seconds")
    build.add_argument(
        "--warnings-as-errors",
        action="store_true",
        default=None,
        help="a build that prints warnings shows them in an overlay",
    )


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("https")
    tls.add_argument(
        "--https",
        action="store_true",
        default=None,
        help="serve over TLS with a certificate from execlib's local CA (made on first use)",
    )
    tls.add_argument(
        "--ssl-certfile", metavar="FILE", help="serve over TLS with this certificate (PEM; wins over --https)"
    )
    tls.add_argument("--ssl-keyfile", metavar="FILE", help="the certificate's private key (default: in --ssl-certfile)")
    tls.add_argument(
        "--ssl-keyfile-password", metavar="PASSWORD", help="the key's password (or $EXECLIB_SSL_KEYFILE_PASSWORD)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="A development server with live reload.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser("serve", help="serve a folder with live reload")
    _add_serve_options(serve)
    serve.set_defaults(handler=_serve)
    _add_lifecycle_commands(commands, serve)
    _add_watch_command(commands)
    _add_preset_commands(commands)
    _add_config_command(commands)
    _add_https_command(commands)
    return parser


def _add_https_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    https = commands.add_parser(
        "https",
        help="the local certificate authority of --https: where it is, how to trust it",
        description="The local CA that --https issues certificates from, kept in execlib's data folder "
        "($EXECLIB_DATA_DIR, else ~/.local/share/execlib); each subcommand creates it if there is none yet.",
    )
    actions = https.add_subparsers(dest="https_command", metavar="ACTION")
    actions.required = True
    ca_path = actions.add_parser("ca-path", help="print the path of the CA certificate (PEM)")
    ca_path.set_defaults(handler=_https("run_ca_path"))
    trust = actions.add_parser(
        "trust",
        help="install the CA into the system trust store (as root), else print the commands to run",
        description="As root on Debian or Ubuntu, copy the CA to /usr/local/share/ca-certificates and run "
        "update-ca-certificates; otherwise print the commands that do it. Also prints the steps for the "
        "NSS stores of Chromium and Firefox. Exit status 0 when installed, 1 when only printed.",
    )
    trust.set_defaults(handler=_https("run_trust"))


def _https(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from . import https as https_command

        return int(getattr(https_command, name)(args))

    return handler


def _add_config_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser(
        "config",
        help="print every serve option's effective value and where it came from",
        description="Print the options 'execlib serve' would use with these arguments, and the source of each: "
        "a flag, an EXECLIB_* variable, a config file, or the default.",
    )
    _add_serve_options(config)
    config.add_argument("--json", action="store_true", help="print one JSON object")
    config.set_defaults(handler=_config)


def _config(args: argparse.Namespace) -> int:
    from .serve import run_config

    return run_config(args)


def _serve(args: argparse.Namespace) -> int:
    from .serve import run_serve

    return run_serve(args)


def _add_instance_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("process")
    group.add_argument(
        "--pid-file", metavar="PATH", help="write the pid to PATH and the bound port to PATH's .port companion"
    )
    group.add_argument(
        "--no-single-instance", action="store_true", help="start even if the PID file names a running server"
    )
    group.add_argument(
        "--replace", action="store_true", help="stop the execlib server holding the port or PID file, take its place"
    )


def _add_pid_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pid-file", metavar="PATH", help="the server's PID file (default: .execlib.pid)")


def _add_lifecycle_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], serve: argparse.ArgumentParser
) -> None:
    _add_instance_options(serve)

    start = commands.add_parser("start", help="start a server in the background (detached) and print its URL")
    _add_serve_options(start)
    _add_instance_options(start)
    start.add_argument("--timeout", default="10", metavar="SECONDS", help="how long to wait for it to be healthy")
    start.set_defaults(handler=_lifecycle("run_start"), subparser=start)

    stop = commands.add_parser("stop", help="stop the background server (SIGTERM, then SIGKILL)")
    _add_pid_file_option(stop)
    stop.add_argument("--timeout", default="10", metavar="SECONDS", help="seconds to wait before SIGKILL (10)")
    stop.set_defaults(handler=_lifecycle("run_stop"))

    status = commands.add_parser("status", help="is the server running and healthy? (exit 0 yes, 1 no, 3 not healthy)")
    _add_pid_file_option(status)
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    status.add_argument("--url", metavar="URL", help="ask this URL's health endpoint instead of the port file's")
    status.set_defaults(handler=_lifecycle("run_status"))


def _lifecycle(name: str) -> Callable[[argparse.Namespace], int]:
    # import on use: `execlib --help` must not pay for the lifecycle modules
    def handler(args: argparse.Namespace) -> int:
        from . import lifecycle as lifecycle_command

        return int(getattr(lifecycle_command, name)(args))

    return handler


def _add_preset_options(parser: argparse.ArgumentParser) -> None:
    """What ``execlib sphinx`` and ``execlib mkdocs`` share with ``serve``; the rest the preset decides."""
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1, or $EXECLIB_HOST)")
    parser.add_argument(
        "--port", default=None, help="port to listen on (default 8000, or $EXECLIB_PORT; 0 picks a free one)"
    )
    parser.add_argument("--open", action="store_true", help="open the default browser once ready")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, with every file event")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    parser.add_argument(
        "--watch", action="append", default=[], metavar="PATH", help="also rebuild when PATH changes (repeatable)"
    )
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="GLOB", help="ignore changes matching GLOB (repeatable)"
    )
    parser.add_argument("--delay", type=float, default=0, metavar="MS", help="wait MS milliseconds before rebuilding")
    parser.add_argument(
        "--poll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=POLL_HELP,
    )
    parser.add_argument("--build-timeout", type=float, metavar="S", help="kill a build that runs longer than S seconds")
    parser.add_argument(
        "--warnings-as-errors", action="store_true", help="a build that prints warnings shows them in an overlay"
    )
    parser.add_argument(
        "--cold", action="store_true", help="run the plain build command each time (no warm build process)"
    )
    _add_instance_options(parser)
    parser.set_defaults(tool_args=[])


def _add_preset_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sphinx = commands.add_parser(
        "sphinx",
        help="preview a Sphinx project: build, serve, rebuild on change",
        usage="%(prog)s [SOURCE] [OUTPUT] [options] [-- SPHINX-BUILD-OPTIONS...]",
        description="Build a Sphinx project's HTML, serve it with live reload, and rebuild when a source changes.",
    )
    sphinx.add_argument("source", nargs="?", help="the folder holding conf.py (default: found in ., source/, docs/)")
    sphinx.add_argument("output", nargs="?", help="the HTML output folder (default: _build/html or build/html)")
    _add_preset_options(sphinx)
    sphinx.set_defaults(handler=_preset("sphinx"))

    mkdocs = commands.add_parser(
        "mkdocs",
        help="preview an MkDocs project: build, serve, rebuild on change",
        usage="%(prog)s [PROJECT] [options] [-- MKDOCS-BUILD-OPTIONS...]",
        description="Build an MkDocs project, serve the site with live reload, and rebuild when a source changes.",
    )
    mkdocs.add_argument("project", nargs="?", help="the folder holding mkdocs.yml (default: the current folder)")
    mkdocs.add_argument("--site-dir", metavar="DIR", help="build into and serve DIR (default: mkdocs.yml's site_dir)")
    _add_preset_options(mkdocs)
    mkdocs.set_defaults(handler=_preset("mkdocs"))


def _preset(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from .preset import run_preset

        return run_preset(name, args)

    return handler


def _add_watch_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watch = commands.add_parser(
        "watch",
        help="run a command whenever files change",
        usage="%(prog)s PATH... [options] -- COMMAND [ARGS...]",
        description="Run COMMAND once per burst of changes under the PATHs, never two at once.",
    )
    watch.add_argument("paths", nargs="+", metavar="PATH", help="folder (or file) to watch")
    watch.add_argument("--glob", action="append", metavar="GLOB", help="only changes matching GLOB (repeatable)")
    watch.add_argument("--ignore", action="append", metavar="GLOB", help="ignore changes matching GLOB (repeatable)")
    watch.add_argument("--debounce", type=int, default=200, metavar="MS", help="quiet time before a run (200)")
    watch.add_argument(
        "--poll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=POLL_HELP,
    )
    watch.add_argument("--gitignore", action="store_true", help="ignore what .gitignore files ignore")
    watch.add_argument("-q", "--quiet", action="store_true", help="errors only")
    watch.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    watch.set_defaults(handler=_watch, watch_command=[])


def _watch(args: argparse.Namespace) -> int:
    from .watch import run_watch

    return run_watch(args)


def _after_build(argv: Sequence[str], word: str) -> bool:
    """Whether ``word`` comes after a ``--build`` option in ``argv``."""
    builds = [i for i, arg in enumerate(argv) if arg == "--build" or arg.startswith("--build=")]
    return bool(builds) and word in argv[builds[0] + 1 :]


# Commands whose words after ``--`` belong to another program: watch's COMMAND, a preset's tool options.
PASS_THROUGH = ("watch", "sphinx", "mkdocs")


def _split_watch_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """``execlib watch PATH... -- COMMAND ARGS``: what follows the first ``--`` is COMMAND, kept from argparse.

    The same for ``execlib sphinx ... -- -W`` and ``execlib mkdocs ... -- --strict``: those words
    go to the generator.
    """
    subcommand = next((arg for arg in argv if not arg.startswith("-")), None)
    if subcommand not in PASS_THROUGH or "--" not in argv:
        return argv, []
    split = argv.index("--")
    return argv[:split], argv[split + 1 :]


def build_quoting_hint(command: str, words: Sequence[str]) -> str:
    """What to say when the words after ``--build COMMAND`` look like the rest of an unquoted command."""
    return (
        f"--build takes one argument; quote a command with spaces: --build {shlex.quote(' '.join([command, *words]))}"
    )


#: options whose flag is not "--" + the option's name
OPTION_FLAGS = {"headers": "--header", "mounts": "--mount", "event_loop": "--loop", "reload_dirs": "--reload-dir"}


def _flag(option: str) -> str:
    return OPTION_FLAGS.get(option) or "--" + option.replace("_", "-")


def _shown(value: object) -> str:
    """A value as it would be typed on the command line (``-5``, not ``-5.0``)."""
    if isinstance(value, float):
        return f"{value:g}"
    return shlex.quote(str(value))


def error_message(error: ExeclibError, args: argparse.Namespace) -> str:
    """``error``'s message, with the parameters it names (``delay=``) shown as this command's flags.

    The library names its parameters as the Python API spells them; only what the user typed as an
    option is renamed, and only in the parts of the message execlib wrote (never in a value).
    """
    if not isinstance(error, ConfigError) or error.option is None or not hasattr(args, error.option):
        return str(error)

    def rename(match: re.Match[str]) -> str:
        return _flag(match.group(1)) if hasattr(args, match.group(1)) else match.group(0)

    problem = re.sub(r"\b([a-z][a-z_]*)=(?![\w'\"])", rename, error.problem)
    if error.value is True:  # a switch that cannot be on here: the flag alone says it
        return f"{_flag(error.option)} {problem}"
    return f"{_flag(error.option)} {_shown(error.value)} {problem}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv, watch_command = _split_watch_command(list(sys.argv[1:] if argv is None else argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        build = getattr(args, "build", None)
        if build is not None and _after_build(argv, extras[0]):
            # `--build make html`: argparse took "make" as COMMAND and has no place for "html"
            print(
                f"{PROG}: error: unrecognized arguments: {' '.join(extras)} ({build_quoting_hint(build, extras)})",
                file=sys.stderr,
                flush=True,
            )
            return 2
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    args.argv = argv
    if watch_command:
        if args.command == "watch":
            args.watch_command = watch_command
        else:
            args.tool_args = watch_command
    try:
        return int(args.handler(args) or 0)
    except ExeclibError as error:
        print(f"{PROG}: error: {error_message(error, args)}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
