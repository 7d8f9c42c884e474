"""``ServerConfig``: every option of ``execlib serve``, checked in one place, and where each came from.

The command line, ``serve()``, ``serve_background()``, ``execlib start`` and ``Server`` all build a
ServerConfig, so each check (a port out of range, a missing folder) is written once, here. A
mistake is a ConfigError naming the parameter as the Python API spells it (``port='x' must be
...``); the command line shows its flags instead, and ``load_config`` names the file or the
environment variable a bad value came from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .fspath import given_path
from .mounts import checked_mounts, rebased_mounts

if TYPE_CHECKING:
    from .server.build import BuildTarget

# Seconds a connection may take to send a whole request head, counted from the moment it opens
# or from the first byte of its next request. uvicorn's keep-alive timeout only covers the wait
# between requests, and stops at the first byte: without this, a client that never sends a
# request, or sends its headers a byte at a time (slowloris), holds its connection forever.
HEADER_TIMEOUT = 10.0

# Bytes a request head may take: the target and the header lines. Browsers send a few KB;
# cookie-heavy sites rarely reach 16 KB. httptools (which uvicorn uses) keeps no limit at all.
MAX_HEADER_BYTES = 64 * 1024

#: the options that are plain True/False switches
#: the event loops a server can run on ("auto": uvloop when installed, with ``execlib[fast]``)
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
#: the HTTP servers a Server can run on ("auto": uvicorn, or Hypercorn for HTTP/2; docs/backends.rst)
SERVER_BACKENDS = ("auto", "uvicorn", "hypercorn")

SWITCHES = (
    "static",
    "livereload",
    "follow_symlinks",
    "clean_urls",
    "handle_signals",
    "poll",
    "gitignore",
    "build_on_start",
    "warnings_as_errors",
    "cors",
    "https",
    "http2",
    "factory",
)

#: switches whose None means "decide by what is found" (poll: by the watched folders' file systems)
NONE_MEANS_AUTO = ("poll",)

#: what ``headers=`` takes: "Name: value" strings (or one), a mapping, or (name, value) pairs
HeadersOption = str | Mapping[str, str] | Iterable["str | tuple[str, str]"]

# An HTTP field name is a token (RFC 9110, section 5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_START = re.compile(r"\s*" + _TOKEN.pattern + r"\s*:")
# A value may hold tabs and any other character but the controls (CR, LF and NUL among them),
# and must be writable as Latin-1 octets: what an HTTP/1.1 header line is.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")

#: headers execlib computes for each response (framing, validators, ranges): a fixed value from
#: ``headers=`` would break 304s, Range requests or the connection itself, so they cannot be set
MANAGED_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "content-range",
        "accept-ranges",
        "etag",
        "last-modified",
        "date",
        "connection",
        "keep-alive",
        "upgrade",
        "trailer",
        "te",
    }
)


@dataclass(frozen=True)
class ServerConfig:
    """Every option of a ``Server`` (and of ``execlib serve``), validated when it is made.

    ``watch`` and ``ignore`` may be given as one string or any iterable; they are kept as tuples
    (``watch`` as paths). Raises ConfigError naming the first bad option.
    """

    root: str | os.PathLike[str] = "."
    host: str = "127.0.0.1"
    port: int = 8000
    static: bool = True
    livereload: bool = True
    follow_symlinks: bool = False
    fallback: str | None = None
    clean_urls: bool = False
    handle_signals: bool = True
    graceful_timeout: float = 1.0
    # given as any iterable (or one path / glob); kept as a tuple of str once checked
    watch: Iterable[str | os.PathLike[str]] | str = ()
    ignore: Iterable[str] | str = ()
    delay: float = 0
    #: None: poll the folders that lie where notifications miss changes (execlib.listeners.filesystems)
    poll: bool | None = None
    gitignore: bool = False
    build: BuildTarget | None = None
    build_timeout: float | None = None
    build_on_start: bool = False
    warnings_as_errors: bool = False
    header_timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES
    # other folders served at URL prefixes: "PREFIX=DIR" strings, (prefix, dir) pairs or a
    # {prefix: dir} mapping; kept as a tuple of (prefix, absolute dir) once checked
    mounts: Iterable[str | tuple[str, str | os.PathLike[str]]] | Mapping[str, str | os.PathLike[str]] = ()
    event_loop: str = "auto"
    # added to every response; kept as a tuple of "Name: value" strings once checked
    headers: HeadersOption = ()
    cors: bool = False
    # proxy mode (docs/proxy.rst): the backend's origin, kept as "scheme://host:port" once checked
    proxy: str | None = None
    proxy_host_header: str = "preserve"
    proxy_timeout: float = 5.0
    # TLS (docs/https.rst): a certificate from the local CA, or the user's own pair
    https: bool = False
    ssl_certfile: str | os.PathLike[str] | None = None
    ssl_keyfile: str | os.PathLike[str] | None = None
    ssl_keyfile_password: str | None = None
    # which HTTP server serves ("auto", "uvicorn", "hypercorn"), and whether it offers HTTP/2 (over TLS)
    backend: str = "auto"
    http2: bool = False
    # app mode (docs/app.rst): the user's ASGI/WSGI app as "module:attribute" (or an app object,
    # kept as the import string that names it), run in supervised worker processes
    app: Any = None
    app_dir: str | os.PathLike[str] | None = None
    factory: bool = False
    #: restart the workers when the app's Python files change; None: on for an import string,
    #: off for an app object (serve(app))
    reload: bool | None = None
    #: more folders whose Python files are the app's code (editable sibling packages); kept as a
    #: tuple of absolute paths once checked
    reload_dirs: Iterable[str | os.PathLike[str]] | str = ()
    workers: int = 1
    interface: str = "auto"
    app_startup_timeout: float = 30.0

    def __post_init__(self) -> None:
        _check_switches_and_address(self)
        _check_proxy(self)
        _check_app(self)
        _check_event_loop(self.event_loop)
        _check_backend(self.backend, self.http2)
        object.__setattr__(self, "headers", tuple(normal_headers(self.headers)))
        _check_durations_and_limits(self)
        _check_build_and_fallback(self)
        given, watch = _watch_paths(self.watch)
        # frozen: the normalised forms are set once, here, before anyone can see the object
        object.__setattr__(self, "watch", tuple(watch))
        object.__setattr__(self, "ignore", tuple(_ignore_globs(self.ignore)))
        _check_build_sources(self, given)
        _check_root(self)
        object.__setattr__(self, "mounts", checked_mounts(self.mounts))
        _check_tls_files(self)

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with ``changes``, checked again."""
        return dataclasses.replace(self, **changes)


