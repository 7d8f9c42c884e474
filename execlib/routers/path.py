"""PathRouter: routes file events by folder and wcmatch glob, with default, user and .gitignore ignores."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from wcmatch import fnmatch as wcfnmatch
from wcmatch import glob as wcglob

from ..errors import ConfigError
from ..event import Action, Event, FileEvent
from ..fspath import given_path
from ..router import Callback, Route, Router

logger = logging.getLogger("execlib.router")

#: Ignored by every route, on top of its own ``ignore``: VCS and tool folders, and the backup, swap,
#: lock and probe files editors write on the way to a save (vim, emacs, JetBrains IDEs, GNOME's GIO,
#: Kate, LibreOffice, Chromium's File System Access). Temporary files with random names need no entry:
#: a batch's net effect drops a file created and renamed away within it (see ``execlib.net_effect``).
DEFAULT_IGNORES: tuple[str, ...] = (
    ".git/",
    ".hg/",
    "__pycache__/",
    "node_modules/",
    ".venv/",
    ".*.sw[a-p]",
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    "*.tmp",
    "*___jb_tmp___",
    "*___jb_old___",
    ".goutputstream-*",
    "*.kate-swp",
    ".~lock.*#",
    "*.crswap",
    ".DS_Store",
)

#: wcmatch flags for route globs: ``**``, extglob ``@(a|b)``, ``!negation``, ``{a,b}``, dotfiles matched by ``*``.
GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.EXTGLOB | wcglob.NEGATE | wcglob.BRACE | wcglob.DOTGLOB

_CLOSERS = {"[": "]", "{": "}", "(": ")"}


def _bracket_end(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the ``[`` at ``start``, or -1."""
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a ``]`` first in the set is a member, not the end
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[" and pattern[i + 1 : i + 2] in (":", ".", "="):  # [:alpha:] and friends
            close = pattern.find(pattern[i + 1] + "]", i + 2)
            if close >= 0:
                i = close + 2
                continue
        if char == "]":
            return i
        i += 1
    return -1


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid glob (an unclosed ``[``, ``{`` or ``@(``), or None.

    wcmatch takes an unclosed one literally: ``[abc`` would then match only a file named
    ``[abc``, and a route with that typo would quietly never run. A literal bracket is still
    possible, escaped: ``\\[`` or ``[[]``.
    """
    opened: list[tuple[str, int]] = []  # "{" or "(" and where, innermost last
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            end = _bracket_end(pattern, i)
            if end < 0:
                return f"has a '[' at position {i} that is never closed by ']' (write \\[ for a literal '[')"
            i = end + 1
            continue
        if char in "?*+@!" and pattern[i + 1 : i + 2] == "(":
            opened.append(("(", i))
            i += 2
            continue
        if char == "{":
            opened.append(("{", i))
        elif opened and char == _CLOSERS[opened[-1][0]]:
            opened.pop()
        i += 1
    if opened:
        kind, at = opened[-1]
        shown = pattern[at : at + 2] if kind == "(" else "{"
        return (
            f"has a '{shown}' at position {at} that is never closed by '{_CLOSERS[kind]}'"
            f" (write \\{shown} for a literal '{shown}')"
        )
    return None


def check_globs(option: str, patterns: object) -> list[str]:
    """``patterns`` (one glob, or an iterable of them) as a list; ConfigError naming ``option`` if one is bad."""
    if isinstance(patterns, str):
        patterns = [patterns]
    elif isinstance(patterns, (bytes, os.PathLike)) or not isinstance(patterns, Iterable):
        raise ConfigError("must be a glob string or a list of them", option=option, value=patterns)
    checked = list(patterns)
    for pattern in checked:
        if not isinstance(pattern, str):
            raise ConfigError("must be a glob string", option=option, value=pattern)
        problem = glob_problem(pattern)
        if problem is not None:
            raise ConfigError(f"is not a valid glob: it {problem}", option=option, value=pattern)
    return checked


def _ignore_patterns(pattern: str) -> list[str]:
    """gitignore-like reading of one ignore glob, as wcmatch patterns for a relative path.

    ``name`` (no slash) matches that name at any depth and everything below it;
    ``dir/`` the same, for folders; ``a/b`` is anchored at the route's folder.
    """
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    if not pattern:
        return []
    if "/" in pattern.lstrip("/"):
        base = pattern.lstrip("/")
        return [base, f"{base}/**"]
    base = pattern.lstrip("/")
    if pattern.startswith("/"):
        return [base, f"{base}/**"]
    return [f"**/{base}", f"**/{base}/**"]


class IgnoreMatcher:
    """Matches relative POSIX paths against gitignore-like globs (see ``_ignore_patterns``).

    Patterns without a slash (most of them, all the defaults) are tested against
    each path component with one compiled alternation: this runs for every
    folder a listener considers watching, so it has to be cheap.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        names: list[str] = []
        anchored: list[str] = []
        for pattern in self.patterns:
            expanded = _ignore_patterns(pattern)
            if expanded and expanded[0].startswith("**/"):
                names.append(expanded[0][3:])
            else:
                anchored.extend(expanded)
        name_flags = wcfnmatch.EXTMATCH | wcfnmatch.BRACE | wcfnmatch.DOTMATCH
        regexes, _ = wcfnmatch.translate(names, flags=name_flags) if names else ([], [])
        self._names = re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None
        flags = wcglob.GLOBSTAR | wcglob.EXTGLOB | wcglob.BRACE | wcglob.DOTGLOB
        self._anchored = wcglob.compile(anchored, flags=flags) if anchored else None

    def __call__(self, name: str) -> bool:
        if self._names is not None and any(self._names.match(part) for part in name.split("/")):
            return True
        return self._anchored is not None and bool(self._anchored.match(name))


class GitIgnore:
    """The ``.gitignore`` files of a folder tree (root and nested), read once at registration."""

    def __init__(self, root: str, skip: IgnoreMatcher) -> None:
        import pathspec

        self.specs: list[tuple[str, Any]] = []  # (folder relative to root, spec), outermost first
        for folder, dirs, files in os.walk(root):
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            rel = "" if rel == "." else rel
            dirs[:] = [d for d in dirs if not skip(f"{rel}/{d}" if rel else d)]
            if ".gitignore" in files:
                try:
                    with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
                        self.specs.append((rel, pathspec.GitIgnoreSpec.from_lines(f)))
                except OSError as exc:
                    logger.warning("cannot read %s: %s", os.path.join(folder, ".gitignore"), exc)

    def __call__(self, name: str, is_dir: bool = False) -> bool:
        for folder, spec in self.specs:
            if folder and not name.startswith(folder + "/"):
                continue
            rel = name[len(folder) + 1 :] if folder else name
            # a path is ignored when it or any of its parent folders is
            parts = rel.split("/")
            for i in range(1, len(parts) + 1):
                candidate = "/".join(parts[:i])
                if i < len(parts) or is_dir:
                    candidate += "/"
                if spec.match_file(candidate):
                    return True
        return False


class PathRouter(Router):
    """Routes ``FileEvent``s to callbacks registered for a folder and a glob.

    Example::

        router = PathRouter()
        router.register("src", rebuild, glob="**/*.md", debounce=100)
        listener = router.get_listener()
        listener.start()
    """

    def register(  # type: ignore[override]
        self,
        path: str | os.PathLike[str],
        func: Callback,
        glob: str | Sequence[str] = "**/*",
        debounce: float = Router.DEFAULT_DEBOUNCE,
        delay: float = Router.DEFAULT_DELAY,
        ignore: Iterable[str] = (),
        actions: Iterable[Action | str] | None = None,
        callback_timeout: float | None = None,
        batch: bool = False,
        gitignore: bool = False,
        name: str | None = None,
        net: bool = False,
    ) -> Route:
        """Call ``func`` for changes below ``path`` whose relative name matches ``glob``.

        ``glob`` is one wcmatch pattern or several (``**``, ``@(a|b)``,
        ``{a,b}``, ``!exclusion``), matched against the path relative to
        ``path`` with ``/`` separators. ``ignore`` adds gitignore-like globs to
        ``DEFAULT_IGNORES``; ``gitignore=True`` also honours the folder's
        ``.gitignore`` files. ``debounce``/``delay`` are milliseconds,
        ``callback_timeout`` seconds; ``batch=True`` passes the whole burst as
        a list, and ``net=True`` with it passes the burst's net effect (a
        temp-file-and-rename save arrives as one "modified"). ``path`` may be
        a single file: the route then watches its folder for that name only.
        A folder reached through a symlink keeps its given name in events, and
        the listener follows the symlink when it is re-pointed.

        An unknown keyword (``globs=``) is a TypeError, and a glob with an
        unclosed ``[``, ``{`` or ``@(`` a ConfigError naming it.
        """
        patterns = check_globs("glob", glob)
        ignore = check_globs("ignore", ignore)
        # A folder is kept as given, symlinks and all: when ``current`` is re-pointed at another
        # release the listener follows it. A single file is watched where it really lives.
        endpoint = given_path(path)
        if not os.path.exists(endpoint):
            raise ConfigError(f"path not found: {os.fspath(path)}")
        if not os.path.isdir(endpoint):
            endpoint = os.path.realpath(endpoint)
            patterns = [wcglob.escape(os.path.basename(endpoint))]
            endpoint = os.path.dirname(endpoint)
        if not patterns:
            raise ConfigError("must name at least one pattern", option="glob", value=glob)
        if all(p.startswith("!") for p in patterns):
            patterns.insert(0, "**/*")  # only exclusions given: exclude them from everything
        ignored = IgnoreMatcher((*DEFAULT_IGNORES, *ignore))
        matcher = wcglob.compile(patterns, flags=GLOB_FLAGS)
        route = self._add_route(
            endpoint,
            func,
            matcher,  # read by match() below
            debounce=debounce,
            delay=delay,
            callback_timeout=callback_timeout,
            actions=actions,
            batch=batch,
            name=name,
            net=net,
        )
        route.options["ignored"] = ignored
        route.options["gitignore"] = GitIgnore(endpoint, ignored) if gitignore else None
        return route

    def match(self, route: Route, event: Event) -> Event | None:
        """Rebase the event onto the route's folder, then apply actions, ignores and the glob."""
        if not isinstance(event, FileEvent):
            return None
        if route.actions is not None and not route.net and event.action not in route.actions:
            return None
        if event.endpoint != route.endpoint:
            path = event.path
            if not path.startswith(route.endpoint + os.sep):
                return None
            name = path[len(route.endpoint) + 1 :].replace(os.sep, "/")
            event = dataclasses.replace(event, endpoint=route.endpoint, name=name)
        name = event.name
        if not name or route.options["ignored"](name):
            return None
        git = route.options["gitignore"]
        if git is not None and git(name, event.is_dir):
            return None
        return event if route.pattern.match(name) else None

    def should_watch_dir(self, path: str) -> bool:
        """False when every route covering ``path`` ignores it (a listener need not watch it)."""
        covered = False
        for route in self.routes:
            if path == route.endpoint:
                return True
            if not path.startswith(route.endpoint + os.sep):
                if route.endpoint.startswith(path + os.sep):
                    return True  # an ancestor of a route's folder
                continue
            covered = True
            name = path[len(route.endpoint) + 1 :].replace(os.sep, "/")
            if route.options["ignored"](name):
                continue
            git = route.options["gitignore"]
            if git is not None and git(name, True):
                continue
            return True
        return not covered
