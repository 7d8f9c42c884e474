"""The HTTP side of execlib: Server, the static site, live reload."""

from .server import ListenerFailedError, Server, bind_socket

__all__ = ["Server", "ListenerFailedError", "bind_socket"]
