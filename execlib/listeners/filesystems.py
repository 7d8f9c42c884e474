"""Which folders lie on a file system where change notifications miss changes, so they must be polled.

inotify reports what this kernel writes. On a network share (NFS, SMB), a folder shared into a VM
or container by its host (WSL's Windows drives over 9p, Docker Desktop's and Podman's virtiofs,
VirtualBox and VMware shared folders) or a remote FUSE mount (sshfs, rclone), the writes that
matter come from elsewhere, the editor on the other side, and no event arrives for them. That is
the complaint users of every peer share ("changes never arrive on WSL / Docker / NFS"), each
told to find ``--poll`` themselves.

The file system type comes from ``/proc/self/mountinfo``: the mount with the longest mount point
holding the folder's real path. Any failure to read it means "local": detection only ever adds
polling, it never stands in the way of watching.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

MOUNTINFO = "/proc/self/mountinfo"

#: file system types whose changes may come from another machine or kernel, which inotify never hears of
UNNOTIFIED_TYPES = frozenset(
    {
        # network file systems
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse.davfs2",
        # a host's folder shared into a VM or container
        "9p",  # WSL 2's Windows drives, QEMU and Lima shares
        "v9fs",
        "drvfs",  # WSL 1's Windows drives
        "virtiofs",  # Docker Desktop, Podman machine, Lima
        "fakeowner",  # Docker Desktop on macOS, over virtiofs
        "fuse.grpcfuse",  # older Docker Desktop
        "fuse.osxfs",
        "vboxsf",  # VirtualBox shared folders
        "vmhgfs",  # VMware shared folders
        "fuse.vmhgfs-fuse",
        "prl_fs",  # Parallels shared folders
        # remote folders mounted through FUSE
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
    }
)


def mount_table(text: str) -> list[tuple[str, str]]:
    """(mount point, file system type) of each line of a ``mountinfo`` text, in its order."""
    mounts = []
    for line in text.splitlines():
        fields, _, rest = line.partition(" - ")
        left, right = fields.split(), rest.split()
        if len(left) < 5 or not right:
            continue  # not a mountinfo line
        mounts.append((_unescaped(left[4]), right[0]))
    return mounts


def filesystem_type(path: str, table: list[tuple[str, str]]) -> str | None:
    """The type of the file system ``path`` (already a real path) lies on: its deepest mount's."""
    best: tuple[int, str] | None = None
    for point, kind in table:  # a later mount over the same point hides the earlier one: >=
        if _below(path, point) and (best is None or len(point) >= best[0]):
            best = (len(point), kind)
    return best[1] if best is not None else None


def unnotified_folders(folders: Iterable[str], read_mounts: Callable[[], str] | None = None) -> list[tuple[str, str]]:
    """The folders (with their file system's type) on a file system whose changes inotify may miss."""
    try:
        table = mount_table((read_mounts or _read_mountinfo)())
    except (OSError, ValueError):
        return []  # no mount table (not Linux, /proc not mounted): take every folder for local
    found = []
    for folder in folders:
        kind = filesystem_type(os.path.realpath(folder), table)
        if kind in UNNOTIFIED_TYPES:
            found.append((folder, kind))
    return found


def _read_mountinfo() -> str:
    with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as file:
        return file.read()


def _below(path: str, point: str) -> bool:
    return point == "/" or path == point or path.startswith(point.rstrip("/") + "/")


def _unescaped(field: str) -> str:
    """A mountinfo path: the kernel writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
