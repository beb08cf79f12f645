"""The offline end-to-end demo behind ``make demo`` (``simlab demo``).

1. Live, offline: the local OKX emulator serves a Cont-Stoikov-Talreja synthetic market;
   ``simlab record``'s recorder records it for ``--seconds`` through the real live client
   while the cost pipeline prices an order at every tick as it arrives. The recording is
   then verified and replayed through the cost pipeline: the replay must reproduce the live
   numbers exactly. A report folder gets the cost summary and charts (depth, cost over time,
   latency, Almgren-Chriss schedule and frontier), with impact parameters calibrated from
   the recording.

Then it runs the same commands a researcher would type, on data made here:

2. a seeded synthetic OKX feed (``books`` + ``trades`` for three instruments, the emulator's
   Cont-Stoikov-Talreja market through its publisher, with heartbeats and a maintenance
   seqId reset) written as a capture file, imported into a recording and verified: every
   book rebuilt, every checksum verified, no gap;
3. the same feed with one ``books`` update of ETH-USDT dropped on purpose: ``verify`` must
   find exactly that gap, and say where it is;
4. when ``../shared/okx-real`` is beside the repository, the real 2022 OKX capture:
   290 book messages, 290 checksums verified.

Run it with ``simlab demo`` or ``python -m simlab.demo [--out DIR]``. It exits non-zero if any
result differs from what is expected, so it doubles as a smoke test. Each step calls the
library function behind the command it echoes (``$ simlab verify ...``), and prints what
that command prints.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

INSTRUMENTS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP")
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_CAPTURE = SHARED / "okx-real" / "cryptofeed" / "OKX.ws.1.0"

#: The synthetic night's quiet instrument: its market runs this many times slower than the
#: CST defaults, so its book sometimes stays unchanged long enough for a heartbeat.
QUIET, QUIET_FACTOR = "BTC-USDT-SWAP", 100.0
#: Heartbeat after 1 s without change (OKX: about 60 s), so a short night has some.
HEARTBEAT_MS = 1_000
#: The instrument whose seqId the synthetic night resets (a maintenance reset).
RESET_INST = "BTC-USDT"


def synthetic_night(seed: int = 7, instruments: Sequence[str] = INSTRUMENTS,
                    n_updates: int = 20_000, reset_at: int | None = None
                    ) -> Iterator[tuple[int, bytes]]:
    """``(recv_ns, frame)`` of a seeded synthetic OKX ``books`` + ``trades`` feed: the
    emulator's CST market (:class:`~simlab.emulator.market.CSTMarket`, :data:`QUIET` slowed
    down) through its publisher, with checksums, heartbeats (:data:`HEARTBEAT_MS`) and, after
    the ``reset_at``-th book update, a maintenance reset of :data:`RESET_INST`'s seqId. Each
    instrument's snapshot comes first; the feed ends after ``n_updates`` book updates (not
    counting heartbeats). Frames are received 1-30 ms after their exchange time, in strictly
    increasing order. Same arguments, same bytes.

    >>> from simlab.okx import parse_frame
    >>> f = [parse_frame(b) for _, b in synthetic_night(n_updates=5, instruments=["ETH-USDT"])]
    >>> [m.action for m in f if m.channel == "books"]
    ['snapshot', 'update', 'update', 'update', 'update', 'update']
    """
    from simlab.emulator.cst import CSTParams
    from simlab.emulator.market import CSTMarket
    from simlab.emulator.publisher import Publisher

    d = CSTParams()
    q = QUIET_FACTOR
    quiet = replace(d, k=d.k / q, mu=d.mu / q, theta=tuple(x / q for x in d.theta),
                    theta_far=d.theta_far / q, burn_in_s=d.burn_in_s * q)
    market = CSTMarket(seed=seed, instruments=list(instruments),
                       params={QUIET: quiet} if QUIET in instruments else None)
    pub = Publisher(market, checksum=True, seed=seed, heartbeat_ms=HEARTBEAT_MS,
                    streams=[(c, i) for i in instruments for c in ("books", "trades")])
    rng = random.Random(seed)
    last = 0

    def stamp(ts_ms: int) -> int:
        nonlocal last
        # network latency of 1-30 ms, strictly increasing so the order is unambiguous
        last = max(last + 1, ts_ms * 1_000_000 + rng.randint(1_000_000, 30_000_000))
        return last

    for inst in instruments:
        snap = pub.snapshot("books", inst)
        yield stamp(snap.ts_ms), snap.frame
    updates, t = 0, market.start_ms
    while updates < n_updates:
        t += 100
        for p in pub.advance(t):
            yield stamp(p.ts_ms), p.frame
            if p.channel == "books" and p.kind in ("update", "reset"):
                updates += 1
                if updates == n_updates:
                    return
                if updates == reset_at:
                    pub.reset(RESET_INST)


def inject_gap(stream: Iterable[tuple[int, bytes]], inst_id: str,
               at: int) -> Iterator[tuple[int, bytes]]:
    """Drop the ``at``-th (0-based) non-heartbeat ``books`` update of ``inst_id``.

    The next update's ``prevSeqId`` then names a seqId the receiver never saw: a real gap.
    (Dropping a heartbeat would go unnoticed, as its seqId repeats the previous one.)
    Raises ValueError, once the stream is exhausted, if there was no such update.

    >>> s = list(synthetic_night(n_updates=5, instruments=["ETH-USDT"]))
    >>> len(s) - len(list(inject_gap(s, "ETH-USDT", 2)))
    1
    """
    from simlab.okx import is_book, parse_frame

    seen = 0
    dropped = False
    for recv, frame in stream:
        if not dropped and b'"books"' in frame:
            msg = parse_frame(frame)
            if (is_book(msg) and msg.inst_id == inst_id and msg.action == "update"
                    and msg.seq_id != msg.prev_seq_id):
                seen += 1
                if seen == at + 1:
                    dropped = True
                    continue
        yield recv, frame
    if not dropped:
        raise ValueError(f"inject_gap: {inst_id!r} has no update number {at} (0-based) "
                         f"in the stream; it has {seen}")


def write_capture(frames: Iterable[tuple[int, bytes]], path: Path) -> int:
    """Write ``(recv_ns, frame)`` pairs as ``<recv_seconds>: <json>`` lines (okx-capture)."""
    n = 0
    with open(path, "wb") as f:
        for recv_ns, frame in frames:
            f.write(b"%d.%09d: %s\n" % (recv_ns // 1_000_000_000, recv_ns % 1_000_000_000, frame))
            n += 1
    return n


def _echo(*args: str) -> None:
    # the command a researcher would type for the step that follows
    print(f"\n$ simlab {' '.join(args)}")


def import_shown(src: str | Path, out: Path) -> None:
    """``simlab import okx-capture SRC --out OUT``: the import, and what the command prints."""
    from simlab.store import import_file

    _echo("import", "okx-capture", str(src), "--out", str(out))
    result = import_file("okx-capture", src, out)
    print(result.summary())
    for w in result.warnings():
        print(f"simlab import: warning: {w}", file=sys.stderr)


def verify_shown(path: Path) -> dict[str, Any]:
    """``simlab verify PATH``: the check, what the command prints, and the report as
    ``simlab verify --json`` gives it (``ok`` is False when verify would exit 1)."""
    from simlab.store import format_report, verify

    _echo("verify", str(path))
    report = verify(path)
    print(format_report(report).rstrip())
    return {**report.as_dict(), "ok": report.ok}


def books_total(report: dict, key: str) -> int:
    return report["channels"]["books"]["total"][key]


#: What the live part prices: a 10,000 USDT market buy of BTC-USDT at OKX VIP1 fees.
LIVE_ORDER = dict(inst="BTC-USDT", side="buy", quantity=10_000.0, unit="quote",
                  order_type="market", fee_tier="VIP1")
LIVE_STREAMS = [("books", "BTC-USDT"), ("trades", "BTC-USDT"), ("books", "ETH-USDT"),
                ("books", "BTC-USDT-SWAP"), ("trades", "BTC-USDT-SWAP")]


def live_demo(out: Path, seconds: float) -> list[str]:
    """Part 1; returns the problems found (none when all is as expected)."""
    import asyncio
    import time

    import pandas as pd

    from simlab.emulator.market import CSTMarket
    from simlab.emulator.testing import start_emulator
    from simlab.feed.live import FrameTap
    from simlab.models.impact import ACParams
    from simlab.record import Recorder
    from simlab.sim.order import OrderSpec
    from simlab.sim.pipeline import CostPipeline
    from simlab.sim.report import write_report
    from simlab.sim.run import price_recording
    from simlab.sim.summary import format_summary

    problems = []
    order = OrderSpec(**LIVE_ORDER)
    # Live, the impact parameters must be known in advance: a prior here; the report below
    # uses parameters calibrated from the recording.
    prior = ACParams(sigma=2.0, eta=0.05, gamma=0.001, epsilon=0.0, lam=1e-6, T=60.0, N=10)
    emu = start_emulator(CSTMarket(seed=7), speed=1.0)
    rec_dir = out / "live"
    try:
        print(f"emulator: {emu.ws_url} (WebSocket), {emu.rest_url} (REST)")
        live = CostPipeline(order, impact=prior,
                            metadata={"BTC-USDT": {"instType": "SPOT", "tickSz": "0.1"}})
        tap = FrameTap(live.on_event)
        t0 = time.monotonic()
        rec = Recorder(rec_dir, LIVE_STREAMS, duration=seconds, rotate=10.0,
                       ws_url=emu.ws_url, rest_url=emu.rest_url, tap=tap)
        result = asyncio.run(rec.run())
        print(f"recorded {result.frames:,} frames in {time.monotonic() - t0:.1f} s -> {rec_dir}")
    finally:
        emu.stop()
    live_res = live.result()
    if books_total(verify_shown(rec_dir), "gaps"):
        problems.append("the live recording has sequence gaps")

    # the replay must give exactly what was computed live
    replay = CostPipeline(order, impact=prior, instrument=live.instrument)
    for name, res in (("events", replay.run(_source(rec_dir))),
                      ("columnar", replay.run_recording(rec_dir))):
        try:
            pd.testing.assert_frame_equal(live_res.table, res.table, check_exact=True)
            print(f"replay ({name}) == live: {len(res.table):,} ticks, every value identical")
        except AssertionError as e:
            problems.append(f"replay ({name}) differs from the live run: {e}")
    if len(live_res.table) < 10:
        problems.append(f"only {len(live_res.table)} ticks were priced live")

    # the report: impact calibrated from the recording, per-tick latency of the replay
    res, info = price_recording(rec_dir, order, mode="events")
    summary = res.summary()
    summary["run"] = info
    summary["live"] = {"ticks": len(live_res.table), "latency_us": live_res.summary().get(
        "latency_us")}
    print()
    print(format_summary(summary))
    lat = summary["live"]["latency_us"] or {}
    if "total" in lat:
        print(f"live per-tick latency: p50 {lat['total']['p50_us']:.1f} us, "
              f"p99 {lat['total']['p99_us']:.1f} us (decode + walk + models)")
    book = tap.decoder.book("books", order.inst)
    files = write_report(res, out / "report", summary=summary, depth=book.top(25),
                         ac=res.impact, ac_X=float(res.table["filled_base"].median()))
    res.to_parquet(out / "report" / "ticks.parquet")
    print(f"report: {out / 'report'} ({', '.join(sorted(files))}, ticks.parquet)")
    return problems


def _source(path: Path):
    from simlab.feed.replay import ReplaySource

    return ReplaySource(path, insts=[LIVE_ORDER["inst"]], channels=["books"])


def run_demo(out: Path, seconds: float = 30.0, updates: int = 20_000) -> int:
    """The whole demo into ``out`` (recreated); 0 when every result is as expected, else 1
    (each problem printed)."""
    from simlab.extras import require

    # the report's charts: fail now, not after the live minute
    require("matplotlib", feature="simlab demo (its report's charts)")
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    problems: list[str] = []

    print(f"== 1. live from the local emulator: record {seconds:g} s, price every tick, "
          "replay ==")
    problems += live_demo(out, seconds)

    def stream():
        return synthetic_night(seed=7, instruments=INSTRUMENTS, n_updates=updates,
                               reset_at=updates // 3)

    print("\n== 2. a synthetic night, recorded and verified ==")
    n = write_capture(stream(), out / "synthetic.capture")
    print(f"generated {n:,} frames -> {out / 'synthetic.capture'}")
    import_shown(out / "synthetic.capture", out / "clean")
    rep = verify_shown(out / "clean")
    if not rep["ok"] or books_total(rep, "gaps") or books_total(rep, "checksum_failed"):
        problems.append("the clean synthetic recording did not verify cleanly")
    if books_total(rep, "resets") != 1 or not books_total(rep, "heartbeats"):
        problems.append("the reset / heartbeats were not recognised as valid")

    print("\n== 3. the same night with one ETH-USDT update lost ==")
    # drop an update about a sixth of the way into ETH-USDT's share of the night
    write_capture(inject_gap(stream(), "ETH-USDT", at=updates // 20), out / "gap.capture")
    import_shown(out / "gap.capture", out / "gap")
    rep = verify_shown(out / "gap")
    gaps = {i: s["gaps"] for i, s in rep["channels"]["books"]["instruments"].items() if s["gaps"]}
    if rep["ok"] or gaps != {"ETH-USDT": 1}:
        problems.append(f"expected exactly one gap, in ETH-USDT; verify found {gaps}")
    else:
        print("verify exits 1 and names the gap: as expected")

    if REAL_CAPTURE.exists():
        print("\n== 4. a real OKX capture (2022, cryptofeed sample data) ==")
        src = os.path.relpath(REAL_CAPTURE)  # as a user would type it
        import_shown(src, out / "okx-2022")
        rep = verify_shown(out / "okx-2022")
        if not rep["ok"] or books_total(rep, "checksum_verified") != 290:
            problems.append("the real capture did not verify 290 checksums")
    else:
        print(f"\n(skipping the real capture: {REAL_CAPTURE} is absent)")

    print()
    if problems:
        for p in problems:
            print(f"DEMO FAILED: {p}")
        return 1
    print(f"demo ok: the report is in {out / 'report'}/, recordings in {out}/ "
          "(open them with pandas.read_parquet)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simlab.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="demo-output", help="working directory (recreated)")
    ap.add_argument("--updates", type=int, default=20_000,
                    help="book updates of the synthetic night")
    ap.add_argument("--seconds", type=float, default=30.0, help="live recording length (s)")
    a = ap.parse_args(argv)
    return run_demo(Path(a.out), seconds=a.seconds, updates=a.updates)


if __name__ == "__main__":
    sys.exit(main())
