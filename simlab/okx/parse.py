"""Parse raw OKX v5 public WebSocket frames into :mod:`simlab.okx.messages` objects.

Uses orjson (the fastest JSON parser available to us; see benchmarks/). :func:`parse_frame`
is total: for any input it returns a message or raises :class:`OkxParseError` naming what
was wrong (never a bare KeyError, and never RecursionError on deeply nested input). Every
field the rest of simlab reads is type-checked here: ``arg`` an object with string
``channel``/``instId``, ``data`` a list of objects, book levels lists of strings, seqIds,
checksum and ``ts`` integers in range. Whether a level's strings are numbers is judged
later, by the normaliser and the book (see ``docs/recording-format.md``: a bad level is kept
raw, counted malformed and refused by the book). Error reasons quote values through
:func:`show`, so they stay short whatever the frame holds.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Any

import orjson

from simlab import core as _core

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
    show,
)

_loads = orjson.loads


# the C scanner when the C core is active (simlab.core), else orjson for everything
_scan = getattr(_core.native(), "scan_okx_book", None)
#: Set to False to force the orjson path (the tests compare both).
USE_SCANNER = _scan is not None


_INT = re.compile(r"-?[0-9]{1,19}").fullmatch
#: OKX writes prices and sizes as plain decimals: no sign, exponent, NaN or infinity.
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch
#: Event names and codes are short words; a long or odd one is not OKX talking.
_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}").fullmatch
_CODE = re.compile(r"[A-Za-z0-9_-]{0,32}").fullmatch
_I64 = 2**63


def _opt_int(d: dict, key: str, frame) -> int | None:
    """An integer field, sent as a JSON integer or as a string of digits (``ts``), in the
    signed 64-bit range the recording's columns hold."""
    v = d.get(key)
    if v is None or v == "":
        return None
    if type(v) is int or (type(v) is str and _INT(v)):
        i = int(v)
        if -_I64 <= i < _I64:
            return i
        raise OkxParseError(f"field {key!r} out of range: {show(v)}", frame)
    raise OkxParseError(f"field {key!r} must be an integer, got {show(v)}", frame)


def _opt_str(d: dict, key: str, frame, *, ints: bool = False) -> str | None:
    """A string field (``ints``: a JSON integer is accepted and kept as its digits)."""
    v = d.get(key)
    if v is None or type(v) is str:
        return v
    if ints and type(v) is int and -_I64 <= v < _I64:
        return str(v)
    raise OkxParseError(f"field {key!r} must be a string, got {show(v)}", frame)


def _levels(d: dict, key: str, frame) -> list:
    lv = d.get(key)
    if lv is None:
        return []
    if type(lv) is not list:
        raise OkxParseError(f"{key!r} must be a list of levels, got {show(lv)}", frame)
    try:
        # Strings only (join refuses anything else, in C): the book judges their form,
        # and must never be handed a nested object (its error message would repr it).
        "".join(chain.from_iterable(lv))
        ok = all(type(level) is list and len(level) >= 2 for level in lv)
    except TypeError:
        ok = False
    if not ok:
        bad = next((lvl for lvl in lv if type(lvl) is not list or len(lvl) < 2
                    or not all(type(x) is str for x in lvl)), lv)
        raise OkxParseError(f"{key!r} level must be [price, size, ..., count] strings, "
                            f"got {show(bad)}", frame)
    return lv


def parse_frame(frame: bytes | str) -> Message:
    """Parse one WebSocket text frame; raises :class:`OkxParseError` (and nothing else) on
    anything that is not a valid OKX v5 public message.

    Book pushes come back as :class:`BookMsg` or, from the C fast path, as an object with
    the same attributes whose ``bids``/``asks`` are read-only list-like views: test with
    :func:`~simlab.okx.messages.is_book`, not ``isinstance``.

    >>> m = parse_frame(b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
    ...                 b'"data":[{"asks":[["41006.8","0.6","0","1"]],"bids":[],"ts":"1",'
    ...                 b'"checksum":0,"prevSeqId":5,"seqId":9}]}')
    >>> (m.inst_id, m.action, m.prev_seq_id, m.seq_id, m.asks[0][0])
    ('BTC-USDT', 'update', 5, 9, '41006.8')
    >>> parse_frame(b'{"event":"notice","arg":[1],"code":"1"}')
    Traceback (most recent call last):
    ...
    simlab.okx.messages.OkxParseError: 'arg' must be an object with a 'channel', got a list...
    """
    if type(frame) is not bytes and type(frame) is not str:
        if not isinstance(frame, bytes | bytearray | memoryview | str):
            raise OkxParseError(f"a frame must be bytes or str, got {type(frame).__name__}")
        frame = bytes(frame) if not isinstance(frame, str) else str(frame)
    try:
        if USE_SCANNER:
            # The C scanner reads plain OKX book pushes without building a Python object
            # per level; anything else (or anything unusual) it declines with None.
            m = _scan(frame)
            if m is not None:
                return m
        if frame == b"pong" or frame == "pong":
            return Pong()
        try:
            d = _loads(frame)
        except orjson.JSONDecodeError as e:
            raise OkxParseError(f"invalid JSON ({e.msg} at char {e.pos})", frame) from None
        return _message(d, frame)
    except OkxParseError:
        raise
    except Exception as e:  # a case the checks above missed is still bad input, not a crash
        raise OkxParseError(f"unparseable frame ({type(e).__name__})", frame) from None


