"""cryptofeed's OKX feed handler on the real capture: frames -> its order book, checksum on/off.

What is timed: ``await OKX.message_handler(frame, conn, ts)`` once per frame, exactly what
cryptofeed's ``ConnectionHandler`` does for every text frame its websocket yields (a ``str``:
``websockets`` decodes text frames before cryptofeed sees them, so the frames are decoded
before the clock starts). The handler parses with yapic.json (C), keeps each book in the
``order_book`` C extension (via the Cython ``cryptofeed.types.OrderBook``) and, with
``checksum_validation=True``, computes OKX's CRC32 over the top 25 levels in C after every
``books`` push, raising ``BadChecksum`` on a mismatch. That is cryptofeed's fastest
configuration; nothing in it is turned off. Trades and tickers in the capture go through its
handler too (it builds ``Trade``/``Ticker`` objects), with no callback attached; the only
callback is a counter on L2 books, called after each verified push.

Offline: the instrument metadata (symbol mapping) is injected from the same session's real
REST responses (``../shared/okx-real/cryptofeed/OKX.0``) with ``Symbols.set``, so building
the feed makes no HTTP call; no connection is opened (the ``conn`` argument is a stub).

The helpers here (``okx_instruments``, ``first_cycle``, ``simlab_books``, ``compare_books``)
are shared with :mod:`benchmarks.peers.ccxt_okx`; they import nothing from the peer.
"""

from __future__ import annotations

import asyncio
import time
from importlib import metadata
from pathlib import Path

import orjson

from .._common import SHARED, median_rate
from ._shared import first_cycle, simlab_syncs

NAME = "cryptofeed"
PIP = "cryptofeed>=2.4.1"

#: Real ``/api/v5/public/instruments`` responses, lines ``<url> -> <recv_ts>: <json>``.
INSTRUMENTS = SHARED / "cryptofeed" / "OKX.0"
#: Levels per side compared with simlab's book (OKX's checksum covers the top 25).
TOP = 25


def version() -> str | None:
    """The installed cryptofeed version, or None when it cannot be imported."""
    try:
        import cryptofeed  # noqa: F401
    except ImportError:
        return None
    return metadata.version("cryptofeed")


# --- helpers shared with the other OKX peers (no peer imports) ---------------------------

def okx_instruments(path: Path = INSTRUMENTS) -> dict[str, dict]:
    """The real OKX REST instrument responses, by URL (the last one recorded for each URL,
    i.e. the one fetched just before the WebSocket capture started)."""
    last: dict[str, dict] = {}
    for line in path.read_bytes().splitlines():
        url, sep, rest = line.partition(b" -> ")
        if sep:  # the file ends with a non-REST "configuration:" line
            last[url.decode()] = orjson.loads(rest.partition(b": ")[2])
    return last


def cycles(frames: list[bytes]) -> str:
    """The ``data`` label of a row: the capture, its repetitions and the frame count."""
    return f"OKX.ws.1.0 x{len(frames) // len(first_cycle(frames))} ({len(frames):,} frames)"


def simlab_books(frames: list[bytes]) -> dict[str, dict]:
    """simlab's books after ``frames`` (``BookSync(L2Book)`` with checksums, as
    ``benchmarks.bench_book.feed``), per instId, in the form :func:`compare_books` takes,
    plus the checksums it verified and failed."""
    syncs = {m.inst_id: s for _, m, s in simlab_syncs(frames)}
    out = {}
    for inst, s in syncs.items():
        b, t = s.book, s.book.top(TOP)
        out[inst] = {"bids": list(zip(t.bid_px.tolist(), t.bid_sz.tolist(), strict=True)),
                     "asks": list(zip(t.ask_px.tolist(), t.ask_sz.tolist(), strict=True)),
                     "n_bids": b.n_bids, "n_asks": b.n_asks,
                     "verified": s.stats.checksum_verified, "failed": s.stats.checksum_failed}
    return out


def compare_books(peer: dict[str, dict], ref: dict[str, dict]) -> list[str]:
    """Differences between a peer's books and simlab's: same instruments, same level counts,
    the same top :data:`TOP` (price, size) pairs on each side, compared as floats."""
    diffs = []
    if set(peer) != set(ref):
        diffs.append(f"instruments {sorted(peer)} != simlab {sorted(ref)}")
    for inst in sorted(set(peer) & set(ref)):
        for key in ("n_bids", "n_asks", "bids", "asks"):
            if peer[inst][key] != ref[inst][key]:
                diffs.append(f"{inst} {key}: {str(peer[inst][key])[:80]} != simlab "
                             f"{str(ref[inst][key])[:80]}")
    return diffs


