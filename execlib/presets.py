"""Presets: what it takes to preview a Sphinx or an MkDocs project, worked out from the project itself.

A preset says which build to run (``sphinx-build`` or ``mkdocs build``, from the same environment as
execlib when it has the tool, else from PATH), which sources to watch, which folder to serve, and
which of the generator's own folders to ignore. ``execlib sphinx`` and ``execlib mkdocs`` turn one
into a ``Server`` (``cli/preset.py``); nothing here starts anything.

Layouts recognised with no arguments (the ones ``sphinx-quickstart`` and ``mkdocs new`` write):

- Sphinx: ``conf.py`` in the current folder (build into ``_build/html``), or in ``source/``
  (build into ``build/html``), or in ``docs/`` or ``docs/source/`` likewise.
- MkDocs: ``mkdocs.yml`` (or ``mkdocs.yaml``) in the project folder; its ``docs_dir``,
  ``site_dir``, ``theme.custom_dir`` and ``watch`` entries are read from it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

# What the warm helper imports once (execlib.server.warm): the parts of each tool that every build
# loads. A name the installed version lacks is skipped.
SPHINX_PRELOAD = (
    "sphinx.cmd.build",
    "sphinx.application:builtin_extensions",
    "sphinx.builders.html",
    "sphinx.writers.html5",
    "sphinx.search.en",
    "sphinx.util.math",
    "sphinx.ext.mathjax",
    "sphinx.builders.latex.transforms",
    "docutils.languages.en",
    "jinja2.ext",
    "alabaster",
)
MKDOCS_PRELOAD = (
    "mkdocs.__main__",
    "mkdocs.commands.build",
    "mkdocs.config.defaults",
    "mkdocs.structure.files",
    "mkdocs.structure.nav",
    "mkdocs.structure.pages",
    "mkdocs.theme",
    "mkdocs.contrib.search",
    "mkdocs.contrib.search.search_index",
    "mkdocs.localization",
    "markdown",
    "markdown.extensions.toc",
    "markdown.extensions.tables",
    "markdown.extensions.fenced_code",
    "jinja2.ext",
    "babel.support",
    "pygments.formatters",
    "pathspec",
)

SPHINX_LAYOUTS = ((".", "_build"), ("source", "build"), ("docs", "docs/_build"), ("docs/source", "docs/build"))
MKDOCS_CONFIGS = ("mkdocs.yml", "mkdocs.yaml")


@dataclass(frozen=True)
class Tool:
    """How to run a generator: the command's first words, and the Python to run it warm (None: cold only)."""

    prefix: tuple[str, ...]
    interpreter: str | None


@dataclass(frozen=True)
class Preset:
    """Everything ``execlib sphinx`` / ``execlib mkdocs`` passes to ``Server``."""

    name: str
    serve: str  # the folder the build writes and the server serves
    watch: tuple[str, ...]  # the sources
    ignore: tuple[str, ...]  # the generator's own output and cache folders inside them
    argv: tuple[str, ...]  # the build, as a plain command
    entry: str  # module:function of the tool's command, for warm builds
    args: tuple[str, ...]  # what ``entry`` gets
    preload: tuple[str, ...]
    interpreter: str | None  # None: no Python found that can run the tool warm
    cwd: str

    def build_command(self) -> str:
        """The build as a command line to copy, run where execlib runs it."""
        command = shlex.join(self.argv)
        if os.path.realpath(self.cwd) != os.path.realpath(os.getcwd()):
            command = f"cd {shlex.quote(_shown(self.cwd))} && {command}"
        return command

    def equivalent(self, warnings_as_errors: bool = False) -> str:
        """The ``execlib serve`` command line that does the same (the warm helper aside)."""
        words = ["execlib", "serve", _shown(self.serve)]
        for path in self.watch:
            words += ["--watch", _shown(path)]
        for glob in self.ignore:
            words += ["--ignore", glob]
        words += ["--build", self.build_command(), "--build-on-start"]
        if warnings_as_errors:
            words.append("--warnings-as-errors")
        return shlex.join(words)


