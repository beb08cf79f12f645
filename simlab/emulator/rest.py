"""The emulator's REST endpoints (aiohttp): order-book snapshot and instrument metadata.

``GET /api/v5/market/books?instId=&sz=``
    ``{"code":"0","msg":"","data":[{"asks":[[px,sz,"0",count],...],"bids":[...],"ts":"..",
    "seqId":N}]}``; ``sz`` 1..400 (default 1). ``seqId`` is written unless the emulator was
    started with ``rest_seq_id=False`` (OKX's docs are unsure it is sent). The book is the
    one the ``books`` stream last published, so splicing it into the stream by seqId works.
``GET /api/v5/public/instruments?instType=&instId=``
    the field set of OKX's 2022 responses (``cryptofeed/OKX.0``), keys in its order
    (``code``, ``data``, ``msg``, as captured).

Errors use OKX's envelopes: unknown instrument HTTP 200 code 51001, bad ``sz`` HTTP 200
code 51000, missing parameter HTTP 400 code 50014, unknown path HTTP 404 with OKX's
gateway body; the ``rest-slow`` and ``rest-error`` faults delay or fail the next order-book
requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from simlab.okx.messages import BOOK_DEPTH
from simlab.okx.rest import BOOKS_PATH, INSTRUMENTS_PATH

from .faults import Fault, FaultSpec
from .source import Instrument

log = logging.getLogger(__name__)

#: OKX: a REST book is at most 400 levels a side, the depth of the books channel.
MAX_SZ = BOOK_DEPTH["books"]
_JSON = "application/json"
#: OKX's answer to an unknown path (gateway format, as captured on OKX's V5 API).
NOT_FOUND = {"code": 404, "data": {}, "detailMsg": "", "error_code": "404",
             "error_message": "Not Found", "msg": "Not Found"}
UNKNOWN_INSTRUMENT = "Instrument ID, Instrument ID code, or Spread ID doesn't exist."


def _response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON)


def _error(code: str, msg: str, status: int = 200) -> web.Response:
    return _response({"code": code, "msg": msg, "data": []}, status)


def instrument_json(ins: Instrument | dict[str, Any]) -> dict[str, Any]:
    """An instrument as ``/api/v5/public/instruments`` lists it (2022 field set, sorted).

    Fields the :class:`Instrument` does not carry get fixed placeholder values.

    >>> d = instrument_json(Instrument("BTC-USDT", "SPOT", "BTC", "USDT", "0.1", "1E-8", "1E-5"))
    >>> list(d)[:6], d["lotSz"], d["state"]
    (['alias', 'baseCcy', 'category', 'ctMult', 'ctType', 'ctVal'], '0.00000001', 'live')
    """
    if isinstance(ins, dict):
        return dict(ins)  # already OKX metadata (a recording's manifest)
    from simlab.okx.encode import format_decimal

    def num(x: str) -> str:
        return format_decimal(x) if x else ""  # unknown (a recording without metadata)

    spot = ins.inst_type in ("SPOT", "MARGIN")
    d = {
        "alias": "", "baseCcy": ins.base_ccy, "category": "1",
        "ctMult": "" if spot else "1", "ctType": ins.ct_type,
        "ctVal": num(ins.ct_val), "ctValCcy": ins.ct_val_ccy,
        "expTime": "", "instId": ins.inst_id, "instType": ins.inst_type,
        "lever": "10" if spot else "100", "listTime": "1548133413000",
        "lotSz": num(ins.lot_sz), "maxIcebergSz": "9999999999",
        "maxLmtSz": "9999999999", "maxMktSz": "1000000", "maxStopSz": "1000000",
        "maxTriggerSz": "9999999999", "maxTwapSz": "9999999999",
        "minSz": num(ins.min_sz), "optType": "", "quoteCcy": ins.quote_ccy,
        "settleCcy": ins.settle_ccy, "state": "live", "stk": "",
        "tickSz": num(ins.tick_sz), "uly": ins.uly,
    }
    return d


class RestApi:
    """The REST side of one emulator. ``feed`` is read on every request (same event loop).

    ``instruments`` gives the instrument list (``Instrument`` objects or OKX metadata
    dicts); ``book(inst_id, sz)`` gives ``(bids, asks, ts_ms, seqId)`` or raises KeyError.
    """

    def __init__(self, instruments: Callable[[], list], book: Callable[[str, int], tuple], *,
                 seq_id: bool = True) -> None:
        self._instruments = instruments
        self._book = book
        self.seq_id = seq_id
        self.faults: list[list] = []  # [spec, requests left]
        self.requests = 0
        self.app = web.Application(middlewares=[self._middleware])
        self.app.router.add_get(BOOKS_PATH, self.books)
        self.app.router.add_get(INSTRUMENTS_PATH, self.instruments)

    def arm(self, spec: FaultSpec) -> None:
        if spec.kind not in (Fault.REST_SLOW, Fault.REST_ERROR):
            raise ValueError(f"{spec.kind} is not a REST fault")
        self.faults.append([spec, spec.count])

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        self.requests += 1
        error = None
        # The faults model a failing order-book bootstrap: metadata requests pass.
        faults = self.faults if request.path == "/api/v5/market/books" else []
        for f in list(faults):
            spec = f[0]
            f[1] -= 1
            if f[1] <= 0:
                self.faults.remove(f)
            if spec.kind is Fault.REST_SLOW:
                await asyncio.sleep(1.0 if spec.delay is None else spec.delay)
            elif error is None:
                error = _error(spec.code, spec.msg, spec.status)
        if error is not None:
            return error
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _response(NOT_FOUND, 404)
        except web.HTTPException:
            raise
        except Exception:  # a bug here must look like an exchange error, not kill the client
            log.exception("REST %s failed", request.path_qs)
            return _error("50026", "System error.", 500)

    async def books(self, request: web.Request) -> web.Response:
        q = request.query
        inst = q.get("instId", "")
        if not inst:
            return _error("50014", "Parameter instId can not be empty.", 400)
        sz_text = q.get("sz", "1")
        try:
            sz = int(sz_text)
        except ValueError:
            sz = -1
        if not 1 <= sz <= MAX_SZ:
            return _error("51000", "Parameter sz error.")
        try:
            bids, asks, ts, seq = self._book(inst, sz)
        except KeyError:
            return _error("51001", UNKNOWN_INSTRUMENT)
        data: dict[str, Any] = {"asks": asks, "bids": bids, "ts": str(int(ts))}
        if self.seq_id and seq is not None:
            data["seqId"] = int(seq)
        return _response({"code": "0", "msg": "", "data": [data]})

    async def instruments(self, request: web.Request) -> web.Response:
        q = request.query
        inst_type = q.get("instType", "")
        if not inst_type:
            return _error("50014", "Parameter instType can not be empty.", 400)
        rows = [instrument_json(i) for i in self._instruments()]
        rows = [r for r in rows if r.get("instType") == inst_type]
        inst = q.get("instId")
        if inst:
            rows = [r for r in rows if r.get("instId") == inst]
            if not rows:
                return _error("51001", UNKNOWN_INSTRUMENT)
        return _response({"code": "0", "data": rows, "msg": ""})
