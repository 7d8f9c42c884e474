"""An in-memory cache of small files, checked against ``stat`` on every request.

Reading a file through a thread pool is what makes plain static servers slow;
a dev server must also never serve a stale edit. So small files are kept in
memory and revalidated with one ``stat`` per request (inode, size, mtime,
ctime). A file modified less than ``RACY_SECONDS`` before we read it is
"racy" (git's term): a second write within the same timestamp tick would not
change its stat, so such entries are re-read on every request until they age.
Entries also carry their response headers already encoded, so a cache hit
builds nothing per request.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate

RACY_SECONDS = 1.0
NO_CACHE = (b"cache-control", b"no-cache")


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A file's bytes (possibly transformed, e.g. with the live-reload script) and validators."""

    body: bytes
    etag: str
    last_modified: str
    mtime: float
    signature: tuple[int, int, int, int]
    racy: bool
    content_type: str = "application/octet-stream"
    transformed: bool = False
    # The headers of a full 200 response, encoded once per file version.
    headers: tuple[tuple[bytes, bytes], ...] = ()
    # A hash of the file's own bytes (before any transform): tells a real edit from a rewrite.
    digest: str = ""


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def content_digest(data: bytes) -> str:
    """The hash that names a version of a file's bytes (ETags, unchanged-rewrite checks)."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def weak_etag(st: os.stat_result) -> str:
    """A validator for files too big to hash on every change."""
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


class FileCache:
    """LRU cache of file bodies keyed by filesystem path, bounded by total bytes."""

    def __init__(self, max_file_size: int = 4 << 20, max_total: int = 64 << 20) -> None:
        self.max_file_size = max_file_size
        self.max_total = max_total
        self._entries: OrderedDict[str, CachedFile] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(
        self,
        path: str,
        st: os.stat_result,
        transform: Callable[[bytes], bytes] | None = None,
        content_type: str = "application/octet-stream",
    ) -> CachedFile | None:
        """The file's current content, or None when it is too big to cache (stream it instead)."""
        if st.st_size > self.max_file_size:
            return None
        signature = stat_signature(st)
        entry = self._entries.get(path)
        if (
            entry is not None
            and entry.signature == signature
            and not entry.racy
            and entry.transformed == (transform is not None)
            and entry.content_type == content_type
        ):
            try:
                self._entries.move_to_end(path)
            except KeyError:  # another thread evicted it just now; the entry is still good to serve
                pass
            return entry
        return self._load(path, st, signature, transform, content_type)

    def digest_of(self, path: str, st: os.stat_result) -> str | None:
        """The content digest of an *earlier* version of ``path`` (``st`` is its stat now), if one is cached.

        None when nothing is cached or the cache already holds the current version: a page fetched
        between an edit and its announcement must not make the edit look like "no change".
        """
        entry = self._entries.get(path)
        if entry is None or entry.signature == stat_signature(st):
            return None
        return entry.digest

    def stale_paths(self) -> list[tuple[str, bool]]:
        """``(path, gone)`` for each cached file whose file on disk is no longer the version cached.

        What a server that starts watching after it began serving checks once watching is on: a
        file served before then and changed before then would otherwise never be announced.
        A racy entry (see ``RACY_SECONDS``) is compared by content, as its stat may not show an edit.
        """
        stale: list[tuple[str, bool]] = []
        for path, entry in list(self._entries.items()):
            try:
                st = os.stat(path)
            except OSError:
                stale.append((path, True))
                continue
            if stat_signature(st) != entry.signature or (entry.racy and self._content_changed(path, entry)):
                stale.append((path, False))
        return stale

    def _content_changed(self, path: str, entry: CachedFile) -> bool:
        try:
            with open(path, "rb") as f:
                return content_digest(f.read(self.max_file_size + 1)) != entry.digest
        except OSError:
            return True

    def _load(
        self,
        path: str,
        st: os.stat_result,
        signature: tuple[int, int, int, int],
        transform: Callable[[bytes], bytes] | None,
        content_type: str,
    ) -> CachedFile | None:
        read_at = time.time()
        with open(path, "rb") as f:
            raw = f.read(self.max_file_size + 1)
        if len(raw) > self.max_file_size:
            return None
        body = transform(raw) if transform else raw
        digest = content_digest(raw)
        # A content hash, not stat data: two edits in one timestamp tick still get distinct ETags.
        etag = '"' + (content_digest(body) if transform else digest) + '"'
        last_modified = http_date(st.st_mtime)
        headers = (
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"etag", etag.encode()),
            (b"last-modified", last_modified.encode()),
            NO_CACHE,
            # Ranges of a transformed body would not match the file's bytes; refuse them.
            (b"accept-ranges", b"none" if transform else b"bytes"),
        )
        entry = CachedFile(
            body=body,
            etag=etag,
            last_modified=last_modified,
            mtime=st.st_mtime,
            signature=signature,
            racy=read_at - st.st_mtime < RACY_SECONDS,
            content_type=content_type,
            transformed=transform is not None,
            headers=headers,
            digest=digest,
        )
        with self._lock:
            old = self._entries.pop(path, None)
            if old is not None:
                self._total -= len(old.body)
            self._entries[path] = entry
            self._total += len(body)
            while self._total > self.max_total and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._total -= len(evicted.body)
        return entry
