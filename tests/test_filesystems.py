"""Folders on a file system whose change notifications miss edits (WSL, Docker Desktop, NFS) are polled."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from execlib import PathRouter
from execlib.listeners import filesystems, get_listener
from execlib.listeners.filesystems import filesystem_type, mount_table, unnotified_folders
from execlib.server import Server

from .helpers import wait_until

# What WSL 2 shows: the Linux root on ext4, Windows' C: drive over 9p (one with a space in its path)
WSL_MOUNTINFO = """\
60 1 8:32 / / rw,relatime - ext4 /dev/sdc rw,discard,errors=remount-ro,data=ordered
73 60 0:53 / /mnt/c rw,noatime - 9p C:\\134 rw,dirsync,aname=drvfs;path=C:\\;uid=1000;gid=1000
74 60 0:54 / /mnt/my\\040drive rw,noatime - 9p D:\\134 rw,aname=drvfs;path=D:\\
75 73 0:55 / /mnt/c/local rw,relatime - tmpfs tmpfs rw
"""


def test_the_mount_table_is_read_as_the_kernel_writes_it() -> None:
    table = mount_table(WSL_MOUNTINFO + "not a mountinfo line\n")
    assert table == [("/", "ext4"), ("/mnt/c", "9p"), ("/mnt/my drive", "9p"), ("/mnt/c/local", "tmpfs")]
    assert filesystem_type("/home/me/site", table) == "ext4"
    assert filesystem_type("/mnt/c/Users/me/site", table) == "9p"
    assert filesystem_type("/mnt/c", table) == "9p"
    assert filesystem_type("/mnt/cache", table) == "ext4"  # a name that only starts like a mount point
    assert filesystem_type("/mnt/c/local/x", table) == "tmpfs"  # the deepest mount holding it
    assert filesystem_type("/mnt/my drive/site", table) == "9p"
    # a later mount over the same point hides the earlier one
    over = mount_table("1 0 0:1 / /srv rw - nfs4 h:/ rw\n2 1 0:2 / /srv rw - ext4 d rw")
    assert filesystem_type("/srv/x", over) == "ext4"


def test_folders_on_a_shared_or_network_file_system_are_found() -> None:
    found = unnotified_folders(["/mnt/c/Users/me/site", "/home/me/src"], read_mounts=lambda: WSL_MOUNTINFO)
    assert found == [("/mnt/c/Users/me/site", "9p")]


def test_an_unreadable_mount_table_means_local() -> None:
    def missing() -> str:
        raise FileNotFoundError("/proc/self/mountinfo")

    assert unnotified_folders(["/mnt/c/site"], read_mounts=missing) == []


def test_this_machines_mount_table_agrees_with_findmnt(tmp_path: Path) -> None:
    assert shutil.which("findmnt"), "findmnt (util-linux) is part of every Debian system"
    table = mount_table(Path(filesystems.MOUNTINFO).read_text())
    for folder in (tmp_path, Path.cwd(), Path("/proc/self")):
        expected = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE", "--target", str(folder)], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert filesystem_type(os.path.realpath(folder), table) == expected


@pytest.fixture
def shared_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real folder that the mount table says is a host's folder shared over 9p."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "index.html").write_text("<html><body>one</body></html>")
    real = os.path.realpath(folder)
    table = f"1 0 8:1 / / rw - ext4 /dev/sda rw\n2 1 0:9 / {real} rw - 9p C:\\134 rw,aname=drvfs\n"
    monkeypatch.setattr(filesystems, "_read_mountinfo", lambda: table)
    return folder


def _router(folder: Path) -> PathRouter:
    router = PathRouter()
    router.register(str(folder), lambda events: None)
    return router


def test_a_listener_polls_such_a_folder_and_says_why(shared_folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="execlib.listener")
    listener = get_listener(_router(shared_folder))
    assert listener.backend == "poll"
    [record] = caplog.records
    assert f"watching by polling: {shared_folder} (9p) is on a file system" in record.getMessage()
    assert "--no-poll" in record.getMessage()


def test_poll_false_keeps_notifications_and_a_local_folder_is_not_polled(
    shared_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="execlib.listener")
    assert get_listener(_router(shared_folder), poll=False).backend == "inotify"
    assert get_listener(_router(shared_folder), backend="inotify").backend == "inotify"  # asked for by name
    local = tmp_path / "local"
    local.mkdir()
    assert get_listener(_router(local)).backend == "inotify"
    assert caplog.records == []


def test_a_server_of_such_a_folder_polls_and_still_reloads(shared_folder: Path) -> None:
    with Server(shared_folder, port=0) as server:
        assert [listener.backend for listener in server._own_listeners] == ["poll"]
        assert "one" in httpx.get(server.url, timeout=10).text
        version = server.hub.generation
        (shared_folder / "index.html").write_text("<html><body>two</body></html>")
        wait_until(lambda: server.hub.generation > version, 10, message="the polled change to reach the hub")
    with Server(shared_folder, port=0, poll=False) as server:
        assert [listener.backend for listener in server._own_listeners] == ["inotify"]


def test_poll_is_auto_unless_a_source_says_yes_or_no(tmp_path: Path) -> None:
    from execlib.config import ServerConfig, load_config

    assert ServerConfig(str(tmp_path)).poll is None  # auto: by the watched folders' file systems
    assert load_config({"root": str(tmp_path)}, env={"EXECLIB_POLL": "0"}, use_files=False).config.poll is False
    assert load_config({"root": str(tmp_path)}, env={"EXECLIB_POLL": "1"}, use_files=False).config.poll is True
    assert load_config({"root": str(tmp_path), "poll": False}, env={}, use_files=False).config.poll is False


def test_the_command_lines_take_poll_and_no_poll() -> None:
    from execlib.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "site"]).poll is None
    assert parser.parse_args(["serve", "site", "--no-poll"]).poll is False
    assert parser.parse_args(["watch", "src", "--poll"]).poll is True
    assert parser.parse_args(["sphinx", "--no-poll"]).poll is False
