"""Concrete routers; ``PathRouter`` routes file events by folder and glob.

``routers.chain`` (``ChainRouter``) and ``routers.builder`` (``RouterBuilder``,
``@route``) are not imported here: importing ``PathRouter`` should not load them.
"""

from .path import DEFAULT_IGNORES, PathRouter

__all__ = ["DEFAULT_IGNORES", "PathRouter"]
