"""The page shown while the backend is down: it reloads itself as soon as the backend answers.

It asks execlib's ``/__execlib__/backend`` (which tries a connection to the backend) a few times
a second; the hub could not tell it, since nothing changes on disk when a backend comes back. It
carries the live-reload client too, so a watched file's change reloads it as it would any page.
"""

from __future__ import annotations

import html

BACKEND_PATH = "/__execlib__/backend"

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>waiting for {origin}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:3em;color:#333}}code{{background:#eee;padding:0 .3em}}</style>
</head><body>
<h1>waiting for <code>{origin}</code> ...</h1>
<p id="execlib-waiting">execlib could not reach the backend ({reason}). This page reloads itself when it answers.</p>
<script>
(function poll() {{
  fetch("{check}", {{cache: "no-store"}}).then(function (r) {{ return r.json(); }}).then(function (state) {{
    if (state.up) location.reload(); else setTimeout(poll, 250);
  }}, function () {{ setTimeout(poll, 1000); }});
}})();
</script>
{tag}</body></html>
"""


def waiting_page(origin: str, reason: str, tag: bytes) -> bytes:
    return _PAGE.format(
        origin=html.escape(origin), reason=html.escape(reason), check=BACKEND_PATH, tag=tag.decode("ascii")
    ).encode("utf-8")