def _message(d: Any, frame) -> Message:
    if type(d) is not dict:
        raise OkxParseError(f"expected a JSON object, got {show(d)}", frame)
    arg = d.get("arg")
    if arg is not None and type(arg) is not dict:
        raise OkxParseError(f"'arg' must be an object with a 'channel', got {show(arg)}",
                             frame)
    if arg is not None:
        for key in ("channel", "instId"):
            if key in arg and type(arg[key]) is not str:
                raise OkxParseError(f"{key!r} must be a string, got {show(arg[key])}", frame)
    if "event" in d:
        return _event(d, arg, frame)
    if arg is None or "channel" not in arg:
        raise OkxParseError("expected 'event' or 'arg' with a 'channel'", frame)
    channel = arg["channel"]
    inst = arg.get("instId")
    data = d.get("data")
    if type(data) is not list:
        raise OkxParseError(f"{show(channel)} push without a 'data' list", frame)
    if channel in BOOK_CHANNELS:
        if len(data) != 1 or type(data[0]) is not dict:
            raise OkxParseError(f"{channel!r} push must have exactly one data object", frame)
        return _book(channel, inst or data[0].get("instId"), d.get("action"), data[0], frame)
    if channel in TRADE_CHANNELS:
        if not data:
            raise OkxParseError(f"{channel!r} push without a trade", frame)
        return TradeMsg(channel, inst, [_trade(t, frame) for t in data])
    return OtherMsg(channel, inst, data)


def _event(d: dict, arg: dict | None, frame) -> EventMsg:
    event = d["event"]
    if type(event) is not str or not _EVENT(event):
        raise OkxParseError(f"'event' must be a name like 'subscribe', got {show(event)}", frame)
    code = _opt_str(d, "code", frame, ints=True)
    if code is not None and not _CODE(code):
        raise OkxParseError(f"'code' must be a short code like '60012', got {show(code)}",
                            frame)
    return EventMsg(event=event, code=code, msg=_opt_str(d, "msg", frame), arg=arg,
                    conn_id=_opt_str(d, "connId", frame),
                    id=_opt_str(d, "id", frame, ints=True))


def _book(channel: str, inst: Any, action: Any, b: dict, frame) -> BookMsg:
    if type(inst) is not str or not inst:
        raise OkxParseError(f"{channel!r} push without an instId string, got {show(inst)}",
                            frame)
    if channel in FULL_BOOK_CHANNELS:
        action = "snapshot"
    elif action not in ("snapshot", "update"):
        raise OkxParseError(f"{channel!r} action must be 'snapshot' or 'update', got "
                            f"{show(action)}", frame)
    ts = _opt_int(b, "ts", frame)
    if ts is None:
        raise OkxParseError(f"{channel!r} push without 'ts'", frame)
    if ts < 0:
        raise OkxParseError(f"'ts' must be >= 0, got {ts}", frame)
    return BookMsg(channel, inst, action, _levels(b, "bids", frame), _levels(b, "asks", frame), ts,
                   _opt_int(b, "seqId", frame), _opt_int(b, "prevSeqId", frame),
                   _opt_int(b, "checksum", frame))


def _trade(t: Any, frame) -> Trade:
    if type(t) is not dict:
        raise OkxParseError(f"trade must be an object, got {show(t)}", frame)
    try:
        px, sz, side = t["px"], t["sz"], t["side"]
        t["tradeId"]
    except KeyError as e:
        raise OkxParseError(f"trade without {e.args[0]!r}", frame) from None
    trade_id = _opt_str(t, "tradeId", frame, ints=True)
    if not trade_id:
        raise OkxParseError("trade without a 'tradeId'", frame)
    if side not in ("buy", "sell") or type(side) is not str:
        raise OkxParseError(f"trade side must be 'buy' or 'sell', got {show(side)}", frame)
    for name, v in (("px", px), ("sz", sz)):
        if type(v) is not str:
            raise OkxParseError(f"trade {name!r} must be a decimal string, got {show(v)}", frame)
        if not _DECIMAL(v):
            raise OkxParseError(f"trade {name!r} is not a number: {show(v)}", frame)
    ts = _opt_int(t, "ts", frame)
    if ts is None:
        raise OkxParseError("trade without 'ts'", frame)
    if ts < 0:
        raise OkxParseError(f"trade 'ts' must be >= 0, got {ts}", frame)
    return Trade(trade_id, px, sz, side, ts, _opt_int(t, "count", frame),
                 _opt_int(t, "seqId", frame), _opt_str(t, "source", frame, ints=True))


def parse_history_line(line: bytes | str) -> BookMsg:
    """Parse one line of OKX's daily historical 400-level order-book files; like
    :func:`parse_frame`, raises :class:`OkxParseError` and nothing else on bad input.

    Lines look like ``{"instId":..,"action":"snapshot"|"update","ts":..,"asks":[[px,sz,count],..],
    "bids":[..]}``: no seqId and no checksum.

    >>> m = parse_history_line('{"instId":"BTC-USDT","action":"snapshot","ts":"1",'
    ...                        '"asks":[["2","1","1"]],"bids":[["1","3","2"]]}')
    >>> (m.channel, m.action, m.bids)
    ('books-l2-history', 'snapshot', [['1', '3', '2']])
    """
    if not isinstance(line, bytes | bytearray | memoryview | str):
        raise OkxParseError(f"a line must be bytes or str, got {type(line).__name__}")
    try:
        try:
            d = _loads(line)
        except orjson.JSONDecodeError as e:
            raise OkxParseError(f"invalid JSON ({e.msg} at char {e.pos})", line) from None
        if type(d) is not dict:
            raise OkxParseError(f"expected a JSON object, got {show(d)}", line)
        return _book(HISTORY_BOOK_CHANNEL, d.get("instId"), d.get("action"), d, line)
    except OkxParseError:
        raise
    except Exception as e:  # see parse_frame
        raise OkxParseError(f"unparseable line ({type(e).__name__})", line) from None
