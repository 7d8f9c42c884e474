"""Listener behaviour shared by both backends, on real folders: real inotify and real watchfiles."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from execlib import Action, Event, FileEvent, Listener, ListenerDiedError, PathRouter
from tests.helpers import wait_until
from tests.listener_support import Recorder

BACKENDS = ["inotify", "watchfiles"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def watched(tmp_path: Path, backend: str) -> Iterator[tuple[Path, Recorder, Listener]]:
    """A started listener over tmp_path/root, recording every event as it comes (no debounce)."""
    root = tmp_path / "root"
    root.mkdir()
    recorder = Recorder()
    router = PathRouter()
    router.register(root, recorder, debounce=0, delay=0, batch=True)
    listener = router.get_listener(backend=backend)
    listener.start()
    yield root, recorder, listener
    listener.stop(5)


def saw(recorder: Recorder, name: str, *actions: Action) -> bool:
    return any(e.name == name and e.action in actions for e in recorder.events)


CREATED_ANY = (Action.CREATED, Action.MODIFIED, Action.MOVED_TO)


def test_create_modify_delete_a_file(watched) -> None:
    root, rec, _ = watched
    (root / "a.txt").write_text("one")
    wait_until(lambda: saw(rec, "a.txt", Action.CREATED, Action.MODIFIED))
    count = len(rec.events)
    (root / "a.txt").write_text("two")
    wait_until(lambda: any(e.name == "a.txt" and e.action is Action.MODIFIED for e in rec.events[count:]))
    (root / "a.txt").unlink()
    wait_until(lambda: saw(rec, "a.txt", Action.DELETED))
    assert all(e.endpoint == str(root) for e in rec.events)


def test_move_a_file(watched) -> None:
    root, rec, _ = watched
    (root / "old.txt").write_text("x")
    wait_until(lambda: saw(rec, "old.txt", *CREATED_ANY))
    (root / "old.txt").rename(root / "new.txt")
    wait_until(lambda: saw(rec, "new.txt", Action.MOVED_TO, Action.CREATED))
    wait_until(lambda: saw(rec, "old.txt", Action.MOVED_FROM, Action.DELETED))


def test_new_subfolder_then_a_file_in_it_at_once(watched) -> None:
    root, rec, _ = watched
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "f.txt").write_text("x")
    wait_until(lambda: saw(rec, "sub/deeper/f.txt", *CREATED_ANY))
    (root / "sub" / "deeper" / "g.txt").write_text("y")
    wait_until(lambda: saw(rec, "sub/deeper/g.txt", *CREATED_ANY))


def test_renamed_folder_then_a_file_in_it(watched) -> None:
    root, rec, _ = watched
    (root / "dir" / "inner").mkdir(parents=True)
    wait_until(lambda: saw(rec, "dir/inner", Action.CREATED))
    (root / "dir").rename(root / "renamed")
    wait_until(lambda: saw(rec, "renamed", Action.MOVED_TO, Action.CREATED))
    (root / "renamed" / "inner" / "f.txt").write_text("x")
    wait_until(lambda: saw(rec, "renamed/inner/f.txt", *CREATED_ANY))
    assert not rec.has("dir/inner/f.txt"), "events report the new path"


def test_atomic_save_gives_one_event_for_the_target(watched) -> None:
    root, rec, _ = watched
    target = root / "page.html"
    target.write_text("old")
    wait_until(lambda: saw(rec, "page.html", *CREATED_ANY))
    before = len(rec.events)
    temp = root / ".page.html.XXXX1"
    temp.write_text("new content")
    os.replace(temp, target)  # what editors do on save
    wait_until(lambda: any(e.name == "page.html" for e in rec.events[before:]))
    (root / "marker").write_text("x")  # a later event: everything before it has been delivered
    wait_until(lambda: rec.has("marker"))
    target_events = [e for e in rec.events[before:] if e.name == "page.html"]
    assert len(target_events) == 1, target_events
    assert target_events[0].action in (Action.MOVED_TO, Action.CREATED, Action.MODIFIED)
    assert target.read_text() == "new content"


def test_a_burst_of_writes_gives_one_run_that_sees_the_last_content(tmp_path: Path, backend: str) -> None:
    seen: list[str] = []
    runs: list[list[FileEvent]] = []

    def callback(events: list[FileEvent]) -> None:
        runs.append(events)
        seen.append((tmp_path / "burst.txt").read_text())

    router = PathRouter()
    router.register(tmp_path, callback, debounce=300, batch=True)
    with router.get_listener(backend=backend):
        start = time.monotonic()
        for i in range(500):
            (tmp_path / "burst.txt").write_text(f"version {i}")
        assert time.monotonic() - start < 1.0, "the burst itself must take under a second"
        wait_until(lambda: runs, timeout=5)
        (tmp_path / "after.txt").write_text("x")  # a change after the burst closes it off
        wait_until(lambda: len(runs) >= 2, timeout=5)
    assert seen[0] == "version 499"
    assert {e.name for e in runs[0]} == {"burst.txt"}
    assert {e.name for e in runs[1]} == {"after.txt"}, "the burst produced exactly one run"


def test_sync_and_async_callbacks(tmp_path: Path, backend: str) -> None:
    threads: dict[str, str] = {}
    loops: list[asyncio.AbstractEventLoop] = []
    done = threading.Event()

    def sync_cb(event: FileEvent) -> None:
        threads["sync"] = threading.current_thread().name

    async def async_cb(event: FileEvent) -> None:
        loops.append(asyncio.get_running_loop())
        done.set()

    router = PathRouter()
    router.register(tmp_path, sync_cb, glob="*.txt", debounce=0, delay=0)
    router.register(tmp_path, async_cb, glob="*.txt", debounce=0, delay=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    listener = router.get_listener(backend=backend)
    listener.attach_loop(loop)
    try:
        with listener:
            (tmp_path / "x.txt").write_text("x")
            assert done.wait(5)
            wait_until(lambda: "sync" in threads)
        assert threads["sync"].startswith("execlib-callback")
        assert loops[0] is loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_stop_is_prompt_safe_twice_before_start_and_from_another_thread(tmp_path: Path, backend: str) -> None:
    router = PathRouter()
    router.register(tmp_path, lambda e: None)
    listener = router.get_listener(backend=backend)
    listener.stop(1)  # before start: nothing to do
    before = {t.ident for t in threading.enumerate()}
    listener.start()
    assert listener.is_running
    start = time.monotonic()
    stopper = threading.Thread(target=listener.stop)
    stopper.start()
    stopper.join(5)
    assert time.monotonic() - start < 1.0
    listener.stop()
    assert not listener.is_running
    assert {t.ident for t in threading.enumerate()} <= before, "no thread left behind"


def test_stop_during_a_running_callback_waits_for_it_then_cancels_the_queue(tmp_path: Path, backend: str) -> None:
    running = threading.Event()
    release = threading.Event()
    finished = threading.Event()
    runs: list[str] = []

    def slow(event: FileEvent) -> None:
        runs.append(event.name)
        running.set()
        release.wait(5)
        finished.set()

    router = PathRouter()
    router.register(tmp_path, slow, debounce=0, delay=0, batch=False, glob="a.txt")
    router.register(tmp_path, lambda e: runs.append("queued"), debounce=60_000, glob="b.txt")
    listener = router.get_listener(backend=backend)
    listener.start()
    (tmp_path / "b.txt").write_text("queued for a minute")
    (tmp_path / "a.txt").write_text("x")
    assert running.wait(5)
    threading.Timer(0.2, release.set).start()  # the callback finishes while stop() waits
    listener.stop(5)
    assert finished.is_set(), "stop() waited for the running callback"
    assert "queued" not in runs
    assert not any(t.name.startswith(("execlib-callback", "execlib-listener")) for t in threading.enumerate())


def test_a_dead_listener_thread_is_restarted_and_keeps_watching(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    router = PathRouter()
    router.register(tmp_path, rec, debounce=0, delay=0, batch=True)
    listener = router.get_listener(backend=backend)
    real_submit = router.submit
    failures = [1]

    def flaky(events):  # the thread dies once, on an unexpected error
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("simulated listener crash")
        return real_submit(events)

    monkeypatch.setattr(router, "submit", flaky)
    with caplog.at_level(logging.ERROR, logger="execlib.listener"), listener:
        (tmp_path / "first.txt").write_text("x")
        wait_until(lambda: listener.restarts == 1)
        (tmp_path / "second.txt").write_text("x")
        rec.wait_for("second.txt")
    assert "simulated listener crash" in caplog.text and "restarting" in caplog.text


def test_restart_budget_spent_calls_on_fatal(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    router = PathRouter()
    router.register(tmp_path, lambda e: None, debounce=0, delay=0)
    listener = router.get_listener(backend=backend, max_restarts=2)
    errors: list[BaseException] = []
    listener.on_fatal = errors.append

    def broken(events):
        raise RuntimeError("always broken")

    monkeypatch.setattr(router, "submit", broken)
    listener.start()
    try:
        for i in range(3):  # each change kills the thread once more
            restarts = listener.restarts
            (tmp_path / f"f{i}.txt").write_text("x")
            wait_until(lambda r=restarts: listener.restarts > r or errors, timeout=5)
        assert len(errors) == 1 and isinstance(errors[0], ListenerDiedError)
        assert "always broken" in str(errors[0])
        wait_until(lambda: not listener.is_running)
    finally:
        listener.stop(2)


def test_deleted_and_recreated_root_is_watched_again(tmp_path: Path, backend: str) -> None:
    root = tmp_path / "site"
    root.mkdir()
    rec = Recorder()
    router = PathRouter()
    router.register(root, rec, debounce=0, delay=0, batch=True)
    with router.get_listener(backend=backend):
        (root / "a.txt").write_text("x")
        rec.wait_for("a.txt")
        shutil.rmtree(root)
        rec.wait_for("a.txt", Action.DELETED)
        root.mkdir()
        (root / "b.txt").write_text("back")
        rec.wait_for("b.txt", timeout=10)


@pytest.mark.parametrize("comeback", ["rename", "mkdir"])
def test_root_replaced_at_once_is_always_watched_again(tmp_path: Path, backend: str, comeback: str) -> None:
    # rm -rf ROOT immediately followed by mv ROOT.new ROOT (or mkdir ROOT): the root is back before the
    # listener has even read the deletion, so a race in noticing it shows within a few tries.
    root = tmp_path / "site"
    root.mkdir()
    rec = Recorder()
    router = PathRouter()
    router.register(root, rec, debounce=0, delay=0, batch=True)
    with router.get_listener(backend=backend):
        for i in range(30):
            new = tmp_path / "site.new"
            if comeback == "rename":
                new.mkdir()
                (new / f"shipped{i}.txt").write_text("x")
            shutil.rmtree(root)
            if comeback == "rename":
                os.rename(new, root)
            else:
                os.mkdir(root)
            if comeback == "rename":
                rec.wait_for(f"shipped{i}.txt", Action.CREATED, timeout=10)
            (root / f"edit{i}.txt").write_text("later")
            wait_until(lambda i=i: saw(rec, f"edit{i}.txt", *CREATED_ANY), timeout=10, message=f"edit{i}.txt")


def repoint(link: Path, target: Path, how: str) -> None:
    """Point symlink ``link`` at ``target`` the way deploys do: atomically (``ln -sfn``), or unlink and relink."""
    if how == "replace":
        temp = link.with_name(link.name + ".new")
        os.symlink(target, temp)
        os.replace(temp, link)
    else:
        os.unlink(link)
        os.symlink(target, link)


@pytest.mark.parametrize("how", ["replace", "relink"])
def test_symlinked_root_follows_the_symlink_when_it_is_repointed(tmp_path: Path, backend: str, how: str) -> None:
    v1, v2 = tmp_path / "releases" / "v1", tmp_path / "releases" / "v2"
    for release in (v1, v2):
        (release / "sub").mkdir(parents=True)
        (release / "both.txt").write_text(release.name)
    (v1 / "only1.txt").write_text("x")
    (v2 / "sub" / "only2.txt").write_text("x")
    current = tmp_path / "current"
    os.symlink(v1, current)
    rec = Recorder()
    router = PathRouter()
    router.register(current, rec, debounce=0, delay=0, batch=True)
    with router.get_listener(backend=backend):
        (v1 / "before.txt").write_text("x")
        rec.wait_for("before.txt")
        repoint(current, v2, how)
        # from current's side, v1's files went and v2's came
        rec.wait_for("sub/only2.txt", Action.CREATED)
        rec.wait_for("only1.txt", Action.DELETED)
        assert rec.has("both.txt", Action.CREATED)
        (v1 / "stale.txt").write_text("an edit in the release no longer served")
        (v2 / "fresh.txt").write_text("x")
        rec.wait_for("fresh.txt")
        (v2 / "sub" / "deep.txt").write_text("x")
        rec.wait_for("sub/deep.txt")
        assert not rec.has("stale.txt")
        assert {e.endpoint for e in rec.events} == {str(current)}, "events keep the path as given"

        repoint(current, v1, how)  # and back again
        rec.wait_for("stale.txt", Action.CREATED)
        (v1 / "again.txt").write_text("x")
        rec.wait_for("again.txt")


def test_root_below_a_symlinked_folder_follows_it(tmp_path: Path, backend: str) -> None:
    # a deploy that serves current/public: the symlink is not the last part of the path
    for release in ("v1", "v2"):
        (tmp_path / release / "public").mkdir(parents=True)
        (tmp_path / release / "public" / f"{release}.txt").write_text(release)
    os.symlink(tmp_path / "v1", tmp_path / "current")
    public = tmp_path / "current" / "public"
    rec = Recorder()
    router = PathRouter()
    router.register(public, rec, debounce=0, delay=0, batch=True)
    with router.get_listener(backend=backend):
        repoint(tmp_path / "current", tmp_path / "v2", "replace")
        rec.wait_for("v2.txt", Action.CREATED)
        (tmp_path / "v2" / "public" / "new.txt").write_text("x")
        rec.wait_for("new.txt")
        assert {e.endpoint for e in rec.events} == {str(public)}


class HeldRouter(PathRouter):
    """A PathRouter whose first submit waits for ``release``: changes pile up meanwhile, as in a busy moment."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    def submit(self, events: Event | Iterable[Event]) -> list[Future[Any]]:
        if not self.holding.is_set():
            self.holding.set()
            self.release.wait(10)
        return super().submit(events)


