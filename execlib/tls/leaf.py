"""The leaf certificate a ``--https`` server presents, issued by the local CA for this machine's names.

Its names: ``localhost``, ``127.0.0.1``, ``::1``, the host name, and the LAN addresses (so a
phone on the same network can open ``https://192.168.1.20:8000/`` once it trusts the CA). A leaf
is cached in ``<data dir>/leaf/leaf-<hash>.pem``, the hash covering the CA and the sorted names:
when the names change (another network, another address) the file name changes and a new leaf is
issued. One that is within ``RENEW_DAYS`` of expiry is reissued in place.

Each cache file holds the key and the certificate together, written to a temporary file and
renamed over the old one, so two servers issuing at once each leave a matching pair: the last
rename wins, and a reader never sees one file's key with the other's certificate.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from cryptography import x509

    from ..netaddrs import AddressLister
    from .ca import LocalCA

# 397 days: the longest validity Apple platforms and browsers accept for a server certificate.
LEAF_DAYS = 397
RENEW_DAYS = 30


def leaf_names(hostname: str, addresses: Iterable[str], listen_host: str = "") -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a leaf covers: loopback first, then the host name and LAN addresses.

    ``listen_host`` (``--host``) is added when it names something else: a URL built from it must
    match too. Link-local and unspecified addresses are left out: no browser opens a URL with
    one. A name that is not plain ASCII is left out too (a certificate holds DNS names in ASCII).
    """
    dns = ["localhost"]
    ips = ["127.0.0.1", "::1"]
    for name in (hostname, listen_host):
        if _is_dns_name(name) and name.lower() not in dns:
            dns.append(name.lower())
    for text in [*addresses, listen_host]:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if address.is_loopback or address.is_link_local or address.is_unspecified:
            continue
        if str(address) not in ips:
            ips.append(str(address))
    return dns, ips


def _is_dns_name(name: str) -> bool:
    if not name or not name.isascii() or " " in name:
        return False
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return True
    return False  # an address: it goes among the IP names


def ensure_leaf(
    ca: LocalCA,
    folder: str,
    *,
    addresses: AddressLister | None = None,
    hostname: str | None = None,
    listen_host: str = "",
    renew_days: int = RENEW_DAYS,
) -> str:
    """The path of a cached leaf (key and certificate in one PEM file) for this machine's names.

    Issued when there is none for these names and this CA, or when the cached one expires within
    ``renew_days``.
    """
    if addresses is None:
        from ..netaddrs import interface_addresses

        addresses = interface_addresses
    dns, ips = leaf_names(socket.gethostname() if hostname is None else hostname, addresses(), listen_host)
    digest = hashlib.sha256("\n".join([ca.ident, *sorted(dns), *sorted(ips)]).encode()).hexdigest()[:16]
    path = os.path.join(folder, f"leaf-{digest}.pem")
    if _still_good(path, renew_days):
        return path
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        _write_replacing(path, _issue_pem(ca, dns, ips))
    except OSError as exc:
        raise ConfigError(f"cannot write the certificate {path}: {exc.strerror or exc}") from None
    _prune_expired(folder)
    return path


def _prune_expired(folder: str) -> None:
    """Remove cached leaves that have expired: each network a laptop joined left one behind.

    Only expired ones: a leaf still valid may be in use by a server on another network's names,
    and one that expires is never served again (it is reissued first).
    """
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if name.startswith("leaf-") and name.endswith(".pem") and not _still_good(path, 0):
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _still_good(path: str, renew_days: int) -> bool:
    from cryptography import x509

    try:
        with open(path, "rb") as file:
            cert = x509.load_pem_x509_certificate(file.read())
    except (OSError, ValueError):
        return False  # none yet, or damaged: issue a new one
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return left > datetime.timedelta(days=renew_days)


def issue_leaf(
    ca: LocalCA, dns: list[str], ips: list[str], *, days: int = LEAF_DAYS, now: datetime.datetime | None = None
) -> tuple[x509.Certificate, object]:
    """A leaf certificate for ``dns`` and ``ips`` signed by ``ca``, and its new P-256 key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    start = now or datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "execlib development certificate")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - datetime.timedelta(days=1))
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


def leaf_pem(cert: x509.Certificate, key: object) -> bytes:
    """Key and certificate in one PEM file, as ``ssl.SSLContext.load_cert_chain`` reads it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def _issue_pem(ca: LocalCA, dns: list[str], ips: list[str]) -> bytes:
    cert, key = issue_leaf(ca, dns, ips)
    return leaf_pem(cert, key)


def _write_replacing(path: str, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=".leaf-", dir=os.path.dirname(path))  # mode 0600: it holds a key
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
