"""App mode: the user's ASGI or WSGI app in supervised worker processes, behind execlib's front server.

``target`` names and loads the app, ``worker`` is the worker process's main, ``supervisor``
spawns, respawns, drains and restarts the workers, and ``front`` holds and forwards requests to
the live generation through the proxy (``execlib.proxy``). docs/app.rst has the whole story.
"""
