"""The offline end-to-end demo behind ``make demo`` (``simlab demo``).

1. Live, offline: the local OKX emulator serves a Cont-Stoikov-Talreja synthetic market;
   ``simlab record``'s recorder records it for ``--seconds`` through the real live client
   while the cost pipeline prices an order at every tick as it arrives. The recording is
   then verified and replayed through the cost pipeline: the replay must reproduce the live
   numbers exactly. A report folder gets the cost summary and charts (depth, cost over time,
   latency, Almgren-Chriss schedule and frontier), with impact parameters calibrated from
   the recording.

Then it runs the same commands a researcher would type, on data made here:

2. a seeded synthetic OKX feed (``books`` + ``trades`` for three instruments, with
   heartbeats and a maintenance seqId reset) written as a capture file, imported into a
   recording and verified: every book rebuilt, every checksum verified, no gap;
3. the same feed with one ``books`` update of ETH-USDT dropped on purpose: ``verify`` must
   find exactly that gap, and say where it is;
4. when ``../shared/okx-real`` is beside the repository, the real 2022 OKX capture:
   290 book messages, 290 checksums verified.

Run it with ``python -m simlab.demo [--out DIR]``. It exits non-zero if any result differs
from what is expected, so it doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from simlab.cli import main as simlab
from simlab.emulator.randomwalk import generate_stream, inject_gap

INSTRUMENTS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP")
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_CAPTURE = SHARED / "okx-real" / "cryptofeed" / "OKX.ws.1.0"


def write_capture(frames, path: Path) -> int:
    """Write ``(recv_ns, frame)`` pairs as ``<recv_seconds>: <json>`` lines (okx-capture)."""
    n = 0
    with open(path, "wb") as f:
        for recv_ns, frame in frames:
            f.write(b"%d.%09d: %s\n" % (recv_ns // 1_000_000_000, recv_ns % 1_000_000_000, frame))
            n += 1
    return n


def run(args: list[str], show: bool = True) -> tuple[int, str]:
    """Run a simlab command as typed; with ``show``, echo it and its output as a shell would.
    Returns (exit code, output)."""
    if show:
        print(f"\n$ simlab {' '.join(args)}")
    buf = StringIO()
    with redirect_stdout(buf):
        code = simlab(args)
    out = buf.getvalue()
    if show:
        print(out.rstrip())
    return code, out


def counts(out_dir: Path) -> dict:
    _, text = run(["verify", str(out_dir), "--json"], show=False)
    return json.loads(text)


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
    from simlab.sim.order import OrderSpec
    from simlab.sim.pipeline import CostPipeline
    from simlab.sim.report import write_report
    from simlab.sim.run import price_recording
    from simlab.sim.summary import format_summary
    from simlab.store.recorder import Recorder

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
    run(["verify", str(rec_dir)])
    if counts(rec_dir)["channels"]["books"]["total"]["gaps"]:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simlab.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="demo-output", help="working directory (recreated)")
    ap.add_argument("--updates", type=int, default=20_000, help="book updates to generate")
    ap.add_argument("--seconds", type=float, default=30.0, help="live recording length (s)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    problems: list[str] = []

    print(f"== 1. live from the local emulator: record {a.seconds:g} s, price every tick, "
          "replay ==")
    problems += live_demo(out, a.seconds)

    def stream():
        return generate_stream(seed=7, instruments=INSTRUMENTS, n_updates=a.updates, depth=200,
                               heartbeat_every=400, reset_at=a.updates // 3)

    print("\n== 2. a synthetic night, recorded and verified ==")
    n = write_capture(stream(), out / "synthetic.capture")
    print(f"generated {n:,} frames -> {out / 'synthetic.capture'}")
    run(["import", "okx-capture", str(out / "synthetic.capture"), "--out", str(out / "clean")])
    code, _ = run(["verify", str(out / "clean")])
    rep = counts(out / "clean")
    if code != 0 or books_total(rep, "gaps") or books_total(rep, "checksum_failed"):
        problems.append("the clean synthetic recording did not verify cleanly")
    if books_total(rep, "resets") != 1 or not books_total(rep, "heartbeats"):
        problems.append("the reset / heartbeats were not recognised as valid")

    print("\n== 3. the same night with one ETH-USDT update lost ==")
    # drop an update about a sixth of the way into ETH-USDT's share of the night
    write_capture(inject_gap(stream(), "ETH-USDT", at=a.updates // 20), out / "gap.capture")
    run(["import", "okx-capture", str(out / "gap.capture"), "--out", str(out / "gap")])
    code, _ = run(["verify", str(out / "gap")])
    rep = counts(out / "gap")
    gaps = {i: s["gaps"] for i, s in rep["channels"]["books"]["instruments"].items() if s["gaps"]}
    if code == 0 or gaps != {"ETH-USDT": 1}:
        problems.append(f"expected exactly one gap, in ETH-USDT; verify found {gaps}")
    else:
        print("verify exits 1 and names the gap: as expected")

    if REAL_CAPTURE.exists():
        print("\n== 4. a real OKX capture (2022, cryptofeed sample data) ==")
        src = os.path.relpath(REAL_CAPTURE)  # as a user would type it
        run(["import", "okx-capture", src, "--out", str(out / "okx-2022")])
        code, _ = run(["verify", str(out / "okx-2022")])
        rep = counts(out / "okx-2022")
        if code != 0 or books_total(rep, "checksum_verified") != 290:
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


if __name__ == "__main__":
    sys.exit(main())
