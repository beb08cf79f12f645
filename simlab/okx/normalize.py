"""Turn one raw OKX frame into venue-neutral rows for a recording's normalised tables.

:func:`normalize` parses a frame and says what it is (``kind``), which channel and
instrument it belongs to, and, for order-book and trade pushes, the rows it contributes as
a dict of column lists. The store writes those columns without knowing anything about OKX;
the receive-side columns (``arrival``, ``recv_ns``) are added by the writer.

A frame that cannot be parsed, or whose numbers are not numbers, comes back as
``kind == "malformed"`` with a short reason; nothing here raises on bad input (any bytes,
deeply nested JSON included). Book prices and sizes must have the form the book accepts
(plain decimals of at most 18 digits on each side of the point, 31 characters in all;
order counts whole numbers), so a level the normaliser keeps is one the book can apply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from simlab import core as _core

from .messages import (
    BOOK_CHANNELS,
    OTHER_CHANNELS,
    TRADE_CHANNELS,
    EventMsg,
    OkxParseError,
    OtherMsg,
    Pong,
    TradeMsg,
    is_book,
    show,
)
from .parse import parse_frame, parse_history_line
from .rest_parse import (
    REST_CONN,
    instrument_metadata,  # noqa: F401 (importable from here, as before)
    parse_rest_book,
)

#: Raw payloads are WebSocket frames of the v5 public feed.
WIRE_WS = "okx-ws"
#: Raw payloads are lines of OKX's daily historical L2 files.
WIRE_L2_HISTORY = "okx-l2-history"
WIRE_FORMATS = (WIRE_WS, WIRE_L2_HISTORY)

LEVEL_COLUMNS = ("ts_ms", "seq_id", "prev_seq_id", "checksum", "snapshot", "side", "price",
                 "size", "count", "price_str", "size_str")
TRADE_COLUMNS = ("ts_ms", "trade_id", "side", "price", "size", "price_str", "size_str", "count",
                 "seq_id", "source")

_I64 = 2**63
_I32 = 2**31
#: The book's grammar (simlab/_native.c parse_dec, parse_count), for whole columns at once.
_DEC = r"[0-9]{1,18}(?:\.[0-9]{1,18})?"
_DECIMALS = re.compile(rf"{_DEC}(?:,{_DEC})*").fullmatch
_COUNTS = re.compile(r"(?:[0-9]{1,18}(?:,[0-9]{1,18})*)?").fullmatch
_MAX_NUMBER_CHARS = 31
_TRADE_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch
_TS = re.compile(r"[0-9]{1,19}").fullmatch


# the C scanner's levels, checked by the scanner, when the C core is active (simlab.core)
_Checked = getattr(_core.native(), "LevelsView", None)


@dataclass(slots=True)
class Normalized:
    """What one frame is and what it contributes.

    ``kind`` is ``book``, ``trade``, ``other`` (a known channel kept raw only), ``unknown``
    (a channel simlab does not know), ``event`` (subscribe ack, error, notice), ``pong`` or
    ``malformed``. ``table`` is ``"levels"``/``"trades"`` when ``rows`` holds columns for
    it. ``msg`` is the parsed message (also for a book push whose levels are malformed, so
    that a book checker can still count it). ``ts_ms`` is the exchange time when the frame
    carries one; ``label`` names an event (``"subscribe"``, ``"error 60012"``).
    """

    kind: str
    channel: str | None = None
    inst_id: str | None = None
    msg: Any = None
    table: str | None = None
    rows: dict[str, list] | None = None
    ts_ms: int | None = None
    label: str | None = None
    error: str | None = None


def normalize(payload: bytes | str, wire_format: str = WIRE_WS) -> Normalized:
    """Parse and normalise one frame; never raises on bad input.

    >>> n = normalize(b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot",'
    ...               b'"data":[{"asks":[["2","1","0","3"]],"bids":[["1","5","0","1"]],'
    ...               b'"ts":"7","checksum":0,"prevSeqId":-1,"seqId":9}]}')
    >>> n.kind, n.table, n.rows["side"], n.rows["price"], n.rows["count"]
    ('book', 'levels', ['bid', 'ask'], [1.0, 2.0], [1, 3])
    >>> normalize(b'{"arg":').kind
    'malformed'
    >>> normalize(b'{"event":"notice","arg":[1],"code":"1"}').error
    "'arg' must be an object with a 'channel', got a list of 1"
    """
    if wire_format not in WIRE_FORMATS:
        raise ValueError(f"wire format must be one of {WIRE_FORMATS}, got {wire_format!r}")
    try:
        if wire_format == WIRE_L2_HISTORY:
            msg = parse_history_line(payload)
        else:
            msg = parse_frame(payload)
        return _classify(msg)
    except Exception as e:
        return _unusable(e)


def _unusable(e: Exception, prefix: str = "") -> Normalized:
    if isinstance(e, OkxParseError):
        return Normalized("malformed", error=prefix + e.reason)
    # The checks promise OkxParseError; anything else is still bad input, not a crash (and
    # its text is not shown: it could quote the whole frame).
    return Normalized("malformed", error=f"{prefix}{INTERNAL_REASON} ({type(e).__name__})")


#: The partition of frames stored as malformed (the recording format's ``_malformed``).
MALFORMED_CHANNEL = "_malformed"
#: The reason for a frame that parses but was passed on or stored as malformed (the live
#: client could not handle it, or an importer's line had no usable prefix).
STORED_MALFORMED = "passed on as malformed (it parses, but could not be handled)"

#: The start of the reason given when a check raised something other than OkxParseError
#: (a bug in the checks; the hostile-frame tests assert it never happens).
INTERNAL_REASON = "unparseable frame"


def _classify(msg: Any) -> Normalized:
    if is_book(msg):
        try:
            rows = level_rows(msg)
        except OkxParseError as e:
            return Normalized("malformed", msg.channel, msg.inst_id, msg, ts_ms=_ts(msg.ts),
                              error=e.reason)
        return Normalized("book", msg.channel, msg.inst_id, msg, "levels", rows, msg.ts)
    if isinstance(msg, TradeMsg):
        try:
            rows = trade_rows(msg)
        except OkxParseError as e:
            return Normalized("malformed", msg.channel, msg.inst_id, msg, error=e.reason)
        ts = max(rows["ts_ms"]) if rows["ts_ms"] else None
        return Normalized("trade", msg.channel, msg.inst_id, msg, "trades", rows, ts)
    if isinstance(msg, EventMsg):
        label = msg.event if msg.code in (None, "", "0") else f"{msg.event} {msg.code}"
        return Normalized("event", msg.channel, msg.inst_id, msg, label=label)
    if isinstance(msg, Pong):
        return Normalized("pong", msg=msg, label="pong")
    if not isinstance(msg, OtherMsg) or not isinstance(msg.channel, str):
        return Normalized("malformed", error=f"not a message: {show(msg)}")
    known = msg.channel in OTHER_CHANNELS or msg.channel in BOOK_CHANNELS | TRADE_CHANNELS
    inst = msg.inst_id if isinstance(msg.inst_id, str) else None
    return Normalized("other" if known else "unknown", msg.channel, inst, msg,
                      ts_ms=_data_ts(msg.data))


def _data_ts(data: Any) -> int | None:
    first = data[0] if type(data) is list and data else None
    v = first.get("ts") if type(first) is dict else None
    if type(v) is int or (type(v) is str and _TS(v)):
        return _ts(int(v))
    return None


def _ts(v: int | None) -> int | None:
    return v if type(v) is int and 0 <= v < _I64 else None


def _int_in(v: int | None, what: str, limit: int) -> int | None:
    if v is not None and (type(v) is not int or not -limit <= v < limit):
        raise OkxParseError(f"{what} must be an integer in range, got {show(v)}")
    return v


def _number(s: Any, what: str, zero_ok: bool, book: bool = True) -> float:
    if type(s) is not str:
        raise OkxParseError(f"{what} must be a decimal string, got {show(s)}")
    ok = (_DECIMALS(s) and len(s) <= _MAX_NUMBER_CHARS) if book else _TRADE_DECIMAL(s)
    if not ok:
        raise OkxParseError(f"{what} is not a number: {show(s)}")
    f = float(s)
    if not math.isfinite(f) or (f == 0 and not zero_ok):
        raise OkxParseError(f"{what} must be finite and {'>= 0' if zero_ok else '> 0'}: "
                            f"{show(s)}")
    return f


def _count(s: Any, what: str) -> int:
    if type(s) is not str or not _COUNTS(s) or not s:
        raise OkxParseError(f"{what} must be an integer string, got {show(s)}")
    c = int(s)
    if not c < _I32:
        raise OkxParseError(f"{what} out of range: {show(c)}")
    return c


def _side_fast(levels: Any) -> tuple[list, ...] | None:
    """Columns of one side when every level is clean (the normal case), else None."""
    try:
        pstr = [lvl[0] for lvl in levels]
        sstr = [lvl[1] for lvl in levels]
        if not pstr:
            return [], [], [], [], []
        # The C scanner has checked its levels' form already.
        if type(levels) is not _Checked and not _form_ok(levels, pstr, sstr):
            return None
        prices = list(map(float, pstr))
        sizes = list(map(float, sstr))
        counts = [int(lvl[-1]) if len(lvl) >= 3 else None for lvl in levels]
    except (ValueError, TypeError, IndexError):
        return None
    if not min(prices) > 0:
        return None
    known = [c for c in counts if c is not None]
    if known and not max(known) < _I32:
        return None
    return prices, sizes, counts, pstr, sstr


def _form_ok(levels: Any, pstr: list, sstr: list) -> bool:
    """Every price, size and count a string of the book's form: one regex pass per column
    instead of one per string (a comma inside a string could pass it, but then float()
    refuses that string). Raises TypeError when one is not a string."""
    cstr = [lvl[-1] for lvl in levels if len(lvl) >= 3]
    # join raises TypeError on anything but strings: the caller takes the checked path
    return bool(_DECIMALS(",".join(pstr)) and _DECIMALS(",".join(sstr))
                and _COUNTS(",".join(cstr))
                and max(map(len, pstr)) <= _MAX_NUMBER_CHARS
                and max(map(len, sstr)) <= _MAX_NUMBER_CHARS)


def _side_checked(levels: Any, side: str) -> tuple[list, ...]:
    """Columns of one side, level by level, raising :class:`OkxParseError` on the first bad
    one (the slow path, taken only when :func:`_side_fast` found something wrong)."""
    prices, sizes, counts, pstr, sstr = [], [], [], [], []
    if not hasattr(levels, "__len__") or isinstance(levels, str | bytes | dict):
        raise OkxParseError(f"{side} levels must be a list, got {show(levels)}")
    for lvl in levels:
        if not isinstance(lvl, list | tuple) or len(lvl) < 2:
            raise OkxParseError(f"{side} level must be [price, size, ..., count], got "
                                f"{show(lvl)}")
        px, sz = lvl[0], lvl[1]
        prices.append(_number(px, f"{side} price", zero_ok=False))
        sizes.append(_number(sz, f"{side} size", zero_ok=True))
        counts.append(_count(lvl[-1], f"{side} order count") if len(lvl) >= 3 else None)
        pstr.append(px)
        sstr.append(sz)
    return prices, sizes, counts, pstr, sstr


def level_rows(msg: Any) -> dict[str, list]:
    """Columns (:data:`LEVEL_COLUMNS`) for one book message: a row per level, in wire order,
    bids then asks. A message without levels (a heartbeat) gives one row with ``side`` and
    the level columns NULL, so that its seqIds survive. Raises :class:`OkxParseError` on a
    level whose price, size or count is not a number.

    >>> from simlab.okx.messages import BookMsg
    >>> level_rows(BookMsg("books", "X", "update", [], [], 5, 9, 9, 0))["side"]
    [None]
    >>> level_rows(BookMsg("books", "X", "update", [["1", "x"]], [], 5, 9, 8, 0))
    Traceback (most recent call last):
    ...
    simlab.okx.messages.OkxParseError: bid size is not a number: 'x'
    """
    sides: list = []
    prices: list = []
    sizes: list = []
    counts: list = []
    pstr: list = []
    sstr: list = []
    for side, levels in (("bid", msg.bids), ("ask", msg.asks)):
        cols = _side_fast(levels) or _side_checked(levels, side)
        sides += [side] * len(cols[0])
        for out, col in zip((prices, sizes, counts, pstr, sstr), cols, strict=True):
            out += col
    n = len(sides)
    if n == 0:
        n = 1
        sides, prices, sizes, counts, pstr, sstr = [None], [None], [None], [None], [None], [None]
    if _ts(msg.ts) is None:
        raise OkxParseError(f"ts out of range: {msg.ts}")
    return {
        "ts_ms": [msg.ts] * n,
        "seq_id": [_int_in(msg.seq_id, "seqId", _I64)] * n,
        "prev_seq_id": [_int_in(msg.prev_seq_id, "prevSeqId", _I64)] * n,
        "checksum": [_int_in(msg.checksum, "checksum", _I64)] * n,
        "snapshot": [msg.action == "snapshot"] * n,
        "side": sides, "price": prices, "size": sizes, "count": counts,
        "price_str": pstr, "size_str": sstr,
    }


def trade_rows(msg: Any) -> dict[str, list]:
    """Columns (:data:`TRADE_COLUMNS`) for one trades push: a row per trade, in wire order.

    >>> from simlab.okx.messages import Trade, TradeMsg
    >>> r = trade_rows(TradeMsg("trades", "X", [Trade("7", "10.5", "2", "buy", 1)]))
    >>> r["trade_id"], r["price"], r["size_str"], r["count"]
    (['7'], [10.5], ['2'], [None])
    """
    cols: dict[str, list] = {c: [] for c in TRADE_COLUMNS}
    for t in msg.trades:
        if _ts(t.ts) is None:
            raise OkxParseError(f"trade ts out of range: {t.ts}")
        cols["ts_ms"].append(t.ts)
        if type(t.trade_id) is not str or t.side not in ("buy", "sell"):
            raise OkxParseError(f"trade needs a tradeId string and side 'buy' or 'sell', got "
                                f"{show(t.trade_id)}, {show(t.side)}")
        cols["trade_id"].append(t.trade_id)
        cols["side"].append(t.side)
        cols["price"].append(_number(t.px, "trade price", zero_ok=False, book=False))
        cols["size"].append(_number(t.sz, "trade size", zero_ok=True, book=False))
        cols["price_str"].append(t.px)
        cols["size_str"].append(t.sz)
        cols["count"].append(_int_in(t.count, "trade count", _I32))
        cols["seq_id"].append(_int_in(t.seq_id, "trade seqId", _I64))
        if t.source is not None and type(t.source) is not str:
            raise OkxParseError(f"trade source must be a string, got {show(t.source)}")
        cols["source"].append(t.source)
    return cols


def normalize_raw(payload: bytes, conn: int, channel: str | None, inst: str | None,
                  wire_format: str) -> Normalized:
    """:func:`~simlab.okx.normalize.normalize` for a stored frame: one with
    ``conn == REST_CONN`` is a REST order-book response, normalised as a snapshot of
    ``channel``/``inst`` (its body names neither).

    >>> n = normalize_raw(b'{"code":"0","msg":"","data":[{"asks":[["2","1","0","1"]],'
    ...                   b'"bids":[],"ts":"5","seqId":9}]}', -1, "books", "X", "okx-ws")
    >>> n.kind, n.channel, n.inst_id, n.rows["snapshot"], n.rows["seq_id"]
    ('book', 'books', 'X', [True], [9])

    A frame stored in the malformed partition (``channel == "_malformed"``) stays
    malformed, whatever it holds: the writer, ``verify`` and ``rebuild`` all call this, so
    they agree on it.

    >>> normalize_raw(b"pong", 0, "_malformed", "_none", "okx-ws").kind
    'malformed'
    """
    if channel == MALFORMED_CHANNEL:
        n = normalize_raw(payload, conn, None, None, wire_format)
        if n.kind == "malformed":
            return n
        return Normalized("malformed", n.channel, n.inst_id, error=STORED_MALFORMED)
    if conn != REST_CONN:
        return normalize(payload, wire_format)
    try:
        msg = parse_rest_book(payload, channel or "", inst or "")
    except Exception as e:
        return _unusable(e, _REST)
    return normalize_parsed(msg, conn, channel, inst)


_REST = "REST snapshot: "


def normalize_parsed(msg: Any, conn: int = 0, channel: str | None = None,
                     inst: str | None = None) -> Normalized:
    """What :func:`normalize_raw` gives for a frame already parsed into ``msg`` (e.g. by
    the live client, :class:`~simlab.okx.decoded.Decoded`), without parsing it again: the
    live recorder stores a frame from its message as ``verify`` and ``rebuild`` read it from
    its payload. With ``conn == REST_CONN`` it is a REST snapshot of ``channel``/``inst``.

    >>> from simlab.okx.messages import BookMsg
    >>> n = normalize_parsed(BookMsg("books", "X", "update", [["1", "2"]], [], 5, 9, 8, 0))
    >>> n.kind, n.table, n.rows["price"]
    ('book', 'levels', [1.0])
    >>> normalize_parsed(BookMsg("books", "X", "snapshot", [["1", "x"]], [], 5, 9, -1),
    ...                  REST_CONN, "books", "X").error
    "REST snapshot: bid size is not a number: 'x'"
    """
    try:
        if conn != REST_CONN:
            return _classify(msg)
        rows = level_rows(msg)
    except Exception as e:
        return _unusable(e, _REST if conn == REST_CONN else "")
    return Normalized("book", channel, inst, msg, "levels", rows, msg.ts)


def parse_stored(payload: bytes, conn: int, channel: str | None, inst: str | None,
                 wire_format: str = WIRE_WS) -> Any:
    """Parse a received or stored frame into its message object, without building table rows
    (the replay and live decoders need the message only). A frame with ``conn == REST_CONN``
    is a REST order-book response, parsed as a snapshot of ``channel``/``inst``.

    Raises :class:`OkxParseError` on bad input, like the parsers it calls.

    >>> parse_stored(b"pong", 0, "_event", "_none").__class__.__name__
    'Pong'
    >>> m = parse_stored(b'{"code":"0","msg":"","data":[{"asks":[["2","1","0","1"]],'
    ...                  b'"bids":[],"ts":"5","seqId":9}]}', -1, "books", "X")
    >>> m.action, m.inst_id, m.seq_id
    ('snapshot', 'X', 9)
    """
    if conn == REST_CONN:
        try:
            return parse_rest_book(payload, channel or "", inst or "")
        except OkxParseError:
            raise
        except Exception as e:  # see normalize
            raise OkxParseError(f"REST snapshot: {INTERNAL_REASON} ({type(e).__name__})",
                                payload) from None
    if wire_format == WIRE_L2_HISTORY:
        return parse_history_line(payload)
    if wire_format != WIRE_WS:
        raise ValueError(f"wire format must be one of {WIRE_FORMATS}, got {wire_format!r}")
    return parse_frame(payload)
