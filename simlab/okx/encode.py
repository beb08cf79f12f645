"""Write OKX v5 public-feed messages, byte for byte as the exchange does.

Used by the emulator and the tests to produce frames that :func:`simlab.okx.parse_frame`
(and any other OKX client) reads exactly like real ones. Key order follows real frames:
books ``arg, action, data[{asks, bids, ts, checksum, prevSeqId, seqId}]`` (2022 captures
stop after ``checksum``), books5/bbo-tbt ``arg, data[{asks, bids, instId, ts, seqId}]``,
trades ``instId, tradeId, px, sz, side, ts, count, source, seqId``. Optional fields that
are ``None`` are left out, as older feeds did.

Prices and sizes are written in OKX's form (see :func:`format_decimal`): some clients
rebuild the checksum from floats and depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .messages import FULL_BOOK_CHANNELS, INCREMENTAL_BOOK_CHANNELS, Trade

_dumps = orjson.dumps


def format_decimal(x: Decimal | int | str | float) -> str:
    """Shortest plain decimal string: no exponent, no trailing zeros, ``"0"`` for zero.

    Accepts a :class:`~decimal.Decimal`, an ``int`` or a decimal string. A ``float`` is
    accepted too and goes through ``repr`` (its shortest round-tripping form) before
    :class:`~decimal.Decimal`, so ``0.1`` gives ``"0.1"``, not the binary expansion.

    >>> format_decimal(Decimal("41006.80")), format_decimal("1E-8"), format_decimal(0.1)
    ('41006.8', '0.00000001', '0.1')
    >>> format_decimal(Decimal("1.2E+3")), format_decimal("-0.000"), format_decimal(7)
    ('1200', '0', '7')
    """
    if isinstance(x, bool):
        raise TypeError(f"format_decimal expects a Decimal, int, str or float, got {x!r}")
    if isinstance(x, Decimal):
        d = x
    elif isinstance(x, int):
        return str(x)
    elif isinstance(x, float):
        d = Decimal(repr(x))
    elif isinstance(x, str):
        try:
            d = Decimal(x)
        except InvalidOperation:
            raise ValueError(f"format_decimal expects a decimal number, got {x!r}") from None
    else:
        raise TypeError(f"format_decimal expects a Decimal, int, str or float, got {x!r}")
    if not d.is_finite():
        raise ValueError(f"format_decimal expects a finite number, got {x!r}")
    if not d:
        return "0"
    # format(.., "f") is exact at any precision (Decimal.normalize would round to 28 digits).
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _level(lvl: Sequence[Any]) -> list[str]:
    """``[px, sz]``, ``(px, sz, count)`` or the wire ``[px, sz, "0", count]`` -> wire level."""
    n = len(lvl)
    if n < 2 or n > 4:
        raise ValueError(f"level must be (price, size[, count]) or [price, size, '0', count], "
                         f"got {lvl!r}")
    px, sz = format_decimal(lvl[0]), format_decimal(lvl[1])
    # A bare (px, sz) has no order count: say one order, none for a deletion.
    count = ("0" if sz == "0" else "1") if n == 2 else lvl[-1]
    try:
        count = str(int(count))
    except (TypeError, ValueError):
        raise ValueError(f"level order count must be an integer, got {lvl!r}") from None
    return [px, sz, "0", count]


def encode_book(
    channel: str,
    inst_id: str,
    action: str | None,
    bids: Iterable[Sequence[Any]],
    asks: Iterable[Sequence[Any]],
    ts: int,
    seq_id: int | None = None,
    prev_seq_id: int | None = None,
    checksum: int | None = None,
) -> bytes:
    """One order-book push as OKX sends it.

    ``bids``/``asks`` are best first; each level is ``(px, sz)``, ``(px, sz, count)`` or a
    wire level, with prices and sizes as anything :func:`format_decimal` takes. For
    ``books5``/``bbo-tbt`` give ``action`` ``None`` (or ``"snapshot"``): those channels
    carry no action, no prevSeqId and no checksum, and put ``instId`` in ``data``.

    >>> f = encode_book("books", "BTC-USDT", "update", [], [("41006.80", "0.6", 1)], 1,
    ...                 seq_id=9, prev_seq_id=5, checksum=0)
    >>> f[:65]
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
    >>> f[65:]
    b'"data":[{"asks":[["41006.8","0.6","0","1"]],"bids":[],"ts":"1","checksum":0,"prevSeqId":5,"seqId":9}]}'
    """
    if not isinstance(inst_id, str) or not inst_id:
        raise ValueError(f"inst_id must be a non-empty string, got {inst_id!r}")
    data: dict[str, Any] = {"asks": [_level(x) for x in asks], "bids": [_level(x) for x in bids]}
    if channel in FULL_BOOK_CHANNELS:
        if action not in (None, "snapshot"):
            raise ValueError(f"{channel!r} pushes have no action (always a full book), "
                             f"got {action!r}")
        if prev_seq_id is not None or checksum is not None:
            raise ValueError(f"{channel!r} pushes carry no prevSeqId and no checksum")
        data["instId"] = inst_id
        data["ts"] = str(int(ts))
        if seq_id is not None:
            data["seqId"] = int(seq_id)
        return _dumps({"arg": {"channel": channel, "instId": inst_id}, "data": [data]})
    if channel not in INCREMENTAL_BOOK_CHANNELS:
        raise ValueError(f"channel must be one of {sorted(INCREMENTAL_BOOK_CHANNELS)} or "
                         f"{sorted(FULL_BOOK_CHANNELS)}, got {channel!r}")
    if action not in ("snapshot", "update"):
        raise ValueError(f"{channel!r} action must be 'snapshot' or 'update', got {action!r}")
    data["ts"] = str(int(ts))
    if checksum is not None:
        data["checksum"] = int(checksum)
    if prev_seq_id is not None:
        data["prevSeqId"] = int(prev_seq_id)
    if seq_id is not None:
        data["seqId"] = int(seq_id)
    return _dumps({"arg": {"channel": channel, "instId": inst_id}, "action": action,
                   "data": [data]})


def _trade(inst_id: str, t: Trade | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(t, Mapping):
        t = Trade(**t)
    if t.side not in ("buy", "sell"):
        raise ValueError(f"trade side must be 'buy' or 'sell', got {t.side!r}")
    row: dict[str, Any] = {"instId": inst_id, "tradeId": str(t.trade_id),
                           "px": format_decimal(t.px), "sz": format_decimal(t.sz),
                           "side": t.side, "ts": str(int(t.ts))}
    if t.count is not None:
        row["count"] = str(int(t.count))
    if t.source is not None:
        row["source"] = str(t.source)
    if t.seq_id is not None:
        row["seqId"] = int(t.seq_id)
    return row


def encode_trades(inst_id: str, trades: Iterable[Trade | Mapping[str, Any]]) -> bytes:
    """One ``trades`` push. ``trades`` are :class:`~simlab.okx.messages.Trade` objects (or
    mappings with its field names); ``count``/``source``/``seqId`` are left out when None.

    >>> f = encode_trades("BTC-USDT", [Trade("7", "42219.90", "0.12", "buy", 1629386781174)])
    >>> f[48:]
    b'"data":[{"instId":"BTC-USDT","tradeId":"7","px":"42219.9","sz":"0.12","side":"buy","ts":"1629386781174"}]}'
    """
    if not isinstance(inst_id, str) or not inst_id:
        raise ValueError(f"inst_id must be a non-empty string, got {inst_id!r}")
    return _dumps({"arg": {"channel": "trades", "instId": inst_id},
                   "data": [_trade(inst_id, t) for t in trades]})


def encode_event(
    event: str,
    arg: Mapping[str, Any] | None = None,
    code: str | None = None,
    msg: str | None = None,
    conn_id: str | None = None,
    id: str | None = None,
) -> bytes:
    """A control event (subscribe/unsubscribe ack, ``error``, ``notice``); None fields omitted.

    >>> encode_event("subscribe", {"channel": "books", "instId": "BTC-USDT"}, id="1",
    ...              conn_id="a4d3ae55")[:38]
    b'{"id":"1","event":"subscribe","arg":{"'
    >>> encode_event("notice", code="64008", msg="reconnect")
    b'{"event":"notice","code":"64008","msg":"reconnect"}'
    """
    d: dict[str, Any] = {}
    if id is not None:
        d["id"] = str(id)
    d["event"] = event
    if arg is not None:
        d["arg"] = dict(arg)
    if code is not None:
        d["code"] = str(code)
    if msg is not None:
        d["msg"] = msg
    if conn_id is not None:
        d["connId"] = conn_id
    return _dumps(d)
