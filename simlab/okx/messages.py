"""Typed OKX v5 public-feed messages, as parsed from the wire.

Prices and sizes stay the exact wire strings: the OKX checksum is computed over them, and
turning them into floats here would lose the form the exchange sent. A book level is kept
as the wire list itself (``[price, size, "0", count]``, or ``[price, size, count]`` in
OKX's historical L2 files): the order count is always the last element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simlab import core as _core

#: Depth channels that carry a snapshot followed by incremental updates.
INCREMENTAL_BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
#: Depth channels where each push is a complete top-N book (no ``action``).
FULL_BOOK_CHANNELS = frozenset({"books5", "bbo-tbt"})
#: OKX's daily historical 400-level files, imported by ``simlab import okx-l2``.
HISTORY_BOOK_CHANNEL = "books-l2-history"
BOOK_CHANNELS = INCREMENTAL_BOOK_CHANNELS | FULL_BOOK_CHANNELS | {HISTORY_BOOK_CHANNEL}
#: Levels a side each depth channel carries (the deepest a REST book can be asked is 400).
BOOK_DEPTH = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50, "books5": 5,
              "bbo-tbt": 1, HISTORY_BOOK_CHANNEL: 400}
TRADE_CHANNELS = frozenset({"trades"})
#: Public channels simlab knows about but does not normalise (kept raw).
OTHER_CHANNELS = frozenset({"tickers", "trades-all", "funding-rate", "mark-price", "index-tickers",
                            "open-interest", "price-limit", "estimated-price", "opt-summary",
                            "liquidation-orders", "instruments", "status"})

Level = list  # [price: str, size: str, ..., count: str]


def show(v: Any, limit: int = 40) -> str:
    """A short description of a parsed JSON value for an error message: short scalars as
    their repr, long strings cut, containers by type and size (never a repr of a nested
    object, which can be huge or too deep to print).

    >>> show("41006.8"), show("x" * 100)[:8], show([[1]]), show({"a": 1}), show(2**200)
    ("'41006.8'", "'xxxxxxx", 'a list of 1', 'an object of 1 key', 'an integer of 61 digits')
    """
    if type(v) is str:
        return repr(v) if len(v) <= limit else f"{v[:limit]!r}... ({len(v)} chars)"
    if v is None or type(v) in (bool, float):
        return repr(v)
    if type(v) is int:
        if -10**limit < v < 10**limit:
            return repr(v)
        return f"an integer of {v.bit_length() * 30103 // 100000 + 1} digits"
    if isinstance(v, list | tuple):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return f"an object of {len(v)} key{'' if len(v) == 1 else 's'}"
    return f"a {type(v).__name__}"


def _excerpt(frame: Any, n: int = 120) -> str:
    if isinstance(frame, bytes | bytearray | memoryview):
        return bytes(frame[:n * 4]).decode("utf-8", "replace")[:n]
    if isinstance(frame, str):
        return frame[:n]
    return f"<{type(frame).__name__}>"


class OkxParseError(ValueError):
    """A frame that is not a valid OKX v5 public message.

    ``reason`` says what was expected; ``excerpt`` is the start of the offending frame (at
    most 120 characters, whatever its size).

    >>> OkxParseError("expected a JSON object", b"[1, 2]" + b" " * 10**6).excerpt[:6]
    '[1, 2]'
    """

    def __init__(self, reason: str, frame: bytes | str | None = None):
        self.reason = reason
        self.excerpt = "" if frame is None else _excerpt(frame)
        super().__init__(f"{reason}: {self.excerpt!r}" if frame is not None else reason)


@dataclass(slots=True)
class BookMsg:
    """One order-book push for one instrument.

    ``action`` is ``"snapshot"`` or ``"update"``; full-book channels (``books5``,
    ``bbo-tbt``) are reported as snapshots. ``ts`` is the exchange time in ms.
    ``seq_id``/``prev_seq_id``/``checksum`` are ``None`` when the message does not carry
    them (2022 recordings, historical files); a checksum of ``0`` means "absent" since
    OKX's June 2026 change and is kept as ``0`` here.
    """

    channel: str
    inst_id: str
    action: str
    bids: list[Level]
    asks: list[Level]
    ts: int
    seq_id: int | None = None
    prev_seq_id: int | None = None
    checksum: int | None = None

    @property
    def is_snapshot(self) -> bool:
        return self.action == "snapshot"

    @property
    def is_empty(self) -> bool:
        return not self.bids and not self.asks


@dataclass(slots=True)
class Trade:
    """One (aggregated) public trade. ``side`` is the taker's side, ``"buy"`` or ``"sell"``."""

    trade_id: str
    px: str
    sz: str
    side: str
    ts: int
    count: int | None = None
    seq_id: int | None = None
    source: str | None = None


@dataclass(slots=True)
class TradeMsg:
    channel: str
    inst_id: str
    trades: list[Trade]


@dataclass(slots=True)
class EventMsg:
    """A control event: ``subscribe``/``unsubscribe`` ack, ``error``, ``notice`` (64008)..."""

    event: str
    code: str | None = None
    msg: str | None = None
    arg: dict[str, Any] | None = None
    conn_id: str | None = None
    id: str | None = None

    @property
    def channel(self) -> str | None:
        return self.arg.get("channel") if self.arg else None

    @property
    def inst_id(self) -> str | None:
        return self.arg.get("instId") if self.arg else None


@dataclass(slots=True)
class OtherMsg:
    """A data push on a channel simlab keeps raw but does not interpret (e.g. ``tickers``)."""

    channel: str
    inst_id: str | None
    data: Any = field(default=None)


@dataclass(slots=True)
class Pong:
    """The text frame ``pong`` answering a client ``ping``."""


Message = BookMsg | TradeMsg | EventMsg | OtherMsg | Pong



# the C scanner's message type when the C core is active (simlab.core), else BookMsg again
ScannedBook = getattr(_core.native(), "ScannedBook", BookMsg)

#: The types a book push may have: BookMsg (orjson path) and the C scanner's ScannedBook.
BOOK_TYPES = (BookMsg, ScannedBook)


def is_book(msg: object) -> bool:
    """True for an order-book push, whichever parser produced it (Python or C fast path).

    >>> from simlab.okx import parse_frame
    >>> is_book(parse_frame(b'{"arg":{"channel":"bbo-tbt","instId":"X"},"data":[{"asks":[],'
    ...                     b'"bids":[],"ts":"1","seqId":3}]}'))
    True
    """
    return type(msg) in BOOK_TYPES
