"""The polling listener on real folders: no save lost (coarse timestamps, same-size rewrites), trees, roots, storms."""

from __future__ import annotations

import os
import random
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from execlib import Action, ConfigError, FileEvent, PathRouter
from execlib.listeners import PollingListener, WatchfilesListener, get_listener
from tests.helpers import wait_until

# the behaviour every backend shares, run here against the polling listener too
from tests.test_listeners import (  # noqa: F401 (collected by pytest from this module)
    test_a_dead_listener_thread_is_restarted_and_keeps_watching,
    test_atomic_save_gives_one_event_for_the_target,
    test_create_modify_delete_a_file,
    test_deleted_and_recreated_root_is_watched_again,
    test_move_a_file,
    test_new_subfolder_then_a_file_in_it_at_once,
    test_renamed_folder_then_a_file_in_it,
    test_restart_budget_spent_calls_on_fatal,
    test_stop_during_a_running_callback_waits_for_it_then_cancels_the_queue,
    test_stop_is_prompt_safe_twice_before_start_and_from_another_thread,
    test_sync_and_async_callbacks,
    watched,
)
from tests.test_watch_cli import Watch


@pytest.fixture
def backend() -> str:
    return "poll"


@dataclass
class Seen:
    """One delivered event, with when it arrived and what its file held at that moment."""

    event: FileEvent
    at: float
    content: str | None


@dataclass
class Log:
    """A batch route callback that reads each reported file as it is delivered."""

    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, events: list[FileEvent]) -> None:
        for event in events:
            try:
                content: str | None = Path(event.path).read_text()
            except OSError:
                content = None
            with self.lock:
                self.seen.append(Seen(event, time.monotonic(), content))

    def count(self, name: str, action: Action | None = None) -> int:
        with self.lock:
            return sum(1 for s in self.seen if s.event.name == name and (action is None or s.event.action is action))

    def last(self, name: str) -> Seen | None:
        with self.lock:
            matching = [s for s in self.seen if s.event.name == name]
        return matching[-1] if matching else None

    def wait(self, name: str, action: Action | None = None, count: int = 1, timeout: float = 10.0) -> None:
        wait_until(lambda: self.count(name, action) >= count, timeout=timeout, message=f"{count} x {name} {action}")


def polling(root: Path, **options: int | float) -> tuple[Log, PollingListener]:
    log = Log()
    router = PathRouter()
    router.register(root, log, debounce=0, delay=0, batch=True, ignore=("skip/",))
    listener = router.get_listener(poll=True, **options)
    assert isinstance(listener, PollingListener)
    return log, listener


@pytest.fixture
def poller(tmp_path: Path) -> Iterator[tuple[Path, Log, PollingListener]]:
    root = tmp_path / "root"
    root.mkdir()
    log, listener = polling(root, poll_delay_ms=50)
    listener.start()
    yield root, log, listener
    listener.stop(5)


def whole_second() -> int:
    """A timestamp as a mount with one-second resolution would record one written now."""
    return time.time_ns() // 1_000_000_000 * 1_000_000_000


def save(path: Path, text: str, mtime_ns: int | None = None) -> None:
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def test_get_listener_picks_the_polling_listener_and_keeps_watchfiles_polling(tmp_path: Path) -> None:
    router = PathRouter()
    router.register(tmp_path, print)
    assert isinstance(get_listener(router, poll=True), PollingListener)
    assert isinstance(get_listener(router, backend="poll"), PollingListener)
    old = get_listener(router, backend="watchfiles", poll=True)
    assert isinstance(old, WatchfilesListener) and old.poll
    with pytest.raises(ConfigError, match="polling"):
        get_listener(router, backend="inotify", poll=True)


def by_hand(listener: PollingListener) -> Callable[[], list[tuple[str, Action]]]:
    """Drive the polls ourselves: the first snapshot now, then one poll per call (no thread, no timing)."""
    listener._setup()
    return lambda: [(e.name, e.action) for e in listener._tick(time.monotonic())]


