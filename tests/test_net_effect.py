"""Net effect: raw events reduced to what they changed in the tree; PathRouter(net=True) on real inotify."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

from execlib import Action, FileEvent, PathRouter
from execlib.net_effect import net_effect
from execlib.routers.path import DEFAULT_IGNORES, IgnoreMatcher

from .conftest import write
from .helpers import wait_until

C, M, D, MF, MT = Action.CREATED, Action.MODIFIED, Action.DELETED, Action.MOVED_FROM, Action.MOVED_TO


def ev(name: str, action: Action, is_dir: bool = False) -> FileEvent:
    return FileEvent("/site", name, action, is_dir)


def net(*events: FileEvent) -> list[tuple[str, Action]]:
    return [(e.name, e.action) for e in net_effect(events)]  # type: ignore[union-attr]


def test_a_temp_file_renamed_over_the_target_is_the_target_modified() -> None:
    assert net(ev(".style.css.part", C), ev(".style.css.part", MF), ev("style.css", MT)) == [("style.css", M)]
    assert net(ev("tmpk3j_x9q", C), ev("tmpk3j_x9q", MF), ev("index.html", MT)) == [("index.html", M)]


def test_created_then_removed_never_existed() -> None:
    assert net(ev("scratch", C), ev("scratch", M), ev("scratch", D)) == []


def test_backup_by_rename_then_new_file_is_modified() -> None:
    # vim / emacs: the target moves to a backup (ignored by name), a new file takes its place
    assert net(ev("page.html", MF), ev("page.html", C)) == [("page.html", M)]


def test_the_ide_pattern_is_one_modification() -> None:
    events = [
        ev("a.css___jb_tmp___", C),
        ev("a.css", MF),
        ev("a.css___jb_old___", MT),
        ev("a.css___jb_tmp___", MF),
        ev("a.css", MT),
        ev("a.css___jb_old___", D),
    ]
    # without the name ignores: the temp file came and went; the old one is a rename-onto then removed
    assert net(*events) == [("a.css", M), ("a.css___jb_old___", D)]
    kept = [e for e in events if not IgnoreMatcher(DEFAULT_IGNORES)(e.name)]
    assert net(*kept) == [("a.css", M)]


def test_deletions_creations_and_order_of_last_event() -> None:
    assert net(ev("a", M), ev("b", C), ev("c", D), ev("a", M)) == [("b", C), ("c", D), ("a", M)]
    assert net(ev("gone", MF)) == [("gone", D)]
    assert net(ev("new", MT)) == [("new", M)]  # a rename onto a name: reported as that name changed
    assert net(ev("x", D), ev("x", C), ev("x", D)) == [("x", D)]


def test_folders_keep_is_dir() -> None:
    out = net_effect([ev("sub", C, True), ev("sub/a.html", C)])
    assert [(e.name, e.action, e.is_dir) for e in out] == [("sub", C, True), ("sub/a.html", C, False)]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    [
        "page.html~",
        ".page.html.swp",
        ".page.html.swo",
        "4913",
        ".#page.html",
        "#page.html#",
        "page.html___jb_tmp___",
        "page.html___jb_old___",
        ".goutputstream-ABC123",
        "a.txt.kate-swp",
    ],
)
def test_default_ignores_cover_the_well_known_editor_files(name: str) -> None:
    assert IgnoreMatcher(DEFAULT_IGNORES)(name)
    assert not IgnoreMatcher(DEFAULT_IGNORES)("page.html")


def test_net_route_sees_one_modified_for_a_temp_file_and_rename_save(tmp_path: Path) -> None:
    write(tmp_path / "index.html", "v1")
    batches: list[list[tuple[str, str]]] = []
    arrived = threading.Event()

    def on_batch(events: list[FileEvent]) -> None:
        batches.append([(e.name, e.action.value) for e in events])
        arrived.set()

    router = PathRouter()
    router.register(tmp_path, on_batch, batch=True, net=True, debounce=20, delay=0)
    with router.get_listener(backend="inotify"):
        fd, temp = tempfile.mkstemp(dir=tmp_path)  # a random name, not one the ignores know
        with os.fdopen(fd, "w") as f:
            f.write("v2")
        os.replace(temp, tmp_path / "index.html")
        assert arrived.wait(5)
        write(tmp_path / "index.html", "v3")  # and an in-place save, for comparison
        wait_until(lambda: len(batches) >= 2, 5)
    assert batches == [[("index.html", "modified")], [("index.html", "modified")]]


def test_net_route_runs_nothing_for_a_file_that_came_and_went(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    router = PathRouter()
    router.register(tmp_path, lambda events: seen.append([e.name for e in events]), batch=True, net=True, debounce=30)
    with router.get_listener(backend="inotify"):
        write(tmp_path / "scratch.txt", "x")
        os.unlink(tmp_path / "scratch.txt")
        write(tmp_path / "real.txt", "x")  # a later change that does reach the callback
        wait_until(lambda: seen, 5)
    assert seen == [["real.txt"]]


def test_net_needs_batch() -> None:
    with pytest.raises(ValueError, match="batch"):
        PathRouter().register(".", print, net=True)
