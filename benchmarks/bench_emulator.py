"""The OKX emulator as a load generator: book messages per second pushed to one client.

The emulator runs in its own process at full speed (``speed=None``: simulated time runs as
fast as the client reads) over a seeded market for BTC-USDT, ETH-USDT and BTC-USDT-SWAP:
the default Cont-Stoikov-Talreja market (what ``simlab serve`` runs; about 275 events per
simulated second per instrument) and, as a lighter load, a ``RandomMarket`` (150 events/s
per instrument); one `websockets` client
on loopback subscribes to ``bbo-tbt``, ``books50-l2-tbt``, ``books`` and ``books5`` for the
three instruments (and nothing else) and counts the book messages it receives (acks are
not counted). A second row times the publisher alone (market + OKX messages, no network).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import tempfile
import time

from simlab.emulator import Publisher
from simlab.emulator.testing import RandomMarket, request

from ._common import median_rate

INSTS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP")
#: Every book channel a connection may hold together (books-l2-tbt excludes books and
#: books50-l2-tbt), for the three instruments: 12 streams.
ARGS = [(c, i) for i in INSTS for c in ("bbo-tbt", "books50-l2-tbt", "books", "books5")]
RATE = 150.0
MESSAGES = 30_000


def _market(kind: str):
    if kind == "cst":
        from simlab.emulator.market import CSTMarket

        return CSTMarket(seed=1, instruments=INSTS)
    return RandomMarket(seed=1, rate=RATE)


def _recording(path: str) -> str:
    """A recording of the CST market's `books` for the 3 instruments: 2,700 simulated s,
    about 81,000 updates (the server is asked for 75,000)."""
    from simlab.emulator import write_synthetic_recording

    write_synthetic_recording(path, seconds=2_700.0, instruments=INSTS, channels=("books",),
                              seed=3, checksum=True)
    return path


def _serve(conn, checksum: bool, market: str) -> None:
    from simlab.emulator import Emulator

    async def main() -> None:
        if market.startswith("recording:"):
            emu = Emulator(recording=market.split(":", 1)[1], speed=None, rest_port=None)
        else:
            emu = Emulator(_market(market), speed=None, rest_port=None, checksum=checksum)
        await emu.start()
        conn.send(emu.ws_url)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told
        await emu.stop()

    asyncio.run(main())


def _read(url: str, n: int, args=ARGS) -> int:
    from websockets.asyncio.client import connect

    async def main() -> int:
        async with connect(url, close_timeout=0.5, max_size=None) as ws:
            await ws.send(request("subscribe", *args))
            got = 0
            while got < n:
                m = await ws.recv(decode=False)
                if m.startswith(b'{"arg":{"channel":"b'):
                    got += 1
            return got

    return asyncio.run(main())


@contextlib.contextmanager
def _server(market: str, checksum: bool):
    """An emulator in its own process; yields its ws URL."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, checksum, market), daemon=True)
    proc.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


def _timed_run(market: str, checksum: bool, args, n: int) -> tuple[int, float]:
    """Start a server, then read ``n`` messages: (count, seconds of the read alone)."""
    with _server(market, checksum) as url:
        t = time.perf_counter()
        got = _read(url, n, args)
        return got, time.perf_counter() - t


def publisher_rate(market: str = "cst") -> int:
    m = _market(market)
    p = Publisher(m, streams=ARGS)
    n = 0
    t = m.start_ms
    while n < MESSAGES:
        t += 1000
        n += len(p.advance(t))
    return n


def run(runs: int = 5) -> list[dict]:
    rows = []
    names = {"cst": "CST market", "random": f"RandomMarket {RATE:.0f} ev/s"}
    tmp = tempfile.mkdtemp(prefix="simlab-bench-")
    rec = "recording:" + _recording(os.path.join(tmp, "rec"))
    books = [("books", i) for i in INSTS]
    for market, checksum in (("cst", True), ("cst", False), ("random", True), (rec, True)):
        if market == rec:
            data = "a recording of 3 instruments' books, served as fast as read"
            args, n = books, 75_000
        else:
            data = f"{names[market]}, 3 instruments, {len(ARGS)} book streams"
            args, n = ARGS, MESSAGES
        if market == rec:
            # a recording is served once from its start: a fresh server for every run
            rate, spread = median_rate(lambda m=market, a=args, k=n: _timed_run(m, True, a, k),
                                       runs)
        else:
            with _server(market, checksum) as url:
                rate, spread = median_rate(lambda u=url, a=args, k=n: _read(u, k, a), runs)
        rows.append({"what": "emulator -> 1 client, book msgs"
                             + ("" if checksum else " (checksum 0)"),
                     "data": data, "n": n, "rate": rate, "spread": spread,
                     "note": "server and client in 2 processes, loopback"})
    shutil.rmtree(tmp, ignore_errors=True)
    rate, spread = median_rate(publisher_rate, runs)
    rows.append({"what": "publisher alone, book msgs",
                 "data": f"{names['cst']}, 3 instruments, {len(ARGS)} book streams",
                 "n": MESSAGES,
                 "rate": rate, "spread": spread, "note": "market + encoding, no network"})
    return rows


if __name__ == "__main__":
    t0 = time.perf_counter()
    for r in run(3):
        print(f"{r['what']:45s} {r['rate']:>10,.0f}/s  spread {r['spread']:.2f}")
    print(f"({time.perf_counter() - t0:.1f} s)")
