"""The local certificate authority: made once per user, kept in the user's data folder.

Layout of ``FOLDER`` (``<data dir>/ca``): ``ca.pem``, the certificate to trust, and
``ca-key.pem``, its private key, mode 0600 (the folder is 0700). Whoever holds the key can make
certificates this machine trusts once the CA is installed, so it never leaves that folder.

Creation is atomic as a whole: both files are written into a fresh temporary folder beside
``FOLDER``, flushed, and the temporary folder is renamed to ``FOLDER``. ``rename`` of a folder
fails when the target exists and is not empty, so of two servers starting at once exactly one
rename wins; the other removes its own attempt and loads the winner's. A reader never sees half
a CA: ``FOLDER`` either does not exist or holds both files.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

CERT_NAME = "ca.pem"
KEY_NAME = "ca-key.pem"
# Ten years: the CA is trusted by hand, once; its leaves are what expire and get reissued.
CA_DAYS = 3650


@dataclass(frozen=True)
class LocalCA:
    """A loaded local CA: its files, certificate and key."""

    folder: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_path(self) -> str:
        return os.path.join(self.folder, CERT_NAME)

    @property
    def key_path(self) -> str:
        return os.path.join(self.folder, KEY_NAME)

    @property
    def ident(self) -> str:
        """A short id of this CA (its key identifier's first bytes), for file and nickname suffixes."""
        from cryptography import x509

        ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return ski.digest[:4].hex()


def ensure_ca(folder: str) -> LocalCA:
    """The CA in ``folder``, created first if there is none. Raises ConfigError on a broken one."""
    if not os.path.isdir(folder):
        _create(folder)
    return load_ca(folder)


def load_ca(folder: str) -> LocalCA:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        with open(os.path.join(folder, CERT_NAME), "rb") as file:
            cert = x509.load_pem_x509_certificate(file.read())
        with open(os.path.join(folder, KEY_NAME), "rb") as file:
            key = serialization.load_pem_private_key(file.read(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"the local CA in {folder} cannot be read ({getattr(exc, 'strerror', None) or exc}); "
            "remove that folder to make a new one (then trust the new one again)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"the local CA in {folder} has a key execlib did not make; remove that folder")
    return LocalCA(folder, cert, key)


def _create(folder: str) -> None:
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        attempt = tempfile.mkdtemp(prefix=".ca-", dir=parent)  # mode 0700
    except OSError as exc:
        raise ConfigError(f"cannot create the local CA in {folder}: {exc.strerror or exc}") from None
    try:
        _write_new(attempt)
        try:
            os.rename(attempt, folder)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) and not os.path.isdir(folder):
                raise ConfigError(f"cannot create the local CA in {folder}: {exc.strerror or exc}") from None
            # another process made it first: theirs is the one; ours is dropped below
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(attempt)


def _write_new(folder: str) -> None:
    from cryptography.hazmat.primitives import serialization

    cert, key = new_ca_pair()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    # the key is created 0600 from the start: never readable by others, not even for a moment
    _write_new_file(os.path.join(folder, KEY_NAME), key_pem, 0o600)
    _write_new_file(os.path.join(folder, CERT_NAME), cert_pem, 0o644)


def _write_new_file(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())  # complete on disk before the rename makes it visible
    os.chmod(path, mode)  # whatever the umask took away from a certificate's read bits


def new_ca_pair(days: int = CA_DAYS) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh self-signed CA certificate and its P-256 key (fast to make, accepted everywhere)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "localhost"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "execlib development CA"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{_user()}@{host}"[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, f"execlib local CA {os.urandom(4).hex()}"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # a clock a little behind still accepts it
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no user name in this environment (a container without passwd entry)
        return "user"
