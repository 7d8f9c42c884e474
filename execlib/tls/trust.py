"""Installing the local CA into trust stores, or saying exactly how.

The system store: on Debian and Ubuntu a CA is trusted once its certificate is in
``/usr/local/share/ca-certificates`` (with a ``.crt`` name) and ``update-ca-certificates`` has
run; that needs root. Chromium and Firefox on Linux read their own NSS databases instead, which
``certutil`` (libnss3-tools) edits; those belong to the user, and are only described here, as
which profiles to change is the user's call.

``$EXECLIB_CA_TRUST_DIR`` and ``$EXECLIB_CA_TRUST_COMMAND`` replace the folder and the command:
tests use them so that this machine's trust store is never touched.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ..errors import ExeclibError

DEBIAN_FOLDER = "/usr/local/share/ca-certificates"
DEBIAN_COMMAND = "update-ca-certificates"


class TrustError(ExeclibError):
    """Installing the CA was tried and failed (the update command failed)."""


@dataclass(frozen=True)
class TrustTarget:
    """Where a CA goes to be trusted system-wide, and the command that makes it take effect."""

    folder: str
    command: str

    @classmethod
    def from_env(cls) -> TrustTarget:
        return cls(
            os.environ.get("EXECLIB_CA_TRUST_DIR") or DEBIAN_FOLDER,
            os.environ.get("EXECLIB_CA_TRUST_COMMAND") or DEBIAN_COMMAND,
        )

    def installed_path(self, ident: str) -> str:
        return os.path.join(self.folder, f"execlib-{ident}.crt")


def can_install(target: TrustTarget, *, is_root: bool | None = None) -> bool:
    """Whether ``install`` can work here: root (or the folder writable) and a Debian-style folder."""
    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return os.path.isdir(target.folder) and (is_root or os.access(target.folder, os.W_OK))


def install(ca_path: str, ident: str, target: TrustTarget) -> str:
    """Copy the CA into ``target.folder`` and run ``target.command``; the installed file's path."""
    path = target.installed_path(ident)
    with open(ca_path, "rb") as source:
        data = source.read()
    fd, temp = tempfile.mkstemp(prefix=".execlib-", dir=target.folder)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(temp, 0o644)  # every user's programs read the trust store
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    done = subprocess.run(shlex.split(target.command), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise TrustError(f"{target.command} failed (exit status {done.returncode}): {last[0]}")
    return path


def system_steps(ca_path: str, ident: str, target: TrustTarget) -> list[str]:
    """The commands that trust the CA system-wide on this platform, for the user to run."""
    quoted = shlex.quote(ca_path)
    if sys.platform == "darwin":
        return [f"sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {quoted}"]
    if sys.platform == "win32":
        return [f'certutil -addstore -user Root "{ca_path}"']
    installed = shlex.quote(target.installed_path(ident))
    return [f"sudo cp {quoted} {installed}", f"sudo {target.command}"]


def nss_steps(ca_path: str, ident: str) -> list[str]:
    """How to trust the CA in Chromium's and Firefox's own NSS stores (Linux), one line each."""
    quoted = shlex.quote(ca_path)
    nickname = f"execlib-{ident}"
    return [
        "Chromium and Chrome on Linux (needs certutil from libnss3-tools), then restart the browser:",
        f'  certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n {nickname} -i {quoted}',
        "Firefox (each profile; or Settings > Privacy & Security > Certificates > Import):",
        f'  certutil -d sql:$HOME/.mozilla/firefox/PROFILE -A -t "C,," -n {nickname} -i {quoted}',
    ]
