"""The URLs a server listening on every address (``0.0.0.0``, ``::``) can be opened at.

``http://0.0.0.0:8000/`` opens nothing on a phone; what a user wants to type there is this
machine's address on the shared network. The standard library has no call that lists interface
addresses, so on Linux they are read the way ``ip addr`` finds them: IPv4 with the
``SIOCGIFADDR`` ioctl on each interface, IPv6 from ``/proc/net/if_inet6``. Elsewhere, the
addresses the host name resolves to. Link-local addresses are left out: a URL for one needs the
interface's zone, which browsers do not accept.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
from collections.abc import Callable, Iterable

SIOCGIFADDR = 0x8915  # Linux: the IPv4 address of an interface
IF_INET6 = "/proc/net/if_inet6"

#: how to list this machine's addresses; tests pass their own
AddressLister = Callable[[], Iterable[str]]


def interface_addresses() -> list[str]:
    """This machine's IPv4 and IPv6 interface addresses (loopback included), as text."""
    if sys.platform.startswith("linux"):
        found = _linux_ipv4() + _linux_ipv6()
        if found:
            return found
    return _resolved_host_addresses()


def _linux_ipv4() -> list[str]:
    import fcntl

    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):  # an interface without an IPv4 address
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
                found.append(socket.inet_ntoa(answer[20:24]))
    return found


def _linux_ipv6() -> list[str]:
    found: list[str] = []
    with contextlib.suppress(OSError), open(IF_INET6, encoding="ascii") as table:
        for line in table:
            digits = line.split()[0] if line.strip() else ""
            if len(digits) == 32:
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(digits))))
    return found


def _resolved_host_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def url_for(host: str, port: int, scheme: str = "http") -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}/"


def reachable_urls(
    host: str, port: int, addresses: AddressLister = interface_addresses, scheme: str = "http"
) -> list[str]:
    """The URLs to show for a server bound to ``host``: the loopback one first, then the network's.

    For a wildcard host (``0.0.0.0`` for IPv4, ``::`` for IPv6, which execlib binds IPv6-only),
    every address of that family on this machine that another machine or the user can type:
    loopback first, link-local ones left out. Any other host is its own one URL.
    """
    try:
        bound = ipaddress.ip_address(host)
    except ValueError:
        return [url_for(host, port, scheme)]
    if not bound.is_unspecified:
        return [url_for(host, port, scheme)]
    wanted = 4 if bound.version == 4 else 6
    loopback = "127.0.0.1" if wanted == 4 else "::1"
    network: list[str] = []
    for text in addresses():
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if address.version != wanted or address.is_loopback or address.is_link_local or address.is_unspecified:
            continue
        if str(address) not in network:
            network.append(str(address))
    return [url_for(loopback, port, scheme)] + [url_for(address, port, scheme) for address in network]
