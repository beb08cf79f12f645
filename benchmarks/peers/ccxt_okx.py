"""ccxt.pro's OKX order-book handling on the real capture: frames -> book, checksum on/off.

What is timed: ``Client.handle_text_or_binary_message(frame)`` once per frame, which is what
ccxt's aiohttp connection calls for every text frame (a ``str``, decoded by aiohttp before
ccxt sees it, so the frames are decoded before the clock starts): orjson parses it and
``okx.handle_message`` dispatches ``books`` pushes to ``handle_order_book`` (the handler behind
``watch_order_book``), trades and tickers to their handlers. The client is ccxt's own ``Client``
class, never connected, with the ``books:<symbol>`` subscriptions ``watch_order_book`` would
have made; it only counts ``resolve``/``reject`` on top of ccxt's own. ccxt has no C path for
order books (its ``OrderBookSide`` is pure Python, floats); orjson is used since it is
installed, which is ccxt's fastest configuration.

Checksum: ccxt's OKX handler verified OKX's CRC32 (top 25 levels, its float book rendered
back to strings) behind the ``watchOrderBook.checksum`` option up to ccxt 4.5.54; from 4.5.55
the check is gone (the option is still declared but nothing reads it). So ``PIP`` pins the
last release that verifies, and :func:`run` probes the installed version with a corrupted
checksum: when nothing rejects it, only the unverified row is reported, labelled as such.

Offline: markets are parsed from the same session's real REST responses
(``../shared/okx-real/cryptofeed/OKX.0``) with ccxt's own ``parse_markets`` and injected with
``set_markets``, so no HTTP call is made.
"""

from __future__ import annotations

import asyncio
import time
from importlib import metadata

from .._common import median_rate
from .cryptofeed_okx import (
    TOP,
    compare_books,
    cycles,
    first_cycle,
    okx_instruments,
    simlab_books,
    tampered,
)

NAME = "ccxt"
#: The last release whose OKX handler verifies the book checksum (4.5.55 dropped it).
PIP = "ccxt==4.5.54"

URL = "wss://ws.okx.com:8443/ws/v5/public"


def version() -> str | None:
    """The installed ccxt version, or None when it cannot be imported."""
    try:
        import ccxt  # noqa: F401
    except ImportError:
        return None
    return metadata.version("ccxt")


_MARKETS: list | None = None


def _markets() -> list:
    """ccxt's market structures for every instrument in the recorded REST responses, parsed
    once by ccxt's own ``parse_markets`` (what ``fetch_markets`` does with them)."""
    global _MARKETS
    if _MARKETS is None:
        import ccxt

        ex = ccxt.okx()  # the sync class: parsing needs no event loop and no network
        _MARKETS = [m for resp in okx_instruments().values()
                    for m in ex.parse_markets(resp["data"])]
    return _MARKETS


def _client_class():
    from ccxt.async_support.base.ws.client import Client

    class CountingClient(Client):
        """ccxt's WebSocket client, never connected, counting what the handler resolves and
        rejects (a rejected book is a failed checksum or sequence check)."""

        resolved = 0
        rejected = 0

        def resolve(self, result, message_hash):
            self.resolved += 1
            return super().resolve(result, message_hash)

        def reject(self, result, message_hash=None):
            self.rejected += 1
            return super().reject(result, message_hash)

    return CountingClient


def _setup(checksum: bool, frames: list[bytes]):
    """A ccxt.pro okx exchange with markets injected and a client subscribed to the order
    books of every instrument with ``books`` frames in ``frames`` (call inside a loop)."""
    import ccxt.pro
    import orjson

    ex = ccxt.pro.okx({"options": {"watchOrderBook": {"checksum": checksum}}})
    ex.set_markets(_markets())
    client = _client_class()(URL, ex.handle_message, None, None, None, {})
    insts = set()
    for f in first_cycle(frames):
        if b'"books"' in f:
            insts.add(orjson.loads(f)["arg"]["instId"])
    for inst in insts:
        client.subscriptions["books:" + ex.safe_market(inst)["symbol"]] = True
    return ex, client


