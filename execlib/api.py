"""The Python API for running a server: ``serve()`` in this process, ``serve_background()`` detached.

Build tools call these instead of the command line; both make a ServerConfig of their arguments over
the $EXECLIB_* variables, like ``execlib serve`` does (but read no config file: the embedding tool
decides its options), and both can keep a PID file so ``execlib stop`` / ``execlib.stop()`` find
the server again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .config import OPTION_NAMES, ServerConfig, load_config, normal_headers
from .lifecycle import DEFAULT_START_TIMEOUT, Lifecycle, precheck_port, replace_servers, start_detached
from .mounts import checked_mounts
from .process import RunFiles, already_running_error, running_server

if TYPE_CHECKING:
    from .server.server import Server


def serve(
    root_or_target: str | os.PathLike[str] | Server | Any = ".",
    *,
    foreground: bool = True,
    host: str | None = None,
    port: int | str | None = None,
    pid_path: str | os.PathLike[str] | None = None,
    single_instance: bool = True,
    replace: bool = False,
    pre_serve: Callable[[Server], None] | None = None,
    **server_options: Any,
) -> str:
    """Serve a folder, an app (``"main:app"`` or an app object), or a ready-made ``Server``; return its URL.

    An import string (``module:attribute``) or an ASGI/WSGI app object puts the server in app
    mode (docs/app.rst): the app runs in worker processes (``workers=``), restarted when its
    Python files change (``reload=``, on for an import string); ``root=`` then serves a folder
    in front of it.

    ``foreground=True`` blocks until the server shuts down (Ctrl-C / SIGTERM in the main thread,
    ``Server.shutdown()``, or ``execlib.stop(pid_path)`` from another thread) and returns the URL it
    served on. ``foreground=False`` serves from a daemon thread and returns the URL once requests are
    being answered. ``pid_path`` writes a PID file and a port file beside it, removed when serving
    ends; with ``single_instance`` a live server already owning that file raises AlreadyRunningError.
    ``replace`` stops an execlib server holding the port (or the PID file) and takes its place, logging
    a warning that names it (pid, root, URL).
    ``pre_serve`` is called with the Server once bound (capture it to call ``shutdown()`` later).
    ``server_options`` go to ``Server`` (``livereload``, ``fallback``, ``follow_symlinks``, ...).
    """
    from .server.server import Server

    if isinstance(root_or_target, Server):
        if host is not None or port is not None or server_options:
            raise TypeError("serve(): host, port and server options belong to the Server passed in")
        server = root_or_target
        if pre_serve is not None:
            server.pre_serve = pre_serve
    else:
        root, server_options = _app_or_root(root_or_target, server_options)
        config, runtime = _api_config(root, host, port, server_options)
        server = Server(config=config, pre_serve=pre_serve, **runtime)

    lifecycle = Lifecycle(pid_path, single_instance=single_instance, replace=replace)
    if foreground:
        lifecycle.run(server)
        return server.url

    lifecycle.prepare(server)
    try:
        server.start_in_thread()
    except BaseException:
        lifecycle.release()
        raise

    def release_when_done() -> None:
        server.wait()
        lifecycle.release()

    # the files must go when serving ends, however it ends (shutdown(), stop(), a listener failing)
    threading.Thread(target=release_when_done, name="execlib-pidfile", daemon=True).start()
    return server.url


def _app_or_root(target: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``serve(target)``'s ROOT and options: an import string or an app object is app mode's app."""
    from .app.target import looks_like_import_string

    is_path = isinstance(target, (str, os.PathLike))
    if is_path and not (isinstance(target, str) and looks_like_import_string(target) and not os.path.exists(target)):
        return target, options
    if "app" in options:
        raise TypeError("serve(): pass the app once, as the first argument or as app=")
    options = {**options, "app": target}
    root = options.pop("root", None)
    if root is None:
        options["static"] = options.get("static", False)  # no folder of the current directory in front of it
        root = "."
    return root, options


def _api_config(
    root: str | os.PathLike[str], host: str | None, port: int | str | None, options: dict[str, Any]
) -> tuple[ServerConfig, dict[str, Any]]:
    """The ServerConfig of an API call (its arguments over $EXECLIB_*; config files are the command
    line's), and the Server arguments that are not options (listeners, a loop)."""
    given = {name: value for name, value in options.items() if name in OPTION_NAMES}
    runtime = {name: value for name, value in options.items() if name not in OPTION_NAMES}
    resolved = load_config({"root": root, "host": host, "port": port, **given}, use_files=False)
    return resolved.config, runtime


# serve_background() keyword -> how it appears on the `execlib serve` command line
_FLAG_OPTIONS = {
    "follow_symlinks": "--follow-symlinks",
    "clean_urls": "--clean-urls",
    "cors": "--cors",
    "https": "--https",
    "quiet": "--quiet",
    "verbose": "--verbose",
    "factory": "--factory",
}
_VALUE_OPTIONS = {
    "fallback": "--fallback",
    "log_format": "--log-format",
    "browser": "--browser",
    "event_loop": "--loop",
    "banner": "--banner",
    "proxy": "--proxy",
    "proxy_host_header": "--proxy-host-header",
    "proxy_timeout": "--proxy-timeout",
    "workers": "--workers",
    "interface": "--interface",
    "app_startup_timeout": "--app-startup-timeout",
}


