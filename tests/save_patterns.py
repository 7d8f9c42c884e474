"""The ways real tools save a file, as functions ``save(path, text)`` (used by the tests and benchmarks).

Each writes ``text`` (one line, free of ``|``, ``&``, ``"``, ``\\``, ``$`` and ``@`` so the
shell tools can take it) over ``path`` the way that tool does. The real programs
(sed, perl, rsync, vim) are run when the machine has them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

Save = Callable[[Path, str], None]


def in_place(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def dot_temp_rename(path: Path, text: str) -> None:
    """A hidden temporary file beside the target, renamed over it (rsync, many generators)."""
    temp = path.with_name(f".{path.name}.part")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def random_temp_rename(path: Path, text: str) -> None:
    """Python's tempfile + os.replace: a random name no ignore list knows."""
    fd, temp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, path)


def backup_rename_then_write(path: Path, text: str) -> None:
    """vim with backupcopy=no / emacs: move the target to a backup, write a new file, drop the backup."""
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    path.write_text(text, encoding="utf-8")
    os.unlink(backup)


def backup_copy_then_in_place(path: Path, text: str) -> None:
    """vim with backupcopy=yes: copy the target to a backup, then write in place."""
    shutil.copy2(path, path.with_name(path.name + "~"))
    in_place(path, text)


def ide_safe_write(path: Path, text: str) -> None:
    """JetBrains IDEs: write a temp file, move the target aside, rename the temp file over, delete the old one."""
    temp = path.with_name(path.name + "___jb_tmp___")
    old = path.with_name(path.name + "___jb_old___")
    temp.write_text(text, encoding="utf-8")
    os.rename(path, old)
    os.rename(temp, path)
    os.unlink(old)


def sed_i(path: Path, text: str) -> None:
    subprocess.run(["sed", "-i", f"s|.*|{text}|", str(path)], check=True)


def perl_i(path: Path, text: str) -> None:
    subprocess.run(["perl", "-pi", "-e", f"s|.*|{text}|", str(path)], check=True)


def rsync(path: Path, text: str) -> None:
    """rsync a new version over the target (it writes .name.XXXXXX beside it and renames)."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / path.name
        source.write_text(text, encoding="utf-8")
        subprocess.run(["rsync", "-I", str(source), str(path)], check=True)


def vim(path: Path, text: str) -> None:
    """vim's own write (4913 probe, backup by rename where it can), run non-interactively."""
    subprocess.run(
        ["vim", "-Es", "-u", "NONE", "-i", "NONE", "-c", "set nocp writebackup backupcopy=auto",
         "-c", f'call setline(1, "{text}")', "-c", "wq", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


PYTHON_PATTERNS: dict[str, Save] = {
    "in-place": in_place,
    "dot-temp-rename": dot_temp_rename,
    "random-temp-rename": random_temp_rename,
    "backup-rename-then-write": backup_rename_then_write,
    "backup-copy-then-in-place": backup_copy_then_in_place,
    "ide-safe-write": ide_safe_write,
}
PROGRAM_PATTERNS: dict[str, tuple[str, Save]] = {
    "sed -i": ("sed", sed_i),
    "perl -i": ("perl", perl_i),
    "rsync": ("rsync", rsync),
    "vim": ("vim", vim),
}