def test_two_saves_within_one_second_with_a_poll_between_give_two_modified_events(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    save(page, "start", time.time_ns() - 3600 * 10**9)
    _, listener = polling(tmp_path)
    poll = by_hand(listener)
    second = whole_second()  # both saves carry the same whole-second mtime, as on a one-second mount
    save(page, "first", second)
    assert poll() == [("page.html", Action.MODIFIED)]
    save(page, "again", second)  # same second, same size, same inode: only the content tells
    assert poll() == [("page.html", Action.MODIFIED)]
    assert poll() == []


def test_same_size_rewrite_with_the_mtime_forced_back_is_seen_by_its_content(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    stamp = time.time_ns()
    save(page, "version A", stamp)
    _, listener = polling(tmp_path)
    poll = by_hand(listener)
    inode = page.stat().st_ino
    save(page, "version B", stamp)
    assert (page.stat().st_ino, page.stat().st_mtime_ns) == (inode, stamp)
    assert poll() == [("page.html", Action.MODIFIED)]
    listener._teardown()


def test_saves_in_one_second_are_delivered_with_the_final_content(poller) -> None:
    root, log, _ = poller
    page = root / "page.html"
    second = whole_second()
    save(page, "first", second)
    log.wait("page.html", Action.CREATED)  # a poll has seen the first save
    save(page, "second!", second)
    log.wait("page.html", Action.MODIFIED)
    wait_until(lambda: log.last("page.html").content == "second!")


def test_same_size_rewrite_with_the_same_mtime_is_delivered(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    stamp = time.time_ns()
    save(page, "version A", stamp)
    log, listener = polling(tmp_path, poll_delay_ms=50)
    with listener:  # start() took the snapshot with version A
        save(page, "version B", stamp)
        log.wait("page.html", Action.MODIFIED)
        wait_until(lambda: log.last("page.html").content == "version B")


def test_a_file_in_a_cold_folder_rewritten_in_place_is_seen(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "deep" / "er").mkdir(parents=True)
    target = root / "deep" / "er" / "old.txt"
    hour_ago = time.time_ns() - 3600 * 10**9
    save(target, "before", hour_ago)  # not recent: not hashed
    for folder in (root / "deep" / "er", root / "deep", root):
        os.utime(folder, ns=(hour_ago, hour_ago))  # no folder changed lately: all start cold
    log, listener = polling(root, poll_delay_ms=50, cold_delay_ms=300)
    with listener:
        assert not listener._hot, "nothing changed lately: every folder starts cold"
        with open(target, "r+") as f:  # in place: the folder's own mtime does not move
            f.write("after!")
        log.wait("deep/er/old.txt", Action.MODIFIED)
        assert log.last("deep/er/old.txt").content == "after!"


def test_create_delete_and_rename(poller) -> None:
    root, log, _ = poller
    (root / "a.txt").write_text("a")
    log.wait("a.txt", Action.CREATED)
    (root / "a.txt").rename(root / "b.txt")
    log.wait("a.txt", Action.DELETED)
    log.wait("b.txt", Action.CREATED)
    (root / "b.txt").unlink()
    log.wait("b.txt", Action.DELETED)
    assert all(not s.event.is_dir for s in log.seen)


def test_a_new_folder_with_files_and_a_deleted_one(poller) -> None:
    root, log, _ = poller
    (root / "new" / "inner").mkdir(parents=True)
    (root / "new" / "one.txt").write_text("1")
    (root / "new" / "inner" / "two.txt").write_text("2")
    (root / "skip").mkdir()
    (root / "skip" / "ignored.txt").write_text("x")
    log.wait("new/inner/two.txt", Action.CREATED)
    log.wait("new/one.txt", Action.CREATED)
    created = [s.event for s in log.seen if s.event.action is Action.CREATED]
    assert {e.name for e in created if e.is_dir} >= {"new", "new/inner"}
    names = [e.name for e in created]
    assert names.index("new") < names.index("new/inner") < names.index("new/inner/two.txt")
    assert not any(s.event.name.startswith("skip/") for s in log.seen), "the router ignores skip/: not polled"
    shutil.rmtree(root / "new")
    log.wait("new", Action.DELETED)
    deleted = [s.event for s in log.seen if s.event.action is Action.DELETED]
    assert {e.name for e in deleted} == {"new", "new/inner", "new/one.txt", "new/inner/two.txt"}
    assert [e.name for e in deleted].index("new/inner/two.txt") < [e.name for e in deleted].index("new")


def test_root_deleted_and_recreated(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    log, listener = polling(root, poll_delay_ms=50)
    with listener:
        shutil.rmtree(root)
        log.wait("sub/a.txt", Action.DELETED)
        root.mkdir()
        (root / "b.txt").write_text("back")
        log.wait("b.txt", Action.CREATED)
        (root / "b.txt").write_text("again")
        log.wait("b.txt", Action.MODIFIED)
        assert log.last("b.txt").content == "again"


def test_a_root_missing_at_start_is_picked_up(tmp_path: Path) -> None:
    root = tmp_path / "later"
    root.mkdir()
    log, listener = polling(root, poll_delay_ms=50)
    root.rmdir()  # gone between registering the route and starting the listener
    with listener:
        root.mkdir()
        (root / "c.txt").write_text("c")
        log.wait("c.txt", Action.CREATED)


def test_changes_in_more_folders_than_the_hot_limit_are_all_seen(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for i in range(30):
        (root / f"d{i}").mkdir(parents=True)
        (root / f"d{i}" / "f.txt").write_text("0")
    log, listener = polling(root, poll_delay_ms=50, cold_delay_ms=300, hot_limit=4)
    with listener:
        for round_ in (1, 2):  # the second round lands in folders pushed out of the hot set
            for i in range(30):
                (root / f"d{i}" / "f.txt").write_text(str(round_))
            for i in range(30):
                log.wait(f"d{i}/f.txt", Action.MODIFIED, count=round_)
        assert all(log.last(f"d{i}/f.txt").content == "2" for i in range(30))


def test_stop_is_prompt_with_a_long_poll_delay(tmp_path: Path) -> None:
    _, listener = polling(tmp_path, poll_delay_ms=60_000)
    listener.start()
    began = time.monotonic()
    listener.stop(5)
    assert time.monotonic() - began < 1.0
    assert not listener.is_running


def test_a_storm_of_saves_with_pauses_ends_on_the_final_content(tmp_path: Path) -> None:
    """Saves of every kind (in place, on a one-second-resolution mount, temp + rename) with pauses
    around the poll interval: the last event for each file comes after its final content landed."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    files = [root / "index.html", root / "sub" / "style.css", root / "sub" / "app.js"]
    for path in files:
        path.write_text("start")
    log, listener = polling(root)  # the default 300 ms tick
    rng = random.Random(7)
    landed: dict[Path, float] = {}
    with listener:
        for i in range(60):
            path = rng.choice(files)
            text = f"v{i:03d}" + "x" * rng.choice((0, 0, 5))  # mostly the same size as the last save
            kind = rng.choice(("in place", "coarse", "rename"))
            if kind == "rename":
                temp = path.with_name(f".{path.name}.tmp")
                temp.write_text(text)
                os.replace(temp, path)
            else:  # "coarse": stamped to the whole second, as a mount with one-second timestamps does
                save(path, text, whole_second() if kind == "coarse" else None)
            landed[path] = time.monotonic()
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0, 0.4))  # part of the workload: pauses around the poll interval
        for path in files:
            name = path.relative_to(root).as_posix()
            final = path.read_text()
            wait_until(
                lambda n=name, f=final: (s := log.last(n)) is not None and s.content == f,
                timeout=10,
                message=f"{name} reported with its final content {final!r}",
            )
            last = log.last(name)
            assert last.at > landed[path], f"{name}: the last event came after the final save"


def test_execlib_watch_poll_uses_the_polling_listener(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    log = tmp_path / "runs.log"
    code = "import sys; open(sys.argv[1], 'a').write('run\\n')"
    proc = Watch(str(src), "--poll", "--debounce", "0", "--", sys.executable, "-c", code, str(log))
    try:
        assert "(poll)" in proc.lines[0], proc.lines
        (src / "page.html").write_text("x")
        assert "page.html" in proc.next_with("changed:")
        wait_until(lambda: log.exists() and "run" in log.read_text())
    finally:
        proc.close()
