"""OKX v5 public REST: the order-book snapshot a client bootstraps a book from.

``GET /api/v5/market/books?instId=&sz=`` answers ``{"code":"0","msg":"","data":[{"asks":
[[px,sz,"0",count],...],"bids":[...],"ts":"..","seqId":N}]}`` (``seqId`` may be missing: OKX's
docs are unsure it is sent). The body names no instrument and no channel, so
:func:`parse_rest_book` is told both.

A REST snapshot reaches a recording as a :class:`~simlab.okx.frames.RawFrame` with
``conn == REST_CONN`` and the exact response body as payload (see ``docs/live-client.md``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .connection import RateLimiter
from .messages import BookMsg, OkxParseError, show

OKX_REST_URL = "https://www.okx.com"
BOOKS_PATH = "/api/v5/market/books"
INSTRUMENTS_PATH = "/api/v5/public/instruments"
#: The ``conn`` of a RawFrame that holds a REST order-book response, not a WebSocket frame.
REST_CONN = -1
#: Levels to ask for when bootstrapping each incremental channel (its depth).
REST_DEPTH = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50}


class RestError(Exception):
    """A REST request that failed: HTTP status (None when no answer), OKX ``code`` and
    message, and the URL."""

    def __init__(self, url: str, status: int | None, code: str | None, msg: str) -> None:
        self.url, self.status, self.code, self.msg = url, status, code, msg
        what = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{url}: {what}, code {code}: {msg}")


@dataclass(frozen=True, slots=True)
class RestBook:
    """One REST order-book snapshot: the exact body, when it arrived, and the parsed book."""

    channel: str
    inst_id: str
    body: bytes
    recv_ns: int
    msg: BookMsg

    @property
    def seq_id(self) -> int | None:
        return self.msg.seq_id

    @property
    def ts(self) -> int:
        return self.msg.ts


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


class RestClient:
    """A small aiohttp client for OKX's public REST API, with a timeout, a request rate
    limit (OKX: 40 order-book requests per 2 s per IP) and bounded concurrency.

    >>> async def main():                                       # doctest: +SKIP
    ...     async with RestClient("https://www.okx.com") as rest:
    ...         book = await rest.books("BTC-USDT")
    ...         return book.seq_id, len(book.msg.bids)
    """

    def __init__(self, base_url: str = OKX_REST_URL, *, timeout: float = 10.0,
                 headers: dict[str, str] | None = None, rate: float = 10.0,
                 concurrency: int = 4) -> None:
        if timeout <= 0 or rate <= 0 or concurrency < 1:
            raise ValueError("RestClient needs timeout > 0, rate > 0 and concurrency >= 1")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._limit = RateLimiter(max(1, int(rate)), max(1, int(rate)) / rate)
        self._sem = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, params: dict[str, str]) -> tuple[bytes, int]:
        """``(body, recv_ns)`` of a successful GET (HTTP 200 and OKX ``code`` "0"); raises
        :class:`RestError` otherwise, a timeout included."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self.headers)
        url = self.base_url + path
        async with self._sem:
            await self._limit.acquire()
            self.requests += 1
            try:
                async with self._session.get(
                        url, params=params,
                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
                    body = await r.read()
                    status = r.status
            except TimeoutError:
                raise RestError(url, None, None, f"timed out after {self.timeout:g} s") from None
            except aiohttp.ClientError as e:
                raise RestError(url, None, None, f"{type(e).__name__}: {e}") from None
        recv_ns = time.time_ns()
        code, msg = None, body[:200].decode("utf-8", "replace")
        try:
            d = orjson.loads(body)
            if isinstance(d, dict):
                code, msg = _plain(d.get("code")), str(_plain(d.get("msg", "")))
        except orjson.JSONDecodeError:
            pass
        if status != 200 or str(code) != "0":
            raise RestError(url, status, None if code is None else str(code), msg)
        return body, recv_ns

    async def books(self, inst_id: str, channel: str = "books", sz: int | None = None) -> RestBook:
        """The order-book snapshot of ``inst_id`` for bootstrapping ``channel`` (``sz``
        defaults to the channel's depth)."""
        sz = sz or REST_DEPTH.get(channel, 400)
        body, recv_ns = await self.get(BOOKS_PATH, {"instId": inst_id, "sz": str(sz)})
        try:
            msg = parse_rest_book(body, channel, inst_id)
        except OkxParseError as e:
            raise RestError(self.base_url + BOOKS_PATH, 200, None, e.reason) from None
        return RestBook(channel, inst_id, body, recv_ns, msg)


def inst_type(inst_id: str) -> str:
    """OKX's ``instType`` from the shape of an instrument id (SPOT, SWAP, FUTURES, OPTION).

    >>> [inst_type(i) for i in ("BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-220527",
    ...                          "BTC-USD-220527-30000-C")]
    ['SPOT', 'SWAP', 'FUTURES', 'OPTION']
    """
    parts = inst_id.split("-")
    if parts[-1] == "SWAP":
        return "SWAP"
    if len(parts) >= 5 and parts[-1] in ("C", "P"):
        return "OPTION"
    if len(parts) == 3 and parts[-1].isdigit():
        return "FUTURES"
    return "SPOT"


async def fetch_instruments(rest: RestClient, inst_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Metadata (``tickSz``, ``lotSz``, ``ctVal`` ...) of ``inst_ids`` from
    ``/api/v5/public/instruments``, one request per instrument; raises :class:`RestError`.

    >>> asyncio.run(fetch_instruments(RestClient("http://127.0.0.1:8080"),
    ...                               ["BTC-USDT"]))            # doctest: +SKIP
    {'BTC-USDT': {'instId': 'BTC-USDT', 'tickSz': '0.1', ...}}
    """
    from .normalize import instrument_metadata

    out: dict[str, dict[str, Any]] = {}
    for inst in inst_ids:
        body, _ = await rest.get(INSTRUMENTS_PATH, {"instType": inst_type(inst),
                                                    "instId": inst})
        try:
            out.update(instrument_metadata(orjson.loads(body)))
        except (OkxParseError, orjson.JSONDecodeError) as e:
            raise RestError(rest.base_url + INSTRUMENTS_PATH, 200, None, str(e)) from None
    return out


async def instruments_or_none(rest_url: str | None, inst_ids: list[str]
                              ) -> dict[str, dict[str, Any]]:
    """:func:`fetch_instruments` with its own client (``rest_url`` None: OKX's); a failure
    is logged and gives ``{}``, since metadata must never stop a feed from starting.

    >>> asyncio.run(instruments_or_none("http://127.0.0.1:9", ["BTC-USDT"]))  # doctest: +SKIP
    {}
    """
    import logging

    rest = RestClient(rest_url) if rest_url else RestClient()
    try:
        return await fetch_instruments(rest, inst_ids)
    except RestError as e:
        logging.getLogger(__name__).warning("instrument metadata unavailable: %s", e)
        return {}
    finally:
        await rest.close()
