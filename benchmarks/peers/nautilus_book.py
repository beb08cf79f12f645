"""Peer: nautilus_trader's order book (``BookType.L2_MBP``) fed the same real OKX frames.

nautilus_trader (1.221) parses OKX inside its Rust WebSocket client only: no Python entry
point turns a raw frame into deltas, and its ``OKXBookMsg`` requires ``seqId``, which the 2022
capture predates. So the frames are parsed here with orjson and turned into nautilus's own
Cython ``OrderBookDelta``/``OrderBookDeltas`` exactly as its Rust OKX adapter does
(snapshot -> ADD with ``F_SNAPSHOT``; update -> UPDATE, or DELETE on size ``"0"``), plus a
leading CLEAR on a snapshot so that the capture's repetition, which re-sends each
instrument's snapshot, resets the book as OKX means it to. Prices and sizes are built with
``Price(float, precision)``/``Quantity(float, precision)``, the fastest constructor measured
(``from_str`` is 4x slower, ``from_raw`` no faster); the book apply itself runs in Rust.

Instruments are injected, never fetched: ``CurrencyPair``/``CryptoPerpetual``/``CryptoFuture``
built from the session's real REST responses (``../shared/okx-real/cryptofeed/OKX.0``), or
from a small built-in table of the capture's three instruments when that file is absent.

Rows: (a) frames -> deltas -> book (frames/s, as simlab's live path), (b) ``apply_deltas``
alone on deltas built beforehand (level rows/s, as simlab's replay path). nautilus does not
verify OKX checksums; the check compares its book with simlab's after every book message of
the first cycle and the full depth at the end of it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from .._common import SHARED, median_rate
from ._shared import decimals, first_cycle, simlab_syncs

NAME = "nautilus_trader"
PIP = "nautilus_trader>=1.221"
REST_CAPTURE = SHARED / "cryptofeed" / "OKX.0"
VENUE = "OKX"

#: The capture's instruments as in OKX.0, for when that file is absent.
BUILTIN_META: dict[str, dict[str, str]] = {
    "BTC-USDT": {"instId": "BTC-USDT", "instType": "SPOT", "baseCcy": "BTC",
                 "quoteCcy": "USDT", "tickSz": "0.1", "lotSz": "0.00000001"},
    "BTC-USD-220527": {"instId": "BTC-USD-220527", "instType": "FUTURES", "uly": "BTC-USD",
                       "settleCcy": "BTC", "ctType": "inverse", "ctVal": "100",
                       "tickSz": "0.1", "lotSz": "1", "listTime": "1652429400854",
                       "expTime": "1653638400000"},
    "UNI-USD-SWAP": {"instId": "UNI-USD-SWAP", "instType": "SWAP", "uly": "UNI-USD",
                     "settleCcy": "UNI", "ctType": "inverse", "ctVal": "10",
                     "tickSz": "0.001", "lotSz": "1"},
}


def version() -> str | None:
    """The installed nautilus_trader version, or None when it cannot be imported."""
    try:
        import nautilus_trader
    except ImportError:
        return None
    return nautilus_trader.__version__


def rest_metadata(path: Path = REST_CAPTURE) -> dict[str, dict[str, Any]]:
    """``instId -> instrument metadata`` from a capture of ``/api/v5/public/instruments``
    (lines ``<url> -> <ts>: <json>``); the built-in table when the file is absent."""
    if not path.exists():
        return dict(BUILTIN_META)
    meta: dict[str, dict[str, Any]] = {}
    with open(path, "rb") as f:
        for line in f:
            _, sep, rest = line.partition(b" -> ")
            _, sep2, body = rest.partition(b": ")
            if not (sep and sep2):
                continue
            for row in orjson.loads(body).get("data") or []:
                meta[row["instId"]] = row
    return meta


def make_instrument(meta: dict[str, Any]):
    """A nautilus instrument (``CurrencyPair``, ``CryptoPerpetual`` or ``CryptoFuture``) from
    one OKX instrument's metadata, with its tick and lot precisions."""
    from nautilus_trader.model.currencies import Currency
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import CryptoFuture, CryptoPerpetual, CurrencyPair
    from nautilus_trader.model.objects import Price, Quantity

    inst = meta["instId"]
    iid = InstrumentId(Symbol(inst), Venue(VENUE))
    pp, sp = decimals(meta["tickSz"]), decimals(meta["lotSz"])
    common = {"price_precision": pp, "size_precision": sp,
              "price_increment": Price.from_str(meta["tickSz"]),
              "size_increment": Quantity.from_str(meta["lotSz"]), "ts_event": 0, "ts_init": 0}
    kind = meta.get("instType")
    if kind == "SPOT":
        return CurrencyPair(iid, Symbol(inst), Currency.from_str(meta["baseCcy"]),
                            Currency.from_str(meta["quoteCcy"]), **common)
    base, quote = (meta.get("uly") or inst).split("-")[:2]
    contract = {"multiplier": Quantity.from_str(meta.get("ctVal") or "1")}
    inverse = meta.get("ctType") == "inverse"
    settle = Currency.from_str(meta.get("settleCcy") or (base if inverse else quote))
    if kind == "SWAP":
        return CryptoPerpetual(iid, Symbol(inst), Currency.from_str(base),
                               Currency.from_str(quote), settle, inverse, **common, **contract)
    if kind == "FUTURES":
        return CryptoFuture(iid, Symbol(inst), Currency.from_str(base), Currency.from_str(quote),
                            settle, inverse, int(meta.get("listTime") or 0) * 1_000_000,
                            int(meta.get("expTime") or 0) * 1_000_000, **common, **contract)
    raise ValueError(f"{inst}: instrument type {kind!r} not handled")


