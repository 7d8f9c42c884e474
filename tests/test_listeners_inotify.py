"""inotify backend specifics: folders moved in and out, a deleted root coming back, ignored folders, the watch limit."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from execlib import Action, InotifyListener, PathRouter
from execlib.listeners import get_listener
from tests.helpers import wait_until
from tests.listener_support import Recorder

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/sys/fs/inotify"), reason="needs Linux inotify")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Recorder, InotifyListener]]:
    root = tmp_path / "root"
    root.mkdir()
    rec = Recorder()
    router = PathRouter()
    router.register(root, rec, debounce=0, delay=0, batch=True)
    listener = router.get_listener(backend="inotify")
    assert isinstance(listener, InotifyListener)
    listener.start()
    yield root, rec, listener
    listener.stop(5)


def test_auto_picks_inotify_on_linux(tmp_path: Path) -> None:
    router = PathRouter()
    router.register(tmp_path, print)
    assert isinstance(get_listener(router), InotifyListener)
    assert not isinstance(get_listener(router, poll=True), InotifyListener)


def test_folder_moved_in_is_watched_and_its_files_reported(watched, tmp_path: Path) -> None:
    root, rec, _ = watched
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "inner" / "kept.txt").write_text("x")
    outside.rename(root / "moved")
    rec.wait_for("moved", Action.MOVED_TO)
    rec.wait_for("moved/inner/kept.txt", Action.CREATED)
    (root / "moved" / "inner" / "new.txt").write_text("y")
    rec.wait_for("moved/inner/new.txt", Action.CREATED)


def test_folder_moved_out_is_no_longer_watched(watched, tmp_path: Path) -> None:
    root, rec, listener = watched
    (root / "leaving").mkdir()
    rec.wait_for("leaving", Action.CREATED)
    (root / "leaving").rename(tmp_path / "gone")
    rec.wait_for("leaving", Action.MOVED_FROM)
    wait_until(lambda: str(root / "leaving") not in listener._wds)
    assert not any(p.startswith(str(tmp_path / "gone")) for p in listener._wds)
    (tmp_path / "gone" / "late.txt").write_text("x")
    (root / "marker.txt").write_text("x")
    rec.wait_for("marker.txt")
    assert not any("late.txt" in e.name for e in rec.events)


def test_folder_renamed_within_keeps_working_deeply(watched) -> None:
    root, rec, _ = watched
    (root / "a" / "b" / "c").mkdir(parents=True)
    rec.wait_for("a/b/c", Action.CREATED)
    (root / "a").rename(root / "z")
    rec.wait_for("z", Action.MOVED_TO)
    (root / "z" / "b" / "c" / "f.txt").write_text("x")
    rec.wait_for("z/b/c/f.txt", Action.CREATED)


def test_file_is_reported_when_closed_so_the_callback_sees_it_whole(watched) -> None:
    root, rec, _ = watched
    with open(root / "big.txt", "w") as f:
        f.write("part one ")
        f.flush()
        (root / "marker.txt").write_text("x")
        rec.wait_for("marker.txt")
        assert not rec.has("big.txt"), "nothing is reported while the writer still has the file open"
        f.write("part two")
    rec.wait_for("big.txt", Action.CREATED)
    assert [e.action for e in rec.events if e.name == "big.txt"] == [Action.CREATED]


def test_ignored_folders_are_not_watched(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "pkg").mkdir(parents=True)
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / "src").mkdir()
    router = PathRouter()
    router.register(tmp_path, print)
    with router.get_listener(backend="inotify") as listener:
        assert str(tmp_path / "src") in listener._wds
        assert not any("node_modules" in p or ".git" in p for p in listener._wds)


def test_watch_limit_logs_the_fix_and_falls_back_to_watchfiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()
    import inotify_simple

    def no_space(self, path, mask):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(inotify_simple.INotify, "add_watch", no_space)
    rec = Recorder()
    router = PathRouter()
    router.register(tmp_path, rec, debounce=0, delay=0, batch=True)
    listener = router.get_listener(backend="inotify")
    with caplog.at_level(logging.ERROR, logger="execlib.listener"), listener:
        assert listener.active_backend == "watchfiles"
        (tmp_path / "d1" / "still-seen.txt").write_text("x")
        rec.wait_for("d1/still-seen.txt")
    message = caplog.text
    assert "fs.inotify.max_user_watches" in message
    assert "needs 4 watches" in message
    assert "sysctl fs.inotify.max_user_watches=" in message
    assert "falling back to the watchfiles backend" in message


def test_watch_limit_hit_later_for_a_new_folder_also_falls_back(
    watched, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root, rec, listener = watched
    import inotify_simple

    def no_space(self, path, mask):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with caplog.at_level(logging.ERROR, logger="execlib.listener"):
        monkeypatch.setattr(inotify_simple.INotify, "add_watch", no_space)
        (root / "newdir").mkdir()
        wait_until(lambda: listener.active_backend == "watchfiles")
        (root / "after.txt").write_text("x")
        rec.wait_for("after.txt")
    assert "fs.inotify.max_user_watches" in caplog.text


def test_root_back_before_its_parent_is_watched_is_still_seen(
    watched, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The root reappears in the window between noticing it is gone and watching its parent:
    # inotify has no event to give for it, so only a second look after the watch is in place sees it.
    root, rec, listener = watched
    real_set_sentinels = listener._set_sentinels
    comebacks: list[str] = []

    def root_returns_first(name: str, entries: list[tuple[str, str]]) -> None:
        if entries and not comebacks:
            comebacks.append(name)
            os.mkdir(root)
            (root / "early.txt").write_text("written before the parent was watched")
        real_set_sentinels(name, entries)

    monkeypatch.setattr(listener, "_set_sentinels", root_returns_first)
    shutil.rmtree(root)
    rec.wait_for("early.txt", Action.CREATED)
    assert comebacks == [str(root)]
    (root / "later.txt").write_text("x")
    rec.wait_for("later.txt", Action.CREATED)


def test_other_names_in_the_parent_do_not_end_the_wait_for_the_root(watched, tmp_path: Path) -> None:
    root, rec, listener = watched
    (root / "a.txt").write_text("x")
    rec.wait_for("a.txt")
    shutil.rmtree(root)
    rec.wait_for("a.txt", Action.DELETED)
    wait_until(lambda: str(root) not in listener._real)
    # busy siblings: files, folders, renames, a look-alike name
    (tmp_path / "root.bak").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "notes.txt").rename(tmp_path / "notes2.txt")
    (tmp_path / "root.bak").rename(tmp_path / "rootx")
    (tmp_path / "rootx" / "f.txt").write_text("x")
    root.mkdir()
    (root / "b.txt").write_text("back")
    rec.wait_for("b.txt", Action.CREATED)
    assert not any("notes" in e.name or "rootx" in e.name for e in rec.events)


def test_root_whose_ancestors_were_deleted_too_is_seen_when_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "site"
    root.mkdir(parents=True)
    rec = Recorder()
    router = PathRouter()
    router.register(root, rec, debounce=0, delay=0, batch=True)
    with router.get_listener(backend="inotify") as listener:
        shutil.rmtree(tmp_path / "a")
        wait_until(lambda: str(root) not in listener._real)
        (tmp_path / "a" / "b").mkdir(parents=True)  # part of the way back: a deeper parent to wait in
        (tmp_path / "a" / "b" / "other").mkdir()
        root.mkdir()
        (root / "c.txt").write_text("x")
        rec.wait_for("c.txt", Action.CREATED)
        assert all(e.endpoint == str(root) for e in rec.events)
