"""App mode with real workers: FastAPI and WSGI apps, reload, lifespan, drain, respawn, workers, API forms."""

from __future__ import annotations

import concurrent.futures
import sys
from pathlib import Path

import httpx
import pytest

import execlib
from execlib import ConfigError

from .app_support import (
    alive,
    app_server,
    children_running_workers,
    kill,
    lifespan_events,
    save,
    worker_pids,
    write_fastapi_app,
    write_wsgi_app,
)
from .helpers import wait_until

HTML = {"accept": "text/html"}


def version_of(url: str) -> str:
    return httpx.get(url + "pid", timeout=30).json()["version"]


def test_a_fastapi_app_is_served_with_the_client_injected(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    with app_server(tmp_path) as server:
        page = httpx.get(server.url, headers=HTML, timeout=30)
        assert page.status_code == 200 and "version 1" in page.text
        assert '<script src="/livereload.js"' in page.text  # injected into the app's HTML
        data = httpx.get(server.url + "pid", timeout=30).json()
        assert data["pid"] in worker_pids(server)
        assert data["pid"] != __import__("os").getpid()  # never in execlib's own process
        # the app's own 500 passes through untouched: not execlib's problem page
        boom = httpx.get(server.url + "boom", headers=HTML, timeout=30)
        assert boom.status_code == 500 and boom.text == "Internal Server Error"
        state = httpx.get(server.url + "__execlib__/backend", timeout=30).json()
        assert state["app"] == "main:app" and state["up"] is True and state["pids"] == worker_pids(server)


def test_a_plain_wsgi_callable_is_detected_and_served(tmp_path: Path) -> None:
    write_wsgi_app(tmp_path)
    with app_server(tmp_path, app="wsgi_app:app") as server:
        answer = httpx.get(server.url + "some/path", timeout=30)
        assert answer.status_code == 200
        assert answer.text.startswith("wsgi says hello from ") and answer.text.endswith(" at /some/path")


@pytest.mark.parametrize("event_loop", ["auto", "asyncio"])  # uvloop when installed, and asyncio's own
def test_a_code_change_restarts_once_and_lifespan_runs_once_per_generation(tmp_path: Path, event_loop: str) -> None:
    write_fastapi_app(tmp_path)
    with app_server(tmp_path, event_loop=event_loop) as server:
        first = worker_pids(server)
        assert lifespan_events(tmp_path) == [("startup", first[0])]
        write_fastapi_app(tmp_path, "version 2")
        wait_until(lambda: version_of(server.url) == "version 2", 30, message="the new code")
        second = worker_pids(server)
        assert second != first
        wait_until(lambda: ("shutdown", first[0]) in lifespan_events(tmp_path), 10, message="the old shutdown")
        assert lifespan_events(tmp_path) == [("startup", first[0]), ("startup", second[0]), ("shutdown", first[0])]
        assert server.app_mode is not None and server.app_mode.supervisor.live.number == 2  # one restart
    assert lifespan_events(tmp_path)[-1] == ("shutdown", second[0])


def test_requests_during_a_restart_are_held_and_one_in_flight_completes(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    # the drain waits for the slow request (2 s) rather than cutting it off at the default 1 s
    with app_server(tmp_path, graceful_timeout=5.0) as server, concurrent.futures.ThreadPoolExecutor(2) as pool:
        old_pid = worker_pids(server)[0]
        slow = pool.submit(httpx.get, server.url + "slow?seconds=2", timeout=30)
        wait_until(lambda: (tmp_path / "slow.started").exists(), 10, message="the slow request to start")
        write_fastapi_app(tmp_path, "version 2")

        def poll_during_restart() -> list[int]:
            statuses = []
            with httpx.Client(timeout=30) as client:
                while True:
                    answer = client.get(server.url + "pid")
                    statuses.append(answer.status_code)
                    if answer.status_code != 200 or answer.json()["version"] == "version 2":
                        return statuses

        statuses = pool.submit(poll_during_restart).result(60)
        assert set(statuses) == {200}, statuses  # held while the new workers started, never refused
        done = slow.result(30)
        assert done.status_code == 200 and done.text == f"slow done by {old_pid} (version 1)"


def test_a_syntax_error_is_shown_and_a_fix_recovers(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    with app_server(tmp_path) as server:
        main = tmp_path / "main.py"
        good = main.read_text()
        save(main, good + "\nbroken = <b>not bold</b>\n")  # the traceback quotes the line: escaped, never markup
        page = wait_until(
            lambda: (r := httpx.get(server.url, headers=HTML, timeout=30)).status_code == 500 and r, 30, message="500"
        )
        assert "SyntaxError" in page.text and "&lt;b&gt;not bold&lt;/b&gt;" in page.text and "<b>" not in page.text
        assert '<script src="/livereload.js"' in page.text  # the page reloads itself once fixed
        assert server.hub.error is not None and "SyntaxError" in server.hub.error[1]
        plain = httpx.get(server.url + "pid", timeout=30)
        assert plain.status_code == 500 and plain.text.startswith("execlib: ")  # an API call gets a line
        save(main, good.replace("version 1", "version 2"))
        wait_until(lambda: httpx.get(server.url + "pid", timeout=30).status_code == 200, 30, message="recovery")
        assert version_of(server.url) == "version 2" and server.hub.error is None


def test_a_killed_worker_is_respawned_and_past_the_budget_the_error_shows(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    with app_server(tmp_path) as server:
        supervisor = server.app_mode.supervisor
        first = worker_pids(server)[0]
        kill(first)
        wait_until(lambda: worker_pids(server) and worker_pids(server)[0] != first, 30, message="a new worker")
        assert httpx.get(server.url + "pid", timeout=30).json()["pid"] == worker_pids(server)[0]
        assert supervisor.respawned == 1
        # the app kills its own worker until the budget (5 within 60 s) is spent
        for _ in range(supervisor.budget + 1):
            if wait_until(lambda: supervisor.problem or worker_pids(server), 30) is supervisor.problem:
                break
            # the worker's connection drops without an answer: a bad gateway
            assert httpx.get(server.url + "die", timeout=30).status_code == 502
        wait_until(lambda: supervisor.problem is not None, 30, message="the budget to run out")
        assert "died 6 times within 60 s" in supervisor.problem.title
        page = httpx.get(server.url, headers=HTML, timeout=30)
        assert page.status_code == 500 and "died 6 times" in page.text
        # none respawned past the budget: what runs is at most the standby, waiting for the next change
        assert set(children_running_workers()) <= set(supervisor.standby_pids)
        # reload mode waits for a change instead of exiting; a change starts the app again
        write_fastapi_app(tmp_path, "version 2")
        wait_until(lambda: httpx.get(server.url + "pid", timeout=30).status_code == 200, 30, message="a restart")
        assert version_of(server.url) == "version 2"


def test_two_workers_answer_from_two_pids(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    with app_server(tmp_path, workers=2) as server:
        pids = set(worker_pids(server))
        assert len(pids) == 2
        seen: set[int] = set()

        def batch() -> bool:
            # concurrent requests need several connections, which the kernel spreads over both workers
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = pool.map(lambda _: httpx.get(server.url + "slow?seconds=0.2", timeout=30).text, range(8))
                seen.update(int(text.split()[3]) for text in answers)
            return seen == pids

        wait_until(batch, 30, message="both workers to answer")


def test_serve_an_import_string_and_an_object_from_the_python_api(tmp_path: Path, monkeypatch) -> None:
    write_fastapi_app(tmp_path)
    monkeypatch.chdir(tmp_path)
    captured = []
    url = execlib.serve("main:app", port=0, foreground=False, pre_serve=captured.append)
    server = captured[0]
    try:
        assert server.app_mode is not None and server.app_mode.reload is True  # on for an import string
        assert server.static_site is None  # no folder of the current directory in front of the app
        assert httpx.get(url + "main.py", timeout=30).status_code == 404  # the app's source is not served
        assert version_of(url) == "version 1"
    finally:
        server.shutdown()
        server.wait(30)
    # an app object: imported by name in the workers, without reload
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("main", None)
    import main  # type: ignore[import-not-found]

    with pytest.raises(ConfigError, match="needs an import string"):
        execlib.serve(main.app, port=0, foreground=False, reload=True)
    captured.clear()
    url = execlib.serve(main.app, port=0, foreground=False, pre_serve=captured.append)
    server = captured[0]
    try:
        assert server.config.app == "main:app" and server.app_mode.reload is False
        assert version_of(url) == "version 1"
    finally:
        server.shutdown()
        server.wait(30)
    wait_until(lambda: not children_running_workers(), 10, message="no worker left")


def test_serve_background_runs_an_app_detached(tmp_path: Path, monkeypatch) -> None:
    write_fastapi_app(tmp_path / "app")
    (tmp_path / "lib").mkdir()
    monkeypatch.chdir(tmp_path)
    url = execlib.serve_background(
        "main:app", app_dir="app", reload_dirs=["lib"], port=0, pid_path=tmp_path / "app.pid", timeout=60
    )
    pids = []
    try:
        pids.append(httpx.get(url + "pid", timeout=30).json()["pid"])
        write_fastapi_app(tmp_path / "app", "version 2")
        wait_until(lambda: version_of(url) == "version 2", 30, message="the detached server to reload")
        pids.append(httpx.get(url + "pid", timeout=30).json()["pid"])
        save(tmp_path / "lib" / "shared.py", "TEXT = 'x'\n")  # the reload folder reached the detached child
        wait_until(lambda: httpx.get(url + "pid", timeout=30).json()["pid"] not in pids, 30, message="a restart")
        pids.append(httpx.get(url + "pid", timeout=30).json()["pid"])
    finally:
        assert execlib.stop(tmp_path / "app.pid")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
    for pid in pids:  # stopping the server stopped its workers (not children of this process)
        wait_until(lambda pid=pid: not alive(pid), 10, message=f"worker {pid} to exit")


def test_the_interface_is_guessed_from_the_callable_and_can_be_forced() -> None:
    from fastapi import FastAPI

    from execlib.app.target import guess_interface

    async def asgi_function(scope, receive, send) -> None: ...

    class AsgiClass:
        async def __call__(self, scope, receive, send) -> None: ...

    def wsgi_function(environ, start_response) -> list[bytes]:
        return []

    class WsgiClass:
        def __call__(self, environ, start_response) -> list[bytes]:
            return []

    assert guess_interface(FastAPI()) == "asgi"
    assert guess_interface(asgi_function) == "asgi" and guess_interface(AsgiClass()) == "asgi"
    assert guess_interface(wsgi_function) == "wsgi" and guess_interface(WsgiClass()) == "wsgi"


def test_a_forced_interface_is_used(tmp_path: Path) -> None:
    # --interface wsgi: no guessing, the callable goes through the WSGI adapter
    write_wsgi_app(tmp_path)
    with app_server(tmp_path, app="wsgi_app:app", interface="wsgi") as server:
        assert httpx.get(server.url, timeout=30).text.startswith("wsgi says hello")
    with pytest.raises(ConfigError, match="interface='grpc' must be 'auto', 'asgi' or 'wsgi'"):
        execlib.ServerConfig(app="wsgi_app:app", interface="grpc")


def test_a_port_in_use_fails_before_any_worker_starts(tmp_path: Path) -> None:
    import socket

    write_fastapi_app(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(execlib.PortInUseError, match="already in use"):
            execlib.serve("main:app", app_dir=tmp_path, port=port, foreground=False)
    assert not children_running_workers()
    assert not (tmp_path / "lifespan.log").exists()  # the app never started


def test_restarts_start_from_a_standby_that_never_preloads_the_apps_own_modules(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    save(tmp_path / "helpers.py", "TEXT = 'helper one'\n")
    main = tmp_path / "main.py"
    save(main, main.read_text() + "\nimport helpers\n\n\n@app.get('/helper')\ndef helper():\n    return helpers.TEXT\n")
    with app_server(tmp_path) as server:
        supervisor = server.app_mode.supervisor
        assert httpx.get(server.url + "helper", timeout=30).json() == "helper one"
        wait_until(lambda: supervisor.standby_pids, 30, message="a standby worker")
        assert "fastapi" in supervisor._preload and "starlette.routing" in supervisor._preload
        assert "helpers" not in supervisor._preload and "main" not in supervisor._preload
        # a change of a module the app imports: the standby imports it now, fresh
        save(tmp_path / "helpers.py", "TEXT = 'helper two'\n")
        wait_until(lambda: httpx.get(server.url + "helper", timeout=30).json() == "helper two", 30)
        assert supervisor.standby_starts == 1 and supervisor.live.number == 2
        assert supervisor.live.workers[0].ready.result()["standby"] is True


def test_a_change_under_a_reload_folder_restarts_the_app(tmp_path: Path) -> None:
    # an editable package beside the app: importable (here through sys.path), outside the app's folder
    app_dir, lib = tmp_path / "app", tmp_path / "lib"
    write_fastapi_app(app_dir)
    lib.mkdir()
    save(lib / "shared.py", "TEXT = 'shared one'\n")
    main = app_dir / "main.py"
    code = f"\nimport sys\nsys.path.insert(0, {str(lib)!r})\nimport shared\n\n\n@app.get('/shared')\n"
    save(main, main.read_text() + code + "def shared_text():\n    return shared.TEXT\n")
    with app_server(app_dir, reload_dirs=[lib]) as server:
        assert server.app_mode is not None and set(server.app_mode.folders) == {str(app_dir), str(lib)}
        assert httpx.get(server.url + "shared", timeout=30).json() == "shared one"
        save(lib / "shared.py", "TEXT = 'shared two'\n")
        wait_until(lambda: httpx.get(server.url + "shared", timeout=30).json() == "shared two", 30)
        assert server.app_mode.supervisor.live.number == 2  # one restart


def test_a_reload_folder_is_never_preloaded_even_among_the_libraries() -> None:
    # a package being worked on may lie in site-packages: its old code must not wait in a standby
    import json
    import os

    from execlib.app.worker import preloadable_modules

    everything = preloadable_modules([])
    assert "json" in everything and "json.decoder" in everything and "os" in everything
    without_json = preloadable_modules([os.path.dirname(json.__file__)])
    assert "json" not in without_json and "json.decoder" not in without_json and "os" in without_json


def test_a_standby_is_not_used_once_packages_changed(tmp_path: Path, monkeypatch) -> None:
    from execlib.app import supervisor as supervisor_module

    write_fastapi_app(tmp_path)
    with app_server(tmp_path) as server:
        supervisor = server.app_mode.supervisor
        wait_until(lambda: supervisor.standby_pids, 30, message="a standby worker")
        standby = supervisor.standby_pids
        # as if a package were installed or upgraded since the standby imported its libraries
        monkeypatch.setattr(supervisor_module, "_libraries_stamp", lambda: (-1, -1))
        write_fastapi_app(tmp_path, "version 2")
        wait_until(lambda: version_of(server.url) == "version 2", 30, message="the new code")
        assert supervisor.standby_starts == 0 and worker_pids(server) != standby
        assert supervisor.live.workers[0].ready.result()["standby"] is False


def test_start_in_thread_waits_for_the_apps_first_workers_beyond_its_timeout(tmp_path: Path) -> None:
    # importing the app takes longer than start_in_thread's own timeout: the workers are waited for
    # on top of it (bounded by app_startup_timeout), like a build on start
    (tmp_path / "slowapp.py").write_text(
        "import time\ntime.sleep(2)\n\nasync def app(scope, receive, send):\n    pass\n"
    )
    server = execlib.Server(app="slowapp:app", app_dir=tmp_path, port=0, static=False)
    try:
        server.start_in_thread(timeout=0.5)
        assert server.app_mode.supervisor.live is not None and worker_pids(server)
    finally:
        server.shutdown()
        assert server.wait(30)
    wait_until(lambda: not children_running_workers(), 10, message="no worker left")


def test_an_app_printing_a_huge_line_is_served(tmp_path: Path, capfd) -> None:
    # a line longer than the supervisor's reader takes must not stall the worker on a full pipe
    write_wsgi_app(tmp_path)
    wsgi = tmp_path / "wsgi_app.py"
    save(wsgi, "print('x' * (3 << 20), flush=True)\nprint('after the long line', flush=True)\n" + wsgi.read_text())
    with app_server(tmp_path, app="wsgi_app:app") as server:
        assert httpx.get(server.url, timeout=30).text.startswith("wsgi says hello")
    err = capfd.readouterr().err
    assert "a line of the app's output was too long to show" in err and "after the long line" in err


def test_shutdown_while_the_first_workers_start_leaves_none(tmp_path: Path) -> None:
    import threading

    # the app takes 30 s to import (a model being loaded); shutdown comes long before
    (tmp_path / "slowapp.py").write_text(
        "import time\ntime.sleep(30)\n\nasync def app(scope, receive, send):\n    pass\n"
    )
    server = execlib.Server(app="slowapp:app", app_dir=tmp_path, port=0, static=False)
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    wait_until(children_running_workers, 30, message="the worker to start")
    server.shutdown()
    thread.join(30)
    assert not thread.is_alive()
    wait_until(lambda: not children_running_workers(), 10, message="no worker left")
