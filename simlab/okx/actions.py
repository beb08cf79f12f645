"""What the live feed handler hands out: :class:`ClientEvent` status events for the
consumer (in stream order with the frames), and actions for the client that drives it
(open, send, close, abort a connection; fetch a REST snapshot). The handler decides; the
client performs the actions and reports back what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .connection import Arg


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A status event of the client, in stream order with the frames.

    ``kind`` (see ``docs/live-client.md``): connect, connect_failed, disconnect, reconnect,
    subscribed, unsubscribed, error, refused, resumed, notice, switchover, ping_timeout,
    silence, malformed, duplicate, gap, checksum_failed, rejected, seq_reset, resync_started,
    snapshot_timeout, bootstrap, rest_error, bootstrap_retry, buffer_overflow, resync_done, closed.
    ``recv_ns`` is when it happened (ns since the epoch); ``conn`` the connection (None for
    the client); ``data`` the specifics (seq ids, durations, counts...).

    >>> ClientEvent("gap", 5, 0, "books", "BTC-USDT", "", {"seq_id": 9, "arrival": 3}).as_dict()
    {'kind': 'gap', 'recv_ns': 5, 'conn': 0, 'channel': 'books', 'inst': 'BTC-USDT', \
'seq_id': 9, 'arrival': 3}
    """

    kind: str
    recv_ns: int
    conn: int | None = None
    channel: str | None = None
    inst: str | None = None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict for ``RecordingWriter.add_event`` (its ``arrival``, when
        present, is the arrival of the frame the event is about)."""
        d: dict[str, Any] = {"kind": self.kind, "recv_ns": self.recv_ns}
        for k in ("conn", "channel", "inst"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.detail:
            d["detail"] = self.detail
        d.update(self.data)
        return d


@dataclass(frozen=True, slots=True)
class Open:
    """Open a connection for slot ``slot`` (``current``: it carries the slot's streams at
    once; else a switchover's new connection), then call ``opened`` or ``open_failed``.

    >>> Open(0, True)
    Open(slot=0, current=True)
    """

    slot: int
    current: bool


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``text`` on connection ``conn`` (a request, or ``ping``).

    >>> Send(1, "ping").text
    'ping'
    """

    conn: int
    text: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn`` politely (its reader then reports ``closed``).

    >>> Close(2)
    Close(conn=2)
    """

    conn: int


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop connection ``conn`` at once (no pong: the peer is presumed dead).

    >>> Abort(2)
    Abort(conn=2)
    """

    conn: int


@dataclass(frozen=True, slots=True)
class Fetch:
    """Fetch the REST order-book snapshot of ``key``; report it with ``ticket``.

    >>> Fetch(("books", "BTC-USDT"), 1).key
    ('books', 'BTC-USDT')
    """

    key: Arg
    ticket: int


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """Closing: every unsubscribe the handler waited for is acked.

    >>> Unsubscribed()
    Unsubscribed()
    """


Action = Open | Send | Close | Abort | Fetch | Unsubscribed