def _shown(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _inside(path: str, folder: str) -> str | None:
    """``path`` relative to ``folder`` (POSIX separators), or None when it is not below it."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(folder))
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def find_tool(script: str, module: str, package: str) -> Tool:
    """The generator's command from execlib's own environment, else from PATH.

    In execlib's environment it runs warm with this interpreter. On PATH it runs warm with the
    interpreter of its ``#!`` line when that is a Python (the helper checks it can import the tool,
    and falls back to the plain command when it cannot).
    """
    has_module = importlib.util.find_spec(module) is not None
    beside = Path(sys.executable).parent / script
    if has_module and beside.is_file():
        shown = script if shutil.which(script) == str(beside) else str(beside)
        return Tool((shown,), sys.executable)
    if has_module:
        return Tool((sys.executable, "-m", module), sys.executable)
    found = shutil.which(script)
    if found is None:
        raise ConfigError(
            f"{script} not found: install {package} where execlib runs (pip install {package}), or put {script} on PATH"
        )
    return Tool((script,), _python_of(found))


def _python_of(script: str) -> str | None:
    """The Python interpreter named by ``script``'s ``#!`` line, or None."""
    try:
        with open(script, "rb") as file:
            first = file.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
        program = shutil.which(words[0]) if words else None
    else:
        program = words[0] if words else None
    if program and re.fullmatch(r"python[\d.]*", os.path.basename(program)):
        return program
    return None


# -- Sphinx -------------------------------------------------------------------------------


def sphinx_preset(source: str | None = None, output: str | None = None, extra: Sequence[str] = ()) -> Preset:
    """A Sphinx project: ``source`` holds conf.py (found when None), ``output`` gets the HTML."""
    if source is None:
        for candidate, build_dir in SPHINX_LAYOUTS:
            if os.path.isfile(os.path.join(candidate, "conf.py")):
                source = candidate
                output = output or os.path.join(build_dir, "html")
                break
        else:
            raise ConfigError(
                "no Sphinx project here: no conf.py in ., source/, docs/ or docs/source/;"
                " give the folder that holds conf.py: execlib sphinx DOCS_DIR"
            )
    elif not os.path.isdir(source):
        raise ConfigError(f"Sphinx source folder not found: {source}")
    elif not os.path.isfile(os.path.join(source, "conf.py")):
        raise ConfigError(f"{source} has no conf.py: give the folder that holds it (sphinx-quickstart makes one)")
    source = os.path.normpath(source)
    if output is None:
        # sphinx-quickstart's layouts: build/ beside a source/ folder, else _build/ inside the sources
        if os.path.basename(os.path.abspath(source)) == "source":
            output = os.path.join(os.path.dirname(source) or ".", "build", "html")
        else:
            output = os.path.join(source, "_build", "html")
    output = os.path.normpath(output)
    if os.path.realpath(output) == os.path.realpath(source):
        raise ConfigError(f"the output folder {output} is the source folder itself: give another, such as _build/html")
    # `make html` (sphinx-build -M) keeps doctrees beside html/: share them, and its incremental state
    if os.path.basename(output) == "html":
        doctrees = os.path.join(os.path.dirname(output) or ".", "doctrees")
    else:
        doctrees = os.path.join(output, ".doctrees")
    # What the build writes inside the sources: the whole build folder of the make-mode layout
    # (_build/: html, doctrees, and latex or linkcheck from `make` runs), else output and doctrees.
    build_root = os.path.dirname(output) if os.path.basename(output) == "html" else output
    ignored: list[str] = []
    for folder in (build_root, output, doctrees):
        inside = _inside(folder, source)
        if inside is not None and not any(inside == i or inside.startswith(i + "/") for i in ignored):
            ignored.append(inside)
    ignore = [f"/{inside}/" for inside in ignored]
    tool = find_tool("sphinx-build", "sphinx", "sphinx")
    args = ("-b", "html", "-d", doctrees, source, output, *extra)
    return Preset(
        name="sphinx",
        serve=output,
        watch=(source,),
        ignore=tuple(ignore),
        argv=(*tool.prefix, *args),
        entry="sphinx.cmd.build:main",
        args=args,
        preload=SPHINX_PRELOAD,
        interpreter=tool.interpreter,
        cwd=os.getcwd(),
    )