OPTION_NAMES = tuple(field.name for field in dataclasses.fields(ServerConfig))


def _is_number(value: object, kind: type | tuple[type, ...] = (int, float)) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _check_switches_and_address(config: ServerConfig) -> None:
    for name in SWITCHES:
        if not isinstance(getattr(config, name), bool) and not (
            name in NONE_MEANS_AUTO and getattr(config, name) is None
        ):
            raise ConfigError("must be True or False", option=name, value=getattr(config, name))
    if not isinstance(config.root, (str, os.PathLike)):
        raise ConfigError("must be the path of a folder", option="root", value=config.root)
    host = config.host
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("must be a host name or an address (127.0.0.1, ::1, 0.0.0.0)", option="host", value=host)
    port = config.port
    if not _is_number(port, int):
        raise ConfigError("must be an int from 0 to 65535 (0 picks a free port)", option="port", value=port)
    if not 0 <= port <= 65535:
        raise ConfigError("is out of range: use 0-65535 (0 picks a free port)", option="port", value=port)


PROXY_HOST_HEADERS = ("preserve", "rewrite")


def _check_proxy(config: ServerConfig) -> None:
    if config.proxy is not None:
        from .proxy.backend import parse_backend  # small, and only proxy mode needs it

        object.__setattr__(config, "proxy", parse_backend(config.proxy).origin)
    if config.proxy_host_header not in PROXY_HOST_HEADERS:
        raise ConfigError("must be 'preserve' or 'rewrite'", option="proxy_host_header", value=config.proxy_host_header)
    timeout = config.proxy_timeout
    if not _is_number(timeout) or not timeout >= 0:
        raise ConfigError("must be a number of seconds, 0 or more", option="proxy_timeout", value=timeout)


