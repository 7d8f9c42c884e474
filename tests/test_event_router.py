"""Router core on synthetic events: debounce, delay, frames, batches, timeouts, errors, async, chains, builder."""

from __future__ import annotations

import ast
import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import pytest

import execlib
from execlib import Action, CallbackTimeout, ChainRouter, Event, FileEvent, Router, RouterBuilder, route
from execlib.router import BaseRouter
from execlib.routers.path import PathRouter
from tests.helpers import wait_until

ROOT = "/watched"


def ev(name: str, action: Action = Action.MODIFIED, endpoint: str = ROOT) -> FileEvent:
    return FileEvent(endpoint, name, action)


@pytest.fixture
def router():
    r = Router()
    yield r
    r.close(2)


def test_file_event_is_a_small_frozen_value() -> None:
    event = FileEvent("/a/b", "c/d.txt", Action.CREATED)
    assert event.path == "/a/b/c/d.txt"
    assert isinstance(event, Event)
    assert event == FileEvent("/a/b", "c/d.txt", Action.CREATED)
    with pytest.raises(AttributeError):
        event.name = "x"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")  # slots


def test_sync_callback_gets_the_last_event_of_the_burst(router: Router) -> None:
    calls: list[FileEvent] = []
    router.register(ROOT, calls.append, debounce=30, delay=0)
    futures = [f for i in range(20) for f in router.submit(ev("a.txt", Action.CREATED if i == 0 else Action.MODIFIED))]
    assert len({id(f) for f in futures}) == 1, "one burst, one run, one shared future"
    wait(futures, timeout=5)
    assert calls == [ev("a.txt", Action.MODIFIED)]


def test_batch_callback_gets_the_burst_in_order_deduplicated_keeping_the_last(router: Router) -> None:
    batches: list[list[FileEvent]] = []
    router.register(ROOT, batches.append, debounce=30, delay=0, batch=True)
    sequence = [ev("a"), ev("b"), ev("a"), ev("c", Action.CREATED), ev("b", Action.DELETED)]
    futures = router.submit(sequence)
    wait(futures, timeout=5)
    # the dedup key is (name, action): "b modified" and "b deleted" both stay, "a" once, at its last place
    assert batches[0] == [ev("b"), ev("a"), ev("c", Action.CREATED), ev("b", Action.DELETED)]


def test_ordinary_routes_run_once_per_changed_file(router: Router) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def record(event: FileEvent) -> None:
        with lock:
            seen.append(event.name)

    router.register(ROOT, record, debounce=20, delay=0)
    wait(router.submit([ev("a"), ev("b"), ev("a"), ev("b")]), timeout=5)
    assert sorted(seen) == ["a", "b"]


def test_debounce_waits_for_quiet_then_delay_waits_before_running(router: Router) -> None:
    started: list[float] = []
    router.register(ROOT, lambda e: started.append(time.monotonic()), debounce=80, delay=60)
    sent = time.monotonic()
    wait(router.submit(ev("a")), timeout=5)
    assert started and started[0] - sent >= 0.14 - 0.005


def test_a_route_keeps_debounce_and_delay_in_seconds_under_names_that_say_so(router: Router, tmp_path) -> None:
    # register() takes milliseconds; the Route's fields are seconds, so they carry the unit in their names
    route = router.register(ROOT, print, debounce=250, delay=40)
    assert (route.debounce_s, route.delay_s) == (0.25, 0.04)
    assert not hasattr(route, "debounce") and not hasattr(route, "delay")
    path_route = PathRouter().register(tmp_path, print)
    assert (path_route.debounce_s, path_route.delay_s) == (Router.DEFAULT_DEBOUNCE / 1000, Router.DEFAULT_DELAY / 1000)


def test_zero_debounce_and_delay_runs_at_once(router: Router) -> None:
    done = threading.Event()
    router.register(ROOT, lambda e: done.set(), debounce=0, delay=0)
    router.submit(ev("a"))
    assert done.wait(2)


