"""Concrete routers; ``PathRouter`` routes file events by folder and glob."""

from .path import DEFAULT_IGNORES, PathRouter

__all__ = ["DEFAULT_IGNORES", "PathRouter"]
