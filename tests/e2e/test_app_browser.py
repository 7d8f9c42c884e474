"""App mode in headless Chromium: real workers behind the front server, a real page watching them.

A code edit restarts the workers and reloads the page once, with no error page at any moment; a
broken app shows its error in the page (and as the page, for a fresh load) until a fix reloads
it; a template edit reloads the page and a stylesheet edit swaps the CSS, neither restarting the
workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ..app_support import alive, app_server, save, worker_pids, write_fastapi_app
from ..helpers import wait_until
from .pages import connected, settled, wait_reported

# Every document the tab loads, in order (sessionStorage survives location.reload()): its title
# and the text of its #msg, recorded as soon as its DOM is there.
LOAD_LOG = """
document.addEventListener("DOMContentLoaded", () => {
  const log = JSON.parse(sessionStorage.getItem("execlib-test-loads") || "[]");
  const msg = document.getElementById("msg");
  log.push({ title: document.title, msg: msg ? msg.textContent : null });
  sessionStorage.setItem("execlib-test-loads", JSON.stringify(log));
});
"""

APP_TITLE = "app"  # the <title> of the app's own "/" page (tests/app_support.py)
PROBLEM_TITLE = "execlib: the app is not running"  # the error page's (execlib/app/front.py)

# main.py with a syntax error on a line that also holds markup in a comment: the traceback
# quotes that line, and the overlay and the error page must show the markup as text.
BROKEN_APP = """\
from fastapi import FastAPI

