"""The event stream every source produces: book ticks, trades and notices.

Live (:class:`simlab.feed.live.LiveSource`) and replay (:class:`simlab.feed.replay.ReplaySource`)
both turn received frames into these objects with the same decoder
(:class:`simlab.feed.decode.FrameDecoder`), so a consumer cannot tell them apart and gets the
same numbers from both. The types are venue-neutral: nothing here knows about OKX.

Times: ``recv_ns`` is the local receive time (ns since the epoch, UTC), ``ts_ms`` the
exchange time (ms). ``arrival`` orders the frames of one recording (or of one live run);
``rec`` says which recording of a sequence the event comes from (0 live).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class BookTick:
    """A book message was applied (or refused) for one instrument.

    ``book`` is the live book object (:class:`simlab.book.L2Book`): query it during the
    callback, it changes with the next tick. ``valid`` is False while the book is unknown
    (before the first snapshot, after a gap or a failed checksum until the next snapshot);
    a consumer must not price off an invalid book. ``decode_ns`` is the time spent parsing
    the frame and applying it to the book, ``parse_ns`` the parsing part of it (latency
    stages; 0 when not measured).

    >>> from simlab.book import L2Book
    >>> b = L2Book("X"); b.apply_snapshot([["99", "1"]], [["101", "2"]])
    >>> t = BookTick(0, 1, 5, "books", "X", b, True, True)
    >>> t.book.mid, t.valid
    (100.0, True)
    """

    arrival: int
    recv_ns: int
    ts_ms: int
    channel: str
    inst: str
    book: Any
    valid: bool
    snapshot: bool
    decode_ns: int = 0
    rec: int = 0
    parse_ns: int = 0

    kind = "book"


@dataclass(slots=True)
class TradeTick:
    """One public trade. ``side`` is the taker's side (``buy``/``sell``); ``price`` in quote
    currency, ``size`` in the instrument's size unit (base, or contracts for swaps).

    >>> TradeTick(3, 10, 5, "trades", "BTC-USDT", "42", "buy", 100.5, 0.2).size
    0.2
    """

    arrival: int
    recv_ns: int
    ts_ms: int
    channel: str
    inst: str
    trade_id: str
    side: str
    price: float
    size: float
    rec: int = 0

    kind = "trade"


@dataclass(slots=True)
class Notice:
    """Something about the feed itself: an integrity break found while decoding (``gap``,
    ``checksum_failed``, ``rejected``, ``no_snapshot``), a connection event of the live
    client (``connect``, ``disconnect``, ``resync_done`` ...), or ``end`` of a recording.

    >>> Notice("gap", 7, 10, "books", "BTC-USDT", "expected prevSeqId 5").what
    'gap'
    """

    what: str
    arrival: int | None
    recv_ns: int
    channel: str | None = None
    inst: str | None = None
    detail: str = ""
    data: dict[str, Any] | None = None
    rec: int = 0

    kind = "notice"


#: Anything a source yields.
Event = BookTick | TradeTick | Notice
