"""The worked example (examples/mdsite) and build failures, as a user sees them in Chromium.

A Markdown edit shows up in the page; a template syntax error shows the error
overlay (in a shadow root, as text, dismissable) and the fix removes it. A
failing shell-command build shows its command, exit status and output the same
way, and recovers when the command succeeds.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from execlib import Server

from ..conftest import write
from .pages import open_page, page_html, wait_reported, write_page

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mdsite"

OVERLAY_SHOWN = """() => {
  const host = document.getElementById('execlib-error-overlay');
  return !!(host && host.shadowRoot && host.shadowRoot.querySelector('pre'));
}"""

# What the overlay says, read from inside its shadow root; children counts show whether text became markup.
OVERLAY_CONTENT = """() => {
  const root = document.getElementById('execlib-error-overlay').shadowRoot;
  const pre = root.querySelector('pre');
  return {
    title: root.querySelector('.title').textContent,
    text: pre.textContent,
    preChildren: pre.children.length,
    markup: root.querySelectorAll('b, i').length,
  };
}"""


def load_example() -> ModuleType:
    """Import examples/mdsite/mdsite.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mdsite_example", EXAMPLE / "mdsite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mdsite_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """The example's own Server on port 0, over a copy of its content and templates."""
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE / "content", src / "content")
    shutil.copytree(EXAMPLE / "templates", src / "templates")
    server = load_example().make_server(src, tmp_path / "site", port=0)
    server.start_in_thread()
    try:
        yield server, src
    finally:
        server.shutdown()
        assert server.wait(10), "server did not stop"


def content_has(page, text: str) -> None:
    page.wait_for_function("t => document.getElementById('content')?.textContent.includes(t)", arg=text)


def overlay(page) -> dict:
    page.wait_for_function(OVERLAY_SHOWN)
    return page.evaluate(OVERLAY_CONTENT)


def test_build_on_start_writes_every_page(mdsite_server) -> None:
    server, src = mdsite_server
    site = Path(server.root)
    assert sorted(p.name for p in site.glob("*.html")) == ["about.html", "index.html"]
    assert "<h1>Welcome to mdsite</h1>" in (site / "index.html").read_text()


def test_markdown_edit_template_error_overlay_and_recovery(mdsite_server, context) -> None:
    server, src = mdsite_server
    page = open_page(context, server.url + "index.html")
    wait_reported(server, 1)
    content_has(page, "Welcome to mdsite")

    # 1. A Markdown edit: the page shows the rebuilt text.
    write(src / "content" / "index.md", "# Welcome to mdsite\n\nFreshly *edited* text.\n")
    content_has(page, "Freshly edited text.")
    assert page.evaluate("document.querySelector('#content em').textContent") == "edited"

    # 2. A template syntax error, with markup on the broken line: the overlay names the error, as text.
    template = src / "templates" / "page.html"
    good = template.read_text()
    write(template, good.replace('<main id="content">', '<b>{% if %}</b>\n  <main id="content">'))
    shown = overlay(page)
    assert "TemplateSyntaxError" in shown["title"] + shown["text"], shown
    assert "Expected an expression" in shown["title"] + shown["text"], shown
    assert "<b>{% if %}</b>" in shown["text"], shown  # the source line, shown as text
    assert shown["preChildren"] == 0 and shown["markup"] == 0, shown  # never parsed as HTML
    content_has(page, "Freshly edited text.")  # the last good page stays

    # 3. The dismiss button removes it.
    page.locator("#execlib-error-overlay button").click()  # Playwright's CSS pierces the open shadow root
    page.wait_for_function("!document.getElementById('execlib-error-overlay')")

    # 4. Another edit while the template is still broken fails again; the overlay is back.
    write(src / "content" / "index.md", "# Welcome to mdsite\n\nWritten while broken.\n")
    overlay(page)

    # 5. The fix: the overlay goes and the page shows the content built with the fixed template.
    write(template, good.replace("</main>", '</main>\n  <footer id="fixed">fixed template</footer>'))
    page.wait_for_function("!!document.getElementById('fixed')")
    content_has(page, "Written while broken.")
    page.wait_for_function("!document.getElementById('execlib-error-overlay')")


def test_failing_command_build_overlay_and_recovery(tmp_path: Path, serve, context) -> None:
    site, src = tmp_path / "site", tmp_path / "src"
    write_page(site / "index.html", "<p id='msg'>original</p>")
    write(src / "page.html", page_html("<p id='msg'>rebuilt</p>"))
    # Fails with markup in its output until the marker file exists; then "builds" by copying.
    command = (
        f"sh -c 'if [ -f {src}/OK ]; then cp {src}/page.html {site}/index.html; else echo \"<i>oops</i>\"; exit 2; fi'"
    )
    server = serve(site, watch=[src], build=command)
    page = open_page(context, server.url)
    wait_reported(server, 1)

    write(src / "page.html", page_html("<p id='msg'>rebuilt again</p>"))
    shown = overlay(page)
    assert command in shown["title"], shown
    assert "exit status 2" in shown["title"], shown
    assert shown["text"].strip() == "<i>oops</i>", shown  # the output, as text
    assert shown["preChildren"] == 0 and shown["markup"] == 0, shown
    assert page.evaluate("document.getElementById('msg').textContent") == "original"

    write(src / "OK", "")  # the marker is itself a source change: the next build succeeds
    page.wait_for_function("document.getElementById('msg')?.textContent === 'rebuilt again'")
    page.wait_for_function("!document.getElementById('execlib-error-overlay')")