def _check_app(config: ServerConfig) -> None:
    from .app.options import check_app_options  # small; the worker machinery is imported when serving

    for name, value in check_app_options(config).items():
        object.__setattr__(config, name, value)


def _check_event_loop(kind: object) -> None:
    if kind not in EVENT_LOOPS:
        raise ConfigError("must be 'auto', 'asyncio' or 'uvloop'", option="event_loop", value=kind)
    if kind == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError(
            "cannot be used: uvloop is not installed (pip install 'execlib[fast]')", option="event_loop", value=kind
        )


def _check_backend(backend: object, http2: bool) -> None:
    # Whether Hypercorn is installed, and whether HTTP/2 has TLS, are for the Server to find out
    # (server/backends): the TLS files are resolved there.
    if backend not in SERVER_BACKENDS:
        raise ConfigError("must be 'auto', 'uvicorn' or 'hypercorn'", option="backend", value=backend)
    if http2 and backend == "uvicorn":
        raise ConfigError(
            "does not speak HTTP/2: use 'hypercorn', or 'auto', which picks it for HTTP/2",
            option="backend",
            value=backend,
        )


def _check_durations_and_limits(config: ServerConfig) -> None:
    for name, unit in (("delay", "milliseconds"), ("graceful_timeout", "seconds")):
        value = getattr(config, name)
        if not _is_number(value) or not value >= 0:  # written so that NaN fails too
            raise ConfigError(f"must be a number of {unit}, 0 or more", option=name, value=value)
    timeout = config.build_timeout
    if timeout is not None and (not _is_number(timeout) or not timeout > 0):
        raise ConfigError("must be a number of seconds more than 0", option="build_timeout", value=timeout)
    if not _is_number(config.header_timeout) or not config.header_timeout > 0:
        raise ConfigError(
            "must be a number of seconds more than 0", option="header_timeout", value=config.header_timeout
        )
    if not _is_number(config.max_header_bytes, int) or config.max_header_bytes < 1024:
        # below a browser's ordinary request head: every page would get 431
        raise ConfigError(
            "must be an int of 1024 bytes or more", option="max_header_bytes", value=config.max_header_bytes
        )


def _check_build_and_fallback(config: ServerConfig) -> None:
    build = config.build
    if build is not None and not callable(build) and not (isinstance(build, str) and build.strip()):
        from .server.warm import WarmCommand  # only a preset makes one, and it has the server imported

        if not isinstance(build, WarmCommand):
            raise ConfigError("must be a shell command or a callable", option="build", value=build)
    fallback = config.fallback
    if fallback is not None and not isinstance(fallback, (str, os.PathLike)):
        raise ConfigError("must be the path of a file in root", option="fallback", value=fallback)


def normal_headers(headers: object) -> list[str]:
    """``headers`` as checked ``"Name: value"`` strings; ConfigError (``headers=``) on the first bad one."""
    if isinstance(headers, (str, Mapping)):
        items: Iterable[object] = [headers] if isinstance(headers, str) else list(headers.items())
    elif isinstance(headers, Iterable) and not isinstance(headers, bytes):
        items = headers
    else:
        raise ConfigError(
            "must be 'Name: value' strings (or a dict of names to values)", option="headers", value=headers
        )
    return [_one_header(item) for item in items]


