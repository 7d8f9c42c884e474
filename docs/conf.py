"""Sphinx configuration for the execlib documentation.

Built by ``scripts/test`` with warnings as errors:
``sphinx-build -q -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import sys

# Document the execlib in this checkout, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import execlib  # noqa: E402

project = "execlib"
author = "the execlib authors"
copyright = "the execlib authors"
release = execlib.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

exclude_patterns = ["_build"]
root_doc = "index"
nitpicky = False
default_role = "literal"

# Members in source order; signatures with their annotations and literal defaults; the types are not linked
# (nitpicky is off) and long ones are not repeated in the description.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = False

html_theme = "alabaster"
html_title = f"execlib {release}"
html_theme_options = {
    "description": "A dev server with live reload, and a file-event routing framework.",
    "fixed_sidebar": True,
}
