"""The offline end-to-end demo behind ``make demo``.

It runs the same commands a researcher would type, on data made here:

1. a seeded synthetic OKX feed (``books`` + ``trades`` for three instruments, with
   heartbeats and a maintenance seqId reset) written as a capture file, imported into a
   recording and verified: every book rebuilt, every checksum verified, no gap;
2. the same feed with one ``books`` update of ETH-USDT dropped on purpose: ``verify`` must
   find exactly that gap, and say where it is;
3. when ``../shared/okx-real`` is beside the repository, the real 2022 OKX capture:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simlab.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="demo-output", help="working directory (recreated)")
    ap.add_argument("--updates", type=int, default=20_000, help="book updates to generate")
    a = ap.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    problems: list[str] = []

    def stream():
        return generate_stream(seed=7, instruments=INSTRUMENTS, n_updates=a.updates, depth=200,
                               heartbeat_every=400, reset_at=a.updates // 3)

    print("== 1. a synthetic night, recorded and verified ==")
    n = write_capture(stream(), out / "synthetic.capture")
    print(f"generated {n:,} frames -> {out / 'synthetic.capture'}")
    run(["import", "okx-capture", str(out / "synthetic.capture"), "--out", str(out / "clean")])
    code, _ = run(["verify", str(out / "clean")])
    rep = counts(out / "clean")
    if code != 0 or books_total(rep, "gaps") or books_total(rep, "checksum_failed"):
        problems.append("the clean synthetic recording did not verify cleanly")
    if books_total(rep, "resets") != 1 or not books_total(rep, "heartbeats"):
        problems.append("the reset / heartbeats were not recognised as valid")

    print("\n== 2. the same night with one ETH-USDT update lost ==")
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
        print("\n== 3. a real OKX capture (2022, cryptofeed sample data) ==")
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
    print(f"demo ok: recordings are in {out}/ (open them with pandas.read_parquet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
