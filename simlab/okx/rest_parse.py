"""OKX v5 public REST responses parsed: the order-book snapshot and the instruments list.

Beside the WebSocket parsers (:mod:`simlab.okx.parse`): no I/O here. The client that fetches
them is :mod:`simlab.okx.rest`; the normalizer (:mod:`simlab.okx.normalize`), the replay
decoder and ``verify`` parse a stored REST snapshot with :func:`parse_rest_book`.
"""

from __future__ import annotations

from typing import Any

import orjson

from .messages import BookMsg, OkxParseError, show

#: The ``conn`` of a RawFrame that holds a REST order-book response, not a WebSocket frame.
REST_CONN = -1


def _int(v: Any, what: str, body: bytes) -> int | None:
    if v is None or v == "":
        return None
    if type(v) is int:
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    raise OkxParseError(f"REST book {what} must be an integer, got {show(v)}", body)


def _plain(v: Any, limit: int = 200) -> str | int:
    """A REST body's ``code`` or ``msg`` for an error message: OKX's own strings and integers
    as they are (a string cut at ``limit`` characters); any other JSON value, which a hostile
    body may nest deep, described briefly (:func:`show`).

    >>> _plain("50011"), _plain(1), _plain("x" * 500)[-3:], _plain([[1]])
    ('50011', 1, 'xxx', 'a list of 1')
    """
    if type(v) is str:
        return v[:limit]
    return v if type(v) is int and -10**limit < v < 10**limit else show(v)


def _levels(v: Any, side: str, body: bytes) -> list:
    if not isinstance(v, list):
        raise OkxParseError(f"REST book {side!r} must be a list of levels", body)
    for lv in v:
        if (not isinstance(lv, list) or len(lv) < 2
                or not all(isinstance(x, str) for x in lv)):
            raise OkxParseError(f"REST book {side!r} level must be [price, size, ..., count] "
                                f"strings, got {show(lv)}", body)
    return v


def parse_rest_book(body: bytes | str, channel: str, inst_id: str) -> BookMsg:
    """The snapshot in a ``/api/v5/market/books`` response, as a :class:`BookMsg` of
    ``(channel, inst_id)``: ``action == "snapshot"``, ``prev_seq_id == -1``, ``seq_id`` the
    response's ``seqId`` (None when absent), no checksum. Raises :class:`OkxParseError`
    (naming what is wrong) for anything else, including OKX error envelopes.

    >>> m = parse_rest_book(b'{"code":"0","msg":"","data":[{"asks":[["2","1","0","1"]],'
    ...                     b'"bids":[["1","3","0","2"]],"ts":"1700","seqId":42}]}',
    ...                     "books", "BTC-USDT")
    >>> (m.channel, m.inst_id, m.action, m.seq_id, m.prev_seq_id, m.ts, m.bids)
    ('books', 'BTC-USDT', 'snapshot', 42, -1, 1700, [['1', '3', '0', '2']])
    >>> parse_rest_book(b'{"code":"51001","msg":"no such instrument","data":[]}', "books", "X")
    Traceback (most recent call last):
    simlab.okx.messages.OkxParseError: REST error code 51001: no such instrument: ...
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise OkxParseError(f"REST book: invalid JSON ({e.msg} at char {e.pos})", raw) from None
    if not isinstance(d, dict):
        raise OkxParseError("REST book: expected a JSON object", raw)
    code, msg = d.get("code"), d.get("msg")
    if type(code) not in (str, int) or str(code) != "0":
        raise OkxParseError(f"REST error code {_plain(code)}: {_plain(msg)}", raw)
    data = d.get("data")
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise OkxParseError("REST book: 'data' must hold exactly one book object", raw)
    b = data[0]
    ts = _int(b.get("ts"), "ts", raw)
    if ts is None:
        raise OkxParseError("REST book without 'ts'", raw)
    return BookMsg(channel, inst_id, "snapshot", _levels(b.get("bids"), "bids", raw),
                   _levels(b.get("asks"), "asks", raw), ts, _int(b.get("seqId"), "seqId", raw),
                   -1, None)


def instrument_metadata(response: Any) -> dict[str, dict[str, Any]]:
    """``instId -> metadata`` from a REST ``/api/v5/public/instruments`` response (a parsed
    JSON object); empty fields are dropped. Raises :class:`OkxParseError` on anything else.

    >>> instrument_metadata({"code": "0", "data": [{"instId": "BTC-USDT", "tickSz": "0.1",
    ...                                              "ctVal": "", "instType": "SPOT"}]})
    {'BTC-USDT': {'instId': 'BTC-USDT', 'tickSz': '0.1', 'instType': 'SPOT'}}
    """
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, list):
        raise OkxParseError('expected an instruments response {"code": ..., "data": [...]}')
    out: dict[str, dict[str, Any]] = {}
    for d in data:
        if isinstance(d, dict) and isinstance(d.get("instId"), str):
            out[d["instId"]] = {k: v for k, v in d.items() if v not in ("", None)}
    return out
