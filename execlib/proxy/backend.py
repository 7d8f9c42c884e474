"""The backend's address: checked once (``--proxy URL``), kept as an origin."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Backend:
    """A backend origin: ``scheme://host:port`` with the port always written."""

    scheme: str
    host: str  # as in a URL: an IPv6 address keeps its brackets
    port: int

    @property
    def netloc(self) -> str:
        """``host:port``, what a request's Host header names when it is rewritten for the backend."""
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return self.host
        return f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def hostname(self) -> str:
        """The host without brackets (what a cookie's Domain would name)."""
        return self.host.strip("[]").lower()

    def same_origin(self, url: str) -> bool:
        """Whether the absolute ``url`` points at this backend (default ports written or not)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return False
        return (
            scheme == self.scheme
            and parts.hostname.lower() == self.hostname
            and (port or _DEFAULT_PORTS[scheme]) == self.port
        )


def parse_backend(url: object) -> Backend:
    """The Backend ``url`` names; ConfigError (``proxy=``) when it is not an http(s) origin."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("must be the backend's URL, such as http://127.0.0.1:3000", option="proxy", value=url)
    text = url.strip()
    parts = urlsplit(text if "://" in text else "http://" + text)  # "localhost:3000" means http
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError("must be an http:// or https:// URL", option="proxy", value=url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("has a bad port: use 1-65535", option="proxy", value=url) from None
    if not parts.hostname:
        raise ConfigError("has no host: use a URL such as http://127.0.0.1:3000", option="proxy", value=url)
    if port == 0:
        raise ConfigError("has a bad port: use 1-65535", option="proxy", value=url)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        # paths are forwarded as the browser asked for them: a prefix would silently move every URL
        raise ConfigError(
            "must be the backend's origin only (scheme, host, port), with no path", option="proxy", value=url
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Backend(scheme, host.lower(), port or _DEFAULT_PORTS[scheme])