def tampered(frames: list[bytes]) -> list[bytes]:
    """``frames`` up to and including the first ``books`` update, whose checksum is changed:
    a handler that really verifies must reject that last frame."""
    for i, f in enumerate(frames):
        m = orjson.loads(f)
        if m.get("action") == "update" and m.get("arg", {}).get("channel") == "books":
            m["data"][0]["checksum"] += 1
            return [*frames[:i], orjson.dumps(m)]
    raise ValueError("no books update in the frames")


# --- cryptofeed ---------------------------------------------------------------------------

def _inject_symbols() -> None:
    """Fill cryptofeed's symbol registry for OKX from the recorded REST responses, so that
    constructing the feed does not fetch them."""
    from cryptofeed.exchanges import OKX
    from cryptofeed.symbols import Symbols

    Symbols.set(OKX.id, *OKX._parse_symbol_data(list(okx_instruments().values())))


class _Counter:
    """The L2 book callback: counts pushes (each one after its checksum, when on)."""

    def __init__(self) -> None:
        self.n = 0

    async def __call__(self, book, receipt_timestamp) -> None:
        self.n += 1


def _feed(checksum: bool, counter: _Counter):
    from cryptofeed.defines import L2_BOOK
    from cryptofeed.exchanges import OKX

    return OKX(checksum_validation=checksum, callbacks={L2_BOOK: counter})


async def _handle(feed, text: list[str]) -> float:
    """Feed every frame to the handler as its connection would; return the seconds taken."""
    handler = feed.message_handler
    ts = time.time()  # the stub connection's receive time, fixed: not part of the handler
    t = time.perf_counter()
    for msg in text:
        await handler(msg, None, ts)
    return time.perf_counter() - t


def _books(feed) -> dict[str, dict]:
    """cryptofeed's books by OKX instId, in the form :func:`compare_books` takes."""
    out = {}
    for sym, ob in feed._l2_book.items():
        bids, asks = ob.book.bids, ob.book.asks
        out[feed.std_symbol_to_exchange_symbol(sym)] = {
            "bids": [(float(p), float(bids[p])) for p in list(bids.keys())[:TOP]],
            "asks": [(float(p), float(asks[p])) for p in list(asks.keys())[:TOP]],
            "n_bids": len(bids), "n_asks": len(asks)}
    return out


def check(frames: list[bytes]) -> dict:
    """Run the first cycle of ``frames`` through cryptofeed with checksums on and compare its
    books with simlab's; also check that a corrupted checksum raises ``BadChecksum``."""
    from cryptofeed.exceptions import BadChecksum

    _inject_symbols()
    cycle = first_cycle(frames)
    text = [f.decode() for f in cycle]
    counter = _Counter()
    feed = _feed(True, counter)
    asyncio.run(_handle(feed, text))
    ref = simlab_books(cycle)

    async def bad() -> bool:
        f = _feed(True, _Counter())
        try:
            for msg in tampered(cycle):
                await f.message_handler(msg.decode(), None, 0.0)
        except BadChecksum:
            return True
        return False

    return {"frames": len(cycle), "verified": counter.n,
            "simlab_verified": sum(b["verified"] for b in ref.values()),
            "simlab_failed": sum(b["failed"] for b in ref.values()),
            "diffs": compare_books(_books(feed), ref), "books": len(ref),
            "tamper_detected": asyncio.run(bad())}


def run(frames: list[bytes], runs: int) -> list[dict]:
    """Rows for checksum on and off: the median frames/s over ``runs`` timed runs, each over
    all ``frames`` with a fresh feed (built outside the timed part)."""
    chk = check(frames)
    same = "top-25 levels and level counts equal simlab's" if not chk["diffs"] else \
        f"BOOKS DIFFER FROM SIMLAB: {chk['diffs'][:3]}"
    text = [f.decode() for f in frames]
    rows = []
    for checksum in (True, False):
        counted: list[int] = []

        def once(c: bool = checksum, counted: list[int] = counted) -> tuple[int, float]:
            counter = _Counter()
            dt = asyncio.run(_handle(_feed(c, counter), text))
            counted.append(counter.n)
            return len(text), dt

        rate, spread = median_rate(once, runs)
        if checksum:
            note = (f"{chk['verified']} checksums verified on cycle 1 (simlab "
                    f"{chk['simlab_verified']}), {counted[-1]:,} per timed run, 0 failed; "
                    f"corrupted checksum raises BadChecksum: {chk['tamper_detected']}; {same}")
        else:
            note = f"checksum_validation=False; {counted[-1]:,} book pushes per run"
        state = "on" if checksum else "off"
        rows.append({
            "what": f"cryptofeed OKX handler, frames -> book, checksum {state}",
            "data": cycles(frames), "n": len(frames),
            "rate": rate, "spread": spread, "unit": "frames/s",
            "note": note + "; yapic.json + order_book C ext, str frames"})
    return rows
