"""``execlib https ca-path`` and ``execlib https trust``: the local CA of ``--https``, from the terminal."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..tls import ca_folder, require_cryptography

if TYPE_CHECKING:
    from ..tls.ca import LocalCA


def _ca() -> LocalCA:
    require_cryptography()
    from ..tls.ca import ensure_ca

    return ensure_ca(ca_folder())


def run_ca_path(args: argparse.Namespace) -> int:
    """Print the CA certificate's path, creating the CA first if there is none (so it can be trusted
    before the first ``--https`` server)."""
    print(_ca().cert_path, flush=True)
    return 0


def run_trust(args: argparse.Namespace) -> int:
    """Install the CA system-wide where this process may (0), else print the commands to run (1)."""
    from ..tls.trust import TrustTarget, can_install, install, nss_steps, system_steps

    ca = _ca()
    target = TrustTarget.from_env()
    code = 1
    if can_install(target):
        path = install(ca.cert_path, ca.ident, target)
        print(f"installed the execlib CA as {path} and ran {target.command}", flush=True)
        code = 0
    else:
        print(f"The execlib CA is {ca.cert_path}. To trust it system-wide, run:", flush=True)
        for line in system_steps(ca.cert_path, ca.ident, target):
            print(f"  {line}", flush=True)
    print("Browsers with their own certificate store need it too:", flush=True)
    for line in nss_steps(ca.cert_path, ca.ident):
        print(f"  {line}", flush=True)
    return code
