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
from .messages import BookMsg, OkxParseError

# REST_CONN and parse_rest_book stay importable here; the responses are parsed, without I/O,
# in rest_parse (which normalize uses too: no cycle through this client)
from .rest_parse import REST_CONN, _plain, instrument_metadata, parse_rest_book  # noqa: F401

OKX_REST_URL = "https://www.okx.com"
BOOKS_PATH = "/api/v5/market/books"
INSTRUMENTS_PATH = "/api/v5/public/instruments"
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
