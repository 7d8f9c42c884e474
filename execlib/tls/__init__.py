"""TLS for ``--https`` and ``--ssl-certfile``: which certificate and key a server presents.

``resolve_tls(config)`` is the one call a server backend makes: None for plain HTTP, else the
files to load. With ``ssl_certfile`` the user's own pair is checked (user.py); with ``https`` a
local certificate authority is created once in the user's data folder (ca.py) and a leaf
certificate for this machine's names is issued from it and cached (leaf.py).

Nothing here imports ``cryptography`` at module level: ``import execlib`` and plain
``execlib serve`` must not pay for it, and it is an optional extra (``execlib[https]``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..netaddrs import AddressLister

#: what to install when ``cryptography`` is missing
HTTPS_EXTRA = "pip install 'execlib[https]'"


@dataclass(frozen=True)
class TLSFiles:
    """The certificate chain and key a TLS server loads (``keyfile`` may be the certfile itself)."""

    certfile: str
    keyfile: str
    password: str | None = None


def tls_enabled(config: ServerConfig) -> bool:
    """Whether ``config`` serves over TLS; cheap, nothing is created or read."""
    return bool(config.https or config.ssl_certfile is not None)


def resolve_tls(config: ServerConfig, addresses: AddressLister | None = None) -> TLSFiles | None:
    """The TLS files ``config`` asks for, or None for plain HTTP.

    ``ssl_certfile`` wins over ``https``: a user's own certificate is served as it is and no local
    CA is made. Otherwise, with ``https``, the local CA is created on first use and a leaf for
    this machine's names (``addresses`` lists its addresses; tests pass their own) issued or
    reused. Raises ConfigError with a one-line message.
    """
    if config.ssl_certfile is not None:
        from .user import check_user_pair

        certfile = os.fspath(config.ssl_certfile)
        keyfile = os.fspath(config.ssl_keyfile) if config.ssl_keyfile is not None else certfile
        check_user_pair(certfile, keyfile, config.ssl_keyfile_password)
        return TLSFiles(certfile, keyfile, config.ssl_keyfile_password)
    if not config.https:
        return None
    require_cryptography()
    from .ca import ensure_ca
    from .leaf import ensure_leaf

    ca = ensure_ca(ca_folder())
    path = ensure_leaf(ca, leaf_folder(), addresses=addresses, listen_host=config.host)
    return TLSFiles(path, path, None)


def require_cryptography() -> None:
    """Raise ConfigError naming the extra to install when ``cryptography`` is missing."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ConfigError(f"--https needs the cryptography package to make its certificates: {HTTPS_EXTRA}") from None


def data_dir() -> str:
    """execlib's folder for data kept between runs: ``$EXECLIB_DATA_DIR``, else the platform's.

    Linux and other Unix: ``$XDG_DATA_HOME/execlib`` (``~/.local/share/execlib``); macOS:
    ``~/Library/Application Support/execlib``; Windows: ``%LOCALAPPDATA%\\execlib``.
    """
    own = os.environ.get("EXECLIB_DATA_DIR")
    if own:
        return os.path.abspath(own)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "execlib")


def ca_folder() -> str:
    """The local CA's folder: its certificate (``ca.pem``) and private key (``ca-key.pem``)."""
    return os.path.join(data_dir(), "ca")


def leaf_folder() -> str:
    """Where issued leaf certificates are cached, one file per set of names."""
    return os.path.join(data_dir(), "leaf")


__all__ = [
    "TLSFiles",
    "ca_folder",
    "data_dir",
    "leaf_folder",
    "require_cryptography",
    "resolve_tls",
    "tls_enabled",
]