def instruments_for(frames: list[bytes], meta: dict[str, dict[str, Any]] | None = None) -> dict:
    """``instId -> nautilus instrument`` for every instrument with ``books`` pushes in
    ``frames`` (injected from metadata: no network)."""
    meta = rest_metadata() if meta is None else meta
    out = {}
    for f in frames:
        if b'"books"' not in f:
            continue
        arg = orjson.loads(f).get("arg") or {}
        inst = arg.get("instId")
        if arg.get("channel") == "books" and inst and inst not in out:
            if inst not in meta:
                raise KeyError(f"no instrument metadata for {inst}")
            out[inst] = make_instrument(meta[inst])
    return out


class Deltas:
    """Turns OKX ``books`` frames into nautilus ``OrderBookDeltas`` (one per book message)."""

    def __init__(self, instruments: dict) -> None:
        from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas
        from nautilus_trader.model.enums import BookAction, OrderSide, RecordFlag
        from nautilus_trader.model.objects import Price, Quantity

        self.spec = {k: (i.id, i.price_precision, i.size_precision)
                     for k, i in instruments.items()}
        self._types = (BookOrder, OrderBookDelta, OrderBookDeltas, Price, Quantity)
        self._enums = (BookAction.ADD, BookAction.UPDATE, BookAction.DELETE, OrderSide.BUY,
                       OrderSide.SELL, int(RecordFlag.F_SNAPSHOT))

    def frame(self, f: bytes):
        """``(instId, OrderBookDeltas, level rows)`` for a ``books`` push, else None."""
        m = orjson.loads(f)
        arg = m.get("arg")
        if arg is None or arg.get("channel") != "books" or "data" not in m:
            return None
        book_order, delta, deltas_t, price, qty = self._types
        add, upd, dele, buy, sell, f_snap = self._enums
        inst = arg["instId"]
        iid, pp, sp = self.spec[inst]
        snap = m["action"] == "snapshot"
        flags = f_snap if snap else 0
        out, rows = [], 0
        for d in m["data"]:
            ts = int(d["ts"]) * 1_000_000
            seq = d.get("seqId") or 0
            if snap:
                out.append(delta.clear(iid, seq, ts, ts))
            for side, levels in ((buy, d["bids"]), (sell, d["asks"])):
                rows += len(levels)
                for lv in levels:
                    s = lv[1]
                    act = add if snap else (dele if s == "0" else upd)
                    out.append(delta(iid, act, book_order(side, price(float(lv[0]), pp),
                                                          qty(float(s), sp), 0),
                                     flags, seq, ts, ts))
        if not out:  # nautilus rejects an empty batch; an empty update changes nothing
            return None
        return inst, deltas_t(iid, out), rows


def new_books(instruments: dict) -> dict:
    """One empty ``OrderBook(L2_MBP)`` per instrument."""
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.enums import BookType

    return {k: OrderBook(i.id, BookType.L2_MBP) for k, i in instruments.items()}


def feed(frames: list[bytes], instruments: dict) -> tuple[int, int, dict]:
    """Every frame through orjson -> deltas -> ``OrderBook.apply_deltas``; returns
    (frames, level rows, books)."""
    conv = Deltas(instruments)
    books = new_books(instruments)
    rows = 0
    for f in frames:
        r = conv.frame(f)
        if r is not None:
            books[r[0]].apply_deltas(r[1])
            rows += r[2]
    return len(frames), rows, books