def _one_header(item: object) -> str:
    if isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item):
        name, value = item
    elif isinstance(item, str) and ":" in item:
        name, value = item.split(":", 1)
    else:
        raise ConfigError("must be a header as 'Name: value'", option="headers", value=item)
    name, value = name.strip(), value.strip()
    if not _TOKEN.fullmatch(name):
        problem = "has no name before its ':'" if not name else "has a name that is not a valid HTTP header name"
        raise ConfigError(problem, option="headers", value=item)
    if _BAD_VALUE.search(value):
        raise ConfigError(
            "has a value with a line break, a control character or a character outside Latin-1",
            option="headers",
            value=item,
        )
    if name.lower() in MANAGED_HEADERS:
        raise ConfigError(
            "names a header execlib sets per response (framing, ETag, Range): it cannot be replaced",
            option="headers",
            value=item,
        )
    return f"{name}: {value}"


def header_pairs(headers: Iterable[str]) -> list[tuple[str, str]]:
    """(name, value) of each checked ``"Name: value"`` string."""
    return [(name, value.strip()) for name, value in (header.split(":", 1) for header in headers)]


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
    from .routers.path import check_globs  # wcmatch (tens of ms): imported when there are globs to check

    return check_globs("ignore", ignore)


def _check_build_sources(config: ServerConfig, given: list[Any]) -> None:
    if config.build is None:
        return
    if not config.watch:
        raise ConfigError("needs watch= paths: the sources it rebuilds from", option="build", value=config.build)
    root = os.path.realpath(config.root)
    for shown, path in zip(given, config.watch, strict=True):
        if os.path.realpath(path) == root:
            raise ConfigError(
                "is the served folder itself, which build= writes into: watch the sources instead",
                option="watch",
                value=os.fspath(shown),
            )


def _check_tls_files(config: ServerConfig) -> None:
    """The user's certificate files exist; whether they make a pair is checked by execlib.tls at start."""
    for name in ("ssl_certfile", "ssl_keyfile"):
        value = getattr(config, name)
        if value is None:
            continue
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ConfigError("must be the path of a PEM file", option=name, value=value)
        if not os.path.exists(value):
            raise ConfigError("file not found", option=name, value=os.fspath(value))
        if not os.path.isfile(value):
            raise ConfigError("is not a file", option=name, value=os.fspath(value))
    password = config.ssl_keyfile_password
    if password is not None and not isinstance(password, str):
        raise ConfigError("must be a string", option="ssl_keyfile_password", value="***")
    if config.ssl_certfile is None:
        for name in ("ssl_keyfile", "ssl_keyfile_password"):
            if getattr(config, name) is not None:
                shown = "***" if name == "ssl_keyfile_password" else getattr(config, name)
                raise ConfigError("needs ssl_certfile=: the certificate it goes with", option=name, value=shown)


def _check_root(config: ServerConfig) -> None:
    # With a build the folder may not exist yet (a project never built): the Server creates it.
    shown = os.fspath(config.root)
    if not os.path.exists(config.root):
        if config.build is None:
            raise ConfigError(f"folder not found: {shown}")
    elif not os.path.isdir(config.root):
        raise ConfigError(f"not a folder: {shown}")


# -- sources: flags > environment > a config file > defaults ------------------------------------

#: the options a config file or an environment variable may set (those of ``execlib serve``),
#: each with how a value of it is spelled in an environment variable
FILE_OPTIONS: dict[str, str] = {
    "root": "path",
    "host": "str",
    "port": "int",
    "livereload": "bool",
    "follow_symlinks": "bool",
    "fallback": "str",
    "clean_urls": "bool",
    "watch": "paths",
    "ignore": "list",
    "delay": "float",
    "poll": "bool",
    "gitignore": "bool",
    "build": "str",
    "build_timeout": "float",
    "build_on_start": "bool",
    "warnings_as_errors": "bool",
    "mounts": "mounts",
    "event_loop": "str",
    "headers": "headers",
    "cors": "bool",
    "proxy": "str",
    "proxy_host_header": "str",
    "proxy_timeout": "float",
    "https": "bool",
    "ssl_certfile": "path",
    "ssl_keyfile": "path",
    "ssl_keyfile_password": "str",
    "backend": "str",
    "http2": "bool",
    "app": "str",
    "app_dir": "path",
    "factory": "bool",
    "reload": "bool",
    "reload_dirs": "paths",
    "workers": "int",
    "interface": "str",
    "app_startup_timeout": "float",
}