_TLS_FILES = ("ssl_certfile", "ssl_keyfile", "ssl_keyfile_password")


def _tls_arg(name: str, value: Any) -> list[str]:
    if value is None or name == "ssl_keyfile_password":
        return []  # the password goes to the child through its environment (serve_background), never its argv
    return ["--" + name.replace("_", "-"), os.path.abspath(os.fspath(value))]  # the child may run elsewhere


def _serve_args(server_options: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in server_options.items():
        if name in _FLAG_OPTIONS:
            args += [_FLAG_OPTIONS[name]] if value else []
        elif name in _VALUE_OPTIONS:
            args += [_VALUE_OPTIONS[name], str(value)] if value is not None else []
        elif name in _TLS_FILES:
            args += _tls_arg(name, value)
        else:
            args += _other_arg(name, value)
    return args


def _other_arg(name: str, value: Any) -> list[str]:
    """The ``execlib serve`` words of an option that is not a plain flag or value."""
    if name == "livereload":
        return [] if value else ["--no-livereload"]
    if name == "reload":
        return [] if value is None else ["--reload" if value else "--no-reload"]
    if name == "open":  # a page to open (a URL path): "=" keeps it off ROOT's place
        return [f"--open={value}"] if isinstance(value, str) else ["--open"] if value else []
    if name == "app":
        return ["--app", str(value)]
    if name == "app_dir":  # absolute: the child may run elsewhere
        return [] if value is None else ["--app-dir", os.path.abspath(os.fspath(value))]
    if name == "reload_dirs":  # checked (absolute) by the app branch of serve_background()
        return [word for folder in value for word in ("--reload-dir", folder)]
    if name == "headers":  # checked here: a list of pairs has no one-word form
        return [word for header in normal_headers(value) for word in ("--header", header)]
    if name == "mounts":  # absolute: the child runs in another folder
        return [word for prefix, folder in checked_mounts(value) for word in ("--mount", f"{prefix}={folder}")]
    raise TypeError(
        f"serve_background() got an unexpected option {name!r}; pass other 'execlib serve' options as extra_args=[...]"
    )


def serve_background(
    root: str | os.PathLike[str] | Any = ".",
    *,
    host: str | None = None,
    port: int | str | None = None,
    pid_path: str | os.PathLike[str] | None = None,
    single_instance: bool = True,
    replace: bool = False,
    timeout: float = DEFAULT_START_TIMEOUT,
    extra_args: Sequence[str] = (),
    **server_options: Any,
) -> str:
    """Start a detached ``execlib serve`` process that outlives the caller; return its URL once healthy.

    It runs in its own session with its output in the log file next to the PID file (default
    ``.execlib.pid`` / ``.execlib.log`` in the current folder). Stop it with ``execlib.stop(pid_path)``
    or ``execlib stop``. Raises AlreadyRunningError when a live server owns the PID file (unless
    ``single_instance=False`` or ``replace``), and RuntimeError (``StartError``) with the log's last
    lines when the server exits early or is not healthy within ``timeout`` seconds.

    ``root`` may be an app instead, as for ``serve()``: an import string or an app object (the
    child imports it by name).
    """
    root, server_options = _app_or_root(root, server_options)
    checked = {name: value for name, value in server_options.items() if name in OPTION_NAMES}
    config = load_config({"root": root, "host": host, "port": port, **checked}, use_files=False).config
    if config.app is not None:
        # as checked: an app object is named by its import string, a file path made absolute
        server_options = {
            **server_options,
            "app": config.app,
            "app_dir": config.app_dir,
            "reload": config.reload,
            "reload_dirs": config.reload_dirs,
        }
        server_options.pop("static", None)
    args = _serve_args(server_options)  # an unknown option is a TypeError before anything else
    resolved_host, resolved_port = config.host, config.port
    root_path = os.path.abspath(os.fspath(config.root))
    files = RunFiles.for_pid_file(pid_path)
    if replace:
        # here rather than in the detached child, so the warnings naming the stopped servers reach
        # this process's logging instead of the child's log file
        replace_servers(files, resolved_host, resolved_port)
    elif single_instance:
        # the child checks again, atomically; this early check gives the clear error without a spawn
        owner = running_server(files)
        if owner is not None:
            raise already_running_error(files, owner)
    precheck_port(resolved_host, resolved_port, replace=replace)
    served = [root_path] if config.static else []  # app mode with no ROOT: nothing in front of the app
    args = [*served, "--host", resolved_host, "--port", str(resolved_port), *args]
    if "--config" not in extra_args:
        args.append("--no-config")  # like serve(): the child takes its options from here, not from a file
    if not single_instance:
        args.append("--no-single-instance")
    if replace:
        args.append("--replace")
    args += list(extra_args)
    # checked here, and the local CA made once, before the child: a bad certificate raises in the caller
    from .tls import resolve_tls

    scheme = "https" if resolve_tls(config) is not None else "http"
    password = config.ssl_keyfile_password
    env = {"EXECLIB_SSL_KEYFILE_PASSWORD": password} if password is not None else None
    _, url = start_detached(args, host=resolved_host, pid_path=files.pid, timeout=timeout, env=env, scheme=scheme)
    return url
