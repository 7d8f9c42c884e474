"""App mode's options, checked for ``ServerConfig`` (kept small: no worker machinery imported)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .target import check_import_string, check_interface, target_of_object

if TYPE_CHECKING:
    from ..config import ServerConfig


def check_app_options(config: ServerConfig) -> dict[str, Any]:
    """The normalised values of the app options (to set on the frozen config)."""
    app = config.app
    reload_dirs = _reload_dirs(config.reload_dirs)
    if app is None:
        if config.reload is True:
            raise ConfigError("needs app mode: pass app='module:attribute' (--app)", option="reload", value=True)
        if reload_dirs:
            raise ConfigError(
                "needs app mode: pass app='module:attribute' (--app)", option="reload_dirs", value=reload_dirs[0]
            )
        return {"reload_dirs": ()}
    if config.proxy is not None:
        raise ConfigError("cannot be combined with proxy=: app mode runs the backend itself", option="app", value=app)
    interface = check_interface(config.interface)
    _check_numbers(config)
    reload = config.reload
    if reload is not None and not isinstance(reload, bool):
        raise ConfigError("must be True or False", option="reload", value=reload)
    app_dir = _app_dir(config.app_dir)
    if isinstance(app, str):
        text = check_import_string(app)
        module = text.rpartition(":")[0]
        if module.endswith(".py"):  # a file: main.py:app
            path = os.path.abspath(os.path.join(app_dir or os.getcwd(), module))
            if not os.path.isfile(path):
                raise ConfigError(f"file not found: {path}", option="app", value=app)
            text = f"{path}:{text.rpartition(':')[2]}"
            app_dir = app_dir or os.path.dirname(path)
        reload = True if reload is None else reload
        _check_reload_dirs(reload_dirs, reload)
        return {
            "app": text,
            "app_dir": app_dir or os.getcwd(),
            "reload": reload,
            "reload_dirs": reload_dirs,
            "interface": interface,
        }
    if not callable(app):
        raise ConfigError("must be an import string module:attribute, or an app object", option="app", value=app)
    if reload:
        raise ConfigError(
            "needs an import string such as 'main:app' when reload=True: a changed app is imported again by name "
            "in new worker processes",
            option="app",
            value=app,
        )
    _check_reload_dirs(reload_dirs, False)
    target = target_of_object(app, factory=config.factory, interface=interface)
    return {
        "app": target.import_string,
        "app_dir": app_dir or target.app_dir,
        "reload": False,
        "reload_dirs": (),
        "interface": interface,
    }


def _check_numbers(config: ServerConfig) -> None:
    workers = config.workers
    if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
        raise ConfigError("must be an int from 1 to 64", option="workers", value=workers)
    timeout = config.app_startup_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError("must be a number of seconds more than 0", option="app_startup_timeout", value=timeout)


def _app_dir(app_dir: object) -> str | None:
    if app_dir is None:
        return None
    if not isinstance(app_dir, (str, os.PathLike)):
        raise ConfigError("must be the path of a folder", option="app_dir", value=app_dir)
    if not os.path.isdir(app_dir):
        raise ConfigError(f"folder not found: {os.fspath(app_dir)}", option="app_dir", value=os.fspath(app_dir))
    return os.path.abspath(app_dir)


def _reload_dirs(value: object) -> tuple[str, ...]:
    """The folders of ``reload_dirs`` (one path or a list of them), absolute."""
    if isinstance(value, (str, os.PathLike)):
        value = [value]  # one folder; iterating a string would name each of its letters
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise ConfigError("must be a folder or a list of folders", option="reload_dirs", value=value)
    folders: list[str] = []
    for folder in value:
        if not isinstance(folder, (str, os.PathLike)):
            raise ConfigError("must be a folder or a list of folders", option="reload_dirs", value=folder)
        if not os.path.isdir(folder):
            raise ConfigError(f"folder not found: {os.fspath(folder)}", option="reload_dirs", value=os.fspath(folder))
        folders.append(os.path.abspath(folder))
    return tuple(folders)


def _check_reload_dirs(reload_dirs: tuple[str, ...], reload: bool) -> None:
    if reload_dirs and not reload:
        raise ConfigError(
            "needs reload on: with reload off no folder is watched for code", option="reload_dirs", value=reload_dirs[0]
        )
