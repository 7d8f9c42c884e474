"""Helpers for tests that serve over TLS: certificates from a throwaway CA (trustme), handed to the
Server through ``execlib.server.backends.tls_of``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from execlib.server import backends


@dataclass(frozen=True)
class CertFiles:
    """What ``execlib.tls.TLSFiles`` holds, plus the CA that signed the certificate."""

    certfile: str
    keyfile: str
    password: str | None
    cafile: str

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA."""
        return ssl.create_default_context(cafile=self.cafile)


def make_cert_files(folder: Path) -> CertFiles:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key, cafile = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(cafile))
    return CertFiles(str(cert), str(key), None, str(cafile))


def serve_tls_with(monkeypatch: pytest.MonkeyPatch, files: CertFiles) -> None:
    """Every Server made from now on (in this test) serves HTTPS with ``files``."""
    monkeypatch.setattr(backends, "tls_of", lambda config: files)