def _handle(client, text: list[str]) -> float:
    handle = client.handle_text_or_binary_message
    t = time.perf_counter()
    for msg in text:
        handle(msg)
    return time.perf_counter() - t


def _books(ex) -> dict[str, dict]:
    """ccxt's books by OKX instId, in the form ``compare_books`` takes."""
    out = {}
    for sym, ob in ex.orderbooks.items():
        bids, asks = ob["bids"], ob["asks"]
        out[ex.market(sym)["id"]] = {
            "bids": [(float(p), float(s)) for p, s in list(bids)[:TOP]],
            "asks": [(float(p), float(s)) for p, s in list(asks)[:TOP]],
            "n_bids": len(bids), "n_asks": len(asks)}
    return out


def check(frames: list[bytes]) -> dict:
    """Run the first cycle of ``frames`` through ccxt with the checksum option on and compare
    its books with simlab's; probe with a corrupted checksum whether this ccxt verifies."""

    async def go() -> dict:
        cycle = first_cycle(frames)
        ex, client = _setup(True, cycle)
        _handle(client, [f.decode() for f in cycle])
        bad_ex, bad = _setup(True, cycle)
        _handle(bad, [f.decode() for f in tampered(cycle)])
        ref = simlab_books(cycle)
        books = sum(1 for f in cycle if b'"books"' in f and b'"data"' in f)
        res = {"frames": len(cycle), "book_msgs": books, "rejected": client.rejected,
               "resolved": client.resolved, "verifies": bad.rejected > 0,
               "simlab_verified": sum(b["verified"] for b in ref.values()),
               "diffs": compare_books(_books(ex), ref), "books": len(ref)}
        await ex.close()
        await bad_ex.close()
        return res

    return asyncio.run(go())


def run(frames: list[bytes], runs: int) -> list[dict]:
    """Rows for the checksum option on and off (only off when the installed ccxt does not
    verify): the median frames/s over ``runs`` timed runs, each over all ``frames`` with a
    fresh exchange and client (built outside the timed part)."""
    chk = check(frames)
    ver = version()
    same = "top-25 levels and level counts equal simlab's" if not chk["diffs"] else \
        f"BOOKS DIFFER FROM SIMLAB: {chk['diffs'][:3]}"
    text = [f.decode() for f in frames]
    rows = []
    for checksum in (True, False) if chk["verifies"] else (False,):
        rejected: list[int] = []

        def once(c: bool = checksum, rejected: list[int] = rejected) -> tuple[int, float]:
            async def go() -> float:
                ex, client = _setup(c, frames)
                dt = _handle(client, text)
                rejected.append(client.rejected)
                await ex.close()
                return dt

            return len(text), asyncio.run(go())

        rate, spread = median_rate(once, runs)
        if checksum:
            state = "checksum on"
            note = (f"{chk['book_msgs'] - chk['rejected']} of {chk['book_msgs']} checksums "
                    f"verified on cycle 1 (simlab {chk['simlab_verified']}), {rejected[-1]} "
                    f"rejected per timed run; corrupted checksum rejected: True; {same}")
        elif chk["verifies"]:
            state = "checksum off"
            note = f"watchOrderBook.checksum=False; {same}"
        else:
            state = "no checksum (not verified by this ccxt)"
            note = (f"ccxt {ver} does not verify OKX checksums (corrupted checksum accepted; "
                    f"the check was removed in 4.5.55); {same}")
        rows.append({
            "what": f"ccxt {ver} okx handle_message -> handle_order_book, {state}",
            "data": cycles(frames), "n": len(frames), "rate": rate, "spread": spread,
            "unit": "frames/s", "note": note + "; pure-Python book, orjson, str frames"})
    return rows