# -- MkDocs -------------------------------------------------------------------------------


def mkdocs_preset(project: str | None = None, output: str | None = None, extra: Sequence[str] = ()) -> Preset:
    """An MkDocs project: the folder holding mkdocs.yml (the current one when None)."""
    folder = project or "."
    if not os.path.isdir(folder):
        if os.path.isfile(folder) and os.path.basename(folder) in MKDOCS_CONFIGS:
            folder = os.path.dirname(folder) or "."
        else:
            raise ConfigError(f"MkDocs project folder not found: {folder}")
    config_name = next((n for n in MKDOCS_CONFIGS if os.path.isfile(os.path.join(folder, n))), None)
    if config_name is None:
        where = "here" if project is None else f"in {folder}"
        raise ConfigError(
            f"no MkDocs project {where}: no mkdocs.yml; give the folder that holds it (mkdocs new makes one)"
        )
    config = read_mkdocs_config(os.path.join(folder, config_name))
    folder = os.path.normpath(folder)

    def at(value: object, default: str) -> str:
        text = value if isinstance(value, str) and value.strip() else default
        return os.path.normpath(os.path.join(folder, os.path.expanduser(text)))

    docs_dir = at(config.get("docs_dir"), "docs")
    site_dir = os.path.normpath(output) if output else at(config.get("site_dir"), "site")
    watch = [os.path.join(folder, config_name), docs_dir]
    theme = config.get("theme")
    if isinstance(theme, dict) and isinstance(theme.get("custom_dir"), str):
        watch.append(at(theme["custom_dir"], "."))
    extra_watch = config.get("watch")
    for entry in extra_watch if isinstance(extra_watch, list) else []:
        if isinstance(entry, str):
            watch.append(at(entry, "."))
    hooks = config.get("hooks")
    for entry in hooks if isinstance(hooks, list) else []:
        if isinstance(entry, str):
            watch.append(at(entry, "."))
    watch = [path for path in dict.fromkeys(watch) if os.path.exists(path)]
    if not os.path.isdir(docs_dir):
        raise ConfigError(f"the docs folder {_shown(docs_dir)} named by {config_name} does not exist")
    ignore = []
    for source in watch:
        inside = _inside(site_dir, source) if os.path.isdir(source) else None
        if inside is not None:
            ignore.append(f"/{inside}/")
    tool = find_tool("mkdocs", "mkdocs", "mkdocs")
    args = ["build", "-f", config_name]
    if output:
        args += ["-d", os.path.abspath(site_dir)]
    args += list(extra)
    return Preset(
        name="mkdocs",
        serve=site_dir,
        watch=tuple(watch),
        ignore=tuple(dict.fromkeys(ignore)),
        argv=(*tool.prefix, *args),
        entry="mkdocs.__main__:cli",
        args=tuple(args),
        preload=MKDOCS_PRELOAD,
        interpreter=tool.interpreter,
        cwd=os.path.abspath(folder),
    )


def read_mkdocs_config(path: str) -> dict[str, Any]:
    """The top level of an mkdocs.yml, with the tags only MkDocs understands (``!ENV``,
    ``!!python/name:``) read as None; the keys a preset needs are plain values.

    Uses PyYAML (which MkDocs depends on) when it is importable, else reads the plain
    ``key: value`` lines.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return _plain_keys(text)

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # any tag MkDocs defines
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return data if isinstance(data, dict) else {}


def _plain_keys(text: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for match in re.finditer(r"^(docs_dir|site_dir):\s*['\"]?([^'\"#\n]+?)['\"]?\s*(?:#.*)?$", text, re.M):
        found[match.group(1)] = match.group(2)
    return found
