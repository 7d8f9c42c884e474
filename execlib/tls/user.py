"""Checking a user's own certificate and key (``--ssl-certfile``/``--ssl-keyfile``) before serving.

The pair is loaded the way the server will load it, into an ``ssl.SSLContext``, so whatever the
server would fail on (a key that does not match, a wrong password, a file that is not PEM) is
a one-line ConfigError before anything is bound. An expired certificate is only a warning: it
may be what the user is testing, and browsers let one click through.
"""

from __future__ import annotations

import datetime
import logging
import ssl

from ..errors import ConfigError

logger = logging.getLogger("execlib.tls")


def check_user_pair(certfile: str, keyfile: str, password: str | None) -> None:
    """Raise ConfigError when the server could not load this pair; warn when the certificate has expired."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # without a password, a callable giving none: OpenSSL would otherwise prompt on the terminal
        context.load_cert_chain(certfile, keyfile, password if password is not None else _no_password)
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {exc.filename or certfile}") from None
    except OSError as exc:  # ssl.SSLError is one too
        raise ConfigError(_load_problem(certfile, keyfile, exc)) from None
    warn_if_expired(certfile)


def _no_password() -> str:
    return ""


def _load_problem(certfile: str, keyfile: str, exc: OSError) -> str:
    reason = getattr(exc, "reason", None) or ""
    text = str(exc)
    if reason == "KEY_VALUES_MISMATCH" or "mismatch" in text.lower():
        return f"the key {keyfile} does not belong to the certificate {certfile}"
    if reason in ("BAD_DECRYPT", "BAD_PASSWORD_READ") or _encrypted(keyfile):
        # OpenSSL 3 says only "PEM lib" for a wrong password: an encrypted key tells what it was
        return f"cannot decrypt the key {keyfile}: wrong or missing --ssl-keyfile-password"
    if isinstance(exc, ssl.SSLError):
        return f"cannot load the certificate {certfile} and key {keyfile}: are both PEM files? ({reason or text})"
    return f"cannot read {exc.filename or certfile}: {exc.strerror or exc}"


def _encrypted(keyfile: str) -> bool:
    try:
        with open(keyfile, "rb") as file:
            return b"ENCRYPTED" in file.read(1 << 20)
    except OSError:
        return False


def warn_if_expired(certfile: str) -> None:
    """Log one warning when the (first) certificate in ``certfile`` is expired or not valid yet.

    Needs ``cryptography`` to read the dates; without it there is no warning (serving works).
    """
    try:
        from cryptography import x509
    except ImportError:
        return
    try:
        with open(certfile, "rb") as file:
            cert = x509.load_pem_x509_certificate(file.read())
    except (OSError, ValueError):
        return  # loadable by OpenSSL but not by this parser: nothing to say about its dates
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now:
        logger.warning(
            "the certificate %s expired on %s: browsers will warn about it",
            certfile,
            cert.not_valid_after_utc.date().isoformat(),
        )
    elif cert.not_valid_before_utc > now:
        logger.warning(
            "the certificate %s is not valid before %s: browsers will warn about it",
            certfile,
            cert.not_valid_before_utc.date().isoformat(),
        )
