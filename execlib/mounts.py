"""Mounts: other folders served at URL prefixes (``--mount /assets=../shared/assets``), as options.

Parsing and checking only, for ``ServerConfig`` (kept free of the server's imports: the command
line checks its options before anything heavy is loaded). Serving them is
``execlib.server.mounts``; which file a URL names across ROOT and its mounts is its ``SiteMap``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .errors import ConfigError
from .fspath import given_path

#: URL paths execlib answers itself, whatever the folders hold: no mount may take them
RESERVED_PATHS = ("/livereload", "/livereload.js")
RESERVED_TREE = "/__execlib__"

Mount = tuple[str, str]  # (URL prefix without a trailing slash, folder as an absolute path)


def checked_mounts(mounts: object) -> tuple[Mount, ...]:
    """``mounts`` as (prefix, absolute folder) pairs, checked; raises a one-line ConfigError."""
    seen: dict[str, str] = {}
    out: list[Mount] = []
    for given_prefix, folder in _pairs(mounts):
        shown = f"{given_prefix}={os.fspath(folder)}"
        prefix = mount_prefix(given_prefix, shown)
        if prefix in seen:
            problem = f"mounts a second folder at {prefix} (after {seen[prefix]})"
            raise ConfigError(problem, option="mounts", value=shown)
        if not os.path.exists(folder):
            raise ConfigError("names a folder that does not exist", option="mounts", value=shown)
        if not os.path.isdir(folder):
            raise ConfigError("names a file, not a folder", option="mounts", value=shown)
        seen[prefix] = shown
        out.append((prefix, given_path(folder)))
    return tuple(out)


def _pairs(mounts: object) -> list[tuple[str, str | os.PathLike[str]]]:
    """(prefix, folder) as given: from a mapping, ``PREFIX=DIR`` strings or pairs."""
    if isinstance(mounts, Mapping):
        items: list[object] = [tuple(item) for item in mounts.items()]
    elif isinstance(mounts, str):
        items = [mounts]  # one mount; iterating a string would mount each of its letters
    elif isinstance(mounts, Iterable) and not isinstance(mounts, bytes):
        items = list(mounts)
    else:
        raise ConfigError("must be a list of 'PREFIX=DIR' mounts", option="mounts", value=mounts)
    pairs: list[tuple[str, str | os.PathLike[str]]] = []
    for item in items:
        if isinstance(item, str):
            pairs.append(split_mount(item))
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], (str, os.PathLike))
        ):
            pairs.append((item[0], item[1]))
        else:
            raise ConfigError("must be 'PREFIX=DIR' (like '/assets=../shared')", option="mounts", value=item)
    return pairs


def split_mount(text: str) -> tuple[str, str]:
    """``"/assets=../shared"`` -> ``("/assets", "../shared")``; the first ``=`` splits (a folder may hold one)."""
    prefix, sep, folder = text.partition("=")
    if not sep or not prefix.strip() or not folder.strip():
        raise ConfigError("must be 'PREFIX=DIR' (like '/assets=../shared')", option="mounts", value=text)
    return prefix.strip(), folder.strip()


def mount_prefix(prefix: str, shown: str) -> str:
    """``prefix`` without its trailing slash, or a ConfigError saying why it cannot be a mount's."""
    normal = prefix.rstrip("/")
    if not prefix.startswith("/"):
        raise ConfigError(f"needs a URL path starting with /, like /{prefix}", option="mounts", value=shown)
    if not normal:
        raise ConfigError("mounts at /, which is ROOT's: pick a prefix like /assets", option="mounts", value=shown)
    segments = normal[1:].split("/")
    if any(segment in ("", ".", "..") for segment in segments) or any(c in normal for c in "\\?#\x00"):
        # the decoded request paths it is compared with never hold these (the server refuses them)
        problem = f"{normal} is not a plain URL path (no //, . or .. parts, \\, ? or #)"
        raise ConfigError(problem, option="mounts", value=shown)
    if normal in RESERVED_PATHS or normal == RESERVED_TREE or normal.startswith(RESERVED_TREE + "/"):
        problem = f"takes {normal}, which execlib answers itself (live reload, /__execlib__/)"
        raise ConfigError(problem, option="mounts", value=shown)
    return normal


def rebased_mounts(value: object, base: str) -> object:
    """A config file's mounts with relative folders made relative to the file's folder."""
    if isinstance(value, Mapping):
        return {prefix: _rebased(folder, base) for prefix, folder in value.items()}
    if isinstance(value, list):
        out: list[object] = []
        for item in value:
            prefix, sep, folder = item.partition("=") if isinstance(item, str) else ("", "", "")
            out.append(f"{prefix}={_rebased(folder.strip(), base)}" if sep and folder.strip() else item)
        return out
    return value


def _rebased(folder: object, base: str) -> object:
    return os.path.normpath(os.path.join(base, folder)) if isinstance(folder, str) and folder else folder


def under(path: str, prefix: str) -> bool:
    """Whether the URL path ``path`` is ``prefix`` or below it (``/assets/x``, not ``/assets2``)."""
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def prefix_of(path: str, prefixes: Iterable[str]) -> str:
    """The longest of ``prefixes`` that ``path`` is under (the mount serving it), or ``""`` (ROOT)."""
    return max((prefix for prefix in prefixes if under(path, prefix)), key=len, default="")