def next_clock_tick(after: Path, clock: Path) -> None:
    """Return once a file written now gets a later mtime than ``after`` (the kernel's clock is coarse)."""

    def ticked() -> bool:
        clock.write_text("tick")  # outside the watched folder
        return clock.stat().st_mtime_ns > after.stat().st_mtime_ns

    wait_until(ticked, 5, message="the file clock to move on")


def test_a_batch_comes_in_the_order_the_changes_happened(tmp_path: Path, backend: str) -> None:
    # A new subfolder's files are found by looking into it, after the events read with its creation;
    # a file written there last must not come before a change made earlier elsewhere.
    root, clock = tmp_path / "root", tmp_path / "clock"
    root.mkdir()
    rec = Recorder()
    router = HeldRouter()
    router.register(root, rec, debounce=200, delay=0, batch=True)
    with router.get_listener(backend=backend):
        (root / "first.txt").write_text("x")
        wait_until(router.holding.is_set, 10, message="the listener to hand over a first batch")
        (root / "sub").mkdir()
        (root / "z.txt").write_text("written before the files in sub")
        next_clock_tick(root / "z.txt", clock)
        (root / "sub" / "b.txt").write_text("b")
        next_clock_tick(root / "sub" / "b.txt", clock)
        (root / "sub" / "a.txt").write_text("a, written last")
        router.release.set()
        rec.wait_for("sub/a.txt")
        names = [e.name for e in rec.events]
    assert names.index("z.txt") < names.index("sub/b.txt") < names.index("sub/a.txt"), names
    assert names.index("sub") < names.index("sub/b.txt"), names
