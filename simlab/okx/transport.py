"""The live client's WebSocket I/O, and nothing else: open a connection, send text, receive
frames, close or abort it. :class:`~simlab.okx.handler.FeedHandler` decides what to do
(subscriptions, keepalive, backoff, resync) and :class:`~simlab.okx.client.OkxClient`
performs it through this; a test gives the client another transport."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

#: A connection attempt that failed (the client backs off and tries again).
CONNECT_ERRORS = (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed)
#: A send on a connection that is going away (its reader reports the close).
SEND_ERRORS = (ConnectionClosed, OSError)


class Closed(Exception):
    """The connection closed: ``code`` and ``reason`` of its close frame (1006 without
    one)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"code {code}: {reason}")
        self.code, self.reason = code, reason


class WsTransport:
    """``websockets`` connections with the client's options (no library keepalive: the
    client pings as OKX asks; a small receive queue, so a slow consumer pushes back on TCP).

    >>> WsTransport(close_timeout=2.0, open_timeout=10.0).options["max_queue"]
    64
    """

    def __init__(self, close_timeout: float, open_timeout: float,
                 ws_options: dict[str, Any] | None = None) -> None:
        self.close_timeout = close_timeout
        self.options: dict[str, Any] = {"ping_interval": None, "close_timeout": close_timeout,
                                        "open_timeout": open_timeout, "max_queue": 64,
                                        **(ws_options or {})}

    async def open(self, url: str) -> Any:
        """A new connection to ``url`` (raises one of :data:`CONNECT_ERRORS`)."""
        return await connect(url, **self.options)

    async def send(self, ws: Any, text: str) -> None:
        await ws.send(text, text=True)

    async def recv(self, ws: Any) -> bytes:
        """The next frame's bytes; :class:`Closed` when the connection closed."""
        try:
            payload = await ws.recv(decode=False)
        except ConnectionClosed as e:
            rcvd = e.rcvd
            raise (Closed(rcvd.code, rcvd.reason) if rcvd is not None
                   else Closed(1006, "no close frame")) from None
        return payload if isinstance(payload, bytes) else bytes(payload)

    async def close(self, ws: Any) -> None:
        """Close politely (bounded by ``close_timeout``); never raises."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), self.close_timeout + 1)

    def abort(self, ws: Any) -> None:
        """Drop the TCP connection at once (a dead peer, or after the reader ended)."""
        t = ws.transport
        if t is not None and not t.is_closing():
            t.abort()