def test_frames_never_run_a_route_twice_at_once_and_run_once_more_after(router: Router) -> None:
    release = threading.Event()
    running = threading.Event()
    active = 0
    most = 0
    runs: list[list[str]] = []
    lock = threading.Lock()

    def slow(events: list[FileEvent]) -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
            runs.append([e.name for e in events])
        running.set()
        release.wait(5)
        with lock:
            active -= 1

    router.register(ROOT, slow, debounce=0, delay=0, batch=True)
    first = router.submit(ev("one"))
    assert running.wait(5)
    later = [f for name in ("two", "three", "four") for f in router.submit(ev(name))]
    assert len({id(f) for f in later}) == 1, "events queued behind a run share the next run"
    assert not later[0].done()
    release.set()
    wait(first + later, timeout=5)
    assert runs == [["one"], ["two", "three", "four"]]
    assert most == 1


def test_exception_is_logged_with_traceback_and_does_not_stop_other_runs(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    ok: list[str] = []

    def boom(event: FileEvent) -> None:
        if event.name == "bad":
            raise ValueError("broken callback")
        ok.append(event.name)

    router.register(ROOT, boom, debounce=0, delay=0, name="boom")
    with caplog.at_level(logging.ERROR, logger="execlib.router"):
        (bad,) = router.submit(ev("bad"))
        assert isinstance(bad.exception(timeout=5), ValueError)
        (good,) = router.submit(ev("good"))
        good.result(timeout=5)
    assert ok == ["good"]
    record = next(r for r in caplog.records if "boom" in r.getMessage())
    assert record.exc_info is not None and "broken callback" in caplog.text


def test_callback_timeout_is_logged_by_name_and_the_route_moves_on(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    names: list[str] = []

    def stuck(event: FileEvent) -> None:
        names.append(event.name)
        if event.name == "slow":
            release.wait(10)

    router.register(ROOT, stuck, debounce=0, delay=0, callback_timeout=0.1, name="stuck_cb")
    try:
        with caplog.at_level(logging.WARNING, logger="execlib.router"):
            (slow,) = router.submit(ev("slow"))
            with pytest.raises(CallbackTimeout):
                slow.result(timeout=5)
            (fast,) = router.submit(ev("slow"))  # same file: its frame was released by the timeout
            wait_until(lambda: names.count("slow") == 2, timeout=5)
        assert "stuck_cb" in caplog.text and "callback_timeout" in caplog.text
    finally:
        release.set()
    fast.result(timeout=5)


def test_actions_restrict_a_route(router: Router) -> None:
    calls: list[FileEvent] = []
    router.register(ROOT, calls.append, debounce=0, delay=0, actions=["created", Action.DELETED])
    assert router.submit(ev("a", Action.MODIFIED)) == []
    wait(router.submit(ev("a", Action.DELETED)), timeout=5)
    assert calls == [ev("a", Action.DELETED)]


def test_async_callback_runs_on_the_attached_loop(router: Router) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    seen: list[object] = []

    async def callback(event: FileEvent) -> str:
        seen.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return event.name

    try:
        router.attach_loop(loop)
        router.register(ROOT, callback, debounce=0, delay=0)
        (future,) = router.submit(ev("x"))
        assert future.result(timeout=5) == "x"
        assert seen == [loop]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_async_callback_without_a_loop_uses_one_router_loop_thread(router: Router) -> None:
    loops: list[object] = []

    async def callback(event: FileEvent) -> None:
        loops.append(asyncio.get_running_loop())

    router.register(ROOT, callback, debounce=0, delay=0)
    for name in ("a", "b", "c"):
        wait(router.submit(ev(name)), timeout=5)
    assert len(loops) == 3 and len({id(x) for x in loops}) == 1, "one loop reused, never one per call"
    router.close(2)
    assert not any(t.name == "execlib-router-loop" for t in threading.enumerate())


def test_async_callback_timeout_cancels_it(router: Router) -> None:
    cancelled = threading.Event()

    async def forever(event: FileEvent) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    router.register(ROOT, forever, debounce=0, delay=0, callback_timeout=0.05)
    (future,) = router.submit(ev("a"))
    with pytest.raises(CallbackTimeout):
        future.result(timeout=5)
    assert cancelled.wait(5)


def test_post_callbacks_run_after_all_callbacks_with_their_results(router: Router) -> None:
    got: list[tuple[list[Event], list[object]]] = []
    done = threading.Event()
    router.register(ROOT, lambda e: "first", debounce=0, delay=0)
    router.register(ROOT, lambda e: "second", debounce=10, delay=0)

    def post(events: list[Event], results: list[object]) -> None:
        got.append((events, results))
        done.set()

    router.add_post_callback(post)
    router.submit(ev("a"))
    assert done.wait(5)
    assert got[0][0] == [ev("a")]
    assert sorted(got[0][1]) == ["first", "second"]


def test_close_cancels_queued_bursts_and_waits_for_running_callbacks(router: Router) -> None:
    running = threading.Event()
    finished = threading.Event()

    def slow(event: FileEvent) -> None:
        running.set()
        time.sleep(0.2)  # the work being waited for, not synchronization
        finished.set()

    router.register(ROOT, slow, debounce=0, delay=0)
    router.register(ROOT, lambda e: None, debounce=10_000, delay=0)
    futures = router.submit(ev("a"))
    assert running.wait(5)
    before = threading.active_count()
    router.close(5)
    assert finished.is_set(), "close() waited for the running callback"
    queued = [f for f in futures if f.cancelled()]
    assert len(queued) == 1, "the debounced burst was cancelled"
    assert threading.active_count() < before
    assert not any(t.name.startswith(("execlib-callback", "execlib-router")) for t in threading.enumerate())


def test_chain_router_runs_routers_in_order_for_each_event() -> None:
    order: list[str] = []
    first, second = Router(), Router()

    def slow_first(event: FileEvent) -> str:
        time.sleep(0.05)  # work that the second router must wait for
        order.append("first")
        return "one"

    first.register(ROOT, slow_first, debounce=0, delay=0)
    second.register(ROOT, lambda e: order.append("second") or "two", debounce=0, delay=0)
    chain = ChainRouter([first, second])
    try:
        (future,) = chain.submit(ev("a"))
        assert future.result(timeout=5) == [["one"], ["two"]]
        assert order == ["first", "second"]
        assert chain.endpoints() == [ROOT]
    finally:
        chain.close(2)


def test_chain_router_owns_no_router_machinery() -> None:
    # A chain only forwards to its routers: it has no routes, timer heap, pool or loop of its own.
    first = Router()
    chain = ChainRouter([first])
    assert isinstance(chain, BaseRouter) and not isinstance(chain, Router)
    leftovers = [a for a in ("routes", "_lock", "_slots", "_heap", "_pool", "_timer", "_own_loop") if hasattr(chain, a)]
    assert leftovers == []
    with pytest.raises(TypeError, match="register routes on the chained routers"):
        chain.register(ROOT, print)
    chain.close(2)


def test_a_listener_takes_any_base_router(tmp_path) -> None:
    """The listener relies on the base-class methods only: a router of one's own is enough."""

    class Recorder(BaseRouter):
        def __init__(self) -> None:
            self.events: list[Event] = []

        def endpoints(self) -> list[str]:
            return [str(tmp_path)]

        def should_watch_dir(self, path: str) -> bool:
            return True

        def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
            pass

        def submit(self, events: Event | Iterable[Event]) -> list[Future[Any]]:
            self.events.extend([events] if isinstance(events, Event) else events)
            return []

        def close(self, timeout: float = 5.0) -> None:
            pass

    with pytest.raises(NotImplementedError):
        BaseRouter().submit(ev("a"))
    recorder = Recorder()
    listener = recorder.get_listener()
    listener.start()
    try:
        (tmp_path / "new.txt").write_text("x")
        wait_until(lambda: any(e.name == "new.txt" for e in recorder.events), message="the new file's event")
    finally:
        listener.stop(2)


def test_router_builder_groups_methods_by_router_and_group(tmp_path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "styles").mkdir()
    calls: list[tuple[str, str]] = []

    class Site(RouterBuilder):
        @route("build", "pages", glob="**/*.html", debounce=0, delay=0)
        def on_page(self, event: FileEvent) -> None:
            calls.append(("page", event.name))

        @route("build", "styles", glob="**/*.css", debounce=0, delay=0)
        def on_style(self, event: FileEvent) -> None:
            calls.append(("style", event.name))

        @route("publish", "pages", glob="**/*", debounce=0, delay=0)
        def publish(self, event: FileEvent) -> None:
            calls.append(("publish", event.name))

    builder = Site(endpoints={"pages": tmp_path / "pages", "styles": tmp_path / "styles"})
    chain = builder.build()
    try:
        assert set(builder.routers) == {"build", "publish"}
        assert all(isinstance(r, PathRouter) for r in builder.routers.values())
        pages = str(tmp_path / "pages")
        (future,) = chain.submit(FileEvent(pages, "index.html", Action.MODIFIED))
        future.result(timeout=5)
        assert calls == [("page", "index.html"), ("publish", "index.html")]
        calls.clear()
        chain.submit(FileEvent(str(tmp_path / "styles"), "a.css", Action.MODIFIED))[0].result(timeout=5)
        assert calls == [("style", "a.css")]
    finally:
        chain.close(2)


def test_builder_names_a_missing_group(tmp_path) -> None:
    class Broken(RouterBuilder):
        @route("r", "nowhere")
        def cb(self, event: FileEvent) -> None: ...

    with pytest.raises(KeyError, match="nowhere"):
        Broken(endpoints={}).build()


def test_register_refuses_unknown_keywords(router: Router) -> None:
    # once accepted into **options and ignored: a typo made a route that took every event
    with pytest.raises(TypeError, match="unexpected keyword argument 'debouce'"):
        router.register(ROOT, print, debouce=0)
    assert router.routes == []


def test_builder_passes_a_misspelt_route_option_on_as_a_type_error(tmp_path) -> None:
    class Typo(RouterBuilder):
        @route("r", "pages", globs="**/*.html")
        def cb(self, event: FileEvent) -> None: ...

    with pytest.raises(TypeError, match="globs"):
        Typo(endpoints={"pages": tmp_path}).build()


# -- module structure ---------------------------------------------------------------------------

ROUTER_MODULES = ("execlib.router", "execlib.routers.path", "execlib.routers.chain", "execlib.routers.builder")


def runtime_imports() -> dict[str, set[str]]:
    """execlib module -> the execlib modules it imports when it runs: at module level or inside a function.

    Imports under ``if TYPE_CHECKING:`` are left out: they never run.
    """
    package = Path(execlib.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for stmt in node.body
            for inner in ast.walk(stmt)
        }
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if is_package else name.split(".")[:-1]
                prefix = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (prefix, node.module or "") if p)
                targets |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_router_modules_are_on_no_import_cycle() -> None:
    # RouterBuilder once lived in router.py and imported PathRouter inside build(), because
    # routers/path.py imports router.py: a cycle only a function-level import kept from failing.
    graph = runtime_imports()

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return seen

    assert graph["execlib.routers.builder"] >= {"execlib.routers.chain", "execlib.routers.path"}
    on_a_cycle = [module for module in ROUTER_MODULES if module in reachable(module)]
    assert on_a_cycle == []


@pytest.mark.parametrize("module", ROUTER_MODULES)
def test_each_router_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # a cycle broken by import order would fail here for the module imported first
    code = f"import {module}, sys; print(sorted(m for m in sys.modules if m.startswith('execlib.listener')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # routers load no listener code until a listener is asked for