def _top(nb) -> tuple:
    """nautilus's best bid/ask (price, size) as exact decimals (None for an empty side)."""
    vals = (nb.best_bid_price(), nb.best_bid_size(), nb.best_ask_price(), nb.best_ask_size())
    return tuple(None if v is None else Decimal(str(v)) for v in vals)


def _simlab_top(book) -> tuple:
    out: tuple = ()
    for side in ("bid", "ask"):
        lv = book.levels(side, 1)
        out += (Decimal(lv[0][0]), Decimal(lv[0][1])) if lv else (None, None)
    return out


def check(frames: list[bytes]) -> dict:
    """Feed ``frames`` (e.g. the first cycle) to nautilus and to simlab side by side: count the
    book messages after which both books' best bid/ask (price and size) agree, and whether the
    full depth agrees at the end. simlab verifies OKX checksums; nautilus does not."""
    instruments = instruments_for(frames)
    conv = Deltas(instruments)
    books = new_books(instruments)
    msgs = same_top = 0
    syncs = {}
    for f, m, sync in simlab_syncs(frames, "books"):  # the channel Deltas handles
        inst = m.inst_id
        syncs[inst] = sync
        r = conv.frame(f)
        nb = books[inst]
        if r is not None:
            nb.apply_deltas(r[1])
        msgs += 1
        same_top += _top(nb) == _simlab_top(sync.book)
    depth_equal = {}
    for inst, sync in syncs.items():
        nb, sb = books[inst], sync.book
        ours = ([(Decimal(str(lv.price)), Decimal(str(lv.size()))) for lv in nb.bids()],
                [(Decimal(str(lv.price)), Decimal(str(lv.size()))) for lv in nb.asks()])
        theirs = tuple([(Decimal(p), Decimal(s)) for p, s, _ in sb.levels(side)]
                       for side in ("bid", "ask"))
        depth_equal[inst] = ours == theirs
    verified = sum(s.stats.checksum_verified for s in syncs.values())
    failed = sum(s.stats.checksum_failed for s in syncs.values())
    return {"book_msgs": msgs, "same_top": same_top, "depth_equal": depth_equal,
            "simlab_checksums_verified": verified, "simlab_checksums_failed": failed,
            "tops": {k: _top(b) for k, b in books.items()}}


def _apply_all(prebuilt: list, instruments: dict) -> tuple[int, float]:
    books = new_books(instruments)
    rows = 0
    t = time.perf_counter()
    for inst, deltas, n in prebuilt:
        books[inst].apply_deltas(deltas)
        rows += n
    return rows, time.perf_counter() - t


def run(frames: list[bytes], runs: int) -> list[dict]:
    """The two timed rows (see the module docstring); each with the first-cycle check."""
    cycle = first_cycle(frames)
    chk = check(cycle)
    ok = chk["same_top"] == chk["book_msgs"] and all(chk["depth_equal"].values())
    note_chk = (f"top == simlab after {chk['same_top']}/{chk['book_msgs']} book msgs of cycle 1, "
                f"full depth {'equal' if all(chk['depth_equal'].values()) else 'DIFFERS'}; "
                "no checksum (nautilus does not verify OKX's)")
    if not ok:
        note_chk = "CHECK FAILED: " + note_chk
    instruments = instruments_for(cycle)
    n_frames, n_rows, _ = feed(frames, instruments)
    data = (f"OKX.ws.1.0 x{len(frames) // len(cycle)} ({n_frames:,} frames, "
            f"{n_rows:,} level rows)")
    rows = []
    # the counting pass above is the warm-up
    rate, spread = median_rate(lambda: feed(frames, instruments)[0], runs, warmup=0)
    rows.append({"what": "nautilus_trader OrderBook L2_MBP, frames -> deltas -> book "
                         "(orjson + Cython OrderBookDelta built in Python, Rust apply_deltas)",
                 "data": data, "n": n_frames, "rate": rate, "spread": spread, "unit": "frames/s",
                 "note": f"= {rate * n_rows / n_frames:,.0f} level rows/s; {note_chk}"})
    conv = Deltas(instruments)
    prebuilt = [r for r in map(conv.frame, frames) if r is not None]
    rate, spread = median_rate(lambda: _apply_all(prebuilt, instruments), runs)
    rows.append({"what": "nautilus_trader OrderBook L2_MBP, apply_deltas alone on pre-built "
                         "OrderBookDeltas (Rust core)",
                 "data": data, "n": n_rows, "rate": rate, "spread": spread,
                 "unit": "level rows/s",
                 "note": f"{len(prebuilt):,} OrderBookDeltas (+1 CLEAR per snapshot); "
                         f"{note_chk}"})
    return rows
