"""Proxy mode: execlib in front of another server (docs/proxy.rst).

Requests that are not execlib's own, and not for a file of ROOT, are forwarded to the backend
(``forward``); HTML answers get the live-reload client (``htmlstream``), headers that would leak
the backend's address or block the client are adjusted (``headers``), and a backend that is down
gets a waiting page that reloads itself once it is back (``status``, ``waiting``).
WebSockets are relayed by ``execlib.proxy.websocket``.
"""