#: options of the command line itself (what it prints, whether it opens a browser), not of the
#: Server; set from the same sources, and kept in a CommandOptions beside the ServerConfig
COMMAND_OPTIONS: dict[str, str] = {
    "open": "bool_or_path",
    "browser": "str",
    "quiet": "bool",
    "verbose": "bool",
    "log_format": "str",
    "banner": "str",
}
ALL_OPTIONS = {**FILE_OPTIONS, **COMMAND_OPTIONS}
LOG_FORMATS = ("text", "json")

ENV_PREFIX = "EXECLIB_"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Origin:
    """Where one option's value came from: ``kind`` is default, file, env or flag."""

    kind: str
    label: str  # "default", "pyproject.toml [tool.execlib]", "EXECLIB_PORT", "--port"
    key: str = ""  # the key or variable as written there
    raw: object = None  # the value as written there (an env var's text)


@dataclass(frozen=True)
class CommandOptions:
    """What ``execlib serve`` does around its Server: ``--open [PATH]``, ``--browser``, ``-q``, ``-v``,
    ``--log-format`` and ``--banner`` (the start line as text or one JSON object; ``json`` logs
    make it JSON too)."""

    open: bool | str = False
    browser: str | None = None
    quiet: bool = False
    verbose: bool = False
    log_format: str = "text"
    banner: str | None = None

    def __post_init__(self) -> None:
        for name in ("quiet", "verbose"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError("must be True or False", option=name, value=getattr(self, name))
        if not isinstance(self.open, (bool, str)) or (isinstance(self.open, str) and not self.open.startswith("/")):
            raise ConfigError("must be true, false or a page's URL path (/docs/)", option="open", value=self.open)
        if self.browser is not None and (not isinstance(self.browser, str) or not self.browser.strip()):
            raise ConfigError("must be a browser's name (firefox, chromium, ...)", option="browser", value=self.browser)
        for name in ("log_format", "banner"):
            value = getattr(self, name)
            if not (value is None and name == "banner") and (not isinstance(value, str) or value not in LOG_FORMATS):
                raise ConfigError("must be 'text' or 'json'", option=name, value=value)

    @property
    def open_path(self) -> str | None:
        """The URL path to open once serving (``/`` for a plain ``--open``), or None."""
        if self.open is False:
            return None
        return "/" if self.open is True else str(self.open)

    @property
    def json_banner(self) -> bool:
        return (self.banner or self.log_format) == "json"


@dataclass(frozen=True)
class Resolved:
    """A checked ServerConfig, where each option came from, and the config file read (if any)."""

    config: ServerConfig
    origins: dict[str, Origin]
    file: str | None
    command: CommandOptions = dataclasses.field(default_factory=CommandOptions)


def load_config(
    flags: dict[str, object],
    *,
    env: dict[str, str] | None = None,
    config_file: str | None = None,
    use_files: bool = True,
    cwd: str | None = None,
    flag_names: dict[str, str] | None = None,
    command: bool = False,
) -> Resolved:
    """Merge the sources (``flags``, then ``env``, then a config file, then defaults) into a ServerConfig.

    ``flags`` maps option names to what was given explicitly (None: not given). ``config_file``
    names the file to read; otherwise, with ``use_files``, the nearest one from ``cwd`` upward is
    used. With ``command``, the command line's own options (COMMAND_OPTIONS) are read too. A bad
    value is a ConfigError naming the file and key, or the variable, it came from.
    """
    values: dict[str, Any] = {}
    kinds = ALL_OPTIONS if command else FILE_OPTIONS
    origins = {name: Origin("default", "default") for name in kinds}
    found = _locate_file(config_file, cwd or os.getcwd()) if use_files or config_file else None
    if found is not None:
        _apply_file(found, values, origins)
    _apply_env(os.environ if env is None else env, kinds, values, origins)
    _apply_flags(flags, flag_names or {}, values, origins)
    server = {name: value for name, value in values.items() if name not in COMMAND_OPTIONS}
    if (server.get("proxy") or server.get("app")) and "root" not in server:
        # proxy or app mode with no ROOT from any source: the backend answers every path (no folder
        # of the current directory's files in front of it, the app's source among them); docs/proxy.rst
        server["static"] = False
    own = {name: value for name, value in values.items() if name in COMMAND_OPTIONS and command}
    try:
        return Resolved(ServerConfig(**server), origins, found[0] if found else None, CommandOptions(**own))
    except ConfigError as error:
        raise _from_source(error, origins) from None


def _apply_flags(
    flags: dict[str, object], names: dict[str, str], values: dict[str, Any], origins: dict[str, Origin]
) -> None:
    for name, value in flags.items():
        if value is None:
            continue
        if isinstance(value, str) and FILE_OPTIONS.get(name) in ("int", "float"):
            value = _number(value, FILE_OPTIONS[name])  # a command line's words are strings
        values[name] = value
        if name in origins:
            origins[name] = Origin("flag", names.get(name, "--" + name.replace("_", "-")), name, value)


def _number(text: str, kind: str) -> object:
    """``text`` as an int or a float; left as text when it is neither, for the check to name it."""
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return text


def _env_value(var: str, text: str, kind: str) -> object:
    if kind == "bool":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise ConfigError(f"{var}={text!r} must be 1 or 0 (or true/false, yes/no, on/off)")
    if kind == "bool_or_path":  # EXECLIB_OPEN=1, or the page to open: EXECLIB_OPEN=/docs/
        return text.strip() if text.strip().startswith("/") else _env_value(var, text, "bool")
    if kind in ("int", "float"):
        return _number(text.strip(), kind)
    if kind in ("paths", "list", "mounts"):
        return [item.strip() for item in text.split(",") if item.strip()]  # lists are comma-separated
    if kind == "headers":
        return _split_headers(text)
    return text


def _split_headers(text: str) -> list[str]:
    """``EXECLIB_HEADERS``: headers separated by commas, as other lists are.

    A header's value may hold commas itself (``Cache-Control: no-store, max-age=0``): a part that
    does not start with ``Name:`` continues the value before it, which is also what HTTP makes of
    a header repeated (its values joined with commas).
    """
    headers: list[str] = []
    for part in text.split(","):
        if headers and not _HEADER_START.match(part):
            headers[-1] += "," + part
        elif part.strip():
            headers.append(part)
    return [header.strip() for header in headers]


def _apply_env(
    env: dict[str, str] | os._Environ[str], kinds: dict[str, str], values: dict[str, Any], origins: dict[str, Origin]
) -> None:
    for name, kind in kinds.items():
        var = ENV_PREFIX + name.upper()
        if env.get(var):  # an empty variable counts as unset, as shells make it easy to leave one so
            values[name] = _env_value(var, env[var], kind)
            origins[name] = Origin("env", var, var, env[var])
    negated = ENV_PREFIX + "NO_LIVERELOAD"
    if env.get(negated):
        values["livereload"] = not _env_value(negated, env[negated], "bool")
        origins["livereload"] = Origin("env", negated, negated, env[negated])


def _shown_path(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def _locate_file(explicit: str | None, cwd: str) -> tuple[str, str | None] | None:
    """(path, table) of the config file to read: ``--config FILE``, or the nearest one upward."""
    if explicit is not None:
        table = "tool.execlib" if os.path.basename(explicit) == "pyproject.toml" else None
        return os.path.abspath(explicit), table
    folder = os.path.abspath(cwd)
    while True:
        own = os.path.join(folder, "execlib.toml")
        if os.path.isfile(own):
            return own, None
        pyproject = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(pyproject) and "execlib" in _read_toml(pyproject).get("tool", {}):
            return pyproject, "tool.execlib"
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _read_toml(path: str) -> dict[str, Any]:
    toml = _toml_reader()
    shown = _shown_path(path)
    try:
        with open(path, "rb") as file:
            data: dict[str, Any] = toml.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {shown}: {exc.strerror or exc}") from None
    except (toml.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown} is not valid TOML: {exc}") from None
    return data


def _toml_reader() -> Any:
    """The standard library's TOML reader (3.11+), or tomli, the same reader, on Python 3.10."""
    import importlib

    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ConfigError("reading a config file needs Python 3.11 or later, or the tomli package")


def _apply_file(found: tuple[str, str | None], values: dict[str, Any], origins: dict[str, Origin]) -> None:
    path, table = found
    data: Any = _read_toml(path)
    where = _shown_path(path) + (f" [{table}]" if table else "")
    for part in table.split(".") if table else ():
        data = data.get(part, {}) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table of options")
    base = os.path.dirname(path)
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in ALL_OPTIONS:
            raise ConfigError(_unknown_key(key, where))
        if name in origins:  # the command line's own options are read only by the command line
            values[name] = _rebased_option(ALL_OPTIONS[name], value, base)
            origins[name] = Origin("file", where, key, value)


def _unknown_key(key: str, where: str) -> str:
    import difflib

    name = key.replace("-", "_")
    # two letters swapped ('prot') is the likeliest typo, and difflib's ratio can rank it below another key
    swapped = [option for option in ALL_OPTIONS if sorted(option) == sorted(name)]
    match = swapped or difflib.get_close_matches(name, ALL_OPTIONS, n=1)
    hint = f"; did you mean {match[0]!r}?" if match else f"; the keys are: {', '.join(ALL_OPTIONS)}"
    return f"unknown key {key!r} in {where}{hint}"


def _rebased_option(kind: str, value: object, base: str) -> object:
    if kind in ("path", "paths"):
        return _rebased(value, base)
    if kind == "mounts":
        return rebased_mounts(value, base)
    return value


def _rebased(value: object, base: str) -> object:
    """Paths in a file are relative to the file's folder, wherever execlib is run from."""
    if isinstance(value, str):
        return os.path.normpath(os.path.join(base, value))  # an absolute value stays as it is
    if isinstance(value, list):
        return [_rebased(item, base) if isinstance(item, str) else item for item in value]
    return value


def _from_source(error: ConfigError, origins: dict[str, Origin]) -> ConfigError:
    """``error`` naming the file key or the environment variable the bad value came from."""
    origin = origins.get(error.option or "root")
    if origin is None or origin.kind in ("default", "flag"):
        return error
    if error.option is None:
        return ConfigError(f"{error} (root from {origin.label})")
    if error.option == "ssl_keyfile_password":  # a secret: named, never shown
        return ConfigError(f"{origin.label} ({origin.key}) {error.problem}")
    if origin.kind == "env":
        if isinstance(origin.raw, str) and error.value != _env_value(origin.key, origin.raw, ALL_OPTIONS[error.option]):
            # one item of a list is bad: name it, not only the whole variable
            return ConfigError(f"{origin.key}={origin.raw!r}: {error.value!r} {error.problem}")
        return ConfigError(f"{origin.key}={origin.raw!r} {error.problem}")
    return ConfigError(f"{origin.label}: {origin.key} = {error.value!r} {error.problem}")
