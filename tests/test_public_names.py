"""execlib/__init__.py names its public API three times, and the three must agree.

The lazy table (``_LAZY``, name -> module) is what ``execlib.NAME`` imports on first use; the
``if TYPE_CHECKING:`` imports are what type checkers and editors see (they never run); ``__all__``
is what ``from execlib import *`` and the API docs take. A name added to one and not the others
works at run time but is invisible to type checkers, or the other way round.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import execlib

INIT = Path(execlib.__file__)


def _module_of(node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from .x import y`` in execlib/__init__.py reads from."""
    assert node.level in (0, 1), ast.unparse(node)
    if node.level == 0:
        return node.module or ""
    return "execlib" + (f".{node.module}" if node.module else "")


def _imports(statements: list[ast.stmt]) -> dict[str, str]:
    """name -> module for the execlib imports among ``statements``."""
    names: dict[str, str] = {}
    for node in statements:
        if isinstance(node, ast.ImportFrom) and _module_of(node).startswith("execlib"):
            for alias in node.names:
                names[alias.asname or alias.name] = _module_of(node)
    return names


def _parsed() -> tuple[dict[str, str], dict[str, str], set[str]]:
    """(TYPE_CHECKING imports, imports done at import time, other public names assigned at top level)."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    type_checking: dict[str, str] = {}
    assigned: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            type_checking.update(_imports(node.body))
        elif isinstance(node, ast.Assign):
            assigned.update(t.id for t in node.targets if isinstance(t, ast.Name) and not t.id.startswith("_"))
    assigned.discard("__all__")
    return type_checking, _imports(tree.body), assigned | {"__version__"}


def test_lazy_names_are_the_type_checking_imports() -> None:
    type_checking, _, _ = _parsed()
    assert dict(execlib._LAZY) == type_checking  # same names, each from the same module


def test_all_is_the_lazy_names_and_the_eager_ones() -> None:
    _, eager, assigned = _parsed()
    assert len(execlib.__all__) == len(set(execlib.__all__)), "a name is listed twice in __all__"
    assert set(execlib.__all__) == set(execlib._LAZY) | set(eager) | assigned


def test_every_lazy_name_resolves_to_its_module() -> None:
    for name, module in execlib._LAZY.items():
        assert getattr(execlib, name) is getattr(importlib.import_module(module), name), name
