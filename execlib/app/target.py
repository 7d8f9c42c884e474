"""What app to run: an import string ``module:attribute``, found and loaded in a worker process.

Loading happens in the workers only (``load_app``); execlib's own process never imports the
user's code. An app object handed to ``serve()`` is turned back into an import string
(``target_of_object``): the workers import it by name.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

INTERFACES = ("auto", "asgi", "wsgi")
_NAME = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
# module:attribute, or path/to/file.py:attribute
_IMPORT_STRING = re.compile(rf"^({_NAME}|[^:]+\.py):{_NAME}$")
# The name a script run as __main__ is imported under in a worker: not "__main__", so its
# ``if __name__ == "__main__":`` block (which started execlib) does not run again there.
SCRIPT_MODULE = "__execlib_main__"


@dataclass(frozen=True)
class AppTarget:
    """An app to load in a worker: ``module:attribute`` with the folder it is imported from."""

    import_string: str
    app_dir: str
    factory: bool = False
    interface: str = "auto"

    @property
    def script(self) -> str | None:
        """The file a ``path/file.py:attribute`` string names (imported by path), else None."""
        module = self.import_string.rpartition(":")[0]
        return os.path.join(self.app_dir, module) if module.endswith(".py") else None

    @property
    def module(self) -> str:
        return SCRIPT_MODULE if self.script is not None else self.import_string.rpartition(":")[0]

    @property
    def attribute(self) -> str:
        return self.import_string.rpartition(":")[2]


def looks_like_import_string(text: str) -> bool:
    return bool(_IMPORT_STRING.match(text))


def check_import_string(text: object) -> str:
    if not isinstance(text, str) or not looks_like_import_string(text.strip()):
        raise ConfigError("must be an import string module:attribute, such as main:app", option="app", value=text)
    return text.strip()


def check_interface(value: object) -> str:
    if value not in INTERFACES:
        raise ConfigError("must be 'auto', 'asgi' or 'wsgi'", option="interface", value=value)
    return str(value)


def target_of_object(app: object, *, factory: bool, interface: str) -> AppTarget:
    """The import string of an app object (``serve(app)``): workers import it by name.

    ConfigError when no module-level name holds it (a lambda, an object made inside a function).
    """
    module_name = getattr(app, "__module__", None)
    # an instance (FastAPI(), Flask(...)) has its class's __module__: look the object up in __main__ too
    candidates = [m for m in (module_name, "__main__") if isinstance(m, str)]
    for name in dict.fromkeys(candidates):
        module = sys.modules.get(name)
        if module is None:
            continue
        for attribute, value in vars(module).items():
            if value is app and not attribute.startswith("__"):
                if name != "__main__":
                    return AppTarget(f"{name}:{attribute}", os.getcwd(), factory=factory, interface=interface)
                script = getattr(module, "__file__", None)
                if script is None:
                    break  # an interactive session: nothing a worker can import
                script = os.path.abspath(script)
                return AppTarget(f"{script}:{attribute}", os.path.dirname(script), factory=factory, interface=interface)
    raise ConfigError(
        "is not a module-level name that a worker process can import; pass an import string such as "
        "'main:app' (the app runs in worker processes, which import it by name)",
        option="app",
        value=app,
    )


class AppLoadError(Exception):
    """The app could not be loaded. ``target_error``: the import string names nothing (a user's
    mistake in the command, one line) rather than code that fails (a traceback, shown in the page)."""

    def __init__(self, message: str, *, target_error: bool, detail: str = "") -> None:
        super().__init__(message)
        self.target_error = target_error
        self.detail = detail


def load_app(target: AppTarget) -> tuple[Any, str]:
    """The ASGI 3 callable to serve and the interface it was found to be ("asgi" or "wsgi")."""
    if target.app_dir not in sys.path:
        sys.path.insert(0, target.app_dir)
    module = _import(target)
    obj: Any = module
    for part in target.attribute.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise AppLoadError(
                f"module '{target.module}' has no attribute '{target.attribute}'{hint}", target_error=True
            )
        obj = getattr(obj, part)
    if target.factory:
        if not callable(obj):
            raise AppLoadError(f"{target.import_string} is not callable, so it cannot be a factory", target_error=True)
        obj = obj()  # an exception here is the app's: a traceback, shown like an import error
    if not callable(obj):
        raise AppLoadError(
            f"{target.import_string} is not callable (it is a {type(obj).__name__}); name the ASGI or WSGI app"
            + ("" if target.factory else ", or pass --factory if it makes one"),
            target_error=True,
        )
    interface = target.interface if target.interface != "auto" else guess_interface(obj)
    if interface == "wsgi":
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(obj), "wsgi"
    return obj, "asgi"


def guess_interface(app: Any) -> str:
    """ASGI 3 when the callable is a coroutine function or its ``__call__`` is one; WSGI otherwise."""
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)  # noqa: B004  (the method itself is what is inspected)
    return "asgi" if inspect.iscoroutinefunction(call) else "wsgi"


def _import(target: AppTarget) -> Any:
    if target.script is not None:
        spec = importlib.util.spec_from_file_location(target.module, target.script)
        if spec is None or spec.loader is None:
            raise AppLoadError(f"cannot import the script {target.script}", target_error=True)
        module = importlib.util.module_from_spec(spec)
        sys.modules[target.module] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(target.module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if target.module == missing or target.module.startswith(missing + "."):
            raise AppLoadError(
                f"no module named '{missing}' in {target.app_dir}: run execlib from the app's folder or pass --app-dir",
                target_error=True,
            ) from None
        raise  # a module the app imports is missing: the app's error, with its traceback
