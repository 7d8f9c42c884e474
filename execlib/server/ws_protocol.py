"""The WebSocket protocol given to uvicorn: its sans-I/O one, with bad UTF-8 logged in one line.

Imported on the first WebSocket upgrade (``protocols.websocket_protocol``), not at start-up.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .protocols import peer_name

logger = logging.getLogger("execlib.server")


class QuietWebSocketsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol; a text message that is not UTF-8 closes the
    connection with 1007 as before, but is logged in one line instead of with a traceback."""

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError:
                self.frames = []
                peer = peer_name(self.client)
                logger.warning("WebSocket %s sent a text message that is not UTF-8; closing (1007)", peer)
                self.conn.send_close(1007)
                self.handle_parser_exception()  # tells the app, sends the close frame, closes
                return
        super().send_receive_event_to_app()
