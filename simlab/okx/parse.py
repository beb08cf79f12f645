"""Parse raw OKX v5 public WebSocket frames into :mod:`simlab.okx.messages` objects.

Uses orjson (the fastest JSON parser available to us; see benchmarks/). Every malformed
input raises :class:`OkxParseError` naming what was wrong, never a bare KeyError.
"""

from __future__ import annotations

import re

import orjson

from .messages import (
    BOOK_CHANNELS,
    FULL_BOOK_CHANNELS,
    HISTORY_BOOK_CHANNEL,
    TRADE_CHANNELS,
    BookMsg,
    EventMsg,
    Message,
    OkxParseError,
    OtherMsg,
    Pong,
    Trade,
    TradeMsg,
)

_loads = orjson.loads

try:
    from simlab._native import scan_okx_book as _scan
except ImportError:  # built without a compiler: orjson for everything
    _scan = None
#: Set to False to force the orjson path (the tests compare both).
USE_SCANNER = _scan is not None


_INT = re.compile(r"-?[0-9]{1,19}").fullmatch
#: OKX writes prices and sizes as plain decimals: no sign, exponent, NaN or infinity.
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch


def _opt_int(d: dict, key: str, frame) -> int | None:
    """An integer field, sent as a JSON integer or as a string of digits (``ts``)."""
    v = d.get(key)
    if v is None or v == "":
        return None
    if type(v) is int or (type(v) is str and _INT(v)):
        return int(v)
    raise OkxParseError(f"field {key!r} must be an integer, got {v!r}", frame)


def _levels(d: dict, key: str, frame) -> list:
    lv = d.get(key)
    if lv is None:
        return []
    if not isinstance(lv, list):
        raise OkxParseError(f"{key!r} must be a list of levels", frame)
    for level in lv:
        if not isinstance(level, list) or len(level) < 2:
            raise OkxParseError(f"{key!r} level must be [price, size, ..., count], got {level!r}",
                                frame)
    return lv


def parse_frame(frame: bytes | str) -> Message:
    """Parse one WebSocket text frame.

    Book pushes come back as :class:`BookMsg` or, from the C fast path, as an object with
    the same attributes whose ``bids``/``asks`` are read-only list-like views: test with
    :func:`~simlab.okx.messages.is_book`, not ``isinstance``.

    >>> m = parse_frame(b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
    ...                 b'"data":[{"asks":[["41006.8","0.6","0","1"]],"bids":[],"ts":"1",'
    ...                 b'"checksum":0,"prevSeqId":5,"seqId":9}]}')
    >>> (m.inst_id, m.action, m.prev_seq_id, m.seq_id, m.asks[0][0])
    ('BTC-USDT', 'update', 5, 9, '41006.8')
    """
    if USE_SCANNER:
        # The C scanner reads plain OKX book pushes without building a Python object per
        # level; anything else (or anything unusual) it declines with None.
        m = _scan(frame)
        if m is not None:
            return m
    if frame == b"pong" or frame == "pong":
        return Pong()
    try:
        d = _loads(frame)
    except orjson.JSONDecodeError as e:
        raise OkxParseError(f"invalid JSON ({e.msg} at char {e.pos})", frame) from None
    if not isinstance(d, dict):
        raise OkxParseError("expected a JSON object", frame)
    arg = d.get("arg")
    data = d.get("data")
    if "event" in d:
        return EventMsg(event=str(d["event"]), code=d.get("code"), msg=d.get("msg"), arg=arg,
                        conn_id=d.get("connId"), id=d.get("id"))
    if not isinstance(arg, dict) or "channel" not in arg:
        raise OkxParseError("expected 'event' or 'arg' with a 'channel'", frame)
    channel = arg["channel"]
    if not isinstance(channel, str):
        raise OkxParseError(f"'channel' must be a string, got {channel!r}", frame)
    inst = arg.get("instId")
    if inst is not None and not isinstance(inst, str):
        raise OkxParseError(f"'instId' must be a string, got {inst!r}", frame)
    if not isinstance(data, list):
        raise OkxParseError(f"{channel!r} push without a 'data' list", frame)
    if channel in BOOK_CHANNELS:
        if len(data) != 1 or not isinstance(data[0], dict):
            raise OkxParseError(f"{channel!r} push must have exactly one data object", frame)
        return _book(channel, inst or data[0].get("instId"), d.get("action"), data[0], frame)
    if channel in TRADE_CHANNELS:
        return TradeMsg(channel, inst, [_trade(t, frame) for t in data])
    return OtherMsg(channel, inst, data)


def _book(channel: str, inst, action, b: dict, frame) -> BookMsg:
    if not isinstance(inst, str) or not inst:
        raise OkxParseError(f"{channel!r} push without an instId", frame)
    if channel in FULL_BOOK_CHANNELS:
        action = "snapshot"
    elif action not in ("snapshot", "update"):
        raise OkxParseError(f"{channel!r} action must be 'snapshot' or 'update', got {action!r}",
                            frame)
    ts = _opt_int(b, "ts", frame)
    if ts is None:
        raise OkxParseError(f"{channel!r} push without 'ts'", frame)
    return BookMsg(channel, inst, action, _levels(b, "bids", frame), _levels(b, "asks", frame), ts,
                   _opt_int(b, "seqId", frame), _opt_int(b, "prevSeqId", frame),
                   _opt_int(b, "checksum", frame))


def _trade(t, frame) -> Trade:
    if not isinstance(t, dict):
        raise OkxParseError("trade must be an object", frame)
    try:
        px, sz, side = t["px"], t["sz"], t["side"]
        trade_id = str(t["tradeId"])
    except KeyError as e:
        raise OkxParseError(f"trade without {e.args[0]!r}", frame) from None
    if side not in ("buy", "sell"):
        raise OkxParseError(f"trade side must be 'buy' or 'sell', got {side!r}", frame)
    for name, v in (("px", px), ("sz", sz)):
        if not isinstance(v, str):
            raise OkxParseError(f"trade {name!r} must be a decimal string, got {v!r}", frame)
        if not _DECIMAL(v):
            raise OkxParseError(f"trade {name!r} is not a number: {v!r}", frame)
    ts = _opt_int(t, "ts", frame)
    if ts is None:
        raise OkxParseError("trade without 'ts'", frame)
    return Trade(trade_id, px, sz, side, ts, _opt_int(t, "count", frame),
                 _opt_int(t, "seqId", frame), t.get("source"))


def parse_history_line(line: bytes | str) -> BookMsg:
    """Parse one line of OKX's daily historical 400-level order-book files.

    Lines look like ``{"instId":..,"action":"snapshot"|"update","ts":..,"asks":[[px,sz,count],..],
    "bids":[..]}``: no seqId and no checksum.

    >>> m = parse_history_line('{"instId":"BTC-USDT","action":"snapshot","ts":"1",'
    ...                        '"asks":[["2","1","1"]],"bids":[["1","3","2"]]}')
    >>> (m.channel, m.action, m.bids)
    ('books-l2-history', 'snapshot', [['1', '3', '2']])
    """
    try:
        d = _loads(line)
    except orjson.JSONDecodeError as e:
        raise OkxParseError(f"invalid JSON ({e.msg} at char {e.pos})", line) from None
    if not isinstance(d, dict):
        raise OkxParseError("expected a JSON object", line)
    return _book(HISTORY_BOOK_CHANNEL, d.get("instId"), d.get("action"), d, line)
