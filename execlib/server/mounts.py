"""Serving mounts (other folders at URL prefixes), and naming files across ROOT and its mounts.

A request goes to the folder whose prefix is the longest to match its path (ROOT's is ``""``):
a mount at ``/assets`` shadows ROOT's ``assets`` folder, and one at ``/assets/icons`` shadows that
part of ``/assets``. Each folder is a StaticSite of its own, so the rules (MIME types, ETags,
Range, listings, traversal and symlink checks) are ROOT's, checked against the mount's folder.

The live-reload hub names files by the URL path they are served at, without its leading slash:
``css/site.css`` in ROOT, ``assets/style.css`` for ``style.css`` of the mount at ``/assets``.
That name is what a page's resources are recorded under and what a change is announced as,
so a page of ROOT linking ``/assets/style.css`` gets it swapped in place when the mounted file changes.

With no ROOT served (``static=False``: proxy mode without one) the mounts are the only folders:
a path outside every mount names no file, so no file of the current folder is ever reachable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from starlette.types import Receive, Scope, Send

from ..mounts import under
from .app import _not_found
from .paths import BadPath, Kind, SiteResolver, Target, url_segments
from .static import StaticSite


def url_name(prefix: str, relative: str) -> str:
    """The hub's name of a file ``relative`` (to its folder, ``.`` for the folder) served at ``prefix``."""
    relative = "" if relative == os.curdir else relative.replace(os.sep, "/")
    if not prefix:
        return relative
    return prefix[1:] + "/" + relative if relative else prefix[1:]


class SiteMap:
    """Which folder serves a URL path, and the hub's names of what it serves (see the module's doc).

    ``root`` is None when no ROOT is served: then only paths under a mount name files.
    """

    def __init__(self, root: SiteResolver | None, mounts: Iterable[tuple[str, SiteResolver]] = ()) -> None:
        self.root = root
        self.mounts = sorted(mounts, key=lambda mount: len(mount[0]), reverse=True)  # longest prefix first

    def split(self, path: str) -> tuple[str, SiteResolver | None]:
        """(prefix, resolver) of the folder serving ``path``; the resolver is None when no folder does."""
        for prefix, resolver in self.mounts:
            if under(path, prefix):
                return prefix, resolver
        return "", self.root

    def resolve(self, path: str) -> tuple[Target, str | None]:
        """What the URL path names, and its name when it is a file or a folder; raises BadPath."""
        prefix, resolver = self.split(path)
        if resolver is None:
            return Target(Kind.MISSING), None  # outside every mount, with no ROOT: no folder's path
        inner = path[len(prefix) :]
        if not inner:
            return Target(Kind.REDIRECT, resolver.root), None
        target = resolver.resolve(inner)
        if target.kind not in (Kind.FILE, Kind.DIRECTORY):
            return target, None
        return target, url_name(prefix, os.path.relpath(target.fs_path, resolver.root))

    def serves_file(self, path: str) -> bool:
        """Whether a file answers the URL path (proxy mode: else the backend does).

        A path the resolver refuses counts as served: the static site answers it with its own
        status, and the backend never sees a path execlib found hostile. Without ROOT, a path
        outside every mount is the backend's, whatever it holds: no folder's resolver sees it.
        """
        try:
            target, _ = self.resolve(path)
        except BadPath:
            return True
        return target.kind is Kind.FILE

    def page_file(self, path: str) -> str | None:
        """The name of the file a page or resource URL shows, redirects followed as a browser
        would (the resolver's rules, clean URLs included); None when it shows no file."""
        prefix, resolver = self.split(path)
        relative = resolver.page_file(path[len(prefix) :] or "/") if resolver is not None else None
        return None if relative is None else url_name(prefix, relative)

    def wanted_files(self, path: str) -> frozenset[str]:
        """The names of the files that would give a page at ``path`` if they appeared (a 404 page waits for them)."""
        prefix, resolver = self.split(path)
        if resolver is None:
            return frozenset()
        return frozenset(url_name(prefix, name) for name in resolver.wanted_files(path[len(prefix) :] or "/"))

    def fs_path(self, name: str) -> str | None:
        """The file a name stands for now, or None when no URL has that name."""
        path = "/" + name
        prefix, resolver = self.split(path)
        if resolver is None:
            return None
        try:
            return resolver.fs_path(url_segments(path[len(prefix) :] or "/"))
        except BadPath:
            return None


class MountedSites:
    """ASGI app sending each request to the StaticSite (ROOT's or a mount's) serving its path.

    With no ROOT (``root`` None), a path outside every mount gets the 404 a server without a
    static site answers (``app._not_found``): no folder serves it.
    """

    def __init__(self, root: StaticSite | None, mounts: Sequence[StaticSite]) -> None:
        self.root = root
        self.mounts = sorted(mounts, key=lambda site: len(site.prefix), reverse=True)  # longest prefix first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        for site in self.mounts:
            if under(path, site.prefix):
                await site(scope, receive, send)
                return
        if self.root is None:
            await _not_found(scope, send)
        else:
            await self.root(scope, receive, send)