app = FastAPI(  # <b>not bold</b>
"""


class Navigations:
    """The main frame's navigations of ``page``: each response's (status, url), and each failure."""

    def __init__(self, page) -> None:
        self.page = page
        self.responses: list[tuple[int, str]] = []
        self.failed: list[tuple[str, str | None]] = []
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _main(self, request) -> bool:
        return request.is_navigation_request() and request.frame == self.page.main_frame

    def _response(self, response) -> None:
        if self._main(response.request):
            self.responses.append((response.status, response.url))

    def _failed(self, request) -> None:
        if self._main(request):
            self.failed.append((request.url, request.failure))

    @property
    def statuses(self) -> list[int]:
        return [status for status, _ in self.responses]


def loads(page) -> list[dict[str, str | None]]:
    return json.loads(page.evaluate("sessionStorage.getItem('execlib-test-loads') || '[]'"))


def open_app_page(context, url: str):
    page = context.new_page()
    page.add_init_script(LOAD_LOG)
    navigations = Navigations(page)
    page.goto(url)
    connected(page)
    return page, navigations


def show(page, selector: str, text: str, navigations: Navigations) -> None:
    """Wait until the element at ``selector`` says ``text`` (the page reloads by itself meanwhile)."""
    try:
        page.wait_for_function(
            "([selector, text]) => document.querySelector(selector)?.textContent === text", arg=[selector, text]
        )
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"{selector} never said {text!r}; the page's navigations: {navigations.responses}, "
            f"failed: {navigations.failed}; it shows: {page.evaluate('document.body?.innerText')!r}"
        ) from None


def shown_pid(page) -> int:
    return int(page.text_content("#pid"))


def quiet(page, server, pids: list[int], gone: list[int]) -> None:
    """Wait until the restart is over: only ``pids`` serve, the ``gone`` workers have exited, no
    generation is starting, and the page has had every change the server sent."""
    supervisor = server.app_mode.supervisor
    wait_until(
        lambda: worker_pids(server) == pids and not any(map(alive, gone)) and supervisor.settled.is_set(),
        15,
        message=f"workers {pids} alone, {gone} gone",
    )
    connected(page)
    settled(page, server)


def overlay(page) -> dict[str, object] | None:
    """The error overlay's title and text (it lives in a shadow root), and how many <b> elements exist."""
    return page.evaluate(
        """() => {
        const host = document.getElementById("execlib-error-overlay");
        if (!host) return null;
        const root = host.shadowRoot;
        return {
          title: root.querySelector(".title").textContent,
          text: root.querySelector("pre").textContent,
          bold: document.querySelectorAll("b").length + root.querySelectorAll("b").length,
        };
    }"""
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    write_fastapi_app(folder)
    return folder


def test_code_edits_reload_the_page_once_and_never_show_an_error(folder: Path, context) -> None:
    with app_server(folder) as server:
        page, navigations = open_app_page(context, server.url)
        assert page.text_content("#msg") == "version 1"
        pid = shown_pid(page)
        assert worker_pids(server) == [pid]
        for edit in range(2, 5):
            write_fastapi_app(folder, version=f"version {edit}")
            show(page, "#msg", f"version {edit}", navigations)  # no manual refresh
            new_pid = shown_pid(page)
            assert new_pid != pid  # answered by a new worker: the code was reloaded
            quiet(page, server, [new_pid], [pid])
            pid = new_pid
            # exactly one more load per edit, each a 200 answered by the app: no error page, no
            # "still starting" page, no refused or aborted navigation while the workers restarted
            assert navigations.failed == []
            assert navigations.statuses == [200] * edit, navigations.responses
            assert loads(page) == [{"title": APP_TITLE, "msg": f"version {n}"} for n in range(1, edit + 1)]
            assert page.evaluate("window.__execlibLiveReload.reloads") == 0  # a fresh document since


def test_syntax_error_shows_in_the_page_and_a_fix_reloads_it(folder: Path, context) -> None:
    with app_server(folder) as server:
        page, navigations = open_app_page(context, server.url)
        pid = shown_pid(page)

        save(folder / "main.py", BROKEN_APP)
        page.wait_for_selector("#execlib-error-overlay", state="attached")
        shown = overlay(page)
        assert shown is not None
        assert "SyntaxError" in f"{shown['title']}\n{shown['text']}", shown
        assert "# <b>not bold</b>" in str(shown["text"]), shown  # the line quoted as text
        assert shown["bold"] == 0  # ... and not parsed as markup
        wait_until(lambda: not alive(pid), 15, message="the old worker to stop")
        assert page.text_content("#msg") == "version 1"  # the open page stays, under the overlay
        assert navigations.statuses == [200]

        # a page opened while the app is broken gets the error page, with the live-reload client
        broken, broken_navigations = open_app_page(context, server.url)
        assert broken_navigations.statuses == [500]
        assert broken.title() == PROBLEM_TITLE
        assert "SyntaxError" in broken.text_content("#execlib-problem")
        assert "# <b>not bold</b>" in broken.text_content("pre")
        assert broken.evaluate("document.querySelectorAll('b').length") == 0

        write_fastapi_app(folder, version="version 2")
        for each, its_navigations in ((page, navigations), (broken, broken_navigations)):
            show(each, "#msg", "version 2", its_navigations)  # no manual refresh
            each.wait_for_selector("#execlib-error-overlay", state="detached")
        new_pid = shown_pid(page)
        assert shown_pid(broken) == new_pid != pid
        quiet(page, server, [new_pid], [pid])
        connected(broken)
        settled(broken, server)
        assert overlay(page) is None and overlay(broken) is None
        assert navigations.failed == [] and broken_navigations.failed == []
        assert navigations.statuses == [200, 200], navigations.responses
        assert broken_navigations.statuses == [500, 200], broken_navigations.responses
        assert [load["title"] for load in loads(broken)] == [PROBLEM_TITLE, APP_TITLE]
        assert loads(page) == [{"title": APP_TITLE, "msg": "version 1"}, {"title": APP_TITLE, "msg": "version 2"}]


def test_template_edit_reloads_the_page_without_a_restart(folder: Path, context) -> None:
    with app_server(folder, watch=[folder / "templates"]) as server:
        page, navigations = open_app_page(context, server.url + "page")
        assert page.text_content("#msg") == "template one"
        pid = shown_pid(page)
        wait_reported(server, 1)

        save(folder / "templates" / "page.html", "<p id='msg'>template two</p>")
        show(page, "#msg", "template two", navigations)  # no manual refresh
        assert shown_pid(page) == pid  # the same worker rendered it: no restart
        quiet(page, server, [pid], [])
        assert navigations.failed == []
        assert navigations.statuses == [200, 200], navigations.responses
        assert [load["msg"] for load in loads(page)] == ["template one", "template two"]


def test_stylesheet_edit_is_swapped_in_place_without_a_restart(folder: Path, tmp_path: Path, context) -> None:
    # the stylesheet comes from a folder mounted at /static (no ROOT: the app answers everything else)
    static = tmp_path / "static"
    static.mkdir()
    stylesheet = save(static / "style.css", "#msg { color: rgb(255, 0, 0); }")
    with app_server(folder, mounts={"/static": static}) as server:
        page, navigations = open_app_page(context, server.url)
        color = "getComputedStyle(document.getElementById('msg')).color"
        assert page.evaluate(color) == "rgb(255, 0, 0)"
        pid = shown_pid(page)
        wait_reported(server, 1)
        wait_until(
            lambda: any("static/style.css" in (p.resources or ()) for p in server.hub.pages),
            10,
            message="the page to report its stylesheet",
        )
        page.evaluate("window.marker = 'kept'")

        save(stylesheet, "#msg { color: rgb(0, 0, 255); }")
        page.wait_for_function(f"{color} === 'rgb(0, 0, 255)'")
        assert page.evaluate("window.marker") == "kept"  # swapped in place: no reload
        assert page.evaluate("window.__execlibLiveReload.cssSwaps") == 1
        assert shown_pid(page) == pid
        quiet(page, server, [pid], [])
        assert navigations.statuses == [200] and navigations.failed == []
        assert len(loads(page)) == 1
